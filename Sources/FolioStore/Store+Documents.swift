import FolioBase
import Foundation
import GRDB

extension Store {
  /// Records a new document, applying the duplicate policy to its SHA-256 (lessons row 4).
  ///
  /// The check and the insert happen in one write transaction, and a partial UNIQUE index on `sha256` (originals
  /// only) backs it up, so two processes recording the same file concurrently cannot both create an original.
  ///
  /// - `reject`: nothing is written; throws ``FolioError/Code/duplicateDocument`` whose message says
  ///   "duplicate of document N".
  /// - `link`: recorded with `duplicate_of = N` and status `linked`; ``DocumentInsertion/needsProcessing`` is false.
  /// - `allow`: recorded with `duplicate_of = N` and processed like any document.
  public func insertDocument(_ new: NewDocument, policy: DuplicatePolicy) async throws -> DocumentInsertion {
    let sha = new.sha256.lowercased()
    guard sha.count == 64, sha.allSatisfy({ $0.isHexDigit }) else {
      throw FolioError(.invalidArgument, "`\(new.sha256)` is not a SHA-256 hex digest (64 hex digits)")
    }
    guard !new.setName.isEmpty else { throw FolioError(.invalidArgument, "a document set name cannot be empty") }
    let now = self.now()
    return try await write("record document \(new.relativePath)") { db in
      let original = try Document.filter(Document.Columns.sha256 == sha && Document.Columns.duplicateOf == nil)
        .fetchOne(db)
      if let original, policy == .reject {
        throw FolioError(
          .duplicateDocument,
          "\(new.relativePath) is a duplicate of document \(original.id ?? 0) (\(original.relativePath), "
            + "recorded \(original.createdAt)); it was not recorded. Set the duplicate policy to `link` or `allow` "
            + "to keep duplicates")
      }
      var document = Document(
        id: nil, sha256: sha, originalPath: new.originalPath, relativePath: new.relativePath,
        storedPath: new.storedPath, sizeBytes: new.sizeBytes, kind: new.kind, setName: new.setName,
        status: original != nil && policy == .link ? .linked : .pending, duplicateOf: original?.id,
        createdAt: now, updatedAt: now)
      try document.insert(db)
      return DocumentInsertion(document: document, original: original)
    }
  }

  /// The document with this id, if any.
  public func document(id: Int64) async throws -> Document? {
    try await read("read document \(id)") { db in try Document.fetchOne(db, id: id) }
  }

  /// The original (non-duplicate) document with this SHA-256, if any.
  public func document(sha256: String) async throws -> Document? {
    let sha = sha256.lowercased()
    return try await read("find document by hash") { db in
      try Document.filter(Document.Columns.sha256 == sha && Document.Columns.duplicateOf == nil).fetchOne(db)
    }
  }

  /// Documents, newest first, optionally of one set.
  public func documents(set: String? = nil, limit: Int = 1000, offset: Int = 0) async throws -> [Document] {
    try await read("list documents") { db in
      var request = Document.all()
      if let set { request = request.filter(Document.Columns.setName == set) }
      return try request.order(Document.Columns.id.desc).limit(limit, offset: offset).fetchAll(db)
    }
  }

  /// Updates where Folio keeps the managed copy (after the file was moved, once the move is durable).
  public func setStoredPath(documentID: Int64, storedPath: String?) async throws {
    let now = self.now()
    try await write("update document \(documentID)") { db in
      try db.execute(
        sql: "UPDATE document SET stored_path = ?, updated_at = ? WHERE id = ?",
        arguments: [storedPath, now, documentID])
      guard db.changesCount == 1 else {
        throw FolioError(.documentNotFound, "document \(documentID) does not exist")
      }
    }
  }

  /// Recomputes the status of documents from their jobs (running → processing, queued → pending, a failed latest
  /// generation → failed, otherwise processed). Linked duplicates keep `linked`.
  static func refreshDocumentStatus(_ db: Database, documentIDs: some Sequence<Int64>, now: Date) throws {
    for id in Set(documentIDs) {
      try db.execute(
        sql: """
          UPDATE document SET status = CASE
              WHEN EXISTS (SELECT 1 FROM job WHERE document_id = document.id AND status = 'running') THEN 'processing'
              WHEN EXISTS (SELECT 1 FROM job WHERE document_id = document.id AND status = 'queued') THEN 'pending'
              WHEN EXISTS (SELECT 1 FROM job f WHERE f.document_id = document.id AND f.status = 'failed'
                  AND NOT EXISTS (SELECT 1 FROM job n WHERE n.document_id = f.document_id
                    AND n.pipeline_name = f.pipeline_name AND n.step_id = f.step_id AND n.language = f.language
                    AND n.generation > f.generation)) THEN 'failed'
              WHEN EXISTS (SELECT 1 FROM job WHERE document_id = document.id) THEN 'processed'
              ELSE 'pending' END,
            updated_at = ?
          WHERE id = ? AND status <> 'linked'
          """, arguments: [now, id])
    }
  }
}
