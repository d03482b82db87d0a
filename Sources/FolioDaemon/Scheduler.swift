import FolioBase
import FolioPipelines
import FolioStore
import Foundation
import Logging

/// Batch translation of a document set: what a scheduled run and `folio translate --set NAME --to de,ja` queue.
public enum BatchTranslation {
  /// The pipeline `folio translate` uses when no scheduled pipeline targets the set: one `translate` step from the
  /// document's text, with the built-in prompt and options. Results carry the pipeline name `translate`.
  public static let builtInName = "translate"

  /// The built-in pipeline for a name, if it is one.
  public static func builtIn(named name: String) -> Pipeline? {
    guard name == builtInName else { return nil }
    return Pipeline(
      name: builtInName, version: 1, description: "folio translate: translate a set's documents",
      match: DocumentMatch(kinds: [.text]), steps: [PipelineStep(id: "translate", task: .translate)],
      sourceFile: "(built in)")
  }

  /// What a batch queued.
  public struct Queued: Sendable, Hashable {
    /// Documents of the set considered.
    public var documents: Int
    /// Jobs that will run (queued now, or still queued from before).
    public var jobIDs: [Int64]
    /// Jobs that had already succeeded (nothing to redo).
    public var alreadyDone: Int
  }

  /// Queues the pipeline's steps for every document of `set` that they can read (text documents; images too when
  /// the pipeline reads their OCR). Succeeded jobs are kept, failed ones requeued (trigger `schedule`); the
  /// translation memory makes each job translate only segments it has not translated before.
  static func enqueue(
    pipeline: Pipeline, set: String, languages: [String]?, runID: Int64?, store: Store, maxAttempts: Int
  ) async throws -> Queued {
    let readsImages = pipeline.steps.contains { $0.task.readsImage }
    var queued = Queued(documents: 0, jobIDs: [], alreadyDone: 0)
    var offset = 0
    let plans = IntakeProcessor.plan(pipeline) { step in languages ?? step.languages }
    while true {
      let page = try await store.documents(set: set, limit: 500, offset: offset)
      if page.isEmpty { break }
      offset += page.count
      for document in page where document.status != .linked {
        guard let id = document.id, document.kind == .text || readsImages else { continue }
        queued.documents += 1
        let jobs = try await store.enqueue(
          documentID: id, pipelineName: pipeline.name, pipelineVersion: pipeline.version, steps: plans,
          trigger: .schedule, maxAttempts: maxAttempts, scheduleRunID: runID)
        for job in jobs {
          if job.status == .succeeded { queued.alreadyDone += 1 } else if let jobID = job.id { queued.jobIDs.append(jobID) }
        }
      }
    }
    return queued
  }
}

/// Fires scheduled pipelines (cron in `pipelines/*.yaml`, state persisted in the `schedule` table): applies the
/// missed-run policy after downtime, the overlap policy when a run is still going, and records every skipped
/// occurrence with a reason. Time comes from the injected `now`, so tests move the clock instead of sleeping.
public struct Scheduler: Sendable {
  let store: Store
  let pipelines: [Pipeline]
  let maxAttempts: Int
  let logger: Logger
  let now: @Sendable () -> Date
  let onQueued: @Sendable () -> Void

  /// The scheduled pipelines (enabled or not).
  var scheduled: [(Pipeline, PipelineSchedule)] {
    pipelines.compactMap { p in p.schedule.map { (p, $0) } }
  }

  /// Records the scheduled pipelines in the store (call at startup).
  public func sync() async throws {
    let definitions = scheduled.map { p, s in
      ScheduleDefinition(
        pipelineName: p.name, pipelineVersion: p.version, cron: s.cron.source,
        timeZone: s.timeZone.identifier, targetSet: s.targetSet, overlap: s.overlap.rawValue,
        missed: s.missed.name, isEnabled: p.isEnabled)
    }
    try await store.syncSchedules(definitions)
  }

  /// What one tick did, for logs and tests.
  public struct TickReport: Sendable, Hashable {
    /// Runs started (run id, occurrence).
    public var started: [Int64] = []
    /// Occurrences recorded as skipped (missed or overlap).
    public var skipped: Int = 0
    /// Runs queued behind a running one (overlap `queue`).
    public var queued: Int = 0
  }

  /// Handles every due occurrence of every enabled schedule at `now()`.
  @discardableResult
  public func tick() async throws -> TickReport {
    var report = TickReport()
    let now = self.now()
    for (pipeline, schedule) in scheduled where pipeline.isEnabled {
      let state = try await store.schedule(named: pipeline.name)
      let decision = SchedulePlanner.decide(schedule: schedule, nextRunAt: state?.nextRunAt, now: now)
      if !decision.skipped.isEmpty || decision.uncountedSkipped {
        let recorded = try await store.recordSkippedOccurrences(
          pipelineName: pipeline.name, occurrences: decision.skipped,
          reason: "missed: Folio was not running at this time (missed-run policy \(schedule.missed.name))"
            + (decision.uncountedSkipped ? "; older occurrences were not enumerated" : ""),
          nextRunAt: decision.nextRunAt)
        report.skipped += recorded.count
        if !recorded.isEmpty {
          logger.notice(
            "missed schedule occurrences skipped",
            metadata: ["pipeline": "\(pipeline.name)", "count": "\(recorded.count)"])
        }
      }
      if decision.runs.isEmpty {
        if state?.nextRunAt != decision.nextRunAt {
          try await store.setNextRunAt(pipelineName: pipeline.name, decision.nextRunAt)
        }
      }
      let cutoff = now.addingTimeInterval(-SchedulePlanner.defaultGrace.seconds)
      for occurrence in decision.runs {
        let start = try await store.beginScheduleRun(
          pipelineName: pipeline.name, scheduledFor: occurrence,
          trigger: occurrence < cutoff ? .catchUp : .schedule, nextRunAt: decision.nextRunAt)
        switch start {
        case .started(let run):
          try await queue(run: run, pipeline: pipeline, schedule: schedule)
          if let id = run.id { report.started.append(id) }
        case .queued(let run):
          report.queued += 1
          logger.notice("schedule run waits for the running one", metadata: ["pipeline": "\(pipeline.name)", "run": "\(run.id ?? 0)"])
        case .skipped(let run):
          report.skipped += 1
          logger.notice(
            "schedule occurrence skipped",
            metadata: ["pipeline": "\(pipeline.name)", "reason": "\(run.reason ?? "")"])
        case .alreadyHandled:
          break
        }
      }
      // A run queued behind another starts once that one has finished.
      if let pending = try await store.startPendingScheduleRun(pipelineName: pipeline.name) {
        try await queue(run: pending, pipeline: pipeline, schedule: schedule)
        if let id = pending.id { report.started.append(id) }
      }
    }
    return report
  }

  func queue(run: ScheduleRun, pipeline: Pipeline, schedule: PipelineSchedule) async throws {
    guard let runID = run.id else { return }
    let queued = try await BatchTranslation.enqueue(
      pipeline: pipeline, set: schedule.targetSet, languages: nil, runID: runID, store: store,
      maxAttempts: maxAttempts)
    let fresh = try await store.jobs(matching: JobFilter(statuses: [.queued, .running], scheduleRunID: runID))
    logger.info(
      "schedule run started",
      metadata: [
        "pipeline": "\(pipeline.name)", "run": "\(runID)", "set": "\(schedule.targetSet)",
        "documents": "\(queued.documents)", "jobs": "\(fresh.count)", "already_done": "\(queued.alreadyDone)",
      ])
    if fresh.isEmpty {
      try await store.finishScheduleRun(
        runID: runID, status: .succeeded, reason: "nothing to do: every document of the set was already processed")
    } else {
      onQueued()
    }
  }

  /// The time to wake up for the next occurrence (at most a minute away, so pending runs start soon after the
  /// running one finishes and edits to the clock are noticed).
  func nextWake() async -> Duration {
    let states = (try? await store.schedules()) ?? []
    let now = self.now()
    let next = states.filter(\.isEnabled).compactMap(\.nextRunAt).min()
    guard let next else { return .seconds(60) }
    let seconds = max(0.05, min(60, next.timeIntervalSince(now) + 0.05))
    return .milliseconds(Int64(seconds * 1000))
  }
}
