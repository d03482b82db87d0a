import FolioBase
import FolioStore
import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The real `folio` executable as a process, with the real tiny model: crash, signal and startup behaviour.
@Suite("folio daemon process", .serialized)
struct ProcessTests {
  /// The `folio` binary built next to the test bundle.
  static var executable: String {
    get throws {
      let bundleFolder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
      for candidate in [
        bundleFolder.appendingPathComponent("folio"),
        bundleFolder.deletingLastPathComponent().appendingPathComponent("folio"),
        packageRoot.appendingPathComponent(".build/debug/folio"),
      ] where FileManager.default.isExecutableFile(atPath: candidate.path) {
        return candidate.path
      }
      throw TestFailure("the folio executable is not built")
    }
  }

  /// A started `folio` process whose stderr is collected.
  final class Running: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var errorData = Data()
    private var outputData = Data()

    init(_ arguments: [String]) throws {
      process.executableURL = URL(fileURLWithPath: try ProcessTests.executable)
      process.arguments = arguments
      let err = Pipe()
      let out = Pipe()
      process.standardError = err
      process.standardOutput = out
      err.fileHandleForReading.readabilityHandler = { [self] handle in
        let data = handle.availableData
        lock.withLock { errorData.append(data) }
      }
      out.fileHandleForReading.readabilityHandler = { [self] handle in
        let data = handle.availableData
        lock.withLock { outputData.append(data) }
      }
      try process.run()
    }

    var stderr: String { lock.withLock { String(decoding: errorData, as: UTF8.self) } }
    var stdout: String { lock.withLock { String(decoding: outputData, as: UTF8.self) } }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the exit (at most `timeout`), returning the status, or nil if it is still running.
    func wait(timeout: Duration = .seconds(120)) async throws -> Int32? {
      let ok = try await eventually(timeout: timeout) { !process.isRunning }
      guard ok else { return nil }
      try await Task.sleep(for: .milliseconds(100))  // let the pipes drain
      return process.terminationStatus
    }
  }

  static func daemonArguments(_ home: TestHome, once: Bool, extra: [String] = []) -> [String] {
    ["daemon"] + (once ? ["--once"] : []) + [
      "--home", home.path, "--pipelines", home.pipelines, "--model", tinyModel, "--stability-window", "200ms",
      "--threads", "1",
    ] + extra
  }

  /// Enough paragraphs (one request each) that the job is still running when the test strikes.
  /// (1200 × 48 tokens: tens of seconds of work even on a fast machine, so a polling task starved by the other
  /// suites running beside it — seconds at a time on 2 cores — still strikes mid-job; 400 were all done first once
  /// the engine got faster. Their translations also feed each other as context: the random model's answers spell
  /// control tokens such as `<|image_pad|>`, which must stay text.)
  static let paragraphCount = 1200

  /// A text of `count` short paragraphs: each is one segment, one translation request.
  static func paragraphs(_ count: Int) -> String {
    (1...count).map { "Paragraph \($0): the quarterly report lists revenue and costs." }.joined(separator: "\n\n")
  }

  static func translationCount(_ home: TestHome, store existing: Store? = nil) async throws -> Int {
    guard exists(home.database) else { return 0 }
    let store = try existing ?? home.store()
    return try await store.translations(
      sourceHashes: try await store.segments(documentID: 1, source: "document").map(\.sourceHash), language: "de",
      modelID: "\(tinyModel)"
    ).count
  }

  @Test("SIGKILL mid-job, then restart: the job completes once, nothing lost, no duplicate result")
  func killedMidJob() async throws {
    let home = try TestHome(pipelines: ["translation.yaml": TestHome.paragraphTranslation])
    try write(home.inbox + "/report.txt", Self.paragraphs(Self.paragraphCount))
    let first = try Running(Self.daemonArguments(home, once: false))
    #expect(try await eventually(timeout: .seconds(60)) { exists(home.database) }, "\(first.stderr)")
    let watching = try home.store()
    #expect(
      try await eventually(timeout: .seconds(60)) { try await Self.translationCount(home, store: watching) >= 3 },
      "\(first.stderr)")
    first.signal(SIGKILL)
    _ = try await first.wait()
    let store = try home.store()
    let before = try #require(try await store.job(id: 1))
    #expect(before.status == .running, "the killed worker's lease is still recorded")
    let done = try await Self.translationCount(home)
    #expect(done >= 3 && done < Self.paragraphCount)

    let second = try Running(Self.daemonArguments(home, once: true))
    let status = try await second.wait()
    #expect(status == 0, "\(second.stderr)")
    #expect(second.stderr.contains("requeued the jobs of a stopped Folio process"))
    let job = try #require(try await store.job(id: 1))
    #expect(job.status == .succeeded, "\(job.errorCode ?? ""): \(job.errorMessage ?? "")")
    #expect(job.attempts == 2)
    let results = try await store.results(matching: ResultFilter(latestOnly: false))
    #expect(results.count == 1, "exactly one result")
    #expect(results.first?.parameters.contains("\"segments_from_memory\":\(done)") == true, "\(results.first?.parameters ?? "")")
    #expect(try await Self.translationCount(home) == Self.paragraphCount)
    #expect(exists(home.processed + "/report.txt"), "the original reached processed/")
    #expect(try await store.status().documents == 1)
  }

  @Test("SIGTERM during a job: intake stops, the job is checkpointed, the process exits 0; the next start resumes")
  func terminatedDuringJob() async throws {
    let home = try TestHome(pipelines: ["translation.yaml": TestHome.paragraphTranslation])
    try write(home.inbox + "/report.txt", Self.paragraphs(Self.paragraphCount))
    let first = try Running(Self.daemonArguments(home, once: false, extra: ["--shutdown-grace", "0s"]))
    #expect(try await eventually(timeout: .seconds(60)) { exists(home.database) }, "\(first.stderr)")
    let watching = try home.store()
    #expect(
      try await eventually(timeout: .seconds(60)) { try await Self.translationCount(home, store: watching) >= 2 },
      "\(first.stderr)")
    first.signal(SIGTERM)
    let status = try await first.wait(timeout: .seconds(30))
    #expect(status == 0, "\(first.stderr)")
    #expect(first.stderr.contains("job checkpointed and returned to the queue"))
    #expect(first.stderr.contains("stopped cleanly"))
    let store = try home.store()
    let job = try #require(try await store.job(id: 1))
    #expect(job.status == .queued)
    #expect(job.attempts == 0, "an interrupted attempt does not count")
    #expect(job.errorCode == "interrupted")
    let saved = try await Self.translationCount(home)
    #expect(saved >= 2)
    let work = FileManager.default.enumerator(atPath: home.inbox + "/.folio-work")?.compactMap { $0 as? String } ?? []
    #expect(work.contains { $0.hasSuffix("report.txt") }, "the original waits in the work area")

    let second = try Running(Self.daemonArguments(home, once: true))
    #expect(try await second.wait() == 0, "\(second.stderr)")
    let results = try await store.results()
    #expect(results.count == 1)
    #expect(results.first?.parameters.contains("\"segments_from_memory\":\(saved)") == true)
    #expect(exists(home.processed + "/report.txt"))
  }

  @Test("a pipeline YAML with errors: the daemon refuses to start and says why")
  func invalidPipeline() async throws {
    let home = try TestHome(pipelines: [
      "broken.yaml": """
        name: broken
        version: 0
        steps:
          - id: s
            task: paint
        """
    ])
    let run = try Running(Self.daemonArguments(home, once: true))
    let status = try await run.wait()
    #expect(status == 1)
    #expect(run.stderr.contains("invalid_pipeline"), "\(run.stderr)")
    #expect(run.stderr.contains("broken.yaml:"))
    #expect(!exists(home.database), "nothing was started")
    let validate = try Running(["pipelines", "validate", home.pipelines])
    #expect(try await validate.wait() == 1)
    #expect(validate.stdout.contains("broken.yaml:2"), "\(validate.stdout)")
  }

  @Test("--once over samples/ with the bundled test model: says so plainly, leaves samples/ untouched")
  func mainCommand() async throws {
    let home = try TestHome()
    let samples = packageRoot.appendingPathComponent("samples").path
    let before = try FileManager.default.subpathsOfDirectory(atPath: samples).sorted()
    let run = try Running([
      "daemon", "--once", "--home", home.path, "--copy-from", samples, "--pipelines",
      packageRoot.appendingPathComponent("pipelines").path, "--allow-test-model", "--stability-window", "200ms",
    ])
    let status = try await run.wait(timeout: .seconds(300))
    #expect(status == 0, "\(run.stderr)")
    #expect(run.stderr.contains("falling back to the bundled TEST model"))
    #expect(run.stdout.contains("bundled TEST model (random weights)"))
    #expect(try FileManager.default.subpathsOfDirectory(atPath: samples).sorted() == before)
    let store = try home.store()
    #expect(try await store.status().documents == before.filter { $0.contains(".") }.count)
    #expect(try await store.results().count == 12)  // 6 summaries, 3 captions, 3 OCR transcriptions
    let sets = try await store.sets().map(\.setName)
    #expect(sets == ["contracts", "default"])
  }

  @Test("every command parses its options (no clashing flags)")
  func helpForEveryCommand() async throws {
    let commands = [
      ["daemon"], ["status"], ["results", "list"], ["results", "show"], ["results", "search"], ["results", "export"],
      ["jobs", "list"], ["jobs", "retry"], ["reprocess"], ["translate"], ["sets", "list"], ["add"],
      ["pipelines", "validate"], ["doctor"],
    ]
    for command in commands {
      let run = try Running(command + ["--help"])
      #expect(try await run.wait() == 0, "\(command): \(run.stdout)\(run.stderr)")
    }
  }

  @Test("the query commands read a processed home: tables by default, JSON for scripts")
  func queryCommands() async throws {
    let home = try TestHome()
    try write(home.inbox + "/contracts/a.txt", "A contract about rent.")
    try write(home.inbox + "/b.md", "# Notes")
    let once = try Running(Self.daemonArguments(home, once: true))
    #expect(try await once.wait() == 0, "\(once.stderr)")
    let h = ["--home", home.path, "--pipelines", home.pipelines]
    let status = try Running(["status"] + h)
    #expect(try await status.wait() == 0)
    #expect(status.stdout.contains("Documents  2"), "\(status.stdout)\(status.stderr)")
    let list = try Running(["results", "list", "--json", "--set", "contracts"] + h)
    #expect(try await list.wait() == 0)
    let rows = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]
    #expect(rows?.count == 1)
    #expect(rows?.first?["model_id"] as? String == PathNamesForTest.standard(tinyModel))
    let csv = try Running(["results", "export", "--format", "csv"] + h)
    #expect(try await csv.wait() == 0)
    #expect(csv.stdout.hasPrefix("result_id,document_id,set_name"))
    let sets = try Running(["sets", "list"] + h)
    #expect(try await sets.wait() == 0)
    #expect(sets.stdout.contains("contracts") && sets.stdout.contains("default"))
    let jobs = try Running(["jobs", "list", "--status", "succeeded"] + h)
    #expect(try await jobs.wait() == 0)
    #expect(jobs.stdout.contains("documents/summary"))
    let reprocess = try Running(["reprocess", "--pipeline", "documents", "--document", "1"] + h)
    #expect(try await reprocess.wait() == 0)
    #expect(reprocess.stdout.contains("1 job(s) queued"), "\(reprocess.stdout)\(reprocess.stderr)")
    let doctor = try Running(["doctor", "--model", tinyModel] + h)
    #expect(try await doctor.wait() == 0, "\(doctor.stdout)")
    #expect(doctor.stdout.contains("ok    database"))
    #expect(doctor.stdout.contains("cpu: ") && doctor.stdout.contains(" kernels; int8 dot products"), "\(doctor.stdout)")
  }

  @Test("folio status shows the live daemon's model, memory and state and marks a stale one; add refuses a full queue")
  func statusShowsDaemons() async throws {
    let home = try TestHome()
    let h = ["--home", home.path, "--pipelines", home.pipelines]
    // A row left by a daemon on another host whose heartbeat stopped five minutes ago.
    let past = try Store.open(path: home.database, now: { Date().addingTimeInterval(-300) })
    try await past.recordDaemonInstance(
      DaemonInstance(
        instanceID: "folio@elsewhere:4242/dead", pid: 4242, host: "elsewhere", startedAt: Date(), heartbeatAt: Date(),
        modelID: "Qwen/Qwen3.5-0.8B@abc", modelPath: nil, modelOrigin: "huggingface_cache", rssMiB: 900, state: .idle,
        modelLoadedAt: nil, keepAliveSeconds: 1800, queuedJobs: 0, maxQueuedJobs: 10_000, isIntakePaused: false))
    let daemon = try Running(Self.daemonArguments(home, once: false, extra: ["--keep-alive", "forever"]))
    let pid = Int(daemon.process.processIdentifier)
    var rows: [[String: Any]] = []
    let live = try await eventually(timeout: .seconds(60)) {
      let status = try Running(["status", "--json"] + h)
      guard try await status.wait() == 0,
        let report = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any],
        let daemons = report["daemons"] as? [[String: Any]]
      else { return false }
      rows = daemons
      return daemons.contains { $0["pid"] as? Int == pid }
    }
    #expect(live, "\(daemon.stderr)")
    let own = try #require(rows.first { $0["pid"] as? Int == pid })
    #expect(own["stale"] as? Bool == false && own["state"] as? String == "idle")
    #expect(own["model_id"] as? String == PathNamesForTest.standard(tinyModel))
    #expect(own["model_origin"] as? String == "configured" && own["model_path"] as? String != nil)
    #expect((own["rss_mib"] as? Double ?? 0) > 1 && own["keep_alive_s"] == nil)
    let dead = try #require(rows.first { $0["pid"] as? Int == 4242 })
    #expect(dead["stale"] as? Bool == true)
    let table = try Running(["status"] + h)
    #expect(try await table.wait() == 0)
    #expect(table.stdout.contains("Daemons:") && table.stdout.contains("stale (idle)"), "\(table.stdout)")
    #expect(table.stdout.contains(" MiB"))
    daemon.signal(SIGTERM)
    #expect(try await daemon.wait() == 0, "\(daemon.stderr)")
    let store = try home.store()
    #expect(try await store.daemonInstances().map(\.pid) == [4242])

    // `folio add` with a full queue: a clear error with the stable code, exit status 1.
    try write(home.path + "/outside/a.txt", "First.")
    try write(home.path + "/outside/b.txt", "Second.")
    let first = try Running(["add", home.path + "/outside/a.txt", "--max-queued-jobs", "1"] + h)
    #expect(try await first.wait() == 0, "\(first.stdout)\(first.stderr)")
    let second = try Running(["add", home.path + "/outside/b.txt", "--max-queued-jobs", "1"] + h)
    #expect(try await second.wait() == 1)
    #expect(second.stdout.contains("[queue_full]") && second.stdout.contains("max_queued_jobs"), "\(second.stdout)")
  }
}
