import FolioBase
import Foundation
import GRDB

/// One document set with counts (`folio sets list`, view `v_sets`).
public struct DocumentSetSummary: Codable, Sendable, Hashable, FetchableRecord {
  /// Set name.
  public var setName: String
  /// Documents recorded.
  public var documents: Int
  /// Of which images.
  public var images: Int
  /// Of which text documents.
  public var texts: Int
  /// Documents whose latest jobs failed.
  public var failedDocuments: Int
  /// Results produced.
  public var results: Int
  /// When the newest document was recorded.
  public var lastAddedAt: Date?

  enum CodingKeys: String, CodingKey {
    case documents, images, texts, results
    case setName = "set_name"
    case failedDocuments = "failed_documents"
    case lastAddedAt = "last_added_at"
  }
}

/// What `folio status` shows (lessons row 12).
public struct StatusSummary: Codable, Sendable, Hashable {
  /// Queued and never attempted.
  public var queued: Int
  /// Queued again after a transient failure or a lost worker.
  public var retrying: Int
  /// Running now.
  public var running: Int
  /// Succeeded, all time.
  public var succeeded: Int
  /// Failed permanently, all time.
  public var failed: Int
  /// Cancelled, all time.
  public var cancelled: Int
  /// Documents recorded.
  public var documents: Int
  /// Results recorded.
  public var results: Int
  /// Jobs that succeeded within the window.
  public var succeededInWindow: Int
  /// Jobs that failed permanently within the window.
  public var failedInWindow: Int
  /// The window, in seconds.
  public var windowSeconds: Int
  /// Succeeded jobs per hour over the window.
  public var jobsPerHour: Double
  /// Generated tokens per second over the window's succeeded jobs (completion tokens / generation time).
  public var tokensPerSecond: Double?
  /// When the oldest queued job was queued.
  public var oldestQueuedAt: Date?
  /// The running jobs.
  public var runningJobs: [Job]
  /// The most recent permanent failures.
  public var recentFailures: [Job]

  /// Jobs waiting (queued + retrying): the queue depth.
  public var queueDepth: Int { queued + retrying }

  enum CodingKeys: String, CodingKey {
    case queued, retrying, running, succeeded, failed, cancelled, documents, results
    case succeededInWindow = "succeeded_in_window"
    case failedInWindow = "failed_in_window"
    case windowSeconds = "window_seconds"
    case jobsPerHour = "jobs_per_hour"
    case tokensPerSecond = "tokens_per_second"
    case oldestQueuedAt = "oldest_queued_at"
    case runningJobs = "running_jobs"
    case recentFailures = "recent_failures"
  }
}

extension Store {
  /// Document sets with counts, by name.
  public func sets() async throws -> [DocumentSetSummary] {
    try await read("list sets") { db in
      try DocumentSetSummary.fetchAll(
        db,
        sql: """
          SELECT set_name, documents, images, texts, failed_documents, results, last_added_at
          FROM v_sets ORDER BY set_name
          """)
    }
  }

  /// Queue depth, running work, failures and throughput over the last `window` (default one hour).
  public func status(window: Duration = .seconds(3600)) async throws -> StatusSummary {
    let now = self.now()
    let since = now.addingTimeInterval(-window.timeInterval)
    return try await read("read status") { db in
      func count(_ sql: String, _ arguments: StatementArguments = []) throws -> Int {
        try Int.fetchOne(db, sql: sql, arguments: arguments) ?? 0
      }
      let byStatus = try Row.fetchAll(
        db,
        sql: """
          SELECT status, attempts > 0 AS retried, count(*) AS n FROM job GROUP BY status, attempts > 0
          """)
      var counts: [String: Int] = [:]
      var retrying = 0
      for row in byStatus {
        let status: String = row["status"]
        let n: Int = row["n"]
        if status == "queued" && (row["retried"] as Bool) { retrying += n } else { counts[status, default: 0] += n }
      }
      let succeededInWindow = try count(
        "SELECT count(*) FROM job WHERE status = 'succeeded' AND finished_at >= ?", [since])
      let failedInWindow = try count("SELECT count(*) FROM job WHERE status = 'failed' AND finished_at >= ?", [since])
      let tokens = try Row.fetchOne(
        db,
        sql: """
          SELECT sum(completion_tokens) AS tokens, sum(generation_ms) AS ms FROM result
          WHERE created_at >= ? AND completion_tokens IS NOT NULL AND generation_ms > 0
          """, arguments: [since])
      var tokensPerSecond: Double?
      if let tokens, let t: Int = tokens["tokens"], let ms: Int = tokens["ms"], ms > 0 {
        tokensPerSecond = Double(t) / (Double(ms) / 1000)
      }
      let hours = max(window.timeInterval / 3600, 1e-9)
      return StatusSummary(
        queued: counts["queued"] ?? 0, retrying: retrying, running: counts["running"] ?? 0,
        succeeded: counts["succeeded"] ?? 0, failed: counts["failed"] ?? 0, cancelled: counts["cancelled"] ?? 0,
        documents: try count("SELECT count(*) FROM document"), results: try count("SELECT count(*) FROM result"),
        succeededInWindow: succeededInWindow, failedInWindow: failedInWindow,
        windowSeconds: Int(window.timeInterval), jobsPerHour: Double(succeededInWindow) / hours,
        tokensPerSecond: tokensPerSecond,
        oldestQueuedAt: try Date.fetchOne(db, sql: "SELECT min(created_at) FROM job WHERE status = 'queued'"),
        runningJobs: try Job.fetchAll(db, sql: "SELECT * FROM job WHERE status = 'running' ORDER BY started_at"),
        recentFailures: try Job.fetchAll(
          db, sql: "SELECT * FROM job WHERE status = 'failed' ORDER BY finished_at DESC, id DESC LIMIT 10"))
    }
  }
}
