import FolioBase
import Foundation
import GRDB

/// What ``Store/requeueExpiredLeases()`` did.
public struct LeaseRecovery: Sendable, Hashable {
  /// Jobs returned to the queue (attempts left).
  public var requeued: [Int64]
  /// Jobs that had used their last attempt and failed permanently with ``FolioError/Code/leaseExpired``.
  public var failed: [Int64]
}

/// Which jobs to list.
public struct JobFilter: Sendable, Hashable {
  /// Only these states.
  public var statuses: Set<JobStatus> = []
  /// Only this document.
  public var documentID: Int64?
  /// Only this pipeline.
  public var pipelineName: String?
  /// Only this step.
  public var stepID: String?
  /// Only jobs of this scheduled run.
  public var scheduleRunID: Int64?
  /// At most this many, newest first.
  public var limit: Int = 1000

  /// Creates a filter (all fields optional).
  public init(
    statuses: Set<JobStatus> = [], documentID: Int64? = nil, pipelineName: String? = nil, stepID: String? = nil,
    scheduleRunID: Int64? = nil, limit: Int = 1000
  ) {
    self.statuses = statuses
    self.documentID = documentID
    self.pipelineName = pipelineName
    self.stepID = stepID
    self.scheduleRunID = scheduleRunID
    self.limit = limit
  }
}

extension Store {
  /// Default retry back-off after a transient failure: 30 s × 2^(attempt − 1), at most 10 minutes. Long enough for a
  /// transient condition (memory pressure, a busy disk) to pass, short enough that `--once` runs still finish.
  public static func retryDelay(afterAttempt attempt: Int) -> Duration {
    let exponent = min(max(attempt - 1, 0), 5)
    return min(.seconds(30 * (1 << exponent)), .seconds(600))
  }

  // MARK: Enqueue

  /// Queues the steps of one pipeline for one document, in one transaction, wiring each step that reads another
  /// step's output to that step's job (it becomes claimable only once that job succeeded).
  ///
  /// Idempotent: a (document, pipeline, step, language, generation) that is already queued is not queued twice (a
  /// UNIQUE constraint), so stray inbox events cannot double the work; the existing job is returned instead.
  /// Generations: `reprocess` creates a new generation of every step. `schedule` requeues jobs that failed or were
  /// cancelled, keeps succeeded ones (a run only does what is missing), and starts a new generation where the
  /// pipeline version changed. Other triggers use the latest generation.
  ///
  /// - Returns: one job per (step, language), inserted or existing, in plan order.
  public func enqueue(
    documentID: Int64, pipelineName: String, pipelineVersion: Int, steps: [JobPlan], trigger: JobTrigger,
    maxAttempts: Int = 3, priority: Int = 0, scheduleRunID: Int64? = nil
  ) async throws -> [Job] {
    guard maxAttempts >= 1 else { throw FolioError(.invalidArgument, "maxAttempts must be at least 1") }
    let now = self.now()
    return try await write("queue jobs for document \(documentID)") { db in
      guard try Document.exists(db, id: documentID) else {
        throw FolioError(.documentNotFound, "document \(documentID) does not exist")
      }
      let latest =
        try Int.fetchOne(
          db, sql: "SELECT max(generation) FROM job WHERE document_id = ? AND pipeline_name = ?",
          arguments: [documentID, pipelineName])
      var generation = latest ?? 0
      if trigger == .reprocess, latest != nil { generation += 1 }
      if trigger == .schedule, latest != nil {
        let older =
          try Int.fetchOne(
            db,
            sql: "SELECT count(*) FROM job WHERE document_id = ? AND pipeline_name = ? AND generation = ? "
              + "AND pipeline_version <> ?",
            arguments: [documentID, pipelineName, generation, pipelineVersion]) ?? 0
        if older > 0 { generation += 1 }
      }
      var jobs: [Job] = []
      var byStep: [String: Int64] = [:]
      for (index, plan) in steps.enumerated() {
        var dependsOn: Int64?
        if let input = plan.inputStepID {
          guard let id = byStep[input] else {
            throw FolioError(
              .invalidArgument, "step \(plan.stepID) reads step \(input), which is not earlier in the plan")
          }
          dependsOn = id
        }
        let language = plan.language ?? ""
        if var existing = try Job.fetchOne(
          db,
          sql: "SELECT * FROM job WHERE document_id = ? AND pipeline_name = ? AND step_id = ? AND language = ? "
            + "AND generation = ?",
          arguments: [documentID, pipelineName, plan.stepID, language, generation])
        {
          if trigger == .schedule && (existing.status == .failed || existing.status == .cancelled) {
            try db.execute(
              sql: """
                UPDATE job SET status = 'queued', attempts = 0, trigger = 'schedule', schedule_run_id = ?,
                  available_at = ?, finished_at = NULL, error_code = NULL, error_message = NULL
                WHERE id = ?
                """, arguments: [scheduleRunID, now, existing.id])
            existing = try Job.fetchOne(db, id: existing.id) ?? existing
          }
          jobs.append(existing)
          if byStep[plan.stepID] == nil { byStep[plan.stepID] = existing.id }
          continue
        }
        var job = Job(
          id: nil, documentID: documentID, pipelineName: pipelineName, pipelineVersion: pipelineVersion,
          stepID: plan.stepID, stepIndex: index, task: plan.task, language: language, generation: generation,
          dependsOnJobID: dependsOn, scheduleRunID: scheduleRunID, status: .queued, trigger: trigger,
          priority: priority, attempts: 0, maxAttempts: maxAttempts, leaseOwner: nil, leaseExpiresAt: nil,
          heartbeatAt: nil, availableAt: now, createdAt: now, startedAt: nil, finishedAt: nil, errorCode: nil,
          errorMessage: nil)
        try job.insert(db)
        jobs.append(job)
        if byStep[plan.stepID] == nil { byStep[plan.stepID] = job.id }
      }
      try Self.refreshDocumentStatus(db, documentIDs: [documentID], now: now)
      return jobs
    }
  }

  // MARK: Claim, heartbeat, complete, fail

  /// Atomically claims the next claimable job for `owner` and gives it a lease until `now + leaseDuration`.
  ///
  /// Claimable: `queued`, available (back-off elapsed), and whatever it reads has succeeded; highest priority first,
  /// then oldest. The claim is one `UPDATE … WHERE id = (SELECT …) AND status = 'queued' RETURNING *` inside an
  /// IMMEDIATE transaction, so two processes on one database never get the same job. Expired leases are requeued
  /// first, in the same transaction, so a dead worker's jobs come back on their own.
  ///
  /// - Parameter tasks: only claim these tasks (e.g. a worker without a vision model); empty means any.
  /// - Returns: the running job (its ``Job/lease`` is set), or nil when nothing is claimable.
  public func claimNextJob(owner: String, leaseDuration: Duration, tasks: Set<String> = []) async throws -> Job? {
    guard !owner.isEmpty else { throw FolioError(.invalidArgument, "a worker id cannot be empty") }
    let now = self.now()
    let expires = now.addingTimeInterval(leaseDuration.timeInterval)
    return try await write("claim a job") { db in
      _ = try Self.requeueExpired(db, now: now)
      var taskFilter = ""
      var arguments: StatementArguments = [owner, expires, now, now, now]
      if !tasks.isEmpty {
        taskFilter = "AND j.task IN (\(tasks.map { _ in "?" }.joined(separator: ", ")))"
        arguments += StatementArguments(tasks.sorted())
      }
      let job = try Job.fetchOne(
        db,
        sql: """
          UPDATE job SET status = 'running', attempts = attempts + 1, lease_owner = ?, lease_expires_at = ?,
            heartbeat_at = ?, started_at = ?, finished_at = NULL
          WHERE id = (
            SELECT j.id FROM job j
            WHERE j.status = 'queued' AND j.available_at <= ? \(taskFilter)
              AND (j.depends_on_job_id IS NULL
                   OR EXISTS (SELECT 1 FROM job d WHERE d.id = j.depends_on_job_id AND d.status = 'succeeded'))
            ORDER BY j.priority DESC, j.id
            LIMIT 1)
          AND status = 'queued'
          RETURNING *
          """, arguments: arguments)
      if let job { try Self.refreshDocumentStatus(db, documentIDs: [job.documentID], now: now) }
      return job
    }
  }

  /// Renews a lease (call well within the lease duration, e.g. every third of it, and between generated chunks).
  ///
  /// - Throws: ``FolioError/Code/leaseLost`` if the lease expired and the job was requeued or claimed by another
  ///   worker: stop working on it.
  /// - Returns: the renewed lease.
  @discardableResult
  public func heartbeat(_ lease: JobLease, leaseDuration: Duration) async throws -> JobLease {
    let now = self.now()
    let expires = now.addingTimeInterval(leaseDuration.timeInterval)
    return try await write("renew the lease of job \(lease.jobID)") { db in
      try db.execute(
        sql: """
          UPDATE job SET lease_expires_at = ?, heartbeat_at = ?
          WHERE id = ? AND status = 'running' AND lease_owner = ? AND attempts = ?
          """, arguments: [expires, now, lease.jobID, lease.owner, lease.attempt])
      guard db.changesCount == 1 else { throw Self.leaseLost(lease) }
      var renewed = lease
      renewed.expiresAt = expires
      return renewed
    }
  }

  static func leaseLost(_ lease: JobLease) -> FolioError {
    FolioError(
      .leaseLost,
      "job \(lease.jobID) is no longer held by \(lease.owner) (attempt \(lease.attempt)): its lease expired and it "
        + "was requeued or taken by another worker; discard this attempt's output")
  }

  /// Marks the job succeeded and writes its result row, in one transaction.
  ///
  /// - Throws: ``FolioError/Code/leaseLost`` (and writes nothing) if the lease is no longer held, so a worker that
  ///   was presumed dead can never add a second result.
  @discardableResult
  public func complete(_ lease: JobLease, output: JobOutput) async throws -> JobResult {
    let now = self.now()
    let parameters: String
    do {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      parameters = String(decoding: try encoder.encode(output.parameters), as: UTF8.self)
    } catch {
      throw FolioError(.invalidArgument, "result parameters cannot be encoded as JSON", cause: error)
    }
    guard !output.modelID.isEmpty else { throw FolioError(.invalidArgument, "a result needs a model id") }
    return try await write("record the result of job \(lease.jobID)") { db in
      try db.execute(
        sql: """
          UPDATE job SET status = 'succeeded', finished_at = ?, lease_owner = NULL, lease_expires_at = NULL,
            error_code = NULL, error_message = NULL
          WHERE id = ? AND status = 'running' AND lease_owner = ? AND attempts = ?
          """, arguments: [now, lease.jobID, lease.owner, lease.attempt])
      guard db.changesCount == 1, let job = try Job.fetchOne(db, id: lease.jobID) else { throw Self.leaseLost(lease) }
      var result = JobResult(
        id: nil, jobID: lease.jobID, documentID: job.documentID, pipelineName: job.pipelineName,
        pipelineVersion: job.pipelineVersion, stepID: job.stepID, task: job.task,
        language: output.language ?? (job.language.isEmpty ? nil : job.language), text: output.text,
        modelID: output.modelID, parameters: parameters, promptTokens: output.promptTokens,
        completionTokens: output.completionTokens, promptMilliseconds: output.promptDuration?.milliseconds,
        generationMilliseconds: output.generationDuration?.milliseconds,
        totalMilliseconds: output.totalDuration?.milliseconds, createdAt: now)
      try result.insert(db)
      try Self.afterTransition(db, jobs: [job], now: now)
      return result
    }
  }

  /// Records a failed attempt.
  ///
  /// A permanent failure (`permanent: true`: corrupt input, unsupported content) or a failure on the last allowed
  /// attempt makes the job `failed`, and cancels the queued jobs that read its output (``FolioError/Code/dependencyFailed``).
  /// Otherwise the job returns to `queued`, claimable after `retryAfter` (default ``retryDelay(afterAttempt:)``).
  ///
  /// - Parameter code: the stable error code stored in `job.error_code` (``FolioError/Code``).
  /// - Throws: ``FolioError/Code/leaseLost`` if the lease is no longer held.
  @discardableResult
  public func markFailed(
    _ lease: JobLease, code: FolioError.Code, message: String, permanent: Bool, retryAfter: Duration? = nil
  ) async throws -> Job {
    let now = self.now()
    let delay = retryAfter ?? Self.retryDelay(afterAttempt: lease.attempt)
    let available = now.addingTimeInterval(delay.timeInterval)
    return try await write("record the failure of job \(lease.jobID)") { db in
      try db.execute(
        sql: """
          UPDATE job SET
            status = CASE WHEN ? OR attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
            finished_at = CASE WHEN ? OR attempts >= max_attempts THEN ? END,
            available_at = ?, lease_owner = NULL, lease_expires_at = NULL, error_code = ?, error_message = ?
          WHERE id = ? AND status = 'running' AND lease_owner = ? AND attempts = ?
          """,
        arguments: [
          permanent, permanent, now, available, code.rawValue, message, lease.jobID, lease.owner, lease.attempt,
        ])
      guard db.changesCount == 1, let job = try Job.fetchOne(db, id: lease.jobID) else { throw Self.leaseLost(lease) }
      try Self.afterTransition(db, jobs: [job], now: now)
      return try Job.fetchOne(db, id: lease.jobID) ?? job
    }
  }

  // MARK: Recovery, retry, cancel

  /// Returns jobs whose lease expired (their worker died: crash, SIGKILL, power loss) to the queue; a job that has
  /// used its last attempt fails permanently with ``FolioError/Code/leaseExpired``. Call at startup and
  /// periodically; ``claimNextJob(owner:leaseDuration:tasks:)`` also does it.
  @discardableResult
  public func requeueExpiredLeases() async throws -> LeaseRecovery {
    let now = self.now()
    return try await write("requeue expired leases") { db in try Self.requeueExpired(db, now: now) }
  }

  /// Treats every lease held by `owner` as expired now: for a restarted daemon that knows its previous worker id
  /// (same host, the old process is gone), so it need not wait for the leases to lapse.
  @discardableResult
  public func requeueLeases(heldBy owner: String) async throws -> LeaseRecovery {
    let now = self.now()
    return try await write("requeue the jobs of \(owner)") { db in
      try db.execute(
        sql: "UPDATE job SET lease_expires_at = ? WHERE status = 'running' AND lease_owner = ?",
        arguments: [now.addingTimeInterval(-0.001), owner])
      return try Self.requeueExpired(db, now: now)
    }
  }

  static func requeueExpired(_ db: Database, now: Date) throws -> LeaseRecovery {
    let rows = try Row.fetchAll(
      db,
      sql: """
        UPDATE job SET
          status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
          finished_at = CASE WHEN attempts >= max_attempts THEN ? END,
          error_code = 'lease_expired',
          error_message = 'the worker ' || lease_owner || ' stopped during attempt ' || attempts || ' of '
            || max_attempts || ' (its lease expired at ' || lease_expires_at || ')',
          lease_owner = NULL, lease_expires_at = NULL, available_at = ?
        WHERE status = 'running' AND lease_expires_at < ?
        RETURNING id, status
        """, arguments: [now, now, now])
    guard !rows.isEmpty else { return LeaseRecovery(requeued: [], failed: []) }
    let ids: [Int64] = rows.map { $0["id"] }
    let jobs = try Job.fetchAll(db, ids: ids)
    try afterTransition(db, jobs: jobs, now: now)
    return LeaseRecovery(
      requeued: rows.filter { ($0["status"] as String) == "queued" }.map { $0["id"] },
      failed: rows.filter { ($0["status"] as String) == "failed" }.map { $0["id"] })
  }

  /// Requeues failed or cancelled jobs (`folio jobs retry`): attempts start again from zero and the trigger becomes
  /// `retry`. Jobs cancelled because they read one of these are requeued too.
  ///
  /// - Returns: the ids of the jobs requeued.
  @discardableResult
  public func retry(jobIDs: [Int64]) async throws -> [Int64] {
    let now = self.now()
    return try await write("retry jobs") { db in
      var requeued: [Int64] = []
      for id in jobIDs {
        guard let job = try Job.fetchOne(db, id: id) else {
          throw FolioError(.jobNotFound, "job \(id) does not exist; see `folio jobs list --status failed`")
        }
        guard job.status == .failed || job.status == .cancelled else { continue }
        let ids = try Int64.fetchAll(
          db,
          sql: """
            WITH RECURSIVE chain(id) AS (
              SELECT ? UNION SELECT j.id FROM job j JOIN chain ON j.depends_on_job_id = chain.id
                WHERE j.status = 'cancelled')
            UPDATE job SET status = 'queued', attempts = 0, trigger = 'retry', available_at = ?, finished_at = NULL,
              error_code = NULL, error_message = NULL
            WHERE id IN chain AND status IN ('failed', 'cancelled')
            RETURNING id
            """, arguments: [id, now])
        requeued += ids
        try Self.refreshDocumentStatus(db, documentIDs: [job.documentID], now: now)
      }
      return requeued
    }
  }

  /// Requeues every failed job matching the filter (the statuses in the filter are ignored).
  @discardableResult
  public func retryFailed(matching filter: JobFilter = JobFilter()) async throws -> [Int64] {
    var f = filter
    f.statuses = [.failed]
    f.limit = Int.max
    let ids = try await jobs(matching: f).compactMap(\.id)
    return try await retry(jobIDs: ids)
  }

  /// Cancels queued jobs (running ones finish their attempt; their worker sees ``FolioError/Code/leaseLost`` only if
  /// they are also requeued). Jobs that read a cancelled job are cancelled too.
  @discardableResult
  public func cancel(jobIDs: [Int64], reason: String = "cancelled by the user") async throws -> [Int64] {
    let now = self.now()
    return try await write("cancel jobs") { db in
      var cancelled: [Int64] = []
      for id in jobIDs {
        cancelled += try Self.cancelChain(
          db, from: id, includingSelf: true, code: .cancelled, message: reason, now: now)
      }
      let jobs = try Job.fetchAll(db, ids: cancelled)
      try Self.afterTransition(db, jobs: jobs, now: now)
      return cancelled
    }
  }

  /// Cancels the queued jobs that (transitively) read job `id`'s output.
  static func cancelChain(
    _ db: Database, from id: Int64, includingSelf: Bool, code: FolioError.Code, message: String, now: Date
  ) throws -> [Int64] {
    try Int64.fetchAll(
      db,
      sql: """
        WITH RECURSIVE chain(id) AS (
          SELECT ? UNION SELECT j.id FROM job j JOIN chain ON j.depends_on_job_id = chain.id)
        UPDATE job SET status = 'cancelled', finished_at = ?, error_code = ?, error_message = ?
        WHERE id IN chain AND status = 'queued' AND (? OR id <> ?)
        RETURNING id
        """, arguments: [id, now, code.rawValue, message, includingSelf, id])
  }

  /// Bookkeeping after jobs changed state: cancel dependents of permanent failures, refresh document statuses, and
  /// finish scheduled runs whose jobs are all done.
  static func afterTransition(_ db: Database, jobs: [Job], now: Date) throws {
    var documents = Set(jobs.map(\.documentID))
    var runs = Set(jobs.compactMap(\.scheduleRunID))
    for job in jobs where job.status == .failed {
      guard let id = job.id else { continue }
      let cancelled = try cancelChain(
        db, from: id, includingSelf: false, code: .dependencyFailed,
        message: "step \(job.stepID) (job \(id)) failed: \(job.errorMessage ?? job.errorCode ?? "")", now: now)
      for other in try Job.fetchAll(db, ids: cancelled) {
        documents.insert(other.documentID)
        if let run = other.scheduleRunID { runs.insert(run) }
      }
    }
    try refreshDocumentStatus(db, documentIDs: documents, now: now)
    try finishScheduleRunsIfDone(db, runIDs: runs, now: now)
  }

  // MARK: Queries

  /// The job with this id.
  public func job(id: Int64) async throws -> Job? {
    try await read("read job \(id)") { db in try Job.fetchOne(db, id: id) }
  }

  /// Jobs matching a filter, newest first.
  public func jobs(matching filter: JobFilter = JobFilter()) async throws -> [Job] {
    try await read("list jobs") { db in
      var clauses: [String] = []
      var arguments = StatementArguments()
      if !filter.statuses.isEmpty {
        clauses.append("status IN (\(filter.statuses.map { _ in "?" }.joined(separator: ", ")))")
        arguments += StatementArguments(filter.statuses.map(\.rawValue).sorted())
      }
      if let v = filter.documentID {
        clauses.append("document_id = ?")
        arguments += [v]
      }
      if let v = filter.pipelineName {
        clauses.append("pipeline_name = ?")
        arguments += [v]
      }
      if let v = filter.stepID {
        clauses.append("step_id = ?")
        arguments += [v]
      }
      if let v = filter.scheduleRunID {
        clauses.append("schedule_run_id = ?")
        arguments += [v]
      }
      let whereSQL = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
      arguments += [max(0, filter.limit)]
      return try Job.fetchAll(db, sql: "SELECT * FROM job \(whereSQL) ORDER BY id DESC LIMIT ?", arguments: arguments)
    }
  }

  /// The result of a job, once it succeeded; also gives a step its input (the output of the step it reads).
  public func result(jobID: Int64) async throws -> JobResult? {
    try await read("read the result of job \(jobID)") { db in
      try JobResult.fetchOne(db, sql: "SELECT * FROM result WHERE job_id = ?", arguments: [jobID])
    }
  }
}
