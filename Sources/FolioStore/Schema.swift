import GRDB

/// The database schema as a sequence of named migrations.
///
/// **A migration never changes once shipped.** Schema changes are new migrations appended to the list; views that
/// people query with `sqlite3` (`v_documents`, `v_jobs`, `v_results`, `v_sets`, `v_schedule_runs`) only ever gain
/// columns. The schema is documented in `docs/schema.md`; keep the two in step.
///
/// Migrations are plain SQL strings that use no application types (GRDB's recommended practice), so they keep
/// meaning the same thing when the Swift code changes.
enum StoreSchema {
  static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1: documents, jobs, results, segments, translation memory, schedules, search, views") {
      db in
      try db.execute(sql: v1)
    }
    migrator.registerMigration("v2: intake failures") { db in
      try db.execute(sql: v2)
    }
    migrator.registerMigration("v3: daemon instances") { db in
      try db.execute(sql: v3)
    }
    return migrator
  }

  /// Files the daemon took out of the inbox but could not record as documents (empty, not UTF-8, unsupported,
  /// corrupt image, rejected duplicate…): one row each, so `folio status` and `sqlite3` show them (lessons row 5).
  static let v2 = """
    CREATE TABLE intake_failure (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      original_path TEXT NOT NULL CHECK (original_path <> ''),
      relative_path TEXT NOT NULL CHECK (relative_path <> ''),
      set_name TEXT NOT NULL CHECK (set_name <> ''),
      sha256 TEXT CHECK (sha256 IS NULL OR length(sha256) = 64),
      size_bytes INTEGER CHECK (size_bytes IS NULL OR size_bytes >= 0),
      error_code TEXT NOT NULL CHECK (error_code <> ''),
      error_message TEXT NOT NULL,
      duplicate_of INTEGER REFERENCES document(id) ON DELETE SET NULL,
      final_path TEXT,
      created_at TEXT NOT NULL
    );
    CREATE INDEX intake_failure_created ON intake_failure(created_at);

    CREATE VIEW v_intake_failures AS
    SELECT id AS failure_id, set_name, relative_path, original_path, final_path, sha256, size_bytes, error_code,
           error_message, duplicate_of, created_at
    FROM intake_failure;
    """

  /// Running daemons: one row per process, refreshed by its heartbeat with what it has loaded and how much memory
  /// it uses (inbox-lessons, "Model residency"); removed when the daemon stops cleanly. A row whose heartbeat is old
  /// belongs to a daemon that died; `folio status` marks it stale.
  static let v3 = """
    CREATE TABLE daemon_instance (
      instance_id TEXT PRIMARY KEY NOT NULL CHECK (instance_id <> ''),
      pid INTEGER NOT NULL CHECK (pid > 0),
      host TEXT NOT NULL,
      started_at TEXT NOT NULL,
      heartbeat_at TEXT NOT NULL,
      model_id TEXT NOT NULL,
      model_path TEXT,
      model_origin TEXT,
      rss_mib REAL CHECK (rss_mib IS NULL OR rss_mib >= 0),
      state TEXT NOT NULL CHECK (state IN ('idle', 'busy', 'unloaded')),
      model_loaded_at TEXT,
      keep_alive_s REAL,
      queued_jobs INTEGER NOT NULL DEFAULT 0 CHECK (queued_jobs >= 0),
      max_queued_jobs INTEGER CHECK (max_queued_jobs IS NULL OR max_queued_jobs >= 1),
      is_intake_paused INTEGER NOT NULL DEFAULT 0 CHECK (is_intake_paused IN (0, 1))
    );

    CREATE VIEW v_daemons AS
    SELECT instance_id, pid, host, state, model_id, model_path, model_origin, rss_mib, started_at, heartbeat_at,
           model_loaded_at, keep_alive_s, queued_jobs, max_queued_jobs, is_intake_paused
    FROM daemon_instance;
    """

  static let v1 = """
    CREATE TABLE document (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      sha256 TEXT NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
      original_path TEXT NOT NULL CHECK (original_path <> ''),
      relative_path TEXT NOT NULL CHECK (relative_path <> ''),
      stored_path TEXT,
      size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
      kind TEXT NOT NULL CHECK (kind IN ('image', 'text')),
      set_name TEXT NOT NULL DEFAULT 'default' CHECK (set_name <> ''),
      status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'processed', 'failed', 'linked')),
      duplicate_of INTEGER REFERENCES document(id) ON DELETE RESTRICT,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      CHECK (duplicate_of IS NULL OR duplicate_of <> id),
      CHECK (status <> 'linked' OR duplicate_of IS NOT NULL)
    );
    -- One original per hash; duplicates recorded under the link/allow policies point at it.
    CREATE UNIQUE INDEX document_sha256_original ON document(sha256) WHERE duplicate_of IS NULL;
    CREATE INDEX document_sha256 ON document(sha256);
    CREATE INDEX document_set ON document(set_name, id);
    CREATE INDEX document_duplicate_of ON document(duplicate_of) WHERE duplicate_of IS NOT NULL;

    CREATE TABLE schedule (
      pipeline_name TEXT PRIMARY KEY NOT NULL,
      pipeline_version INTEGER NOT NULL CHECK (pipeline_version >= 1),
      cron TEXT NOT NULL,
      time_zone TEXT NOT NULL,
      target_set TEXT NOT NULL,
      overlap TEXT NOT NULL CHECK (overlap IN ('skip', 'queue')),
      missed TEXT NOT NULL CHECK (missed IN ('skip', 'run_once', 'run_all')),
      is_enabled INTEGER NOT NULL DEFAULT 1 CHECK (is_enabled IN (0, 1)),
      status TEXT NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'running', 'disabled')),
      next_run_at TEXT,
      last_started_at TEXT,
      last_finished_at TEXT,
      last_run_status TEXT,
      updated_at TEXT NOT NULL
    );

    CREATE TABLE schedule_run (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      pipeline_name TEXT NOT NULL REFERENCES schedule(pipeline_name) ON DELETE CASCADE,
      scheduled_for TEXT NOT NULL,
      trigger TEXT NOT NULL CHECK (trigger IN ('schedule', 'catch_up', 'manual')),
      status TEXT NOT NULL
        CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled')),
      reason TEXT,
      created_at TEXT NOT NULL,
      started_at TEXT,
      finished_at TEXT,
      CHECK (status <> 'skipped' OR reason IS NOT NULL)
    );
    -- Each cron occurrence is handled once, even with several daemons on one database.
    CREATE UNIQUE INDEX schedule_run_occurrence ON schedule_run(pipeline_name, scheduled_for)
      WHERE trigger <> 'manual';
    -- At most one running and one pending run per schedule (the overlap policy, enforced by SQLite).
    CREATE UNIQUE INDEX schedule_run_one_running ON schedule_run(pipeline_name) WHERE status = 'running';
    CREATE UNIQUE INDEX schedule_run_one_pending ON schedule_run(pipeline_name) WHERE status = 'pending';

    CREATE TABLE job (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      document_id INTEGER NOT NULL REFERENCES document(id) ON DELETE CASCADE,
      pipeline_name TEXT NOT NULL CHECK (pipeline_name <> ''),
      pipeline_version INTEGER NOT NULL CHECK (pipeline_version >= 1),
      step_id TEXT NOT NULL CHECK (step_id <> ''),
      step_index INTEGER NOT NULL DEFAULT 0,
      task TEXT NOT NULL CHECK (task IN ('caption', 'ocr', 'summarize', 'translate')),
      language TEXT NOT NULL DEFAULT '',
      generation INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
      depends_on_job_id INTEGER REFERENCES job(id) ON DELETE CASCADE,
      schedule_run_id INTEGER REFERENCES schedule_run(id) ON DELETE SET NULL,
      status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
      trigger TEXT NOT NULL CHECK (trigger IN ('inbox', 'add', 'reprocess', 'schedule', 'retry')),
      priority INTEGER NOT NULL DEFAULT 0,
      attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
      max_attempts INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
      lease_owner TEXT,
      lease_expires_at TEXT,
      heartbeat_at TEXT,
      available_at TEXT NOT NULL,
      created_at TEXT NOT NULL,
      started_at TEXT,
      finished_at TEXT,
      error_code TEXT,
      error_message TEXT,
      UNIQUE (document_id, pipeline_name, step_id, language, generation),
      -- A running job always has a lease; no other state has one.
      CHECK ((status = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
      CHECK (status <> 'running' OR attempts >= 1),
      CHECK (status <> 'failed' OR error_code IS NOT NULL),
      CHECK (depends_on_job_id IS NULL OR depends_on_job_id <> id)
    );
    CREATE INDEX job_queue ON job(priority DESC, id) WHERE status = 'queued';
    CREATE INDEX job_lease ON job(lease_expires_at) WHERE status = 'running';
    CREATE INDEX job_status ON job(status, finished_at);
    CREATE INDEX job_document ON job(document_id);
    CREATE INDEX job_depends_on ON job(depends_on_job_id) WHERE depends_on_job_id IS NOT NULL;
    CREATE INDEX job_schedule_run ON job(schedule_run_id) WHERE schedule_run_id IS NOT NULL;

    CREATE TABLE result (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      job_id INTEGER NOT NULL UNIQUE REFERENCES job(id) ON DELETE CASCADE,
      document_id INTEGER NOT NULL REFERENCES document(id) ON DELETE CASCADE,
      pipeline_name TEXT NOT NULL,
      pipeline_version INTEGER NOT NULL CHECK (pipeline_version >= 1),
      step_id TEXT NOT NULL,
      task TEXT NOT NULL CHECK (task IN ('caption', 'ocr', 'summarize', 'translate')),
      language TEXT,
      text TEXT NOT NULL,
      model_id TEXT NOT NULL CHECK (model_id <> ''),
      parameters TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(parameters) AND json_type(parameters) = 'object'),
      prompt_tokens INTEGER CHECK (prompt_tokens >= 0),
      completion_tokens INTEGER CHECK (completion_tokens >= 0),
      prompt_ms INTEGER CHECK (prompt_ms >= 0),
      generation_ms INTEGER CHECK (generation_ms >= 0),
      total_ms INTEGER CHECK (total_ms >= 0),
      created_at TEXT NOT NULL
    );
    CREATE INDEX result_document ON result(document_id);
    CREATE INDEX result_pipeline ON result(pipeline_name, pipeline_version, step_id);
    CREATE INDEX result_model ON result(model_id);
    CREATE INDEX result_created ON result(created_at);

    -- Full-text search over result text: an external-content FTS5 table kept in sync by triggers.
    CREATE VIRTUAL TABLE result_fts USING fts5(
      text, content = 'result', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER result_fts_insert AFTER INSERT ON result BEGIN
      INSERT INTO result_fts(rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER result_fts_delete AFTER DELETE ON result BEGIN
      INSERT INTO result_fts(result_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    CREATE TRIGGER result_fts_update AFTER UPDATE OF text ON result BEGIN
      INSERT INTO result_fts(result_fts, rowid, text) VALUES ('delete', old.id, old.text);
      INSERT INTO result_fts(rowid, text) VALUES (new.id, new.text);
    END;

    CREATE TABLE segment (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      document_id INTEGER NOT NULL REFERENCES document(id) ON DELETE CASCADE,
      source TEXT NOT NULL CHECK (source <> ''),
      ordinal INTEGER NOT NULL CHECK (ordinal >= 0),
      text TEXT NOT NULL,
      source_hash TEXT NOT NULL CHECK (length(source_hash) = 64),
      created_at TEXT NOT NULL,
      UNIQUE (document_id, source, ordinal)
    );
    CREATE INDEX segment_hash ON segment(source_hash);

    CREATE TABLE translation_memory (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      source_hash TEXT NOT NULL CHECK (length(source_hash) = 64),
      target_language TEXT NOT NULL CHECK (target_language <> ''),
      model_id TEXT NOT NULL CHECK (model_id <> ''),
      source_text TEXT NOT NULL,
      translated_text TEXT NOT NULL,
      job_id INTEGER REFERENCES job(id) ON DELETE SET NULL,
      prompt_tokens INTEGER,
      completion_tokens INTEGER,
      total_ms INTEGER,
      created_at TEXT NOT NULL,
      UNIQUE (source_hash, target_language, model_id)
    );

    -- Stable views for people who use sqlite3 directly. Columns are only ever added.
    CREATE VIEW v_documents AS
    SELECT d.id AS document_id, d.set_name, d.kind, d.relative_path, d.original_path, d.stored_path,
           d.size_bytes, d.sha256, d.status, d.duplicate_of, d.created_at,
           (SELECT count(*) FROM job j WHERE j.document_id = d.id) AS jobs_total,
           (SELECT count(*) FROM job j WHERE j.document_id = d.id AND j.status = 'succeeded') AS jobs_succeeded,
           (SELECT count(*) FROM job j WHERE j.document_id = d.id AND j.status = 'failed') AS jobs_failed,
           (SELECT count(*) FROM result r WHERE r.document_id = d.id) AS results
    FROM document d;

    CREATE VIEW v_jobs AS
    SELECT j.id AS job_id, j.document_id, d.set_name, d.relative_path AS document_path,
           j.pipeline_name AS pipeline, j.pipeline_version, j.step_id AS step, j.task,
           NULLIF(j.language, '') AS language, j.generation, j.status,
           CASE
             WHEN j.status = 'queued' AND dep.id IS NOT NULL AND dep.status <> 'succeeded' THEN 'waiting'
             WHEN j.status = 'queued' AND j.attempts > 0 THEN 'retrying'
             ELSE j.status
           END AS state,
           j.attempts, j.max_attempts, j.trigger, j.priority, j.lease_owner, j.lease_expires_at,
           j.created_at, j.started_at, j.finished_at,
           round((julianday(j.finished_at) - julianday(j.started_at)) * 86400.0, 3) AS duration_s,
           j.error_code, j.error_message, j.schedule_run_id
    FROM job j
    JOIN document d ON d.id = j.document_id
    LEFT JOIN job dep ON dep.id = j.depends_on_job_id;

    CREATE VIEW v_results AS
    SELECT r.id AS result_id, r.document_id, d.set_name, d.relative_path AS document_path,
           r.pipeline_name AS pipeline, r.pipeline_version, r.step_id AS step, r.task, r.language,
           r.model_id, j.generation, r.text, r.prompt_tokens, r.completion_tokens,
           r.prompt_ms, r.generation_ms, r.total_ms, r.parameters, r.created_at, r.job_id
    FROM result r
    JOIN document d ON d.id = r.document_id
    JOIN job j ON j.id = r.job_id;

    CREATE VIEW v_sets AS
    SELECT d.set_name,
           count(*) AS documents,
           sum(d.kind = 'image') AS images,
           sum(d.kind = 'text') AS texts,
           sum(d.status = 'failed') AS failed_documents,
           (SELECT count(*) FROM result r JOIN document x ON x.id = r.document_id
             WHERE x.set_name = d.set_name) AS results,
           max(d.created_at) AS last_added_at
    FROM document d
    GROUP BY d.set_name;

    CREATE VIEW v_schedule_runs AS
    SELECT r.id AS run_id, r.pipeline_name AS pipeline, s.target_set, r.scheduled_for, r.trigger, r.status,
           r.reason, r.started_at, r.finished_at,
           (SELECT count(*) FROM job j WHERE j.schedule_run_id = r.id) AS jobs_total,
           (SELECT count(*) FROM job j WHERE j.schedule_run_id = r.id AND j.status = 'succeeded') AS jobs_succeeded,
           (SELECT count(*) FROM job j WHERE j.schedule_run_id = r.id AND j.status = 'failed') AS jobs_failed
    FROM schedule_run r
    JOIN schedule s ON s.pipeline_name = r.pipeline_name;
    """
}
