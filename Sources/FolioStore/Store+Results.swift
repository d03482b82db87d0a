import FolioBase
import Foundation
import GRDB

/// A result with its document's set and path: one row of `v_results`, and what `folio results` prints and exports.
public struct ResultRow: Codable, Sendable, Hashable, FetchableRecord {
  /// Result id.
  public var resultID: Int64
  /// Document id.
  public var documentID: Int64
  /// Document set.
  public var setName: String
  /// Inbox-relative path of the document.
  public var documentPath: String
  /// Pipeline name.
  public var pipeline: String
  /// Pipeline version.
  public var pipelineVersion: Int
  /// Step id.
  public var step: String
  /// Task.
  public var task: String
  /// Language of the text, if known.
  public var language: String?
  /// Model id.
  public var modelID: String
  /// Job generation (0 for the first run, +1 per reprocess).
  public var generation: Int
  /// The text.
  public var text: String
  /// Prompt tokens.
  public var promptTokens: Int?
  /// Generated tokens.
  public var completionTokens: Int?
  /// Whole attempt in milliseconds.
  public var totalMilliseconds: Int?
  /// Generation parameters (JSON object text).
  public var parameters: String
  /// When written.
  public var createdAt: Date

  enum CodingKeys: String, CodingKey {
    case step, task, language, generation, text, parameters, pipeline
    case resultID = "result_id"
    case documentID = "document_id"
    case setName = "set_name"
    case documentPath = "document_path"
    case pipelineVersion = "pipeline_version"
    case modelID = "model_id"
    case promptTokens = "prompt_tokens"
    case completionTokens = "completion_tokens"
    case totalMilliseconds = "total_ms"
    case createdAt = "created_at"
  }
}

/// A search hit: the result and a highlighted excerpt.
public struct SearchHit: Sendable, Hashable {
  /// The result.
  public var result: ResultRow
  /// An excerpt with matches between `[` and `]`.
  public var snippet: String
  /// BM25 rank (lower is better).
  public var rank: Double
}

/// Which results to list, export or reprocess.
public struct ResultFilter: Sendable, Hashable {
  /// Only this document.
  public var documentID: Int64?
  /// Only this set.
  public var setName: String?
  /// Only this pipeline.
  public var pipeline: String?
  /// Only results made by pipeline versions below this one (stale results).
  public var pipelineVersionBelow: Int?
  /// Only this step.
  public var step: String?
  /// Only this task.
  public var task: String?
  /// Only this language.
  public var language: String?
  /// Only this model.
  public var modelID: String?
  /// Only results written at or after this time.
  public var since: Date?
  /// Only the newest generation of each (document, pipeline, step, language).
  public var latestOnly: Bool = true
  /// Page size.
  public var limit: Int = 1000
  /// Page start.
  public var offset: Int = 0

  /// Creates a filter; by default every latest result, 1000 at a time.
  public init(
    documentID: Int64? = nil, setName: String? = nil, pipeline: String? = nil, pipelineVersionBelow: Int? = nil,
    step: String? = nil, task: String? = nil, language: String? = nil, modelID: String? = nil, since: Date? = nil,
    latestOnly: Bool = true, limit: Int = 1000, offset: Int = 0
  ) {
    self.documentID = documentID
    self.setName = setName
    self.pipeline = pipeline
    self.pipelineVersionBelow = pipelineVersionBelow
    self.step = step
    self.task = task
    self.language = language
    self.modelID = modelID
    self.since = since
    self.latestOnly = latestOnly
    self.limit = limit
    self.offset = offset
  }

  func sql(alias v: String) -> (String, StatementArguments) {
    var clauses: [String] = []
    var arguments = StatementArguments()
    func add(_ clause: String, _ value: (any DatabaseValueConvertible)?) {
      guard let value else { return }
      clauses.append(clause)
      arguments += [value]
    }
    add("\(v).document_id = ?", documentID)
    add("\(v).set_name = ?", setName)
    add("\(v).pipeline = ?", pipeline)
    add("\(v).pipeline_version < ?", pipelineVersionBelow)
    add("\(v).step = ?", step)
    add("\(v).task = ?", task)
    add("\(v).language = ?", language)
    add("\(v).model_id = ?", modelID)
    add("\(v).created_at >= ?", since)
    if latestOnly {
      clauses.append(
        """
        NOT EXISTS (SELECT 1 FROM v_results n WHERE n.document_id = \(v).document_id AND n.pipeline = \(v).pipeline
          AND n.step = \(v).step AND coalesce(n.language, '') = coalesce(\(v).language, '')
          AND n.generation > \(v).generation)
        """)
    }
    return (clauses.isEmpty ? "1" : clauses.joined(separator: " AND "), arguments)
  }
}

/// How ``Store/search(_:syntax:filter:)`` reads the query.
public enum SearchSyntax: Sendable, Hashable {
  /// Every word must occur (each word is quoted, so punctuation and FTS5 operators are taken literally).
  case words
  /// Raw FTS5 query syntax (`"exact phrase"`, `a OR b`, `pay*`, `NEAR(a b)`).
  case fts5
}

extension Store {
  static let resultColumns = """
    result_id, document_id, set_name, document_path, pipeline, pipeline_version, step, task, language, model_id,
    generation, text, prompt_tokens, completion_tokens, total_ms, parameters, created_at
    """

  /// Results matching a filter, newest first.
  public func results(matching filter: ResultFilter = ResultFilter()) async throws -> [ResultRow] {
    try await read("list results") { db in
      let (whereSQL, arguments) = filter.sql(alias: "v")
      return try ResultRow.fetchAll(
        db,
        sql:
          "SELECT \(Self.resultColumns) FROM v_results v WHERE \(whereSQL) ORDER BY v.result_id DESC LIMIT ? OFFSET ?",
        arguments: arguments + [max(0, filter.limit), max(0, filter.offset)])
    }
  }

  /// Full-text search over result text (FTS5 `MATCH`, BM25-ranked, best first).
  ///
  /// - Throws: ``FolioError/Code/invalidQuery`` for a malformed FTS5 query.
  public func search(
    _ query: String, syntax: SearchSyntax = .words, filter: ResultFilter = ResultFilter()
  ) async throws -> [SearchHit] {
    let match: String
    switch syntax {
    case .fts5:
      match = query
    case .words:
      let words = query.split(whereSeparator: { $0.isWhitespace })
      match = words.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: " ")
    }
    guard !match.trimmingCharacters(in: .whitespaces).isEmpty else { return [] }
    do {
      return try await writer.read { db in
        let (whereSQL, arguments) = filter.sql(alias: "v")
        let rows = try Row.fetchAll(
          db,
          sql: """
            SELECT \(Self.resultColumns.split(separator: ",").map { "v." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", ")),
              snippet(result_fts, 0, '[', ']', '…', 16) AS snippet, bm25(result_fts) AS rank
            FROM result_fts JOIN v_results v ON v.result_id = result_fts.rowid
            WHERE result_fts MATCH ? AND \(whereSQL)
            ORDER BY rank LIMIT ? OFFSET ?
            """, arguments: [match] + arguments + [max(0, filter.limit), max(0, filter.offset)])
        return try rows.map { row in
          SearchHit(result: try ResultRow(row: row), snippet: row["snippet"] ?? "", rank: row["rank"] ?? 0)
        }
      }
    } catch let error as DatabaseError where error.resultCode == .SQLITE_ERROR {
      throw FolioError(
        .invalidQuery,
        "the search `\(query)` is not valid FTS5 syntax (\(error.message ?? "")); quote phrases with \"…\", or search "
          + "plain words", cause: error)
    } catch {
      throw Self.map(error, action: "search results")
    }
  }

  /// The CSV header used by ``exportResultsCSV(matching:)``.
  public static let csvHeader = [
    "result_id", "document_id", "set_name", "document_path", "pipeline", "pipeline_version", "step", "task",
    "language", "model_id", "generation", "prompt_tokens", "completion_tokens", "total_ms", "created_at", "text",
  ]

  /// Results as RFC 4180 CSV (header row, CRLF line ends, fields with commas, quotes or newlines quoted).
  public func exportResultsCSV(matching filter: ResultFilter = ResultFilter(limit: Int.max)) async throws -> String {
    let rows = try await results(matching: filter)
    return Self.csv(rows)
  }

  /// Renders rows as CSV.
  public static func csv(_ rows: [ResultRow]) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return CSV.table(
      header: csvHeader,
      rows: rows.map { r in
        [
          String(r.resultID), String(r.documentID), r.setName, r.documentPath, r.pipeline, String(r.pipelineVersion),
          r.step, r.task, r.language ?? "", r.modelID, String(r.generation), r.promptTokens.map(String.init) ?? "",
          r.completionTokens.map(String.init) ?? "", r.totalMilliseconds.map(String.init) ?? "",
          formatter.string(from: r.createdAt), r.text,
        ]
      })
  }

  /// Results as a JSON array (snake_case keys, ISO 8601 dates, sorted keys), for `--json`.
  public func exportResultsJSON(matching filter: ResultFilter = ResultFilter(limit: Int.max)) async throws -> Data {
    try Self.json(try await results(matching: filter))
  }

  /// Encodes any of the store's values as JSON the way `--json` output does.
  public static func json<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    do {
      return try encoder.encode(value)
    } catch {
      throw FolioError(.invalidArgument, "cannot encode JSON", cause: error)
    }
  }
}
