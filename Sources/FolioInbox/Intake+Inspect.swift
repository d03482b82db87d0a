import FolioBase

/// What ``Intake/inspectFile(at:)`` learned about a file outside the inbox (for `folio add`).
public struct FileInspection: Sendable, Equatable {
  /// Lowercase hex SHA-256 of exactly the file's bytes.
  public var sha256: String
  /// The number of bytes hashed.
  public var size: Int64
  /// The document kind, or why the file cannot be processed (`.emptyFile`, `.notUTF8`, `.unsupportedKind`).
  public var classification: Result<DocumentKind, FolioError>
}

extension Intake {
  /// Hashes and classifies the file at `path` exactly as a claim does (opened with `O_NOFOLLOW`, streamed through
  /// SHA-256 and the UTF-8 validator), without moving it. `folio add` uses it for files given on the command line.
  ///
  /// - Throws: `FolioError` (`.symlinkRefused`-like open failures, `.notRegularFile`, `.fileUnreadable`) when the
  ///   file cannot be read at all.
  public static func inspectFile(at path: String) throws(FolioError) -> FileInspection {
    let (sha256, size, classification) = try inspect(path, name: PathName.lastComponent(path))
    return FileInspection(sha256: sha256, size: size, classification: classification)
  }
}

extension ClaimedFile {
  /// A claimed file as the daemon recorded it (to dispose of a document's original after a restart, when only the
  /// database remembers the claim).
  public init(
    claimID: String, originalPath: String, relativePath: String, documentSet: String, workPath: String,
    sha256: String, size: Int64, kind: DocumentKind
  ) {
    self.init(
      claimID: claimID, originalPath: originalPath, relativePath: relativePath, documentSet: documentSet,
      workPath: workPath, sha256: sha256, size: size, classification: .success(kind))
  }
}
