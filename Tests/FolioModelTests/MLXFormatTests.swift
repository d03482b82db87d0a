import FolioKernels
import FolioTensors
import Foundation
import Testing

@testable import FolioModel

/// MLX quantized folders (made from tiny-dense by mlx-lm itself, `scripts/make_mlx_fixtures.py`) load as they are —
/// `language_model.model.` names, norms with +1 baked in, conv1d as [C, K, 1], uint32 affine codes with scales and
/// biases — and decode like MLX's own runtime: identical greedy tokens, logits within 1e-3 as against transformers
/// (measured 1.3e-4 for 4-bit, 7e-5 for 8-bit; MLX's delta-rule q/k normalisation uses eps dk·1e-6 instead of 1e-6,
/// qwen35.md §6.2, which is far below that).
@Suite("MLX format")
struct MLXFormatTests {
  @Test(arguments: ["tiny-dense-mlx-4bit", "tiny-dense-mlx-6bit", "tiny-dense-mlx-8bit"])
  func decodesLikeMLX(model name: String) throws {
    let reference = try ReferenceFile.load(name)
    let logitsFile = try SafetensorsFile(url: Fixtures.reference("\(name).safetensors"))
    // Float activations: MLX's runtime multiplies fp32 activations (int8 activations are measured in
    // `QuantizedQualityTests`).
    let checkpoint = try Checkpoint(folder: Fixtures.model(name), activations: .float32)
    let model = checkpoint.textModel
    #expect(checkpoint.config.quantization.map { "\($0.bits)bit" } == name.split(separator: "-").last.map(String.init))
    let pool = ComputePool(threadCount: 2)
    for c in reference.cases {
      let expected = try #require(logitsFile.tensors["\(c.name).logits"]).floats()
      let v = model.config.vocabularySize
      var state = model.makeState()
      var logits = try model.forward(tokens: c.promptIDs, state: &state, pool: pool)
      var worst: Float = 0
      var tokens: [Int] = []
      for step in 0..<c.greedyIDs.count {
        let row = expected[(step * v)..<((step + 1) * v)]
        worst = max(worst, zip(logits, row).map { abs($0 - $1) }.max() ?? .infinity)
        let token = logits.indices.max { logits[$0] < logits[$1] } ?? 0
        tokens.append(token)
        logits = try model.forward(tokens: [token], state: &state, pool: pool)
      }
      #expect(tokens == c.greedyIDs)
      #expect(worst <= 1e-3, "\(name): max |Δlogit| = \(worst)")
    }
  }

  /// The same folders with int8 activations: the memory-mapped codes are repacked (interleaved) at load, and the
  /// prompt's next-token logits follow the float-activation run (`decodesLikeMLX`). These random 32-wide networks
  /// amplify the activations' rounding (measured correlation 0.72 for 8-bit, 0.85 for 4-bit; a wrong scale, row
  /// order or packing gives ≈ 0), so the bound only catches gross errors; the int8 arithmetic itself is proven exact
  /// in `Int8ActivationTests`.
  @Test(arguments: ["tiny-dense-mlx-4bit", "tiny-dense-mlx-6bit", "tiny-dense-mlx-8bit"])
  func int8ActivationsFollowTheFloatRun(model name: String) throws {
    let reference = try ReferenceFile.load(name)
    let int8 = try Checkpoint(folder: Fixtures.model(name), activations: .int8).textModel
    let float = try Checkpoint(folder: Fixtures.model(name), activations: .float32).textModel
    #expect(int8.weights.lmHead.quantization?.layout == .interleaved)
    #expect(float.weights.lmHead.quantization?.layout == .mlx)
    let pool = ComputePool(threadCount: 2)
    for c in reference.cases {
      var (s1, s2) = (int8.makeState(), float.makeState())
      let a = try int8.forward(tokens: c.promptIDs, state: &s1, pool: pool)
      let b = try float.forward(tokens: c.promptIDs, state: &s2, pool: pool)
      let (ma, mb) = (a.reduce(0, +) / Float(a.count), b.reduce(0, +) / Float(b.count))
      let cov = zip(a, b).reduce(0) { $0 + Double(($1.0 - ma) * ($1.1 - mb)) }
      let va = a.reduce(0) { $0 + Double(($1 - ma) * ($1 - ma)) }
      let vb = b.reduce(0) { $0 + Double(($1 - mb) * ($1 - mb)) }
      let correlation = cov / (va * vb).squareRoot()
      print("\(name) \(c.name): int8/float logit correlation \(correlation)")
      #expect(correlation > 0.5, "\(name) \(c.name): correlation \(correlation)")
    }
  }
}
