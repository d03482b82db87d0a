import Foundation

/// What the inbox remembers between the watcher and the intake, so a file is handed out once (lessons row 3).
///
/// - *In flight*: paths the watcher reported as ready and that have not left the inbox yet. Stray events and
///   rescans cannot report them again. A path leaves the set when the file leaves its place (claimed, removed),
///   or when the daemon calls `release(_:)`.
/// - *Settled*: files that went back to their original place after processing (the `leave` disposition). They
///   are not reported again while they stay the same file with the same size and modification time. This memory
///   lives as long as the process; after a restart the daemon recognises such files by their SHA-256.
///
/// Share one ledger between an `InboxWatcher` and an `Intake`.
public final class InboxLedger: @unchecked Sendable {
  private let lock = NSLock()
  private var inFlight: Set<String> = []
  private var settled: [String: FileSnapshot] = [:]

  /// An empty ledger.
  public init() {}

  /// Marks `path` in flight; returns `false` if it already was (the caller must not hand it out again).
  public func beginFlight(_ path: String) -> Bool {
    lock.withLock { inFlight.insert(path).inserted }
  }

  /// Whether `path` is in flight.
  public func isInFlight(_ path: String) -> Bool {
    lock.withLock { inFlight.contains(path) }
  }

  /// Ends the flight of `path`: the daemon is done with it, or it left the inbox.
  public func release(_ path: String) {
    _ = lock.withLock { inFlight.remove(path) }
  }

  /// Ends the flight of every path at or below `folder`.
  func releaseTree(_ folder: String) {
    lock.withLock { inFlight = inFlight.filter { !PathName.isSameOrInside($0, folder) } }
  }

  /// The paths in flight, sorted.
  public var inFlightPaths: [String] { lock.withLock { inFlight.sorted() } }

  /// The number of paths in flight.
  public var inFlightCount: Int { lock.withLock { inFlight.count } }

  /// Remembers that the file now at `path` (as `snapshot` describes it) has been handled and must not be reported
  /// again while it stays unchanged.
  public func settle(_ path: String, snapshot: FileSnapshot) {
    lock.withLock { settled[path] = snapshot }
  }

  /// Whether the file at `path`, as `snapshot` describes it now, was settled and has not changed since; a changed
  /// or replaced file is forgotten so it is processed as new.
  public func isSettled(_ path: String, snapshot: FileSnapshot) -> Bool {
    lock.withLock {
      guard let recorded = settled[path] else { return false }
      if recorded.isUnchanged(comparedTo: snapshot) { return true }
      settled.removeValue(forKey: path)
      return false
    }
  }

  /// The settled paths, sorted.
  public var settledPaths: [String] { lock.withLock { settled.keys.sorted() } }

  /// Forgets a settled file (it was removed or replaced).
  public func unsettle(_ path: String) {
    _ = lock.withLock { settled.removeValue(forKey: path) }
  }
}
