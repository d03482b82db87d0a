import FolioCodecs
import FolioKernels
import FolioModel
import FolioTensors
import Foundation
import Testing

@testable import FolioEngine

/// The image path against transformers on the tiny models' vision towers (`*-vision.json`/`.safetensors`, made by
/// `scripts/make_fixtures.py` with the PIL image processor): preprocessing, vision features, prompt ids, 3-D rotary
/// positions, greedy tokens and logits for one image, two images in a turn, and an image in a later turn.
///
/// Tolerances: pixel values may differ from the reference resize by one 8-bit level (2/255 after normalisation) on
/// at most 0.1% of values (the codecs' Pillow port is measured exact on these images); features within 1e-4
/// (the fp32 reference is within 2e-6 of float64); logits within 1e-3 at every step, as for text (the fp32
/// reference is within 1e-4 of float64 on these cases).
@Suite("Vision parity")
struct VisionParityTests {
  struct ImageEntry: Decodable {
    var file: String
    var width: Int
    var height: Int
    var resized_width: Int
    var resized_height: Int
    var grid_thw: [Int]
    var tokens: Int
    var pixel_values_key: String?
    var features_key: String
  }
  struct Case: Decodable {
    var name: String
    var messages: [ChatMessage]
    var enable_thinking: Bool?
    var prompt_ids: [Int]
    var greedy_ids: [Int]
    var images: [String]
    var logits_key: String
    var position_ids_key: String
    var rope_delta: Int
  }
  struct File: Decodable {
    var images: [ImageEntry]
    var cases: [Case]
  }

  static let pixelTensors: [String: TensorView] = {
    (try? SafetensorsFile(url: EngineFixtures.reference("tiny-dense-vision.safetensors")).tensors) ?? [:]
  }()

  static func load(_ model: String) throws -> (File, SafetensorsFile) {
    let file = try JSONDecoder().decode(
      File.self, from: Data(contentsOf: EngineFixtures.reference("\(model)-vision.json")))
    return (file, try SafetensorsFile(url: EngineFixtures.reference("\(model)-vision.safetensors")))
  }

  static func imageURL(_ name: String) -> URL { EngineFixtures.root.appendingPathComponent("images-model/\(name)") }

  @Test("decode + smart_resize + bicubic + patchify reproduce the processor's pixel_values")
  func preprocessing() throws {
    let model = try LanguageModel(reference: EngineFixtures.model("tiny-dense").path)
    let (file, _) = try Self.load("tiny-dense")
    #expect(file.images.count >= 4)
    for entry in file.images {
      let prepared = try model.prepareImage(file: Self.imageURL(entry.file))
      #expect(prepared.width == entry.width && prepared.height == entry.height, "\(entry.file)")
      #expect(prepared.resizedWidth == entry.resized_width && prepared.resizedHeight == entry.resized_height)
      #expect([prepared.grid.t, prepared.grid.h, prepared.grid.w] == entry.grid_thw, "\(entry.file)")
      #expect(prepared.tokenCount == entry.tokens)
      let key = try #require(entry.pixel_values_key)
      let expected = try #require(Self.pixelTensors[key]).floats()
      #expect(prepared.pixelValues.count == expected.count)
      let offByOneLevel = zip(prepared.pixelValues, expected).filter { abs($0 - $1) > 1e-6 }
      #expect(offByOneLevel.allSatisfy { abs($0 - $1) <= 2.0 / 255 + 1e-6 }, "\(entry.file)")
      #expect(offByOneLevel.count * 1000 <= expected.count, "\(entry.file): \(offByOneLevel.count) values differ")
    }
  }

  @Test("vision features match transformers", arguments: ["tiny-dense", "tiny-moe"])
  func features(model name: String) throws {
    let model = try LanguageModel(reference: EngineFixtures.model(name).path)
    let (file, tensors) = try Self.load(name)
    for entry in file.images {
      let prepared = try model.prepareImage(file: Self.imageURL(entry.file))
      let ours = try model.encodeImages([prepared], pool: ComputePool(threadCount: 2)).features
      let expected = try #require(tensors.tensors[entry.features_key]).floats()
      #expect(ours.count == expected.count)
      let worst = zip(ours, expected).map { abs($0 - $1) }.max() ?? .infinity
      #expect(worst <= 1e-4, "\(name)/\(entry.file): max |Δfeature| = \(worst)")
    }
  }

  /// A quantized model (`--quantize`, int8 activations) also runs the vision tower's linear layers as 8-bit weights
  /// with int8 activations: the features stay within 6% (relative RMS) of transformers' fp32 ones (measured 3.0–3.9%
  /// on this 32-wide random tower: 8-bit weight and activation rounding; a packing or scaling bug gives ~100%).
  @Test("int8 vision linears stay close to transformers", arguments: ["tiny-dense"])
  func int8Features(model name: String) throws {
    guard QuantizedActivations.fastest == .int8 else { return }  // the CPU has no int8 dot products
    let model = try LanguageModel(reference: EngineFixtures.model(name).path, quantizeBits: 8, activations: .int8)
    #expect(model.checkpoint.int8Activations)
    let (file, tensors) = try Self.load(name)
    for entry in file.images {
      let prepared = try model.prepareImage(file: Self.imageURL(entry.file))
      let ours = try model.encodeImages([prepared], pool: ComputePool(threadCount: 2)).features
      let expected = try #require(tensors.tensors[entry.features_key]).floats()
      #expect(ours.count == expected.count)
      let error = zip(ours, expected).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
      let scale = expected.reduce(0.0) { $0 + Double($1 * $1) }
      let relative = (error / scale).squareRoot()
      print("\(name)/\(entry.file): int8 vision relative RMS error \(relative)")
      #expect(relative < 0.06, "\(name)/\(entry.file): relative RMS error \(relative)")
    }
  }

  /// `--activations bf16` on a bf16 checkpoint (tiny-gqa's tower is bf16): the vision tower's linear layers and its
  /// attention products run as bf16 dot products, within 1% (relative RMS) of the same tower in exact fp32 (measured
  /// 0.24–0.37%: bf16's 8-bit mantissas); a packing bug gives ~100%, and an unrounded run would be within 1e-5.
  @Test("bf16 vision stays close to the fp32 tower", arguments: ["tiny-gqa"])
  func bf16Features(model name: String) throws {
    guard QuantizedActivations.bfloat16.bf16Prompts else { return }  // the CPU has no bf16 dot products
    let exact = try LanguageModel(reference: EngineFixtures.model(name).path, activations: .float32)
    let bf16 = try LanguageModel(reference: EngineFixtures.model(name).path, activations: .bfloat16)
    #expect(bf16.checkpoint.bf16Activations && !exact.checkpoint.bf16Activations)
    let (file, _) = try Self.load("tiny-dense")
    let pool = ComputePool(threadCount: 2)
    for entry in file.images {
      let expected = try exact.encodeImages([exact.prepareImage(file: Self.imageURL(entry.file))], pool: pool).features
      let ours = try bf16.encodeImages([bf16.prepareImage(file: Self.imageURL(entry.file))], pool: pool).features
      #expect(ours.count == expected.count)
      let error = zip(ours, expected).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
      let scale = expected.reduce(0.0) { $0 + Double($1 * $1) }
      let relative = (error / scale).squareRoot()
      print("\(name)/\(entry.file): bf16 vision relative RMS error \(relative)")
      #expect(relative < 0.01 && relative > 1e-5, "\(name)/\(entry.file): relative RMS error \(relative)")
    }
  }

  @Test("prompts with images: ids, positions, greedy tokens and logits", arguments: ["tiny-dense", "tiny-moe"])
  func generation(model name: String) throws {
    let model = try LanguageModel(reference: EngineFixtures.model(name).path)
    let (file, tensors) = try Self.load(name)
    let pool = ComputePool(threadCount: 2)
    #expect(file.cases.count >= 3)
    for c in file.cases {
      let images = try c.images.map { try model.prepareImage(file: Self.imageURL($0)) }
      let prompt = try model.expandImagePlaceholders(
        model.encodeChat(c.messages, enableThinking: c.enable_thinking), images: images)
      #expect(prompt == c.prompt_ids, "\(name)/\(c.name): prompt ids")

      let positionTensor = try #require(tensors.tensors[c.position_ids_key])
      let count = c.prompt_ids.count
      let positionIDs = (0..<(3 * count)).map {
        positionTensor.data.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)
      }
      let (positions, delta) = try MultimodalPositions.compute(
        tokens: prompt, imageTokenID: model.checkpoint.config.imageTokenID, grids: images.map(\.grid),
        mergeSize: try model.vision?.encoder().config.spatialMergeSize ?? 2)
      #expect(positions.map { Int64($0.t) } == Array(positionIDs[0..<count]), "\(c.name): t positions")
      #expect(positions.map { Int64($0.h) } == Array(positionIDs[count..<(2 * count)]), "\(c.name): h positions")
      #expect(positions.map { Int64($0.w) } == Array(positionIDs[(2 * count)...]), "\(c.name): w positions")
      #expect(delta == c.rope_delta, "\(c.name): rope delta")

      let expected = try #require(tensors.tensors[c.logits_key]).floats()
      let vocabulary = model.checkpoint.config.text.vocabularySize
      var state = model.checkpoint.textModel.makeState()
      var step = 0
      var worst: Float = 0
      let result = try model.generator(pool: pool).generate(
        GenerationRequest(
          promptTokens: prompt, maxTokens: c.greedy_ids.count,
          images: try model.encodeImages(images, pool: pool)),
        state: &state, onToken: { _ in true },
        onLogits: { logits in
          let row = expected[(step * vocabulary)..<((step + 1) * vocabulary)]
          worst = max(worst, zip(logits, row).map { abs($0 - $1) }.max() ?? .infinity)
          step += 1
        })
      #expect(result.tokens == c.greedy_ids, "\(name)/\(c.name): greedy tokens")
      #expect(step == c.greedy_ids.count)
      #expect(worst <= 1e-3, "\(name)/\(c.name): max |Δlogit| = \(worst)")
    }
  }
}
