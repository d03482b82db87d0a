import FolioBase
import Foundation

/// The kind of token mixer in a decoder layer.
public enum LayerKind: String, Sendable, Codable {
  /// Gated DeltaNet (linear attention with a recurrent state).
  case linearAttention = "linear_attention"
  /// Gated full (softmax) attention with a KV cache.
  case fullAttention = "full_attention"
}

/// Rotary settings of the text model (`rope_parameters`, qwen35.md §3.1).
public struct RopeParameters: Sendable, Equatable {
  public var theta: Double
  public var partialRotaryFactor: Double
  /// Frequencies owned by the t, h and w position rows (sums to rotary dim / 2).
  public var mropeSection: [Int]
}

/// The text decoder's configuration (`text_config` of `config.json`, qwen35.md §1.1).
public struct TextConfiguration: Sendable, Equatable {
  public var vocabularySize: Int
  public var hiddenSize: Int
  public var intermediateSize: Int
  public var layerCount: Int
  public var attentionHeads: Int
  public var keyValueHeads: Int
  public var headDimension: Int
  public var rmsNormEpsilon: Float
  public var tieWordEmbeddings: Bool
  public var rope: RopeParameters
  public var convKernelSize: Int
  public var linearKeyHeadDimension: Int
  public var linearValueHeadDimension: Int
  public var linearKeyHeads: Int
  public var linearValueHeads: Int
  public var layerKinds: [LayerKind]
  public var hiddenActivation: String
  /// Mixture-of-experts settings; `nil` for dense models.
  public var experts: ExpertConfiguration?

  /// Width of the rotated part of each attention head.
  public var rotaryDimension: Int { Int(Double(headDimension) * rope.partialRotaryFactor) }
  /// Channels of the Gated DeltaNet input projection and convolution: `[Q | K | V]`.
  public var linearConvDimension: Int {
    2 * linearKeyHeads * linearKeyHeadDimension + linearValueHeads * linearValueHeadDimension
  }
}

/// Sparse mixture-of-experts settings (`qwen3_5_moe`).
public struct ExpertConfiguration: Sendable, Equatable {
  public var expertCount: Int
  public var expertsPerToken: Int
  public var expertIntermediateSize: Int
  public var sharedExpertIntermediateSize: Int
}

/// A Qwen3.5 checkpoint's `config.json`: text decoder, optional vision tower, special token ids.
public struct ModelConfiguration: Sendable, Equatable {
  /// `qwen3_5`, `qwen3_5_moe`, or a text-only `qwen3_5_text` / `qwen3_5_moe_text`.
  public var modelType: String
  public var text: TextConfiguration
  /// The vision tower, if the checkpoint has one.
  public var vision: VisionConfiguration?
  public var imageTokenID: Int
  public var videoTokenID: Int
  public var visionStartTokenID: Int
  public var visionEndTokenID: Int
  /// End-of-sequence ids declared in `config.json` (text_config or top level).
  public var eosTokenIDs: [Int]
  /// MLX affine quantization settings of an MLX quantized folder.
  public var quantization: QuantizationSettings?

  /// Model types Folio runs.
  public static let supportedModelTypes: Set<String> = ["qwen3_5", "qwen3_5_moe", "qwen3_5_text", "qwen3_5_moe_text"]

  /// Reads and validates `config.json` at `url`.
  public static func load(from url: URL) throws -> ModelConfiguration {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      if !FileManager.default.fileExists(atPath: url.path) {
        throw FolioError(.fileNotFound, "\(url.path): missing; a Hugging Face model folder has a config.json.")
      }
      throw FolioError(.fileUnreadable, "\(url.path): cannot read.", cause: error)
    }
    guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
      throw FolioError(.invalidConfig, "\(url.path): not a JSON object.")
    }
    return try parse(object, source: url.path)
  }

  /// Builds a configuration from a decoded `config.json` object; `source` names the file in errors.
  public static func parse(_ root: [String: Any], source: String) throws -> ModelConfiguration {
    let reader = JSONReader(source: source)
    let modelType = try reader.string(root, "model_type")
    guard supportedModelTypes.contains(modelType) else {
      throw FolioError(
        .unsupportedModel,
        "\(source): model_type '\(modelType)' is not a Qwen3.5 model; Folio runs \(supportedModelTypes.sorted().joined(separator: ", "))."
      )
    }
    let textObject = (root["text_config"] as? [String: Any]) ?? root
    let text = try parseText(textObject, reader: reader.nested("text_config"), isMoE: modelType.contains("moe"))
    var eos: [Int] = []
    for candidate in [textObject["eos_token_id"], root["eos_token_id"]] {
      if let id = (candidate as? NSNumber)?.intValue { eos.append(id) }
      if let ids = candidate as? [Any] { eos += ids.compactMap { ($0 as? NSNumber)?.intValue } }
    }
    var tied = text
    if let top = root["tie_word_embeddings"] as? Bool, root["text_config"] != nil { tied.tieWordEmbeddings = top }
    return ModelConfiguration(
      modelType: modelType, text: tied, vision: try VisionConfiguration.parse(root, source: source),
      imageTokenID: reader.int(root, "image_token_id", default: 248056),
      videoTokenID: reader.int(root, "video_token_id", default: 248057),
      visionStartTokenID: reader.int(root, "vision_start_token_id", default: 248053),
      visionEndTokenID: reader.int(root, "vision_end_token_id", default: 248054),
      eosTokenIDs: Array(Set(eos)).sorted(), quantization: QuantizationSettings.parse(root))
  }

  private static func parseText(_ t: [String: Any], reader: JSONReader, isMoE: Bool) throws -> TextConfiguration {
    let layerCount = try reader.positiveInt(t, "num_hidden_layers")
    var kinds: [LayerKind]
    if let names = t["layer_types"] as? [String] {
      kinds = try names.enumerated().map { index, name in
        guard let kind = LayerKind(rawValue: name) else {
          throw FolioError(
            .invalidConfig,
            "\(reader.source): layer_types[\(index)] is '\(name)'; expected 'linear_attention' or 'full_attention'.")
        }
        return kind
      }
      guard kinds.count == layerCount else {
        throw FolioError(
          .invalidConfig,
          "\(reader.source): layer_types lists \(kinds.count) layers but num_hidden_layers is \(layerCount).")
      }
    } else {
      // qwen35.md §1.1: without layer_types, layer i is full attention iff (i+1) % interval == 0.
      let interval = reader.int(t, "full_attention_interval", default: 4)
      guard interval > 0 else {
        throw FolioError(.invalidConfig, "\(reader.source): full_attention_interval must be positive.")
      }
      kinds = (0..<layerCount).map { ($0 + 1) % interval == 0 ? .fullAttention : .linearAttention }
    }
    let ropeObject = (t["rope_parameters"] as? [String: Any]) ?? (t["rope_scaling"] as? [String: Any]) ?? [:]
    let theta =
      (ropeObject["rope_theta"] as? NSNumber)?.doubleValue ?? (t["rope_theta"] as? NSNumber)?.doubleValue ?? 10_000_000
    let partial =
      (ropeObject["partial_rotary_factor"] as? NSNumber)?.doubleValue
      ?? (t["partial_rotary_factor"] as? NSNumber)?.doubleValue ?? 0.25
    let section = (ropeObject["mrope_section"] as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } ?? [11, 11, 10]
    var experts: ExpertConfiguration?
    if isMoE {
      experts = ExpertConfiguration(
        expertCount: try reader.positiveInt(t, "num_experts"),
        expertsPerToken: try reader.positiveInt(t, "num_experts_per_tok"),
        expertIntermediateSize: try reader.positiveInt(t, "moe_intermediate_size"),
        sharedExpertIntermediateSize: try reader.positiveInt(t, "shared_expert_intermediate_size"))
    }
    let config = TextConfiguration(
      vocabularySize: try reader.positiveInt(t, "vocab_size"),
      hiddenSize: try reader.positiveInt(t, "hidden_size"),
      intermediateSize: isMoE
        ? reader.int(t, "intermediate_size", default: 0) : try reader.positiveInt(t, "intermediate_size"),
      layerCount: layerCount,
      attentionHeads: try reader.positiveInt(t, "num_attention_heads"),
      keyValueHeads: try reader.positiveInt(t, "num_key_value_heads"),
      headDimension: try reader.positiveInt(t, "head_dim"),
      rmsNormEpsilon: Float((t["rms_norm_eps"] as? NSNumber)?.doubleValue ?? 1e-6),
      tieWordEmbeddings: (t["tie_word_embeddings"] as? Bool) ?? false,
      rope: RopeParameters(theta: theta, partialRotaryFactor: partial, mropeSection: section),
      convKernelSize: reader.int(t, "linear_conv_kernel_dim", default: 4),
      linearKeyHeadDimension: reader.int(t, "linear_key_head_dim", default: 128),
      linearValueHeadDimension: reader.int(t, "linear_value_head_dim", default: 128),
      linearKeyHeads: reader.int(t, "linear_num_key_heads", default: 16),
      linearValueHeads: reader.int(t, "linear_num_value_heads", default: 32),
      layerKinds: kinds,
      hiddenActivation: (t["hidden_act"] as? String) ?? "silu",
      experts: experts)
    try validate(config, source: reader.source)
    return config
  }

  private static func validate(_ c: TextConfiguration, source: String) throws {
    func check(_ condition: Bool, _ message: String) throws {
      if !condition { throw FolioError(.invalidConfig, "\(source): \(message)") }
    }
    try check(
      c.attentionHeads % c.keyValueHeads == 0,
      "num_attention_heads (\(c.attentionHeads)) must be a multiple of num_key_value_heads (\(c.keyValueHeads)).")
    try check(
      c.linearValueHeads % c.linearKeyHeads == 0,
      "linear_num_value_heads (\(c.linearValueHeads)) must be a multiple of linear_num_key_heads (\(c.linearKeyHeads))."
    )
    try check(
      c.rotaryDimension % 2 == 0 && c.rotaryDimension <= c.headDimension,
      "partial_rotary_factor gives rotary dim \(c.rotaryDimension) for head_dim \(c.headDimension).")
    try check(c.hiddenActivation == "silu", "hidden_act '\(c.hiddenActivation)' is not supported (Qwen3.5 uses silu).")
    try check(c.convKernelSize >= 1, "linear_conv_kernel_dim must be positive.")
    try check(
      [c.linearKeyHeadDimension, c.linearValueHeadDimension, c.linearKeyHeads, c.linearValueHeads].allSatisfy {
        $0 > 0
      },
      "linear_key_head_dim, linear_value_head_dim, linear_num_key_heads and linear_num_value_heads must be positive.")
    if let e = c.experts {
      try check(
        e.expertsPerToken <= e.expertCount,
        "num_experts_per_tok (\(e.expertsPerToken)) exceeds num_experts (\(e.expertCount)).")
    }
  }
}

/// Typed reads from a decoded JSON object, with errors that name the file and key.
struct JSONReader {
  let source: String
  var path: String = ""

  func nested(_ key: String) -> JSONReader { JSONReader(source: source, path: key + ".") }

  func string(_ o: [String: Any], _ key: String) throws -> String {
    guard let value = o[key] as? String else {
      throw FolioError(.invalidConfig, "\(source): missing string field '\(path)\(key)'.")
    }
    return value
  }

  func positiveInt(_ o: [String: Any], _ key: String) throws -> Int {
    guard let value = (o[key] as? NSNumber)?.intValue, value > 0 else {
      throw FolioError(.invalidConfig, "\(source): field '\(path)\(key)' must be a positive integer.")
    }
    return value
  }

  func int(_ o: [String: Any], _ key: String, default value: Int) -> Int {
    (o[key] as? NSNumber)?.intValue ?? value
  }
}
