import ArgumentParser
import FolioBase
import FolioDaemon
import FolioInbox
import FolioPipelines
import FolioStore
import Foundation

/// `folio add FILE… [--set NAME]`.
struct AddCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "add", abstract: "Record files as documents and queue their pipelines, without the inbox.",
    discussion: """
      Each file is copied into Folio's managed store (the file itself is only read) and recorded with the same
      checks as the inbox: kind by magic bytes or .txt/.md as UTF-8, max_file_bytes, max_pixels, the duplicate
      policy. The daemon runs the jobs (or `folio daemon --once`). Exit code 1 if any file was refused.
      """)

  @OptionGroup var settings: ConfigurationOptions
  @Option(name: .customLong("set"), help: "The document set (default: default).") var setName: String?
  @Argument(help: "Files to add.") var files: [String]
  @Flag(name: .long, help: "Print JSON.") var json = false

  struct Line: Encodable {
    var file: String
    var status: String
    var documentID: Int64?
    var jobs: Int?
    var duplicateOf: Int64?
    var errorCode: String?
    var errorMessage: String?
    enum CodingKeys: String, CodingKey {
      case file, status, jobs
      case documentID = "document_id"
      case duplicateOf = "duplicate_of"
      case errorCode = "error_code"
      case errorMessage = "error_message"
    }
  }

  func run() async throws {
    let configuration = try settings.resolve()
    let workspace = try Workspace.open(configuration, create: true)
    let outcomes = try await workspace.add(files: files, set: setName)
    var lines: [Line] = []
    for (file, outcome) in outcomes {
      switch outcome {
      case .recorded(let id, let jobs): lines.append(Line(file: file, status: "queued", documentID: id, jobs: jobs))
      case .linked(let id, let original):
        lines.append(Line(file: file, status: "linked", documentID: id, duplicateOf: original))
      case .refused(let error):
        lines.append(
          Line(file: file, status: "refused", errorCode: error.code.rawValue, errorMessage: error.message))
      }
    }
    if json {
      try Output.json(lines)
    } else {
      var out = ""
      for line in lines {
        switch line.status {
        case "queued": out += "\(line.file): document \(line.documentID ?? 0), \(line.jobs ?? 0) job(s) queued\n"
        case "linked": out += "\(line.file): duplicate of document \(line.duplicateOf ?? 0), linked as document \(line.documentID ?? 0)\n"
        default: out += "\(line.file): refused [\(line.errorCode ?? "")] \(line.errorMessage ?? "")\n"
        }
      }
      Output.print(out)
    }
    if lines.contains(where: { $0.status == "refused" }) { throw ExitCode(1) }
  }
}

/// `folio reprocess`.
struct ReprocessCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "reprocess", abstract: "Queue a new generation of results by pipeline, step, model or document.",
    discussion: """
      Selects documents that have jobs matching every filter given and queues the selected steps again (a new
      generation; the previous results stay, `folio results list` shows the newest). --stale selects results made
      by an older version of --pipeline. A step that reads another step's output re-runs that step too.
      """)

  @OptionGroup var settings: ConfigurationOptions
  @Option(name: .long, help: "Only this pipeline.") var pipeline: String?
  @Option(name: .long, help: "Only this step (and the steps it reads).") var step: String?
  @Option(name: .long, help: "Only documents with results of this model id.") var modelID: String?
  @Option(name: .long, help: "Only this document id.") var document: Int64?
  @Option(name: .customLong("set"), help: "Only this document set.") var setName: String?
  @Flag(name: .long, help: "Only results made by an older version of --pipeline.") var stale = false
  @Flag(name: .long, help: "Show what would be queued, queue nothing.") var dryRun = false
  @Flag(name: .long, help: "Print JSON.") var json = false

  func validate() throws {
    if pipeline == nil && step == nil && modelID == nil && document == nil && setName == nil {
      throw ValidationError("choose what to reprocess: --pipeline, --step, --model-id, --document and/or --set")
    }
  }

  struct Line: Encodable {
    var documentID: Int64
    var pipeline: String
    var jobs: [Int64]
    enum CodingKeys: String, CodingKey {
      case pipeline, jobs
      case documentID = "document_id"
    }
  }

  func run() async throws {
    let workspace = try Workspace.open(try settings.resolve())
    let done = try await workspace.reprocess(
      pipeline: pipeline, step: step, modelID: modelID, documentID: document, setName: setName,
      olderThanVersion: stale, dryRun: dryRun)
    if json {
      try Output.json(done.map { Line(documentID: $0.documentID, pipeline: $0.pipelineName, jobs: $0.jobIDs) })
      return
    }
    var out = ""
    for item in done {
      out += dryRun
        ? "would reprocess document \(item.documentID) with \(item.pipelineName)\n"
        : "document \(item.documentID), \(item.pipelineName): \(item.jobIDs.count) job(s) queued\n"
    }
    out += done.isEmpty ? "Nothing matches.\n" : ""
    Output.print(out)
  }
}

/// `folio translate --set NAME --to de,ja`.
struct TranslateCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "translate", abstract: "Translate every document of a set now (batch), with progress.",
    discussion: """
      Uses the scheduled pipeline that targets the set (recorded as a manual run), or the built-in `translate`
      pipeline. Each document is translated segment by segment through the translation memory, so only what is
      missing for the language and model is translated: an interrupted batch resumes where it stopped.
      Without --no-wait the jobs run here, with a progress line per job on stderr.
      """)

  @OptionGroup var settings: ConfigurationOptions
  @Option(name: .customLong("set"), help: "The document set.") var setName: String
  @Option(name: .long, help: "Target languages, comma-separated (de,ja).") var to: String
  @Flag(name: .long, help: "Only queue the jobs (a running daemon does them).") var noWait = false

  func run() async throws {
    let configuration = try settings.resolve()
    let logger = LogSetup.bootstrap(configuration)
    let languages = to.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    let workspace = try Workspace.open(configuration, logger: logger)
    let batch = try await workspace.queueTranslation(set: setName, languages: languages)
    if let reason = batch.notStarted {
      Output.print("Not started: \(reason)\n")
      return
    }
    let total = batch.queued.jobIDs.count
    Output.print(
      "Set \(setName): \(batch.queued.documents) document(s), \(total) translation job(s) to run, "
        + "\(batch.queued.alreadyDone) already done (pipeline \(batch.pipelineName)"
        + "\(batch.runID.map { ", run \($0)" } ?? ""))\n")
    guard !noWait, total > 0 else { return }
    let daemon = try await Daemon.start(configuration: configuration, options: Daemon.Options(once: true), logger: logger)
    let batchJobs = Set(batch.queued.jobIDs)
    let counter = Counter()
    let tasks = Set(
      (workspace.pipeline(named: batch.pipelineName)?.steps.map(\.task.rawValue) ?? ["translate"]))
    try await daemon.drain(tasks: tasks) { job in
      guard let id = job.id, batchJobs.contains(id), job.status.isTerminal else { return }
      let n = counter.next()
      let line = "[\(n)/\(total)] document \(job.documentID) → \(job.language.isEmpty ? job.stepID : job.language): "
        + "\(job.status.rawValue)\(job.errorCode.map { " (\($0))" } ?? "")\n"
      FileHandle.standardError.write(Data(line.utf8))
    }
    let jobs = try await daemon.store.jobs(matching: JobFilter(limit: 100_000)).filter { batchJobs.contains($0.id ?? -1) }
    let succeeded = jobs.filter { $0.status == .succeeded }.count
    let failed = jobs.filter { $0.status == .failed }.count
    Output.print("Done: \(succeeded) succeeded, \(failed) failed, \(total - succeeded - failed) still queued.\n")
    if failed > 0 { throw ExitCode(1) }
  }

  final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.withLock { value += 1; return value } }
  }
}

/// `folio pipelines validate [DIR]`.
struct PipelinesCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pipelines", abstract: "Check pipeline definitions.", subcommands: [Validate.self])

  struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Validate every pipeline file; report each problem with file, line and a fix (exit 1 if any).")
    @OptionGroup var settings: ConfigurationOptions
    @Argument(help: "The folder (default: the configured pipelines folder).") var directory: String?

    func run() async throws {
      let folder = try directory ?? settings.resolve().pipelines
      let validation = PipelineLoader.validate(directory: URL(fileURLWithPath: folder))
      if validation.isValid {
        var out = "\(folder): \(validation.files.count) file(s), \(validation.pipelines.count) pipeline(s), no problems\n"
        for p in validation.pipelines {
          let kind = p.schedule.map { "scheduled \($0.cron) \($0.timeZone.identifier) → set \($0.targetSet)" } ?? "inbox"
          out += "  \(p.name) v\(p.version) (\(p.sourceFile)): \(p.steps.map(\.id).joined(separator: ", ")); \(kind)"
          out += p.isEnabled ? "\n" : " [disabled]\n"
        }
        Output.print(out)
      } else {
        Output.print("\(validation.diagnostics.count) problem(s) in \(folder):\n\(validation.report)\n")
        throw ExitCode(1)
      }
    }
  }
}
