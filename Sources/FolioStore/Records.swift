import FolioBase
import Foundation
import GRDB

// One record type per table (GRDB's recommended practice). Column names are snake_case, as `sqlite3` users see them.

/// A file Folio has recorded, identified by the SHA-256 of its original bytes (the whole file as read from the inbox,
/// before any conversion).
public struct Document: Codable, Sendable, Hashable, Identifiable, FetchableRecord, MutablePersistableRecord {
  /// The kind of content.
  public enum Kind: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    /// PNG or JPEG.
    case image
    /// UTF-8 text.
    case text
  }

  /// Processing state, kept in step with the document's jobs by the store.
  public enum Status: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    /// Jobs are queued (or none yet).
    case pending
    /// A job is running.
    case processing
    /// Every job finished and none failed.
    case processed
    /// At least one job failed permanently.
    case failed
    /// A duplicate recorded under the `link` policy: it has no jobs; its results are the original's.
    case linked
  }

  public static let databaseTableName = "document"

  /// Row id; nil before insertion.
  public var id: Int64?
  /// Lowercase hex SHA-256 of the original bytes.
  public var sha256: String
  /// Absolute path where the file was found.
  public var originalPath: String
  /// Path relative to the inbox root (`contracts/a.txt`), used for globs and display; the file name for `folio add`.
  public var relativePath: String
  /// Where Folio keeps its managed copy, if it keeps one.
  public var storedPath: String?
  /// Size of the original in bytes.
  public var sizeBytes: Int64
  /// Image or text.
  public var kind: Kind
  /// The document set (the first-level inbox subfolder; `default` at the top level).
  public var setName: String
  /// Processing state.
  public var status: Status
  /// The original this document duplicates (same SHA-256), for the `link` and `allow` policies.
  public var duplicateOf: Int64?
  /// When the document was recorded.
  public var createdAt: Date
  /// Last status change.
  public var updatedAt: Date

  enum CodingKeys: String, CodingKey {
    case id, sha256, kind, status
    case originalPath = "original_path"
    case relativePath = "relative_path"
    case storedPath = "stored_path"
    case sizeBytes = "size_bytes"
    case setName = "set_name"
    case duplicateOf = "duplicate_of"
    case createdAt = "created_at"
    case updatedAt = "updated_at"
  }

  /// Typed columns for requests.
  public enum Columns {
    /// The `id` column.
    public static let id = Column(CodingKeys.id)
    /// The `sha256` column.
    public static let sha256 = Column(CodingKeys.sha256)
    /// The `setName` column.
    public static let setName = Column(CodingKeys.setName)
    /// The `duplicateOf` column.
    public static let duplicateOf = Column(CodingKeys.duplicateOf)
    /// The `createdAt` column.
    public static let createdAt = Column(CodingKeys.createdAt)
  }

  public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// What the inbox (or `folio add`) knows about a new file.
public struct NewDocument: Sendable, Hashable {
  /// Lowercase hex SHA-256 of the original bytes.
  public var sha256: String
  /// Absolute path where the file was found.
  public var originalPath: String
  /// Inbox-relative path.
  public var relativePath: String
  /// Managed copy, if any.
  public var storedPath: String?
  /// Size in bytes.
  public var sizeBytes: Int64
  /// Image or text.
  public var kind: Document.Kind
  /// Document set; `default` for top-level files.
  public var setName: String

  /// Creates the description of a new document.
  public init(
    sha256: String, originalPath: String, relativePath: String? = nil, storedPath: String? = nil, sizeBytes: Int64,
    kind: Document.Kind, setName: String = "default"
  ) {
    self.sha256 = sha256
    self.originalPath = originalPath
    self.relativePath = relativePath ?? (originalPath as NSString).lastPathComponent
    self.storedPath = storedPath
    self.sizeBytes = sizeBytes
    self.kind = kind
    self.setName = setName
  }
}

/// What to do with a file whose SHA-256 is already recorded (lessons row 4).
public enum DuplicatePolicy: String, Sendable, Hashable, CaseIterable, Codable {
  /// Refuse it: nothing is written and ``FolioError/Code/duplicateDocument`` says which document it duplicates.
  case reject
  /// Record it as a link to the original, with no jobs of its own.
  case link
  /// Record and process it like a new document, remembering which document it duplicates.
  case allow
}

/// The outcome of ``Store/insertDocument(_:policy:)``.
public struct DocumentInsertion: Sendable, Hashable {
  /// The row that was written.
  public var document: Document
  /// The earlier document with the same SHA-256, when this one is a duplicate (`link` or `allow`).
  public var original: Document?
  /// Whether the caller should enqueue jobs for it (false for linked duplicates).
  public var needsProcessing: Bool { document.status != .linked }
}

/// Job states. `failed` is always permanent: a transient failure with attempts left goes back to `queued`.
public enum JobStatus: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
  /// Waiting to be claimed (never attempted when `attempts == 0`, a retry otherwise).
  case queued
  /// Claimed by a worker holding a lease.
  case running
  /// Finished; its result row exists.
  case succeeded
  /// Failed permanently (a permanent error, or attempts exhausted).
  case failed
  /// Cancelled (by a user, or because a step it reads from failed).
  case cancelled

  /// Whether the job will not change again without a retry.
  public var isTerminal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// Why a job was queued.
public enum JobTrigger: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
  /// A file arrived in the inbox.
  case inbox
  /// `folio add`.
  case add
  /// `folio reprocess`: a new generation of an existing job.
  case reprocess
  /// A scheduled batch run.
  case schedule
  /// `folio jobs retry`.
  case retry
}

/// One step of one pipeline for one document (and one target language for translate).
public struct Job: Codable, Sendable, Hashable, Identifiable, FetchableRecord, MutablePersistableRecord {
  public static let databaseTableName = "job"

  /// Row id; nil before insertion.
  public var id: Int64?
  /// The document.
  public var documentID: Int64
  /// Pipeline name.
  public var pipelineName: String
  /// Pipeline version when queued.
  public var pipelineVersion: Int
  /// Step id within the pipeline.
  public var stepID: String
  /// Position of the step in the pipeline (for ordering).
  public var stepIndex: Int
  /// Task name (`caption`, `ocr`, `summarize`, `translate`).
  public var task: String
  /// Target language for translate; empty otherwise.
  public var language: String
  /// 0 for the first run; each reprocess adds one.
  public var generation: Int
  /// The job whose output this one reads; it is claimable only after that one succeeded.
  public var dependsOnJobID: Int64?
  /// The scheduled run that queued it.
  public var scheduleRunID: Int64?
  /// State.
  public var status: JobStatus
  /// Why it was queued.
  public var trigger: JobTrigger
  /// Higher runs first.
  public var priority: Int
  /// Attempts started so far (incremented by each claim).
  public var attempts: Int
  /// Attempts allowed before the job fails permanently.
  public var maxAttempts: Int
  /// The worker holding the lease (`running` only).
  public var leaseOwner: String?
  /// When the lease lapses unless renewed (`running` only).
  public var leaseExpiresAt: Date?
  /// Last heartbeat.
  public var heartbeatAt: Date?
  /// Not claimable before this time (retry back-off).
  public var availableAt: Date
  /// When queued.
  public var createdAt: Date
  /// When the latest attempt started.
  public var startedAt: Date?
  /// When the job reached a terminal state.
  public var finishedAt: Date?
  /// Stable code of the latest failure (``FolioError/Code``).
  public var errorCode: String?
  /// Human message of the latest failure.
  public var errorMessage: String?

  enum CodingKeys: String, CodingKey {
    case id, task, language, generation, status, trigger, priority, attempts
    case documentID = "document_id"
    case pipelineName = "pipeline_name"
    case pipelineVersion = "pipeline_version"
    case stepID = "step_id"
    case stepIndex = "step_index"
    case dependsOnJobID = "depends_on_job_id"
    case scheduleRunID = "schedule_run_id"
    case maxAttempts = "max_attempts"
    case leaseOwner = "lease_owner"
    case leaseExpiresAt = "lease_expires_at"
    case heartbeatAt = "heartbeat_at"
    case availableAt = "available_at"
    case createdAt = "created_at"
    case startedAt = "started_at"
    case finishedAt = "finished_at"
    case errorCode = "error_code"
    case errorMessage = "error_message"
  }

  public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

  /// The lease a worker holds after claiming this job (nil unless running).
  public var lease: JobLease? {
    guard status == .running, let id, let leaseOwner, let leaseExpiresAt else { return nil }
    return JobLease(jobID: id, owner: leaseOwner, attempt: attempts, expiresAt: leaseExpiresAt)
  }

  /// Queued and never attempted.
  public var isNeverAttempted: Bool { status == .queued && attempts == 0 }
}

/// Proof that a worker holds a job: every later write for the job checks owner and attempt, so a worker whose lease
/// expired (and whose job was requeued or claimed by another) cannot write a second result.
public struct JobLease: Sendable, Hashable, Codable {
  /// The job.
  public var jobID: Int64
  /// The worker id given to ``Store/claimNextJob(owner:leaseDuration:tasks:)``.
  public var owner: String
  /// The attempt number this lease belongs to.
  public var attempt: Int
  /// When the lease lapses unless renewed with ``Store/heartbeat(_:leaseDuration:)``.
  public var expiresAt: Date
}

/// One step to queue for a document (see ``Store/enqueue(documentID:pipelineName:pipelineVersion:steps:trigger:maxAttempts:priority:scheduleRunID:)``).
public struct JobPlan: Sendable, Hashable {
  /// Step id.
  public var stepID: String
  /// Task name.
  public var task: String
  /// Target language (translate), or nil.
  public var language: String?
  /// The step (earlier in the same plan) whose output this step reads, or nil for the document / the image.
  public var inputStepID: String?

  /// Creates a plan entry.
  public init(stepID: String, task: String, language: String? = nil, inputStepID: String? = nil) {
    self.stepID = stepID
    self.task = task
    self.language = language
    self.inputStepID = inputStepID
  }
}

/// The output of a succeeded job.
public struct JobResult: Codable, Sendable, Hashable, Identifiable, FetchableRecord, MutablePersistableRecord {
  public static let databaseTableName = "result"

  /// Row id.
  public var id: Int64?
  /// The job (one result per job: a crashed worker can never add a second).
  public var jobID: Int64
  /// The document.
  public var documentID: Int64
  /// Pipeline name.
  public var pipelineName: String
  /// Pipeline version.
  public var pipelineVersion: Int
  /// Step id.
  public var stepID: String
  /// Task name.
  public var task: String
  /// Language of the text, when known (the target of a translation).
  public var language: String?
  /// The generated text.
  public var text: String
  /// The model that produced it (path or Hugging Face id plus revision).
  public var modelID: String
  /// Generation parameters as a JSON object (prompt, max_tokens, temperature, thinking, …).
  public var parameters: String
  /// Tokens in the prompt.
  public var promptTokens: Int?
  /// Tokens generated.
  public var completionTokens: Int?
  /// Time to process the prompt (prefill), in milliseconds.
  public var promptMilliseconds: Int?
  /// Time to generate, in milliseconds.
  public var generationMilliseconds: Int?
  /// Wall-clock time of the attempt, in milliseconds.
  public var totalMilliseconds: Int?
  /// When written.
  public var createdAt: Date

  enum CodingKeys: String, CodingKey {
    case id, task, language, text, parameters
    case jobID = "job_id"
    case documentID = "document_id"
    case pipelineName = "pipeline_name"
    case pipelineVersion = "pipeline_version"
    case stepID = "step_id"
    case modelID = "model_id"
    case promptTokens = "prompt_tokens"
    case completionTokens = "completion_tokens"
    case promptMilliseconds = "prompt_ms"
    case generationMilliseconds = "generation_ms"
    case totalMilliseconds = "total_ms"
    case createdAt = "created_at"
  }

  public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// What a worker hands to ``Store/complete(_:output:)``.
public struct JobOutput: Sendable, Hashable {
  /// The generated text.
  public var text: String
  /// Language of the text, if known.
  public var language: String?
  /// Model id.
  public var modelID: String
  /// Parameters, encoded as a JSON object.
  public var parameters: [String: JSONValue]
  /// Prompt tokens.
  public var promptTokens: Int?
  /// Generated tokens.
  public var completionTokens: Int?
  /// Prefill time.
  public var promptDuration: Duration?
  /// Generation time.
  public var generationDuration: Duration?
  /// Whole attempt.
  public var totalDuration: Duration?

  /// Creates an output.
  public init(
    text: String, language: String? = nil, modelID: String, parameters: [String: JSONValue] = [:],
    promptTokens: Int? = nil, completionTokens: Int? = nil, promptDuration: Duration? = nil,
    generationDuration: Duration? = nil, totalDuration: Duration? = nil
  ) {
    self.text = text
    self.language = language
    self.modelID = modelID
    self.parameters = parameters
    self.promptTokens = promptTokens
    self.completionTokens = completionTokens
    self.promptDuration = promptDuration
    self.generationDuration = generationDuration
    self.totalDuration = totalDuration
  }
}

/// A JSON value for result parameters.
public enum JSONValue: Sendable, Hashable, Codable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
  ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral
{
  /// A string.
  case string(String)
  /// An integer.
  case int(Int)
  /// A floating-point number.
  case double(Double)
  /// A boolean.
  case bool(Bool)
  /// A list.
  case array([JSONValue])
  /// An object.
  case object([String: JSONValue])
  /// null.
  case null

  public init(stringLiteral value: String) { self = .string(value) }
  public init(integerLiteral value: Int) { self = .int(value) }
  public init(floatLiteral value: Double) { self = .double(value) }
  public init(booleanLiteral value: Bool) { self = .bool(value) }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.singleValueContainer()
    if c.decodeNil() {
      self = .null
    } else if let b = try? c.decode(Bool.self) {
      self = .bool(b)
    } else if let i = try? c.decode(Int.self) {
      self = .int(i)
    } else if let d = try? c.decode(Double.self) {
      self = .double(d)
    } else if let s = try? c.decode(String.self) {
      self = .string(s)
    } else if let a = try? c.decode([JSONValue].self) {
      self = .array(a)
    } else {
      self = .object(try c.decode([String: JSONValue].self))
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    switch self {
    case .string(let s): try c.encode(s)
    case .int(let i): try c.encode(i)
    case .double(let d): try c.encode(d)
    case .bool(let b): try c.encode(b)
    case .array(let a): try c.encode(a)
    case .object(let o): try c.encode(o)
    case .null: try c.encodeNil()
    }
  }
}

/// A piece of a document's text (or of a step's output) small enough for one model request.
public struct Segment: Codable, Sendable, Hashable, Identifiable, FetchableRecord, MutablePersistableRecord {
  public static let databaseTableName = "segment"

  /// Row id.
  public var id: Int64?
  /// The document.
  public var documentID: Int64
  /// `document`, or the id of the step whose output was segmented (e.g. `ocr`).
  public var source: String
  /// Position within the source, from 0.
  public var ordinal: Int
  /// The text.
  public var text: String
  /// ``Segment/hash(of:)`` of the text: the translation memory key.
  public var sourceHash: String
  /// When written.
  public var createdAt: Date

  enum CodingKeys: String, CodingKey {
    case id, source, ordinal, text
    case documentID = "document_id"
    case sourceHash = "source_hash"
    case createdAt = "created_at"
  }

  public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

  /// The translation-memory key of a text: lowercase hex SHA-256 of its UTF-8 bytes after Unicode NFC
  /// normalisation (so the same text typed with combining accents or precomposed letters shares one entry).
  /// Whitespace is kept: the segmenter decides boundaries, and a changed segment is a different segment.
  public static func hash(of text: String) -> String {
    SHA256.hex(Array(text.precomposedStringWithCanonicalMapping.utf8))
  }
}

/// A finished translation of one segment into one language by one model.
public struct TranslationMemoryEntry: Codable, Sendable, Hashable, Identifiable, FetchableRecord,
  MutablePersistableRecord
{
  public static let databaseTableName = "translation_memory"

  /// Row id.
  public var id: Int64?
  /// ``Segment/hash(of:)`` of the source.
  public var sourceHash: String
  /// Target language.
  public var targetLanguage: String
  /// Model id.
  public var modelID: String
  /// Source text (for people reading the database).
  public var sourceText: String
  /// The translation.
  public var translatedText: String
  /// The job that produced it, if it still exists.
  public var jobID: Int64?
  /// Prompt tokens.
  public var promptTokens: Int?
  /// Generated tokens.
  public var completionTokens: Int?
  /// Time spent.
  public var totalMilliseconds: Int?
  /// When written.
  public var createdAt: Date

  enum CodingKeys: String, CodingKey {
    case id
    case sourceHash = "source_hash"
    case targetLanguage = "target_language"
    case modelID = "model_id"
    case sourceText = "source_text"
    case translatedText = "translated_text"
    case jobID = "job_id"
    case promptTokens = "prompt_tokens"
    case completionTokens = "completion_tokens"
    case totalMilliseconds = "total_ms"
    case createdAt = "created_at"
  }

  public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// The persisted state of a scheduled pipeline.
public struct ScheduleState: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
  public static let databaseTableName = "schedule"

  /// Pipeline name (primary key).
  public var pipelineName: String
  /// Pipeline version last synced.
  public var pipelineVersion: Int
  /// Cron expression.
  public var cron: String
  /// Time zone identifier the cron is read in.
  public var timeZone: String
  /// Document set processed by a run.
  public var targetSet: String
  /// `skip` or `queue`.
  public var overlap: String
  /// `skip`, `run_once` or `run_all`.
  public var missed: String
  /// Whether the pipeline is enabled.
  public var isEnabled: Bool
  /// `idle`, `running` or `disabled`.
  public var status: String
  /// The earliest occurrence not yet handled (run or skipped); nil until first computed.
  public var nextRunAt: Date?
  /// When the latest run started.
  public var lastStartedAt: Date?
  /// When the latest run finished.
  public var lastFinishedAt: Date?
  /// Status of the latest finished run.
  public var lastRunStatus: String?
  /// Last change.
  public var updatedAt: Date

  enum CodingKeys: String, CodingKey {
    case cron, overlap, missed, status
    case pipelineName = "pipeline_name"
    case pipelineVersion = "pipeline_version"
    case timeZone = "time_zone"
    case targetSet = "target_set"
    case isEnabled = "is_enabled"
    case nextRunAt = "next_run_at"
    case lastStartedAt = "last_started_at"
    case lastFinishedAt = "last_finished_at"
    case lastRunStatus = "last_run_status"
    case updatedAt = "updated_at"
  }
}

/// What the daemon knows about a scheduled pipeline from its YAML (``Store/syncSchedules(_:)``).
public struct ScheduleDefinition: Sendable, Hashable {
  /// Pipeline name.
  public var pipelineName: String
  /// Pipeline version.
  public var pipelineVersion: Int
  /// Cron expression as written.
  public var cron: String
  /// Time zone identifier.
  public var timeZone: String
  /// Target set.
  public var targetSet: String
  /// `skip` or `queue`.
  public var overlap: String
  /// `skip`, `run_once` or `run_all`.
  public var missed: String
  /// Enabled flag.
  public var isEnabled: Bool

  /// Creates a definition.
  public init(
    pipelineName: String, pipelineVersion: Int, cron: String, timeZone: String = "UTC", targetSet: String,
    overlap: String = "skip", missed: String = "run_once", isEnabled: Bool = true
  ) {
    self.pipelineName = pipelineName
    self.pipelineVersion = pipelineVersion
    self.cron = cron
    self.timeZone = timeZone
    self.targetSet = targetSet
    self.overlap = overlap
    self.missed = missed
    self.isEnabled = isEnabled
  }
}

/// One occurrence of a schedule: run, pending, or skipped with a reason.
public struct ScheduleRun: Codable, Sendable, Hashable, Identifiable, FetchableRecord, MutablePersistableRecord {
  /// Run states.
  public enum Status: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    /// Waiting for the running one to finish (overlap `queue`).
    case pending
    /// Its jobs are queued or running.
    case running
    /// All its jobs succeeded (or there was nothing to do).
    case succeeded
    /// Some of its jobs failed.
    case failed
    /// Not run; `reason` says why.
    case skipped
    /// Cancelled by a user.
    case cancelled
  }

  /// What started a run.
  public enum Trigger: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    /// The cron fired on time.
    case schedule
    /// A missed occurrence run after downtime.
    case catchUp = "catch_up"
    /// A user ran it now.
    case manual
  }

  public static let databaseTableName = "schedule_run"

  /// Row id.
  public var id: Int64?
  /// The schedule.
  public var pipelineName: String
  /// The cron occurrence this run stands for (the time of the request for manual runs).
  public var scheduledFor: Date
  /// What started it.
  public var trigger: Trigger
  /// State.
  public var status: Status
  /// Why it was skipped (`overlap`, `missed`, …) or other notes.
  public var reason: String?
  /// When recorded.
  public var createdAt: Date
  /// When it started running.
  public var startedAt: Date?
  /// When it finished.
  public var finishedAt: Date?

  enum CodingKeys: String, CodingKey {
    case id, trigger, status, reason
    case pipelineName = "pipeline_name"
    case scheduledFor = "scheduled_for"
    case createdAt = "created_at"
    case startedAt = "started_at"
    case finishedAt = "finished_at"
  }

  public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}
