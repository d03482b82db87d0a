import ArgumentParser
import FolioBase
import FolioDaemon
import FolioStore
import Foundation

/// `folio daemon`: the foreground daemon (systemd-friendly), or one pass with `--once`.
struct DaemonCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "daemon",
    abstract: "Watch the inbox and process files through the pipelines (foreground).",
    discussion: """
      Startup checks the folder layout, the pipelines (refusing to start on any error, with the report), the
      folders' permissions, the database and the model, then recovers what a previous run left (jobs of a dead
      process, claimed files) and runs until SIGTERM/SIGINT: intake stops first, the running job finishes or is
      checkpointed after --shutdown-grace, and the database closes cleanly. Logs go to stderr, one line per event.

      --once processes what is in the inbox and the queue, then exits and prints what it did. --copy-from DIR
      copies DIR's files into the inbox first (DIR itself is only read), keeping subfolders as document sets.

      Exit codes: 0 success; 1 a startup check or runtime error (`Error: [code] message`); 64 bad usage.
      """)

  @OptionGroup var settings: ConfigurationOptions

  @Flag(name: .long, help: "Process what is in the inbox and the queue, then exit.")
  var once = false

  @Option(name: .long, help: "Copy this folder's files into the inbox before starting (the folder is only read).")
  var copyFrom: String?

  func run() async throws {
    let configuration = try settings.resolve()
    let logger = LogSetup.bootstrap(configuration)
    if let copyFrom {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: copyFrom, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw FolioError(.fileNotFound, "--copy-from \(copyFrom): no such folder")
      }
    }
    let daemon = try await Daemon.start(
      configuration: configuration, options: Daemon.Options(once: once, handlesSignals: true), logger: logger)
    if let copyFrom {
      let count = try Daemon.copyTree(from: copyFrom, into: configuration.inbox)
      logger.info("copied files into the inbox", metadata: ["from": "\(copyFrom)", "files": "\(count)"])
    }
    let report = try await daemon.run()
    if once { try await printSummary(report, daemon: daemon) }
  }

  func printSummary(_ report: DaemonRunReport, daemon: Daemon) async throws {
    let store = daemon.store
    let configuration = daemon.configuration
    var out = "\n"
    if daemon.runner.modelID == "folio-test/tiny-dense" {
      out += "NOTE: no model was found, so the bundled TEST model (random weights) was used: the texts below are\n"
      out += "gibberish. Pass --model with a Qwen3.5 checkpoint (folder, HF cache entry or id) for real results.\n\n"
    }
    out += "Documents (\(report.documentIDs.count) new"
    out += report.linked.isEmpty ? "" : ", \(report.linked.count) linked duplicates"
    out += report.refused.isEmpty ? "" : ", \(report.refused.count) refused"
    out += ") — database \(configuration.database)\n\n"
    var documents = Table("doc", "set", "file", "kind", "status")
    var resultsTable = Table("result", "doc", "pipeline/step", "lang", "tokens", "ms", "text")
    var failures = Table("job", "doc", "pipeline/step", "error", "message")
    for id in report.documentIDs {
      guard let document = try await store.document(id: id) else { continue }
      documents.add(
        String(id), document.setName, Table.cell(document.relativePath, width: 40), document.kind.rawValue,
        document.status.rawValue)
      for result in try await store.results(matching: ResultFilter(documentID: id)).reversed() {
        resultsTable.add(
          String(result.resultID), String(id), "\(result.pipeline)/\(result.step)", result.language ?? "",
          result.completionTokens.map(String.init) ?? "", result.totalMilliseconds.map(String.init) ?? "",
          Table.cell(result.text, width: 50))
      }
      for job in try await store.jobs(matching: JobFilter(statuses: [.failed, .cancelled], documentID: id)).reversed() {
        failures.add(
          String(job.id ?? 0), String(id), "\(job.pipelineName)/\(job.stepID)", job.errorCode ?? "",
          Table.cell(job.errorMessage ?? "", width: 60))
      }
    }
    out += documents.rendered + "\n"
    out += "Results (\(resultsTable.rows.count)):\n" + resultsTable.rendered + "\n"
    if !failures.rows.isEmpty { out += "Failed jobs (\(failures.rows.count)):\n" + failures.rendered + "\n" }
    if !report.linked.isEmpty {
      out += report.linked.map { "document \($0.documentID) is a duplicate of document \($0.original) (linked)\n" }
        .joined() + "\n"
    }
    if !report.refused.isEmpty {
      var refused = Table("file", "error", "message")
      for (path, error) in report.refused {
        refused.add(Table.cell(path, width: 40), error.code.rawValue, Table.cell(error.message, width: 70))
      }
      out += "Refused at intake (\(report.refused.count)):\n" + refused.rendered + "\n"
    }
    let open = try await store.hasOpenWork()
    if open.waiting > 0 {
      out += "\(open.waiting) job(s) wait for a retry after a transient failure; run again later, or see `folio jobs list`.\n"
    }
    let home = "--home \(configuration.home)"
    out += "More: folio results list \(home)   |   folio results show ID \(home)   |   "
    out += "sqlite3 \(configuration.database) 'SELECT * FROM v_results'\n"
    Output.print(out)
  }
}
