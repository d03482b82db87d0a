import FolioBase
import Foundation
import GRDB

extension Store {
  /// Stores the segments of a document's text (or of a step's output), idempotently: segments already stored for
  /// (document, source) are returned unchanged, so a resumed batch run segments once.
  ///
  /// - Parameter source: `document`, or the id of the step whose output was segmented.
  public func saveSegments(documentID: Int64, source: String, texts: [String]) async throws -> [Segment] {
    let now = self.now()
    let hashes = texts.map(Segment.hash(of:))
    return try await write("store segments of document \(documentID)") { db in
      for (ordinal, text) in texts.enumerated() {
        try db.execute(
          sql: """
            INSERT INTO segment (document_id, source, ordinal, text, source_hash, created_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (document_id, source, ordinal) DO NOTHING
            """, arguments: [documentID, source, ordinal, text, hashes[ordinal], now])
      }
      return try Segment.fetchAll(
        db, sql: "SELECT * FROM segment WHERE document_id = ? AND source = ? ORDER BY ordinal",
        arguments: [documentID, source])
    }
  }

  /// The stored segments of (document, source), in order.
  public func segments(documentID: Int64, source: String) async throws -> [Segment] {
    try await read("read segments") { db in
      try Segment.fetchAll(
        db, sql: "SELECT * FROM segment WHERE document_id = ? AND source = ? ORDER BY ordinal",
        arguments: [documentID, source])
    }
  }

  /// The segments of (document, source) that have no translation into `language` by `modelID` yet: what a
  /// resumable batch run still has to translate.
  public func untranslatedSegments(
    documentID: Int64, source: String, language: String, modelID: String
  ) async throws -> [Segment] {
    try await read("find untranslated segments") { db in
      try Segment.fetchAll(
        db,
        sql: """
          SELECT s.* FROM segment s
          WHERE s.document_id = ? AND s.source = ?
            AND NOT EXISTS (SELECT 1 FROM translation_memory t WHERE t.source_hash = s.source_hash
              AND t.target_language = ? AND t.model_id = ?)
          ORDER BY s.ordinal
          """, arguments: [documentID, source, language, modelID])
    }
  }

  /// Translation-memory entries for these source hashes, keyed by hash.
  public func translations(
    sourceHashes: [String], language: String, modelID: String
  ) async throws -> [String: TranslationMemoryEntry] {
    guard !sourceHashes.isEmpty else { return [:] }
    return try await read("read the translation memory") { db in
      var result: [String: TranslationMemoryEntry] = [:]
      // SQLite limits bound parameters per statement; 500 is well below every build's limit.
      for chunk in stride(from: 0, to: sourceHashes.count, by: 500) {
        let slice = Array(sourceHashes[chunk..<min(chunk + 500, sourceHashes.count)])
        let entries = try TranslationMemoryEntry.fetchAll(
          db,
          sql: """
            SELECT * FROM translation_memory WHERE target_language = ? AND model_id = ?
              AND source_hash IN (\(slice.map { _ in "?" }.joined(separator: ", ")))
            """, arguments: [language, modelID] + StatementArguments(slice))
        for entry in entries { result[entry.sourceHash] = entry }
      }
      return result
    }
  }

  /// Records a translation. The key (source hash, language, model) is UNIQUE: if an entry exists, it is kept and
  /// returned (the first finished translation wins, so a resumed run never overwrites finished work) unless
  /// `replace` is true (a user correcting an entry).
  @discardableResult
  public func recordTranslation(
    sourceText: String, translatedText: String, language: String, modelID: String, jobID: Int64? = nil,
    promptTokens: Int? = nil, completionTokens: Int? = nil, duration: Duration? = nil, replace: Bool = false
  ) async throws -> TranslationMemoryEntry {
    guard !language.isEmpty, !modelID.isEmpty else {
      throw FolioError(.invalidArgument, "a translation needs a target language and a model id")
    }
    let now = self.now()
    let hash = Segment.hash(of: sourceText)
    return try await write("record a translation") { db in
      let conflict =
        replace
        ? "DO UPDATE SET translated_text = excluded.translated_text, job_id = excluded.job_id, "
          + "prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens, "
          + "total_ms = excluded.total_ms, created_at = excluded.created_at"
        : "DO NOTHING"
      try db.execute(
        sql: """
          INSERT INTO translation_memory (source_hash, target_language, model_id, source_text, translated_text, job_id,
            prompt_tokens, completion_tokens, total_ms, created_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (source_hash, target_language, model_id) \(conflict)
          """,
        arguments: [
          hash, language, modelID, sourceText, translatedText, jobID, promptTokens, completionTokens,
          duration?.milliseconds, now,
        ])
      guard
        let entry = try TranslationMemoryEntry.fetchOne(
          db,
          sql: "SELECT * FROM translation_memory WHERE source_hash = ? AND target_language = ? AND model_id = ?",
          arguments: [hash, language, modelID])
      else { throw FolioError(.databaseError, "the translation memory entry vanished after it was written") }
      return entry
    }
  }
}
