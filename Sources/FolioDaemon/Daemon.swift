#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import FolioBase
import FolioCodecs
import FolioEngine
import FolioInbox
import FolioPipelines
import FolioStore
import Foundation
import Logging
import ServiceLifecycle

/// What a daemon run did (printed by `folio daemon --once`).
public struct DaemonRunReport: Sendable {
  /// Documents recorded by this run's intake (new files), in order.
  public var documentIDs: [Int64] = []
  /// Files refused at intake: inbox-relative path and the error.
  public var refused: [(path: String, error: FolioError)] = []
  /// Duplicates linked to an earlier document.
  public var linked: [(documentID: Int64, original: Int64)] = []
  /// Claimed files recovered from a previous run's work area.
  public var recoveredClaims = 0
  /// Jobs requeued at startup because their worker had died.
  public var requeuedJobs: [Int64] = []
  /// Inbox-relative paths held back because the queue was full (`queue_full`), once each.
  public var heldForFullQueue: [String] = []
}

/// The Folio daemon: startup checks, one resident model, the inbox (watcher → intake → jobs), the job runner and
/// the scheduler, run as a swift-service-lifecycle `ServiceGroup` so SIGTERM/SIGINT stop intake first, then let the
/// running job finish (or checkpoint it after `shutdown_grace`), then close the database.
public final class Daemon: Sendable {
  /// How to run.
  public struct Options: Sendable {
    /// Process what is in the inbox and the queue, then exit (`folio daemon --once`).
    public var once: Bool
    /// Install SIGTERM/SIGINT handlers (the CLI does; in-process tests do not).
    public var handlesSignals: Bool
    /// Wall-clock time for the store and the scheduler (tests move it).
    public var now: @Sendable () -> Date
    /// The clock the watcher measures stability windows with.
    public var clock: any Clock<Duration>
    /// How often the daemon refreshes its `daemon_instance` row and checks `keep_alive` (also after every job).
    /// 10 s: `folio status` calls a daemon stale after ``Daemon/staleAfter`` (six missed heartbeats).
    public var heartbeatInterval: Duration

    /// Options; by default a long-running daemon on real time.
    public init(
      once: Bool = false, handlesSignals: Bool = false, now: @escaping @Sendable () -> Date = { Date() },
      clock: any Clock<Duration> = ContinuousClock(), heartbeatInterval: Duration = .seconds(10)
    ) {
      self.once = once
      self.handlesSignals = handlesSignals
      self.now = now
      self.clock = clock
      self.heartbeatInterval = heartbeatInterval
    }
  }

  /// The resolved configuration.
  public let configuration: DaemonConfiguration
  /// The database.
  public let store: Store
  /// The pipelines loaded at startup.
  public let pipelines: [Pipeline]
  /// The resident model (loaded at start, unloaded after `keep_alive` without work, reloaded on demand).
  public let model: ResidentModel
  /// The model door every request goes through (the resident model).
  public var runner: any StepRunner { model }
  /// This process's row in `daemon_instance`: `folio@HOST:PID/` and a random suffix.
  public let instanceID = "\(JobRunner.ownerPrefix)/\(UUID().uuidString.prefix(8).lowercased())"
  /// A heartbeat older than this marks a daemon stale in `folio status` (six default heartbeat intervals).
  public static let staleAfter: TimeInterval = 60
  let startedAt: Date
  let options: Options
  let deferred = DeferredIntake()
  let logger: Logger
  let ledger = InboxLedger()
  let state = RuntimeState()
  let report = ReportBox()

  final class ReportBox: @unchecked Sendable {
    let lock = NSLock()
    var value = DaemonRunReport()
    func update(_ body: (inout DaemonRunReport) -> Void) { lock.withLock { body(&value) } }
  }

  /// Runs the startup checks and opens everything; throws (and starts nothing) when a check fails.
  ///
  /// Checks, in order: the folder layout does not feed output back into the inbox; every pipeline file is valid
  /// (the error carries the full validation report); the folders exist or can be created and are usable by this
  /// user; the database opens; the model loads (unless `runner` is given).
  ///
  /// - Parameters:
  ///   - runner: a ``StepRunner`` to use instead of loading the configured model (tests).
  ///   - modelLoader: how to load `runner` again after a `keep_alive` unload (tests count loads); by default the
  ///     same runner is reused.
  public static func start(
    configuration: DaemonConfiguration, options: Options = Options(), runner: (any StepRunner)? = nil,
    modelLoader: (@Sendable () throws -> any StepRunner)? = nil, logger: Logger = Logger(label: "folio")
  ) async throws -> Daemon {
    let layout = configuration.layout
    try layout.validate(ignoreRules: IgnoreRules(patterns: configuration.ignorePatterns))
    let pipelines = try PipelineLoader.load(directory: URL(fileURLWithPath: configuration.pipelines))
    logger.info(
      "pipelines loaded",
      metadata: [
        "folder": "\(configuration.pipelines)",
        "pipelines": "\(pipelines.map { "\($0.name)@\($0.version)\($0.isEnabled ? "" : "(disabled)")" }.joined(separator: ","))",
      ])
    try layout.createMissingFolders()
    let findings = layout.checkPermissions()
    if !findings.isEmpty {
      throw FolioError(
        .permissionDenied,
        "Folio cannot use these locations:\n- " + findings.map(\.description).joined(separator: "\n- "))
    }
    let store = try Store.open(path: configuration.database, now: options.now)
    logger.info("database open", metadata: ["path": "\(configuration.database)"])
    let model: ResidentModel
    if let runner {
      let reload = modelLoader ?? { runner }
      model = ResidentModel(
        initial: LoadedModel(runner: runner, origin: "injected"),
        loader: { LoadedModel(runner: try reload(), origin: "injected") }, now: options.now)
    } else {
      let initial = try loadResidentModel(configuration: configuration, logger: logger)
      model = ResidentModel(
        initial: initial, loader: { try loadResidentModel(configuration: configuration, logger: logger) },
        now: options.now)
    }
    return Daemon(
      configuration: configuration, store: store, pipelines: pipelines, model: model, options: options,
      logger: logger)
  }

  /// Loads the configured model with what `folio status` shows about it (folder, origin) and a token counter
  /// that keeps only the tokenizer.
  static func loadResidentModel(configuration: DaemonConfiguration, logger: Logger) throws -> LoadedModel {
    let choice = try ModelResolver.resolve(configuration.model, allowTestModel: configuration.allowTestModel)
    let runner = try loadModel(configuration: configuration, logger: logger)
    let tokenizer = runner.model.tokenizer
    return LoadedModel(
      runner: runner, path: runner.model.checkpoint.folder.path, origin: choice.origin.rawValue,
      countTokens: { tokenizer.encode($0, parseSpecialTokens: false).count })
  }

  /// Resolves and loads the configured model, saying which one and where it came from.
  public static func loadModel(configuration: DaemonConfiguration, logger: Logger) throws -> LanguageModelRunner {
    let choice = try ModelResolver.resolve(configuration.model, allowTestModel: configuration.allowTestModel)
    if choice.isTestModel {
      logger.warning("\(choice.explanation)")
    } else {
      logger.info("using \(choice.explanation)")
    }
    let model: LanguageModel
    do {
      model = try LanguageModel(reference: choice.reference)
    } catch let error as FolioError {
      throw error
    } catch {
      throw FolioError(.modelNotFound, "cannot load the model at \(choice.reference)", cause: error)
    }
    let modelID = choice.isTestModel ? "folio-test/tiny-dense" : Self.modelID(folder: model.checkpoint.folder)
    logger.info(
      "model loaded and resident",
      metadata: [
        "model": "\(modelID)", "origin": "\(choice.origin.rawValue)", "folder": "\(model.checkpoint.folder.path)",
        "load_s": "\(String(format: "%.2f", model.loadSeconds))",
      ])
    return LanguageModelRunner(
      model: model, modelID: modelID, threads: configuration.threads,
      imageLimits: ImageLimits(maxPixels: configuration.maxPixels, maxFileBytes: Int(configuration.maxFileBytes)))
  }

  /// A stable model id: `Org/Name@revision` for a Hugging Face cache snapshot, else the folder path.
  static func modelID(folder: URL) -> String {
    let parts = folder.standardizedFileURL.pathComponents
    if let snapshots = parts.lastIndex(of: "snapshots"), snapshots >= 1, snapshots + 1 < parts.count {
      let entry = parts[snapshots - 1]
      if entry.hasPrefix("models--") {
        let name = entry.dropFirst("models--".count).replacingOccurrences(of: "--", with: "/")
        return "\(name)@\(parts[snapshots + 1].prefix(12))"
      }
    }
    return folder.standardizedFileURL.path
  }

  init(
    configuration: DaemonConfiguration, store: Store, pipelines: [Pipeline], model: ResidentModel,
    options: Options, logger: Logger
  ) {
    self.configuration = configuration
    self.store = store
    self.pipelines = pipelines
    self.model = model
    self.options = options
    self.logger = logger
    self.startedAt = options.now()
    model.setReloadHandler { [logger] took in
      logger.info(
        "model loaded again for new work",
        metadata: [
          "model": "\(model.modelID)", "load_s": "\(String(format: "%.2f", took.seconds))",
          "rss_mib": "\(ProcessMemory.residentMiB().map { String(format: "%.0f", $0) } ?? "?")",
        ])
    }
  }

  var intake: Intake {
    Intake(layout: configuration.layout, ledger: ledger, ignore: IgnoreRules(patterns: configuration.ignorePatterns))
  }

  var documentText: DocumentText {
    DocumentText(store: store, runner: runner, segmentTokens: configuration.segmentTokens)
  }

  var intakeProcessor: IntakeProcessor {
    IntakeProcessor(
      configuration: configuration, store: store, intake: intake, pipelines: pipelines, text: documentText,
      logger: logger)
  }

  /// The job runner over this daemon's store and model.
  func jobRunner(stopsWhenIdle: Bool, tasks: Set<String> = [], onJobFinished: @escaping @Sendable (Job) async -> Void = { _ in })
    -> JobRunner
  {
    var byName: [String: Pipeline] = [:]
    for pipeline in pipelines { byName[pipeline.name] = pipeline }
    if byName[BatchTranslation.builtInName] == nil, let builtIn = BatchTranslation.builtIn(named: BatchTranslation.builtInName) {
      byName[builtIn.name] = builtIn
    }
    return JobRunner(
      configuration: configuration, store: store,
      executor: JobExecutor(
        store: store, runner: runner, text: documentText, maxStepTimeout: configuration.maxStepTimeout),
      intake: intakeProcessor, pipelines: byName, logger: logger, state: state, stopsWhenIdle: stopsWhenIdle,
      tasks: tasks, onJobFinished: onJobFinished)
  }

  /// The scheduler over this daemon's pipelines.
  public var scheduler: Scheduler {
    let state = self.state
    return Scheduler(
      store: store, pipelines: pipelines, maxAttempts: configuration.maxAttempts, logger: logger, now: options.now,
      onQueued: { state.notify() })
  }

  /// Requeues jobs whose worker is gone: leases of dead processes on this host at once, expired leases anywhere.
  func recoverJobs() async throws -> [Int64] {
    var requeued: [Int64] = []
    let host = "folio@\(ProcessInfo.processInfo.hostName):"
    for owner in try await store.runningLeaseOwners() where owner.hasPrefix(host) {
      let rest = owner.dropFirst(host.count)
      guard let pid = Int32(rest.prefix { $0.isNumber }), pid != getpid() else { continue }
      if kill(pid, 0) != 0 && errno == ESRCH {
        let recovery = try await store.requeueLeases(heldBy: owner)
        requeued += recovery.requeued
        if !recovery.requeued.isEmpty || !recovery.failed.isEmpty {
          logger.notice(
            "requeued the jobs of a stopped Folio process",
            metadata: [
              "owner": "\(owner)", "requeued": "\(recovery.requeued)", "failed": "\(recovery.failed)",
            ])
        }
      }
    }
    // Status rows of Folio processes on this host that are gone (SIGKILL, power loss) would show as stale forever.
    for instance in try await store.daemonInstances()
    where instance.host == ProcessInfo.processInfo.hostName && instance.pid != getpid()
      && kill(instance.pid, 0) != 0 && errno == ESRCH
    {
      try await store.removeDaemonInstance(id: instance.instanceID)
    }
    let expired = try await store.requeueExpiredLeases()
    if !expired.requeued.isEmpty || !expired.failed.isEmpty {
      logger.notice(
        "requeued jobs with expired leases", metadata: ["requeued": "\(expired.requeued)", "failed": "\(expired.failed)"])
    }
    return requeued + expired.requeued
  }

  /// Runs until SIGTERM/SIGINT (or, with `once`, until the inbox and the queue are done). Returns what the run did.
  public func run() async throws -> DaemonRunReport {
    let requeued = try await recoverJobs()
    report.update { $0.requeuedJobs = requeued }
    let scheduler = self.scheduler
    try await scheduler.sync()
    let recovered = try await intakeProcessor.recoverClaims()
    report.update { $0.recoveredClaims = recovered }

    let intakeService = IntakeService(daemon: self)
    let runnerService = RunnerService(daemon: self)
    let residencyService = ResidencyService(daemon: self)
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
    if options.once {
      try await scheduler.tick()
      services.append(.init(service: residencyService, successTerminationBehavior: .ignore))
      services.append(.init(service: runnerService, successTerminationBehavior: .gracefullyShutdownGroup))
      services.append(.init(service: intakeService, successTerminationBehavior: .ignore))
    } else {
      // Shutdown runs in reverse order: intake stops first, then the scheduler, then the running job finishes,
      // and the daemon's status row goes last.
      services.append(.init(service: residencyService))
      services.append(.init(service: runnerService))
      services.append(.init(service: SchedulerService(daemon: self, scheduler: scheduler)))
      services.append(.init(service: intakeService))
    }
    let group = ServiceGroup(
      configuration: ServiceGroupConfiguration(
        services: services,
        gracefulShutdownSignals: options.handlesSignals ? [.sigterm, .sigint] : [],
        cancellationSignals: [],
        logger: logger))
    logger.info(
      options.once ? "processing the inbox and the queue once" : "daemon running",
      metadata: [
        "inbox": "\(configuration.inbox)", "database": "\(configuration.database)",
        "watch": "\(configuration.watchMode == .native ? "native" : "polling")",
        "concurrency": "\(configuration.concurrency)", "model": "\(runner.modelID)",
      ])
    groupBox.lock.withLock { groupBox.group = group }
    try await group.run()
    try? await intakeProcessor.disposeFinished()
    logger.info("stopped cleanly")
    return report.lock.withLock { report.value }
  }

  /// Asks a running daemon (in this process) to stop as SIGTERM would: stop intake, finish or checkpoint.
  public func requestShutdown() async {
    let group = groupBox.lock.withLock { groupBox.group }
    await group?.triggerGracefulShutdown()
  }

  let groupBox = GroupBox()

  final class GroupBox: @unchecked Sendable {
    let lock = NSLock()
    var group: ServiceGroup?
  }

  /// Copies every regular file below `source` into the inbox (keeping subfolders, so document sets), each written
  /// under a hidden temporary name and renamed into place, so the watcher never sees a partial copy. `source` is
  /// only read. Symbolic links and hidden files are skipped.
  public static func copyTree(from source: String, into inbox: String) throws -> Int {
    let fm = FileManager.default
    let root = URL(fileURLWithPath: source).standardizedFileURL
    guard let enumerator = fm.enumerator(
      at: root, includingPropertiesForKeys: [.isRegularFileKey, .isSymbolicLinkKey], options: [.skipsHiddenFiles])
    else { throw FolioError(.fileNotFound, "cannot read \(source)") }
    var copied = 0
    for case let url as URL in enumerator {
      let values = try url.resourceValues(forKeys: [.isRegularFileKey, .isSymbolicLinkKey])
      guard values.isRegularFile == true, values.isSymbolicLink != true else { continue }
      let relative = String(url.standardizedFileURL.path.dropFirst(root.path.count + 1))
      let destination = URL(fileURLWithPath: inbox).appendingPathComponent(relative)
      try fm.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
      let temporary = destination.deletingLastPathComponent().appendingPathComponent(
        ".folio-copy-\(UUID().uuidString)")
      try fm.copyItem(at: url, to: temporary)
      if fm.fileExists(atPath: destination.path) {
        try? fm.removeItem(at: temporary)
        continue
      }
      try fm.moveItem(at: temporary, to: destination)
      copied += 1
    }
    return copied
  }
}

/// Watches the inbox and turns stable files into documents and jobs. Stops first at shutdown.
struct IntakeService: Service {
  let daemon: Daemon

  func run() async throws {
    let configuration = daemon.configuration
    let watcher = InboxWatcher(
      inbox: configuration.inbox, configuration: configuration.watcherConfiguration(once: daemon.options.once),
      ledger: daemon.ledger, clock: daemon.options.clock)
    let processor = daemon.intakeProcessor
    let logger = daemon.logger
    let deferred = daemon.deferred
    let state = daemon.state
    let watch = Task { await watcher.run() }
    // Files held back while the queue was full are taken again whenever a job finishes and the queue has room.
    let retry = Task {
      while !Task.isCancelled {
        await state.wait(timeout: .seconds(1))
        guard deferred.isPaused, !state.isShuttingDown else { continue }
        do {
          if try await processor.queueCapacityError() != nil { continue }
        } catch {
          continue
        }
        logger.notice("the queue has room again; taking the files held back", metadata: ["files": "\(deferred.count)"])
        for candidate in deferred.takeAll() { await take(candidate, watcher: watcher) }
      }
    }
    // Whatever ends intake (the inbox is done, shutdown, an error), the runner must learn it (`--once` waits for it).
    defer { daemon.state.finishIntake() }
    await withTaskCancellationOrGracefulShutdownHandler {
      for await event in watcher.events {
        switch event {
        case .ready(let candidate):
          await take(candidate, watcher: watcher)
        case .vanished(let path):
          logger.info("file vanished before it was taken", metadata: ["path": "\(path)"])
        case .rejected(let path, let error):
          daemon.report.update { $0.refused.append((path, error)) }
          logger.warning(
            "file refused in place", metadata: ["path": "\(path)", "code": "\(error.code)", "message": "\(error.message)"])
        case .notice(let text):
          logger.notice("\(text)")
        }
      }
      // `--once`: the inbox is done, but files held back for a full queue are still to be taken as it drains.
      while deferred.isPaused && !state.isShuttingDown && !Task.isCancelled {
        await state.wait(timeout: .milliseconds(200))
      }
    } onCancelOrGracefulShutdown: {
      watch.cancel()
      retry.cancel()
    }
    watch.cancel()
    retry.cancel()
    // Held files stay in the inbox untouched; the next start (or rescan) finds them again.
    for candidate in deferred.takeAll() { watcher.release(candidate.path) }
  }

  /// Claims a stable file and records it, or holds it back untouched when the queue is full.
  func take(_ candidate: InboxCandidate, watcher: InboxWatcher) async {
    let processor = daemon.intakeProcessor
    let logger = daemon.logger
    do {
      if let full = try await processor.queueCapacityError() {
        if daemon.deferred.add(candidate) {
          let first = daemon.report.lock.withLock {
            if daemon.report.value.heldForFullQueue.contains(candidate.relativePath) { return false }
            daemon.report.value.heldForFullQueue.append(candidate.relativePath)
            return true
          }
          if first {
            logger.warning(
              "queue full: file left in the inbox until the queue drains",
              metadata: ["path": "\(candidate.relativePath)", "code": "\(full.code)", "message": "\(full.message)"])
            _ = try? await daemon.store.recordIntakeFailure(
              IntakeFailure(
                originalPath: candidate.path, relativePath: candidate.relativePath, setName: candidate.documentSet,
                sha256: nil, sizeBytes: nil, errorCode: full.code.rawValue, errorMessage: full.message,
                finalPath: candidate.path))
          }
        }
        return
      }
      let claimed = try daemon.intake.claim(candidate)
      let outcome = try await processor.handle(claimed)
      daemon.report.update { report in
        switch outcome {
        case .recorded(let id, _): report.documentIDs.append(id)
        case .linked(let id, let original): report.linked.append((id, original))
        case .refused(let error): report.refused.append((claimed.relativePath, error))
        }
      }
      daemon.state.notify()
    } catch let error as FolioError {
      watcher.release(candidate.path)
      logger.warning(
        "file not taken",
        metadata: ["path": "\(candidate.relativePath)", "code": "\(error.code)", "message": "\(error.message)"])
    } catch {
      watcher.release(candidate.path)
      logger.error("intake failed", metadata: ["path": "\(candidate.relativePath)", "error": "\(error)"])
    }
  }
}

/// Runs the job workers. Stops last at shutdown: the running job finishes, or is checkpointed after the grace.
struct RunnerService: Service {
  let daemon: Daemon

  func run() async throws {
    let runner = daemon.jobRunner(stopsWhenIdle: daemon.options.once)
    let state = daemon.state
    let grace = daemon.configuration.shutdownGrace
    await withGracefulShutdownHandler {
      await runner.run()
    } onGracefulShutdown: {
      state.beginShutdown(grace: grace)
    }
  }
}

/// Fires scheduled pipelines.
struct SchedulerService: Service {
  let daemon: Daemon
  let scheduler: Scheduler

  func run() async throws {
    let logger = daemon.logger
    let state = daemon.state
    let loop = Task {
      while !Task.isCancelled && !state.isShuttingDown {
        do {
          try await scheduler.tick()
        } catch {
          logger.error("scheduler tick failed", metadata: ["error": "\(error)"])
        }
        let wake = await scheduler.nextWake()
        try? await Task.sleep(for: wake)
      }
    }
    await withTaskCancellationOrGracefulShutdownHandler {
      await loop.value
    } onCancelOrGracefulShutdown: {
      loop.cancel()
    }
  }
}
