#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import Foundation
import FolioBase

/// A file the watcher found stable and ready to claim.
public struct InboxCandidate: Sendable, Hashable {
  /// The absolute path in the inbox.
  public var path: String
  /// The path relative to the inbox, e.g. `contracts/a.txt`.
  public var relativePath: String
  /// The document set: the first-level folder under the inbox, or `default` for files at the top level.
  public var documentSet: String
  /// What `lstat` said when the file was found stable.
  public var snapshot: FileSnapshot
}

/// What the watcher reports.
public enum InboxEvent: Sendable, Equatable {
  /// A file stayed unchanged for the stability window: claim it with `Intake.claim(_:)`. It is reported once
  /// (it is in flight in the ledger until it leaves the inbox or is released).
  case ready(InboxCandidate)
  /// A file the watcher was waiting on disappeared before it became stable; nothing to do but log it.
  case vanished(path: String)
  /// Something in the inbox that Folio refuses (a symbolic link, a FIFO, an unreadable folder); reported once
  /// per file, left where it is.
  case rejected(path: String, error: FolioError)
  /// Something the operator should know, e.g. that native events are unavailable and polling took over.
  case notice(String)
}

/// The document set of a path relative to the inbox: its first-level folder, or `default` at the top level.
public enum DocumentSet {
  /// The set of files at the top level of the inbox.
  public static let defaultName = "default"

  /// `contracts/2024/a.txt` → `contracts`; `a.txt` → `default`.
  public static func name(forRelativePath relativePath: String) -> String {
    let parts = PathName.components(relativePath)
    return parts.count >= 2 ? parts[0] : defaultName
  }
}

/// Watches the inbox and reports files once they are stable (lessons rows 1–3, 11).
///
/// Native mode uses inotify with a watch on every (non-ignored) folder, added recursively; a folder that
/// appears (created or moved in) gets a watch and is scanned, because inotify does not replay what is already
/// inside. Polling mode (for NFS/SMB/Docker mounts that deliver no events) scans with `lstat` every
/// `pollInterval`. Both scan the whole inbox at startup and again every `rescanInterval` as a safety net.
/// Native mode falls back to polling, with a `.notice`, when inotify cannot be set up.
///
/// Call `run()` in a task; read `events`. Cancelling the task stops the watcher and finishes `events`.
/// Times come from the injected clock, so tests can drive stability windows without sleeping.
public actor InboxWatcher {
  /// How the watcher learns about changes.
  public enum Mode: Sendable, Hashable {
    /// inotify events, plus the periodic rescan.
    case native
    /// `lstat` scans every `pollInterval`, for file systems that deliver no events.
    case polling
  }

  /// Watcher settings.
  public struct Configuration: Sendable, Hashable {
    /// Native events or polling.
    public var mode: Mode
    /// How long a file must stay quiet and unchanged (size and modification time) before it is taken.
    public var stabilityWindow: Duration
    /// How often polling mode scans.
    public var pollInterval: Duration
    /// How often the whole inbox is rescanned as a safety net (lessons row 2: paperless-ngx settled on 300 s
    /// because watchers silently miss files, #13011).
    public var rescanInterval: Duration
    /// Names never taken.
    public var ignore: IgnoreRules
    /// When true, `run()` scans once, reports what becomes stable and returns (for `folio daemon --once`);
    /// no inotify watches are set up.
    public var stopsWhenIdle: Bool

    /// Defaults: native events, a 5 s stability window (long enough for a scanner's or browser's pauses
    /// between writes, lessons row 1), polling every 5 s, a full rescan every 300 s.
    public init(
      mode: Mode = .native, stabilityWindow: Duration = .seconds(5), pollInterval: Duration = .seconds(5),
      rescanInterval: Duration = .seconds(300), ignore: IgnoreRules = IgnoreRules(), stopsWhenIdle: Bool = false
    ) {
      self.mode = mode
      self.stabilityWindow = stabilityWindow
      self.pollInterval = pollInterval
      self.rescanInterval = rescanInterval
      self.ignore = ignore
      self.stopsWhenIdle = stopsWhenIdle
    }
  }

  /// Everything the watcher reports, in order. Finishes when `run()` returns.
  public nonisolated let events: AsyncStream<InboxEvent>
  /// The inbox folder (standardized).
  public nonisolated let inbox: String
  /// The ledger shared with the `Intake`.
  public nonisolated let ledger: InboxLedger
  /// The settings.
  public nonisolated let configuration: Configuration

  private let continuation: AsyncStream<InboxEvent>.Continuation
  private let timeline: Timeline
  private var tracker: StabilityTracker
  private var activeMode: Mode
  private var reader: InotifyReader?
  private var watchPaths: [Int32: String] = [:]
  private var watchIDs: [String: Int32] = [:]
  private var reportedRejections: [String: FileSnapshot] = [:]
  private var nextRescan: Duration = .zero
  private var nextPoll: Duration = .zero
  private var sleeper: Task<Void, Never>?
  private var sleeperDeadline: Duration?
  private var hasStarted = false

  /// A watcher for `inbox`. Share `ledger` with the `Intake` that claims the files.
  public init(
    inbox: String, configuration: Configuration = Configuration(), ledger: InboxLedger = InboxLedger(),
    clock: any Clock<Duration> = ContinuousClock()
  ) {
    self.inbox = PathName.standardized(inbox)
    self.configuration = configuration
    self.ledger = ledger
    self.timeline = Timeline(clock)
    self.tracker = StabilityTracker(window: configuration.stabilityWindow)
    self.activeMode = configuration.stopsWhenIdle ? .polling : configuration.mode
    (events, continuation) = AsyncStream.makeStream(of: InboxEvent.self, bufferingPolicy: .unbounded)
  }

  /// The mode in effect (native mode may have fallen back to polling).
  public var mode: Mode { activeMode }

  /// Paths waiting for their stability window, sorted.
  public var pendingPaths: [String] { tracker.pendingPaths }

  /// Watches until the surrounding task is cancelled (or, with `stopsWhenIdle`, until everything found at the
  /// start has been reported); then finishes `events`. Call it once.
  public func run() async {
    guard !hasStarted else { return }
    hasStarted = true
    if activeMode == .native {
      do {
        reader = try InotifyReader()
      } catch {
        fallBackToPolling(because: error)
      }
    }
    let now = timeline.now()
    if activeMode == .native { watchTree(inbox) }
    fullScan(at: now)
    nextRescan = now + configuration.rescanInterval
    nextPoll = now + configuration.pollInterval

    // Each child says whether it is the timer loop: the watcher ends when the timer loop does (cancellation, or
    // `stopsWhenIdle`), not when the event reader stops (it stops when native mode falls back to polling).
    await withTaskGroup(of: Bool.self) { group in
      if let reader {
        reader.start()
        group.addTask {
          for await batch in reader.stream { await self.handle(batch) }
          return false
        }
      }
      group.addTask {
        await self.timerLoop()
        return true
      }
      while let isTimerLoop = await group.next() {
        if isTimerLoop { break }
      }
      group.cancelAll()
    }
    reader?.stop()
    reader = nil
    continuation.finish()
  }

  /// Scans the whole inbox now (as the periodic rescan does).
  public func rescan() {
    fullScan(at: timeline.now())
    wakeIfEarlier(tracker.nextDeadline)
  }

  /// The daemon is done with `path` (claimed, or given up): it may be reported again if a file appears there.
  public nonisolated func release(_ path: String) {
    ledger.release(path)
  }

  // MARK: - Timer loop

  private func timerLoop() async {
    while !Task.isCancelled {
      let now = timeline.now()
      if now >= nextRescan {
        fullScan(at: now)
        nextRescan = now + configuration.rescanInterval
      }
      if activeMode == .polling, now >= nextPoll {
        fullScan(at: now)
        nextPoll = now + configuration.pollInterval
      }
      processDue(at: now)
      if configuration.stopsWhenIdle, tracker.pendingPaths.isEmpty { return }

      var deadline = nextRescan
      if let next = tracker.nextDeadline { deadline = min(deadline, next) }
      if activeMode == .polling { deadline = min(deadline, nextPoll) }
      let delay = max(deadline - now, .zero)
      let timeline = self.timeline
      let task = Task<Void, Never> { _ = try? await timeline.sleep(delay) }
      sleeper = task
      sleeperDeadline = deadline
      await withTaskCancellationHandler {
        await task.value
      } onCancel: {
        task.cancel()
      }
      sleeper = nil
      sleeperDeadline = nil
    }
  }

  /// Re-checks the files whose stability window has run out and reports them.
  func processDue(at now: Duration? = nil) {
    let verdicts = tracker.collectDue(at: now ?? timeline.now()) { path in (try? FileSnapshot.read(path)) ?? nil }
    for verdict in verdicts { report(verdict) }
  }

  /// Cuts the current sleep short if `deadline` comes before the time it sleeps until.
  private func wakeIfEarlier(_ deadline: Duration?) {
    guard let deadline, let current = sleeperDeadline, deadline < current else { return }
    sleeper?.cancel()
  }

  private func report(_ verdict: StabilityTracker.Verdict) {
    switch verdict {
    case .vanished(let path):
      continuation.yield(.vanished(path: path))
    case .stable(let path, let snapshot):
      guard let relative = PathName.relative(path, to: inbox) else { return }
      switch snapshot.kind {
      case .regular: break
      case .symlink: reject(path, snapshot, code: .symlinkRefused); return
      case .other: reject(path, snapshot, code: .notRegularFile); return
      case .directory: return
      }
      if ledger.isSettled(path, snapshot: snapshot) { return }
      guard ledger.beginFlight(path) else { return }
      continuation.yield(
        .ready(
          InboxCandidate(
            path: path, relativePath: relative, documentSet: DocumentSet.name(forRelativePath: relative),
            snapshot: snapshot)))
    }
  }

  private func reject(_ path: String, _ snapshot: FileSnapshot, code: FolioError.Code) {
    if let previous = reportedRejections[path], previous.isUnchanged(comparedTo: snapshot) { return }
    reportedRejections[path] = snapshot
    let q = POSIXFailure.quoted(path)
    let error: FolioError
    switch code {
    case .symlinkRefused:
      error = FolioError(
        .symlinkRefused,
        "\(q) is a symbolic link; Folio does not follow links in the inbox (they may point outside it). "
          + "Fix: copy the file itself into the inbox.")
    default:
      error = FolioError(
        .notRegularFile, "\(q) is not a regular file (FIFO, socket or device); Folio only takes regular files.")
    }
    continuation.yield(.rejected(path: path, error: error))
  }

  // MARK: - Scanning

  private func fullScan(at now: Duration) {
    if activeMode == .native { watchTree(inbox) }
    // Safety net for missed events: a path in flight whose file is gone has left the inbox.
    for path in ledger.inFlightPaths where ((try? FileSnapshot.read(path)) ?? nil) == nil {
      ledger.release(path)
    }
    for path in ledger.settledPaths where ((try? FileSnapshot.read(path)) ?? nil) == nil {
      ledger.unsettle(path)
    }
    scanTree(inbox, at: now)
  }

  /// Walks `folder`, feeding every regular file to the tracker as a sighting (a scan is not an event).
  private func scanTree(_ folder: String, at now: Duration) {
    var pending = [folder]
    while let current = pending.popLast() {
      let names: [String]
      do {
        names = try Directory.list(current)
      } catch {
        if error.code == .fileVanished { continue }
        if let snapshot = (try? FileSnapshot.read(current)) ?? nil,
          reportedRejections[current].map({ !$0.isUnchanged(comparedTo: snapshot) }) ?? true
        {
          reportedRejections[current] = snapshot
          continuation.yield(.rejected(path: current, error: error))
        }
        continue
      }
      for name in names {
        let path = PathName.join(current, name)
        guard let relative = PathName.relative(path, to: inbox),
          !configuration.ignore.isIgnored(name: name, relativePath: relative)
        else { continue }
        guard let snapshot = (try? FileSnapshot.read(path)) ?? nil else { continue }
        if snapshot.kind == .directory {
          pending.append(path)
        } else {
          consider(path, snapshot: snapshot, at: now, isEvent: false)
        }
      }
    }
  }

  private func consider(_ path: String, snapshot: FileSnapshot?, at now: Duration, isEvent: Bool) {
    if ledger.isInFlight(path) { return }
    guard let snapshot else {
      if isEvent, tracker.isTracking(path) { tracker.noteEvent(path, snapshot: nil, at: now) }
      return
    }
    switch snapshot.kind {
    case .symlink: reject(path, snapshot, code: .symlinkRefused)
    case .other: reject(path, snapshot, code: .notRegularFile)
    case .directory: return
    case .regular:
      if ledger.isSettled(path, snapshot: snapshot) { return }
      if isEvent {
        tracker.noteEvent(path, snapshot: snapshot, at: now)
      } else {
        tracker.noteSighting(path, snapshot: snapshot, at: now)
      }
    }
  }

  // MARK: - inotify

  private func fallBackToPolling(because error: FolioError) {
    reader?.stop()
    reader = nil
    watchPaths = [:]
    watchIDs = [:]
    activeMode = .polling
    sleeper?.cancel()  // start polling now rather than at the next deadline
    continuation.yield(
      .notice("Native file events are unavailable (\(error.message)); polling the inbox every \(configuration.pollInterval) instead."))
  }

  /// Adds a watch to `folder` and every non-ignored folder below it (idempotent).
  private func watchTree(_ folder: String) {
    guard let reader else { return }
    var pending = [folder]
    while let current = pending.popLast() {
      do {
        let wd = try reader.addWatch(current)
        if let old = watchIDs[current], old != wd { watchPaths.removeValue(forKey: old) }
        if let oldPath = watchPaths[wd], oldPath != current { watchIDs.removeValue(forKey: oldPath) }
        watchPaths[wd] = current
        watchIDs[current] = wd
      } catch {
        if error.code == .watchFailed {
          fallBackToPolling(because: error)
          return
        }
        continue  // vanished, a symlink, or unreadable: the scan reports what matters
      }
      guard let names = try? Directory.list(current) else { continue }
      for name in names {
        let path = PathName.join(current, name)
        guard let relative = PathName.relative(path, to: inbox),
          !configuration.ignore.isIgnored(name: name, relativePath: relative),
          let snapshot = (try? FileSnapshot.read(path)) ?? nil, snapshot.kind == .directory
        else { continue }
        pending.append(path)
      }
    }
  }

  private func unwatchTree(_ folder: String) {
    for (path, wd) in watchIDs where PathName.isSameOrInside(path, folder) {
      reader?.removeWatch(wd)
      watchIDs.removeValue(forKey: path)
      watchPaths.removeValue(forKey: wd)
    }
  }

  private func handle(_ batch: [InotifyReader.RawEvent]) {
    let now = timeline.now()
    for event in batch {
      let mask = event.mask
      if mask & UInt32(IN_Q_OVERFLOW) != 0 {
        fullScan(at: now)
        continue
      }
      if mask & UInt32(IN_IGNORED) != 0 {
        if let path = watchPaths.removeValue(forKey: event.wd), watchIDs[path] == event.wd {
          watchIDs.removeValue(forKey: path)
        }
        continue
      }
      guard let folder = watchPaths[event.wd], !event.name.isEmpty else { continue }
      let path = PathName.join(folder, event.name)
      guard let relative = PathName.relative(path, to: inbox),
        !configuration.ignore.isIgnored(name: event.name, relativePath: relative)
      else { continue }

      let left = mask & UInt32(IN_DELETE | IN_MOVED_FROM) != 0
      if mask & UInt32(IN_ISDIR) != 0 {
        if left {
          unwatchTree(path)
          for dropped in tracker.forgetTree(path) { continuation.yield(.vanished(path: dropped)) }
          ledger.releaseTree(path)
        } else if mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 {
          // inotify does not replay files already inside a folder that appears (lessons row 11).
          watchTree(path)
          scanTree(path, at: now)
        }
        continue
      }
      if left {
        // Not `unsettle`: this event may be handled after a `leave` put the file back under this name. A
        // replaced file is told apart by its inode and modification time instead.
        ledger.release(path)
        reportedRejections.removeValue(forKey: path)
        if tracker.forget(path) { continuation.yield(.vanished(path: path)) }
        continue
      }
      consider(path, snapshot: (try? FileSnapshot.read(path)) ?? nil, at: now, isEvent: true)
    }
    wakeIfEarlier(tracker.nextDeadline)
  }
}

/// Monotonic time read from an injected clock, as a `Duration` since the watcher was made.
struct Timeline: Sendable {
  let now: @Sendable () -> Duration
  let sleep: @Sendable (Duration) async throws -> Void

  init<C: Clock>(_ clock: C) where C.Duration == Duration {
    let start = clock.now
    now = { start.duration(to: clock.now) }
    sleep = { try await clock.sleep(for: $0) }
  }
}

/// Reads inotify events on a thread of its own and hands them over in batches, in order.
final class InotifyReader: @unchecked Sendable {
  struct RawEvent: Sendable {
    var wd: Int32
    var mask: UInt32
    var cookie: UInt32
    var name: String
  }

  /// Events on folders and on the files in them; links are not followed, only folders are watched.
  static let watchMask = UInt32(
    IN_CREATE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | IN_DELETE_SELF
      | IN_MOVE_SELF | IN_DONT_FOLLOW | IN_ONLYDIR | IN_EXCL_UNLINK)

  let stream: AsyncStream<[RawEvent]>
  private let continuation: AsyncStream<[RawEvent]>.Continuation
  private let fd: Int32
  private let lock = NSLock()
  private var isStopped = false
  private var thread: Thread?

  init() throws(FolioError) {
    let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
    guard fd >= 0 else {
      let code = errno
      throw FolioError(
        .watchFailed,
        "inotify_init1 failed: \(POSIXFailure.message(code)). Raise fs.inotify.max_user_instances, or use polling mode.")
    }
    self.fd = fd
    (stream, continuation) = AsyncStream.makeStream(of: [RawEvent].self, bufferingPolicy: .unbounded)
  }

  func addWatch(_ path: String) throws(FolioError) -> Int32 {
    let wd = inotify_add_watch(fd, path, Self.watchMask)
    guard wd >= 0 else {
      let code = errno
      if code == ENOSPC || code == ENOMEM || code == EBADF {
        throw FolioError(
          .watchFailed,
          "cannot watch \(POSIXFailure.quoted(path)): \(POSIXFailure.message(code)). "
            + "Raise fs.inotify.max_user_watches (sysctl), or use polling mode.")
      }
      throw POSIXFailure.error(code, operation: "inotify_add_watch", path: path)
    }
    return wd
  }

  func removeWatch(_ wd: Int32) {
    _ = inotify_rm_watch(fd, wd)
  }

  func start() {
    let thread = Thread { [self] in self.readLoop() }
    thread.name = "folio-inotify"
    self.thread = thread
    thread.start()
  }

  func stop() {
    lock.withLock { isStopped = true }
    if thread == nil {
      // Never started: the read loop will not close the descriptor.
      close(fd)
      continuation.finish()
    }
  }

  private var shouldStop: Bool { lock.withLock { isStopped } }

  private func readLoop() {
    // Poll with a short timeout so `stop()` is noticed without a wake-up pipe.
    let bufferSize = 64 * 1024
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 8)
    defer {
      buffer.deallocate()
      close(fd)
      continuation.finish()
    }
    while !shouldStop {
      var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
      let ready = poll(&descriptor, 1, 100)
      if ready < 0 {
        if errno == EINTR { continue }
        return
      }
      if ready == 0 { continue }
      var batch: [RawEvent] = []
      while true {
        let count = read(fd, buffer, bufferSize)
        if count <= 0 { break }
        batch.append(contentsOf: Self.parse(UnsafeRawBufferPointer(start: buffer, count: count)))
      }
      if !batch.isEmpty { continuation.yield(batch) }
    }
  }

  /// Parses `struct inotify_event` records: wd, mask, cookie, len (4 bytes each), then `len` bytes of
  /// NUL-padded name.
  static func parse(_ bytes: UnsafeRawBufferPointer) -> [RawEvent] {
    var events: [RawEvent] = []
    var offset = 0
    let header = 16
    while offset + header <= bytes.count {
      let wd = bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)
      let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
      let cookie = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
      let length = Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
      let nameStart = offset + header
      guard nameStart + length <= bytes.count else { break }
      var nameBytes = bytes[nameStart..<(nameStart + length)]
      if let end = nameBytes.firstIndex(of: 0) { nameBytes = nameBytes[..<end] }
      events.append(RawEvent(wd: wd, mask: mask, cookie: cookie, name: String(decoding: nameBytes, as: UTF8.self)))
      offset = nameStart + length
    }
    return events
  }
}
