import FolioBase
import FolioKernels
import FolioModel
import Foundation

/// Why generation ended.
public enum FinishReason: String, Sendable, Codable {
  /// A stop token was produced (it is not part of the output text).
  case stop
  /// The token limit was reached.
  case length
  /// The caller cancelled between tokens.
  case cancelled
}

/// One generated token, streamed to the caller as soon as it is chosen.
public struct GeneratedToken: Sendable {
  public var id: Int
  /// Top log-probabilities from the raw logits (before any sampling transform); empty unless requested.
  public var topLogprobs: [TokenLogprob]
  /// True for the stop token that ended generation.
  public var isStop: Bool
}

/// What a generation run produced.
public struct GenerationResult: Sendable {
  public var tokens: [Int]
  public var topLogprobs: [[TokenLogprob]]
  public var finishReason: FinishReason
  public var prefillSeconds: Double
  public var decodeSeconds: Double
  public var promptTokenCount: Int
}

/// A generation request over already-tokenized input.
public struct GenerationRequest: Sendable {
  public var promptTokens: [Int]
  public var maxTokens: Int
  public var sampling: SamplingParameters
  public var stopTokens: Set<Int>
  /// Top log-probabilities to report per generated token (0: none).
  public var logprobCount: Int
  /// Vision features for the prompt's `<|image_pad|>` runs (already expanded in `promptTokens`).
  public var images: ImageFeatures?

  public init(
    promptTokens: [Int], maxTokens: Int, sampling: SamplingParameters = .init(), stopTokens: Set<Int> = [],
    logprobCount: Int = 0, images: ImageFeatures? = nil
  ) {
    self.images = images
    self.promptTokens = promptTokens
    self.maxTokens = maxTokens
    self.sampling = sampling
    self.stopTokens = stopTokens
    self.logprobCount = logprobCount
  }
}

/// Runs the decode loop: prefill the prompt, then choose, stream and feed back one token at a time.
public struct Generator: Sendable {
  public let model: TextModel
  public let pool: ComputePool

  public init(model: TextModel, pool: ComputePool) {
    self.model = model
    self.pool = pool
  }

  /// Generates from `request`, calling `onToken` for each token; return `false` from it to cancel.
  /// Also stops if the surrounding task is cancelled. The stop token is reported but not included in `tokens`.
  public func generate(
    _ request: GenerationRequest, state: inout DecoderState, onToken: (GeneratedToken) -> Bool = { _ in true }
  ) throws -> GenerationResult {
    try request.sampling.validate()
    guard request.maxTokens >= 0 else { throw FolioError(.invalidArgument, "max tokens must be ≥ 0.") }
    guard !request.promptTokens.isEmpty else { throw FolioError(.invalidArgument, "the prompt is empty.") }
    var sampler = Sampler(request.sampling)
    let clock = ContinuousClock()
    let prefillStart = clock.now
    var logits: [Float]
    if let images = request.images {
      logits = try model.forward(
        tokens: request.promptTokens, imageFeatures: images.features, grids: images.grids,
        imageTokenID: images.imageTokenID, mergeSize: images.mergeSize, state: &state, pool: pool)
    } else {
      logits = try model.forward(tokens: request.promptTokens, state: &state, pool: pool)
    }
    let prefill = prefillStart.duration(to: clock.now)
    var history = request.promptTokens
    var tokens: [Int] = []
    var allLogprobs: [[TokenLogprob]] = []
    var finish = FinishReason.length
    let decodeStart = clock.now
    while tokens.count < request.maxTokens {
      if Task.isCancelled {
        finish = .cancelled
        break
      }
      let id = sampler.next(logits: logits, history: history, generated: tokens)
      let logprobs = Sampler.topLogprobs(logits, count: request.logprobCount)
      let isStop = request.stopTokens.contains(id)
      let keepGoing = onToken(GeneratedToken(id: id, topLogprobs: logprobs, isStop: isStop))
      if isStop {
        finish = .stop
        break
      }
      tokens.append(id)
      allLogprobs.append(logprobs)
      history.append(id)
      if !keepGoing {
        finish = .cancelled
        break
      }
      if tokens.count == request.maxTokens { break }
      logits = try model.forward(tokens: [id], state: &state, pool: pool)
    }
    let decode = decodeStart.duration(to: clock.now)
    return GenerationResult(
      tokens: tokens, topLogprobs: allLogprobs, finishReason: finish, prefillSeconds: prefill.seconds,
      decodeSeconds: decode.seconds, promptTokenCount: request.promptTokens.count)
  }
}

extension Duration {
  /// The duration in seconds as a `Double`.
  public var seconds: Double {
    let (s, attoseconds) = components
    return Double(s) + Double(attoseconds) * 1e-18
  }
}
