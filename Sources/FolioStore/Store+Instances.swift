import FolioBase
import Foundation
import GRDB

/// One running daemon as it last reported itself (table `daemon_instance`, view `v_daemons`).
public struct DaemonInstance: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
  public static let databaseTableName = "daemon_instance"

  /// What the daemon's model is doing.
  public enum State: String, Codable, Sendable, Hashable, CaseIterable {
    /// Loaded, no job running.
    case idle
    /// Loaded, running a job.
    case busy
    /// Unloaded after `keep_alive` without work; loaded again by the next job.
    case unloaded
  }

  /// The daemon's lease-owner prefix plus a random suffix (`folio@HOST:PID/…`), unique per process start.
  public var instanceID: String
  /// Process id.
  public var pid: Int32
  /// Host name.
  public var host: String
  /// When the daemon started.
  public var startedAt: Date
  /// When it last wrote this row.
  public var heartbeatAt: Date
  /// The model id recorded with results.
  public var modelID: String
  /// The model's folder, when it is a local checkpoint.
  public var modelPath: String?
  /// Where the model came from (`path`, `hf-cache`, `test-model`, …).
  public var modelOrigin: String?
  /// Resident memory of the process (VmRSS) in MiB.
  public var rssMiB: Double?
  /// Idle, busy or unloaded.
  public var state: State
  /// When the model was last loaded (nil while unloaded).
  public var modelLoadedAt: Date?
  /// The configured keep-alive in seconds (nil: never unload).
  public var keepAliveSeconds: Double?
  /// Waiting jobs when the row was written.
  public var queuedJobs: Int
  /// The configured `max_queued_jobs`.
  public var maxQueuedJobs: Int?
  /// Whether intake is holding files back because the queue is full.
  public var isIntakePaused: Bool

  enum CodingKeys: String, CodingKey {
    case pid, host, state
    case instanceID = "instance_id"
    case startedAt = "started_at"
    case heartbeatAt = "heartbeat_at"
    case modelID = "model_id"
    case modelPath = "model_path"
    case modelOrigin = "model_origin"
    case rssMiB = "rss_mib"
    case modelLoadedAt = "model_loaded_at"
    case keepAliveSeconds = "keep_alive_s"
    case queuedJobs = "queued_jobs"
    case maxQueuedJobs = "max_queued_jobs"
    case isIntakePaused = "is_intake_paused"
  }

  /// Creates a row.
  public init(
    instanceID: String, pid: Int32, host: String, startedAt: Date, heartbeatAt: Date, modelID: String,
    modelPath: String?, modelOrigin: String?, rssMiB: Double?, state: State, modelLoadedAt: Date?,
    keepAliveSeconds: Double?, queuedJobs: Int, maxQueuedJobs: Int?, isIntakePaused: Bool
  ) {
    self.instanceID = instanceID
    self.pid = pid
    self.host = host
    self.startedAt = startedAt
    self.heartbeatAt = heartbeatAt
    self.modelID = modelID
    self.modelPath = modelPath
    self.modelOrigin = modelOrigin
    self.rssMiB = rssMiB
    self.state = state
    self.modelLoadedAt = modelLoadedAt
    self.keepAliveSeconds = keepAliveSeconds
    self.queuedJobs = queuedJobs
    self.maxQueuedJobs = maxQueuedJobs
    self.isIntakePaused = isIntakePaused
  }

  /// Whether the heartbeat is older than `staleAfter` at `now` (the daemon died or hangs).
  public func isStale(at now: Date, staleAfter: TimeInterval) -> Bool {
    now.timeIntervalSince(heartbeatAt) > staleAfter
  }
}

// Daemon instances and queue capacity (issue 4; inbox-lessons "Model residency").
extension Store {
  /// Inserts or replaces the row of a running daemon; `heartbeat_at` is set to now.
  @discardableResult
  public func recordDaemonInstance(_ instance: DaemonInstance) async throws -> DaemonInstance {
    var row = instance
    row.heartbeatAt = now()
    let saved = row
    try await write("record the daemon's heartbeat") { db in try saved.save(db) }
    return saved
  }

  /// Removes a daemon's row (it stopped cleanly).
  public func removeDaemonInstance(id: String) async throws {
    try await write("remove a stopped daemon") { db in
      try db.execute(sql: "DELETE FROM daemon_instance WHERE instance_id = ?", arguments: [id])
    }
  }

  /// Every recorded daemon, newest heartbeat first.
  public func daemonInstances() async throws -> [DaemonInstance] {
    try await read("list daemons") { db in
      try DaemonInstance.fetchAll(db, sql: "SELECT * FROM daemon_instance ORDER BY heartbeat_at DESC")
    }
  }

  /// Jobs waiting in the queue (status `queued`, first attempts and retries): what `max_queued_jobs` bounds.
  public func queuedJobCount() async throws -> Int {
    try await read("count queued jobs") { db in
      try Int.fetchOne(db, sql: "SELECT count(*) FROM job WHERE status = 'queued'") ?? 0
    }
  }

  /// The time the store uses (the injected clock).
  public var currentDate: Date { now() }
}
