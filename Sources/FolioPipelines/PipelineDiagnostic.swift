/// One problem found in a pipeline file: where it is, what is wrong, and how to fix it.
public struct PipelineDiagnostic: Sendable, Hashable, CustomStringConvertible {
  /// The file, as given to the loader (for a directory scan: the path inside that directory).
  public var file: String
  /// 1-based line; 0 when the problem concerns the whole file or directory.
  public var line: Int
  /// 1-based column; 0 when unknown.
  public var column: Int
  /// What is wrong.
  public var message: String
  /// How to fix it, when there is a specific suggestion.
  public var fix: String?

  /// Creates a diagnostic.
  public init(file: String, line: Int, column: Int, message: String, fix: String? = nil) {
    self.file = file
    self.line = line
    self.column = column
    self.message = message
    self.fix = fix
  }

  /// `file:line:column: error: message (fix: …)`, the format editors and CI annotate.
  public var description: String {
    var s = file
    if line > 0 { s += ":\(line)" }
    if line > 0 && column > 0 { s += ":\(column)" }
    s += ": error: \(message)"
    if let fix { s += "\n    fix: \(fix)" }
    return s
  }
}

/// What ``PipelineLoader/validate(directory:)`` found: the pipelines that loaded cleanly and every problem.
public struct PipelineValidation: Sendable {
  /// Pipelines from files without errors, in file order.
  public var pipelines: [Pipeline]
  /// Every problem, ordered by file then line.
  public var diagnostics: [PipelineDiagnostic]
  /// The files that were read.
  public var files: [String]

  /// True when there is no problem; the daemon refuses to start otherwise.
  public var isValid: Bool { diagnostics.isEmpty }

  /// All diagnostics, one per line (with their fixes), for `folio pipelines validate` and the daemon's refusal.
  public var report: String { diagnostics.map(\.description).joined(separator: "\n") }
}
