import FolioBase
import FolioCodecs
import FolioEngine
import FolioKernels
import FolioPipelines
import Foundation

/// One model request of a pipeline step: a prompt, the images it reads (caption/OCR), and generation options.
public struct StepRequest: Sendable {
  /// The task (for messages and for runners that treat tasks differently).
  public var task: StepTask
  /// The user prompt, already rendered (`{text}`, `{language}` filled in).
  public var prompt: String
  /// Image files sent with the prompt, in order (caption/OCR); empty for text steps.
  public var images: [URL]
  /// Generation options from the step.
  public var options: GenerationOptions
  /// Polled between tokens; false stops generation (timeout, shutdown, lost lease).
  public var shouldContinue: @Sendable () -> Bool

  /// Creates a request.
  public init(
    task: StepTask, prompt: String, images: [URL] = [], options: GenerationOptions,
    shouldContinue: @escaping @Sendable () -> Bool = { true }
  ) {
    self.task = task
    self.prompt = prompt
    self.images = images
    self.options = options
    self.shouldContinue = shouldContinue
  }
}

/// What one model request produced, with the numbers the results table records.
public struct StepOutput: Sendable, Hashable {
  /// The answer (reasoning removed).
  public var text: String
  /// Prompt tokens.
  public var promptTokens: Int
  /// Generated tokens.
  public var completionTokens: Int
  /// `stop`, `length` or `cancelled`.
  public var finishReason: String
  /// Prefill time.
  public var promptDuration: Duration
  /// Decode time.
  public var generationDuration: Duration
  /// Prompt tokens the engine did not prefill: it continued from the state saved after a prefix an earlier request
  /// shared (the step's instructions, or the same image).
  public var reusedPromptTokens: Int

  /// Creates an output.
  public init(
    text: String, promptTokens: Int, completionTokens: Int, finishReason: String, promptDuration: Duration,
    generationDuration: Duration, reusedPromptTokens: Int = 0
  ) {
    self.reusedPromptTokens = reusedPromptTokens
    self.text = text
    self.promptTokens = promptTokens
    self.completionTokens = completionTokens
    self.finishReason = finishReason
    self.promptDuration = promptDuration
    self.generationDuration = generationDuration
  }
}

/// The one door from the daemon to a model: every step's request goes through ``run(_:)``. The real implementation
/// is ``LanguageModelRunner``; tests may substitute a double.
public protocol StepRunner: Sendable {
  /// The model id recorded with every result and translation-memory entry.
  var modelID: String { get }
  /// Counts the tokens of a text as the model's tokenizer does (segmentation budget).
  func countTokens(_ text: String) -> Int
  /// Runs one request. Throws ``FolioError`` with a stable code (`vision_unavailable`, `cancelled`, …).
  func run(_ request: StepRequest) async throws -> StepOutput
}

/// The real ``StepRunner``: a ``LanguageModel`` loaded once and kept resident. Requests run on a thread of their
/// own (generation is CPU-bound and synchronous), so the daemon's other tasks (heartbeats, the watcher, signals)
/// keep running.
public final class LanguageModelRunner: StepRunner {
  /// THE switch for image steps: when false, caption/OCR jobs fail with `vision_unavailable` (a checkpoint without
  /// a vision tower also fails that way). The engine's `respond(to:images:…)` is called in
  /// ``respondWithImages(_:)``; nothing else in the daemon knows about images.
  public static let supportsImages = true

  /// The loaded model.
  public let model: LanguageModel
  /// The compute threads.
  public let pool: ComputePool
  public let modelID: String

  /// The image limits (`max_pixels`, `max_file_bytes`) the engine decodes with.
  public let imageLimits: ImageLimits

  /// Wraps a loaded model.
  public init(model: LanguageModel, modelID: String, threads: Int? = nil, imageLimits: ImageLimits = .default) {
    self.model = model
    self.pool = ComputePool(threadCount: threads)
    self.modelID = modelID
    self.imageLimits = imageLimits
  }

  public func countTokens(_ text: String) -> Int { model.tokenizer.encode(text, parseSpecialTokens: false).count }

  public func run(_ request: StepRequest) async throws -> StepOutput {
    if !request.images.isEmpty {
      guard Self.supportsImages else {
        throw FolioError(
          .visionUnavailable,
          "\(request.task.rawValue) needs the vision path, which this build of Folio does not have yet; the job can "
            + "be retried (`folio jobs retry`) once a build with image support is installed")
      }
      return try await OffThread.run { try self.respondWithImages(request) }
    }
    return try await OffThread.run { try self.respondToText(request) }
  }

  func options(_ request: StepRequest) -> ResponseOptions {
    let defaults = model.checkpoint.generationDefaults
    let temperature = request.options.temperature
    return ResponseOptions(
      maxTokens: request.options.maxTokens,
      sampling: SamplingParameters(
        temperature: temperature, topK: temperature > 0 ? defaults.topK : nil,
        topP: temperature > 0 ? defaults.topP : nil, minP: temperature > 0 ? defaults.minP : nil,
        repetitionPenalty: defaults.repetitionPenalty, presencePenalty: nil, seed: nil),
      enableThinking: request.options.thinking)
  }

  func respondToText(_ request: StepRequest) throws -> StepOutput {
    let response = try model.respond(
      to: [ChatMessage(role: .user, content: request.prompt)], options: options(request), pool: pool,
      shouldContinue: request.shouldContinue)
    return Self.output(response)
  }

  /// The image call: the images first, then the prompt, in one user turn (the order Qwen3.5's template expects).
  func respondWithImages(_ request: StepRequest) throws -> StepOutput {
    guard model.checkpoint.config.vision != nil else {
      throw FolioError(
        .visionUnavailable,
        "the model \(modelID) has no vision tower, so it cannot \(request.task.rawValue) images; use a Qwen3.5 "
          + "checkpoint with its vision weights")
    }
    let parts = request.images.map { _ in ChatMessage.Part.image } + [.text(request.prompt)]
    let response = try model.respond(
      to: [ChatMessage(role: .user, parts: parts)], images: request.images, limits: imageLimits,
      options: options(request), pool: pool, shouldContinue: request.shouldContinue)
    return Self.output(response)
  }

  static func output(_ response: Response) -> StepOutput {
    StepOutput(
      text: response.text, promptTokens: response.promptTokenCount, completionTokens: response.completionTokenCount,
      finishReason: response.finishReason.rawValue,
      promptDuration: .milliseconds(Int64(response.prefillSeconds * 1000)),
      generationDuration: .milliseconds(Int64(response.decodeSeconds * 1000)),
      reusedPromptTokens: response.reusedPromptTokenCount)
  }
}

/// Runs blocking work on a new thread and resumes the caller when it is done.
enum OffThread {
  static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
      let thread = Thread {
        do {
          continuation.resume(returning: try body())
        } catch {
          continuation.resume(throwing: error)
        }
      }
      // Generation allocates deep call stacks in the kernels; give the thread the main thread's default 8 MiB.
      thread.stackSize = 8 << 20
      thread.start()
    }
  }
}
