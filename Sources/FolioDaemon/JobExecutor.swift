import FolioBase
import FolioPipelines
import FolioStore
import Foundation

/// Why a running job was asked to stop; set from other tasks, read between tokens.
final class JobControl: @unchecked Sendable {
  enum Stop: Sendable, Equatable {
    case timeout, shutdown, leaseLost
  }

  private let lock = NSLock()
  private var stop: Stop?
  let deadline: ContinuousClock.Instant

  init(timeout: Duration) {
    deadline = ContinuousClock.now.advanced(by: timeout)
  }

  /// Asks the job to stop (the first reason wins).
  func request(_ reason: Stop) {
    lock.withLock { if stop == nil { stop = reason } }
  }

  /// Why the job must stop, if it must (the timeout is checked here too).
  var stopReason: Stop? {
    if let reason = lock.withLock({ stop }) { return reason }
    if ContinuousClock.now >= deadline {
      request(.timeout)
      return .timeout
    }
    return nil
  }

  /// For `StepRequest.shouldContinue`.
  var shouldContinue: @Sendable () -> Bool { { [self] in stopReason == nil } }
}

/// Runs one claimed job: builds the prompts for its task, calls the ``StepRunner`` (once per segment where the text is
/// long), and returns the output to record. Translation goes segment by segment through the translation memory, so
/// an interrupted job resumes where it stopped and finished segments are never translated again.
struct JobExecutor {
  let store: Store
  let runner: any StepRunner
  let text: DocumentText
  let maxStepTimeout: Duration

  /// The step of `job` in `pipeline`.
  static func step(of job: Job, in pipeline: Pipeline) throws(FolioError) -> PipelineStep {
    guard let step = pipeline.step(id: job.stepID) else {
      throw FolioError(
        .invalidPipeline,
        "pipeline \(pipeline.name) has no step `\(job.stepID)` any more (it was renamed or removed after the job was "
          + "queued); run `folio reprocess --pipeline \(pipeline.name)` to queue the current steps")
    }
    return step
  }

  /// The effective timeout of a step: its own, capped by the global `max_step_timeout` (lessons row 9).
  func timeout(of step: PipelineStep) -> Duration { min(step.timeout, maxStepTimeout) }

  /// Runs the job and returns what to record.
  func execute(job: Job, document: Document, step: PipelineStep, control: JobControl) async throws -> JobOutput {
    let started = ContinuousClock.now
    var usage = Usage()
    var parameters: [String: JSONValue] = [
      "max_tokens": .int(step.options.maxTokens), "temperature": .double(step.options.temperature),
      "thinking": .bool(step.options.thinking), "timeout_s": .double(timeout(of: step).seconds),
      "input": .string(step.input.description),
    ]
    if let prompt = step.prompt { parameters["prompt"] = .string(prompt) }
    let resultText: String
    switch step.task {
    case .caption, .ocr:
      let path = document.storedPath ?? document.originalPath
      let prompt = step.renderPrompt(text: nil, language: nil)
      let output = try await request(step, prompt: prompt, images: [URL(fileURLWithPath: path)], control: control)
      usage.add(output)
      resultText = output.text
    case .summarize:
      let segments = try await inputSegments(job: job, document: document, step: step)
      parameters["segments"] = .int(segments.count)
      resultText = try await summarize(segments.map(\.text), step: step, control: control, usage: &usage)
    case .translate:
      let segments = try await inputSegments(job: job, document: document, step: step)
      let (text, translated, reused) = try await translate(
        segments, language: job.language, job: job, step: step, control: control, usage: &usage)
      parameters["segments"] = .int(segments.count)
      parameters["segments_translated"] = .int(translated)
      parameters["segments_from_memory"] = .int(reused)
      if !step.glossary.isEmpty { parameters["glossary_terms"] = .int(step.glossary.count) }
      resultText = text
    }
    parameters["finish_reasons"] = .array(usage.finishReasons.sorted().map { .string($0) })
    parameters["requests"] = .int(usage.requests)
    parameters["prompt_tokens_reused"] = .int(usage.reusedPromptTokens)
    return JobOutput(
      text: resultText, language: job.language.isEmpty ? nil : job.language, modelID: runner.modelID,
      parameters: parameters, promptTokens: usage.promptTokens, completionTokens: usage.completionTokens,
      promptDuration: usage.promptDuration, generationDuration: usage.generationDuration,
      totalDuration: started.duration(to: .now))
  }

  struct Usage {
    var promptTokens = 0
    var completionTokens = 0
    var promptDuration: Duration = .zero
    var generationDuration: Duration = .zero
    var finishReasons: Set<String> = []
    var requests = 0
    var reusedPromptTokens = 0

    mutating func add(_ output: StepOutput) {
      promptTokens += output.promptTokens
      reusedPromptTokens += output.reusedPromptTokens
      completionTokens += output.completionTokens
      promptDuration += output.promptDuration
      generationDuration += output.generationDuration
      finishReasons.insert(output.finishReason)
      requests += 1
    }
  }

  /// One model request, with the stop reasons turned into typed errors.
  func request(
    _ step: PipelineStep, prompt: String, images: [URL] = [], control: JobControl
  ) async throws -> StepOutput {
    if let reason = control.stopReason { throw stopError(reason, step: step) }
    let output = try await runner.run(
      StepRequest(
        task: step.task, prompt: prompt, images: images, options: step.options,
        shouldContinue: control.shouldContinue))
    if output.finishReason == "cancelled" || control.stopReason != nil {
      throw stopError(control.stopReason ?? .shutdown, step: step)
    }
    return output
  }

  func stopError(_ reason: JobControl.Stop, step: PipelineStep) -> FolioError {
    switch reason {
    case .timeout:
      FolioError(
        .stepTimeout,
        "step \(step.id) ran past its timeout of \(Int(timeout(of: step).seconds)) s; raise `timeout:` in the "
          + "pipeline (and `max_step_timeout` in folio.yaml), then `folio jobs retry`")
    case .shutdown:
      FolioError(.interrupted, "Folio stopped during step \(step.id); the job was returned to the queue")
    case .leaseLost:
      FolioError(.leaseLost, "the job's lease was lost during step \(step.id); another worker owns it now")
    }
  }

  /// The segments a summarize/translate step reads: the document's own text, or another step's output.
  func inputSegments(job: Job, document: Document, step: PipelineStep) async throws -> [Segment] {
    switch step.input {
    case .document, .image:
      return try await text.documentSegments(document)
    case .ocr, .step:
      guard let dependency = job.dependsOnJobID, let result = try await store.result(jobID: dependency) else {
        throw FolioError(
          .dependencyFailed, "step \(step.id) reads `\(step.input)`, whose result is missing; reprocess the document")
      }
      return try await text.stepSegments(documentID: job.documentID, stepID: result.stepID, text: result.text)
    }
  }

  /// Summarizes the text; a long text is summarized per segment and the partial summaries summarized again.
  func summarize(
    _ segments: [String], step: PipelineStep, control: JobControl, usage: inout Usage
  ) async throws -> String {
    // Stored segments are per paragraph (translation-memory keys); a summary reads as much text per request as fits.
    var packer = text.segmenter
    packer.mergesParagraphs = true
    let pieces = packer.segments(of: segments.joined()).filter {
      !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }
    guard !pieces.isEmpty else { return "" }
    if pieces.count == 1 {
      let output = try await request(step, prompt: step.renderPrompt(text: pieces[0], language: nil), control: control)
      usage.add(output)
      return output.text
    }
    var partials: [String] = []
    for piece in pieces {
      let output = try await request(step, prompt: step.renderPrompt(text: piece, language: nil), control: control)
      usage.add(output)
      partials.append(output.text)
    }
    // The partial summaries together are far shorter than the text; if they still exceed one segment, the first
    // segment's worth is summarized (recursing could take unbounded time on a pathological document).
    let joined = partials.joined(separator: "\n\n")
    let combined = text.segmenter.segments(of: joined).first ?? joined
    let output = try await request(step, prompt: step.renderPrompt(text: combined, language: nil), control: control)
    usage.add(output)
    return output.text
  }

  /// Translates segment by segment through the translation memory; returns the whole translation and how many
  /// segments were translated now and taken from memory.
  func translate(
    _ segments: [Segment], language: String, job: Job, step: PipelineStep, control: JobControl, usage: inout Usage
  ) async throws -> (String, Int, Int) {
    guard !language.isEmpty else {
      throw FolioError(.invalidArgument, "translate job \(job.id ?? 0) has no target language")
    }
    let modelID = runner.modelID
    var memory = try await store.translations(
      sourceHashes: segments.map(\.sourceHash), language: language, modelID: modelID)
    var translatedNow = 0
    let reused = segments.filter { memory[$0.sourceHash] != nil }.count
    // The previous segment (source and translation) goes with each request as context; the memory stays keyed by
    // the segment alone, so context never changes which segments are reused (inbox-lessons, "Scheduled batch work").
    var previous: TranslationPrompt.Passage?
    for segment in segments {
      let core = segment.text.trimmingCharacters(in: .whitespacesAndNewlines)
      guard !core.isEmpty else { continue }
      if let known = memory[segment.sourceHash] {
        previous = TranslationPrompt.Passage(
          source: core, translation: known.translatedText.trimmingCharacters(in: .whitespacesAndNewlines))
        continue
      }
      let prompt = TranslationPrompt.render(
        step.renderPrompt(text: core, language: language), segment: core, language: language,
        glossary: step.glossary, previous: previous)
      let output = try await request(step, prompt: prompt, control: control)
      usage.add(output)
      previous = TranslationPrompt.Passage(
        source: core, translation: output.text.trimmingCharacters(in: .whitespacesAndNewlines))
      // Recorded at once: a crash or shutdown after this point never translates this segment again.
      memory[segment.sourceHash] = try await store.recordTranslation(
        sourceText: segment.text, translatedText: output.text, language: language, modelID: modelID,
        jobID: job.id, promptTokens: output.promptTokens, completionTokens: output.completionTokens,
        duration: output.promptDuration + output.generationDuration)
      translatedNow += 1
    }
    var whole = ""
    for segment in segments {
      let leading = String(segment.text.prefix { $0.isWhitespace || $0.isNewline })
      let trailing = String(String(segment.text.reversed()).prefix { $0.isWhitespace || $0.isNewline }.reversed())
      if let entry = memory[segment.sourceHash] {
        whole += leading + entry.translatedText + (leading.count == segment.text.count ? "" : trailing)
      } else {
        whole += segment.text  // whitespace only
      }
    }
    return (whole, translatedNow, reused)
  }
}

/// The extra parts of a translation request: the glossary terms that occur in the segment and the previous
/// segment with its translation, placed after the step's instructions and before the paragraph that holds the text
/// to translate. The instructions stay first, so every request of a step starts with the same tokens and the engine
/// continues from the state it saved after them (prefix-state reuse) instead of prefilling them again.
enum TranslationPrompt {
  /// A segment and its translation.
  struct Passage: Sendable, Hashable {
    var source: String
    var translation: String
  }

  /// The glossary terms that occur in `segment` (case-insensitively) and have a rendering for `language`.
  static func relevantTerms(_ glossary: [GlossaryTerm], segment: String, language: String) -> [(String, String)] {
    glossary.compactMap { term in
      guard let rendering = term.rendering(for: language),
        segment.range(of: term.source, options: [.caseInsensitive, .diacriticInsensitive]) != nil
      else { return nil }
      return (term.source, rendering)
    }
  }

  /// `prompt` with the glossary and context blocks before the paragraph holding `segment` (before the whole prompt
  /// when the text is not in a paragraph of its own); unchanged when there are neither.
  static func render(
    _ prompt: String, segment: String, language: String, glossary: [GlossaryTerm], previous: Passage?
  ) -> String {
    var head = ""
    let terms = relevantTerms(glossary, segment: segment, language: language)
    if !terms.isEmpty {
      head += "Glossary: always translate these terms exactly as given.\n"
      for (source, rendering) in terms { head += "- \(source) → \(rendering)\n" }
      head += "\n"
    }
    if let previous {
      head += "Context: the passage just before this one, already translated. Do not translate it again.\n"
      head += "Source: \(withoutControlTokens(previous.source))\n"
      head += "Translation: \(withoutControlTokens(previous.translation))\n\n"
    }
    guard !head.isEmpty else { return prompt }
    guard let text = prompt.range(of: segment, options: .backwards),
      let paragraph = prompt[..<text.lowerBound].range(of: "\n\n", options: .backwards)
    else { return head + prompt }
    return String(prompt[..<paragraph.upperBound]) + head + String(prompt[paragraph.upperBound...])
  }

  /// `text` without chat-template control tokens (`<|im_start|>`, `<|image_pad|>`, …): a model's earlier output is
  /// data, and such a token in it would be read as markup by the tokenizer (an image placeholder without an image
  /// fails the request).
  static func withoutControlTokens(_ text: String) -> String {
    text.replacing(/<\|[^|<>\s]{1,40}\|>/, with: "")
  }
}
