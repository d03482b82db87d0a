import FolioBase
import Foundation
import GRDB
import Testing

@testable import FolioStore

@Suite("Schema, configuration and constraints")
struct StoreSchemaTests {
  @Test("A new file is migrated from empty, in WAL mode, with foreign keys on")
  func migrationsFromEmpty() async throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let store = try Store.open(path: dir.appendingPathComponent("folio.sqlite").path)
    #expect(try await store.appliedMigrations() == StoreSchema.migrator.migrations)
    #expect(try await store.journalMode() == "wal")
    let fk = try await store.writer.read { db in try Int.fetchOne(db, sql: "PRAGMA foreign_keys") }
    #expect(fk == 1)
    // Re-opening applies nothing new and keeps the data.
    _ = try await documentWithJob(store, 1)
    let again = try Store.open(path: dir.appendingPathComponent("folio.sqlite").path)
    #expect(try await again.documents().count == 1)
  }

  @Test("In-memory stores have the same schema as files")
  func inMemorySameSchema() async throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let file = try Store.open(path: dir.appendingPathComponent("f.sqlite").path)
    let memory = try Store.inMemory()
    let sql = "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    let a = try await file.writer.read { db in try Row.fetchAll(db, sql: sql).map { $0.description } }
    let b = try await memory.writer.read { db in try Row.fetchAll(db, sql: sql).map { $0.description } }
    #expect(a == b)
    #expect(try await memory.writer.read { db in try Int.fetchOne(db, sql: "PRAGMA foreign_keys") } == 1)
  }

  @Test("A database from a newer Folio is refused")
  func tooNew() async throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("f.sqlite").path
    _ = try Store.open(path: path)
    let queue = try DatabaseQueue(path: path)
    try await queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations VALUES ('v99: from the future')") }
    await expectError(.databaseTooNew) { try Store.open(path: path) }
  }

  @Test("SQLite enforces UNIQUE, CHECK and foreign keys")
  func constraints() async throws {
    let store = try Store.inMemory()
    let (doc, job) = try await documentWithJob(store, 1)
    func fails(_ sql: String, _ arguments: StatementArguments = []) async {
      await #expect(throws: DatabaseError.self, "\(sql)") {
        try await store.writer.write { db in try db.execute(sql: sql, arguments: arguments) }
      }
    }
    let now = "2024-05-10 02:00:00.000"
    // The same (document, pipeline, step, language, generation) cannot be queued twice.
    await fails(
      "INSERT INTO job (document_id, pipeline_name, pipeline_version, step_id, task, trigger, available_at, created_at) VALUES (?, 'documents', 1, 'summary', 'summarize', 'inbox', ?, ?)",
      [doc.id, now, now])
    // Status, task and trigger are CHECKed.
    await fails("UPDATE job SET status = 'done' WHERE id = ?", [job.id])
    await fails("UPDATE job SET trigger = 'cron' WHERE id = ?", [job.id])
    // A running job must have a lease; a failed one an error code.
    await fails("UPDATE job SET status = 'running', attempts = 1 WHERE id = ?", [job.id])
    await fails("UPDATE job SET status = 'failed' WHERE id = ?", [job.id])
    // Foreign keys.
    await fails(
      "INSERT INTO job (document_id, pipeline_name, pipeline_version, step_id, task, trigger, available_at, created_at) VALUES (999, 'documents', 1, 'x', 'summarize', 'inbox', ?, ?)",
      [now, now])
    // A second original with the same hash.
    await fails(
      "INSERT INTO document (sha256, original_path, relative_path, size_bytes, kind, created_at, updated_at) VALUES (?, '/a', 'a', 1, 'text', ?, ?)",
      [sha(1), now, now])
    // Malformed hashes, kinds, negative sizes.
    await fails(
      "INSERT INTO document (sha256, original_path, relative_path, size_bytes, kind, created_at, updated_at) VALUES ('xyz', '/a', 'a', 1, 'text', ?, ?)",
      [now, now])
    await fails(
      "INSERT INTO document (sha256, original_path, relative_path, size_bytes, kind, created_at, updated_at) VALUES (?, '/a', 'a', -1, 'pdf', ?, ?)",
      [sha(7), now, now])
    // Result parameters must be a JSON object.
    try await store.writer.write { db in
      try db.execute(
        sql:
          "INSERT INTO result (job_id, document_id, pipeline_name, pipeline_version, step_id, task, text, model_id, created_at) VALUES (?, ?, 'documents', 1, 'summary', 'summarize', 't', 'm', ?)",
        arguments: [job.id, doc.id, now])
    }
    await fails("UPDATE result SET parameters = 'not json'")
    await fails("UPDATE result SET parameters = '[1]'")
  }

  @Test("The stable views have their documented columns")
  func views() async throws {
    let store = try Store.inMemory()
    func columns(_ view: String) async throws -> [String] {
      try await store.writer.read { db in
        try Row.fetchAll(db, sql: "PRAGMA table_info(\(view))").map { $0["name"] as String }
      }
    }
    #expect(
      try await columns("v_documents") == [
        "document_id", "set_name", "kind", "relative_path", "original_path", "stored_path", "size_bytes", "sha256",
        "status", "duplicate_of", "created_at", "jobs_total", "jobs_succeeded", "jobs_failed", "results",
      ])
    #expect(
      try await columns("v_jobs") == [
        "job_id", "document_id", "set_name", "document_path", "pipeline", "pipeline_version", "step", "task",
        "language", "generation", "status", "state", "attempts", "max_attempts", "trigger", "priority", "lease_owner",
        "lease_expires_at", "created_at", "started_at", "finished_at", "duration_s", "error_code", "error_message",
        "schedule_run_id",
      ])
    #expect(
      try await columns("v_results") == [
        "result_id", "document_id", "set_name", "document_path", "pipeline", "pipeline_version", "step", "task",
        "language", "model_id", "generation", "text", "prompt_tokens", "completion_tokens", "prompt_ms",
        "generation_ms", "total_ms", "parameters", "created_at", "job_id",
      ])
    #expect(
      try await columns("v_sets") == [
        "set_name", "documents", "images", "texts", "failed_documents", "results", "last_added_at",
      ])
    #expect(
      try await columns("v_schedule_runs") == [
        "run_id", "pipeline", "target_set", "scheduled_for", "trigger", "status", "reason", "started_at",
        "finished_at", "jobs_total", "jobs_succeeded", "jobs_failed",
      ])
  }

  @Test("SHA-256 matches the FIPS test vectors")
  func sha256() {
    #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(
      SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
        == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    // NFC: a precomposed é and e + combining acute share one key.
    #expect(Segment.hash(of: "caf\u{e9}") == Segment.hash(of: "cafe\u{301}"))
  }
}
