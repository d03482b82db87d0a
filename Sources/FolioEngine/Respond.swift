import FolioBase
import FolioCodecs
import FolioKernels
import Foundation

/// Options for one chat answer.
public struct ResponseOptions: Sendable, Equatable {
  public var maxTokens: Int
  public var sampling: SamplingParameters
  /// Open a reasoning block; `nil` takes the template's default.
  public var enableThinking: Bool?

  public init(maxTokens: Int = 512, sampling: SamplingParameters = .init(), enableThinking: Bool? = false) {
    self.maxTokens = maxTokens
    self.sampling = sampling
    self.enableThinking = enableThinking
  }
}

/// A finished chat answer with the numbers the results database records.
public struct Response: Sendable {
  public var text: String
  public var promptTokenCount: Int
  public var completionTokenCount: Int
  public var finishReason: FinishReason
  public var prefillSeconds: Double
  public var decodeSeconds: Double
}

extension LanguageModel {
  /// Answers the conversation `messages` (the model's chat template, generation prompt added) — the call the daemon
  /// makes for every job step. `shouldContinue` is polled between tokens (timeouts, shutdown); returning false
  /// ends generation with `.cancelled`. Reasoning (`<think>…</think>`) is removed from the returned text.
  /// `images` fill the messages' image parts in order (decoded with `limits`). The state after the images is kept
  /// in `prefixCache`, so the next question about the same images starts there. Text parts are text: control tokens
  /// spelled inside them (a document about tokenizers, an earlier answer) are neutralized, not obeyed.
  public func respond(
    to messages: [ChatMessage], images: [URL] = [], limits: ImageLimits = .default,
    options: ResponseOptions = .init(), pool: ComputePool, shouldContinue: @escaping () -> Bool = { true }
  ) throws -> Response {
    let placeholders = messages.reduce(0) { $0 + $1.imageCount }
    guard placeholders == images.count else {
      throw FolioError(
        .invalidArgument, "the messages have \(placeholders) image parts but \(images.count) images were given.")
    }
    let prepared = try images.map { try prepareImage(file: $0, limits: limits) }
    let literal = messages.map { message in
      var message = message
      message.parts = message.parts.map { part in
        if case .text(let text) = part { .text(tokenizer.neutralizingAddedTokens(in: text)) } else { part }
      }
      message.reasoning = message.reasoning.map { tokenizer.neutralizingAddedTokens(in: $0) }
      return message
    }
    let prompt = try expandImagePlaceholders(
      encodeChat(literal, enableThinking: options.enableThinking), images: prepared)
    var state = checkpoint.textModel.makeState()
    var remaining = prompt
    var prefillSeconds = 0.0
    if !prepared.isEmpty {
      // The prompt up to the last image's end is shared by every step on these images: reuse or save its state.
      let fingerprints = prepared.map { PrefixStateCache.fingerprint($0.pixelValues) }
      let cut = (prompt.lastIndex(of: checkpoint.config.imageTokenID) ?? 0) + 2
      if let saved = prefixCache.lookup(tokens: prompt, imageFingerprints: fingerprints),
        saved.tokens.count >= cut - 1
      {
        state = saved.state
        remaining = Array(prompt[saved.tokens.count...])
      } else {
        let clock = ContinuousClock()
        let start = clock.now
        let prefix = Array(prompt[..<min(cut, prompt.count - 1)])
        let features = try encodeImages(prepared, pool: pool)
        _ = try checkpoint.textModel.forward(
          tokens: prefix, imageFeatures: features.features, grids: features.grids,
          imageTokenID: features.imageTokenID, mergeSize: features.mergeSize, state: &state, pool: pool)
        prefixCache.store(tokens: prefix, imageFingerprints: fingerprints, state: state)
        remaining = Array(prompt[prefix.count...])
        prefillSeconds = start.duration(to: clock.now).seconds
      }
    }
    let result = try generator(pool: pool).generate(
      GenerationRequest(
        promptTokens: remaining, maxTokens: options.maxTokens, sampling: options.sampling, stopTokens: stopTokens),
      state: &state
    ) { _ in shouldContinue() }
    return Response(
      text: Self.removingReasoning(tokenizer.decode(result.tokens, skipSpecialTokens: false)),
      promptTokenCount: prompt.count, completionTokenCount: result.tokens.count, finishReason: result.finishReason,
      prefillSeconds: prefillSeconds + result.prefillSeconds, decodeSeconds: result.decodeSeconds)
  }

  /// The answer without its reasoning block and without special tokens' text.
  static func removingReasoning(_ text: String) -> String {
    var answer = text
    if let close = answer.range(of: "</think>") { answer = String(answer[close.upperBound...]) }
    for special in ["<think>", "<|im_end|>", "<|endoftext|>"] {
      answer = answer.replacingOccurrences(of: special, with: "")
    }
    return answer.trimmingCharacters(in: .whitespacesAndNewlines)
  }
}
