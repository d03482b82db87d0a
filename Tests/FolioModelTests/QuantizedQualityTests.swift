import FolioKernels
import FolioTensors
import Foundation
import Testing

@testable import FolioModel

/// The cost of quantizing at load, measured on the reference prompts: teacher-forced along transformers' greedy
/// tokens, the KL divergence of the quantized model's next-token distribution from the float reference, and how
/// often its top token agrees. (The random tiny models are harsher on quantization than trained weights.)
@Suite("Quantized quality")
struct QuantizedQualityTests {
  struct Quality {
    var meanKL: Double
    var topOneAgreement: Double
  }

  static func measure(model name: String, bits: Int?, activations: QuantizedActivations = .float32) throws -> Quality {
    let reference = try ReferenceFile.load(name)
    let logitsFile = try SafetensorsFile(url: Fixtures.reference("\(name).safetensors"))
    let store = try TensorStore(folder: Fixtures.model(name))
    let config = try ModelConfiguration.load(from: Fixtures.model(name).appendingPathComponent("config.json"))
    let model = try TextModel(store: store, config: config.text, quantizeBits: bits, activations: activations)
    let pool = ComputePool(threadCount: 2)
    var kl = 0.0
    var agree = 0
    var steps = 0
    for c in reference.cases {
      let expected = try #require(logitsFile.tensors["\(c.name).logits"]).floats()
      let v = config.text.vocabularySize
      var state = model.makeState()
      var logits = try model.forward(tokens: c.promptIDs, state: &state, pool: pool)
      for (step, token) in c.greedyIDs.enumerated() {
        let p = softmax(Array(expected[(step * v)..<((step + 1) * v)]))
        let q = softmax(logits)
        kl += zip(p, q).reduce(0) { $0 + ($1.0 > 0 ? $1.0 * log($1.0 / max($1.1, 1e-30)) : 0) }
        if q.indices.max(by: { q[$0] < q[$1] }) == p.indices.max(by: { p[$0] < p[$1] }) { agree += 1 }
        steps += 1
        logits = try model.forward(tokens: [token], state: &state, pool: pool)
      }
    }
    return Quality(meanKL: kl / Double(steps), topOneAgreement: Double(agree) / Double(steps))
  }

  static func softmax(_ x: [Float]) -> [Double] {
    let m = Double(x.max() ?? 0)
    let e = x.map { exp(Double($0) - m) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
  }

  /// Bounds that a packing or scaling bug cannot meet (a broken matrix gives top-1 agreement near chance, 1/1088)
  /// while rounding can: measured on tiny-dense, 8-bit gives mean KL ≈ 0.08 and top-1 ≈ 0.88, 4-bit KL ≈ 4.6 and
  /// top-1 ≈ 0.24. Random tiny networks amplify rounding (their fp32 logits move by 1e-4 under reordering), so these
  /// are far worse than on trained weights; the exactness of the kernels is tested in `AffineQuantizationTests`.
  @Test func qualityCostOfQuantizing() throws {
    let eight = try Self.measure(model: "tiny-dense", bits: 8)
    let six = try Self.measure(model: "tiny-dense", bits: 6)
    let four = try Self.measure(model: "tiny-dense", bits: 4)
    print("quantized quality tiny-dense: 8-bit mean KL \(eight.meanKL), top-1 \(eight.topOneAgreement); 6-bit mean KL \(six.meanKL), top-1 \(six.topOneAgreement); 4-bit mean KL \(four.meanKL), top-1 \(four.topOneAgreement)")
    #expect(six.meanKL < four.meanKL, "fewer bits cost more")
    #expect(eight.meanKL < 0.3)
    #expect(eight.topOneAgreement >= 0.75)
    #expect(four.topOneAgreement > 0.1)
    #expect(four.meanKL > eight.meanKL, "fewer bits cost more")
  }

  /// Int8 activations (the default on CPUs with VNNI) add the activations' rounding, 1/254 of each group's largest
  /// value, on top of the weights': measured on tiny-dense, 8-bit KL ≈ 0.56 and top-1 ≈ 0.61, 4-bit KL ≈ 4.6 and
  /// top-1 ≈ 0.27 (the kernels' arithmetic itself is exact, `Int8ActivationTests`). A scaling or packing bug gives
  /// chance agreement; the bounds sit well above it and below these.
  @Test func qualityCostOfInt8Activations() throws {
    let eight = try Self.measure(model: "tiny-dense", bits: 8, activations: .int8)
    let four = try Self.measure(model: "tiny-dense", bits: 4, activations: .int8)
    print("int8-activation quality tiny-dense: 8-bit mean KL \(eight.meanKL), top-1 \(eight.topOneAgreement); 4-bit mean KL \(four.meanKL), top-1 \(four.topOneAgreement)")
    #expect(eight.meanKL < 1.2)
    #expect(eight.topOneAgreement >= 0.4)
    #expect(four.topOneAgreement > 0.1)
  }

  /// bf16 activations for a bf16 checkpoint (`--activations bf16`, where the CPU has AVX512_BF16): prompts multiply
  /// the row panels with activations rounded to bf16, decode stays fp32. Measured on tiny-gqa (bf16 weights): mean
  /// KL ≈ 4e-4, top-1 ≈ 0.99, where the float run of the same model follows transformers (KL ≈ 2e-11, top-1 1).
  @Test func qualityCostOfBF16Prompts() throws {
    guard QuantizedActivations.bfloat16.bf16Prompts else { return }
    let model = try TextModel(
      store: TensorStore(folder: Fixtures.model("tiny-gqa")),
      config: ModelConfiguration.load(from: Fixtures.model("tiny-gqa").appendingPathComponent("config.json")).text,
      activations: .bfloat16)
    guard case .linear(let layer) = model.weights.layers[0].mixer else {
      Issue.record("tiny-gqa layer 0 is not a Gated DeltaNet layer")
      return
    }
    #expect(layer.inProjQKV.panels?.bf16Activations == true)
    let float = try Self.measure(model: "tiny-gqa", bits: nil)
    let bf16 = try Self.measure(model: "tiny-gqa", bits: nil, activations: .bfloat16)
    print(
      "bf16-prompt quality tiny-gqa: float mean KL \(float.meanKL), top-1 \(float.topOneAgreement);",
      "bf16 mean KL \(bf16.meanKL), top-1 \(bf16.topOneAgreement)")
    #expect(float.meanKL < 1e-4 && float.topOneAgreement == 1)
    #expect(bf16.meanKL > float.meanKL, "the prompt's activations are rounded")
    #expect(bf16.meanKL < 0.02)
    #expect(bf16.topOneAgreement >= 0.9)
  }

  /// Quantizing a mixture of experts at load: every expert (a view into the checkpoint) is quantized and, with int8
  /// activations, repacked on its own; their down projections (32 inputs, not a multiple of the 64-column groups)
  /// stay in the stored float16, as mlx-lm leaves them. Measured on tiny-moe: 8-bit mean KL ≈ 0.048, top-1 ≈ 0.93;
  /// with int8 activations KL ≈ 0.31, top-1 ≈ 0.73 (a packing or scaling bug gives chance agreement).
  @Test func qualityCostOfQuantizingExperts() throws {
    let model = try TextModel(
      store: TensorStore(folder: Fixtures.model("tiny-moe")),
      config: ModelConfiguration.load(from: Fixtures.model("tiny-moe").appendingPathComponent("config.json")).text,
      quantizeBits: 8, activations: .int8)
    guard case .sparse(let moe) = model.weights.layers[0].feedForward else {
      Issue.record("tiny-moe layer 0 is not a mixture of experts")
      return
    }
    #expect(moe.experts.allSatisfy { $0.gate.quantization?.layout == .interleaved && $0.down.quantization == nil })
    #expect(moe.router.quantization == nil, "router gates stay as stored")
    let eight = try Self.measure(model: "tiny-moe", bits: 8)
    let int8 = try Self.measure(model: "tiny-moe", bits: 8, activations: .int8)
    print(
      "quantized quality tiny-moe: 8-bit mean KL \(eight.meanKL), top-1 \(eight.topOneAgreement);",
      "int8 activations mean KL \(int8.meanKL), top-1 \(int8.topOneAgreement)")
    #expect(eight.meanKL < 0.3)
    #expect(eight.topOneAgreement >= 0.75)
    #expect(int8.meanKL < 1.2)
    #expect(int8.topOneAgreement >= 0.4)
  }
}
