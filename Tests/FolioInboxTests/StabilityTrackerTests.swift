import FolioBase
import Foundation
import Testing

@testable import FolioInbox

@Suite("Stability window")
struct StabilityTrackerTests {
  @Test("A file written slowly in chunks is not taken until it stays unchanged for a whole window")
  func slowWriterDrivenByTestClock() throws {
    let dir = try TempDir()
    let path = dir.sub("scan.png")
    try write(path, [0x89])
    var tracker = StabilityTracker(window: .seconds(5))
    let probe: (String) -> FileSnapshot? = { (try? FileSnapshot.read($0)) ?? nil }
    tracker.noteEvent(path, snapshot: probe(path), at: .zero)
    var now = Duration.zero
    // A chunk every 4 s (less than the window) for a minute: never stable meanwhile.
    for _ in 0..<15 {
      now += .seconds(4)
      try append(path, Array(repeating: 0x41, count: 100))
      #expect(tracker.collectDue(at: now, probe: probe).isEmpty)
    }
    #expect(tracker.isTracking(path))
    // The writer stops: one window later (and not before) the file is stable.
    now += .seconds(4)
    #expect(tracker.collectDue(at: now, probe: probe).isEmpty)
    now += .seconds(5)
    let verdicts = tracker.collectDue(at: now, probe: probe)
    guard case .stable(let stablePath, let snapshot)? = verdicts.first else {
      Issue.record("expected a stable verdict, got \(verdicts)")
      return
    }
    #expect(stablePath == path)
    #expect(snapshot.size == 1 + 15 * 100)
    #expect(!tracker.isTracking(path))
  }

  @Test("Changes seen without events (size or mtime) re-arm the window; the tracker never gives up")
  func reArmsOnChangeNeverGivesUp() {
    let base = FileSnapshot(
      kind: .regular, size: 1, modificationTimeNanoseconds: 1, device: 1, inode: 1, mode: 0o644, owner: 0)
    var current = base
    var tracker = StabilityTracker(window: .seconds(2))
    tracker.noteSighting("/i/a.txt", snapshot: current, at: .zero)
    var now = Duration.zero
    for step in 1...1000 {
      now += .seconds(2)
      current.size = Int64(step + 1)
      let snapshot = current
      #expect(tracker.collectDue(at: now) { _ in snapshot }.isEmpty)
    }
    // Same size, new mtime: still a change.
    now += .seconds(2)
    current.modificationTimeNanoseconds += 1
    let touched = current
    #expect(tracker.collectDue(at: now) { _ in touched }.isEmpty)
    // A sighting of the unchanged file does not re-arm.
    now += .seconds(1)
    tracker.noteSighting("/i/a.txt", snapshot: touched, at: now)
    now += .seconds(1)
    #expect(tracker.collectDue(at: now) { _ in touched } == [.stable(path: "/i/a.txt", snapshot: touched)])
  }

  @Test("An event re-arms the window even when size and mtime look the same")
  func eventReArms() {
    let snapshot = FileSnapshot(
      kind: .regular, size: 5, modificationTimeNanoseconds: 9, device: 1, inode: 2, mode: 0o644, owner: 0)
    var tracker = StabilityTracker(window: .seconds(3))
    tracker.noteEvent("/i/b.txt", snapshot: snapshot, at: .zero)
    tracker.noteEvent("/i/b.txt", snapshot: snapshot, at: .seconds(2))
    #expect(tracker.nextDeadline == .seconds(5))
    #expect(tracker.collectDue(at: .seconds(4)) { _ in snapshot }.isEmpty)
    #expect(tracker.collectDue(at: .seconds(5)) { _ in snapshot }.count == 1)
  }

  @Test("A file that disappears while waiting is reported as vanished")
  func vanished() {
    let snapshot = FileSnapshot(
      kind: .regular, size: 5, modificationTimeNanoseconds: 9, device: 1, inode: 2, mode: 0o644, owner: 0)
    var tracker = StabilityTracker(window: .seconds(1))
    tracker.noteSighting("/i/c.txt", snapshot: snapshot, at: .zero)
    #expect(tracker.collectDue(at: .seconds(1)) { _ in nil } == [.vanished(path: "/i/c.txt")])
    #expect(tracker.pendingPaths.isEmpty)
  }

  @Test("The watcher, driven by a manual clock in polling mode, takes a slowly written file only after the window")
  func watcherWithManualClock() async throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let clock = ManualClock()
    let running = RunningWatcher.start(
      inbox: layout.inbox,
      configuration: .init(mode: .polling, stabilityWindow: .seconds(5), pollInterval: .seconds(1)),
      clock: clock)
    let path = layout.inbox + "/slow.txt"
    try write(path, "start\n")
    await running.watcher.rescan()
    for _ in 0..<5 {
      clock.advance(by: .seconds(2))
      try append(path, Array("more text\n".utf8))
      await running.watcher.rescan()
      await running.watcher.processDue()
      #expect(await running.watcher.pendingPaths == [path], "taken while still being written")
    }
    clock.advance(by: .seconds(4))
    await running.watcher.processDue()
    #expect(await running.watcher.pendingPaths == [path], "taken before the window passed")
    clock.advance(by: .seconds(1))
    await running.watcher.processDue()
    #expect(await running.watcher.pendingPaths.isEmpty)
    #expect(await eventually { await running.log.ready.count == 1 })
    let ready = await running.log.ready
    #expect(ready.map(\.path) == [path])
    #expect(ready.first?.snapshot.size == Int64(6 + 5 * 10))
    #expect(ready.first?.documentSet == "default")
    await running.stop()
  }
}
