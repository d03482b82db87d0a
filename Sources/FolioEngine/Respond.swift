import FolioBase
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
  public func respond(
    to messages: [ChatMessage], options: ResponseOptions = .init(), pool: ComputePool,
    shouldContinue: @escaping () -> Bool = { true }
  ) throws -> Response {
    let images = messages.reduce(0) { $0 + $1.imageCount }
    guard images == 0 else {
      throw FolioError(.invalidArgument, "this call takes text only; pass images through respond(to:images:…).")
    }
    let prompt = encodeChat(messages, enableThinking: options.enableThinking)
    var state = checkpoint.textModel.makeState()
    let result = try generator(pool: pool).generate(
      GenerationRequest(promptTokens: prompt, maxTokens: options.maxTokens, sampling: options.sampling, stopTokens: stopTokens),
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
    for special in ["<think>", "<|im_end|>", "<|endoftext|>"] { answer = answer.replacingOccurrences(of: special, with: "") }
    return answer.trimmingCharacters(in: .whitespacesAndNewlines)
  }
}
