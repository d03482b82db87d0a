import FolioBase
import FolioDaemon
import FolioStore
import Foundation
import Testing

@Suite("Daemon: configuration and readers")
struct ConfigurationAndReaderTests {
  @Test("flags override FOLIO_* which override folio.yaml which overrides defaults; sources are reported")
  func precedence() throws {
    let home = try TestHome()
    try write(home.path + "/folio.yaml", "inbox: drop\nconcurrency: 2\nmax_attempts: 5\nwatch: polling\nignore: ['*.bak']\n")
    let configuration = try DaemonConfiguration.load(
      configFile: home.path + "/folio.yaml", overrides: ["max_attempts": "7"],
      environment: ["FOLIO_CONCURRENCY": "3", "FOLIO_HOME": home.path], currentDirectory: "/")
    #expect(configuration.inbox == home.path + "/drop")  // relative to the file's folder
    #expect(configuration.concurrency == 3)
    #expect(configuration.maxAttempts == 7)
    #expect(configuration.watchMode == .polling)
    #expect(configuration.ignorePatterns == ["*.bak"])
    #expect(configuration.work == home.path + "/drop/.folio-work")
    #expect(configuration.database == home.path + "/folio.sqlite")
    #expect(configuration.sources["concurrency"] == "FOLIO_CONCURRENCY")
    #expect(configuration.sources["max_attempts"] == "--max-attempts")
    #expect(configuration.sources["inbox"] == home.path + "/folio.yaml")
    #expect(configuration.sources["lease_duration"] == "default")
  }

  @Test("a bad value names the key, the value and where it came from; unknown keys are refused")
  func badValues() throws {
    #expect(throws: FolioError.self) {
      try DaemonConfiguration.load(overrides: [:], environment: ["FOLIO_LEASE_DURATION": "soon"], currentDirectory: "/tmp")
    }
    do {
      _ = try DaemonConfiguration.load(overrides: [:], environment: ["FOLIO_LEASE_DURATION": "soon"], currentDirectory: "/tmp")
    } catch {
      #expect(error.code == .invalidConfiguration)
      #expect(error.message.contains("lease_duration = `soon` (from FOLIO_LEASE_DURATION)"))
    }
    let home = try TestHome()
    try write(home.path + "/folio.yaml", "inbx: typo\n")
    #expect(throws: FolioError.self) { try DaemonConfiguration.load(configFile: home.path + "/folio.yaml", environment: [:]) }
    #expect(DaemonConfiguration.parseDuration("1.5s") == .milliseconds(1500))
    #expect(DaemonConfiguration.parseByteCount("2MiB") == Int64(2_097_152))
  }

  @Test("an overlapping layout refuses to start")
  func overlap() async throws {
    let home = try TestHome()
    let configuration = try home.configuration(["processed": home.inbox + "/done"])
    await #expect(throws: FolioError.self) {
      _ = try await Daemon.start(configuration: configuration, runner: EchoRunner(), logger: LogCapture().logger)
    }
  }

  @Test("sqlite3 reads the database while the daemon writes it")
  func sqliteReaderDuringWrites() async throws {
    let home = try TestHome()
    for i in 0..<150 { try write(home.inbox + "/f\(i).txt", "file \(i)") }
    let configuration = try home.configuration()
    // 80 ms per job keeps the daemon writing for 12 s or more, so even on a loaded machine (sqlite3 processes slow to
    // start) the reader sees counts between 0 and 150.
    let daemon = try await Daemon.start(
      configuration: configuration, options: .init(once: true), runner: EchoRunner(delay: .milliseconds(80)),
      logger: LogCapture().logger)
    let running = Task { try await daemon.run() }
    // sqlite3 runs on a thread of its own (blocking waits stay off the test's cooperative threads).
    let (counts, failures) = await withCheckedContinuation { continuation in
      Thread {
        var counts: [Int] = []
        var failures: [String] = []
        // Read until the daemon is done (or two minutes pass): how fast intake starts varies with machine load.
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
          let process = Process()
          process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
          process.arguments = ["sqlite3", "-readonly", configuration.database, "SELECT count(*) FROM v_results;"]
          let out = Pipe()
          let err = Pipe()
          process.standardOutput = out
          process.standardError = err
          do { try process.run() } catch {
            failures.append("\(error)")
            break
          }
          let data = out.fileHandleForReading.readDataToEndOfFile()
          let errors = err.fileHandleForReading.readDataToEndOfFile()
          process.waitUntilExit()
          if process.terminationStatus != 0 {
            failures.append(String(decoding: errors, as: UTF8.self))
          } else if let n = Int(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) {
            counts.append(n)
            if n == 150 { break }
          }
        }
        continuation.resume(returning: (counts, failures))
      }.start()
    }
    _ = try await running.value
    #expect(failures.isEmpty, "sqlite3 failed: \(failures.prefix(3))")
    #expect(counts == counts.sorted(), "counts never go backwards")
    #expect(counts.contains { $0 > 0 && $0 < 150 }, "read while the daemon was writing: \(counts.prefix(20))")
    #expect(try await daemon.store.status().results == 150)
  }
}
