import FolioBase
import Foundation
import Testing

@testable import FolioInbox

#if canImport(Glibc)
  import Glibc
#endif

@Suite("Intake: claiming, hashing, classifying")
struct IntakeTests {
  static let pngHeader: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]
  static let jpegHeader: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16]

  @Test("SHA-256 of the original bytes matches known vectors (FIPS 180-2 'abc', the empty string, a million 'a')")
  func knownVectors() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    try write(layout.inbox + "/abc.txt", "abc")
    let abc = try intake.claim(layout.inbox + "/abc.txt")
    #expect(abc.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(abc.size == 3)
    #expect(abc.kind == .text)

    try write(layout.inbox + "/empty.txt", [])
    let empty = try intake.claim(layout.inbox + "/empty.txt")
    #expect(empty.sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

    // Spans many 64 KiB reads.
    try write(layout.inbox + "/million.txt", [UInt8](repeating: 0x61, count: 1_000_000))
    let million = try intake.claim(layout.inbox + "/million.txt")
    #expect(million.sha256 == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    #expect(million.size == 1_000_000)
  }

  @Test("Claiming moves the file into the work area, keeps its bytes and names its document set")
  func claimMovesAndNamesSet() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    let original = layout.inbox + "/contracts/2024/a.txt"
    try write(original, "hello")
    let claimed = try intake.claim(original)
    #expect(!exists(original))
    #expect(contents(claimed.workPath) == Array("hello".utf8))
    #expect(claimed.documentSet == "contracts")
    #expect(claimed.relativePath == "contracts/2024/a.txt")
    #expect(claimed.workPath.hasPrefix(layout.work + "/" + claimed.claimID + "/"))
    #expect(claimed.workPath.hasSuffix("/contracts/2024/a.txt"))
    #expect(claimed.originalPath == original)

    try write(layout.inbox + "/top.md", "# Title")
    #expect(try intake.claim(layout.inbox + "/top.md").documentSet == "default")
  }

  @Test("Kinds by magic bytes; text by extension and UTF-8; empty and unknown files are typed failures")
  func classification() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    try write(layout.inbox + "/photo.png", Self.pngHeader)
    try write(layout.inbox + "/named-wrong.txt", Self.pngHeader)
    try write(layout.inbox + "/scan.jpg", Self.jpegHeader)
    try write(layout.inbox + "/notes.MD", "Grüße, 世界 👋")
    try write(layout.inbox + "/zero.png", [])
    try write(layout.inbox + "/latin1.txt", [0x63, 0x61, 0x66, 0xE9, 0x0A])  // "café" in ISO-8859-1
    try write(layout.inbox + "/truncated.txt", [0x61, 0xE4, 0xB8])  // a cut-off 3-byte sequence
    try write(layout.inbox + "/report.pdf", Array("%PDF-1.7".utf8))

    #expect(try intake.claim(layout.inbox + "/photo.png").kind == .png)
    #expect(try intake.claim(layout.inbox + "/named-wrong.txt").kind == .png)
    #expect(try intake.claim(layout.inbox + "/scan.jpg").kind == .jpeg)
    #expect(try intake.claim(layout.inbox + "/notes.MD").kind == .text)

    let zero = try intake.claim(layout.inbox + "/zero.png")
    #expect(zero.kind == nil)
    #expect(zero.classification.failureCode == .emptyFile)
    #expect(exists(zero.workPath), "a failed classification still leaves a claimed file to dispose of")

    let latin1 = try intake.claim(layout.inbox + "/latin1.txt")
    #expect(latin1.classification.failureCode == .notUTF8)
    let message = latin1.classification.failureMessage ?? ""
    #expect(message.contains("UTF-8") && message.contains("convert") && message.contains("offset 3"))

    #expect(try intake.claim(layout.inbox + "/truncated.txt").classification.failureCode == .notUTF8)
    #expect(try intake.claim(layout.inbox + "/report.pdf").classification.failureCode == .unsupportedKind)
  }

  @Test("The streaming UTF-8 validator rejects overlongs, surrogates and code points above U+10FFFF")
  func utf8Validator() {
    func valid(_ chunks: [[UInt8]]) -> Bool {
      var validator = UTF8Validator()
      for chunk in chunks { validator.feed(chunk) }
      return validator.isCompleteAndValid
    }
    let text = Array("aé中👍".utf8)
    #expect(valid([text]))
    for split in 0...text.count { #expect(valid([Array(text[..<split]), Array(text[split...])])) }
    #expect(!valid([[0xC0, 0x80]]))  // overlong NUL
    #expect(!valid([[0xE0, 0x80, 0x80]]))  // overlong
    #expect(!valid([[0xED, 0xA0, 0x80]]))  // surrogate U+D800
    #expect(!valid([[0xF4, 0x90, 0x80, 0x80]]))  // above U+10FFFF
    #expect(!valid([[0xF0, 0x9F], [0x91]]))  // unfinished at the end
    #expect(!valid([[0x80]]))  // stray continuation
  }

  @Test("Two claimers racing for the same files: each file is claimed exactly once")
  func racingClaimers() async throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    let count = 100
    for i in 0..<count { try write(layout.inbox + "/f\(i).txt", "file \(i)") }
    let results = await withTaskGroup(of: (String, Result<ClaimedFile, FolioError>).self) { group in
      for i in 0..<count {
        let path = layout.inbox + "/f\(i).txt"
        for _ in 0..<2 {
          group.addTask { (path, Result { () throws(FolioError) -> ClaimedFile in try intake.claim(path) }) }
        }
      }
      var all: [(String, Result<ClaimedFile, FolioError>)] = []
      for await result in group { all.append(result) }
      return all
    }
    let wins = Dictionary(grouping: results.filter { (try? $0.1.get()) != nil }, by: \.0)
    #expect(wins.count == count)
    #expect(wins.values.allSatisfy { $0.count == 1 })
    let losses = results.compactMap { if case .failure(let error) = $0.1 { error.code } else { nil } }
    #expect(losses.count == count)
    #expect(losses.allSatisfy { $0 == .fileVanished })
    // Exactly one file per claim folder, nothing lost.
    #expect(intake.recoverClaims().count == count)
  }

  @Test("A file removed before it is taken is reported as vanished, not a crash, and leaves no work folder behind")
  func removedBeforeTaken() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    let path = layout.inbox + "/sub/gone.txt"
    try write(path, "x")
    _ = unlink(path)
    #expect(throws: FolioError.self) { try intake.claim(path) }
    do {
      _ = try intake.claim(path)
    } catch {
      #expect(error.code == .fileVanished)
      #expect(error.message.contains("gone.txt"))
    }
    #expect((try? FileManager.default.contentsOfDirectory(atPath: layout.work)) == [])
  }

  @Test("A symbolic link pointing outside the inbox is refused and left alone; its target is untouched")
  func symlinkOutside() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    let secret = dir.sub("secret.txt")
    try write(secret, "do not read")
    let link = layout.inbox + "/innocent.txt"
    #expect(symlink(secret, link) == 0)
    #expect(throws: FolioError.self) { try intake.claim(link) }
    do { _ = try intake.claim(link) } catch {
      #expect(error.code == .symlinkRefused)
      #expect(error.message.contains("outside the inbox"))
    }
    #expect(exists(link))
    #expect(contents(secret) == Array("do not read".utf8))
  }

  @Test("Decision: a symbolic link pointing inside the inbox is refused too (its target is processed on its own)")
  func symlinkInside() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    try write(layout.inbox + "/real.txt", "real")
    #expect(symlink(layout.inbox + "/real.txt", layout.inbox + "/alias.txt") == 0)
    do {
      _ = try intake.claim(layout.inbox + "/alias.txt")
      Issue.record("a link inside the inbox was claimed")
    } catch {
      #expect(error.code == .symlinkRefused)
      #expect(error.message.contains("inside the inbox"))
    }
    #expect(try intake.claim(layout.inbox + "/real.txt").kind == .text)
  }

  @Test("A file reached through a symlinked folder is refused")
  func symlinkedFolder() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    try write(dir.sub("outside/doc.txt"), "outside")
    #expect(symlink(dir.sub("outside"), layout.inbox + "/linked") == 0)
    do {
      _ = try intake.claim(layout.inbox + "/linked/doc.txt")
      Issue.record("claimed through a symlinked folder")
    } catch {
      #expect(error.code == .symlinkRefused)
    }
    #expect(exists(dir.sub("outside/doc.txt")))
  }

  @Test("Paths outside the inbox and ignored names are not claimed")
  func outsideAndIgnored() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    try write(dir.sub("elsewhere.txt"), "x")
    do { _ = try intake.claim(dir.sub("elsewhere.txt")) } catch { #expect(error.code == .outsideInbox) }
    do { _ = try intake.claim(layout.inbox + "/../elsewhere.txt") } catch { #expect(error.code == .outsideInbox) }
    try write(layout.inbox + "/download.crdownload", "x")
    do { _ = try intake.claim(layout.inbox + "/download.crdownload") } catch { #expect(error.code == .invalidArgument) }
    #expect(exists(dir.sub("elsewhere.txt")) && exists(layout.inbox + "/download.crdownload"))
  }

  @Test(
    "Names with spaces, Unicode and newlines are claimed and put back intact",
    arguments: ["with space.txt", "Grüße 世界 ✅.md", "line\nbreak.txt", " leading and trailing .txt", "quote\"and'apostrophe.txt"])
  func awkwardNames(name: String) throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    let path = layout.inbox + "/set with space/" + name
    try write(path, "content of \(name)")
    let claimed = try intake.claim(path)
    #expect(claimed.fileName == name)
    #expect(claimed.documentSet == "set with space")
    #expect(contents(claimed.workPath) == Array("content of \(name)".utf8))
    let receipt = try intake.dispose(claimed, outcome: .succeeded, policy: .init(onSuccess: .leave))
    #expect(receipt.finalPath == path)
    #expect(contents(path) == Array("content of \(name)".utf8))
  }

  @Test("Files left in the work area by a crash are recovered with their original place")
  func recovery() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    let intake = Intake(layout: layout)
    try write(layout.inbox + "/invoices/x.txt", "x")
    let claimed = try intake.claim(layout.inbox + "/invoices/x.txt")
    let recovered = Intake(layout: layout).recoverClaims()
    #expect(recovered == [claimed])
  }
}

extension Result where Failure == FolioError {
  var failureCode: FolioError.Code? { if case .failure(let error) = self { error.code } else { nil } }
  var failureMessage: String? { if case .failure(let error) = self { error.message } else { nil } }
}
