import FolioBase
import FolioKernels
import FolioTensors
import Foundation
import Testing

@testable import FolioModel

/// A vision-language MLX folder as mlx-community publishes them, written by mlx-vlm itself
/// (`tiny-dense-mlxvlm-4bit`, `scripts/make_mlx_fixtures.py --only vlm`): `vision_tower.*` unquantized in the stored
/// dtype with the Conv3d patch embedding channels-last `[O, T, P, P, C]`, the language model as mlx-lm writes it
/// (`language_model.model.*`, 4-bit codes, norms with +1 baked in), and config.json with the generation settings
/// merged in. It loads the way `folio generate --model DIR --image …` loads it (`Checkpoint`, then the vision tower
/// from the same store with the folder's quantization), and computes what mlx-vlm computes for the `image_one`
/// case on mlx-vlm's own pixel values: vision features within 1e-4 (measured 2.3e-6), identical greedy tokens and
/// logits within 1e-3 at every step (measured 6.6e-5; the text-only MLX folders in `MLXFormatTests` measure 1.0e-4).
@Suite("MLX vision format")
struct MLXVisionFormatTests {
  static let name = "tiny-dense-mlxvlm-4bit"

  /// `reference/tiny-dense-mlxvlm-4bit.json`: the cases mlx-vlm ran (see the file's `notes`).
  struct Reference: Decodable {
    struct Case: Decodable {
      var name: String
      var image: String
      var gridTHW: [Int]
      var promptIDs: [Int]
      var greedyIDs: [Int]
      enum CodingKeys: String, CodingKey {
        case name, image, gridTHW = "grid_thw", promptIDs = "prompt_ids", greedyIDs = "greedy_ids"
      }
    }
    var cases: [Case]

    static func load() throws -> (Reference, SafetensorsFile) {
      let data = try Data(contentsOf: Fixtures.reference("\(name).json"))
      return (
        try JSONDecoder().decode(Reference.self, from: data),
        try SafetensorsFile(url: Fixtures.reference("\(name).safetensors"))
      )
    }
  }

  /// The checkpoint and its vision tower, built as `VisionComponents.load` builds them for `folio generate`.
  static func load(activations: QuantizedActivations) throws -> (Checkpoint, VisionEncoder) {
    let checkpoint = try Checkpoint(folder: Fixtures.model(name), activations: activations)
    let config = try #require(checkpoint.config.vision)
    let encoder = try VisionEncoder(
      store: checkpoint.store, config: config, quantization: checkpoint.config.quantization,
      int8Linears: checkpoint.int8Activations)
    return (checkpoint, encoder)
  }

  static func grid(_ c: Reference.Case) throws -> PatchGrid {
    try #require(c.gridTHW.count == 3)
    return PatchGrid(t: c.gridTHW[0], h: c.gridTHW[1], w: c.gridTHW[2])
  }

  /// What mlx-vlm wrote, read back by Folio: the vision tower under `vision_tower.`, unquantized (mlx-vlm skips
  /// multimodal modules when quantizing), the patch embedding channels-last and reordered at load to exactly the
  /// Hugging Face `[O, C·T·P·P]` matrix of the source folder (mlx-vlm only transposes it), every other vision tensor
  /// unchanged; the language model quantized at 4 bits.
  @Test func visionTowerLayout() throws {
    let (checkpoint, encoder) = try Self.load(activations: .float32)
    let store = checkpoint.store
    let v = try #require(checkpoint.config.vision)
    #expect(checkpoint.config.quantization?.bits == 4)
    #expect(!store.tensors.keys.contains { $0.hasPrefix("model.") })
    #expect(store["language_model.model.embed_tokens.weight"]?.dtype == .u32)
    let patch = try #require(store["vision_tower.patch_embed.proj.weight"])
    #expect(patch.shape == [v.hiddenSize, v.temporalPatchSize, v.patchSize, v.patchSize, v.inChannels])
    let visionNames = store.tensors.keys.filter { $0.hasPrefix("vision_tower.") }
    #expect(visionNames.allSatisfy { store[$0]?.dtype == .f32 })
    #expect(!visionNames.contains { $0.hasSuffix(".scales") || $0.hasSuffix(".biases") })

    let source = try TensorStore(folder: Fixtures.model("tiny-dense"))
    let hfPatch = try #require(source["model.visual.patch_embed.proj.weight"]).floats()
    #expect(encoder.patchEmbed.weight.toFloatArray() == hfPatch)
    for name in visionNames where name != "vision_tower.patch_embed.proj.weight" {
      let hfName = "model.visual." + name.dropFirst("vision_tower.".count)
      let hf = try #require(source[hfName], "\(hfName) missing from tiny-dense")
      #expect(try store[name]?.floats() == hf.floats(), "\(name)")
    }
    let matrices =
      encoder.blocks.flatMap { [$0.qkv, $0.proj, $0.fc1, $0.fc2] } + [encoder.mergerFC1, encoder.mergerFC2]
    #expect(matrices.allSatisfy { $0.weight.quantization == nil && $0.weight.elementType == .float32 })
  }

  @Test func visionFeaturesMatchMLXVLM() throws {
    let (_, encoder) = try Self.load(activations: .float32)
    let (reference, tensors) = try Reference.load()
    for c in reference.cases {
      let stem = (c.image as NSString).deletingPathExtension
      let pixels = try #require(tensors.tensors["\(stem).pixel_values"]).floats()
      let expected = try #require(tensors.tensors["\(stem).features"]).floats()
      let ours = try encoder.encode(pixelValues: pixels, grids: [Self.grid(c)], pool: ComputePool(threadCount: 2))
      #expect(ours.count == expected.count)
      let worst = zip(ours, expected).map { abs($0 - $1) }.max() ?? .infinity
      print("\(Self.name) \(c.image): max |Δfeature| vs mlx-vlm \(worst)")
      #expect(worst <= 1e-4, "\(c.image): max |Δfeature| = \(worst)")
    }
  }

  /// The image prompt decoded as `folio generate` does: Folio's own features replace the `<|image_pad|>` run, 3-D
  /// rotary positions for the prefill, then one token at a time after the rope delta.
  @Test func imagePromptDecodesLikeMLXVLM() throws {
    let (checkpoint, encoder) = try Self.load(activations: .float32)
    let (reference, tensors) = try Reference.load()
    let model = checkpoint.textModel
    let pool = ComputePool(threadCount: 2)
    for c in reference.cases {
      let stem = (c.image as NSString).deletingPathExtension
      let pixels = try #require(tensors.tensors["\(stem).pixel_values"]).floats()
      let expected = try #require(tensors.tensors["\(c.name).logits"]).floats()
      let grid = try Self.grid(c)
      let features = try encoder.encode(pixelValues: pixels, grids: [grid], pool: pool)
      var state = model.makeState()
      let logits = try model.forward(
        tokens: c.promptIDs, imageFeatures: features, grids: [grid], imageTokenID: checkpoint.config.imageTokenID,
        mergeSize: encoder.config.spatialMergeSize, state: &state, pool: pool)
      let (tokens, worst) = try model.greedyAgainstReference(
        from: logits, state: &state, expected: expected, steps: c.greedyIDs.count, pool: pool)
      print("\(Self.name) \(c.name): max |Δlogit| vs mlx-vlm \(worst)")
      #expect(tokens == c.greedyIDs)
      #expect(worst <= 1e-3, "\(c.name): max |Δlogit| = \(worst)")
    }
  }

  /// With int8 activations (the default where the CPU has int8 dot products) the folder's float vision linears are
  /// quantized to 8 bits at load, as for a Hugging Face folder: features within 6% relative RMS of mlx-vlm's fp32
  /// ones (the bound `VisionParityTests` uses against transformers; a packing or scaling bug gives ~100%).
  @Test func int8VisionLinearsFollowMLXVLM() throws {
    guard QuantizedActivations.fastest == .int8 else { return }  // the CPU has no int8 dot products
    let (checkpoint, encoder) = try Self.load(activations: .int8)
    #expect(checkpoint.int8Activations)
    // Quantized at load in groups of 64 columns: the 32-wide qkv and proj stay fp32 in this tiny tower.
    let matrices =
      encoder.blocks.flatMap { [$0.qkv, $0.proj, $0.fc1, $0.fc2] } + [encoder.mergerFC1, encoder.mergerFC2]
    #expect(matrices.allSatisfy { ($0.weight.quantization?.layout == .interleaved) == ($0.weight.columns % 64 == 0) })
    #expect(matrices.contains { $0.weight.quantization != nil })
    let (reference, tensors) = try Reference.load()
    for c in reference.cases {
      let stem = (c.image as NSString).deletingPathExtension
      let pixels = try #require(tensors.tensors["\(stem).pixel_values"]).floats()
      let expected = try #require(tensors.tensors["\(stem).features"]).floats()
      let ours = try encoder.encode(pixelValues: pixels, grids: [Self.grid(c)], pool: ComputePool(threadCount: 2))
      let error = zip(ours, expected).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
      let scale = expected.reduce(0.0) { $0 + Double($1 * $1) }
      let relative = (error / scale).squareRoot()
      print("\(Self.name) \(c.image): int8 vision relative RMS error \(relative)")
      #expect(relative < 0.06, "\(c.image): relative RMS error \(relative)")
    }
  }
}
