import FolioBase
import FolioKernels
import FolioTensors
import Foundation
import Testing

@testable import FolioModel

/// MLX quantized folders (made from tiny-dense and tiny-moe by mlx-lm itself, `scripts/make_mlx_fixtures.py`) load
/// as they are — `language_model.model.` names, norms with +1 baked in, conv1d as [C, K, 1], uint32 affine codes with
/// scales and biases, MoE experts stacked in `switch_mlp` — and decode like MLX's own runtime: identical greedy
/// tokens, logits within 1e-3 as against transformers (measured 1.0e-4 for 4-bit, 6e-5 for 8-bit, 2.5e-5 for the
/// MoE folders; MLX's delta-rule q/k normalisation uses eps dk·1e-6 instead of 1e-6, qwen35.md §6.2, which is far
/// below that).
@Suite("MLX format")
struct MLXFormatTests {
  static let folders = [
    "tiny-dense-mlx-4bit", "tiny-dense-mlx-6bit", "tiny-dense-mlx-8bit", "tiny-moe-mlx-4bit", "tiny-moe-mlx-gs32-4bit",
  ]

  @Test(arguments: Self.folders)
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
      var state = model.makeState()
      let logits = try model.forward(tokens: c.promptIDs, state: &state, pool: pool)
      let (tokens, worst) = try model.greedyAgainstReference(
        from: logits, state: &state, expected: expected, steps: c.greedyIDs.count, pool: pool)
      print("\(name) \(c.name): max |Δlogit| vs MLX \(worst)")
      #expect(tokens == c.greedyIDs)
      #expect(worst <= 1e-3, "\(name): max |Δlogit| = \(worst)")
    }
  }

  /// The same folders with int8 activations: the memory-mapped codes are repacked (interleaved) at load, and the
  /// prompt's next-token logits follow the float-activation run (`decodesLikeMLX`). These random 32-wide networks
  /// amplify the activations' rounding (measured correlation 0.68 for 8-bit, 0.88 for 4-bit, 0.89–0.95 for the MoE
  /// folders, whose experts are repacked one by one; a wrong scale, row order or packing gives ≈ 0), so the bound
  /// only catches gross errors; the int8 arithmetic itself is proven exact in `Int8ActivationTests`.
  @Test(arguments: Self.folders)
  func int8ActivationsFollowTheFloatRun(model name: String) throws {
    let reference = try ReferenceFile.load(name)
    let int8 = try Checkpoint(folder: Fixtures.model(name), activations: .int8).textModel
    let float = try Checkpoint(folder: Fixtures.model(name), activations: .float32).textModel
    #expect(int8.weights.lmHead.quantization?.layout == .interleaved)
    #expect(float.weights.lmHead.quantization?.layout == .mlx)
    if case .sparse(let moe) = int8.weights.layers[0].feedForward {
      #expect(moe.experts.allSatisfy { $0.gate.quantization?.layout == .interleaved })
      #expect(moe.router.quantization?.layout == .interleaved)
    }
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

  /// mlx-lm stacks each expert projection along a leading axis (`switch_mlp.gate_proj` `[E, Im, H]`, `down_proj`
  /// `[E, H, Im]`) and quantizes it when its input width is a multiple of the group size; the router and shared-expert
  /// gate get 8 bits (its qwen3_5 quant predicate). Each expert is a view into the mapped stack, never a copy.
  @Test(arguments: [("tiny-moe-mlx-4bit", false), ("tiny-moe-mlx-gs32-4bit", true)])
  func switchMLPExpertsAreViewsIntoTheStack(model name: String, quantizedDown: Bool) throws {
    let checkpoint = try Checkpoint(folder: Fixtures.model(name), activations: .float32)
    let c = checkpoint.config.text
    let e = try #require(c.experts)
    let (h, im) = (c.hiddenSize, e.expertIntermediateSize)
    for (i, layer) in checkpoint.textModel.weights.layers.enumerated() {
      guard case .sparse(let moe) = layer.feedForward else {
        Issue.record("layer \(i) is not a mixture of experts")
        continue
      }
      let p = "language_model.model.layers.\(i).mlp.switch_mlp."
      let gate = try #require(checkpoint.store[p + "gate_proj.weight"])
      let down = try #require(checkpoint.store[p + "down_proj.weight"])
      #expect(moe.experts.count == e.expertCount)
      #expect(moe.router.quantization?.bits == 8)
      #expect(moe.sharedGate.quantization?.bits == 8)
      for (x, expert) in moe.experts.enumerated() {
        #expect(expert.gate.base == gate.data + x * im * h * 4 / 8)
        #expect(expert.gate.quantization?.bits == 4)
        #expect(expert.gate.rows == im && expert.gate.columns == h)
        #expect(expert.down.rows == h && expert.down.columns == im)
        let downBytes = quantizedDown ? h * im * 4 / 8 : h * im * 2
        #expect(expert.down.base == down.data + x * downBytes)
        #expect((expert.down.quantization != nil) == quantizedDown)
      }
    }
  }

  /// A `switch_mlp` tensor whose shape disagrees with config.json fails with a typed error naming the tensor (here
  /// the header is edited in place: same element count, so the file itself stays valid).
  @Test(arguments: [
    ("tiny-moe-mlx-gs32-4bit", "switch_mlp.gate_proj.weight", "[8,32,8]", "[4,64,8]"),
    ("tiny-moe-mlx-gs32-4bit", "switch_mlp.down_proj.scales", "[8,64,1]", "[8,32,2]"),
    ("tiny-moe-mlx-4bit", "switch_mlp.down_proj.weight", "[8,64,32]", "[8,32,64]"),
  ])
  func switchMLPWithTheWrongShape(model name: String, tensor: String, shape: String, wrong: String) throws {
    let folder = try Fixtures.temporaryFolder().appendingPathComponent("model")
    try FileManager.default.copyItem(at: Fixtures.model(name), to: folder)
    let url = folder.appendingPathComponent("model.safetensors")
    let full = "language_model.model.layers.0.mlp." + tensor
    try Self.editHeader(of: url, tensor: full, from: "\"shape\":" + shape, to: "\"shape\":" + wrong)
    do {
      _ = try Checkpoint(folder: folder, activations: .float32)
      Issue.record("expected an error")
    } catch let e as FolioError {
      #expect(e.code == .tensorShapeMismatch)
      #expect(e.message.contains(full))
      #expect(e.message.contains("expected"))
    }
  }

  /// Replaces `old` with `new` (the same length) in `tensor`'s entry of a safetensors header.
  static func editHeader(of url: URL, tensor: String, from old: String, to new: String) throws {
    var data = try Data(contentsOf: url)
    let length = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
    var header = try #require(String(data: data[8..<(8 + length)], encoding: .utf8))
    let entry = try #require(header.range(of: "\"\(tensor)\":"))
    let field = try #require(header.range(of: old, range: entry.upperBound..<header.endIndex))
    try #require(old.utf8.count == new.utf8.count)
    header.replaceSubrange(field, with: new)
    data.replaceSubrange(8..<(8 + length), with: Data(header.utf8))
    try data.write(to: url)
  }
}

extension TextModel {
  /// Greedy decoding for `steps` tokens from the prompt's last `logits`, against `expected` logits
  /// (`[steps, vocab]`): the tokens chosen and the largest |Δlogit| over all steps.
  func greedyAgainstReference(
    from logits: [Float], state: inout DecoderState, expected: [Float], steps: Int, pool: ComputePool
  ) throws -> (tokens: [Int], worst: Float) {
    let v = config.vocabularySize
    var logits = logits
    var worst: Float = 0
    var tokens: [Int] = []
    for step in 0..<steps {
      let row = expected[(step * v)..<((step + 1) * v)]
      worst = max(worst, zip(logits, row).map { abs($0 - $1) }.max() ?? .infinity)
      let token = logits.indices.max { logits[$0] < logits[$1] } ?? 0
      tokens.append(token)
      logits = try forward(tokens: [token], state: &state, pool: pool)
    }
    return (tokens, worst)
  }
}
