import FolioBase
import Foundation

/// The vision tower's configuration (`vision_config` of `config.json`, qwen35.md §1.2).
public struct VisionConfiguration: Sendable, Equatable {
  public var depth: Int
  public var hiddenSize: Int
  public var heads: Int
  public var intermediateSize: Int
  public var inChannels: Int
  public var patchSize: Int
  public var temporalPatchSize: Int
  public var spatialMergeSize: Int
  public var outHiddenSize: Int
  public var positionEmbeddingCount: Int
  public var ropeTheta: Double

  /// Per-head width.
  public var headDimension: Int { hiddenSize / heads }
  /// Values in one flattened patch: `C · Tp · P · P` (1536 for Qwen3.5).
  public var patchValueCount: Int { inChannels * temporalPatchSize * patchSize * patchSize }
  /// Side of the learned position table (48 for 2304 entries).
  public var positionGridSide: Int { Int(Double(positionEmbeddingCount).squareRoot().rounded()) }

  /// Reads `vision_config` from a decoded `config.json`; `nil` when the checkpoint has no vision tower.
  static func parse(_ root: [String: Any], source: String) throws -> VisionConfiguration? {
    guard let v = root["vision_config"] as? [String: Any] else { return nil }
    let reader = JSONReader(source: source, path: "vision_config.")
    let rope = v["rope_parameters"] as? [String: Any]
    let config = VisionConfiguration(
      depth: try reader.positiveInt(v, "depth"),
      hiddenSize: try reader.positiveInt(v, "hidden_size"),
      heads: try reader.positiveInt(v, "num_heads"),
      intermediateSize: try reader.positiveInt(v, "intermediate_size"),
      inChannels: reader.int(v, "in_channels", default: 3),
      patchSize: reader.int(v, "patch_size", default: 16),
      temporalPatchSize: reader.int(v, "temporal_patch_size", default: 2),
      spatialMergeSize: reader.int(v, "spatial_merge_size", default: 2),
      outHiddenSize: try reader.positiveInt(v, "out_hidden_size"),
      positionEmbeddingCount: reader.int(v, "num_position_embeddings", default: 2304),
      ropeTheta: (rope?["rope_theta"] as? NSNumber)?.doubleValue ?? 10_000)
    guard config.hiddenSize % config.heads == 0, config.headDimension % 4 == 0 else {
      throw FolioError(
        .invalidConfig,
        "\(source): vision hidden_size \(config.hiddenSize) must split into heads of a width divisible by 4.")
    }
    let side = config.positionGridSide
    guard side * side == config.positionEmbeddingCount else {
      throw FolioError(.invalidConfig, "\(source): vision num_position_embeddings must be a square number.")
    }
    if let deepstack = v["deepstack_visual_indexes"] as? [Any], !deepstack.isEmpty {
      throw FolioError(.unsupportedModel, "\(source): deepstack_visual_indexes is not empty; Qwen3.5 has no DeepStack.")
    }
    return config
  }
}
