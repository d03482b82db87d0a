import ArgumentParser
import FolioBase
import FolioDaemon
import Foundation
import Logging

/// The settings every daemon-side command understands. Each flag overrides `folio.yaml` and `FOLIO_*` (see
/// `DaemonConfiguration.keys`); unset flags leave those in charge.
struct ConfigurationOptions: ParsableArguments {
  @Option(name: .long, help: "The folio.yaml to read (default: $FOLIO_CONFIG, ./folio.yaml, then <home>/folio.yaml).")
  var config: String?

  @Option(name: .long, help: "Folio's data folder; the other paths default inside it (default ~/Folio).")
  var home: String?

  @Option(name: .long, help: "The watched inbox folder (default <home>/inbox).")
  var inbox: String?

  @Option(name: .long, help: "Work area for claimed files (default <inbox>/.folio-work).")
  var work: String?

  @Option(name: .long, help: "Where originals go after success with --on-success move (default <home>/processed).")
  var processed: String?

  @Option(name: .long, help: "Where originals go after failure with --on-failure move (default <home>/failed).")
  var failed: String?

  @Option(name: .long, help: "Folio's managed copies (default <home>/store).")
  var store: String?

  @Option(name: .long, help: "The SQLite database (default <home>/folio.sqlite).")
  var database: String?

  @Option(name: .long, help: "The folder of pipeline YAML files (default <home>/pipelines).")
  var pipelines: String?

  @Option(name: .long, help: "Model folder, Hugging Face cache entry, model id, or auto (default auto).")
  var model: String?

  @Flag(name: .long, help: "Allow the bundled random-weight test model when no model is found (it says so).")
  var allowTestModel = false

  @Option(name: .long, help: "Compute threads (default: all cores).")
  var threads: String?

  @Option(name: .long, help: "Duplicate policy: reject, link or allow (default reject).")
  var duplicates: String?

  @Option(name: .long, help: "After success: keep, move or leave (default move).")
  var onSuccess: String?

  @Option(name: .long, help: "After failure: keep, move or leave (default move).")
  var onFailure: String?

  @Option(name: .long, help: "native (inotify) or polling (network file systems) (default native).")
  var watch: String?

  @Option(name: .long, help: "Quiet time before a file is taken, e.g. 5s (default 5s).")
  var stabilityWindow: String?

  @Option(name: .long, help: "Scan interval in polling mode (default 5s).")
  var pollInterval: String?

  @Option(name: .long, help: "Full rescan interval (default 300s).")
  var rescanInterval: String?

  @Option(name: .long, help: "Largest accepted file, e.g. 200MB (default 128MiB).")
  var maxFileBytes: String?

  @Option(name: .long, help: "Largest accepted image in pixels (default 67108864).")
  var maxPixels: String?

  @Option(name: .long, help: "Jobs at once on the model (default 1).")
  var concurrency: String?

  @Option(name: .long, help: "Job lease without a heartbeat (default 60s).")
  var leaseDuration: String?

  @Option(name: .long, help: "Attempts before a job fails for good (default 3).")
  var maxAttempts: String?

  @Option(name: .long, help: "Most tokens per text segment (default 1024).")
  var segmentTokens: String?

  @Option(name: .long, help: "Cap on every step's timeout (default 1h).")
  var maxStepTimeout: String?

  @Option(name: .long, help: "Time a running job gets to finish at SIGTERM before it is checkpointed (default 30s).")
  var shutdownGrace: String?

  @Option(
    name: .long,
    help: "Idle time before the model is unloaded: 5m, 0 (when the queue drains), forever or =-1 (default 30m).")
  var keepAlive: String?

  @Option(name: .long, help: "Most jobs waiting in the queue; beyond it new files stay in the inbox (default 10000).")
  var maxQueuedJobs: String?

  @Option(name: .long, help: "Log format: text or json (default text).")
  var logFormat: String?

  @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error (default info).")
  var logLevel: String?

  /// The flags given, by configuration key.
  var overrides: [String: String] {
    var values: [String: String] = [:]
    let pairs: [(String, String?)] = [
      ("home", home), ("inbox", inbox), ("work", work), ("processed", processed), ("failed", failed),
      ("store", store), ("database", database), ("pipelines", pipelines), ("model", model), ("threads", threads),
      ("duplicates", duplicates), ("on_success", onSuccess), ("on_failure", onFailure), ("watch", watch),
      ("stability_window", stabilityWindow), ("poll_interval", pollInterval), ("rescan_interval", rescanInterval),
      ("max_file_bytes", maxFileBytes), ("max_pixels", maxPixels), ("concurrency", concurrency),
      ("lease_duration", leaseDuration), ("max_attempts", maxAttempts), ("segment_tokens", segmentTokens),
      ("max_step_timeout", maxStepTimeout), ("shutdown_grace", shutdownGrace), ("log_format", logFormat),
      ("log_level", logLevel), ("keep_alive", keepAlive), ("max_queued_jobs", maxQueuedJobs),
    ]
    for (key, value) in pairs { if let value { values[key] = value } }
    if allowTestModel { values["allow_test_model"] = "true" }
    return values
  }

  /// The resolved configuration.
  func resolve() throws -> DaemonConfiguration {
    try DaemonConfiguration.load(configFile: config, overrides: overrides)
  }
}

/// Sets up line-buffered structured logging once per process.
enum LogSetup {
  nonisolated(unsafe) private static var done = false

  static func bootstrap(_ configuration: DaemonConfiguration) -> Logger {
    if !done {
      done = true
      let level = configuration.logLevel
      let format = configuration.logFormat
      LoggingSystem.bootstrap { label in LineLogHandler(label: label, level: level, format: format) }
    }
    return Logger(label: "folio")
  }
}
