import FolioKernels
import Foundation

/// The text model's partial, interleaved multimodal rotary embedding (qwen35.md §3.1).
struct TextRotary: Sendable {
  /// Rotated width of each head (`head_dim · partial_rotary_factor`).
  let dimension: Int
  /// `1 / theta^(2i/R)` in fp32, as torch computes it.
  let inverseFrequencies: [Float]
  /// Which position row (0 = t, 1 = h, 2 = w) drives each frequency: interleaved `THWTHW…` over the
  /// first `3·section[k]` slots, the rest temporal.
  let frequencyOwner: [Int]

  init(config: TextConfiguration) {
    let dimension = config.rotaryDimension
    self.dimension = dimension
    let half = dimension / 2
    let theta = Float(config.rope.theta)
    inverseFrequencies = (0..<half).map { i in 1 / powf(theta, Float(2 * i) / Float(dimension)) }
    let section = config.rope.mropeSection + [0, 0, 0]
    frequencyOwner = (0..<half).map { j in
      if j % 3 == 1 && j < 3 * section[1] { return 1 }
      if j % 3 == 2 && j < 3 * section[2] { return 2 }
      return 0
    }
  }

  /// cos/sin per token: `[tokens, R/2]` each (the two halves of a head share them).
  struct Table: Sendable {
    var cos: [Float]
    var sin: [Float]
    var half: Int
  }

  func table(for positions: [PositionTriple]) -> Table {
    let half = dimension / 2
    var cosines = [Float](repeating: 0, count: positions.count * half)
    var sines = cosines
    for (t, p) in positions.enumerated() {
      let rows = [Float(p.t), Float(p.h), Float(p.w)]
      for j in 0..<half {
        let angle = rows[frequencyOwner[j]] * inverseFrequencies[j]
        cosines[t * half + j] = cos(angle)
        sines[t * half + j] = sin(angle)
      }
    }
    return Table(cos: cosines, sin: sines, half: half)
  }
}

extension TextRotary.Table {
  /// Rotates the first `2·half` dims of the head at `x` for token `t` (NeoX half-split `rotate_half`).
  @inline(__always) func apply(_ x: UnsafeMutablePointer<Float>, token t: Int) {
    cos.withUnsafeBufferPointer { c in
      sin.withUnsafeBufferPointer { s in
        Elementwise.rotateHalf(x, half: half, cos: c.baseAddress! + t * half, sin: s.baseAddress! + t * half)
      }
    }
  }
}
