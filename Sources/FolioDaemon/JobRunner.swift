#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import FolioBase
import FolioPipelines
import FolioStore
import Foundation
import Logging

/// State shared by the daemon's services in one process: shutdown, whether intake is done (`--once`), and the
/// controls of running jobs (so a shutdown can checkpoint them).
final class RuntimeState: @unchecked Sendable {
  private let lock = NSLock()
  private var shuttingDown = false
  private var intakeDone = false
  private var controls: [Int64: JobControl] = [:]
  private var waiters: [UUID: AsyncStream<Void>.Continuation] = [:]

  var isShuttingDown: Bool { lock.withLock { shuttingDown } }
  var isIntakeFinished: Bool { lock.withLock { intakeDone } }
  var activeJobs: Int { lock.withLock { controls.count } }

  func finishIntake() {
    lock.withLock { intakeDone = true }
    notify()
  }

  /// Stops claiming; after `grace`, asks running jobs to checkpoint.
  func beginShutdown(grace: Duration) {
    let first = lock.withLock {
      defer { shuttingDown = true }
      return !shuttingDown
    }
    guard first else { return }
    notify()
    Task { [self] in
      if grace > .zero { try? await Task.sleep(for: grace) }
      for control in lock.withLock({ Array(controls.values) }) { control.request(.shutdown) }
    }
  }

  func register(_ id: Int64, _ control: JobControl) {
    lock.withLock { controls[id] = control }
  }

  func unregister(_ id: Int64) {
    _ = lock.withLock { controls.removeValue(forKey: id) }
    notify()
  }

  /// Wakes idle workers (new jobs were queued, a job finished, or shutdown began).
  func notify() {
    for waiter in lock.withLock({ Array(waiters.values) }) { waiter.yield() }
  }

  /// Waits until ``notify()`` or `timeout`, whichever comes first.
  func wait(timeout: Duration) async {
    let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    let id = UUID()
    lock.withLock { waiters[id] = continuation }
    defer {
      _ = lock.withLock { waiters.removeValue(forKey: id) }
      continuation.finish()
    }
    await withTaskGroup(of: Void.self) { group in
      group.addTask {
        for await _ in stream { return }
      }
      group.addTask { try? await Task.sleep(for: timeout) }
      await group.next()
      group.cancelAll()
    }
  }
}

/// Claims jobs, runs them with a lease and heartbeat, records results, and disposes of originals whose
/// processing is over. `concurrency` workers share the one resident model (issue 4: one job at a time per model by
/// default).
struct JobRunner: Sendable {
  let configuration: DaemonConfiguration
  let store: Store
  let executor: JobExecutor
  let intake: IntakeProcessor
  let pipelines: [String: Pipeline]
  let logger: Logger
  let state: RuntimeState
  /// Exit when intake is finished and no job is claimable (`--once`, `folio translate`).
  let stopsWhenIdle: Bool
  /// Only claim these tasks (empty: any).
  let tasks: Set<String>
  /// Called after each job reaches a state (for progress lines).
  let onJobFinished: @Sendable (Job) async -> Void

  /// This process's worker id prefix: `folio@HOST:PID`. A restarted daemon on the same host recognises leases of
  /// a dead process by it and requeues them at once instead of waiting for them to lapse.
  static let ownerPrefix: String = "folio@\(ProcessInfo.processInfo.hostName):\(getpid())"

  /// Runs the workers until shutdown (or until idle, with ``stopsWhenIdle``).
  func run() async {
    await withTaskGroup(of: Void.self) { group in
      for index in 1...max(1, configuration.concurrency) {
        group.addTask { await worker(index) }
      }
    }
  }

  func worker(_ index: Int) async {
    let owner = "\(Self.ownerPrefix)/w\(index)"
    // How long an idle worker waits before looking again when nothing wakes it: short in --once mode (jobs
    // depending on another worker's job), a few seconds otherwise (another process may queue jobs).
    let idle: Duration = stopsWhenIdle ? .milliseconds(200) : .seconds(2)
    while !state.isShuttingDown {
      do {
        guard let job = try await store.claimNextJob(
          owner: owner, leaseDuration: configuration.leaseDuration, tasks: tasks)
        else {
          if stopsWhenIdle, state.isIntakeFinished, state.activeJobs == 0,
            try await store.hasOpenWork(claimableBy: tasks).claimable == 0
          {
            return
          }
          await state.wait(timeout: idle)
          continue
        }
        await execute(job)
      } catch {
        logger.error("the job queue is unavailable; retrying", metadata: ["error": "\(error)"])
        await state.wait(timeout: .seconds(1))
      }
    }
  }

  /// Whether a failure would fail again the same way (no point in retrying without a change).
  static func isPermanent(_ code: FolioError.Code) -> Bool {
    let transient: Set<FolioError.Code> = [.databaseBusy, .databaseError, .generationFailed, .fileUnreadable]
    return !transient.contains(code)
  }

  func execute(_ job: Job) async {
    guard let lease = job.lease, let jobID = job.id else { return }
    let meta: Logger.Metadata = [
      "job": "\(jobID)", "document": "\(job.documentID)", "pipeline": "\(job.pipelineName)",
      "step": "\(job.stepID)", "attempt": "\(job.attempts)",
    ]
    var stepTimeout = configuration.maxStepTimeout
    var step: PipelineStep?
    if let pipeline = pipelines[job.pipelineName], let found = pipeline.step(id: job.stepID) {
      step = found
      stepTimeout = executor.timeout(of: found)
    }
    let control = JobControl(timeout: stepTimeout)
    state.register(jobID, control)
    if state.isShuttingDown { control.request(.shutdown) }
    defer { state.unregister(jobID) }
    logger.info("job started", metadata: meta.merging(["language": "\(job.language)"]) { $1 })

    let heartbeat = Task {
      var current = lease
      let interval = configuration.leaseDuration / 3
      while !Task.isCancelled {
        try? await Task.sleep(for: interval)
        if Task.isCancelled { return }
        do {
          current = try await store.heartbeat(current, leaseDuration: configuration.leaseDuration)
        } catch let error as FolioError where error.code == .leaseLost {
          control.request(.leaseLost)
          return
        } catch {
          logger.warning("heartbeat failed", metadata: meta.merging(["error": "\(error)"]) { $1 })
        }
      }
    }
    defer { heartbeat.cancel() }

    do {
      guard let document = try await store.document(id: job.documentID) else {
        throw FolioError(.documentNotFound, "document \(job.documentID) no longer exists")
      }
      guard let pipeline = pipelines[job.pipelineName] ?? BatchTranslation.builtIn(named: job.pipelineName) else {
        throw FolioError(
          .invalidPipeline,
          "pipeline \(job.pipelineName) is no longer defined in \(configuration.pipelines); restore it, or cancel "
            + "its jobs")
      }
      let resolved = try step ?? JobExecutor.step(of: job, in: pipeline)
      let output = try await executor.execute(job: job, document: document, step: resolved, control: control)
      heartbeat.cancel()
      let result = try await store.complete(lease, output: output)
      logger.info(
        "job succeeded",
        metadata: meta.merging([
          "result": "\(result.id ?? 0)", "tokens": "\(output.completionTokens ?? 0)",
          "ms": "\(output.totalDuration.map { Int($0.seconds * 1000) } ?? 0)",
        ]) { $1 })
    } catch {
      heartbeat.cancel()
      await recordFailure(error, job: job, lease: lease, control: control, meta: meta)
    }
    if let finished = try? await store.job(id: jobID) { await onJobFinished(finished) }
    if let document = try? await store.document(id: job.documentID),
      [.processed, .failed, .linked].contains(document.status)
    {
      try? await intake.disposeFinished()
    }
  }

  func recordFailure(_ error: any Error, job: Job, lease: JobLease, control: JobControl, meta: Logger.Metadata) async {
    let folio: FolioError
    switch error {
    case let e as FolioError: folio = e
    case is CancellationError: folio = FolioError(.interrupted, "the job was cancelled")
    default: folio = FolioError(.generationFailed, "the step failed: \(error)")
    }
    do {
      if folio.code == .leaseLost || control.stopReason == .leaseLost {
        logger.warning("lease lost; the attempt's output is discarded", metadata: meta)
        return
      }
      if folio.code == .interrupted || control.stopReason == .shutdown {
        try await store.release(lease, reason: "Folio stopped during this job; it resumes at the next start")
        logger.notice("job checkpointed and returned to the queue", metadata: meta)
        return
      }
      let permanent = Self.isPermanent(folio.code)
      let updated = try await store.markFailed(lease, code: folio.code, message: folio.message, permanent: permanent)
      logger.warning(
        updated.status == .failed ? "job failed" : "job failed; it will be retried",
        metadata: meta.merging(["code": "\(folio.code)", "message": "\(folio.message)"]) { $1 })
    } catch {
      logger.error("cannot record the job's failure", metadata: meta.merging(["error": "\(error)"]) { $1 })
    }
  }
}
