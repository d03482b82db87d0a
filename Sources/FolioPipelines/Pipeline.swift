import Foundation

/// A validated pipeline from `pipelines/*.yaml`: which documents it applies to and the ordered steps run on each.
///
/// Build one with ``PipelineLoader``; the loader guarantees the invariants documented on each property
/// (unique step ids, inputs that name earlier steps, translate steps with at least one language, …).
public struct Pipeline: Sendable, Hashable {
  /// Unique name across all pipeline files (`[a-z0-9][a-z0-9_-]*`); recorded on every job and result.
  public var name: String
  /// Version recorded with every result, so results of an older definition can be selected for reprocessing.
  public var version: Int
  /// Free text shown by `folio pipelines list`.
  public var description: String
  /// Disabled pipelines are loaded and validated but never match documents and never fire.
  public var isEnabled: Bool
  /// Which documents the pipeline applies to.
  public var match: DocumentMatch
  /// Steps in declaration order; a step's `input` only names earlier steps.
  public var steps: [PipelineStep]
  /// Present for scheduled batch pipelines (cron + target set); nil for inbox pipelines.
  public var schedule: PipelineSchedule?
  /// The file the pipeline was loaded from, for messages.
  public var sourceFile: String

  /// Creates a pipeline. Prefer ``PipelineLoader``, which validates.
  public init(
    name: String, version: Int, description: String = "", isEnabled: Bool = true,
    match: DocumentMatch = DocumentMatch(), steps: [PipelineStep], schedule: PipelineSchedule? = nil,
    sourceFile: String = ""
  ) {
    self.name = name
    self.version = version
    self.description = description
    self.isEnabled = isEnabled
    self.match = match
    self.steps = steps
    self.schedule = schedule
    self.sourceFile = sourceFile
  }

  /// Whether this pipeline runs on documents arriving through the inbox or `folio add` (enabled, not scheduled).
  public var isInboxPipeline: Bool { isEnabled && schedule == nil }

  /// The step with the given id.
  public func step(id: String) -> PipelineStep? { steps.first { $0.id == id } }

  /// The id of the step whose output `step` reads (`input: ocr` resolves to the pipeline's first `ocr` step before
  /// it), or nil when it reads the document or the image. The daemon queues the step as depending on that one.
  public func inputStepID(of step: PipelineStep) -> String? {
    switch step.input {
    case .document, .image: return nil
    case .step(let id): return id
    case .ocr:
      let index = steps.firstIndex { $0.id == step.id } ?? steps.endIndex
      return steps[..<index].first { $0.task == .ocr }?.id
    }
  }

  /// Whether an inbox document is processed by this pipeline: enabled, unscheduled, and matched.
  public func applies(to kind: DocumentKind, set: String, relativePath: String) -> Bool {
    isInboxPipeline && match.matches(kind: kind, set: set, relativePath: relativePath)
  }
}

/// The kinds of document Folio recognises (issue 4: PNG/JPEG images by magic bytes, UTF-8 `.txt`/`.md` text).
public enum DocumentKind: String, Sendable, Hashable, CaseIterable, Codable {
  /// A PNG or JPEG image.
  case image
  /// A UTF-8 text document.
  case text
}

/// The model tasks a step can run.
public enum StepTask: String, Sendable, Hashable, CaseIterable, Codable {
  /// Describe an image.
  case caption
  /// Transcribe the text visible in an image.
  case ocr
  /// Summarize a text.
  case summarize
  /// Translate a text into one or more languages.
  case translate

  /// Whether the task reads the image itself rather than a text.
  public var readsImage: Bool { self == .caption || self == .ocr }
}

/// The text a `summarize` or `translate` step reads.
public enum StepInput: Sendable, Hashable, CustomStringConvertible {
  /// The document's own text (text documents only).
  case document
  /// The output of the pipeline's first `ocr` step.
  case ocr
  /// The output of the named earlier step.
  case step(String)
  /// Caption and OCR steps read the image; they have no text input.
  case image

  /// The spelling used in YAML.
  public var description: String {
    switch self {
    case .document: "document"
    case .ocr: "ocr"
    case .step(let id): id
    case .image: "image"
    }
  }
}

/// Which documents an inbox pipeline applies to. Every criterion must hold; an empty list means "any".
public struct DocumentMatch: Sendable, Hashable {
  /// Allowed kinds; empty means all kinds.
  public var kinds: Set<DocumentKind>
  /// Glob patterns over the document set name (`contracts`, `scan-*`); empty means every set.
  public var sets: [Glob]
  /// Glob over the path relative to the inbox root (`contracts/2024/a.txt`). A pattern without `/` is matched
  /// against the file name only, as in `.gitignore` (`*.md`). Nil means every path.
  public var glob: Glob?

  /// Creates a match; the defaults match everything.
  public init(kinds: Set<DocumentKind> = [], sets: [Glob] = [], glob: Glob? = nil) {
    self.kinds = kinds
    self.sets = sets
    self.glob = glob
  }

  /// Whether a document with this kind, set and inbox-relative path is matched.
  public func matches(kind: DocumentKind, set: String, relativePath: String) -> Bool {
    if !kinds.isEmpty && !kinds.contains(kind) { return false }
    if !sets.isEmpty && !sets.contains(where: { $0.matches(set) }) { return false }
    if let glob {
      let path = relativePath.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
      if glob.pattern.contains("/") {
        return glob.matches(path)
      }
      return glob.matches(path.split(separator: "/").last.map(String.init) ?? path)
    }
    return true
  }

  /// The kinds this match can admit (all kinds when ``kinds`` is empty).
  public var admittedKinds: Set<DocumentKind> { kinds.isEmpty ? Set(DocumentKind.allCases) : kinds }
}

/// One step of a pipeline: a task with its prompt, input, languages and generation options.
public struct PipelineStep: Sendable, Hashable {
  /// Unique within the pipeline (`[a-z0-9][a-z0-9_-]*`); recorded on every job and result.
  public var id: String
  /// The model task.
  public var task: StepTask
  /// The user's prompt template, or nil for ``DefaultPrompts`` of the task.
  public var prompt: String?
  /// The text the step reads (``StepInput/image`` for caption and OCR).
  public var input: StepInput
  /// Target languages (BCP 47 codes such as `de`, `ja`, `pt-BR`) for `translate`; empty for other tasks.
  public var languages: [String]
  /// Generation options.
  public var options: GenerationOptions
  /// Wall-clock limit for one attempt of this step.
  public var timeout: Duration
  /// Terms a translate step must render consistently (`glossary:` in the step); added to every request's prompt.
  public var glossary: [GlossaryTerm]

  /// Creates a step. Prefer ``PipelineLoader``, which validates.
  public init(
    id: String, task: StepTask, prompt: String? = nil, input: StepInput? = nil, languages: [String] = [],
    options: GenerationOptions? = nil, timeout: Duration? = nil, glossary: [GlossaryTerm] = []
  ) {
    self.glossary = glossary
    self.id = id
    self.task = task
    self.prompt = prompt
    self.input = input ?? (task.readsImage ? .image : .document)
    self.languages = languages
    self.options = options ?? GenerationOptions.defaults(for: task)
    self.timeout = timeout ?? PipelineStep.defaultTimeout(for: task)
  }

  /// The prompt template this step uses: the override, or the built-in default for the task.
  public var promptTemplate: String { prompt ?? DefaultPrompts.template(for: task) }

  /// The prompt for one run of the step, with `{language}` and `{text}` filled in.
  public func renderPrompt(text: String?, language: String?) -> String {
    DefaultPrompts.render(promptTemplate, text: text, language: language)
  }

  /// The default timeout: images take longer on the CPU (vision encoder), translation of long text too.
  /// Values sized for a 2-core CPU and a 0.8B–2B model (issue 4, lessons row 9: configurable, with a global cap).
  public static func defaultTimeout(for task: StepTask) -> Duration {
    switch task {
    case .caption, .ocr: .seconds(600)
    case .summarize: .seconds(600)
    case .translate: .seconds(900)
    }
  }
}

/// Generation options for one step.
public struct GenerationOptions: Sendable, Hashable, Codable {
  /// Upper bound on generated tokens.
  public var maxTokens: Int
  /// Sampling temperature; 0 is greedy.
  public var temperature: Double
  /// Whether the model may emit a thinking block first (Qwen3.5 `enable_thinking`); off by default (issue 4).
  public var thinking: Bool

  /// Creates options.
  public init(maxTokens: Int, temperature: Double, thinking: Bool = false) {
    self.maxTokens = maxTokens
    self.temperature = temperature
    self.thinking = thinking
  }

  enum CodingKeys: String, CodingKey {
    case maxTokens = "max_tokens"
    case temperature
    case thinking
  }

  /// Task defaults: OCR and translation are greedy (faithfulness over variety); captions and summaries slightly warm.
  public static func defaults(for task: StepTask) -> GenerationOptions {
    switch task {
    case .caption: GenerationOptions(maxTokens: 256, temperature: 0.3)
    case .ocr: GenerationOptions(maxTokens: 2048, temperature: 0)
    case .summarize: GenerationOptions(maxTokens: 512, temperature: 0.3)
    case .translate: GenerationOptions(maxTokens: 2048, temperature: 0)
    }
  }
}

/// The schedule of a batch pipeline: when it fires, on which document set, and what happens on overlap and downtime.
public struct PipelineSchedule: Sendable, Hashable {
  /// The parsed 5-field cron expression.
  public var cron: CronExpression
  /// The time zone the cron fields are read in (default UTC; see ``PipelineLoader``).
  public var timeZone: TimeZone
  /// The document set the run processes.
  public var targetSet: String
  /// What happens when the next occurrence comes while a run is still going.
  public var overlap: OverlapPolicy
  /// What happens with occurrences that passed while the daemon was down.
  public var missed: MissedRunPolicy

  /// Creates a schedule.
  public init(
    cron: CronExpression, timeZone: TimeZone = TimeZone(identifier: "UTC") ?? .current, targetSet: String,
    overlap: OverlapPolicy = .skip, missed: MissedRunPolicy = .runOnce
  ) {
    self.cron = cron
    self.timeZone = timeZone
    self.targetSet = targetSet
    self.overlap = overlap
    self.missed = missed
  }

  /// The first occurrence strictly after `date`.
  public func next(after date: Date) -> Date? { cron.next(after: date, in: timeZone) }
}

/// What to do when a schedule fires while its previous run is still going.
public enum OverlapPolicy: String, Sendable, Hashable, CaseIterable, Codable {
  /// Record the occurrence as skipped (reason `overlap`). The safe default.
  case skip
  /// Record the occurrence as pending; it starts when the running one finishes (at most one pending run).
  case queue
}

/// What to do with occurrences that passed while the daemon was not running.
public enum MissedRunPolicy: Sendable, Hashable {
  /// Record them as skipped and wait for the next occurrence.
  case skip
  /// Run once now for all of them (the latest occurrence); record the others as skipped.
  case runOnce
  /// Run each missed occurrence, oldest first, at most `cap`; the older surplus is recorded as skipped.
  case runAll(cap: Int)

  /// The spelling used in YAML (`skip`, `run_once`, `run_all`).
  public var name: String {
    switch self {
    case .skip: "skip"
    case .runOnce: "run_once"
    case .runAll: "run_all"
    }
  }

  /// The default cap for `run_all`: a day of hourly runs at most, so a long outage never floods the queue.
  public static let defaultRunAllCap = 24
}

/// One entry of a translate step's glossary: a source term and how to render it.
public struct GlossaryTerm: Sendable, Hashable {
  /// The term as it appears in the source text.
  public var source: String
  /// The rendering for every target language (nil when only per-language renderings are given).
  public var translation: String?
  /// Per-language renderings, by BCP 47 code; they win over ``translation``.
  public var translations: [String: String]

  /// A term rendered the same in every target language.
  public init(source: String, translation: String) {
    self.source = source
    self.translation = translation
    self.translations = [:]
  }

  /// A term with per-language renderings.
  public init(source: String, translations: [String: String]) {
    self.source = source
    self.translation = nil
    self.translations = translations
  }

  /// The rendering for `language`, if the glossary has one.
  public func rendering(for language: String) -> String? { translations[language] ?? translation }
}
