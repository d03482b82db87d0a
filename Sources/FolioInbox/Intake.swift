#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import Crypto
import Foundation
import FolioBase

/// The kinds of document Folio processes.
public enum DocumentKind: String, Sendable, Hashable, Codable, CaseIterable {
  /// A PNG image (magic bytes `89 50 4E 47 0D 0A 1A 0A`).
  case png
  /// A JPEG image (magic bytes `FF D8 FF`).
  case jpeg
  /// A `.txt` or `.md` document that is valid UTF-8.
  case text
}

/// A file Folio has taken out of the inbox: it now sits in the work area, hashed and classified.
public struct ClaimedFile: Sendable, Equatable {
  /// A fresh identifier for this claim; also the name of its folder in the work area.
  public var claimID: String
  /// Where the file was in the inbox (absolute).
  public var originalPath: String
  /// The path relative to the inbox, e.g. `contracts/a.txt`.
  public var relativePath: String
  /// The document set: the first-level folder under the inbox, or `default`.
  public var documentSet: String
  /// Where the file is now: `<work>/<claimID>/<relativePath>`.
  public var workPath: String
  /// Lowercase hex SHA-256 of exactly the file's bytes as claimed (read after the rename into the work area,
  /// before any decoding or conversion).
  public var sha256: String
  /// The number of bytes hashed.
  public var size: Int64
  /// The document kind, or why the file cannot be processed (`.emptyFile`, `.notUTF8`, `.unsupportedKind`).
  /// A failure here still leaves a claimed file that the daemon records and disposes of as failed.
  public var classification: Result<DocumentKind, FolioError>

  /// The document kind, or `nil` when classification failed.
  public var kind: DocumentKind? { try? classification.get() }

  /// The file's name (last path component).
  public var fileName: String { PathName.lastComponent(relativePath) }
}

/// Takes stable files out of the inbox: claims them atomically, hashes and classifies them, and puts them where
/// the configured disposition says once the daemon has recorded the outcome (lessons rows 3, 4, 5, 8).
///
/// Claiming is one `rename` into `<work>/<uuid>/<relative path>` on the inbox's file system, so two claimers
/// (or a stray second event) cannot both take a file: exactly one rename succeeds and the other gets
/// `.fileVanished`. Symbolic links are refused, whether they point inside or outside the inbox: Folio never
/// follows links in the inbox (a link to a file in the inbox would process that file twice, a link elsewhere
/// would read outside it). The checks run as late as possible: folders are opened one by one with `O_NOFOLLOW`
/// right before the rename, and the claimed file is opened with `O_NOFOLLOW` before it is read.
///
/// How the daemon uses the inbox:
/// ```swift
/// let layout = InboxLayout.conventional(root: root)
/// try layout.validate()                        // refuse overlapping folders
/// for finding in layout.checkPermissions() { log(finding) }   // or refuse to start
/// try layout.createMissingFolders()
/// let ledger = InboxLedger()
/// let watcher = InboxWatcher(inbox: layout.inbox, configuration: settings, ledger: ledger)
/// let intake = Intake(layout: layout, ledger: ledger, ignore: settings.ignore)
/// for claimed in intake.recoverClaims() { /* re-queue or finish what a crash left in the work area */ }
/// group.addTask { await watcher.run() }
/// for await event in watcher.events {
///   guard case .ready(let candidate) = event else { continue }   // log .vanished/.rejected/.notice
///   let claimed = try intake.claim(candidate)   // throws only when nothing was claimed
///   // record the document (sha256, size, set) and its job, or the classification failure, then commit…
///   let receipt = try intake.dispose(claimed, outcome: .succeeded, policy: policy)  // after the commit
/// }
/// ```
public struct Intake: Sendable {
  /// The folders.
  public var layout: InboxLayout
  /// The ledger shared with the `InboxWatcher`.
  public var ledger: InboxLedger
  /// Names never taken (must match the watcher's).
  public var ignore: IgnoreRules

  /// An intake for `layout`; share `ledger` with the watcher.
  public init(layout: InboxLayout, ledger: InboxLedger = InboxLedger(), ignore: IgnoreRules = IgnoreRules()) {
    self.layout = layout
    self.ledger = ledger
    self.ignore = ignore
  }

  private var inboxPath: String { PathName.standardized(layout.inbox) }
  private var workPath: String { PathName.standardized(layout.work) }

  /// Claims the file a watcher reported.
  public func claim(_ candidate: InboxCandidate) throws(FolioError) -> ClaimedFile {
    try claim(candidate.path)
  }

  /// Claims the file at `path` (absolute, or relative to the current directory) in the inbox.
  ///
  /// - Throws: `FolioError` when nothing was claimed: `.outsideInbox`, `.invalidArgument` (an ignored name),
  ///   `.symlinkRefused`, `.notRegularFile`, `.fileVanished` (removed, or claimed by someone else, first),
  ///   `.permissionDenied`, `.moveFailed`, `.fileUnreadable`. The file is then where it was.
  public func claim(_ path: String) throws(FolioError) -> ClaimedFile {
    let inbox = inboxPath
    let standard = PathName.standardized(path)
    let q = POSIXFailure.quoted
    guard let relative = PathName.relative(standard, to: inbox) else {
      throw FolioError(.outsideInbox, "\(q(path)) is not inside the inbox \(q(layout.inbox)); Folio only claims files from it.")
    }
    if ignore.isIgnored(relativePath: relative) {
      throw FolioError(.invalidArgument, "\(q(path)) has an ignored name (temporary, hidden or Folio's own); it is not claimed.")
    }
    let parts = PathName.components(relative)
    guard let name = parts.last else {
      throw FolioError(.invalidArgument, "\(q(path)) names the inbox itself, not a file in it.")
    }

    // Open each folder below the inbox without following links, so nothing can redirect the rename outside.
    var folder = open(inbox, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard folder >= 0 else { throw POSIXFailure.error(errno, operation: "open inbox", path: inbox) }
    defer { close(folder) }
    var walked = inbox
    for part in parts.dropLast() {
      walked = PathName.join(walked, part)
      let next = openat(folder, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
      guard next >= 0 else {
        let code = errno
        if code == ELOOP || code == ENOTDIR {
          throw FolioError(
            .symlinkRefused, "\(q(walked)) is a symbolic link or not a folder; Folio does not follow links in the inbox.")
        }
        if code == ENOENT { ledger.release(standard) }
        throw POSIXFailure.error(code, operation: "open folder", path: walked)
      }
      close(folder)
      folder = next
    }

    var st = stat()
    if fstatat(folder, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
      let code = errno
      if code == ENOENT {
        ledger.release(standard)
        throw FolioError(.fileVanished, "\(q(standard)) was removed (or claimed by another worker) before Folio could take it; skipped.")
      }
      throw POSIXFailure.error(code, operation: "lstat", path: standard)
    }
    let found = FileSnapshot(st)
    switch found.kind {
    case .regular: break
    case .symlink: throw symlinkError(standard)
    case .directory, .other:
      throw FolioError(.notRegularFile, "\(q(standard)) is not a regular file; Folio only takes regular files.")
    }

    let claimID = UUID().uuidString.lowercased()
    let claimRoot = PathName.join(workPath, claimID)
    let destination = PathName.join(claimRoot, relative)
    do {
      try Directory.create(PathName.parent(of: destination), mode: 0o700)
    } catch {
      throw FolioError(error.code, "cannot prepare the work area for \(q(standard)): \(error.message)")
    }
    if renameat(folder, name, AT_FDCWD, destination) != 0 {
      let code = errno
      removeEmptyFolders(from: PathName.parent(of: destination), upTo: workPath)
      switch code {
      case ENOENT:
        ledger.release(standard)
        throw FolioError(.fileVanished, "\(q(standard)) was removed (or claimed by another worker) before Folio could take it; skipped.")
      case EXDEV:
        throw FolioError(
          .moveFailed,
          "cannot claim \(q(standard)): the work area \(q(layout.work)) is on another file system. "
            + "Fix: put the work area inside the inbox's file system (the default `<inbox>/.folio-work`).")
      default:
        throw POSIXFailure.error(code, operation: "claim (rename)", path: standard)
      }
    }
    // The file has left the inbox: it can no longer be reported twice.
    ledger.release(standard)

    do {
      let (sha256, size, classification) = try Self.inspect(destination, name: name)
      return ClaimedFile(
        claimID: claimID, originalPath: standard, relativePath: relative,
        documentSet: DocumentSet.name(forRelativePath: relative), workPath: destination, sha256: sha256, size: size,
        classification: classification)
    } catch {
      // Something was swapped in between the check and the rename, or the bytes could not be read: put it back.
      if renameat(AT_FDCWD, destination, folder, name) == 0 {
        removeEmptyFolders(from: PathName.parent(of: destination), upTo: workPath)
      }
      throw error
    }
  }

  /// Files left in the work area (by a crash or a kill between claim and disposition), re-hashed and
  /// classified, so the daemon can finish or re-queue them. Their `originalPath` is derived from the work path.
  public func recoverClaims() -> [ClaimedFile] {
    let work = workPath
    guard let claimIDs = try? Directory.list(work) else { return [] }
    var recovered: [ClaimedFile] = []
    for claimID in claimIDs {
      let root = PathName.join(work, claimID)
      var pending = [root]
      while let current = pending.popLast() {
        guard let names = try? Directory.list(current) else { continue }
        for name in names {
          let path = PathName.join(current, name)
          guard let snapshot = (try? FileSnapshot.read(path)) ?? nil else { continue }
          if snapshot.kind == .directory {
            pending.append(path)
            continue
          }
          guard snapshot.kind == .regular, !name.hasPrefix(".folio-partial-"),
            let relative = PathName.relative(path, to: root),
            let (sha256, size, classification) = try? Self.inspect(path, name: name)
          else { continue }
          recovered.append(
            ClaimedFile(
              claimID: claimID, originalPath: PathName.join(inboxPath, relative), relativePath: relative,
              documentSet: DocumentSet.name(forRelativePath: relative), workPath: path, sha256: sha256, size: size,
              classification: classification))
        }
      }
    }
    return recovered.sorted { $0.workPath < $1.workPath }
  }

  func removeEmptyFolders(from folder: String, upTo stop: String) {
    var current = folder
    while PathName.isSameOrInside(current, stop), current != stop {
      if rmdir(current) != 0 { return }  // not empty (or gone): never remove anything else
      current = PathName.parent(of: current)
    }
  }

  private func symlinkError(_ path: String) -> FolioError {
    let q = POSIXFailure.quoted
    var whereTo = "a link"
    if let resolved = realpath(path, nil) {
      let target = String(cString: resolved)
      free(resolved)
      let root = PathName.canonical(layout.inbox)
      whereTo =
        PathName.isSameOrInside(target, root)
        ? "a link to \(q(target)) inside the inbox (that file is processed on its own)"
        : "a link to \(q(target)) outside the inbox"
    }
    return FolioError(
      .symlinkRefused,
      "\(q(path)) is \(whereTo); Folio does not follow symbolic links in the inbox. Fix: copy the file itself in.")
  }

  // MARK: - Hashing and classification

  /// The magic bytes of a PNG file.
  static let pngMagic: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
  /// The magic bytes of a JPEG file (SOI marker and the first byte of the next marker).
  static let jpegMagic: [UInt8] = [0xFF, 0xD8, 0xFF]
  /// Extensions (lowercased) taken as text documents.
  static let textExtensions: Set<String> = [".txt", ".md"]

  /// Streams the file at `path` (opened with `O_NOFOLLOW`) through SHA-256 and the UTF-8 validator in 64 KiB
  /// reads, and classifies it.
  static func inspect(
    _ path: String, name: String
  ) throws(FolioError) -> (String, Int64, Result<DocumentKind, FolioError>) {
    let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { throw POSIXFailure.error(errno, operation: "open", path: path) }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw POSIXFailure.error(errno, operation: "fstat", path: path) }
    guard (st.st_mode & S_IFMT) == S_IFREG else {
      throw FolioError(.notRegularFile, "\(POSIXFailure.quoted(path)) is not a regular file; Folio only takes regular files.")
    }

    var hasher = SHA256()
    var validator = UTF8Validator()
    var head: [UInt8] = []
    var size: Int64 = 0
    let chunk = 64 * 1024
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
    defer { buffer.deallocate() }
    while true {
      let count = read(fd, buffer.baseAddress, chunk)
      if count < 0 {
        let code = errno
        if code == EINTR || code == EAGAIN { continue }
        let failure = POSIXFailure.error(code, operation: "read", path: path)
        throw FolioError(.fileUnreadable, failure.message)
      }
      if count == 0 { break }
      let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
      hasher.update(bufferPointer: bytes)
      validator.feed(bytes)
      if head.count < 8 { head.append(contentsOf: bytes.prefix(8 - head.count)) }
      size += Int64(count)
    }
    let digest = hasher.finalize()
    let hex = Self.hex(digest)
    return (hex, size, classify(name: name, head: head, size: size, validator: validator))
  }

  static func classify(
    name: String, head: [UInt8], size: Int64, validator: UTF8Validator
  ) -> Result<DocumentKind, FolioError> {
    let q = POSIXFailure.quoted(name)
    if size == 0 {
      return .failure(
        FolioError(
          .emptyFile,
          "\(q) is empty (0 bytes): there is nothing to process. If it was still being written, drop it in again once complete."))
    }
    if head.starts(with: pngMagic) { return .success(.png) }
    if head.starts(with: jpegMagic) { return .success(.jpeg) }
    let ext = PathName.splitExtension(name).ext.lowercased()
    if textExtensions.contains(ext) {
      if validator.isCompleteAndValid { return .success(.text) }
      return .failure(
        FolioError(
          .notUTF8,
          "\(q) is not valid UTF-8 (first bad byte at offset \(validator.problemOffset ?? Int(size))). "
            + "Folio reads text documents as UTF-8 only: convert it, e.g. `iconv -f WINDOWS-1252 -t UTF-8 in.txt > out.txt` "
            + "(use the file's real encoding), and drop the converted file in again."))
    }
    return .failure(
      FolioError(
        .unsupportedKind,
        "\(q) is neither a PNG or JPEG image (judged by its first bytes) nor a .txt/.md text document; "
          + "Folio processes PNG, JPEG, .txt and .md files."))
  }

  static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
      out.append(digits[Int(byte >> 4)])
      out.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
  }
}

/// An incremental UTF-8 validator (Unicode 15, table 3-7: no overlongs, no surrogates, nothing above U+10FFFF),
/// so a file can be checked while it streams through the hash.
struct UTF8Validator: Sendable {
  private var remaining = 0
  private var lower: UInt8 = 0x80
  private var upper: UInt8 = 0xBF
  private var offset = 0
  private var sequenceStart = 0
  /// The byte offset where the first invalid sequence starts, if any.
  private(set) var firstInvalidOffset: Int?

  /// Whether every byte fed so far was valid and no sequence is left unfinished.
  var isCompleteAndValid: Bool { firstInvalidOffset == nil && remaining == 0 }

  /// Where the problem is: the first invalid sequence, or the unfinished one at the end.
  var problemOffset: Int? { firstInvalidOffset ?? (remaining > 0 ? sequenceStart : nil) }

  mutating func feed(_ bytes: UnsafeRawBufferPointer) {
    guard firstInvalidOffset == nil else { return }
    for byte in bytes {
      defer { offset += 1 }
      if remaining == 0 {
        switch byte {
        case 0x00...0x7F: continue
        case 0xC2...0xDF:
          sequenceStart = offset
          remaining = 1
        case 0xE0: (sequenceStart, remaining, lower) = (offset, 2, 0xA0)
        case 0xE1...0xEC, 0xEE...0xEF: (sequenceStart, remaining) = (offset, 2)
        case 0xED: (sequenceStart, remaining, upper) = (offset, 2, 0x9F)
        case 0xF0: (sequenceStart, remaining, lower) = (offset, 3, 0x90)
        case 0xF1...0xF3: (sequenceStart, remaining) = (offset, 3)
        case 0xF4: (sequenceStart, remaining, upper) = (offset, 3, 0x8F)
        default:
          firstInvalidOffset = offset
          return
        }
      } else {
        guard byte >= lower, byte <= upper else {
          firstInvalidOffset = sequenceStart
          return
        }
        lower = 0x80
        upper = 0xBF
        remaining -= 1
      }
    }
  }

  mutating func feed(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { feed($0) }
  }
}
