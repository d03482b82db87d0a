import FolioBase
import FolioCodecs
import FolioInbox
import FolioStore
import Foundation
import Logging
import Yams

/// Everything the daemon and the commands need to know, resolved from (lowest to highest precedence) built-in
/// defaults, `folio.yaml`, `FOLIO_*` environment variables and command-line flags.
///
/// Keys are snake_case in `folio.yaml` (`max_file_bytes`), upper-case with a `FOLIO_` prefix in the environment
/// (`FOLIO_MAX_FILE_BYTES`) and kebab-case as flags (`--max-file-bytes`). Relative paths in `folio.yaml` are read
/// from the file's folder; relative paths from the environment or flags from the current directory.
public struct DaemonConfiguration: Sendable {
  /// How log lines are written.
  public enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-05-01T10:00:00.123Z info  message key=value` — one line per event.
    case text
    /// One JSON object per line.
    case json
  }

  /// Folio's data folder; the other locations default to folders in it.
  public var home: String
  /// The watched inbox.
  public var inbox: String
  /// Where claimed files wait while their jobs run (default `<inbox>/.folio-work`, same file system as the inbox).
  public var work: String
  /// Where originals go after success under the `move` disposition.
  public var processed: String
  /// Where originals go after failure under the `move` disposition (with `<name>.error.json`).
  public var failed: String
  /// Folio's managed copies (the `keep` disposition, and files given to `folio add`).
  public var store: String
  /// The SQLite database file.
  public var database: String
  /// The folder of `*.yaml` pipeline definitions.
  public var pipelines: String
  /// A model folder, Hugging Face cache entry, model id, or `auto` (the first Qwen3.5 found in the local cache).
  public var model: String
  /// Whether the bundled random-weight test model may stand in when no model is found (never silently).
  public var allowTestModel: Bool
  /// Compute threads (nil: every core).
  public var threads: Int?
  /// What to do with a file whose SHA-256 is already recorded.
  public var duplicatePolicy: DuplicatePolicy
  /// Where originals go after success and failure.
  public var disposition: DispositionPolicy
  /// Native events or polling.
  public var watchMode: InboxWatcher.Mode
  /// How long a file must stay unchanged before it is taken.
  public var stabilityWindow: Duration
  /// How often polling mode scans.
  public var pollInterval: Duration
  /// How often the whole inbox is rescanned as a safety net.
  public var rescanInterval: Duration
  /// Files larger than this are refused at intake.
  public var maxFileBytes: Int64
  /// Images with more pixels than this (read from the header) are refused at intake.
  public var maxPixels: Int
  /// Jobs run at once on the loaded model.
  public var concurrency: Int
  /// How long a claimed job stays leased without a heartbeat.
  public var leaseDuration: Duration
  /// Attempts before a job fails permanently.
  public var maxAttempts: Int
  /// The most tokens in one segment of a long text (each segment is one model request).
  public var segmentTokens: Int
  /// Global cap on any step's timeout.
  public var maxStepTimeout: Duration
  /// How long a running job may take to finish after SIGTERM/SIGINT before it is checkpointed and requeued.
  public var shutdownGrace: Duration
  /// How long the model stays loaded without work before it is unloaded (nil: never; zero: as soon as the queue
  /// drains). It is loaded again for the next job.
  public var keepAlive: Duration?
  /// The most jobs waiting in the queue; beyond it intake refuses new documents (`queue_full`) until it drains.
  public var maxQueuedJobs: Int
  /// Log line format.
  public var logFormat: LogFormat
  /// Lowest level logged.
  public var logLevel: Logger.Level
  /// Names the inbox never takes.
  public var ignorePatterns: [String]
  /// The `folio.yaml` that was read, if any.
  public var configFile: String?
  /// For each key, where its value came from: `default`, the config file path, `FOLIO_…`, or `--flag`.
  public var sources: [String: String]

  /// The inbox layout these settings describe.
  public var layout: InboxLayout {
    InboxLayout(
      inbox: inbox, work: work, processed: processed, failed: failed, store: store, database: database,
      pipelines: pipelines)
  }

  /// The watcher settings.
  public func watcherConfiguration(once: Bool) -> InboxWatcher.Configuration {
    InboxWatcher.Configuration(
      mode: watchMode, stabilityWindow: stabilityWindow, pollInterval: pollInterval, rescanInterval: rescanInterval,
      ignore: IgnoreRules(patterns: ignorePatterns), stopsWhenIdle: once)
  }

  /// The keys understood in `folio.yaml`, `FOLIO_*` and flags, with a one-line description (for errors and docs).
  public static let keys: [(key: String, help: String)] = [
    ("home", "data folder; other paths default inside it (default ~/Folio)"),
    ("inbox", "watched folder (default <home>/inbox)"),
    ("work", "work area for claimed files (default <inbox>/.folio-work)"),
    ("processed", "originals after success, disposition move (default <home>/processed)"),
    ("failed", "originals after failure with .error.json, disposition move (default <home>/failed)"),
    ("store", "managed copies: disposition keep and folio add (default <home>/store)"),
    ("database", "SQLite file (default <home>/folio.sqlite)"),
    ("pipelines", "folder of pipeline YAML files (default <home>/pipelines)"),
    ("model", "model folder, HF cache entry, model id, or auto (default auto)"),
    ("allow_test_model", "use the bundled random-weight test model when no model is found (default false)"),
    ("threads", "compute threads (default: all cores)"),
    ("duplicates", "reject | link | allow (default reject)"),
    ("on_success", "keep | move | leave (default move)"),
    ("on_failure", "keep | move | leave (default move)"),
    ("watch", "native | polling (default native)"),
    ("stability_window", "quiet time before a file is taken (default 5s)"),
    ("poll_interval", "scan interval in polling mode (default 5s)"),
    ("rescan_interval", "full rescan safety net (default 300s)"),
    ("max_file_bytes", "largest accepted file (default 128MiB)"),
    ("max_pixels", "largest accepted image, width x height (default 67108864 = 64Mi)"),
    ("concurrency", "jobs at once on the model (default 1)"),
    ("lease_duration", "job lease without heartbeat (default 60s)"),
    ("max_attempts", "attempts before a job fails for good (default 3)"),
    ("segment_tokens", "most tokens per text segment (default 1024)"),
    ("max_step_timeout", "cap on every step's timeout (default 1h)"),
    ("shutdown_grace", "time a running job gets to finish at SIGTERM (default 30s)"),
    ("keep_alive", "idle time before the model is unloaded: 5m, 0 = when the queue drains, -1/forever = never (default 30m)"),
    ("max_queued_jobs", "most jobs waiting; beyond it new files stay in the inbox (queue_full) (default 10000)"),
    ("log_format", "text | json (default text)"),
    ("log_level", "trace | debug | info | notice | warning | error (default info)"),
    ("ignore", "list of names never taken (default *.part *.filepart *.crdownload *.tmp ~$* .*)"),
  ]

  /// The environment variable for a key: `max_file_bytes` → `FOLIO_MAX_FILE_BYTES`.
  public static func environmentName(_ key: String) -> String { "FOLIO_" + key.uppercased() }

  /// The flag for a key: `max_file_bytes` → `--max-file-bytes`.
  public static func flagName(_ key: String) -> String { "--" + key.replacingOccurrences(of: "_", with: "-") }

  /// Resolves the configuration.
  ///
  /// - Parameters:
  ///   - configFile: an explicit `folio.yaml` (`--config`); otherwise `FOLIO_CONFIG`, then `./folio.yaml`, then
  ///     `<home>/folio.yaml` are tried.
  ///   - overrides: flag values by key (snake_case), highest precedence.
  /// - Throws: ``FolioError/Code/invalidConfiguration`` naming the key, the value and where it came from.
  public static func load(
    configFile: String? = nil, overrides: [String: String] = [:],
    environment: [String: String] = ProcessInfo.processInfo.environment,
    currentDirectory: String = FileManager.default.currentDirectoryPath
  ) throws(FolioError) -> DaemonConfiguration {
    var values: [String: (value: String, source: String, base: String)] = [:]
    let known = Set(keys.map(\.key))
    func absolute(_ path: String, base: String) -> String {
      let expanded = (path as NSString).expandingTildeInPath
      return PathNames.standardized(expanded, base: base)
    }
    // Environment and flags first (they may name the home that holds folio.yaml).
    var environmentValues: [String: (String, String)] = [:]
    for key in known {
      if let value = environment[environmentName(key)], !value.isEmpty {
        environmentValues[key] = (value, environmentName(key))
      }
    }
    for key in overrides.keys where !known.contains(key) {
      throw FolioError(.invalidConfiguration, "unknown setting `\(key)`; known settings: \(keys.map(\.key).joined(separator: ", "))")
    }

    var file = configFile.map { absolute($0, base: currentDirectory) }
    if file == nil, let fromEnvironment = environment["FOLIO_CONFIG"], !fromEnvironment.isEmpty {
      file = absolute(fromEnvironment, base: currentDirectory)
    }
    if file == nil {
      let local = absolute("folio.yaml", base: currentDirectory)
      if FileManager.default.fileExists(atPath: local) {
        file = local
      } else {
        let homeGuess = overrides["home"] ?? environmentValues["home"]?.0 ?? "~/Folio"
        let inHome = absolute("folio.yaml", base: absolute(homeGuess, base: currentDirectory))
        if FileManager.default.fileExists(atPath: inHome) { file = inHome }
      }
    }
    if let file {
      let folder = (file as NSString).deletingLastPathComponent
      for (key, value) in try readFile(file) {
        guard known.contains(key) else {
          throw FolioError(
            .invalidConfiguration,
            "\(file): unknown setting `\(key)`; known settings: \(keys.map(\.key).joined(separator: ", "))")
        }
        values[key] = (value, file, folder)
      }
    } else if configFile != nil {
      throw FolioError(.invalidConfiguration, "the configuration file \(configFile ?? "") does not exist")
    }
    for (key, (value, source)) in environmentValues { values[key] = (value, source, currentDirectory) }
    for (key, value) in overrides { values[key] = (value, flagName(key), currentDirectory) }

    var sources: [String: String] = [:]
    func raw(_ key: String) -> (value: String, source: String, base: String)? {
      if let entry = values[key] {
        sources[key] = entry.source
        return entry
      }
      sources[key] = "default"
      return nil
    }
    func invalid(_ key: String, _ entry: (value: String, source: String, base: String), _ expected: String) -> FolioError {
      FolioError(
        .invalidConfiguration,
        "\(key) = `\(entry.value)` (from \(entry.source)) is not valid: expected \(expected)")
    }
    func path(_ key: String, default fallback: String) -> String {
      guard let entry = raw(key) else { return fallback }
      return absolute(entry.value, base: entry.base)
    }
    func duration(_ key: String, default fallback: Duration) throws(FolioError) -> Duration {
      guard let entry = raw(key) else { return fallback }
      guard let parsed = parseDuration(entry.value) else { throw invalid(key, entry, "a duration such as 500ms, 5s, 10m or 1h") }
      return parsed
    }
    func integer(_ key: String, default fallback: Int, minimum: Int) throws(FolioError) -> Int {
      guard let entry = raw(key) else { return fallback }
      guard let parsed = Int(entry.value.replacingOccurrences(of: "_", with: "")), parsed >= minimum else {
        throw invalid(key, entry, "a whole number ≥ \(minimum)")
      }
      return parsed
    }
    func choice<T>(_ key: String, default fallback: T, _ options: [String: T]) throws(FolioError) -> T {
      guard let entry = raw(key) else { return fallback }
      guard let parsed = options[entry.value.lowercased()] else {
        throw invalid(key, entry, "one of \(options.keys.sorted().joined(separator: ", "))")
      }
      return parsed
    }
    func boolean(_ key: String, default fallback: Bool) throws(FolioError) -> Bool {
      try choice(key, default: fallback, ["true": true, "yes": true, "1": true, "on": true, "false": false, "no": false, "0": false, "off": false])
    }

    let home = path("home", default: absolute("~/Folio", base: currentDirectory))
    let inbox = path("inbox", default: (home as NSString).appendingPathComponent("inbox"))
    let dispositions: [String: Disposition] = ["keep": .keep, "move": .move, "leave": .leave]
    var configuration = DaemonConfiguration(
      home: home, inbox: inbox,
      work: path("work", default: (inbox as NSString).appendingPathComponent(".folio-work")),
      processed: path("processed", default: (home as NSString).appendingPathComponent("processed")),
      failed: path("failed", default: (home as NSString).appendingPathComponent("failed")),
      store: path("store", default: (home as NSString).appendingPathComponent("store")),
      database: path("database", default: (home as NSString).appendingPathComponent("folio.sqlite")),
      pipelines: path("pipelines", default: (home as NSString).appendingPathComponent("pipelines")),
      model: raw("model").map { entry in
        // A relative model folder is read from where it was written; ids and `auto` stay as they are.
        let candidate = absolute(entry.value, base: entry.base)
        return FileManager.default.fileExists(atPath: candidate) ? candidate : entry.value
      } ?? "auto",
      allowTestModel: try boolean("allow_test_model", default: false),
      threads: nil,
      duplicatePolicy: try choice("duplicates", default: .reject, ["reject": .reject, "link": .link, "allow": .allow]),
      disposition: DispositionPolicy(
        onSuccess: try choice("on_success", default: .move, dispositions),
        onFailure: try choice("on_failure", default: .move, dispositions)),
      watchMode: try choice("watch", default: .native, ["native": .native, "polling": .polling, "poll": .polling]),
      // Lessons row 1: a scanner's or browser's pauses between writes last seconds; 5 s is the inbox's default.
      stabilityWindow: try duration("stability_window", default: .seconds(5)),
      pollInterval: try duration("poll_interval", default: .seconds(5)),
      // Lessons row 2: paperless-ngx settled on a 300 s safety-net rescan (#13011).
      rescanInterval: try duration("rescan_interval", default: .seconds(300)),
      maxFileBytes: 0, maxPixels: 0,
      concurrency: try integer("concurrency", default: 1, minimum: 1),
      // Heartbeats come every third of the lease; 60 s lets a restarted daemon on another host recover a dead
      // worker's job within a minute, while a busy 2-core machine never misses three heartbeats in a row.
      leaseDuration: try duration("lease_duration", default: .seconds(60)),
      maxAttempts: try integer("max_attempts", default: 3, minimum: 1),
      // 1024 tokens: long enough for whole paragraphs, short enough that one request stays fast on 2 cores and a
      // translation request does not drop content (inbox-lessons, "Scheduled batch work": per-segment requests).
      segmentTokens: try integer("segment_tokens", default: 1024, minimum: 16),
      maxStepTimeout: try duration("max_step_timeout", default: .seconds(3600)),
      // systemd waits 90 s (TimeoutStopSec) before SIGKILL; 30 s leaves room to checkpoint and close.
      shutdownGrace: try duration("shutdown_grace", default: .seconds(30)),
      // Ollama's default keep-alive is 5 m; Folio's jobs arrive in bursts (a scanner batch, a nightly run), and a
      // reload costs seconds on 2 cores, so 30 m keeps the model through a batch and frees memory overnight.
      keepAlive: .seconds(1800),
      // 10 000 jobs: a large batch (thousands of files, a few jobs each) fits; beyond it the queue only grows
      // memory-free in SQLite but status and `folio jobs list` become unwieldy (inbox-lessons, "Model residency").
      maxQueuedJobs: try integer("max_queued_jobs", default: 10_000, minimum: 1),
      logFormat: try choice("log_format", default: .text, ["text": .text, "json": .json]),
      logLevel: try choice(
        "log_level", default: .info,
        ["trace": .trace, "debug": .debug, "info": .info, "notice": .notice, "warning": .warning, "error": .error]),
      ignorePatterns: IgnoreRules.defaultPatterns, configFile: file, sources: [:])
    if let entry = raw("threads") {
      guard let n = Int(entry.value), n >= 1 else { throw invalid("threads", entry, "a whole number ≥ 1") }
      configuration.threads = n
    }
    if let entry = raw("keep_alive") {
      guard let parsed = parseKeepAlive(entry.value) else {
        throw invalid("keep_alive", entry, "a duration such as 5m or 1h, 0 (unload when the queue drains), or -1/forever")
      }
      configuration.keepAlive = parsed
    }
    if let entry = raw("max_file_bytes") {
      guard let n = parseByteCount(entry.value), n >= 1 else {
        throw invalid("max_file_bytes", entry, "a size such as 1048576, 200MB or 1GiB")
      }
      configuration.maxFileBytes = n
    } else {
      configuration.maxFileBytes = Int64(ImageLimits.defaultMaxFileBytes)
    }
    // The image limits' defaults live in FolioCodecs (`ImageLimits`), the one place they are enforced.
    configuration.maxPixels = try integer("max_pixels", default: ImageLimits.defaultMaxPixels, minimum: 1)
    if let entry = raw("ignore") {
      configuration.ignorePatterns = entry.value.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }
    configuration.sources = sources
    return configuration
  }

  /// Reads `folio.yaml` into key → string (lists become newline-separated).
  static func readFile(_ path: String) throws(FolioError) -> [String: String] {
    let text: String
    do {
      text = try String(contentsOfFile: path, encoding: .utf8)
    } catch {
      throw FolioError(.invalidConfiguration, "cannot read the configuration file \(path)", cause: error)
    }
    let node: Any?
    do {
      node = try Yams.load(yaml: text)
    } catch {
      throw FolioError(.invalidConfiguration, "\(path) is not valid YAML: \(error)")
    }
    guard let node else { return [:] }
    guard let mapping = node as? [String: Any] else {
      throw FolioError(.invalidConfiguration, "\(path) must be a mapping of settings (key: value)")
    }
    var result: [String: String] = [:]
    for (key, value) in mapping {
      switch value {
      case let list as [Any]: result[key] = list.map { "\($0)" }.joined(separator: "\n")
      case is [String: Any]:
        throw FolioError(.invalidConfiguration, "\(path): `\(key)` must be a single value, not a mapping")
      default: result[key] = "\(value)"
      }
    }
    return result
  }

  /// `500ms`, `5s`, `10m`, `2h`, `1d`, or a plain number of seconds.
  public static func parseDuration(_ text: String) -> Duration? {
    let t = text.trimmingCharacters(in: .whitespaces).lowercased()
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
    for (suffix, scale) in units where t.hasSuffix(suffix) {
      if let v = Double(t.dropLast(suffix.count)), v >= 0, v.isFinite { return .milliseconds(Int64(v * scale * 1000)) }
    }
    if let v = Double(t), v >= 0, v.isFinite { return .milliseconds(Int64(v * 1000)) }
    return nil
  }

  /// `keep_alive` values: a duration or `0` (`.some(duration)`), `-1`/`forever`/`never` (`.some(nil)`: never
  /// unload); nil when the text is not valid.
  public static func parseKeepAlive(_ text: String) -> Duration?? {
    let t = text.trimmingCharacters(in: .whitespaces).lowercased()
    if ["-1", "forever", "never"].contains(t) { return .some(nil) }
    guard let parsed = parseDuration(t) else { return nil }
    return .some(parsed)
  }

  /// `1048576`, `200KB`, `200MB`, `1GB` (powers of 1000) or `KiB`/`MiB`/`GiB` (powers of 1024).
  public static func parseByteCount(_ text: String) -> Int64? {
    let t = text.trimmingCharacters(in: .whitespaces).uppercased().replacingOccurrences(of: "_", with: "")
    let units: [(String, Double)] = [
      ("KIB", 1024), ("MIB", 1_048_576), ("GIB", 1_073_741_824), ("KB", 1000), ("MB", 1e6), ("GB", 1e9), ("B", 1),
    ]
    for (suffix, scale) in units where t.hasSuffix(suffix) {
      if let v = Double(t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), v >= 0 {
        return Int64(v * scale)
      }
    }
    return Int64(t)
  }
}

extension Duration {
  /// Seconds as a `Double`.
  var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
