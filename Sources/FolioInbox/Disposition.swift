#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import Foundation
import FolioBase

/// Where an original goes once the daemon has committed the outcome to the database (lessons row 5).
/// No disposition deletes a user's file, and none overwrites one: name collisions get ` (1)`, ` (2)`, ….
public enum Disposition: String, Sendable, Hashable, Codable, CaseIterable {
  /// Move into Folio's managed store: `store/<first two hex digits>/<sha256>/<name>`.
  case keep
  /// Move to `processed/` (success) or `failed/` (failure, with a `<name>.error.json` sidecar), keeping the
  /// folders below the inbox (and so the document set).
  case move
  /// Put it back where it was in the inbox. It is not reported again while it stays unchanged.
  case leave
}

/// The disposition for each outcome.
public struct DispositionPolicy: Sendable, Hashable, Codable {
  /// After success. Default `move` (to `processed/`).
  public var onSuccess: Disposition
  /// After failure. Default `move` (to `failed/` with an error sidecar).
  public var onFailure: Disposition

  /// A policy; by default originals move to `processed/` or `failed/`.
  public init(onSuccess: Disposition = .move, onFailure: Disposition = .move) {
    self.onSuccess = onSuccess
    self.onFailure = onFailure
  }

  enum CodingKeys: String, CodingKey {
    case onSuccess = "on_success"
    case onFailure = "on_failure"
  }
}

/// How processing ended, as the daemon recorded it.
public enum ProcessingOutcome: Sendable, Equatable {
  /// Every step succeeded.
  case succeeded
  /// The job failed for good with this error.
  case failed(FolioError)
}

/// Where a disposed original ended up.
public struct DispositionReceipt: Sendable, Equatable {
  /// The disposition applied.
  public var disposition: Disposition
  /// The file's new path (record it in the database).
  public var finalPath: String
  /// The error sidecar written next to a failed file moved to `failed/`.
  public var sidecarPath: String?
  /// Set when the file was moved but its sidecar could not be written.
  public var sidecarError: FolioError?
}

/// The `<name>.error.json` sidecar written next to a file moved to `failed/`. Keys are snake_case.
public struct ErrorSidecar: Sendable, Equatable, Codable {
  /// The stable error code.
  public var code: String
  /// The human message.
  public var message: String
  /// The underlying cause, if any.
  public var cause: String?
  /// Where the file was in the inbox.
  public var originalPath: String
  /// The document set.
  public var documentSet: String
  /// SHA-256 of the original bytes.
  public var sha256: String
  /// Size in bytes.
  public var size: Int64
  /// When it failed (ISO 8601).
  public var failedAt: String

  enum CodingKeys: String, CodingKey {
    case code, message, cause, size
    case originalPath = "original_path"
    case documentSet = "document_set"
    case sha256
    case failedAt = "failed_at"
  }
}

extension Intake {
  /// Puts a claimed original where `policy` says for `outcome`. Call it after the database commit that records
  /// the outcome.
  ///
  /// - Returns: where the file is now, and the sidecar for a failure moved to `failed/`.
  /// - Throws: `FolioError` (`.permissionDenied` for EACCES/EPERM, `.moveFailed`, `.fileVanished`); the file then
  ///   stays where it was, in the work area, and nothing was deleted.
  public func dispose(
    _ claimed: ClaimedFile, outcome: ProcessingOutcome, policy: DispositionPolicy = DispositionPolicy(),
    now: Date = Date()
  ) throws(FolioError) -> DispositionReceipt {
    let source = claimed.workPath
    guard let snapshot = try FileSnapshot.read(source), snapshot.kind == .regular else {
      throw FolioError(.fileVanished, "the claimed file \(POSIXFailure.quoted(source)) is no longer in the work area.")
    }
    let disposition: Disposition
    let failure: FolioError?
    switch outcome {
    case .succeeded: (disposition, failure) = (policy.onSuccess, nil)
    case .failed(let error): (disposition, failure) = (policy.onFailure, error)
    }

    let folder: String
    let relativeFolder = PathName.parent(of: claimed.relativePath)
    let subfolder = relativeFolder == "/" || relativeFolder.isEmpty ? nil : relativeFolder
    switch disposition {
    case .keep:
      let prefix = String(claimed.sha256.prefix(2))
      folder = PathName.join(PathName.join(PathName.standardized(layout.store), prefix), claimed.sha256)
    case .move:
      let root = PathName.standardized(failure == nil ? layout.processed : layout.failed)
      folder = subfolder.map { PathName.join(root, $0) } ?? root
    case .leave:
      folder = PathName.parent(of: claimed.originalPath)
    }
    do {
      try Directory.create(folder)
    } catch {
      throw FolioError(
        error.code, "cannot \(disposition.rawValue) \(POSIXFailure.quoted(claimed.fileName)): \(error.message) The file stays in \(POSIXFailure.quoted(source)).")
    }

    let wantsSidecar = disposition == .move && failure != nil
    let finalPath = try moveWithoutOverwriting(
      source, into: folder, name: claimed.fileName, alsoFree: wantsSidecar ? [".error.json"] : [],
      settle: disposition == .leave ? snapshot : nil)
    removeEmptyFolders(
      from: PathName.parent(of: source), upTo: PathName.standardized(layout.work))

    var receipt = DispositionReceipt(disposition: disposition, finalPath: finalPath)
    if wantsSidecar, let failure {
      let sidecar = ErrorSidecar(
        code: failure.code.rawValue, message: failure.message, cause: failure.cause,
        originalPath: claimed.originalPath, documentSet: claimed.documentSet, sha256: claimed.sha256,
        size: claimed.size, failedAt: ISO8601DateFormatter().string(from: now))
      let path = finalPath + ".error.json"
      do {
        try Self.writeNew(sidecar, to: path)
        receipt.sidecarPath = path
      } catch {
        receipt.sidecarError = error
      }
    }
    return receipt
  }

  /// Moves `source` into `folder` as `name`, or `stem (n).ext` when taken; never replaces an existing file.
  /// Uses `link` + `unlink` (atomic no-replace on one file system), and a copy that is synced before the source
  /// is unlinked across file systems.
  func moveWithoutOverwriting(
    _ source: String, into folder: String, name: String, alsoFree suffixes: [String], settle snapshot: FileSnapshot?
  ) throws(FolioError) -> String {
    let (stem, ext) = PathName.splitExtension(name)
    let q = POSIXFailure.quoted
    // 10,000 numbered names is far past any real collision run; stop there rather than loop forever.
    for attempt in 0..<10_000 {
      let candidateName = attempt == 0 ? name : "\(stem) (\(attempt))\(ext)"
      let destination = PathName.join(folder, candidateName)
      if suffixes.contains(where: { (try? FileSnapshot.read(destination + $0)) ?? nil != nil }) { continue }
      // Settle first: the watcher may see the file appear before this function returns.
      if let snapshot { ledger.settle(destination, snapshot: snapshot) }
      if link(source, destination) == 0 {
        if unlink(source) != 0 {
          let code = errno
          _ = unlink(destination)  // undo: the original is still at `source`
          if snapshot != nil { ledger.unsettle(destination) }
          throw POSIXFailure.error(code, operation: "remove the claimed copy of", path: source)
        }
        return destination
      }
      var code = errno
      if code == EPERM || code == ENOTSUP || code == EOPNOTSUPP || code == EMLINK {
        // No hard link here (a file system without them, or fs.protected_hardlinks for a file owned by someone
        // else): rename after checking the name is free. Only a file created in the same instant could be hit.
        if (try? FileSnapshot.read(destination)) ?? nil != nil {
          if snapshot != nil { ledger.unsettle(destination) }
          continue
        }
        if rename(source, destination) == 0 { return destination }
        code = errno
      }
      if snapshot != nil { ledger.unsettle(destination) }
      switch code {
      case EEXIST:
        continue
      case EACCES, EPERM, EROFS:
        throw Self.permissionError(code, name: name, folder: folder, source: source)
      case EXDEV:
        // Another file system: copy, sync, then remove the source.
        do {
          return try copyAcross(source, to: destination, settle: snapshot, retryInto: folder, name: name)
        } catch {
          throw FolioError(error.code, error.message + " The file stays in \(q(source)).")
        }
      case ENOENT:
        throw FolioError(.fileVanished, "\(q(source)) disappeared before it could be moved.")
      default:
        throw FolioError(
          .moveFailed, "cannot move \(q(source)) to \(q(destination)): \(POSIXFailure.message(code)). The file stays where it is.")
      }
    }
    throw FolioError(.moveFailed, "too many files named like \(q(name)) in \(q(folder)); the file stays in \(q(source)).")
  }

  static func permissionError(_ code: Int32, name: String, folder: String, source: String) -> FolioError {
    let q = POSIXFailure.quoted
    return FolioError(
      .permissionDenied,
      "cannot move \(q(name)) into \(q(folder)): \(POSIXFailure.message(code)). \(POSIXFailure.permissionHint(folder)) "
        + "The file stays in \(q(source)).")
  }

  private func copyAcross(
    _ source: String, to firstChoice: String, settle snapshot: FileSnapshot?, retryInto folder: String, name: String
  ) throws(FolioError) -> String {
    let q = POSIXFailure.quoted
    let partial = PathName.join(folder, ".folio-partial-\(UUID().uuidString.lowercased())")
    try Self.copyFile(source, to: partial)
    let (stem, ext) = PathName.splitExtension(name)
    var destination = firstChoice
    var attempt = 0
    while true {
      if let snapshot { ledger.settle(destination, snapshot: snapshot) }
      // rename over an existing file would replace it; check, then rename (best effort on such file systems).
      if (try? FileSnapshot.read(destination)) ?? nil == nil {
        if rename(partial, destination) == 0 { break }
        let code = errno
        _ = unlink(partial)
        if snapshot != nil { ledger.unsettle(destination) }
        throw POSIXFailure.error(code, operation: "move into place", path: destination)
      }
      if snapshot != nil { ledger.unsettle(destination) }
      attempt += 1
      guard attempt < 10_000 else {
        _ = unlink(partial)
        throw FolioError(.moveFailed, "too many files named like \(q(name)) in \(q(folder)).")
      }
      destination = PathName.join(folder, "\(stem) (\(attempt))\(ext)")
    }
    if let snapshot, let copied = (try? FileSnapshot.read(destination)) ?? nil {
      // The copy has a new inode and mtime: settle what is actually there.
      ledger.settle(destination, snapshot: copied)
      _ = snapshot
    }
    if unlink(source) != 0 {
      // The copy is complete and synced; the source stays too. Nothing is lost.
      throw POSIXFailure.error(errno, operation: "remove the claimed copy of", path: source)
    }
    return destination
  }

  static func copyFile(_ source: String, to destination: String) throws(FolioError) {
    let input = open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
    guard input >= 0 else { throw POSIXFailure.error(errno, operation: "open", path: source) }
    defer { close(input) }
    let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard output >= 0 else { throw POSIXFailure.error(errno, operation: "create", path: destination) }
    var failure: FolioError?
    let chunk = 64 * 1024
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
    defer { buffer.deallocate() }
    copying: while true {
      let count = read(input, buffer, chunk)
      if count < 0 {
        if errno == EINTR { continue }
        failure = POSIXFailure.error(errno, operation: "read", path: source)
        break
      }
      if count == 0 { break }
      var written = 0
      while written < count {
        let n = write(output, buffer + written, count - written)
        if n < 0 {
          if errno == EINTR { continue }
          failure = POSIXFailure.error(errno, operation: "write", path: destination)
          break copying
        }
        written += n
      }
    }
    if failure == nil, fsync(output) != 0 { failure = POSIXFailure.error(errno, operation: "fsync", path: destination) }
    close(output)
    if let failure {
      _ = unlink(destination)  // our own partial copy, never the user's file
      throw failure
    }
  }

  static func writeNew(_ sidecar: ErrorSidecar, to path: String) throws(FolioError) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data: Data
    do {
      data = try encoder.encode(sidecar)
    } catch {
      throw FolioError(.moveFailed, "cannot encode the error sidecar", cause: error)
    }
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw POSIXFailure.error(errno, operation: "create", path: path) }
    defer { close(fd) }
    let bytes = [UInt8](data) + [0x0A]
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    if written != bytes.count { throw POSIXFailure.error(errno, operation: "write", path: path) }
  }
}
