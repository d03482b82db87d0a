import FolioBase
import Foundation
import Testing

@testable import FolioInbox

#if canImport(Glibc)
  import Glibc
#endif

/// Real temp folders and real inotify; windows are short and every wait is bounded.
@Suite("Inbox watcher", .serialized)
struct WatcherTests {
  static let fast = InboxWatcher.Configuration(
    mode: .native, stabilityWindow: .milliseconds(200), pollInterval: .milliseconds(50))

  @Test("A file written slowly in chunks is not taken before the writer stops (real inotify)")
  func slowWriterRealInotify() async throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    var configuration = Self.fast
    configuration.stabilityWindow = .seconds(1)  // a wide margin over the writer's pauses, even on a loaded CI box
    let running = RunningWatcher.start(inbox: layout.inbox, configuration: configuration)
    #expect(await running.watcher.mode == .native)
    let path = layout.inbox + "/scan.jpg"
    try write(path, [0xFF, 0xD8, 0xFF])
    // One chunk every 100 ms, well inside the window, for over a second.
    for _ in 0..<12 {
      try await Task.sleep(for: .milliseconds(100))
      try append(path, [UInt8](repeating: 0x42, count: 4096))
      #expect(await running.log.ready.isEmpty, "taken while still being written")
    }
    #expect(await eventually { await running.log.ready.count == 1 })
    let candidate = try #require(await running.log.ready.first)
    #expect(candidate.path == path)
    #expect(candidate.snapshot.size == 3 + 12 * 4096)
    await running.stop()
  }

  @Test("300 files dropped at once are each reported exactly once, and racing claimers take each exactly once")
  func threeHundredFiles() async throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let ledger = InboxLedger()
    let running = RunningWatcher.start(inbox: layout.inbox, configuration: Self.fast, ledger: ledger)
    let intake = Intake(layout: layout, ledger: ledger)
    for i in 0..<300 {
      try write(layout.inbox + (i % 3 == 0 ? "/batch/" : "/") + "file \(i).txt", "document number \(i)")
    }
    #expect(await eventually { await running.log.ready.count >= 300 })
    // Rescans and stray events must not report them again while they are in flight.
    await running.watcher.rescan()
    for i in stride(from: 0, to: 300, by: 10) {
      _ = utime(layout.inbox + (i % 3 == 0 ? "/batch/" : "/") + "file \(i).txt", nil)
    }
    try await Task.sleep(for: .milliseconds(600))  // three windows: long enough for any duplicate to surface
    let ready = await running.log.ready
    #expect(ready.count == 300)
    #expect(Set(ready.map(\.path)).count == 300)
    #expect(ready.filter { $0.documentSet == "batch" }.count == 100)

    let claims = await withTaskGroup(of: (String, Bool).self) { group in
      for candidate in ready {
        for _ in 0..<2 {
          group.addTask { (candidate.path, (try? intake.claim(candidate)) != nil) }
        }
      }
      var all: [(String, Bool)] = []
      for await claim in group { all.append(claim) }
      return all
    }
    let winners = claims.filter(\.1)
    #expect(winners.count == 300)
    #expect(Set(winners.map(\.0)).count == 300)
    #expect(await eventually { ledger.inFlightCount == 0 })
    #expect(await running.log.ready.count == 300)
    await running.stop()
  }

  @Test("A folder moved into the inbox with files inside is seen, sub-folders included")
  func folderMovedIn() async throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let running = RunningWatcher.start(inbox: layout.inbox, configuration: Self.fast)
    #expect(await eventually { await running.watcher.mode == .native })
    try write(dir.sub("staging/contracts/a.txt"), "a")
    try write(dir.sub("staging/contracts/deep/b.md"), "b")
    try await Task.sleep(for: .milliseconds(50))  // let the startup scan finish before the move
    #expect(rename(dir.sub("staging/contracts"), layout.inbox + "/contracts") == 0)
    // A folder created in place and filled at once is seen too.
    try write(layout.inbox + "/fresh/c.txt", "c")
    #expect(await eventually { await running.log.ready.count == 3 })
    let ready = await running.log.ready
    #expect(Set(ready.map(\.relativePath)) == ["contracts/a.txt", "contracts/deep/b.md", "fresh/c.txt"])
    #expect(Set(ready.map(\.documentSet)) == ["contracts", "fresh"])
    // Files added later inside the moved folder are watched as well.
    try write(layout.inbox + "/contracts/deep/later.txt", "later")
    #expect(await eventually { await running.log.ready.count == 4 })
    await running.stop()
  }

  @Test("Polling mode (no inotify) sees new files and files in new folders")
  func polling() async throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    try write(layout.inbox + "/before.txt", "present at startup")
    var configuration = Self.fast
    configuration.mode = .polling
    let running = RunningWatcher.start(inbox: layout.inbox, configuration: configuration)
    #expect(await running.watcher.mode == .polling)
    #expect(await eventually { await running.log.ready.count == 1 })
    try write(layout.inbox + "/later/after.txt", "added later")
    #expect(await eventually { await running.log.ready.count == 2 })
    #expect(Set(await running.log.ready.map(\.relativePath)) == ["before.txt", "later/after.txt"])
    await running.stop()
  }

  @Test("Ignored temporary names are never taken; renaming a finished download to its real name is")
  func ignoredNames() async throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let running = RunningWatcher.start(inbox: layout.inbox, configuration: Self.fast)
    for name in ["a.part", "b.filepart", "c.crdownload", "d.tmp", "~$e.docx", ".hidden.txt", ".folio-x/f.txt"] {
      try write(layout.inbox + "/" + name, "partial")
    }
    try write(layout.inbox + "/download.txt.part", "complete download")
    #expect(rename(layout.inbox + "/download.txt.part", layout.inbox + "/download.txt") == 0)
    #expect(await eventually { await running.log.ready.count >= 1 })
    try await Task.sleep(for: .milliseconds(600))  // three windows for any ignored file to (wrongly) surface
    #expect(await running.log.readyPaths == [layout.inbox + "/download.txt"])
    await running.stop()
  }

  @Test("A symlink in the inbox is reported as rejected once and left in place")
  func symlinkRejected() async throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    try write(dir.sub("outside.txt"), "secret")
    #expect(symlink(dir.sub("outside.txt"), layout.inbox + "/link.txt") == 0)
    let running = RunningWatcher.start(inbox: layout.inbox, configuration: Self.fast)
    #expect(await eventually { await running.log.rejected.count == 1 })
    await running.watcher.rescan()
    try await Task.sleep(for: .milliseconds(300))
    let rejected = await running.log.rejected
    #expect(rejected.count == 1)
    #expect(rejected.first?.0 == layout.inbox + "/link.txt")
    #expect(rejected.first?.1 == .symlinkRefused)
    #expect(await running.log.ready.isEmpty)
    #expect(exists(layout.inbox + "/link.txt"))
    await running.stop()
  }

  @Test("A file removed while it waits for its window is reported as vanished")
  func removedWhileWaiting() async throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    var configuration = Self.fast
    configuration.stabilityWindow = .seconds(30)
    let running = RunningWatcher.start(inbox: layout.inbox, configuration: configuration)
    try write(layout.inbox + "/short-lived.txt", "x")
    #expect(await eventually { await running.watcher.pendingPaths == [layout.inbox + "/short-lived.txt"] })
    _ = unlink(layout.inbox + "/short-lived.txt")
    #expect(await eventually { await running.log.events.contains(.vanished(path: layout.inbox + "/short-lived.txt")) })
    #expect(await running.log.ready.isEmpty)
    await running.stop()
  }

  @Test("A file put back with `leave` is not reported again until it changes")
  func leaveIsNotReprocessed() async throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let ledger = InboxLedger()
    let running = RunningWatcher.start(inbox: layout.inbox, configuration: Self.fast, ledger: ledger)
    let intake = Intake(layout: layout, ledger: ledger)
    try write(layout.inbox + "/keep-me-here.txt", "stay")
    #expect(await eventually { await running.log.ready.count == 1 })
    let claimed = try intake.claim(try #require(await running.log.ready.first))
    _ = try intake.dispose(claimed, outcome: .succeeded, policy: .init(onSuccess: .leave))
    await running.watcher.rescan()
    try await Task.sleep(for: .milliseconds(600))
    #expect(await running.log.ready.count == 1)
    try append(layout.inbox + "/keep-me-here.txt", Array(" edited".utf8))
    #expect(await eventually { await running.log.ready.count == 2 })
    await running.stop()
  }

  @Test("stopsWhenIdle (`--once`) reports what is there and finishes")
  func once() async throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    try write(layout.inbox + "/a.txt", "a")
    try write(layout.inbox + "/s/b.txt", "b")
    var configuration = Self.fast
    configuration.stopsWhenIdle = true
    let watcher = InboxWatcher(inbox: layout.inbox, configuration: configuration)
    await watcher.run()
    var paths: [String] = []
    for await event in watcher.events { if case .ready(let c) = event { paths.append(c.relativePath) } }
    #expect(paths.sorted() == ["a.txt", "s/b.txt"])
  }
}
