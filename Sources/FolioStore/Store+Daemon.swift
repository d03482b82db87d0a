import FolioBase
import Foundation
import GRDB

/// A file the daemon took out of the inbox but could not record as a document (table `intake_failure`).
public struct IntakeFailure: Codable, Sendable, Hashable, Identifiable, FetchableRecord, MutablePersistableRecord {
  public static let databaseTableName = "intake_failure"

  /// Row id.
  public var id: Int64?
  /// Where the file was found.
  public var originalPath: String
  /// Inbox-relative path.
  public var relativePath: String
  /// Document set.
  public var setName: String
  /// SHA-256 of the bytes, when they could be read.
  public var sha256: String?
  /// Size in bytes, when known.
  public var sizeBytes: Int64?
  /// Stable error code (``FolioError/Code``).
  public var errorCode: String
  /// Human message with the fix.
  public var errorMessage: String
  /// The document this file duplicates (`duplicate_document`).
  public var duplicateOf: Int64?
  /// Where the file ended up (failed folder, managed store, or back in the inbox), once disposed.
  public var finalPath: String?
  /// When recorded.
  public var createdAt: Date

  enum CodingKeys: String, CodingKey {
    case id
    case originalPath = "original_path"
    case relativePath = "relative_path"
    case setName = "set_name"
    case sha256
    case sizeBytes = "size_bytes"
    case errorCode = "error_code"
    case errorMessage = "error_message"
    case duplicateOf = "duplicate_of"
    case finalPath = "final_path"
    case createdAt = "created_at"
  }

  /// Creates a failure record.
  public init(
    originalPath: String, relativePath: String, setName: String, sha256: String?, sizeBytes: Int64?,
    errorCode: String, errorMessage: String, duplicateOf: Int64? = nil, finalPath: String? = nil,
    createdAt: Date = Date()
  ) {
    self.originalPath = originalPath
    self.relativePath = relativePath
    self.setName = setName
    self.sha256 = sha256
    self.sizeBytes = sizeBytes
    self.errorCode = errorCode
    self.errorMessage = errorMessage
    self.duplicateOf = duplicateOf
    self.finalPath = finalPath
    self.createdAt = createdAt
  }

  public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A (document, pipeline) pair that `folio reprocess` selected.
public struct ReprocessCandidate: Sendable, Hashable {
  /// The document.
  public var documentID: Int64
  /// The pipeline whose jobs it has.
  public var pipelineName: String
}

// Queries and transitions the daemon needs beyond the queue API: crash recovery of claimed files, disposal,
// checkpointing a job at shutdown, intake failures, and reprocess selection (issue 4).
extension Store {
  /// The document whose managed or working copy is at `storedPath` (a claimed file in the work area), if any.
  public func document(storedPath: String) async throws -> Document? {
    try await read("find document by stored path") { db in
      try Document.fetchOne(
        db, sql: "SELECT * FROM document WHERE stored_path = ? ORDER BY id DESC LIMIT 1", arguments: [storedPath])
    }
  }

  /// Documents whose file still sits under `folder` (the work area) and whose jobs have all finished (`processed`,
  /// `failed`, or a `linked` duplicate): their originals can be disposed of now.
  public func documentsAwaitingDisposal(under folder: String) async throws -> [Document] {
    let prefix = folder.hasSuffix("/") ? folder : folder + "/"
    return try await read("find documents to dispose of") { db in
      try Document.fetchAll(
        db,
        sql: """
          SELECT * FROM document WHERE substr(stored_path, 1, ?) = ?
            AND status IN ('processed', 'failed', 'linked') ORDER BY id
          """, arguments: [prefix.utf8.count, prefix])
    }
  }

  /// The number of jobs of a document that are not finished (queued or running).
  public func openJobCount(documentID: Int64) async throws -> Int {
    try await read("count open jobs") { db in
      try Int.fetchOne(
        db, sql: "SELECT count(*) FROM job WHERE document_id = ? AND status IN ('queued', 'running')",
        arguments: [documentID]) ?? 0
    }
  }

  /// Returns a running job to the queue without counting the interrupted attempt (the daemon is shutting down and
  /// checkpointed it: finished translation segments are already in the translation memory). The job keeps its
  /// place; `error_code` is `interrupted` so `folio jobs list` shows what happened.
  ///
  /// - Throws: ``FolioError/Code/leaseLost`` if the lease is no longer held.
  @discardableResult
  public func release(_ lease: JobLease, reason: String) async throws -> Job {
    let now = self.now()
    return try await write("return job \(lease.jobID) to the queue") { db in
      try db.execute(
        sql: """
          UPDATE job SET status = 'queued', attempts = max(attempts - 1, 0), lease_owner = NULL,
            lease_expires_at = NULL, available_at = ?, error_code = 'interrupted', error_message = ?
          WHERE id = ? AND status = 'running' AND lease_owner = ? AND attempts = ?
          """, arguments: [now, reason, lease.jobID, lease.owner, lease.attempt])
      guard db.changesCount == 1, let job = try Job.fetchOne(db, id: lease.jobID) else { throw Self.leaseLost(lease) }
      try Self.refreshDocumentStatus(db, documentIDs: [job.documentID], now: now)
      return job
    }
  }

  /// The distinct owners of the leases of running jobs (to requeue those of a dead process on this host at start).
  public func runningLeaseOwners() async throws -> [String] {
    try await read("list lease owners") { db in
      try String.fetchAll(
        db, sql: "SELECT DISTINCT lease_owner FROM job WHERE status = 'running' AND lease_owner IS NOT NULL")
    }
  }

  /// Whether any job is queued and claimable now, or running.
  public func hasOpenWork(claimableBy tasks: Set<String> = []) async throws -> (claimable: Int, running: Int, waiting: Int) {
    let now = self.now()
    return try await read("count open work") { db in
      var filter = ""
      var arguments: StatementArguments = [now]
      if !tasks.isEmpty {
        filter = "AND j.task IN (\(tasks.map { _ in "?" }.joined(separator: ", ")))"
        arguments += StatementArguments(tasks.sorted())
      }
      let claimable =
        try Int.fetchOne(
          db,
          sql: """
            SELECT count(*) FROM job j WHERE j.status = 'queued' AND j.available_at <= ? \(filter)
              AND (j.depends_on_job_id IS NULL
                   OR EXISTS (SELECT 1 FROM job d WHERE d.id = j.depends_on_job_id AND d.status = 'succeeded'))
            """, arguments: arguments) ?? 0
      let running = try Int.fetchOne(db, sql: "SELECT count(*) FROM job WHERE status = 'running'") ?? 0
      let waiting = try Int.fetchOne(db, sql: "SELECT count(*) FROM job WHERE status = 'queued'") ?? 0
      return (claimable, running, waiting)
    }
  }

  /// Records a file that could not become a document.
  @discardableResult
  public func recordIntakeFailure(_ failure: IntakeFailure) async throws -> IntakeFailure {
    var row = failure
    row.createdAt = now()
    let insert = row
    return try await write("record an intake failure") { db in
      var r = insert
      try r.insert(db)
      return r
    }
  }

  /// Sets where a failed intake's file ended up.
  public func setIntakeFailureFinalPath(id: Int64, finalPath: String?) async throws {
    try await write("update intake failure \(id)") { db in
      try db.execute(sql: "UPDATE intake_failure SET final_path = ? WHERE id = ?", arguments: [finalPath, id])
    }
  }

  /// Recent intake failures, newest first.
  public func intakeFailures(limit: Int = 100) async throws -> [IntakeFailure] {
    try await read("list intake failures") { db in
      try IntakeFailure.fetchAll(
        db, sql: "SELECT * FROM intake_failure ORDER BY id DESC LIMIT ?", arguments: [max(0, limit)])
    }
  }

  /// The (document, pipeline) pairs whose jobs match: by pipeline, step, document, or model (documents with a
  /// result of that model), and optionally results made by an older pipeline version. Every filter is optional;
  /// at least one should be given by the caller.
  public func reprocessCandidates(
    pipeline: String? = nil, step: String? = nil, modelID: String? = nil, documentID: Int64? = nil,
    pipelineVersionBelow: Int? = nil, setName: String? = nil
  ) async throws -> [ReprocessCandidate] {
    try await read("select documents to reprocess") { db in
      var clauses: [String] = []
      var arguments = StatementArguments()
      if let pipeline {
        clauses.append("j.pipeline_name = ?")
        arguments += [pipeline]
      }
      if let step {
        clauses.append("j.step_id = ?")
        arguments += [step]
      }
      if let documentID {
        clauses.append("j.document_id = ?")
        arguments += [documentID]
      }
      if let setName {
        clauses.append("d.set_name = ?")
        arguments += [setName]
      }
      if let pipelineVersionBelow {
        clauses.append("j.pipeline_version < ?")
        arguments += [pipelineVersionBelow]
      }
      if let modelID {
        clauses.append("EXISTS (SELECT 1 FROM result r WHERE r.job_id = j.id AND r.model_id = ?)")
        arguments += [modelID]
      }
      let whereSQL = clauses.isEmpty ? "1" : clauses.joined(separator: " AND ")
      let rows = try Row.fetchAll(
        db,
        sql: """
          SELECT DISTINCT j.document_id, j.pipeline_name FROM job j JOIN document d ON d.id = j.document_id
          WHERE \(whereSQL) ORDER BY j.document_id, j.pipeline_name
          """, arguments: arguments)
      return rows.map { ReprocessCandidate(documentID: $0["document_id"], pipelineName: $0["pipeline_name"]) }
    }
  }
}

extension Store {
  /// One row of `v_results` by result id.
  public func resultRow(id: Int64) async throws -> ResultRow? {
    try await read("read result \(id)") { db in
      try ResultRow.fetchOne(
        db, sql: "SELECT \(Self.resultColumns) FROM v_results WHERE result_id = ?", arguments: [id])
    }
  }
}
