import FolioBase
import Foundation
import GRDB

/// The outcome of ``Store/beginScheduleRun(pipelineName:scheduledFor:trigger:nextRunAt:)``.
public enum ScheduleRunStart: Sendable, Hashable {
  /// The run started: queue its jobs with this run's id.
  case started(ScheduleRun)
  /// Another run is going and the overlap policy is `queue`: this one starts with
  /// ``Store/startPendingScheduleRun(pipelineName:)`` when that one finishes.
  case queued(ScheduleRun)
  /// Another run is going and the overlap policy is `skip` (or one is already queued): recorded as skipped.
  case skipped(ScheduleRun)
  /// This occurrence was already handled (by this daemon before a restart, or by another daemon).
  case alreadyHandled(ScheduleRun)

  /// The run row.
  public var run: ScheduleRun {
    switch self {
    case .started(let r), .queued(let r), .skipped(let r), .alreadyHandled(let r): r
    }
  }
}

extension Store {
  /// Records the scheduled pipelines found in `pipelines/` (call at startup). Existing state (last times,
  /// `next_run_at`) is kept; `next_run_at` is cleared when the cron or time zone changed, so the scheduler
  /// recomputes it. Schedules no longer defined are marked `disabled` (their history stays).
  @discardableResult
  public func syncSchedules(_ definitions: [ScheduleDefinition]) async throws -> [ScheduleState] {
    let now = self.now()
    return try await write("record schedules") { db in
      for d in definitions {
        try db.execute(
          sql: """
            INSERT INTO schedule (pipeline_name, pipeline_version, cron, time_zone, target_set, overlap, missed,
              is_enabled, status, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? THEN 'idle' ELSE 'disabled' END, ?)
            ON CONFLICT (pipeline_name) DO UPDATE SET
              next_run_at = CASE WHEN cron <> excluded.cron OR time_zone <> excluded.time_zone OR is_enabled = 0
                THEN NULL ELSE next_run_at END,
              pipeline_version = excluded.pipeline_version, cron = excluded.cron, time_zone = excluded.time_zone,
              target_set = excluded.target_set, overlap = excluded.overlap, missed = excluded.missed,
              is_enabled = excluded.is_enabled,
              status = CASE WHEN status = 'running' THEN 'running' WHEN excluded.is_enabled THEN 'idle'
                ELSE 'disabled' END,
              updated_at = excluded.updated_at
            """,
          arguments: [
            d.pipelineName, d.pipelineVersion, d.cron, d.timeZone, d.targetSet, d.overlap, d.missed, d.isEnabled,
            d.isEnabled, now,
          ])
      }
      let names = definitions.map(\.pipelineName)
      try db.execute(
        sql: """
          UPDATE schedule SET is_enabled = 0, next_run_at = NULL, updated_at = ?,
            status = CASE WHEN status = 'running' THEN 'running' ELSE 'disabled' END
          WHERE pipeline_name NOT IN (\(names.isEmpty ? "''" : names.map { _ in "?" }.joined(separator: ", ")))
          """, arguments: [now] + StatementArguments(names))
      return try ScheduleState.order(Column("pipeline_name")).fetchAll(db)
    }
  }

  /// Every schedule, by name.
  public func schedules() async throws -> [ScheduleState] {
    try await read("list schedules") { db in try ScheduleState.order(Column("pipeline_name")).fetchAll(db) }
  }

  /// One schedule.
  public func schedule(named name: String) async throws -> ScheduleState? {
    try await read("read schedule \(name)") { db in try ScheduleState.fetchOne(db, key: name) }
  }

  /// Persists the next occurrence to handle.
  public func setNextRunAt(pipelineName: String, _ date: Date?) async throws {
    let now = self.now()
    try await write("update schedule \(pipelineName)") { db in
      try db.execute(
        sql: "UPDATE schedule SET next_run_at = ?, updated_at = ? WHERE pipeline_name = ?",
        arguments: [date, now, pipelineName])
      guard db.changesCount == 1 else { throw Self.unknownSchedule(pipelineName) }
    }
  }

  static func unknownSchedule(_ name: String) -> FolioError {
    FolioError(.invalidArgument, "no schedule named \(name); is the pipeline scheduled and synced?")
  }

  /// Records occurrences that will not run (missed while the daemon was down, per the missed-run policy) with a
  /// reason, and advances `next_run_at` in the same transaction. Occurrences already recorded are left alone.
  @discardableResult
  public func recordSkippedOccurrences(
    pipelineName: String, occurrences: [Date], reason: String, nextRunAt: Date?
  ) async throws -> [ScheduleRun] {
    let now = self.now()
    return try await write("record skipped runs of \(pipelineName)") { db in
      guard try ScheduleState.exists(db, key: pipelineName) else { throw Self.unknownSchedule(pipelineName) }
      var runs: [ScheduleRun] = []
      for occurrence in occurrences {
        var run = ScheduleRun(
          id: nil, pipelineName: pipelineName, scheduledFor: occurrence, trigger: .schedule, status: .skipped,
          reason: reason, createdAt: now, startedAt: nil, finishedAt: nil)
        try run.insert(db, onConflict: .ignore)
        if run.id != nil, db.changesCount == 1 { runs.append(run) }
      }
      try db.execute(
        sql: "UPDATE schedule SET next_run_at = ?, updated_at = ? WHERE pipeline_name = ?",
        arguments: [nextRunAt, now, pipelineName])
      return runs
    }
  }

  /// Starts the run for one occurrence, applying the schedule's overlap policy atomically (partial UNIQUE indexes
  /// allow one running and one pending run per schedule, and one row per occurrence, across processes), and
  /// persists `nextRunAt` in the same transaction when given.
  public func beginScheduleRun(
    pipelineName: String, scheduledFor: Date, trigger: ScheduleRun.Trigger = .schedule, nextRunAt: Date? = nil
  ) async throws -> ScheduleRunStart {
    let now = self.now()
    return try await write("start a run of \(pipelineName)") { db in
      guard let schedule = try ScheduleState.fetchOne(db, key: pipelineName) else {
        throw Self.unknownSchedule(pipelineName)
      }
      if let nextRunAt {
        try db.execute(
          sql: "UPDATE schedule SET next_run_at = ?, updated_at = ? WHERE pipeline_name = ?",
          arguments: [nextRunAt, now, pipelineName])
      }
      if trigger != .manual,
        let existing = try ScheduleRun.fetchOne(
          db, sql: "SELECT * FROM schedule_run WHERE pipeline_name = ? AND scheduled_for = ? AND trigger <> 'manual'",
          arguments: [pipelineName, scheduledFor])
      {
        return .alreadyHandled(existing)
      }
      let running = try ScheduleRun.fetchOne(
        db, sql: "SELECT * FROM schedule_run WHERE pipeline_name = ? AND status = 'running'", arguments: [pipelineName])
      var run = ScheduleRun(
        id: nil, pipelineName: pipelineName, scheduledFor: scheduledFor, trigger: trigger, status: .running,
        reason: nil, createdAt: now, startedAt: now, finishedAt: nil)
      if let running {
        let pending = try ScheduleRun.fetchOne(
          db, sql: "SELECT * FROM schedule_run WHERE pipeline_name = ? AND status = 'pending'",
          arguments: [pipelineName])
        run.startedAt = nil
        if schedule.overlap == "queue" && pending == nil {
          run.status = .pending
          run.reason = "overlap: waits for run \(running.id ?? 0)"
          try run.insert(db)
          return .queued(run)
        }
        run.status = .skipped
        run.reason =
          pending == nil
          ? "overlap: run \(running.id ?? 0) (scheduled for \(running.scheduledFor)) was still running"
          : "overlap: run \(pending?.id ?? 0) is already waiting"
        try run.insert(db)
        return .skipped(run)
      }
      try run.insert(db)
      try db.execute(
        sql: "UPDATE schedule SET status = 'running', last_started_at = ?, updated_at = ? WHERE pipeline_name = ?",
        arguments: [now, now, pipelineName])
      return .started(run)
    }
  }

  /// Starts the pending run of a schedule if none is running (after a run finished, under overlap `queue`).
  public func startPendingScheduleRun(pipelineName: String) async throws -> ScheduleRun? {
    let now = self.now()
    return try await write("start the pending run of \(pipelineName)") { db in
      guard
        try ScheduleRun.filter(Column("pipeline_name") == pipelineName && Column("status") == "running")
          .fetchCount(db) == 0,
        var pending = try ScheduleRun.filter(Column("pipeline_name") == pipelineName && Column("status") == "pending")
          .fetchOne(db)
      else { return nil }
      pending.status = .running
      pending.startedAt = now
      try pending.update(db)
      try db.execute(
        sql: "UPDATE schedule SET status = 'running', last_started_at = ?, updated_at = ? WHERE pipeline_name = ?",
        arguments: [now, now, pipelineName])
      return pending
    }
  }

  /// Finishes a run explicitly (e.g. it queued no jobs because everything was already translated). Without a
  /// status, the status follows its jobs: `failed` if any failed, else `succeeded`.
  @discardableResult
  public func finishScheduleRun(
    runID: Int64, status: ScheduleRun.Status? = nil, reason: String? = nil
  ) async throws -> ScheduleRun {
    let now = self.now()
    return try await write("finish schedule run \(runID)") { db in
      guard try ScheduleRun.exists(db, id: runID) else {
        throw FolioError(.invalidArgument, "schedule run \(runID) does not exist")
      }
      try Self.finishRun(db, runID: runID, status: status, reason: reason, now: now)
      guard let run = try ScheduleRun.fetchOne(db, id: runID) else {
        throw FolioError(.databaseError, "schedule run \(runID) vanished")
      }
      return run
    }
  }

  /// Recent runs of a schedule (including skipped occurrences), newest first.
  public func scheduleRuns(pipelineName: String, limit: Int = 100) async throws -> [ScheduleRun] {
    try await read("list schedule runs") { db in
      try ScheduleRun.filter(Column("pipeline_name") == pipelineName)
        .order(Column("scheduled_for").desc, Column("id").desc).limit(limit).fetchAll(db)
    }
  }

  static func finishRun(_ db: Database, runID: Int64, status: ScheduleRun.Status?, reason: String?, now: Date) throws {
    let failed =
      try Int.fetchOne(
        db, sql: "SELECT count(*) FROM job WHERE schedule_run_id = ? AND status = 'failed'", arguments: [runID]) ?? 0
    let final = status ?? (failed > 0 ? .failed : .succeeded)
    try db.execute(
      sql: """
        UPDATE schedule_run SET status = ?, finished_at = ?, reason = coalesce(?, reason)
        WHERE id = ? AND status IN ('running', 'pending')
        """, arguments: [final, now, reason, runID])
    guard db.changesCount == 1 else { return }
    try db.execute(
      sql: """
        UPDATE schedule SET last_finished_at = ?, last_run_status = ?, updated_at = ?,
          status = CASE WHEN is_enabled THEN 'idle' ELSE 'disabled' END
        WHERE pipeline_name = (SELECT pipeline_name FROM schedule_run WHERE id = ?)
          AND NOT EXISTS (SELECT 1 FROM schedule_run r WHERE r.pipeline_name = schedule.pipeline_name
            AND r.status = 'running')
        """, arguments: [now, final.rawValue, now, runID])
  }

  /// Finishes running scheduled runs whose jobs have all reached a terminal state.
  static func finishScheduleRunsIfDone(_ db: Database, runIDs: Set<Int64>, now: Date) throws {
    for id in runIDs {
      let open =
        try Int.fetchOne(
          db, sql: "SELECT count(*) FROM job WHERE schedule_run_id = ? AND status IN ('queued', 'running')",
          arguments: [id]) ?? 0
      if open == 0 {
        let status = try String.fetchOne(db, sql: "SELECT status FROM schedule_run WHERE id = ?", arguments: [id])
        if status == "running" { try finishRun(db, runID: id, status: nil, reason: nil, now: now) }
      }
    }
  }
}
