import ArgumentParser
import FolioBase
import FolioDaemon
import FolioInbox
import FolioKernels
import FolioModel
import FolioPipelines
import FolioStore
import Foundation

/// `folio doctor`: paths, permissions, pipelines, model and database, each with a fix (lessons row 8).
struct DoctorCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "doctor", abstract: "Check paths, permissions, pipelines, model and database (exit 1 on a failure).")

  @OptionGroup var settings: ConfigurationOptions
  @Flag(name: .long, help: "Print JSON.") var json = false

  struct Check: Encodable {
    var item: String
    var status: String
    var detail: String
  }

  func run() async throws {
    var checks: [Check] = []
    func add(_ item: String, _ status: String, _ detail: String) { checks.append(Check(item: item, status: status, detail: detail)) }
    let configuration: DaemonConfiguration
    do {
      configuration = try settings.resolve()
      add("configuration", "ok", configuration.configFile.map { "read \($0)" } ?? "no folio.yaml; defaults, FOLIO_* and flags")
    } catch let error as FolioError {
      add("configuration", "FAIL", error.description)
      try report(checks)
      return
    }
    let paths = [
      ("inbox", configuration.inbox), ("work", configuration.work), ("processed", configuration.processed),
      ("failed", configuration.failed), ("store", configuration.store), ("database", configuration.database),
      ("pipelines", configuration.pipelines),
    ]
    for (role, path) in paths {
      add("path \(role)", "info", "\(path) (from \(configuration.sources[role] ?? "default"))")
    }
    let layout = configuration.layout
    do {
      try layout.validate(ignoreRules: IgnoreRules(patterns: configuration.ignorePatterns))
      add("layout", "ok", "no folder feeds output back into the inbox")
    } catch {
      add("layout", "FAIL", error.message)
    }
    let findings = layout.checkPermissions()
    if findings.isEmpty {
      add("permissions", "ok", "every folder is usable by uid \(getuid()) (missing ones can be created)")
    } else {
      for finding in findings { add("permissions \(finding.role)", "FAIL", finding.description) }
    }
    let validation = PipelineLoader.validate(directory: URL(fileURLWithPath: configuration.pipelines))
    if validation.isValid {
      add("pipelines", "ok", "\(validation.pipelines.count) valid: \(validation.pipelines.map(\.name).joined(separator: ", "))")
    } else {
      add("pipelines", "FAIL", "\(validation.diagnostics.count) problem(s):\n\(validation.report)")
    }
    do {
      let choice = try ModelResolver.resolve(configuration.model, allowTestModel: configuration.allowTestModel)
      let config = try ModelConfiguration.load(from: URL(fileURLWithPath: choice.reference).appendingPathComponent("config.json"))
      add(
        "model", choice.isTestModel ? "warn" : "ok",
        "\(choice.explanation); model_type \(config.modelType), \(config.text.layerCount) layers, vision "
          + (LanguageModelRunner.supportsImages ? "enabled" : "not in this build (image steps fail with vision_unavailable)"))
    } catch let error as FolioError {
      add("model", "FAIL", error.description)
    } catch {
      add("model", "FAIL", "\(error)")
    }
    if FileManager.default.fileExists(atPath: configuration.database) {
      do {
        let store = try Store.open(path: configuration.database)
        let mode = try await store.journalMode()
        let migrations = try await store.appliedMigrations()
        let status = try await store.status()
        add(
          "database", mode == "wal" ? "ok" : "warn",
          "\(configuration.database): journal \(mode), migrations \(migrations.count), \(status.documents) documents, "
            + "\(status.queueDepth) queued, \(status.running) running, \(status.failed) failed jobs")
      } catch {
        add("database", "FAIL", "\(error)")
      }
    } else {
      add("database", "info", "\(configuration.database) does not exist yet; the daemon creates it")
    }
    let int8 = QuantizedActivations.fastest == .int8
    add(
      "cpu", int8 ? "ok" : "warn",
      "\(ComputePool().threadCount) threads, \(MatMul.kernelPath) kernels; int8 dot products for quantized models "
        + (int8 ? "yes" : "no (quantized layers multiply in fp32, several times slower)")
        + ", bf16 dot products (--activations bf16) " + (QuantizedActivations.bfloat16.bf16Prompts ? "yes" : "no"))
    if let watches = try? String(contentsOfFile: "/proc/sys/fs/inotify/max_user_watches", encoding: .utf8) {
      add(
        "inotify", "ok",
        "max_user_watches \(watches.trimmingCharacters(in: .whitespacesAndNewlines)); use --watch polling on NFS/SMB mounts")
    } else {
      add("inotify", "warn", "inotify limits unreadable; --watch polling works everywhere")
    }
    try report(checks)
  }

  func report(_ checks: [Check]) throws {
    if json {
      try Output.json(checks)
    } else {
      var out = ""
      for check in checks {
        out += "\(check.status.padding(toLength: 5, withPad: " ", startingAt: 0)) \(check.item): \(check.detail)\n"
      }
      Output.print(out)
    }
    if checks.contains(where: { $0.status == "FAIL" }) { throw ExitCode(1) }
  }
}
