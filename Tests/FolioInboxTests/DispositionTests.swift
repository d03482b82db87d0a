import FolioBase
import Foundation
import Testing

@testable import FolioInbox

#if canImport(Glibc)
  import Glibc
#endif

/// `setfsuid(2)`: changes the file-system uid of the calling thread only. Glibc's Swift module does not export it.
@_silgen_name("setfsuid") func c_setfsuid(_ uid: UInt32) -> Int32

@Suite("Disposition after the outcome is recorded")
struct DispositionTests {
  func claim(_ layout: InboxLayout, _ relative: String, _ text: String) throws -> ClaimedFile {
    try write(layout.inbox + "/" + relative, text)
    return try Intake(layout: layout).claim(layout.inbox + "/" + relative)
  }

  @Test("move: success to processed/ keeping the set folder; collisions get a numeric suffix, nothing is overwritten")
  func moveSuccess() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    try write(layout.processed + "/contracts/a.txt", "older file")
    let first = try claim(layout, "contracts/a.txt", "new a")
    let receipt = try intake.dispose(first, outcome: .succeeded)
    #expect(receipt.disposition == .move)
    #expect(receipt.finalPath == layout.processed + "/contracts/a (1).txt")
    #expect(contents(layout.processed + "/contracts/a.txt") == Array("older file".utf8))
    #expect(contents(receipt.finalPath) == Array("new a".utf8))
    #expect(!exists(first.workPath))
    #expect((try? FileManager.default.contentsOfDirectory(atPath: layout.work)) == [], "claim folder cleaned up")

    let second = try claim(layout, "contracts/a.txt", "third a")
    #expect(try intake.dispose(second, outcome: .succeeded).finalPath == layout.processed + "/contracts/a (2).txt")
    let top = try claim(layout, "b.md", "b")
    #expect(try intake.dispose(top, outcome: .succeeded).finalPath == layout.processed + "/b.md")
  }

  @Test("move: failure to failed/ with an <name>.error.json sidecar holding code and message")
  func moveFailure() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    let claimed = try claim(layout, "letters/bad.txt", "x")
    let error = FolioError(.notUTF8, "bad.txt is not valid UTF-8; convert it.")
    let receipt = try intake.dispose(claimed, outcome: .failed(error))
    #expect(receipt.finalPath == layout.failed + "/letters/bad.txt")
    let sidecarPath = try #require(receipt.sidecarPath)
    #expect(sidecarPath == layout.failed + "/letters/bad.txt.error.json")
    let data = try #require(FileManager.default.contents(atPath: sidecarPath))
    let sidecar = try JSONDecoder().decode(ErrorSidecar.self, from: data)
    #expect(sidecar.code == "not_utf8")
    #expect(sidecar.message == error.message)
    #expect(sidecar.sha256 == claimed.sha256)
    #expect(sidecar.documentSet == "letters")
    let json = String(decoding: data, as: UTF8.self)
    #expect(json.contains("\"original_path\""))

    // Same name again, and a stale sidecar of a third name already there: both name and sidecar must be free.
    try write(layout.failed + "/letters/bad (1).txt.error.json", "{}")
    let again = try claim(layout, "letters/bad.txt", "y")
    let second = try intake.dispose(again, outcome: .failed(error))
    #expect(second.finalPath == layout.failed + "/letters/bad (2).txt")
    #expect(second.sidecarPath == layout.failed + "/letters/bad (2).txt.error.json")
    #expect(contents(layout.failed + "/letters/bad (1).txt.error.json") == Array("{}".utf8))
  }

  @Test("keep: into the managed store under the SHA-256 prefix; the same content twice gets a suffix")
  func keep() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    let policy = DispositionPolicy(onSuccess: .keep, onFailure: .keep)
    let first = try claim(layout, "abc.txt", "abc")
    let receipt = try intake.dispose(first, outcome: .succeeded, policy: policy)
    let folder = layout.store + "/ba/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    #expect(receipt.finalPath == folder + "/abc.txt")
    #expect(receipt.sidecarPath == nil)
    let second = try claim(layout, "abc.txt", "abc")
    #expect(try intake.dispose(second, outcome: .failed(FolioError(.cancelled, "x")), policy: policy).finalPath == folder + "/abc (1).txt")
    #expect(contents(folder + "/abc.txt") == Array("abc".utf8))
  }

  @Test("leave: back to the original place; a new file there keeps its name and ours gets a suffix")
  func leave() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let ledger = InboxLedger()
    let intake = Intake(layout: layout, ledger: ledger)
    let policy = DispositionPolicy(onSuccess: .leave, onFailure: .leave)
    try write(layout.inbox + "/set/a.txt", "original")
    let claimed = try intake.claim(layout.inbox + "/set/a.txt")
    try write(layout.inbox + "/set/a.txt", "newcomer")
    let receipt = try intake.dispose(claimed, outcome: .failed(FolioError(.notUTF8, "x")), policy: policy)
    #expect(receipt.finalPath == layout.inbox + "/set/a (1).txt")
    #expect(receipt.sidecarPath == nil, "no sidecar inside the inbox: it would be taken as a document")
    #expect(contents(layout.inbox + "/set/a.txt") == Array("newcomer".utf8))
    #expect(contents(receipt.finalPath) == Array("original".utf8))
    let snapshot = try #require(try FileSnapshot.read(receipt.finalPath))
    #expect(ledger.isSettled(receipt.finalPath, snapshot: snapshot))
  }

  @Test("EACCES on a move is a typed error and the file stays where it is")
  func permissionDenied() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    let claimed = try claim(layout, "a.txt", "precious")
    // Let an unprivileged uid reach the claimed file, but not write into processed/.
    for path in [dir.path, layout.inbox, layout.work, layout.work + "/" + claimed.claimID] { chmod(path, 0o777) }
    chmod(layout.processed, 0o555)
    defer { chmod(layout.processed, 0o755) }
    let outcome: Result<DispositionReceipt, FolioError>
    if getuid() == 0 {
      // Root bypasses permission bits: drop to `nobody` for file-system checks, on this thread only.
      _ = c_setfsuid(65534)
      outcome = Result { () throws(FolioError) -> DispositionReceipt in try intake.dispose(claimed, outcome: .succeeded) }
      _ = c_setfsuid(0)
    } else {
      outcome = Result { () throws(FolioError) -> DispositionReceipt in try intake.dispose(claimed, outcome: .succeeded) }
    }
    guard case .failure(let error) = outcome else {
      Issue.record("the move into a read-only folder succeeded: \(outcome)")
      return
    }
    #expect(error.code == .permissionDenied)
    #expect(error.message.contains("mode 0555"))
    #expect(error.message.contains("stays in"))
    #expect(contents(claimed.workPath) == Array("precious".utf8))
  }
}
