import FolioBase
import Foundation
import Testing

@testable import FolioInbox

#if canImport(Glibc)
  import Glibc
#endif

/// A fresh temporary folder, removed when the value is deinitialised.
final class TempDir: @unchecked Sendable {
  let path: String

  init() throws {
    var template = Array("/tmp/folio-inbox-test-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
    path = String(cString: made)
  }

  deinit {
    _ = try? FileManager.default.removeItem(atPath: path)
  }

  func sub(_ relative: String) -> String { path + "/" + relative }
}

struct TestFailure: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// Writes `bytes` to `path`, creating parent folders.
func write(_ path: String, _ bytes: [UInt8]) throws {
  let parent = (path as NSString).deletingLastPathComponent
  try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
  guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
    throw TestFailure("cannot write \(path)")
  }
}

func write(_ path: String, _ text: String) throws { try write(path, Array(text.utf8)) }

/// Appends `bytes` to `path`.
func append(_ path: String, _ bytes: [UInt8]) throws {
  let fd = open(path, O_WRONLY | O_APPEND)
  guard fd >= 0 else { throw TestFailure("cannot open \(path)") }
  defer { close(fd) }
  let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
  guard n == bytes.count else { throw TestFailure("short write") }
}

func exists(_ path: String) -> Bool {
  var st = stat()
  return lstat(path, &st) == 0
}

func contents(_ path: String) -> [UInt8]? {
  FileManager.default.contents(atPath: path).map { [UInt8]($0) }
}

/// The standard layout of a test: `<tmp>/inbox`, `processed`, `failed`, `store`, `folio.db`.
func makeLayout(_ dir: TempDir) throws -> InboxLayout {
  let layout = InboxLayout.conventional(root: dir.path)
  try layout.createMissingFolders()
  return layout
}

/// Everything a watcher reported, collected by a background task.
actor EventLog {
  private(set) var events: [InboxEvent] = []

  func append(_ event: InboxEvent) { events.append(event) }

  var ready: [InboxCandidate] {
    events.compactMap { if case .ready(let candidate) = $0 { candidate } else { nil } }
  }

  var readyPaths: [String] { ready.map(\.path) }

  var rejected: [(String, FolioErrorCode)] {
    events.compactMap { if case .rejected(let path, let error) = $0 { (path, error.code) } else { nil } }
  }
}

typealias FolioErrorCode = FolioError.Code

/// Waits until `condition` holds, checking every 10 ms, for at most `timeout`; returns whether it held.
/// Used to await real inotify events with a bound instead of fixed sleeps.
func eventually(
  timeout: Duration = .seconds(15), _ condition: @Sendable () async -> Bool
) async -> Bool {
  let clock = ContinuousClock()
  let deadline = clock.now + timeout
  while clock.now < deadline {
    if await condition() { return true }
    try? await Task.sleep(for: .milliseconds(10))
  }
  return await condition()
}

/// A running watcher and its event log; `stop()` cancels it and waits for `events` to finish.
struct RunningWatcher {
  let watcher: InboxWatcher
  let log: EventLog
  let runTask: Task<Void, Never>
  let collectTask: Task<Void, Never>

  static func start(
    inbox: String, configuration: InboxWatcher.Configuration, ledger: InboxLedger = InboxLedger(),
    clock: any Clock<Duration> = ContinuousClock()
  ) -> RunningWatcher {
    let watcher = InboxWatcher(inbox: inbox, configuration: configuration, ledger: ledger, clock: clock)
    let log = EventLog()
    let collectTask = Task {
      for await event in watcher.events { await log.append(event) }
    }
    let runTask = Task { await watcher.run() }
    return RunningWatcher(watcher: watcher, log: log, runTask: runTask, collectTask: collectTask)
  }

  func stop() async {
    runTask.cancel()
    await runTask.value
    await collectTask.value
  }
}

/// A clock that moves only when a test advances it; sleepers wake when their deadline is reached and throw
/// `CancellationError` when cancelled.
final class ManualClock: Clock, @unchecked Sendable {
  struct Instant: InstantProtocol {
    var offset: Duration
    func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
    func duration(to other: Instant) -> Duration { other.offset - offset }
    static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
  }

  private struct Sleeper {
    var deadline: Instant
    var continuation: CheckedContinuation<Void, any Error>
  }

  private let lock = NSLock()
  private var current = Instant(offset: .zero)
  private var sleepers: [UInt64: Sleeper] = [:]
  private var nextID: UInt64 = 0

  var now: Instant { lock.withLock { current } }
  var minimumResolution: Duration { .zero }

  /// The number of tasks sleeping on this clock.
  var sleeperCount: Int { lock.withLock { sleepers.count } }

  func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
    let id: UInt64 = lock.withLock {
      nextID += 1
      return nextID
    }
    try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        let resumeNow: Bool = lock.withLock {
          if deadline <= current { return true }
          if Task.isCancelled { return true }
          sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
          return false
        }
        if resumeNow { continuation.resume() }
      }
    } onCancel: {
      let sleeper = lock.withLock { sleepers.removeValue(forKey: id) }
      sleeper?.continuation.resume(throwing: CancellationError())
    }
    try Task.checkCancellation()
  }

  func advance(by duration: Duration) {
    let due: [Sleeper] = lock.withLock {
      current = current.advanced(by: duration)
      let ready = sleepers.filter { $0.value.deadline <= current }
      for id in ready.keys { sleepers.removeValue(forKey: id) }
      return Array(ready.values)
    }
    for sleeper in due { sleeper.continuation.resume() }
  }
}
