import FolioBase
import FolioDaemon
import FolioStore
import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The daemon through its real inbox path: a temp inbox, the watcher (inotify or polling), intake, a real SQLite
/// file, the job runner and disposition. The model is a ``StepRunner`` double here (see RealEngineTests for the
/// real one), so each test takes a second or two.
@Suite("Daemon: inbox to results")
struct DaemonIntakeTests {
  @Test("300 files dropped at once are each processed exactly once", arguments: ["native", "polling"])
  func threeHundredFiles(mode: String) async throws {
    let home = try TestHome()
    for i in 0..<300 { try write(home.inbox + "/batch/file-\(i).txt", "document number \(i)\n") }
    let runner = EchoRunner()
    let report = try await runOnce(home, overrides: ["watch": mode], runner: runner)
    #expect(report.documentIDs.count == 300)
    let store = try home.store()
    let status = try await store.status()
    #expect(status.documents == 300)
    #expect(status.succeeded == 300)
    #expect(status.results == 300)
    #expect(runner.requests.count == 300)
    let processed = try FileManager.default.contentsOfDirectory(atPath: home.processed + "/batch")
    #expect(processed.count == 300)
    let left = FileManager.default.enumerator(atPath: home.inbox)?.compactMap { $0 as? String }
      .filter { $0.hasSuffix(".txt") }
    #expect(left == [], "files left in the inbox or the work area")
    let sets = try await store.sets()
    #expect(sets.map(\.setName) == ["batch"])
  }

  @Test("a duplicate is refused with 'duplicate of document N' and kept in failed/ with a sidecar")
  func duplicateRejected() async throws {
    let home = try TestHome()
    try write(home.inbox + "/a.txt", "same bytes")
    try await runOnce(home)
    try write(home.inbox + "/copy of a.txt", "same bytes")
    let report = try await runOnce(home)
    let refusal = try #require(report.refused.first)
    #expect(refusal.error.code == .duplicateDocument)
    #expect(refusal.error.message.contains("duplicate of document 1"))
    #expect(exists(home.failed + "/copy of a.txt"))
    #expect(exists(home.failed + "/copy of a.txt.error.json"))
    let failures = try await home.store().intakeFailures()
    #expect(failures.first?.duplicateOf == 1)
    #expect(failures.first?.finalPath == home.failed + "/copy of a.txt")
  }

  @Test("a duplicate under the link policy is recorded as linked, with no jobs")
  func duplicateLinked() async throws {
    let home = try TestHome()
    try write(home.inbox + "/a.txt", "same bytes")
    try await runOnce(home)
    try write(home.inbox + "/b.txt", "same bytes")
    let report = try await runOnce(home, overrides: ["duplicates": "link"])
    #expect(report.linked.count == 1)
    #expect(report.linked.first?.original == 1)
    let document = try #require(try await home.store().document(id: 2))
    #expect(document.status == .linked)
    #expect(exists(home.processed + "/b.txt"))
  }

  @Test("zero-byte, corrupt PNG, non-UTF-8 text and oversized files are refused with typed errors")
  func badFiles() async throws {
    let home = try TestHome(pipelines: ["documents.yaml": TestHome.cheapDocuments, "images.yaml": TestHome.cheapImages])
    try write(home.inbox + "/empty.txt", [])
    let receipt = Array(try Data(contentsOf: packageRoot.appendingPathComponent("samples/receipt.png")))
    var damaged = receipt
    for i in 100..<400 { damaged[i] ^= 0x5A }
    try write(home.inbox + "/broken.png", damaged)
    try write(home.inbox + "/junk.png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(repeating: 0x42, count: 64))
    try write(home.inbox + "/truncated.png", Array(receipt.prefix(receipt.count / 2)))
    try write(home.inbox + "/latin1.txt", [0x47, 0x72, 0xFC, 0xDF, 0x65, 0x0A])  // "Grüße" in Latin-1
    try write(home.inbox + "/big.txt", String(repeating: "x", count: 20_000))
    try write(home.inbox + "/good.png", receipt)
    let report = try await runOnce(home, overrides: ["max_file_bytes": "10000"])
    let codes = Dictionary(uniqueKeysWithValues: report.refused.map { ($0.path, $0.error.code) })
    #expect(codes["empty.txt"] == .emptyFile)
    #expect(codes["broken.png"] == .imageCorrupt)
    #expect(codes["truncated.png"] == .imageTruncated)
    #expect(codes["junk.png"] == .imageTruncated || codes["junk.png"] == .imageCorrupt)
    #expect(codes["latin1.txt"] == .notUTF8)
    #expect(codes["big.txt"] == .fileTooLarge)
    #expect(report.documentIDs.count == 1)  // good.png
    for name in ["empty.txt", "broken.png", "junk.png", "truncated.png", "latin1.txt", "big.txt"] {
      #expect(exists(home.failed + "/" + name), "\(name) kept in failed/")
      #expect(exists(home.failed + "/" + name + ".error.json"), "\(name) has a sidecar")
    }
    #expect(try await home.store().intakeFailures().count == 6)
  }

  @Test("an image above max_pixels is refused before decoding")
  func imageTooLarge() async throws {
    let home = try TestHome(pipelines: ["images.yaml": TestHome.cheapImages])
    try write(home.inbox + "/receipt.png", Array((try Data(contentsOf: packageRoot.appendingPathComponent("samples/receipt.png")))))
    let report = try await runOnce(home, overrides: ["max_pixels": "1000"])
    #expect(report.refused.first?.error.code == .imageTooLarge)
    #expect(report.refused.first?.error.message.contains("320×240") == true)
    #expect(exists(home.failed + "/receipt.png.error.json"))
  }

  @Test("a symlink pointing outside the inbox is refused and left alone; the target is untouched")
  func symlinkOutside() async throws {
    let home = try TestHome()
    try write(home.path + "/outside/secret.txt", "not for Folio")
    try FileManager.default.createSymbolicLink(atPath: home.inbox + "/link.txt", withDestinationPath: home.path + "/outside/secret.txt")
    try write(home.inbox + "/real.txt", "real document")
    let report = try await runOnce(home)
    #expect(report.documentIDs.count == 1)
    #expect(report.refused.contains { $0.error.code == .symlinkRefused })
    #expect(exists(home.inbox + "/link.txt"))
    #expect(FileManager.default.contents(atPath: home.path + "/outside/secret.txt") == Data("not for Folio".utf8))
    #expect(try await home.store().status().documents == 1)
  }

  @Test("names with spaces, Unicode and newlines are processed and kept exactly")
  func awkwardNames() async throws {
    let home = try TestHome()
    let names = ["with spaces.txt", "Grüße – 日本語.md", "line\nbreak.txt", "  leading.txt"]
    for (i, name) in names.enumerated() { try write(home.inbox + "/" + name, "text \(i)") }
    let report = try await runOnce(home)
    #expect(report.documentIDs.count == names.count)
    #expect(report.refused.isEmpty)
    let store = try home.store()
    let paths = Set(try await store.documents().map(\.relativePath))
    #expect(paths == Set(names))
    for name in names { #expect(exists(home.processed + "/" + name), "\(name.debugDescription) in processed/") }
    #expect(try await store.status().succeeded == names.count)
  }

  @Test("leave disposition puts originals back; nothing is moved out of the inbox", arguments: ["native", "polling"])
  func leaveDisposition(mode: String) async throws {
    let home = try TestHome()
    try write(home.inbox + "/contracts/a.txt", "contract text")
    let report = try await runOnce(home, overrides: ["watch": mode, "on_success": "leave", "on_failure": "leave"])
    #expect(report.documentIDs.count == 1)
    #expect(FileManager.default.contents(atPath: home.inbox + "/contracts/a.txt") == Data("contract text".utf8))
    let document = try #require(try await home.store().document(id: 1))
    #expect(document.setName == "contracts")
    #expect(document.storedPath == home.inbox + "/contracts/a.txt")
    #expect(document.status == .processed)
  }

  @Test("a file written slowly in chunks is not taken early", arguments: ["native", "polling"])
  func slowWriter(mode: String) async throws {
    let home = try TestHome()
    let configuration = try home.configuration(["watch": mode, "stability_window": "700ms"])
    let runner = EchoRunner()
    let daemon = try await Daemon.start(configuration: configuration, runner: runner, logger: LogCapture().logger)
    let running = Task { try await daemon.run() }
    defer { running.cancel() }
    let path = home.inbox + "/slow.txt"
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    #expect(fd >= 0)
    var written = ""
    for i in 0..<8 {
      let chunk = "chunk \(i) of a slowly written file\n"
      written += chunk
      _ = chunk.withCString { Glibc.write(fd, $0, strlen($0)) }
      try await Task.sleep(for: .milliseconds(300))
      #expect(try await daemon.store.status().documents == 0, "taken while still being written (chunk \(i))")
    }
    close(fd)
    #expect(try await eventually { try await daemon.store.status().succeeded == 1 })
    let document = try #require(try await daemon.store.document(id: 1))
    #expect(document.sizeBytes == Int64(written.utf8.count))
    // The original is moved after the commit that records the result.
    #expect(try await eventually { FileManager.default.contents(atPath: home.processed + "/slow.txt") == Data(written.utf8) })
    await daemon.requestShutdown()
    _ = try await running.value
  }

  @Test("a file removed before it is taken is forgotten; the daemon carries on", arguments: ["native", "polling"])
  func removedBeforeTaken(mode: String) async throws {
    let home = try TestHome()
    let configuration = try home.configuration(["watch": mode, "stability_window": "1s"])
    let daemon = try await Daemon.start(configuration: configuration, runner: EchoRunner(), logger: LogCapture().logger)
    let running = Task { try await daemon.run() }
    try await Task.sleep(for: .milliseconds(300))
    try write(home.inbox + "/gone.txt", "short-lived")
    try await Task.sleep(for: .milliseconds(300))
    try FileManager.default.removeItem(atPath: home.inbox + "/gone.txt")
    try write(home.inbox + "/kept.txt", "stays")
    #expect(try await eventually { try await daemon.store.status().succeeded == 1 })
    try await Task.sleep(for: .milliseconds(1200))
    let documents = try await daemon.store.documents()
    #expect(documents.map(\.relativePath) == ["kept.txt"])
    #expect(try await daemon.store.intakeFailures().isEmpty)
    await daemon.requestShutdown()
    _ = try await running.value
  }

  @Test("folio add records files from elsewhere without touching them; the daemon then runs the jobs")
  func addFiles() async throws {
    let home = try TestHome()
    try write(home.path + "/elsewhere/notes.md", "# Notes\n\nSome text.")
    let configuration = try home.configuration()
    let workspace = try Workspace.open(configuration, create: true)
    let outcomes = try await workspace.add(files: [home.path + "/elsewhere/notes.md", home.path + "/missing.txt"], set: "inbox-less")
    #expect(outcomes.first?.1 == .recorded(documentID: 1, jobs: 1))
    if case .refused(let error) = outcomes.last?.1 { #expect(error.code == .fileNotFound) } else { Issue.record("missing file accepted") }
    try await runOnce(home)
    let store = try home.store()
    #expect(try await store.status().succeeded == 1)
    #expect(FileManager.default.contents(atPath: home.path + "/elsewhere/notes.md") == Data("# Notes\n\nSome text.".utf8))
    let document = try #require(try await store.document(id: 1))
    #expect(document.setName == "inbox-less")
    #expect(document.storedPath?.hasPrefix(configuration.store) == true)
  }

  @Test("reprocess by pipeline and step queues a new generation; results keep both")
  func reprocess() async throws {
    let home = try TestHome()
    try write(home.inbox + "/a.txt", "alpha")
    try write(home.inbox + "/b.txt", "beta")
    try await runOnce(home)
    let workspace = try Workspace.open(try home.configuration())
    let dry = try await workspace.reprocess(
      pipeline: "documents", step: "summary", modelID: nil, documentID: 1, setName: nil, olderThanVersion: false,
      dryRun: true)
    #expect(dry.count == 1 && dry[0].jobIDs.isEmpty)
    let done = try await workspace.reprocess(
      pipeline: nil, step: nil, modelID: "test/echo", documentID: nil, setName: nil, olderThanVersion: false,
      dryRun: false)
    #expect(done.count == 2)
    try await runOnce(home)
    let store = try home.store()
    #expect(try await store.results(matching: ResultFilter(latestOnly: false)).count == 4)
    let latest = try await store.results()
    #expect(latest.count == 2 && latest.allSatisfy { $0.generation == 1 })
  }
}
