import FolioBase
import FolioKernels
import FolioModel
import FolioTokenizer
import Foundation

/// A checkpoint loaded for use: decoder, tokenizer, chat template and stop tokens, kept resident.
public final class LanguageModel: Sendable {
  public let checkpoint: Checkpoint
  public let tokenizer: Tokenizer
  public let chatTemplate: ChatTemplate
  /// Tokens that end generation: the checkpoint's end tokens and `<|im_end|>`.
  public let stopTokens: Set<Int>
  /// The vision tower and its preprocessing, when the checkpoint has them.
  public let vision: VisionComponents?
  /// States after image prefixes, reused by later questions about the same images.
  public let prefixCache = PrefixStateCache()
  /// Seconds spent loading.
  public let loadSeconds: Double

  /// Resolves `reference` (folder, cache entry or model id) and loads it.
  /// `quantizeBits` (4, 6 or 8) quantizes the decoder's linear layers at load; `activations` picks how quantized
  /// layers multiply.
  public init(
    reference: String, locator: ModelLocator = ModelLocator(), quantizeBits: Int? = nil,
    activations: QuantizedActivations = .fastest
  ) throws {
    let clock = ContinuousClock()
    let start = clock.now
    let folder = try locator.resolve(reference)
    checkpoint = try Checkpoint(folder: folder, quantizeBits: quantizeBits, activations: activations)
    tokenizer = try Tokenizer(folder: folder)
    chatTemplate = ChatTemplate.load(folder: folder)
    var stops = Set(checkpoint.config.eosTokenIDs + checkpoint.generationDefaults.eosTokenIDs)
    if let imEnd = tokenizer.id(forToken: "<|im_end|>") { stops.insert(imEnd) }
    stopTokens = stops
    vision = try VisionComponents.load(checkpoint)
    loadSeconds = start.duration(to: clock.now).seconds
  }

  /// A generator over this model's decoder.
  public func generator(pool: ComputePool) -> Generator { Generator(model: checkpoint.textModel, pool: pool) }

  /// Token ids for a chat conversation rendered with the checkpoint's template.
  public func encodeChat(_ messages: [ChatMessage], enableThinking: Bool? = nil) -> [Int] {
    tokenizer.encode(chatTemplate.render(messages, addGenerationPrompt: true, enableThinking: enableThinking))
  }
}
