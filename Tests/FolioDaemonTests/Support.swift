import FolioBase
import FolioDaemon
import FolioStore
import Foundation
import Logging
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The package root (to find the fixture model and the shipped pipelines).
let packageRoot: URL = {
  var url = URL(fileURLWithPath: #filePath)
  while url.path != "/" {
    url.deleteLastPathComponent()
    if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { break }
  }
  return url
}()

let tinyModel = packageRoot.appendingPathComponent("Tests/Fixtures/models/tiny-dense").path

struct TestFailure: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// A fresh Folio home in /tmp: `inbox/`, `pipelines/` (given YAML files), database, removed at deinit.
final class TestHome: @unchecked Sendable {
  let path: String

  init(pipelines: [String: String] = ["documents.yaml": TestHome.cheapDocuments]) throws {
    var template = Array("/tmp/folio-daemon-test-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
    path = String(cString: made)
    try FileManager.default.createDirectory(atPath: self.pipelines, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
    for (name, yaml) in pipelines { try write(self.pipelines + "/" + name, yaml) }
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  var inbox: String { path + "/inbox" }
  var pipelines: String { path + "/pipelines" }
  var database: String { path + "/folio.sqlite" }
  var processed: String { path + "/processed" }
  var failed: String { path + "/failed" }

  /// A summarize pipeline for text with a tiny token budget (fast with the real engine).
  static let cheapDocuments = """
    name: documents
    version: 1
    match:
      kinds: [text]
    steps:
      - id: summary
        task: summarize
        max_tokens: 4
        temperature: 0
        timeout: 60s
    """

  /// Caption for images (fails with vision_unavailable on the real engine).
  static let cheapImages = """
    name: images
    version: 1
    match:
      kinds: [image]
    steps:
      - id: caption
        task: caption
        max_tokens: 4
        timeout: 60s
    """

  /// An inbox pipeline that translates every paragraph of a text into German, a few tokens each.
  static let paragraphTranslation = """
    name: translation
    version: 1
    match:
      kinds: [text]
    steps:
      - id: translate
        task: translate
        input: document
        to: [de]
        max_tokens: 48
        temperature: 0
        timeout: 300s
    """

  /// Settings for this home, plus overrides (keys as in folio.yaml).
  func configuration(_ overrides: [String: String] = [:]) throws -> DaemonConfiguration {
    var values = ["home": path, "pipelines": pipelines, "stability_window": "200ms", "poll_interval": "100ms"]
    values.merge(overrides) { $1 }
    return try DaemonConfiguration.load(
      configFile: nil, overrides: values, environment: [:], currentDirectory: path)
  }

  func store() throws -> Store { try Store.open(path: database) }
}

/// A ``StepRunner`` double: answers instantly with a description of the request; counts requests.
final class EchoRunner: StepRunner, @unchecked Sendable {
  let modelID = "test/echo"
  private let lock = NSLock()
  private var prompts: [String] = []
  let delay: Duration

  init(delay: Duration = .zero) { self.delay = delay }

  var requests: [String] { lock.withLock { prompts } }

  func countTokens(_ text: String) -> Int { max(1, text.utf8.count / 4) }

  func run(_ request: StepRequest) async throws -> StepOutput {
    lock.withLock { prompts.append(request.prompt) }
    if delay > .zero {
      let clock = ContinuousClock()
      let end = clock.now.advanced(by: delay)
      while clock.now < end {
        guard request.shouldContinue() else {
          return StepOutput(
            text: "", promptTokens: 1, completionTokens: 0, finishReason: "cancelled", promptDuration: .zero,
            generationDuration: .zero)
        }
        try await Task.sleep(for: .milliseconds(10))
      }
    }
    let last = request.prompt.split(separator: "\n").last.map(String.init) ?? ""
    return StepOutput(
      text: "\(request.task.rawValue): \(last.prefix(40))", promptTokens: countTokens(request.prompt),
      completionTokens: 3, finishReason: "stop", promptDuration: .milliseconds(1), generationDuration: .milliseconds(1))
  }
}

/// Collects log lines in memory (tests assert on what the daemon says).
final class LogCapture: @unchecked Sendable {
  private let lock = NSLock()
  private var captured: [String] = []
  var lines: [String] { lock.withLock { captured } }
  var text: String { lines.joined() }

  var logger: Logger {
    Logger(label: "folio-test") { label in
      LineLogHandler(label: label, level: .info, destination: .custom { [self] line in lock.withLock { captured.append(line) } })
    }
  }
}

/// Runs a daemon pass (`--once`) over the home with a runner double (or the real model when nil).
@discardableResult
func runOnce(
  _ home: TestHome, overrides: [String: String] = [:], runner: (any StepRunner)? = EchoRunner(),
  logs: LogCapture = LogCapture(), now: @escaping @Sendable () -> Date = { Date() }
) async throws -> DaemonRunReport {
  let configuration = try home.configuration(overrides)
  let daemon = try await Daemon.start(
    configuration: configuration, options: Daemon.Options(once: true, now: now), runner: runner, logger: logs.logger)
  return try await daemon.run()
}

/// Writes `bytes` to `path`, creating parent folders.
func write(_ path: String, _ bytes: [UInt8]) throws {
  let parent = (path as NSString).deletingLastPathComponent
  try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
  guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
    throw TestFailure("cannot write \(path)")
  }
}

func write(_ path: String, _ text: String) throws { try write(path, Array(text.utf8)) }

func exists(_ path: String) -> Bool {
  var st = stat()
  return lstat(path, &st) == 0
}

/// A valid 1×1 PNG.
let tinyPNG: [UInt8] = [
  0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
  0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49,
  0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x60, 0x60, 0x60, 0xF8, 0x0F, 0x00, 0x01, 0x04, 0x01, 0x00, 0x5F, 0x5D, 0x2D,
  0x0E, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
]

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws -> Bool {
  let clock = ContinuousClock()
  let end = clock.now.advanced(by: timeout)
  while clock.now < end {
    if try await condition() { return true }
    try await Task.sleep(for: .milliseconds(50))
  }
  return try await condition()
}
