#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import FolioBase
import FolioInbox
import FolioPipelines
import FolioStore
import Foundation
import Logging

/// The database and pipelines without the model: what `folio add`, `folio reprocess` and the query commands use.
public struct Workspace: Sendable {
  /// The configuration.
  public let configuration: DaemonConfiguration
  /// The database.
  public let store: Store
  /// The pipelines (validated).
  public let pipelines: [Pipeline]
  let logger: Logger

  /// Opens the database (creating it if `create`) and, if `loadPipelines`, the pipelines.
  ///
  /// - Throws: ``FolioError/Code/databaseError`` when the database does not exist and `create` is false.
  public static func open(
    _ configuration: DaemonConfiguration, create: Bool = false, loadPipelines: Bool = true,
    logger: Logger = Logger(label: "folio")
  ) throws -> Workspace {
    if !create && !FileManager.default.fileExists(atPath: configuration.database) {
      throw FolioError(
        .databaseError,
        "there is no Folio database at \(configuration.database) yet; start the daemon (`folio daemon`) or add a "
          + "file (`folio add`) first, or point --home/--database at the right place")
    }
    if create {
      try FileManager.default.createDirectory(
        atPath: (configuration.database as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    }
    let store = try Store.open(path: configuration.database)
    let pipelines =
      loadPipelines ? try PipelineLoader.load(directory: URL(fileURLWithPath: configuration.pipelines)) : []
    return Workspace(configuration: configuration, store: store, pipelines: pipelines, logger: logger)
  }

  /// A pipeline by name (including the built-in `translate`).
  public func pipeline(named name: String) -> Pipeline? {
    pipelines.first { $0.name == name } ?? BatchTranslation.builtIn(named: name)
  }

  // MARK: folio add

  /// What `folio add` did with one file.
  public enum AddOutcome: Sendable, Equatable {
    /// Recorded as `documentID` with `jobs` jobs queued.
    case recorded(documentID: Int64, jobs: Int)
    /// Linked to an earlier identical document.
    case linked(documentID: Int64, original: Int64)
    /// Not recorded.
    case refused(FolioError)
  }

  /// Records files given on the command line as documents of `set` (default `default`) and queues the matching
  /// pipelines' jobs. Each file is copied into Folio's managed store (`store/<sha[0..2]>/<sha>/<name>`); the file
  /// itself is only read, never moved or changed.
  public func add(files: [String], set: String?) async throws -> [(String, AddOutcome)] {
    let setName = set ?? DocumentSet.defaultName
    let intake = Intake(
      layout: configuration.layout, ignore: IgnoreRules(patterns: configuration.ignorePatterns))
    let processor = IntakeProcessor(
      configuration: configuration, store: store, intake: intake, pipelines: pipelines, text: nil, logger: logger)
    var outcomes: [(String, AddOutcome)] = []
    for file in files {
      let path = PathNames.standardized((file as NSString).expandingTildeInPath)
      let name = (path as NSString).lastPathComponent
      do {
        if let full = try await processor.queueCapacityError() { throw full }
        var st = stat()
        guard lstat(path, &st) == 0 else {
          throw FolioError(.fileNotFound, "\(file) does not exist")
        }
        if (st.st_mode & S_IFMT) == S_IFLNK {
          throw FolioError(.symlinkRefused, "\(file) is a symbolic link; add the file it points to instead")
        }
        let inspection = try Intake.inspectFile(at: path)
        let kind: FolioInbox.DocumentKind
        switch IntakeProcessor.admit(
          path: path, name: name, size: inspection.size, classification: inspection.classification,
          configuration: configuration)
        {
        case .failure(let error): throw error
        case .success(let k): kind = k
        }
        let folder = ((configuration.store as NSString).appendingPathComponent(String(inspection.sha256.prefix(2)))
          as NSString).appendingPathComponent(inspection.sha256)
        let copy = (folder as NSString).appendingPathComponent(name)
        let existed = FileManager.default.fileExists(atPath: copy)
        if !existed {
          try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
          let temporary = (folder as NSString).appendingPathComponent(".folio-partial-\(UUID().uuidString)")
          try FileManager.default.copyItem(atPath: path, toPath: temporary)
          try FileManager.default.moveItem(atPath: temporary, toPath: copy)
        }
        let insertion: DocumentInsertion
        do {
          insertion = try await store.insertDocument(
            NewDocument(
              sha256: inspection.sha256, originalPath: path,
              relativePath: setName == DocumentSet.defaultName ? name : "\(setName)/\(name)", storedPath: copy,
              sizeBytes: inspection.size, kind: IntakeProcessor.storeKind(kind), setName: setName),
            policy: configuration.duplicatePolicy)
        } catch {
          if !existed { try? FileManager.default.removeItem(atPath: copy) }
          throw error
        }
        let id = insertion.document.id ?? 0
        if !insertion.needsProcessing {
          outcomes.append((file, .linked(documentID: id, original: insertion.original?.id ?? 0)))
          continue
        }
        let jobs = try await processor.queueJobs(for: insertion.document, trigger: .add)
        outcomes.append((file, .recorded(documentID: id, jobs: jobs)))
      } catch let error as FolioError {
        outcomes.append((file, .refused(error)))
      }
    }
    return outcomes
  }

  // MARK: folio reprocess

  /// What `folio reprocess` queued for one document and pipeline.
  public struct Reprocessed: Sendable, Hashable {
    /// The document.
    public var documentID: Int64
    /// The pipeline.
    public var pipelineName: String
    /// The new jobs.
    public var jobIDs: [Int64]
  }

  /// Queues a new generation of the selected steps for the selected documents (by pipeline, step, model, document,
  /// set, or results of an older pipeline version). With `dryRun`, only reports what would be queued.
  public func reprocess(
    pipeline: String?, step: String?, modelID: String?, documentID: Int64?, setName: String?,
    olderThanVersion: Bool, dryRun: Bool
  ) async throws -> [Reprocessed] {
    if let pipeline, self.pipeline(named: pipeline) == nil {
      throw FolioError(
        .invalidArgument,
        "there is no pipeline named \(pipeline) in \(configuration.pipelines) (have: \(pipelines.map(\.name).joined(separator: ", ")))")
    }
    var below: Int?
    if olderThanVersion {
      guard let pipeline, let current = self.pipeline(named: pipeline) else {
        throw FolioError(.invalidArgument, "--stale needs --pipeline (results older than its current version)")
      }
      below = current.version
    }
    let candidates = try await store.reprocessCandidates(
      pipeline: pipeline, step: step, modelID: modelID, documentID: documentID, pipelineVersionBelow: below,
      setName: setName)
    var done: [Reprocessed] = []
    for candidate in candidates {
      guard let definition = self.pipeline(named: candidate.pipelineName) else {
        logger.warning("pipeline no longer defined; skipped", metadata: ["pipeline": "\(candidate.pipelineName)"])
        continue
      }
      if let step, definition.step(id: step) == nil { continue }
      let existing = try await store.jobs(
        matching: JobFilter(documentID: candidate.documentID, pipelineName: candidate.pipelineName, limit: 10_000))
      var languages: [String: [String]] = [:]
      for job in existing where !job.language.isEmpty {
        if !(languages[job.stepID]?.contains(job.language) ?? false) { languages[job.stepID, default: []].append(job.language) }
      }
      // Translate steps run again for the languages they were run for, plus those the pipeline names now.
      let withLanguages = IntakeProcessor.plan(definition, steps: step.map { [$0] }) { s in
        var langs = s.languages
        for l in languages[s.id] ?? [] where !langs.contains(l) { langs.append(l) }
        return langs
      }
      guard !withLanguages.isEmpty else { continue }
      if dryRun {
        done.append(Reprocessed(documentID: candidate.documentID, pipelineName: candidate.pipelineName, jobIDs: []))
        continue
      }
      let jobs = try await store.enqueue(
        documentID: candidate.documentID, pipelineName: definition.name, pipelineVersion: definition.version,
        steps: withLanguages, trigger: .reprocess, maxAttempts: configuration.maxAttempts)
      done.append(
        Reprocessed(documentID: candidate.documentID, pipelineName: definition.name, jobIDs: jobs.compactMap(\.id)))
    }
    return done
  }

  // MARK: folio translate

  /// What `folio translate` queued.
  public struct TranslationBatch: Sendable {
    /// The pipeline used (the scheduled pipeline that targets the set, or the built-in `translate`).
    public var pipelineName: String
    /// The schedule run recorded for it (scheduled pipelines only).
    public var runID: Int64?
    /// Why nothing was queued (a run of that schedule is already going), if so.
    public var notStarted: String?
    /// What was queued.
    public var queued: BatchTranslation.Queued
  }

  /// Queues the translation of every document of `set` into `languages`: through the scheduled pipeline that
  /// targets the set (as a manual run, recorded in `schedule_run`), or the built-in `translate` pipeline.
  public func queueTranslation(set: String, languages: [String], now: Date = Date()) async throws -> TranslationBatch {
    guard !languages.isEmpty else { throw FolioError(.invalidArgument, "give at least one language with --to") }
    let scheduled = pipelines.first { p in
      p.schedule?.targetSet == set && p.steps.contains { $0.task == .translate }
    }
    if let pipeline = scheduled {
      let scheduler = Scheduler(
        store: store, pipelines: pipelines, maxAttempts: configuration.maxAttempts, logger: logger, now: { now },
        onQueued: {})
      try await scheduler.sync()
      let start = try await store.beginScheduleRun(pipelineName: pipeline.name, scheduledFor: now, trigger: .manual)
      guard case .started(let run) = start else {
        return TranslationBatch(
          pipelineName: pipeline.name, runID: start.run.id,
          notStarted: start.run.reason ?? "a run of \(pipeline.name) is already going",
          queued: BatchTranslation.Queued(documents: 0, jobIDs: [], alreadyDone: 0))
      }
      let queued = try await BatchTranslation.enqueue(
        pipeline: pipeline, set: set, languages: languages, runID: run.id, store: store,
        maxAttempts: configuration.maxAttempts)
      let open = try await store.jobs(matching: JobFilter(statuses: [.queued, .running], scheduleRunID: run.id))
      if open.isEmpty, let id = run.id {
        try await store.finishScheduleRun(
          runID: id, status: .succeeded, reason: "nothing to do: every document was already translated")
      }
      return TranslationBatch(pipelineName: pipeline.name, runID: run.id, notStarted: nil, queued: queued)
    }
    guard let builtIn = BatchTranslation.builtIn(named: BatchTranslation.builtInName) else {
      throw FolioError(.invalidArgument, "the built-in translate pipeline is missing")
    }
    let queued = try await BatchTranslation.enqueue(
      pipeline: builtIn, set: set, languages: languages, runID: nil, store: store,
      maxAttempts: configuration.maxAttempts)
    return TranslationBatch(pipelineName: builtIn.name, runID: nil, notStarted: nil, queued: queued)
  }
}

extension Daemon {
  /// Runs queued jobs of the given tasks in the foreground until none is claimable (used by `folio translate`).
  /// `progress` is called after each job with the job as it ended.
  public func drain(tasks: Set<String>, progress: @escaping @Sendable (Job) async -> Void) async throws {
    _ = try await recoverJobs()
    state.finishIntake()
    await jobRunner(stopsWhenIdle: true, tasks: tasks, onJobFinished: progress).run()
  }
}
