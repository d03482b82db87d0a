/// Decides when a file has stopped changing (lessons row 1): a file is stable once there were no events for it
/// and its size and modification time stayed the same for a whole window.
///
/// The tracker is a plain value driven by explicit times (a `Duration` since some fixed start, usually read from
/// an injected clock), so tests step it without sleeping. Any event or any change of size or modification time
/// re-arms the window; the tracker never gives up on a file, however long it keeps changing.
public struct StabilityTracker: Sendable {
  /// What the tracker concluded about one file whose window ran out.
  public enum Verdict: Sendable, Hashable {
    /// Unchanged for the whole window: ready to claim.
    case stable(path: String, snapshot: FileSnapshot)
    /// Gone before it became stable.
    case vanished(path: String)
  }

  struct Entry: Sendable {
    var snapshot: FileSnapshot?
    var lastActivity: Duration
  }

  /// How long a file must stay quiet and unchanged.
  public var window: Duration
  private var entries: [String: Entry] = [:]

  /// A tracker that waits `window` of quiet before calling a file stable.
  public init(window: Duration) {
    self.window = window
  }

  /// A file-system event for `path` at `now`: starts or re-arms its window. `snapshot` is what `lstat` said
  /// just after the event (`nil` if nothing was there).
  public mutating func noteEvent(_ path: String, snapshot: FileSnapshot?, at now: Duration) {
    entries[path] = Entry(snapshot: snapshot, lastActivity: now)
  }

  /// A scan saw `path` at `now`: starts a window for a file not yet tracked, and re-arms it only if its size or
  /// modification time differ from what was last recorded (a scan is not an event).
  public mutating func noteSighting(_ path: String, snapshot: FileSnapshot, at now: Duration) {
    if let entry = entries[path], let previous = entry.snapshot, previous.hasSameContentSignature(as: snapshot) {
      return
    }
    entries[path] = Entry(snapshot: snapshot, lastActivity: now)
  }

  /// Stops tracking `path`; returns whether it was tracked.
  @discardableResult
  public mutating func forget(_ path: String) -> Bool {
    entries.removeValue(forKey: path) != nil
  }

  /// Stops tracking `path` and everything below it (a folder that left the inbox); returns the paths dropped.
  public mutating func forgetTree(_ folder: String) -> [String] {
    let dropped = entries.keys.filter { PathName.isSameOrInside($0, folder) }
    for path in dropped { entries.removeValue(forKey: path) }
    return dropped.sorted()
  }

  /// Whether `path` is waiting for its window to pass.
  public func isTracking(_ path: String) -> Bool { entries[path] != nil }

  /// The paths waiting for their window, sorted.
  public var pendingPaths: [String] { entries.keys.sorted() }

  /// The earliest time at which some window runs out, or `nil` when nothing is tracked.
  public var nextDeadline: Duration? {
    entries.values.map { $0.lastActivity + window }.min()
  }

  /// Re-checks every file whose window has run out by `now`. `probe` reads the file's current snapshot.
  /// Unchanged files come back `.stable` and are no longer tracked; changed ones are re-armed from `now`;
  /// missing ones come back `.vanished`. Results are sorted by path so runs are reproducible.
  public mutating func collectDue(
    at now: Duration, probe: (String) -> FileSnapshot?
  ) -> [Verdict] {
    var verdicts: [Verdict] = []
    for path in entries.keys.sorted() {
      guard let entry = entries[path], entry.lastActivity + window <= now else { continue }
      guard let current = probe(path) else {
        entries.removeValue(forKey: path)
        verdicts.append(.vanished(path: path))
        continue
      }
      if let recorded = entry.snapshot, recorded.hasSameContentSignature(as: current) {
        entries.removeValue(forKey: path)
        verdicts.append(.stable(path: path, snapshot: current))
      } else {
        entries[path] = Entry(snapshot: current, lastActivity: now)
      }
    }
    return verdicts
  }
}
