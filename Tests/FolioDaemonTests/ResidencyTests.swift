import FolioBase
import FolioDaemon
import FolioStore
import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Wall-clock time that a test can move forward by hand (the daemon's injected `now`): real time plus an offset.
final class MovableTime: @unchecked Sendable {
  private let lock = NSLock()
  private var offset: TimeInterval = 0
  var now: @Sendable () -> Date { { [self] in Date().addingTimeInterval(lock.withLock { offset }) } }
  func advance(by seconds: TimeInterval) { lock.withLock { offset += seconds } }
}

/// A ``StepRunner`` whose requests wait until the test opens the gate (jobs that stay running on demand).
final class GateRunner: StepRunner, @unchecked Sendable {
  let modelID = "test/gate"
  private let lock = NSLock()
  private var open = false
  private var started = 0

  func countTokens(_ text: String) -> Int { max(1, text.utf8.count / 4) }
  func openGate() { lock.withLock { open = true } }
  var requestsStarted: Int { lock.withLock { started } }

  func run(_ request: StepRequest) async throws -> StepOutput {
    lock.withLock { started += 1 }
    while !lock.withLock({ open }) {
      guard request.shouldContinue() else {
        return StepOutput(
          text: "", promptTokens: 1, completionTokens: 0, finishReason: "cancelled", promptDuration: .zero,
          generationDuration: .zero)
      }
      try await Task.sleep(for: .milliseconds(10))
    }
    return StepOutput(
      text: "done", promptTokens: 1, completionTokens: 1, finishReason: "stop", promptDuration: .milliseconds(1),
      generationDuration: .milliseconds(1))
  }
}

/// Counts how often the daemon loads its model (after `keep_alive` unloads).
final class LoadCounter: @unchecked Sendable {
  private let lock = NSLock()
  private var count = 0
  var loads: Int { lock.withLock { count } }
  func load(_ runner: any StepRunner) -> @Sendable () throws -> any StepRunner {
    { [self] in
      lock.withLock { count += 1 }
      return runner
    }
  }
}

/// A long-running daemon in this process, stopped at the end of the test.
struct RunningDaemon {
  let daemon: Daemon
  let task: Task<DaemonRunReport, any Error>

  init(
    _ home: TestHome, overrides: [String: String] = [:], runner: any StepRunner,
    modelLoader: (@Sendable () throws -> any StepRunner)? = nil, time: MovableTime = MovableTime(),
    logs: LogCapture = LogCapture()
  ) async throws {
    let configuration = try home.configuration(overrides)
    let daemon = try await Daemon.start(
      configuration: configuration,
      options: Daemon.Options(now: time.now, heartbeatInterval: .milliseconds(50)), runner: runner,
      modelLoader: modelLoader, logger: logs.logger)
    self.daemon = daemon
    task = Task { try await daemon.run() }
  }

  func stop() async throws -> DaemonRunReport {
    await daemon.requestShutdown()
    return try await task.value
  }
}

/// Waits are generous (90 s): on a 2-core machine other suites' synchronous compute can hold the cooperative
/// threads for tens of seconds while these run in parallel; a passing run takes a few seconds.
@Suite("model residency, status rows and the bounded queue")
struct ResidencyTests {
  @Test("the running daemon records what it has loaded, its memory and state; the row goes at a clean stop")
  func daemonInstanceRow() async throws {
    let home = try TestHome()
    let running = try await RunningDaemon(home, runner: EchoRunner())
    let store = try home.store()
    #expect(
      try await eventually(timeout: .seconds(90)) {
        try await store.daemonInstances().first.map { $0.state == .idle && ($0.rssMiB ?? 0) > 1 } ?? false
      })
    let row = try #require(try await store.daemonInstances().first)
    #expect(row.pid == getpid() && row.modelID == "test/echo" && row.modelOrigin == "injected")
    #expect(row.instanceID == running.daemon.instanceID && row.instanceID.hasPrefix("folio@"))
    #expect(row.keepAliveSeconds == 1800 && row.maxQueuedJobs == 10_000 && !row.isIntakePaused)
    #expect(!row.isStale(at: Date(), staleAfter: Daemon.staleAfter))
    _ = try await running.stop()
    #expect(try await store.daemonInstances().isEmpty)
  }

  @Test("keep_alive: the model is unloaded after that long without work and loaded again by the next job")
  func keepAliveUnloadsAndReloads() async throws {
    let home = try TestHome()
    let time = MovableTime()
    let counter = LoadCounter()
    let runner = EchoRunner()
    let logs = LogCapture()
    let running = try await RunningDaemon(
      home, overrides: ["keep_alive": "5m"], runner: runner, modelLoader: counter.load(runner), time: time, logs: logs)
    let store = try home.store()
    try write(home.inbox + "/a.txt", "First document.")
    #expect(try await eventually(timeout: .seconds(90)) { try await store.status().succeeded == 1 })
    // Four minutes idle: still loaded (heartbeats keep coming on real time; `now` is the daemon's injected clock).
    time.advance(by: 240)
    try await Task.sleep(for: .milliseconds(300))
    #expect(running.daemon.model.isLoaded)
    time.advance(by: 120)
    #expect(try await eventually(timeout: .seconds(90)) { try await store.daemonInstances().first?.state == .unloaded })
    #expect(!running.daemon.model.isLoaded && counter.loads == 0)
    #expect(logs.text.contains("model unloaded after keep_alive"))
    try write(home.inbox + "/b.txt", "Second document.")
    #expect(try await eventually(timeout: .seconds(90)) { try await store.status().succeeded == 2 })
    #expect(counter.loads == 1 && running.daemon.model.isLoaded && running.daemon.model.loadCount == 2)
    #expect(logs.text.contains("model loaded again for new work"))
    #expect(try await eventually(timeout: .seconds(90)) { try await store.daemonInstances().first?.state == .idle })
    _ = try await running.stop()
  }

  @Test("keep_alive 0 unloads as soon as the queue drains; forever never unloads")
  func keepAliveZeroAndForever() async throws {
    let home = try TestHome()
    let zero = try await RunningDaemon(home, overrides: ["keep_alive": "0"], runner: EchoRunner())
    try write(home.inbox + "/a.txt", "A document.")
    let store = try home.store()
    #expect(try await eventually(timeout: .seconds(90)) { try await store.status().succeeded == 1 })
    #expect(try await eventually(timeout: .seconds(90)) { !zero.daemon.model.isLoaded })
    _ = try await zero.stop()

    let time = MovableTime()
    let forever = try await RunningDaemon(home, overrides: ["keep_alive": "forever"], runner: EchoRunner(), time: time)
    time.advance(by: 86_400 * 30)
    try await Task.sleep(for: .milliseconds(400))
    #expect(forever.daemon.model.isLoaded)
    #expect(try await store.daemonInstances().first?.keepAliveSeconds == nil)
    _ = try await forever.stop()
  }

  @Test("max_queued_jobs: a full queue leaves new files untouched in the inbox with queue_full, then takes them")
  func boundedQueue() async throws {
    let home = try TestHome()
    let overrides = ["max_queued_jobs": "1"]
    let configuration = try home.configuration(overrides)
    let workspace = try Workspace.open(configuration, create: true)
    let outside = home.path + "/outside"
    try write(outside + "/a.txt", "Document A.")
    try write(outside + "/b.txt", "Document B.")
    try write(outside + "/c.txt", "Document C.")
    // One queued job fills the queue: `folio add` refuses the next file with a clear error.
    let first = try await workspace.add(files: [outside + "/a.txt"], set: nil)
    guard case .recorded = try #require(first.first?.1) else { throw TestFailure("a.txt not recorded") }
    let refused = try await workspace.add(files: [outside + "/b.txt"], set: nil)
    guard case .refused(let error) = try #require(refused.first?.1) else { throw TestFailure("b.txt accepted") }
    #expect(error.code == .queueFull)
    #expect(error.message.contains("max_queued_jobs") && error.message.contains("FOLIO_MAX_QUEUED_JOBS"))

    // The daemon runs job A (held at the gate), B is queued: the queue is full again.
    let gate = GateRunner()
    let logs = LogCapture()
    let running = try await RunningDaemon(home, overrides: overrides, runner: gate, logs: logs)
    let store = try home.store()
    #expect(try await eventually(timeout: .seconds(90)) { gate.requestsStarted == 1 })
    _ = try await workspace.add(files: [outside + "/b.txt"], set: nil)
    #expect(try await store.queuedJobCount() == 1)
    try write(home.inbox + "/c.txt", "Document C in the inbox.")
    #expect(try await eventually(timeout: .seconds(90)) { try await store.intakeFailures().contains { $0.errorCode == "queue_full" } })
    let failure = try #require(try await store.intakeFailures().first { $0.errorCode == "queue_full" })
    #expect(failure.relativePath == "c.txt" && failure.finalPath == home.inbox + "/c.txt")
    #expect(logs.text.contains("queue full: file left in the inbox"))
    #expect(try String(contentsOfFile: home.inbox + "/c.txt", encoding: .utf8) == "Document C in the inbox.")
    #expect(try await eventually(timeout: .seconds(90)) { try await store.daemonInstances().first?.isIntakePaused == true })
    #expect(try await store.documents().count == 2)
    // The queue drains: C is taken, processed and moved like any other file.
    gate.openGate()
    #expect(try await eventually(timeout: .seconds(90)) { try await store.status().succeeded == 3 }, "\(logs.text)")
    #expect(try await store.documents().count == 3)
    #expect(try await eventually(timeout: .seconds(90)) { !exists(home.inbox + "/c.txt") })
    #expect(try await store.intakeFailures().filter { $0.errorCode == "queue_full" }.count == 1)
    let report = try await running.stop()
    #expect(report.heldForFullQueue == ["c.txt"])
  }

  @Test("keep_alive and max_queued_jobs are read from folio.yaml, FOLIO_* and flags")
  func configurationKeys() throws {
    let home = try TestHome()
    #expect(try home.configuration().keepAlive == .seconds(1800))
    #expect(try home.configuration(["keep_alive": "5m"]).keepAlive == .seconds(300))
    #expect(try home.configuration(["keep_alive": "0"]).keepAlive == .zero)
    #expect(try home.configuration(["keep_alive": "-1"]).keepAlive == nil)
    #expect(try home.configuration(["keep_alive": "forever"]).keepAlive == nil)
    #expect(throws: FolioError.self) { try home.configuration(["keep_alive": "soon"]) }
    #expect(throws: FolioError.self) { try home.configuration(["max_queued_jobs": "0"]) }
    let fromEnvironment = try DaemonConfiguration.load(
      overrides: ["home": home.path], environment: ["FOLIO_KEEP_ALIVE": "90s", "FOLIO_MAX_QUEUED_JOBS": "7"],
      currentDirectory: home.path)
    #expect(fromEnvironment.keepAlive == .seconds(90) && fromEnvironment.maxQueuedJobs == 7)
    #expect(fromEnvironment.sources["keep_alive"] == "FOLIO_KEEP_ALIVE")
    try write(home.path + "/folio.yaml", "keep_alive: 10m\nmax_queued_jobs: 50\n")
    let fromFile = try DaemonConfiguration.load(
      configFile: home.path + "/folio.yaml", overrides: [:], environment: [:], currentDirectory: home.path)
    #expect(fromFile.keepAlive == .seconds(600) && fromFile.maxQueuedJobs == 50)
  }
}
