import FolioKernels
import Foundation
import Testing

@testable import FolioModel

/// The chunked delta rule (blocked products per chunk) against the token-by-token recurrence it rewrites, from a
/// non-zero state, over sizes that leave short final chunks and head dimensions that are not multiples of 16.
@Suite("Delta rule")
struct DeltaRuleTests {
  @Test(arguments: [(16, 32, 150, 64), (128, 128, 130, 64), (24, 40, 9, 4), (8, 8, 2, 64)])
  func chunkedEqualsRecurrent(sizes: (Int, Int, Int, Int)) {
    let (dk, dv, tokens, chunk) = sizes
    var generator = SystemRandomNumberGenerator()
    let channels = 2 * dk + dv
    var activated = (0..<(tokens * channels)).map { _ in Float.random(in: -1...1, using: &generator) }
    // As in the layer: q and k unit length, q scaled by dk^-1/2.
    for t in 0..<tokens {
      activated.withUnsafeMutableBufferPointer { rows in
        let row = rows.baseAddress! + t * channels
        Elementwise.l2Normalize(row, count: dk)
        for i in 0..<dk { row[i] /= Float(dk).squareRoot() }
        Elementwise.l2Normalize(row + dk, count: dk)
      }
    }
    var beta = (0..<tokens).map { _ in Float.random(in: 0...1, using: &generator) }
    // Mild decays first, so the state carries across chunks; then steep ones (g down to −6), which make γ fall
    // far enough within a chunk that e^{−γ} alone could not be represented.
    var g = (0..<tokens).map { -Float.random(in: 0...($0 < tokens / 2 ? 0.1 : 6), using: &generator) }
    let initial = (0..<(dk * dv)).map { _ in Float.random(in: -0.5...0.5, using: &generator) }

    func run(chunked: Bool) -> (output: [Float], state: [Float]) {
      var output = [Float](repeating: 0, count: tokens * dv)
      var state = initial
      activated.withUnsafeMutableBufferPointer { rows in
        beta.withUnsafeMutableBufferPointer { beta in
          g.withUnsafeMutableBufferPointer { g in
            output.withUnsafeMutableBufferPointer { output in
              let rule = DeltaRuleHead(
                activated: rows.baseAddress!, channels: channels, tokens: tokens, queryOffset: 0, keyOffset: dk,
                valueOffset: 2 * dk, dk: dk, dv: dv, beta: beta.baseAddress!, g: g.baseAddress!, stride: 1,
                output: output.baseAddress!, outputStride: dv)
              state.withUnsafeMutableBufferPointer { state in
                if chunked {
                  rule.chunked(state: state.baseAddress!, chunk: chunk)
                } else {
                  rule.recurrent(state: state.baseAddress!)
                }
              }
            }
          }
        }
      }
      return (output, state)
    }

    let expected = run(chunked: false)
    let actual = run(chunked: true)
    let outputDifference = zip(expected.output, actual.output).map { abs($0 - $1) }.max() ?? .infinity
    let stateDifference = zip(expected.state, actual.state).map { abs($0 - $1) }.max() ?? .infinity
    #expect(outputDifference < 1e-4, "\(sizes): max |Δoutput| = \(outputDifference)")
    #expect(stateDifference < 1e-4, "\(sizes): max |Δstate| = \(stateDifference)")
  }
}
