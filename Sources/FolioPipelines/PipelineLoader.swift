import FolioBase
import Foundation
import Yams

/// Loads and validates `pipelines/*.yaml`.
///
/// Validation reports **every** problem with file, line, column and a fix, rather than stopping at the first.
/// The YAML keys are snake_case:
///
/// ```yaml
/// name: images                 # required, [a-z0-9][a-z0-9_-]*, unique across files
/// version: 1                   # required integer ≥ 1, recorded with every result
/// description: Caption and OCR every image.
/// enabled: true                # default true
/// match:                       # inbox pipelines: which documents (all criteria must hold)
///   kinds: [image]             # image | text; inferred from the steps when absent
///   sets: ["*"]                # globs over the document set name
///   glob: "**/*.png"           # glob over the inbox-relative path; without `/`, over the file name
/// steps:
///   - id: ocr
///     task: ocr                # caption | ocr | summarize | translate
///     prompt: "…"              # optional override of the built-in prompt ({language}, {text})
///     input: document          # summarize/translate: document | ocr | <earlier step id>
///     to: [de, ja]             # translate: one or more languages
///     glossary:                # translate: terms added to the prompt where they occur in a segment
///       Lessee: Mieter         #   one rendering for every language, or
///       Agreement: {de: Vereinbarung, ja: 契約}   # per language (each must be in `to`)
///     max_tokens: 512
///     temperature: 0.2
///     thinking: false          # default false
///     timeout: 120s            # ms, s, m, h, combinable (1h30m); a bare number is seconds
/// schedule: "0 2 * * *"        # batch pipelines: 5-field cron
/// time_zone: UTC               # default UTC; `local` or an IANA name such as Europe/Berlin
/// target_set: contracts        # the document set a run processes
/// overlap: skip                # skip | queue
/// missed: run_once             # skip | run_once | run_all
/// max_missed_runs: 24          # cap for run_all
/// ```
///
/// Schedules are read in UTC unless `time_zone` says otherwise: a daemon's behaviour should not change when the
/// machine's time zone does, and the database records times in UTC.
public enum PipelineLoader {
  /// Reads every `*.yaml`/`*.yml` file (not hidden, not in subfolders) of `directory`, sorted by name, and
  /// validates each file and the set as a whole (duplicate names).
  public static func validate(directory: URL) -> PipelineValidation {
    let fm = FileManager.default
    var isDirectory: ObjCBool = false
    guard fm.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
      return PipelineValidation(
        pipelines: [],
        diagnostics: [
          PipelineDiagnostic(
            file: directory.path, line: 0, column: 0, message: "pipeline directory does not exist",
            fix: "create it, or point `pipelines` in folio.yaml at the folder holding your *.yaml files")
        ], files: [])
    }
    let names: [String]
    do {
      names = try fm.contentsOfDirectory(atPath: directory.path)
        .filter { !$0.hasPrefix(".") && ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) }
        .sorted()
    } catch {
      return PipelineValidation(
        pipelines: [],
        diagnostics: [
          PipelineDiagnostic(
            file: directory.path, line: 0, column: 0, message: "cannot list the directory: \(error)",
            fix: "check the folder's permissions (the daemon needs read and execute)")
        ], files: [])
    }
    var sources: [(file: String, text: String?)] = []
    var diagnostics: [PipelineDiagnostic] = []
    for name in names {
      let url = directory.appendingPathComponent(name)
      guard let data = fm.contents(atPath: url.path) else {
        diagnostics.append(
          PipelineDiagnostic(
            file: name, line: 0, column: 0, message: "cannot read the file",
            fix: "check its permissions"))
        sources.append((name, nil))
        continue
      }
      guard let text = String(data: data, encoding: .utf8) else {
        diagnostics.append(
          PipelineDiagnostic(
            file: name, line: 0, column: 0, message: "the file is not UTF-8 text", fix: "save it as UTF-8"))
        sources.append((name, nil))
        continue
      }
      sources.append((name, text))
    }
    var result = validate(sources: sources.compactMap { s in s.text.map { (s.file, $0) } })
    result.files = names
    result.diagnostics = (diagnostics + result.diagnostics).sorted {
      ($0.file, $0.line, $0.column) < ($1.file, $1.line, $1.column)
    }
    return result
  }

  /// Validates pipeline sources given as (file name, YAML text), including duplicate names across them.
  public static func validate(sources: [(file: String, yaml: String)]) -> PipelineValidation {
    var pipelines: [Pipeline] = []
    var diagnostics: [PipelineDiagnostic] = []
    var seen: [String: (file: String, line: Int)] = [:]
    for source in sources {
      let parsed = parseFile(yaml: source.yaml, file: source.file)
      diagnostics += parsed.diagnostics
      if let name = parsed.name {
        if let first = seen[name.value] {
          diagnostics.append(
            PipelineDiagnostic(
              file: source.file, line: name.line, column: name.column,
              message: "pipeline name `\(name.value)` is already used in \(first.file):\(first.line)",
              fix: "give each pipeline a unique `name`; results are recorded by name"))
        } else {
          seen[name.value] = (source.file, name.line)
          if parsed.diagnostics.isEmpty, let pipeline = parsed.pipeline { pipelines.append(pipeline) }
        }
      }
    }
    diagnostics.sort { ($0.file, $0.line, $0.column) < ($1.file, $1.line, $1.column) }
    if !diagnostics.isEmpty {
      // A set with errors is not used at all; keep only what loaded, for display.
      let bad = Set(diagnostics.map(\.file))
      pipelines.removeAll { bad.contains($0.sourceFile) }
    }
    return PipelineValidation(pipelines: pipelines, diagnostics: diagnostics, files: sources.map(\.file))
  }

  /// Loads the directory, throwing ``FolioError/Code/invalidPipeline`` with every diagnostic if any file is wrong.
  /// This is what the daemon calls at startup: it refuses to start on an invalid pipeline and says why.
  public static func load(directory: URL) throws(FolioError) -> [Pipeline] {
    let validation = validate(directory: directory)
    guard validation.isValid else {
      let count = validation.diagnostics.count
      throw FolioError(
        .invalidPipeline,
        "\(count) problem\(count == 1 ? "" : "s") in \(directory.path):\n\(validation.report)")
    }
    return validation.pipelines
  }

  /// Parses one file. The pipeline is returned only when there are no diagnostics.
  public static func parse(yaml: String, file: String) -> (pipeline: Pipeline?, diagnostics: [PipelineDiagnostic]) {
    let result = parseFile(yaml: yaml, file: file)
    return (result.diagnostics.isEmpty ? result.pipeline : nil, result.diagnostics)
  }

  struct ParseResult {
    var pipeline: Pipeline?
    var diagnostics: [PipelineDiagnostic]
    var name: (value: String, line: Int, column: Int)?
  }

  static func parseFile(yaml: String, file: String) -> ParseResult {
    var reader = PipelineReader(file: file)
    let root: Node?
    do {
      root = try Yams.compose(yaml: yaml)
    } catch let error as YamlError {
      reader.syntaxError(error)
      return ParseResult(pipeline: nil, diagnostics: reader.diagnostics)
    } catch {
      reader.report(at: nil, "cannot parse the YAML: \(error)")
      return ParseResult(pipeline: nil, diagnostics: reader.diagnostics)
    }
    guard let root else {
      reader.report(at: nil, "the file is empty", fix: "define a pipeline with at least `name`, `version` and `steps`")
      return ParseResult(pipeline: nil, diagnostics: reader.diagnostics)
    }
    let pipeline = reader.readPipeline(root)
    return ParseResult(pipeline: pipeline, diagnostics: reader.diagnostics, name: reader.nameInfo)
  }
}

// MARK: - Reading

/// Walks the composed YAML tree, collecting diagnostics; never stops at the first problem.
struct PipelineReader {
  let file: String
  var diagnostics: [PipelineDiagnostic] = []
  var nameInfo: (value: String, line: Int, column: Int)?
  /// Every step id in the file with its line, for "names a later step" messages.
  var allStepLines: [String: Int] = [:]

  static let topKeys = [
    "name", "version", "description", "enabled", "match", "steps", "schedule", "time_zone", "target_set", "overlap",
    "missed", "max_missed_runs",
  ]
  static let matchKeys = ["kinds", "sets", "glob"]
  static let stepKeys = [
    "id", "task", "prompt", "input", "to", "max_tokens", "temperature", "thinking", "timeout", "glossary",
  ]
  static let scheduleOnlyKeys = ["time_zone", "target_set", "overlap", "missed", "max_missed_runs"]
  static let reservedStepIds: Set<String> = ["document", "image"]

  init(file: String) { self.file = file }

  mutating func report(at node: Node?, _ message: String, fix: String? = nil) {
    report(mark: node?.mark, message, fix: fix)
  }

  mutating func report(mark: Mark?, _ message: String, fix: String? = nil) {
    diagnostics.append(
      PipelineDiagnostic(file: file, line: mark?.line ?? 0, column: mark?.column ?? 0, message: message, fix: fix))
  }

  mutating func syntaxError(_ error: YamlError) {
    switch error {
    case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
      .composer(let context, let problem, let mark, _):
      let where_ = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
      report(
        mark: mark, "YAML syntax error: \(problem)\(where_)",
        fix: "check indentation (spaces, not tabs), colons after keys, and that quotes and brackets are closed")
    case .duplicatedKeysInMapping(let duplicates, let context):
      report(
        mark: context.mark,
        "duplicate key\(duplicates.count == 1 ? "" : "s") \(duplicates.map { "`\($0)`" }.joined(separator: ", ")) in one mapping",
        fix: "keep one of them; YAML keeps no more than one value per key")
    case .reader(let problem, _, _, _):
      report(mark: nil, "cannot read the YAML: \(problem)", fix: "save the file as UTF-8 text")
    default:
      report(mark: nil, "cannot parse the YAML: \(error)")
    }
  }

  // MARK: Generic value readers

  static func kindName(_ node: Node) -> String {
    switch node {
    case .mapping: "a mapping"
    case .sequence: "a list"
    case .alias: "an alias"
    case .scalar(let s):
      switch Tag.Name(rawValue: node.tag.description) {
      case .null: "nothing (null)"
      case .bool: "a boolean (`\(s.string)`)"
      case .int: "a number (`\(s.string)`)"
      case .float: "a number (`\(s.string)`)"
      default: "the string `\(s.string)`"
      }
    }
  }

  /// Reads a mapping's pairs, reporting unknown keys with "did you mean" and keys that belong elsewhere.
  mutating func pairs(
    _ node: Node, allowed: [String], context: String, elsewhere: [String: String] = [:]
  ) -> [String: (key: Node, value: Node)]? {
    guard case .mapping(let mapping) = node else {
      report(at: node, "\(context) must be a mapping of keys to values, found \(Self.kindName(node))")
      return nil
    }
    var result: [String: (key: Node, value: Node)] = [:]
    for (key, value) in mapping {
      guard case .scalar(let k) = key else {
        report(at: key, "keys must be plain words, found \(Self.kindName(key))")
        continue
      }
      if allowed.contains(k.string) {
        result[k.string] = (key, value)
      } else if let place = elsewhere[k.string] {
        report(at: key, "`\(k.string)` is not a key of \(context)", fix: "move it \(place)")
      } else if let suggestion = Self.suggest(k.string, among: allowed) {
        report(at: key, "unknown key `\(k.string)` in \(context)", fix: "did you mean `\(suggestion)`?")
      } else {
        report(
          at: key, "unknown key `\(k.string)` in \(context)",
          fix: "remove it; known keys are \(allowed.map { "`\($0)`" }.joined(separator: ", "))")
      }
    }
    return result
  }

  /// The closest candidate within a small edit distance, case-insensitively.
  static func suggest(_ word: String, among candidates: [String]) -> String? {
    let lower = word.lowercased().replacingOccurrences(of: "-", with: "_")
    if let exact = candidates.first(where: { $0 == lower }) { return exact }
    let scored = candidates.map { ($0, editDistance(lower, $0)) }.sorted { $0.1 < $1.1 }
    guard let best = scored.first else { return nil }
    let limit = max(1, min(3, best.0.count / 3 + 1))
    return best.1 <= limit ? best.0 : nil
  }

  /// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent transpositions.
  static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var d = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
      for j in 1...b.count {
        let cost = a[i - 1] == b[j - 1] ? 0 : 1
        d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
        if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
          d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
        }
      }
    }
    return d[a.count][b.count]
  }

  mutating func string(_ node: Node, key: String, allowEmpty: Bool = false) -> String? {
    guard case .scalar(let scalar) = node else {
      report(at: node, "`\(key)` must be a string, found \(Self.kindName(node))")
      return nil
    }
    if node.tag.description == Tag.Name.null.rawValue && scalar.style == .plain {
      report(at: node, "`\(key)` has no value", fix: "give it a value or remove the key")
      return nil
    }
    if !allowEmpty && scalar.string.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
      report(at: node, "`\(key)` is empty", fix: "give it a value or remove the key")
      return nil
    }
    return scalar.string
  }

  mutating func int(_ node: Node, key: String, range: ClosedRange<Int>) -> Int? {
    guard case .scalar(let scalar) = node, scalar.style == .plain, node.tag.description == Tag.Name.int.rawValue,
      let value = node.int
    else {
      let quoted = (node.scalar.map { $0.style != .plain } ?? false) && Int(node.string ?? "") != nil
      report(
        at: node, "`\(key)` must be a whole number, found \(Self.kindName(node))",
        fix: quoted ? "remove the quotes" : "write a number such as \(range.lowerBound)")
      return nil
    }
    guard range.contains(value) else {
      report(at: node, "`\(key)` is \(value); it must be between \(range.lowerBound) and \(range.upperBound)")
      return nil
    }
    return value
  }

  mutating func double(_ node: Node, key: String, range: ClosedRange<Double>) -> Double? {
    guard case .scalar(let scalar) = node, scalar.style == .plain,
      node.tag.description == Tag.Name.int.rawValue || node.tag.description == Tag.Name.float.rawValue,
      let value = node.float, value.isFinite
    else {
      report(
        at: node, "`\(key)` must be a number, found \(Self.kindName(node))",
        fix: "write a number such as \(range.lowerBound)")
      return nil
    }
    guard range.contains(value) else {
      report(at: node, "`\(key)` is \(value); it must be between \(range.lowerBound) and \(range.upperBound)")
      return nil
    }
    return value
  }

  mutating func bool(_ node: Node, key: String) -> Bool? {
    guard case .scalar(let scalar) = node, scalar.style == .plain, node.tag.description == Tag.Name.bool.rawValue,
      let value = node.bool
    else {
      report(at: node, "`\(key)` must be true or false, found \(Self.kindName(node))", fix: "write true or false")
      return nil
    }
    return value
  }

  /// A string or a list of strings (`to: de` and `to: [de, ja]` are both accepted). Scalars keep their source
  /// spelling, so `no` (Norwegian) is not read as a boolean.
  mutating func stringList(_ node: Node, key: String) -> [(String, Node)]? {
    switch node {
    case .scalar:
      return string(node, key: key).map { [($0, node)] }
    case .sequence(let sequence):
      var result: [(String, Node)] = []
      for item in sequence {
        if let s = string(item, key: key) { result.append((s, item)) }
      }
      if sequence.count == 0 { report(at: node, "`\(key)` is an empty list") }
      return result
    default:
      report(at: node, "`\(key)` must be a string or a list of strings, found \(Self.kindName(node))")
      return nil
    }
  }

  /// `120s`, `10m`, `1h30m`, `500ms`, or a bare number of seconds.
  static func parseDuration(_ text: String) -> Duration? {
    let s = text.trimmingCharacters(in: .whitespaces).lowercased()
    if let seconds = Int(s) { return seconds > 0 ? .seconds(seconds) : nil }
    var total = Duration.zero
    var number = ""
    var unit = ""
    var parts: [(Int, String)] = []
    for c in s {
      if c.isNumber {
        if !unit.isEmpty {
          guard let n = Int(number) else { return nil }
          parts.append((n, unit))
          number = ""
          unit = ""
        }
        number.append(c)
      } else if c.isLetter {
        guard !number.isEmpty else { return nil }
        unit.append(c)
      } else {
        return nil
      }
    }
    guard let n = Int(number), !unit.isEmpty else { return nil }
    parts.append((n, unit))
    for (n, unit) in parts {
      switch unit {
      case "ms": total += .milliseconds(n)
      case "s": total += .seconds(n)
      case "m", "min": total += .seconds(n * 60)
      case "h": total += .seconds(n * 3600)
      default: return nil
      }
    }
    return total > .zero ? total : nil
  }

  static func isIdentifier(_ s: String) -> Bool {
    guard let first = s.unicodeScalars.first, ("a"..."z").contains(first) || ("0"..."9").contains(first) else {
      return false
    }
    return s.unicodeScalars.allSatisfy {
      ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_"
    }
  }

  static func isLanguageCode(_ s: String) -> Bool {
    let parts = s.split(separator: "-", omittingEmptySubsequences: false)
    guard let first = parts.first, (2...3).contains(first.count), first.allSatisfy({ $0.isASCII && $0.isLetter })
    else { return false }
    return parts.dropFirst().allSatisfy {
      (2...8).contains($0.count) && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
    }
  }

  // MARK: Pipeline

  mutating func readPipeline(_ root: Node) -> Pipeline? {
    let stepKeyHint = Dictionary(
      uniqueKeysWithValues: Self.stepKeys.filter { !Self.topKeys.contains($0) }.map {
        ($0, "into a step under `steps`")
      })
    let matchKeyHint = Dictionary(uniqueKeysWithValues: Self.matchKeys.map { ($0, "under `match`") })
    guard
      let top = pairs(
        root, allowed: Self.topKeys, context: "the pipeline", elsewhere: stepKeyHint.merging(matchKeyHint) { a, _ in a }
      )
    else { return nil }
    let start = root.mark
    var ok = true

    var name: String?
    if let (_, node) = top["name"] {
      if let value = string(node, key: "name") {
        if Self.isIdentifier(value) {
          name = value
          nameInfo = (value, node.mark?.line ?? 0, node.mark?.column ?? 0)
        } else {
          report(
            at: node,
            "pipeline name `\(value)` may only contain a-z, 0-9, `-` and `_`, starting with a letter or digit",
            fix:
              "use something like `\(value.lowercased().map { $0.isLetter || $0.isNumber ? String($0) : "-" }.joined())`"
          )
        }
      }
    } else {
      report(mark: start, "the pipeline has no `name`", fix: "add `name: my-pipeline` (unique across files)")
    }

    var version: Int?
    if let (_, node) = top["version"] {
      version = int(node, key: "version", range: 1...1_000_000)
    } else {
      report(
        mark: start, "the pipeline has no `version`",
        fix: "add `version: 1`, and raise it whenever you change steps or prompts")
    }
    let description = top["description"].flatMap { string($0.value, key: "description", allowEmpty: true) } ?? ""
    let enabled = top["enabled"].map { bool($0.value, key: "enabled") } ?? true

    // Schedule block.
    var schedule: PipelineSchedule?
    var scheduleOK = true
    if let (_, node) = top["schedule"] {
      schedule = readSchedule(node, top: top, start: start)
      scheduleOK = schedule != nil
    } else {
      for key in Self.scheduleOnlyKeys {
        if let (keyNode, _) = top[key] {
          report(
            at: keyNode, "`\(key)` is only used by scheduled pipelines",
            fix: "add a `schedule` (cron), or remove `\(key)`")
          ok = false
        }
      }
    }

    // Match.
    var explicitKinds: (Set<DocumentKind>, Node)?
    var sets: [Glob] = []
    var glob: Glob?
    if let (_, node) = top["match"], let m = pairs(node, allowed: Self.matchKeys, context: "`match`") {
      if let (_, kindsNode) = m["kinds"], let items = stringList(kindsNode, key: "kinds") {
        var kinds = Set<DocumentKind>()
        for (item, itemNode) in items {
          if let kind = DocumentKind(rawValue: item.lowercased()) {
            kinds.insert(kind)
          } else {
            let suggestion = Self.suggest(item, among: DocumentKind.allCases.map(\.rawValue))
            report(
              at: itemNode, "unknown document kind `\(item)`",
              fix: suggestion.map { "did you mean `\($0)`?" } ?? "use `image` or `text`")
            ok = false
          }
        }
        explicitKinds = (kinds, kindsNode)
      }
      if let (_, setsNode) = m["sets"], let items = stringList(setsNode, key: "sets") {
        for (item, itemNode) in items {
          do { sets.append(try Glob(item)) } catch {
            report(at: itemNode, "\(error)", fix: "close the `[` or escape it as `\\[`")
            ok = false
          }
        }
      }
      if let (_, globNode) = m["glob"], let text = string(globNode, key: "glob") {
        do { glob = try Glob(text) } catch {
          report(at: globNode, "\(error)", fix: "close the `[` or escape it as `\\[`")
          ok = false
        }
      }
    }

    // Steps.
    var steps: [PipelineStep] = []
    var stepsOK = true
    if let (_, node) = top["steps"] {
      if case .sequence(let sequence) = node {
        if sequence.count == 0 {
          report(at: node, "`steps` is empty", fix: "add at least one step, e.g. `- {id: summary, task: summarize}`")
          stepsOK = false
        }
        var stepLines: [String: Int] = [:]
        var stepNodes: [Node] = []
        for item in sequence {
          if case .mapping(let m) = item, let idNode = m["id"], let id = idNode.string, allStepLines[id] == nil {
            allStepLines[id] = idNode.mark?.line ?? 0
          }
        }
        for item in sequence {
          if let step = readStep(item, earlier: steps, stepLines: stepLines) {
            steps.append(step)
            stepLines[step.id] = item.mark?.line ?? 0
            stepNodes.append(item)
          } else {
            stepsOK = false
          }
        }
        if stepsOK {
          stepsOK = checkKinds(steps: steps, stepNodes: stepNodes, explicitKinds: explicitKinds)
        }
      } else {
        report(
          at: node, "`steps` must be a list of steps, found \(Self.kindName(node))", fix: "write each step as `- id: …`"
        )
        stepsOK = false
      }
    } else {
      report(mark: start, "the pipeline has no `steps`", fix: "add a `steps:` list with at least one step")
      stepsOK = false
    }

    guard ok, stepsOK, scheduleOK, let name, let version, let enabled, diagnostics.isEmpty else { return nil }
    let kinds = explicitKinds?.0 ?? Self.inferredKinds(steps)
    return Pipeline(
      name: name, version: version, description: description, isEnabled: enabled,
      match: DocumentMatch(kinds: kinds, sets: sets, glob: glob), steps: steps, schedule: schedule, sourceFile: file)
  }

  /// Without `match.kinds`, a pipeline whose steps read images (caption, OCR, or text from OCR) matches images;
  /// otherwise text documents.
  static func inferredKinds(_ steps: [PipelineStep]) -> Set<DocumentKind> {
    steps.contains { $0.task.readsImage } ? [.image] : [.text]
  }

  mutating func checkKinds(
    steps: [PipelineStep], stepNodes: [Node], explicitKinds: (Set<DocumentKind>, Node)?
  ) -> Bool {
    let kinds = explicitKinds?.0 ?? Self.inferredKinds(steps)
    var ok = true
    for (step, node) in zip(steps, stepNodes) {
      if step.task.readsImage && kinds.contains(.text) {
        report(
          at: explicitKinds?.1 ?? node,
          "step `\(step.id)` (\(step.task.rawValue)) needs an image, but the pipeline also matches text documents",
          fix: "set `match: {kinds: [image]}`, or move text steps into their own pipeline")
        ok = false
      }
      if step.input == .document && kinds.contains(.image) {
        report(
          at: node,
          "step `\(step.id)` reads `input: document`, but images have no text of their own",
          fix: "read the OCR text with `input: ocr` (after an `ocr` step), or match only `kinds: [text]`")
        ok = false
      }
    }
    return ok
  }

  mutating func readStep(_ node: Node, earlier: [PipelineStep], stepLines: [String: Int]) -> PipelineStep? {
    let topHint = Dictionary(
      uniqueKeysWithValues: Self.topKeys.filter { !Self.stepKeys.contains($0) }.map {
        ($0, "to the top level of the pipeline")
      })
    guard let p = pairs(node, allowed: Self.stepKeys, context: "a step", elsewhere: topHint) else { return nil }
    let before = diagnostics.count

    var id: String?
    if let (_, idNode) = p["id"], let value = string(idNode, key: "id") {
      if !Self.isIdentifier(value) {
        report(at: idNode, "step id `\(value)` may only contain a-z, 0-9, `-` and `_`")
      } else if Self.reservedStepIds.contains(value) {
        report(at: idNode, "`\(value)` is reserved for `input`", fix: "name the step something else")
      } else if let line = allStepLines[value], line != idNode.mark?.line {
        report(
          at: idNode, "step id `\(value)` is already used by the step at line \(line)",
          fix: "give each step a unique `id`")
      } else {
        id = value
      }
    } else if p["id"] == nil {
      report(at: node, "the step has no `id`", fix: "add `id: <name>`; results record it")
    }

    var task: StepTask?
    if let (_, taskNode) = p["task"], let value = string(taskNode, key: "task") {
      if let t = StepTask(rawValue: value.lowercased()) {
        task = t
      } else {
        let names = StepTask.allCases.map(\.rawValue)
        report(
          at: taskNode, "unknown task `\(value)`",
          fix: Self.suggest(value, among: names).map { "did you mean `\($0)`?" }
            ?? "use one of \(names.map { "`\($0)`" }.joined(separator: ", "))")
      }
    } else if p["task"] == nil {
      report(at: node, "the step has no `task`", fix: "add `task: caption`, `ocr`, `summarize` or `translate`")
    }
    if id == "ocr", let task, task != .ocr {
      report(
        at: p["id"]?.value ?? node, "step id `ocr` is reserved for an `ocr` step", fix: "name the step something else")
      id = nil
    }

    // Input.
    var input: StepInput?
    if let (_, inputNode) = p["input"], let value = string(inputNode, key: "input") {
      if let task, task.readsImage {
        report(at: inputNode, "a \(task.rawValue) step reads the image itself", fix: "remove `input`")
      } else if value == "document" {
        input = .document
      } else if value == "ocr" {
        if earlier.contains(where: { $0.task == .ocr }) {
          input = .ocr
        } else {
          report(
            at: inputNode, "`input: ocr` needs an `ocr` step earlier in the pipeline",
            fix: "add `- {id: ocr, task: ocr}` above this step")
        }
      } else if let source = earlier.first(where: { $0.id == value }) {
        if source.task == .translate && source.languages.count > 1 {
          report(
            at: inputNode,
            "step `\(value)` produces one text per language (\(source.languages.joined(separator: ", ")))",
            fix: "read the text it translated instead, or split it into one translate step per language")
        } else {
          input = .step(value)
        }
      } else if value == id {
        report(at: inputNode, "a step cannot read its own output", fix: "use `document`, `ocr` or an earlier step id")
      } else {
        if let line = allStepLines[value] {
          report(
            at: inputNode, "`input` names step `\(value)`, which comes later (line \(line))",
            fix: "steps run in order; move `\(value)` above this step")
        } else {
          let candidates = ["document", "ocr"] + earlier.map(\.id)
          report(
            at: inputNode, "`input` names an unknown step `\(value)`",
            fix: Self.suggest(value, among: candidates).map { "did you mean `\($0)`?" }
              ?? "use `document`, `ocr` or the id of an earlier step (\(earlier.map(\.id).joined(separator: ", ")))")
        }
      }
    }

    // Languages.
    var languages: [String] = []
    if let (toKey, toNode) = p["to"] {
      if let task, task != .translate {
        report(at: toKey, "`to` is only used by translate steps", fix: "remove `to`, or make the task `translate`")
      } else if let items = stringList(toNode, key: "to") {
        for (code, itemNode) in items {
          if !Self.isLanguageCode(code) {
            report(
              at: itemNode, "`\(code)` is not a language code", fix: "use a BCP 47 code such as `de`, `ja`, `pt-BR`")
          } else if languages.contains(code) {
            report(at: itemNode, "language `\(code)` is listed twice", fix: "remove the repeat")
          } else {
            languages.append(code)
          }
        }
      }
    } else if task == .translate {
      report(
        at: p["task"]?.key ?? node, "a translate step needs `to`",
        fix: "add `to: [de, ja]` (one or more language codes)")
    }

    // Prompt.
    var prompt: String?
    if let (_, promptNode) = p["prompt"], let value = string(promptNode, key: "prompt") {
      prompt = value
      if let task { checkPrompt(value, task: task, node: promptNode) }
    }

    // Glossary (translate only): source term → translation, or source term → {language: translation}.
    var glossary: [GlossaryTerm] = []
    if let (glossaryKey, glossaryNode) = p["glossary"] {
      if let task, task != .translate {
        report(
          at: glossaryKey, "`glossary` is only used by translate steps", fix: "remove `glossary`, or make the task `translate`")
      } else {
        glossary = parseGlossary(glossaryNode, languages: languages)
      }
    }

    // Options.
    var options = task.map(GenerationOptions.defaults(for:)) ?? GenerationOptions(maxTokens: 512, temperature: 0)
    if let (_, n) = p["max_tokens"], let v = int(n, key: "max_tokens", range: 1...32_768) { options.maxTokens = v }
    if let (_, n) = p["temperature"], let v = double(n, key: "temperature", range: 0...2) { options.temperature = v }
    if let (_, n) = p["thinking"], let v = bool(n, key: "thinking") { options.thinking = v }
    var timeout: Duration?
    if let (_, n) = p["timeout"] {
      let text: String? =
        if case .scalar(let s) = n { s.string } else { nil }
      if let text, let d = Self.parseDuration(text) {
        if d > .seconds(86_400) {
          report(at: n, "`timeout` \(text) is longer than a day", fix: "use at most `24h`")
        } else {
          timeout = d
        }
      } else {
        report(at: n, "`timeout` must be a duration such as `120s`, `10m` or `1h30m`, found \(Self.kindName(n))")
      }
    }

    guard diagnostics.count == before, let id, let task else { return nil }
    return PipelineStep(
      id: id, task: task, prompt: prompt, input: input, languages: languages, options: options, timeout: timeout,
      glossary: glossary)
  }

  /// Reads a step's `glossary:` mapping. A value is either one translation for every target language or a mapping
  /// from language code to translation (languages the step does not translate into are reported).
  mutating func parseGlossary(_ node: Node, languages: [String]) -> [GlossaryTerm] {
    guard case .mapping(let mapping) = node else {
      report(
        at: node, "`glossary` must be a mapping of source terms to translations, found \(Self.kindName(node))",
        fix: "write `glossary: {Vertrag: contract}` or one `term: translation` per line")
      return []
    }
    var terms: [GlossaryTerm] = []
    for (keyNode, valueNode) in mapping {
      guard let source = string(keyNode, key: "glossary term"), !source.isEmpty else { continue }
      if terms.contains(where: { $0.source == source }) {
        report(at: keyNode, "glossary term `\(source)` is listed twice", fix: "remove the repeat")
        continue
      }
      switch valueNode {
      case .mapping(let byLanguage):
        var translations: [String: String] = [:]
        for (languageNode, translationNode) in byLanguage {
          guard let language = string(languageNode, key: "glossary language"),
            let translation = string(translationNode, key: "glossary translation")
          else { continue }
          if !languages.contains(language) {
            report(
              at: languageNode, "glossary term `\(source)` names `\(language)`, which this step does not translate into",
              fix: "use one of \(languages.joined(separator: ", ")), or add `\(language)` to `to`")
          } else {
            translations[language] = translation
          }
        }
        terms.append(GlossaryTerm(source: source, translations: translations))
      default:
        guard let translation = string(valueNode, key: "glossary translation") else { continue }
        terms.append(GlossaryTerm(source: source, translation: translation))
      }
    }
    return terms
  }

  mutating func checkPrompt(_ prompt: String, task: StepTask, node: Node) {
    var names: [String] = []
    var rest = Substring(prompt)
    while let open = rest.firstIndex(of: "{") {
      let after = rest[rest.index(after: open)...]
      guard let close = after.firstIndex(of: "}") else { break }
      let name = String(after[..<close])
      if !name.isEmpty && name.allSatisfy({ $0.isLetter || $0 == "_" }) { names.append(name) }
      rest = after[after.index(after: close)...]
    }
    for name in names where !DefaultPrompts.placeholders.contains(name) {
      report(
        at: node, "unknown placeholder `{\(name)}` in the prompt",
        fix: Self.suggest(name, among: Array(DefaultPrompts.placeholders)).map { "did you mean `{\($0)}`?" }
          ?? "available placeholders: `{language}` (translate) and `{text}`")
    }
    if task.readsImage {
      for name in names where DefaultPrompts.placeholders.contains(name) {
        report(
          at: node, "a \(task.rawValue) prompt is sent with the image; `{\(name)}` has nothing to fill it",
          fix: "remove `{\(name)}`")
      }
    }
    if task == .summarize && names.contains("language") {
      report(at: node, "`{language}` is only filled for translate steps", fix: "write the language into the prompt")
    }
    if task == .translate && !names.contains("language") {
      report(
        at: node, "a translate prompt must say which language to produce",
        fix: "include `{language}`, e.g. \"Translate into {language}: {text}\"")
    }
  }

  mutating func readSchedule(
    _ node: Node, top: [String: (key: Node, value: Node)], start: Mark?
  ) -> PipelineSchedule? {
    let before = diagnostics.count
    var cron: CronExpression?
    if let text = string(node, key: "schedule") {
      do {
        let expression = try CronExpression(parsing: text)
        // 2001-01-01 is arbitrary: any start shows whether the expression ever fires within eight years.
        if expression.next(after: Date(timeIntervalSinceReferenceDate: 0), in: TimeZone(identifier: "UTC") ?? .current)
          == nil
        {
          report(at: node, "cron `\(text)` never fires (no such date)", fix: "check the day-of-month and month fields")
        } else {
          cron = expression
        }
      } catch {
        report(
          at: node, error.message, fix: "write 5 fields: minute hour day-of-month month day-of-week, e.g. `0 2 * * *`")
      }
    }
    var timeZone = TimeZone(identifier: "UTC") ?? .current
    if let (_, n) = top["time_zone"], let name = string(n, key: "time_zone") {
      if name.lowercased() == "local" {
        timeZone = .current
      } else if let tz = TimeZone(identifier: name) {
        timeZone = tz
      } else {
        report(at: n, "unknown time zone `\(name)`", fix: "use `UTC`, `local`, or an IANA name such as `Europe/Berlin`")
      }
    }
    var targetSet: String?
    if let (_, n) = top["target_set"] {
      targetSet = string(n, key: "target_set")
    } else {
      report(
        at: node, "a scheduled pipeline needs `target_set`",
        fix: "add `target_set: <document set>` (an inbox subfolder name)")
    }
    var overlap = OverlapPolicy.skip
    if let (_, n) = top["overlap"], let v = string(n, key: "overlap") {
      if let o = OverlapPolicy(rawValue: v) {
        overlap = o
      } else {
        report(
          at: n, "unknown overlap policy `\(v)`",
          fix: Self.suggest(v, among: ["skip", "queue"]).map { "did you mean `\($0)`?" } ?? "use `skip` or `queue`")
      }
    }
    var missed = MissedRunPolicy.runOnce
    var cap = MissedRunPolicy.defaultRunAllCap
    if let (_, n) = top["max_missed_runs"], let v = int(n, key: "max_missed_runs", range: 1...1000) { cap = v }
    if let (_, n) = top["missed"], let v = string(n, key: "missed") {
      switch v {
      case "skip": missed = .skip
      case "run_once": missed = .runOnce
      case "run_all": missed = .runAll(cap: cap)
      default:
        report(
          at: n, "unknown missed-run policy `\(v)`",
          fix: Self.suggest(v, among: ["skip", "run_once", "run_all"]).map { "did you mean `\($0)`?" }
            ?? "use `skip`, `run_once` or `run_all`")
      }
    }
    if let (k, _) = top["max_missed_runs"], !(top["missed"].flatMap { $0.value.string } == "run_all") {
      report(at: k, "`max_missed_runs` is only used with `missed: run_all`", fix: "remove it, or set `missed: run_all`")
    }
    guard diagnostics.count == before, let cron, let targetSet else { return nil }
    return PipelineSchedule(cron: cron, timeZone: timeZone, targetSet: targetSet, overlap: overlap, missed: missed)
  }
}
