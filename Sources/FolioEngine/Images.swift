import FolioBase
import FolioCodecs
import FolioKernels
import FolioModel
import Foundation
import Synchronization

/// An image decoded, resized and patchified for the vision encoder (qwen35.md §4.1).
public struct PreparedImage: Sendable {
  /// Where the image came from (a path, for reports).
  public var source: String
  /// Upright size after EXIF orientation.
  public var width: Int
  public var height: Int
  /// Size after `smart_resize`.
  public var resizedWidth: Int
  public var resizedHeight: Int
  public var grid: PatchGrid
  /// `<|image_pad|>` tokens the image occupies in the prompt.
  public var tokenCount: Int
  /// `[patches, 1536]` normalised pixel values in 2×2-block patch order.
  public var pixelValues: [Float]
}

/// The vision half of a loaded checkpoint: preprocessing settings and the encoder.
///
/// The encoder is built on first use (and, for quantized models, quantized then), so text-only work never holds the
/// vision tower in memory.
public final class VisionComponents: Sendable {
  public let preprocessor: VisionPreprocessor
  private let build: @Sendable () throws -> VisionEncoder
  private let built = Mutex<VisionEncoder?>(nil)

  init(preprocessor: VisionPreprocessor, build: @escaping @Sendable () throws -> VisionEncoder) {
    self.preprocessor = preprocessor
    self.build = build
  }

  /// The vision encoder, loaded on the first call (later calls return the same one).
  public func encoder() throws -> VisionEncoder {
    try built.withLock { cached in
      if let cached { return cached }
      let encoder = try build()
      cached = encoder
      return encoder
    }
  }

  /// The vision tower of `checkpoint`, or `nil` when it has none (text-only conversions).
  static func load(_ checkpoint: Checkpoint) throws -> VisionComponents? {
    guard let config = checkpoint.config.vision else { return nil }
    guard
      checkpoint.store["model.visual.patch_embed.proj.weight"] != nil
        || checkpoint.store["vision_tower.patch_embed.proj.weight"] != nil
    else { return nil }
    let url = checkpoint.folder.appendingPathComponent("preprocessor_config.json")
    let settings =
      FileManager.default.fileExists(atPath: url.path)
      ? try VisionPreprocessorConfiguration.load(from: url) : VisionPreprocessorConfiguration.qwen35
    return VisionComponents(preprocessor: VisionPreprocessor(configuration: settings)) {
      try VisionEncoder(
        store: checkpoint.store, config: config, quantization: checkpoint.config.quantization,
        int8Linears: checkpoint.int8Activations, bf16Linears: checkpoint.bf16Activations)
    }
  }
}

extension LanguageModel {
  /// Decodes and preprocesses the image file at `url`, enforcing `limits` before decoding.
  public func prepareImage(file url: URL, limits: ImageLimits = .default) throws -> PreparedImage {
    try requireVision()
    return try prepareImage(ImageDecoder.decode(file: url, limits: limits), source: url.path)
  }

  /// Preprocesses an image already decoded (upright RGB); `source` names it in reports.
  public func prepareImage(_ image: RGBImage, source: String) throws -> PreparedImage {
    let vision = try requireVision()
    let prepared = try vision.preprocessor.preprocess(image)
    return PreparedImage(
      source: source, width: image.width, height: image.height, resizedWidth: prepared.resizedWidth,
      resizedHeight: prepared.resizedHeight,
      grid: PatchGrid(t: prepared.grid.t, h: prepared.grid.h, w: prepared.grid.w), tokenCount: prepared.tokenCount,
      pixelValues: prepared.pixelValues)
  }

  /// The vision components, or the `vision_unavailable` error for a text-only checkpoint.
  @discardableResult func requireVision() throws -> VisionComponents {
    guard let vision else {
      throw FolioError(
        .visionUnavailable,
        "\(checkpoint.folder.path) has no vision tower (text-only checkpoint); use a full Qwen3.5 checkpoint for images."
      )
    }
    return vision
  }

  /// Replaces the i-th single `<|image_pad|>` of `tokens` by `images[i].tokenCount` copies.
  public func expandImagePlaceholders(_ tokens: [Int], images: [PreparedImage]) throws -> [Int] {
    let pad = checkpoint.config.imageTokenID
    let placeholders = tokens.filter { $0 == pad }.count
    guard placeholders == images.count else {
      throw FolioError(
        .invalidArgument,
        "the prompt has \(placeholders) image placeholders (<|vision_start|><|image_pad|><|vision_end|>) but \(images.count) images were given."
      )
    }
    var expanded: [Int] = []
    expanded.reserveCapacity(tokens.count + images.reduce(0) { $0 + $1.tokenCount })
    var next = 0
    for token in tokens {
      if token == pad {
        expanded.append(contentsOf: repeatElement(pad, count: images[next].tokenCount))
        next += 1
      } else {
        expanded.append(token)
      }
    }
    return expanded
  }

  /// Runs the vision encoder over `images` (in prompt order) and packages the features for generation.
  public func encodeImages(_ images: [PreparedImage], pool: ComputePool) throws -> ImageFeatures {
    let encoder = try requireVision().encoder()
    let features = try encoder.encode(
      pixelValues: images.flatMap(\.pixelValues), grids: images.map(\.grid), pool: pool)
    return ImageFeatures(
      features: features, grids: images.map(\.grid), imageTokenID: checkpoint.config.imageTokenID,
      mergeSize: encoder.config.spatialMergeSize)
  }
}

/// Encoded images for a prompt: the rows that replace its `<|image_pad|>` runs, in order.
public struct ImageFeatures: Sendable {
  public var features: [Float]
  public var grids: [PatchGrid]
  public var imageTokenID: Int
  public var mergeSize: Int
}
