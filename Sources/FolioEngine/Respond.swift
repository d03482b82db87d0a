import FolioBase
import FolioCodecs
import FolioKernels
import FolioModel
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
  /// Prompt tokens whose state came from ``LanguageModel/prefixCache`` instead of being prefilled.
  public var reusedPromptTokenCount: Int
  public var finishReason: FinishReason
  public var prefillSeconds: Double
  public var decodeSeconds: Double
}

extension LanguageModel {
  /// Answers the conversation `messages` (the model's chat template, generation prompt added) — the call the daemon
  /// makes for every job step. `shouldContinue` is polled between tokens (timeouts, shutdown); returning false
  /// ends generation with `.cancelled`. Reasoning (`<think>…</think>`) is removed from the returned text.
  /// `images` fill the messages' image parts in order (decoded with `limits`). States after the text a prompt shares
  /// with recent prompts and after its images are kept in `prefixCache`, so later jobs start there. Text parts are
  /// text: control tokens spelled inside them (a document about tokenizers, an earlier answer) are neutralized, not
  /// obeyed.
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
    let prefilled = try prefillSharedPrefixes(of: prompt, images: prepared, pool: pool)
    var state = prefilled.state
    let remaining = Array(prompt[prefilled.done...])
    let result = try generator(pool: pool).generate(
      GenerationRequest(
        promptTokens: remaining, maxTokens: options.maxTokens, sampling: options.sampling, stopTokens: stopTokens),
      state: &state
    ) { _ in shouldContinue() }
    return Response(
      text: Self.removingReasoning(tokenizer.decode(result.tokens, skipSpecialTokens: false)),
      promptTokenCount: prompt.count, completionTokenCount: result.tokens.count,
      reusedPromptTokenCount: prefilled.reused, finishReason: result.finishReason,
      prefillSeconds: prefilled.seconds + result.prefillSeconds, decodeSeconds: result.decodeSeconds)
  }

  /// Starts `prompt` (image placeholders expanded for `images`) from the longest prefix saved in `prefixCache` and
  /// prefills it up to its last checkpoint, saving the state there (``prefixCheckpoints(of:)``). Returns the state,
  /// the tokens it covers (the rest is the generator's), how many of them were reused, and the seconds it took.
  func prefillSharedPrefixes(
    of prompt: [Int], images: [PreparedImage], pool: ComputePool
  ) throws -> (state: DecoderState, done: Int, reused: Int, seconds: Double) {
    let fingerprints = images.map { PrefixStateCache.fingerprint($0.pixelValues) }
    var state = checkpoint.textModel.makeState()
    var done = 0
    if let saved = prefixCache.lookup(tokens: prompt, imageFingerprints: fingerprints) {
      state = saved.state
      done = saved.tokens.count
    }
    let reused = done
    var imagesDone = imageCount(in: prompt[..<done])
    let clock = ContinuousClock()
    let start = clock.now
    for cut in prefixCheckpoints(of: prompt) where cut > done {
      let segment = prompt[done..<cut]
      let segmentImages = imageCount(in: segment)
      try prefill(
        segment, images: Array(images[imagesDone..<(imagesDone + segmentImages)]), state: &state, pool: pool)
      done = cut
      imagesDone += segmentImages
      prefixCache.store(
        tokens: Array(prompt[..<cut]), imageFingerprints: Array(fingerprints[..<imagesDone]), state: state)
    }
    return (state, done, reused, start.duration(to: clock.now).seconds)
  }

  /// Where the prompt's state is saved for later jobs: after the text it shares with a recent prompt (up to its
  /// first image: the images themselves differ from job to job), and after its last image. The last token is
  /// always left for the generator, which needs its logits.
  func prefixCheckpoints(of prompt: [Int]) -> [Int] {
    let config = checkpoint.config
    let textEnd = prompt.firstIndex(of: config.visionStartTokenID) ?? prompt.count
    let shared = min(prefixCache.sharedPrefixLength(remembering: prompt), textEnd, prompt.count - 1)
    var cuts = shared >= PrefixStateCache.minimumSharedTokens ? [shared] : []
    if let lastImageToken = prompt.lastIndex(of: config.imageTokenID) {
      // Past the image's `<|vision_end|>`.
      cuts.append(min(lastImageToken + 2, prompt.count - 1))
    }
    return cuts
  }

  /// Image placeholder runs (one per image) in `tokens`.
  func imageCount(in tokens: ArraySlice<Int>) -> Int {
    let id = checkpoint.config.imageTokenID
    return tokens.indices.lazy.filter { index in
      tokens[index] == id && (index == tokens.startIndex || tokens[index - 1] != id)
    }.count
  }

  /// Runs `tokens` through the decoder from `state`; `images` are the images whose placeholders they hold, in order.
  func prefill(
    _ tokens: ArraySlice<Int>, images: [PreparedImage], state: inout DecoderState, pool: ComputePool
  ) throws {
    guard !images.isEmpty else {
      _ = try checkpoint.textModel.forward(tokens: Array(tokens), state: &state, pool: pool)
      return
    }
    let features = try encodeImages(images, pool: pool)
    _ = try checkpoint.textModel.forward(
      tokens: Array(tokens), imageFeatures: features.features, grids: features.grids,
      imageTokenID: features.imageTokenID, mergeSize: features.mergeSize, state: &state, pool: pool)
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
