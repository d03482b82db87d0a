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
  /// `images` fill the messages' image parts in order (decoded with `limits`).
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
    let prompt = try expandImagePlaceholders(
      encodeChat(messages, enableThinking: options.enableThinking), images: prepared)
    let features = prepared.isEmpty ? nil : try encodeImages(prepared, pool: pool)
    var state = checkpoint.textModel.makeState()
    let result = try generator(pool: pool).generate(
      GenerationRequest(
        promptTokens: prompt, maxTokens: options.maxTokens, sampling: options.sampling, stopTokens: stopTokens,
        images: features),
      state: &state
    ) { _ in shouldContinue() }
    return Response(
      text: Self.removingReasoning(tokenizer.decode(result.tokens, skipSpecialTokens: false)),
      promptTokenCount: prompt.count, completionTokenCount: result.tokens.count, finishReason: result.finishReason,
      prefillSeconds: result.prefillSeconds, decodeSeconds: result.decodeSeconds)
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
