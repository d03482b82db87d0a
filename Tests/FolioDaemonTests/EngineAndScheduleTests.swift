import FolioBase
import FolioDaemon
import FolioStore
import Foundation
import Testing

/// A wall clock the test moves by hand.
final class TestWallClock: @unchecked Sendable {
  private let lock = NSLock()
  private var current: Date
  init(_ iso: String) { current = ISO8601DateFormatter().date(from: iso) ?? Date() }
  var now: Date { lock.withLock { current } }
  func set(_ iso: String) { lock.withLock { current = ISO8601DateFormatter().date(from: iso) ?? current } }
  var closure: @Sendable () -> Date { { [self] in now } }
}

@Suite("Daemon: real engine, batch translation and schedules")
struct EngineAndScheduleTests {
  @Test("the tiny fixture model through the real engine: text and image results with model, pipeline, parameters and counts")
  func realEngine() async throws {
    let home = try TestHome(pipelines: ["documents.yaml": TestHome.cheapDocuments, "images.yaml": TestHome.cheapImages])
    try write(home.inbox + "/notes.md", "# Notes\n\nThe meeting moved to Friday.")
    try write(home.inbox + "/receipt.png", Array(try Data(contentsOf: packageRoot.appendingPathComponent("samples/receipt.png"))))
    let logs = LogCapture()
    try await runOnce(home, overrides: ["model": tinyModel, "threads": "1"], runner: nil, logs: logs)
    #expect(logs.text.contains("model loaded and resident"))
    let store = try home.store()
    let result = try #require(try await store.results(matching: ResultFilter(pipeline: "documents")).first)
    #expect(result.modelID == PathNamesForTest.standard(tinyModel))
    #expect(result.pipeline == "documents" && result.pipelineVersion == 1 && result.step == "summary")
    #expect((result.promptTokens ?? 0) > 10)
    #expect((result.completionTokens ?? 0) >= 1 && (result.completionTokens ?? 0) <= 4)
    #expect(result.parameters.contains("\"max_tokens\":4"))
    // The image goes through the engine's vision path (the fixture has a small vision tower).
    let caption = try #require(try await store.results(matching: ResultFilter(pipeline: "images")).first)
    #expect(caption.step == "caption" && (caption.promptTokens ?? 0) > 10)
    #expect(try await store.jobs(matching: JobFilter(statuses: [.failed])).isEmpty)
    #expect(exists(home.processed + "/receipt.png"))
    #expect(exists(home.processed + "/notes.md"))
  }

  @Test("folio translate: per segment through the translation memory; a second run redoes nothing")
  func batchTranslationResumes() async throws {
    let home = try TestHome(pipelines: [:])
    try write(home.inbox + "/contracts/a.txt", "First paragraph.\n\nSecond paragraph.\n\nThird.")
    try write(home.inbox + "/contracts/b.txt", "Another contract.")
    try write(home.inbox + "/other.txt", "Not in the set.")
    try await runOnce(home)
    let runner = EchoRunner()
    let configuration = try home.configuration()
    let workspace = try Workspace.open(configuration)
    let batch = try await workspace.queueTranslation(set: "contracts", languages: ["de", "ja"])
    #expect(batch.pipelineName == "translate")
    #expect(batch.queued.documents == 2 && batch.queued.jobIDs.count == 4)
    let daemon = try await Daemon.start(configuration: configuration, options: .init(once: true), runner: runner, logger: LogCapture().logger)
    try await daemon.drain(tasks: ["translate"]) { _ in }
    #expect(runner.requests.count == 8)  // (3 + 1 segments) × 2 languages
    let results = try await workspace.store.results(matching: ResultFilter(pipeline: "translate"))
    #expect(results.count == 4)
    let de = try #require(results.first { $0.documentPath == "contracts/a.txt" && $0.language == "de" })
    #expect(de.text.components(separatedBy: "\n\n").count == 3, "paragraph breaks kept: \(de.text)")
    let again = try await workspace.queueTranslation(set: "contracts", languages: ["de", "ja"])
    #expect(again.queued.jobIDs.isEmpty && again.queued.alreadyDone == 4)
    // A new language translates; the memory is per language, so only the new one costs requests.
    _ = try await workspace.queueTranslation(set: "contracts", languages: ["es"])
    try await daemon.drain(tasks: ["translate"]) { _ in }
    #expect(runner.requests.count == 12)
  }

  static let nightly = """
    name: nightly
    version: 1
    schedule: "0 2 * * *"
    time_zone: UTC
    target_set: contracts
    overlap: skip
    missed: run_once
    steps:
      - id: translate
        task: translate
        input: document
        to: [de]
        max_tokens: 8
    """

  static func scheduledHome() async throws -> TestHome {
    let home = try TestHome(pipelines: ["nightly.yaml": nightly])
    try write(home.inbox + "/contracts/lease.txt", "The rent is due on the third working day.")
    // Recorded without jobs (no inbox pipeline matches), before the schedule is first seen.
    try await runOnce(home, now: TestWallClock("2026-03-01T00:00:00Z").closure)
    return home
  }

  @Test("a schedule fires at its time and its run finishes when its jobs do")
  func scheduleFires() async throws {
    let home = try await Self.scheduledHome()
    let clock = TestWallClock("2026-03-01T01:59:00Z")
    let daemon = try await Daemon.start(
      configuration: try home.configuration(), options: .init(once: true, now: clock.closure), runner: EchoRunner(),
      logger: LogCapture().logger)
    let scheduler = daemon.scheduler
    try await scheduler.sync()
    #expect(try await scheduler.tick().started.isEmpty)
    #expect(try await daemon.store.schedule(named: "nightly")?.nextRunAt == ISO8601DateFormatter().date(from: "2026-03-01T02:00:00Z"))
    clock.set("2026-03-01T02:00:20Z")
    let report = try await scheduler.tick()
    #expect(report.started.count == 1)
    try await daemon.drain(tasks: []) { _ in }
    let runs = try await daemon.store.scheduleRuns(pipelineName: "nightly")
    #expect(runs.first?.status == .succeeded && runs.first?.trigger == .schedule)
    #expect(try await daemon.store.results(matching: ResultFilter(pipeline: "nightly")).count == 1)
    #expect(try await daemon.store.schedule(named: "nightly")?.nextRunAt == ISO8601DateFormatter().date(from: "2026-03-02T02:00:00Z"))
  }

  @Test("runs missed while the daemon was down: one catch-up run, the rest recorded as skipped with a reason")
  func scheduleMissed() async throws {
    let home = try await Self.scheduledHome()
    let clock = TestWallClock("2026-03-01T01:00:00Z")
    let configuration = try home.configuration()
    do {
      let daemon = try await Daemon.start(
        configuration: configuration, options: .init(once: true, now: clock.closure), runner: EchoRunner(),
        logger: LogCapture().logger)
      try await daemon.scheduler.sync()
      try await daemon.scheduler.tick()
    }
    // Down from 01:00 on the 1st until 10:00 on the 4th: occurrences on the 1st, 2nd, 3rd and 4th were missed.
    clock.set("2026-03-04T10:00:00Z")
    let daemon = try await Daemon.start(
      configuration: configuration, options: .init(once: true, now: clock.closure), runner: EchoRunner(),
      logger: LogCapture().logger)
    try await daemon.scheduler.sync()
    let report = try await daemon.scheduler.tick()
    #expect(report.started.count == 1)
    #expect(report.skipped == 3)
    let runs = try await daemon.store.scheduleRuns(pipelineName: "nightly")
    let catchUp = try #require(runs.first { $0.trigger == .catchUp })
    #expect(catchUp.scheduledFor == ISO8601DateFormatter().date(from: "2026-03-04T02:00:00Z"))
    let skipped = runs.filter { $0.status == .skipped }
    #expect(skipped.count == 3)
    #expect(skipped.allSatisfy { $0.reason?.hasPrefix("missed:") == true })
    // A restart at the same time neither repeats the run nor records the skips again.
    let again = try await daemon.scheduler.tick()
    #expect(again.started.isEmpty && again.skipped == 0)
  }

  @Test("an occurrence that comes while the previous run is still going is skipped (overlap: skip)")
  func scheduleOverlap() async throws {
    let home = try await Self.scheduledHome()
    try write(home.pipelines + "/nightly.yaml", Self.nightly.replacingOccurrences(of: "0 2 * * *", with: "0 * * * *"))
    let clock = TestWallClock("2026-03-01T01:59:00Z")
    let daemon = try await Daemon.start(
      configuration: try home.configuration(), options: .init(once: true, now: clock.closure), runner: EchoRunner(),
      logger: LogCapture().logger)
    try await daemon.scheduler.sync()
    try await daemon.scheduler.tick()
    clock.set("2026-03-01T02:00:10Z")
    #expect(try await daemon.scheduler.tick().started.count == 1)
    // Its job has not run yet when the 03:00 occurrence comes.
    clock.set("2026-03-01T03:00:10Z")
    let report = try await daemon.scheduler.tick()
    #expect(report.started.isEmpty && report.skipped == 1)
    let runs = try await daemon.store.scheduleRuns(pipelineName: "nightly")
    let skipped = try #require(runs.first { $0.status == .skipped })
    #expect(skipped.reason?.hasPrefix("overlap:") == true)
    try await daemon.drain(tasks: []) { _ in }
    #expect(try await daemon.store.scheduleRuns(pipelineName: "nightly").contains { $0.status == .succeeded })
  }
}

enum PathNamesForTest {
  static func standard(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
}
