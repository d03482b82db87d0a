import FolioKernels
import Foundation
import Testing

@testable import FolioModel

/// One vision head's attention (`HeadAttention`) against softmax(Q·Kᵀ)·V in double precision: the fp32 path within
/// rounding, the bf16 path within the rounding of bf16 keys, values, queries and probabilities, the int8 path
/// (quantized models) within the rounding of 8-bit ones, including key counts that are not a multiple of the 64-key
/// groups (zero-padded values).
@Suite("Vision head attention")
struct HeadAttentionTests {
  static func reference(_ q: [Float], _ k: [Float], _ v: [Float], queries: Int, keys: Int, d: Int) -> [Double] {
    var out = [Double](repeating: 0, count: queries * d)
    for i in 0..<queries {
      var scores = (0..<keys).map { s in (0..<d).reduce(0.0) { $0 + Double(q[i * d + $1]) * Double(k[s * d + $1]) } }
      let top = scores.max() ?? 0
      scores = scores.map { exp($0 - top) }
      let total = scores.reduce(0, +)
      for s in 0..<keys {
        for c in 0..<d { out[i * d + c] += scores[s] / total * Double(v[s * d + c]) }
      }
    }
    return out
  }

  enum Arithmetic: CaseIterable { case float, int8, bf16 }

  @Test(arguments: Arithmetic.allCases)
  func matchesSoftmaxAttention(arithmetic: Arithmetic) throws {
    let (int8, bf16) = (arithmetic == .int8, arithmetic == .bf16)
    if int8, QuantizedActivations.fastest != .int8 { return }
    var generator = SystemRandomNumberGenerator()
    let d = 64
    for (queries, keys) in [(5, 150), (37, 64), (9, 200)] {
      let q = (0..<(queries * d)).map { _ in Float.random(in: -0.3...0.3, using: &generator) }
      let k = (0..<(keys * d)).map { _ in Float.random(in: -1...1, using: &generator) }
      let v = (0..<(keys * d)).map { _ in Float.random(in: -1...1, using: &generator) }
      let keyBuffer = FloatBuffer(k)
      let valuesT = FloatBuffer(count: d * keys)
      for s in 0..<keys { for c in 0..<d { valuesT.pointer[c * keys + s] = v[s * d + c] } }
      let head = HeadAttention(
        keys: keyBuffer, valuesT: valuesT, count: keys, headDimension: d, int8: int8, bf16: bf16)
      #expect((head.keys.quantization != nil) == int8)
      #expect((head.keys.panels?.bf16Activations == true) == bf16)
      let scores = FloatBuffer(count: queries * HeadAttention.padded(keys))
      let output = FloatBuffer(count: queries * d)
      q.withUnsafeBufferPointer { qp in
        head.attend(
          qp.baseAddress!, count: queries, scores: scores.pointer, into: output.pointer,
          pool: ComputePool(threadCount: 2))
      }
      let expected = Self.reference(q, k, v, queries: queries, keys: keys, d: d)
      let error = (0..<(queries * d)).reduce(0.0) { $0 + pow(Double(output.pointer[$1]) - expected[$1], 2) }
      let scale = expected.reduce(0.0) { $0 + $1 * $1 }
      let relative = (error / scale).squareRoot()
      // Measured: fp32 ~1.5e-7; bf16 0.18–0.31% (8-bit mantissas); int8 2.0–2.5% (probabilities near uniform make the
      // averaged output small).
      let bound = [Arithmetic.float: 1e-5, .bf16: 0.01, .int8: 0.05][arithmetic]!
      #expect(relative < bound, "\(queries)x\(keys) \(arithmetic): relative RMS error \(relative)")
      if bf16 {
        print("bf16 head attention \(queries)x\(keys): relative RMS error \(relative)")
        #expect(relative > 1e-4, "the bf16 products round their inputs (\(relative))")
      }
    }
  }
}
