import FolioBase
import FolioCodecs
import FolioInbox
import FolioPipelines
import FolioStore
import Foundation
import Logging

/// What became of one file taken from the inbox.
public enum IntakeOutcome: Sendable, Equatable {
  /// Recorded as document `documentID` with `jobs` jobs queued.
  case recorded(documentID: Int64, jobs: Int)
  /// Recorded as a linked duplicate of `original` (no jobs).
  case linked(documentID: Int64, original: Int64)
  /// Not recorded as a document: the failure is in `intake_failure` and the file was disposed of as failed.
  case refused(FolioError)
}

/// Turns claimed files into documents and jobs, and puts originals where the disposition says once the database
/// says their processing is over (nothing is moved or deleted before the commit that records it; lessons row 5).
struct IntakeProcessor: Sendable {
  let configuration: DaemonConfiguration
  let store: Store
  let intake: Intake
  let pipelines: [Pipeline]
  let text: DocumentText?
  let logger: Logger
  let failedDisposals = FailedDisposals()

  /// Remembers documents whose disposal failed, so the periodic sweep logs each once, not every time.
  final class FailedDisposals: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: Set<Int64> = []
    func insert(_ id: Int64) -> Bool { lock.withLock { ids.insert(id).inserted } }
  }

  static func pipelineKind(_ kind: FolioInbox.DocumentKind) -> FolioPipelines.DocumentKind {
    kind == .text ? .text : .image
  }

  static func storeKind(_ kind: FolioInbox.DocumentKind) -> Document.Kind {
    kind == .text ? .text : .image
  }

  /// Checks that apply to every new file, inbox or `folio add`: size, and for images a readable header within
  /// `max_pixels` (lessons rows 9 and 10).
  static func admit(
    path: String, name: String, size: Int64, classification: Result<FolioInbox.DocumentKind, FolioError>,
    configuration: DaemonConfiguration
  ) -> Result<FolioInbox.DocumentKind, FolioError> {
    let kind: FolioInbox.DocumentKind
    switch classification {
    case .failure(let error): return .failure(error)
    case .success(let k): kind = k
    }
    if size > configuration.maxFileBytes {
      return .failure(
        FolioError(
          .fileTooLarge,
          "\(name) has \(size) bytes, more than max_file_bytes (\(configuration.maxFileBytes)); raise max_file_bytes "
            + "in folio.yaml to accept it"))
    }
    if kind != .text {
      // Decoded once here (header checked against the limits first, in FolioCodecs' one place), so a corrupt,
      // truncated or oversized image is refused before any job counts as started (lessons rows 1, 9, 10).
      do {
        _ = try ImageDecoder.decode(
          file: URL(fileURLWithPath: path),
          limits: ImageLimits(maxPixels: configuration.maxPixels, maxFileBytes: Int(configuration.maxFileBytes)))
      } catch let error as FolioError {
        return .failure(FolioError(error.code, "\(name): \(error.message)", cause: nil))
      } catch {
        return .failure(FolioError(.imageCorrupt, "\(name) cannot be decoded", cause: error))
      }
    }
    return .success(kind)
  }

  /// The pipelines that apply to a document, and their job plans.
  func plans(kind: FolioPipelines.DocumentKind, set: String, relativePath: String) -> [(Pipeline, [JobPlan])] {
    pipelines.filter { $0.applies(to: kind, set: set, relativePath: relativePath) }.map { ($0, Self.plan($0)) }
  }

  /// The ids of `only` and of the steps they read, transitively (all steps when `only` is nil).
  static func stepClosure(_ pipeline: Pipeline, only: Set<String>?) -> Set<String> {
    guard let only else { return Set(pipeline.steps.map(\.id)) }
    var wanted: Set<String> = []
    var pending = Array(only)
    while let id = pending.popLast() {
      guard wanted.insert(id).inserted, let step = pipeline.step(id: id) else { continue }
      if let input = pipeline.inputStepID(of: step) { pending.append(input) }
    }
    return wanted
  }

  /// One job per step (per target language for translate), wired to the step it reads.
  static func plan(
    _ pipeline: Pipeline, steps only: Set<String>? = nil,
    languages: (PipelineStep) -> [String] = { $0.languages }
  ) -> [JobPlan] {
    let wanted = stepClosure(pipeline, only: only)
    var plans: [JobPlan] = []
    for step in pipeline.steps where wanted.contains(step.id) {
      let input = pipeline.inputStepID(of: step)
      if step.task == .translate {
        for language in languages(step) {
          plans.append(JobPlan(stepID: step.id, task: step.task.rawValue, language: language, inputStepID: input))
        }
      } else {
        plans.append(JobPlan(stepID: step.id, task: step.task.rawValue, inputStepID: input))
      }
    }
    return plans
  }

  /// The `queue_full` error when the queue holds `max_queued_jobs` waiting jobs or more, else nil
  /// (inbox-lessons, "Model residency": a bounded queue that refuses work explicitly).
  func queueCapacityError() async throws -> FolioError? {
    let waiting = try await store.queuedJobCount()
    guard waiting >= configuration.maxQueuedJobs else { return nil }
    return FolioError(
      .queueFull,
      "the job queue is full: \(waiting) jobs wait and max_queued_jobs is \(configuration.maxQueuedJobs); new files "
        + "stay where they are and are taken when the queue drains. Wait for the daemon to work through the queue "
        + "(`folio status`), or raise max_queued_jobs (folio.yaml, FOLIO_MAX_QUEUED_JOBS or --max-queued-jobs)")
  }

  /// Records a claimed file and queues its jobs (or records why it cannot be processed and disposes of it).
  func handle(_ claimed: ClaimedFile, trigger: JobTrigger = .inbox) async throws -> IntakeOutcome {
    let admitted = Self.admit(
      path: claimed.workPath, name: claimed.fileName, size: claimed.size, classification: claimed.classification,
      configuration: configuration)
    let kind: FolioInbox.DocumentKind
    switch admitted {
    case .failure(let error):
      try await refuse(claimed, error: error, duplicateOf: nil)
      return .refused(error)
    case .success(let k): kind = k
    }
    let insertion: DocumentInsertion
    do {
      insertion = try await store.insertDocument(
        NewDocument(
          sha256: claimed.sha256, originalPath: claimed.originalPath, relativePath: claimed.relativePath,
          storedPath: claimed.workPath, sizeBytes: claimed.size, kind: Self.storeKind(kind),
          setName: claimed.documentSet),
        policy: configuration.duplicatePolicy)
    } catch let error as FolioError where error.code == .duplicateDocument {
      let original = try await store.document(sha256: claimed.sha256)
      try await refuse(claimed, error: error, duplicateOf: original?.id)
      return .refused(error)
    }
    let document = insertion.document
    let id = document.id ?? 0
    if !insertion.needsProcessing {
      logger.info(
        "duplicate linked",
        metadata: [
          "document": "\(id)", "duplicate_of": "\(insertion.original?.id ?? 0)", "path": "\(claimed.relativePath)",
        ])
      try await disposeDocument(document, outcome: .succeeded)
      return .linked(documentID: id, original: insertion.original?.id ?? 0)
    }
    if let original = insertion.original {
      logger.info(
        "duplicate allowed", metadata: ["document": "\(id)", "duplicate_of": "\(original.id ?? 0)"])
    }
    let jobs = try await queueJobs(for: document, trigger: trigger)
    if jobs == 0 {
      logger.notice(
        "no pipeline matches this document; recorded without jobs",
        metadata: ["document": "\(id)", "path": "\(claimed.relativePath)", "kind": "\(kind.rawValue)"])
      try await disposeDocument(document, outcome: .succeeded)
    }
    return .recorded(documentID: id, jobs: jobs)
  }

  /// Segments a text document (so its text is in the database before the file moves) and queues every matching
  /// pipeline's steps. Idempotent: a recovered claim queues nothing twice.
  func queueJobs(for document: Document, trigger: JobTrigger) async throws -> Int {
    guard let id = document.id else { return 0 }
    let kind: FolioPipelines.DocumentKind = document.kind == .text ? .text : .image
    let matching = plans(kind: kind, set: document.setName, relativePath: document.relativePath)
    if kind == .text, !matching.isEmpty, let text { _ = try await text.documentSegments(document) }
    var count = 0
    for (pipeline, plans) in matching where !plans.isEmpty {
      let jobs = try await store.enqueue(
        documentID: id, pipelineName: pipeline.name, pipelineVersion: pipeline.version, steps: plans,
        trigger: trigger, maxAttempts: configuration.maxAttempts)
      count += jobs.count
    }
    logger.info(
      "document recorded",
      metadata: [
        "document": "\(id)", "path": "\(document.relativePath)", "set": "\(document.setName)",
        "kind": "\(document.kind.rawValue)", "jobs": "\(count)", "sha256": "\(document.sha256.prefix(12))",
      ])
    return count
  }

  /// Records why a claimed file cannot become a document, then disposes of it as failed.
  func refuse(_ claimed: ClaimedFile, error: FolioError, duplicateOf: Int64?) async throws {
    let failure = try await store.recordIntakeFailure(
      IntakeFailure(
        originalPath: claimed.originalPath, relativePath: claimed.relativePath, setName: claimed.documentSet,
        sha256: claimed.sha256, sizeBytes: claimed.size, errorCode: error.code.rawValue, errorMessage: error.message,
        duplicateOf: duplicateOf))
    logger.warning(
      "file refused",
      metadata: [
        "path": "\(claimed.relativePath)", "code": "\(error.code)", "message": "\(error.message)",
      ])
    do {
      let receipt = try intake.dispose(claimed, outcome: .failed(error), policy: configuration.disposition)
      if let id = failure.id { try? await store.setIntakeFailureFinalPath(id: id, finalPath: receipt.finalPath) }
    } catch {
      logger.error(
        "cannot dispose of the refused file; it stays in the work area",
        metadata: ["path": "\(claimed.workPath)", "code": "\(error.code)", "message": "\(error.message)"])
    }
  }

  /// Finishes what a crash left in the work area: files with no document are taken as new; files whose document
  /// exists get their jobs queued again (idempotent) or are disposed of if their jobs are done.
  func recoverClaims() async throws -> Int {
    let claims = intake.recoverClaims()
    for claimed in claims {
      if let document = try await store.document(storedPath: claimed.workPath) {
        logger.notice(
          "recovered a claimed file", metadata: ["document": "\(document.id ?? 0)", "path": "\(claimed.relativePath)"])
        switch document.status {
        case .processed, .failed, .linked: break  // disposed of by the sweep below
        case .pending, .processing: _ = try await queueJobs(for: document, trigger: .inbox)
        }
      } else {
        logger.notice("recovered a claimed file with no record; taking it as new", metadata: ["path": "\(claimed.relativePath)"])
        _ = try await handle(claimed)
      }
    }
    try await disposeFinished()
    return claims.count
  }

  /// Disposes of every document whose file is still in the work area and whose jobs are all finished.
  func disposeFinished() async throws {
    for document in try await store.documentsAwaitingDisposal(under: PathNames.standardized(configuration.work)) {
      let outcome: ProcessingOutcome
      if document.status == .failed {
        let failed = try await store.jobs(matching: JobFilter(statuses: [.failed], documentID: document.id, limit: 1))
        let job = failed.first
        outcome = .failed(
          FolioError(
            FolioError.Code(rawValue: job?.errorCode ?? "job_failed"),
            "job \(job?.id ?? 0) (\(job?.pipelineName ?? "")/\(job?.stepID ?? "")) failed: \(job?.errorMessage ?? "")"))
      } else {
        outcome = .succeeded
      }
      try await disposeDocument(document, outcome: outcome)
    }
  }

  /// Disposes of one document's file (it must be in the work area) and records where it went.
  func disposeDocument(_ document: Document, outcome: ProcessingOutcome) async throws {
    guard let id = document.id, let stored = document.storedPath else { return }
    let work = PathNames.standardized(configuration.work)
    guard stored.hasPrefix(work + "/") else { return }
    let inside = String(stored.dropFirst(work.count + 1))
    guard let slash = inside.firstIndex(of: "/") else { return }
    let claimed = ClaimedFile(
      claimID: String(inside[..<slash]), originalPath: document.originalPath, relativePath: document.relativePath,
      documentSet: document.setName, workPath: stored, sha256: document.sha256, size: document.sizeBytes,
      kind: document.kind == .text ? .text : .png)
    do {
      let receipt = try intake.dispose(claimed, outcome: outcome, policy: configuration.disposition)
      try? await store.setStoredPath(documentID: id, storedPath: receipt.finalPath)
      logger.info(
        "original disposed of",
        metadata: [
          "document": "\(id)", "disposition": "\(receipt.disposition.rawValue)", "path": "\(receipt.finalPath)",
        ])
    } catch let error as FolioError {
      if failedDisposals.insert(id) {
        logger.error(
          "cannot dispose of the original; it stays in the work area and is retried",
          metadata: ["document": "\(id)", "code": "\(error.code)", "message": "\(error.message)"])
      }
    }
  }
}

/// Path spelling shared with FolioInbox (which standardizes before comparing).
enum PathNames {
  /// Lexical: removes `.`, empty components and resolves `..`; relative paths are taken from the current folder.
  /// Symbolic links are not resolved (the inbox compares paths the same way).
  static func standardized(_ path: String, base: String = FileManager.default.currentDirectoryPath) -> String {
    let full = path.hasPrefix("/") ? path : base + "/" + path
    var stack: [Substring] = []
    for part in full.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
      if part == ".." {
        if !stack.isEmpty { stack.removeLast() }
      } else {
        stack.append(part)
      }
    }
    return "/" + stack.joined(separator: "/")
  }
}
