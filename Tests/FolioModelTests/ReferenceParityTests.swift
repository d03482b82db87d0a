import FolioKernels
import FolioTensors
import Foundation
import Testing

@testable import FolioModel

/// The decoder against transformers' float32 outputs on the same weights: identical greedy tokens and logits
/// within 1e-3 at every step (prefill's last position, then every cached decode step).
///
/// Tolerance: transformers' own cached decode differs from an uncached forward by up to ~4e-4
/// (reference-fixtures.md), so 1e-3 absolute is the bound with headroom for summation order.
@Suite("Reference parity")
struct ReferenceParityTests {
  static let models = ["tiny-dense", "tiny-gqa", "tiny-moe", "tiny-moe-fused"]
  static let tolerance: Float = 1e-3

  @Test("greedy tokens and logits match transformers", arguments: models)
  func parity(model name: String) throws {
    let referenceName = name == "tiny-moe-fused" ? "tiny-moe" : name
    let reference = try ReferenceFile.load(referenceName)
    let logitsFile = try SafetensorsFile(url: Fixtures.reference("\(referenceName).safetensors"))
    let checkpoint = try Checkpoint(folder: Fixtures.model(name))
    let model = checkpoint.textModel
    let pool = ComputePool(threadCount: 2)
    #expect(!reference.cases.isEmpty)
    for testCase in reference.cases {
      let expected = try #require(logitsFile.tensors["\(testCase.name).logits"], "no logits for \(testCase.name)")
      let vocabulary = expected.shape[1]
      let expectedLogits = try expected.floats()
      #expect(vocabulary == model.config.vocabularySize)
      #expect(expected.shape[0] >= testCase.greedyIDs.count)

      var state = model.makeState()
      var logits = try model.forward(tokens: testCase.promptIDs, state: &state, pool: pool)
      var generated: [Int] = []
      var worst: Float = 0
      for step in 0..<testCase.greedyIDs.count {
        let row = Array(expectedLogits[(step * vocabulary)..<((step + 1) * vocabulary)])
        let difference = zip(logits, row).map { abs($0 - $1) }.max() ?? .infinity
        worst = max(worst, difference)
        #expect(difference <= Self.tolerance, "\(name)/\(testCase.name) step \(step): max |Δlogit| = \(difference)")
        let token = argmax(logits)
        generated.append(token)
        if token != testCase.greedyIDs[step] { break }
        logits = try model.forward(tokens: [token], state: &state, pool: pool)
      }
      #expect(generated == testCase.greedyIDs, "\(name)/\(testCase.name): greedy tokens differ")
      #expect(worst > 0, "logits identical to the last bit is suspicious for an independent implementation")
    }
  }

  @Test("a multi-token continuation with a cache equals token-by-token decoding")
  func chunkedContinuation() throws {
    let checkpoint = try Checkpoint(folder: Fixtures.model("tiny-dense"))
    let model = checkpoint.textModel
    let pool = ComputePool(threadCount: 2)
    let reference = try ReferenceFile.load("tiny-dense")
    let testCase = try #require(reference.cases.first { $0.name == "long" })
    let split = testCase.promptIDs.count / 2
    var whole = model.makeState()
    let oneShot = try model.forward(tokens: testCase.promptIDs, state: &whole, pool: pool)
    var parts = model.makeState()
    _ = try model.forward(tokens: Array(testCase.promptIDs[..<split]), state: &parts, pool: pool)
    let continued = try model.forward(tokens: Array(testCase.promptIDs[split...]), state: &parts, pool: pool)
    let difference = zip(oneShot, continued).map { abs($0 - $1) }.max() ?? .infinity
    #expect(difference < 1e-4)
    #expect(parts.tokenCount == whole.tokenCount)
  }

  @Test("long prompts prefilled in runs of positions equal one pass")
  func prefillInRuns() throws {
    let model = try Checkpoint(folder: Fixtures.model("tiny-dense")).textModel
    let pool = ComputePool(threadCount: 2)
    let testCase = try #require(try ReferenceFile.load("tiny-dense").cases.first { $0.name == "long" })
    let ids = testCase.promptIDs
    let positions = ids.indices.map { PositionTriple(uniform: $0) }
    func run(chunk: Int) throws -> ([Float], DecoderState) {
      var state = model.makeState()
      let logits = model.forward(
        embeddings: try model.embed(ids) { _, _ in false }, count: ids.count, positions: positions, state: &state,
        pool: pool, chunk: chunk)
      return (logits, state)
    }
    let (whole, wholeState) = try run(chunk: ids.count)
    for chunk in [50, 64, 100] {
      let (runs, runsState) = try run(chunk: chunk)
      let difference = zip(whole, runs).map { abs($0 - $1) }.max() ?? .infinity
      #expect(difference < 1e-4, "runs of \(chunk): \(difference)")
      #expect(runsState.tokenCount == wholeState.tokenCount)
    }
  }

  private func argmax(_ values: [Float]) -> Int {
    var best = 0
    for i in values.indices where values[i] > values[best] { best = i }
    return best
  }
}
