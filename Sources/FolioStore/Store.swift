import FolioBase
import Foundation
import GRDB

/// Folio's database: documents, the durable job queue, results, translation memory and schedule state.
///
/// Open one `Store` per process and database file (GRDB's first concurrency rule); several processes may open the
/// same file. Files are opened as a `DatabasePool` in WAL mode, so `sqlite3` readers never block the daemon and the
/// daemon never blocks them; every write is an IMMEDIATE transaction that waits up to ``Options/busyTimeout`` for
/// another process's write to finish.
///
/// Time comes from the injected `now` closure, never from the system clock directly, so tests can move time.
public final class Store: Sendable {
  /// Connection options.
  public struct Options: Sendable {
    /// How long a write waits for another process's write transaction before failing with
    /// ``FolioError/Code/databaseBusy``. 10 s: longer than any single Folio transaction by orders of magnitude,
    /// short enough that a wedged peer is reported rather than hanging the daemon.
    public var busyTimeout: TimeInterval = 10
    /// Maximum reader connections of the pool (2 cores: more readers would only contend).
    public var maximumReaderCount: Int = 4
    /// Open without writing (for `folio results`, `folio status` run next to a daemon). Migrations are not applied;
    /// a database that lacks them is reported.
    public var readOnly: Bool = false

    /// Default options.
    public init() {}
  }

  let writer: any DatabaseWriter
  let now: @Sendable () -> Date
  /// The database file, or nil for an in-memory store.
  public let path: String?

  init(writer: any DatabaseWriter, path: String?, now: @escaping @Sendable () -> Date) {
    self.writer = writer
    self.path = path
    self.now = now
  }

  /// The GRDB configuration shared by files and in-memory stores: foreign keys on, busy timeout, and on every
  /// connection `synchronous = NORMAL` (durable with WAL at each checkpoint; a power cut may lose the last
  /// transactions but never corrupts) and a 5 s SQLite-level busy timeout for the readers too.
  static func configuration(_ options: Options) -> Configuration {
    var config = Configuration()
    config.foreignKeysEnabled = true
    config.busyMode = .timeout(options.busyTimeout)
    config.readonly = options.readOnly
    config.maximumReaderCount = max(1, options.maximumReaderCount)
    config.label = "folio"
    config.prepareDatabase { db in
      if !db.configuration.readonly {
        try db.execute(sql: "PRAGMA synchronous = NORMAL")
      }
    }
    return config
  }

  /// Opens (creating if needed) the database file at `path` in WAL mode and applies pending migrations.
  ///
  /// - Throws: ``FolioError/Code/databaseTooNew`` if the file was written by a newer Folio;
  ///   ``FolioError/Code/databaseError`` if it cannot be opened or migrated.
  public static func open(
    path: String, options: Options = Options(), now: @escaping @Sendable () -> Date = { Date() }
  ) throws(FolioError) -> Store {
    let pool: DatabasePool
    do {
      pool = try DatabasePool(path: path, configuration: configuration(options))
    } catch {
      throw FolioError(
        .databaseError,
        "cannot open the database at \(path): check that its folder exists and is writable by this user", cause: error)
    }
    try prepare(pool, readOnly: options.readOnly, description: path)
    return Store(writer: pool, path: path, now: now)
  }

  /// A private in-memory database with the production configuration and schema (for tests and dry runs).
  /// WAL does not apply to memory databases; everything else is identical.
  public static func inMemory(
    options: Options = Options(), now: @escaping @Sendable () -> Date = { Date() }
  ) throws(FolioError) -> Store {
    let queue: DatabaseQueue
    do {
      var opts = options
      opts.readOnly = false
      queue = try DatabaseQueue(configuration: configuration(opts))
    } catch {
      throw FolioError(.databaseError, "cannot create an in-memory database", cause: error)
    }
    try prepare(queue, readOnly: false, description: "memory")
    return Store(writer: queue, path: nil, now: now)
  }

  private static func prepare(_ writer: any DatabaseWriter, readOnly: Bool, description: String) throws(FolioError) {
    let migrator = StoreSchema.migrator
    do {
      if try writer.read(migrator.hasBeenSuperseded) {
        throw FolioError(
          .databaseTooNew,
          "the database at \(description) was written by a newer Folio; upgrade Folio, or point it at another database")
      }
      if readOnly {
        guard try writer.read(migrator.hasCompletedMigrations) else {
          throw FolioError(
            .databaseError, "the database at \(description) is not initialised; run the daemon once to create it")
        }
        return
      }
      // Another process may be applying the same migrations right now (each runs in its own transaction, so we can
      // see some of them done and collide with the next). Retry until the other process is through.
      var attempt = 0
      while true {
        do {
          try migrator.migrate(writer)
          break
        } catch {
          if try writer.read(migrator.hasCompletedMigrations) { break }
          attempt += 1
          if attempt >= 50 { throw error }
          usleep(100_000)
        }
      }
    } catch let error as FolioError {
      throw error
    } catch {
      throw FolioError(.databaseError, "cannot prepare the database at \(description)", cause: error)
    }
  }

  /// The names of the migrations applied to this database, oldest first.
  public func appliedMigrations() async throws -> [String] {
    try await read("list migrations") { db in try StoreSchema.migrator.appliedMigrations(db) }
  }

  /// The journal mode SQLite reports (`wal` for files).
  public func journalMode() async throws -> String {
    try await read("read the journal mode") { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
  }

  // MARK: - Access helpers

  /// Runs a write transaction, mapping SQLite errors to ``FolioError``.
  func write<T: Sendable>(_ action: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
    do {
      return try await writer.write(body)
    } catch {
      throw Self.map(error, action: action)
    }
  }

  /// Runs a read transaction, mapping SQLite errors to ``FolioError``.
  func read<T: Sendable>(_ action: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
    do {
      return try await writer.read(body)
    } catch {
      throw Self.map(error, action: action)
    }
  }

  static func map(_ error: any Error, action: String) -> any Error {
    if error is FolioError || error is CancellationError { return error }
    if let db = error as? DatabaseError {
      if db.resultCode == .SQLITE_BUSY || db.resultCode == .SQLITE_LOCKED {
        return FolioError(
          .databaseBusy,
          "cannot \(action): another process held the database lock too long; check for a stuck folio or sqlite3 process",
          cause: error)
      }
      if db.resultCode == .SQLITE_CONSTRAINT {
        return FolioError(
          .databaseError, "cannot \(action): a database constraint was violated (\(db.message ?? ""))", cause: error)
      }
      if db.resultCode == .SQLITE_FULL {
        return FolioError(.databaseError, "cannot \(action): the disk is full", cause: error)
      }
    }
    return FolioError(.databaseError, "cannot \(action)", cause: error)
  }
}

extension Duration {
  /// Seconds as a `TimeInterval`.
  var timeInterval: TimeInterval {
    Double(components.seconds) + Double(components.attoseconds) / 1e18
  }

  /// Whole milliseconds.
  var milliseconds: Int {
    Int(components.seconds) * 1000 + Int(components.attoseconds / 1_000_000_000_000_000)
  }
}
