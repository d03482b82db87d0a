import ArgumentParser
import FolioBase
import FolioDaemon
import FolioStore
import Foundation

/// `folio status`: queue depth, running jobs, throughput, failures, schedules (lessons row 12).
struct StatusCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "status", abstract: "Show the queue, running jobs, throughput, failures and schedules.")

  @OptionGroup var settings: ConfigurationOptions
  @Flag(name: .long, help: "Print JSON.") var json = false

  struct Report: Encodable {
    var database: String
    var daemons: [DaemonStatus]
    var maxQueuedJobs: Int
    var isQueueFull: Bool
    var status: StatusSummary
    var schedules: [ScheduleState]
    var intakeFailures: [IntakeFailure]
    enum CodingKeys: String, CodingKey {
      case database, daemons, status, schedules
      case maxQueuedJobs = "max_queued_jobs"
      case isQueueFull = "queue_full"
      case intakeFailures = "intake_failures"
    }
  }

  /// A daemon row with whether its heartbeat is recent.
  struct DaemonStatus: Encodable {
    var instance: DaemonInstance
    var isStale: Bool
    var heartbeatAgeSeconds: Double

    enum CodingKeys: String, CodingKey {
      case isStale = "stale"
      case heartbeatAgeSeconds = "heartbeat_age_s"
    }

    func encode(to encoder: any Encoder) throws {
      try instance.encode(to: encoder)
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(isStale, forKey: .isStale)
      try container.encode(heartbeatAgeSeconds, forKey: .heartbeatAgeSeconds)
    }
  }

  func run() async throws {
    let configuration = try settings.resolve()
    let workspace = try Workspace.open(configuration, loadPipelines: false)
    let store = workspace.store
    let status = try await store.status()
    let schedules = try await store.schedules()
    let intakeFailures = try await store.intakeFailures(limit: 5)
    let now = Date()
    let daemons = try await store.daemonInstances().map { instance in
      DaemonStatus(
        instance: instance, isStale: instance.isStale(at: now, staleAfter: Daemon.staleAfter),
        heartbeatAgeSeconds: max(0, now.timeIntervalSince(instance.heartbeatAt)))
    }
    let isQueueFull = status.queueDepth >= configuration.maxQueuedJobs
    if json {
      try Output.json(
        Report(
          database: configuration.database, daemons: daemons, maxQueuedJobs: configuration.maxQueuedJobs,
          isQueueFull: isQueueFull, status: status, schedules: schedules, intakeFailures: intakeFailures))
      return
    }
    var out = "Database   \(configuration.database)\n"
    if daemons.isEmpty {
      out += "Daemons    none running (start one with `folio daemon`)\n"
    } else {
      var table = Table("daemon", "state", "model", "from", "memory", "heartbeat")
      for daemon in daemons {
        let d = daemon.instance
        table.add(
          "\(d.host):\(d.pid)", daemon.isStale ? "stale (\(d.state.rawValue))" : d.state.rawValue,
          Table.cell(d.modelID, width: 40), d.modelOrigin ?? "-",
          d.rssMiB.map { String(format: "%.0f MiB", $0) } ?? "-",
          daemon.isStale
            ? "none for \(Int(daemon.heartbeatAgeSeconds)) s: stopped or hung" : Output.date(d.heartbeatAt))
      }
      out += "\nDaemons:\n" + table.rendered + "\n"
    }
    out += "Documents  \(status.documents)    Results  \(status.results)\n"
    out += "Jobs       queued \(status.queued), retrying \(status.retrying), running \(status.running), "
    out += "succeeded \(status.succeeded), failed \(status.failed), cancelled \(status.cancelled)\n"
    out += "Last hour  \(status.succeededInWindow) succeeded (\(String(format: "%.1f", status.jobsPerHour))/h), "
    out += "\(status.failedInWindow) failed"
    if let tps = status.tokensPerSecond { out += ", \(String(format: "%.1f", tps)) tokens/s" }
    out += "\n"
    if let oldest = status.oldestQueuedAt { out += "Oldest queued job since \(Output.date(oldest))\n" }
    if isQueueFull {
      out += "Queue full  \(status.queueDepth) waiting ≥ max_queued_jobs \(configuration.maxQueuedJobs): new files stay in "
      out += "the inbox until it drains (raise max_queued_jobs to accept more)\n"
    }
    if !status.runningJobs.isEmpty {
      var table = Table("job", "doc", "pipeline/step", "lang", "attempt", "worker", "started")
      for job in status.runningJobs {
        table.add(
          String(job.id ?? 0), String(job.documentID), "\(job.pipelineName)/\(job.stepID)", job.language,
          "\(job.attempts)/\(job.maxAttempts)", job.leaseOwner ?? "", Output.date(job.startedAt))
      }
      out += "\nRunning:\n" + table.rendered
    }
    if !status.recentFailures.isEmpty {
      var table = Table("job", "doc", "pipeline/step", "error", "message")
      for job in status.recentFailures {
        table.add(
          String(job.id ?? 0), String(job.documentID), "\(job.pipelineName)/\(job.stepID)", job.errorCode ?? "",
          Table.cell(job.errorMessage ?? "", width: 70))
      }
      out += "\nRecent failures:\n" + table.rendered
    }
    if !intakeFailures.isEmpty {
      var table = Table("file", "error", "now at")
      for failure in intakeFailures {
        table.add(Table.cell(failure.relativePath, width: 40), failure.errorCode, failure.finalPath ?? "-")
      }
      out += "\nRecently refused at intake:\n" + table.rendered
    }
    if !schedules.isEmpty {
      var table = Table("schedule", "cron", "set", "state", "next run", "last run")
      for s in schedules {
        table.add(
          s.pipelineName, "\(s.cron) \(s.timeZone)", s.targetSet, s.status, Output.date(s.nextRunAt),
          s.lastRunStatus.map { "\($0) \(Output.date(s.lastFinishedAt))" } ?? "-")
      }
      out += "\nSchedules:\n" + table.rendered
    }
    Output.print(out)
  }
}

/// Filters shared by `folio results list|search|export`.
struct ResultFilterOptions: ParsableArguments {
  @Option(name: .long, help: "Only this document set.") var set: String?
  @Option(name: .long, help: "Only this pipeline.") var pipeline: String?
  @Option(name: .long, help: "Only this step.") var step: String?
  @Option(name: .long, help: "Only this document id.") var document: Int64?
  @Option(name: .long, help: "Only this language (translations).") var language: String?
  @Option(name: .long, help: "Only results of this model id.") var modelID: String?
  @Flag(name: .long, help: "Include results of older generations (before a reprocess).") var allGenerations = false
  @Option(name: .long, help: "At most this many.") var limit: Int = 100

  var filter: ResultFilter {
    ResultFilter(
      documentID: document, setName: set, pipeline: pipeline, step: step, language: language, modelID: modelID,
      latestOnly: !allGenerations, limit: limit)
  }
}

/// `folio results list|show|search|export`.
struct ResultsCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "results", abstract: "List, show, search and export results.",
    subcommands: [List.self, Show.self, Search.self, Export.self], defaultSubcommand: List.self)

  static func table(_ rows: [ResultRow]) -> String {
    var table = Table("result", "doc", "set", "file", "pipeline/step", "lang", "model", "text")
    for r in rows {
      table.add(
        String(r.resultID), String(r.documentID), r.setName, Table.cell(r.documentPath, width: 30),
        "\(r.pipeline)/\(r.step)", r.language ?? "", Table.cell(r.modelID, width: 24), Table.cell(r.text, width: 50))
    }
    return table.rendered
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the latest results, newest first.")
    @OptionGroup var settings: ConfigurationOptions
    @OptionGroup var filters: ResultFilterOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() async throws {
      let workspace = try Workspace.open(try settings.resolve(), loadPipelines: false)
      let rows = try await workspace.store.results(matching: filters.filter)
      if json { try Output.json(rows) } else { Output.print(ResultsCommand.table(rows)) }
    }
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one result in full.")
    @OptionGroup var settings: ConfigurationOptions
    @Argument(help: "The result id.") var id: Int64
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() async throws {
      let workspace = try Workspace.open(try settings.resolve(), loadPipelines: false)
      guard let row = try await workspace.store.resultRow(id: id) else {
        throw FolioError(.invalidArgument, "there is no result \(id); see `folio results list`")
      }
      if json {
        try Output.json(row)
        return
      }
      var out = "result      \(row.resultID)\ndocument    \(row.documentID) (\(row.setName)/\(row.documentPath))\n"
      out += "pipeline    \(row.pipeline) v\(row.pipelineVersion), step \(row.step) (\(row.task)), generation \(row.generation)\n"
      if let language = row.language { out += "language    \(language)\n" }
      out += "model       \(row.modelID)\n"
      out += "tokens      \(row.promptTokens ?? 0) prompt, \(row.completionTokens ?? 0) generated, \(row.totalMilliseconds ?? 0) ms\n"
      out += "parameters  \(row.parameters)\ncreated     \(Output.date(row.createdAt))\n\n\(row.text)\n"
      Output.print(out)
    }
  }

  struct Search: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Full-text search over result text (best first).")
    @OptionGroup var settings: ConfigurationOptions
    @OptionGroup var filters: ResultFilterOptions
    @Argument(help: "Words to find (all must occur).") var query: [String]
    @Flag(name: .long, help: "Read the query as FTS5 syntax (\"phrase\", a OR b, pay*).") var fts = false
    @Flag(name: .long, help: "Print JSON.") var json = false

    struct Hit: Encodable {
      var result: ResultRow
      var snippet: String
    }

    func run() async throws {
      let workspace = try Workspace.open(try settings.resolve(), loadPipelines: false)
      let hits = try await workspace.store.search(
        query.joined(separator: " "), syntax: fts ? .fts5 : .words, filter: filters.filter)
      if json {
        try Output.json(hits.map { Hit(result: $0.result, snippet: $0.snippet) })
        return
      }
      var table = Table("result", "doc", "file", "pipeline/step", "lang", "match")
      for hit in hits {
        table.add(
          String(hit.result.resultID), String(hit.result.documentID), Table.cell(hit.result.documentPath, width: 30),
          "\(hit.result.pipeline)/\(hit.result.step)", hit.result.language ?? "", Table.cell(hit.snippet, width: 60))
      }
      Output.print(table.rendered)
    }
  }

  struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Export results as CSV (RFC 4180) or JSON.")
    @OptionGroup var settings: ConfigurationOptions
    @OptionGroup var filters: ResultFilterOptions
    @Option(name: .long, help: "csv or json.") var format: String = "csv"
    @Option(name: [.short, .long], help: "Write to this file instead of stdout.") var output: String?

    func validate() throws {
      guard ["csv", "json"].contains(format) else { throw ValidationError("--format must be csv or json") }
    }

    func run() async throws {
      let workspace = try Workspace.open(try settings.resolve(), loadPipelines: false)
      var filter = filters.filter
      filter.limit = Int.max
      let data: Data =
        format == "csv"
        ? Data(try await workspace.store.exportResultsCSV(matching: filter).utf8)
        : try await workspace.store.exportResultsJSON(matching: filter) + Data("\n".utf8)
      if let output {
        try data.write(to: URL(fileURLWithPath: output), options: .atomic)
      } else {
        FileHandle.standardOutput.write(data)
      }
    }
  }
}

/// `folio jobs list|retry`.
struct JobsCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "jobs", abstract: "List jobs and retry failed ones.", subcommands: [List.self, Retry.self],
    defaultSubcommand: List.self)

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List jobs, newest first.")
    @OptionGroup var settings: ConfigurationOptions
    @Option(name: .long, help: "Only these states (queued, running, succeeded, failed, cancelled), comma-separated.")
    var status: String?
    @Option(name: .long, help: "Only this document id.") var document: Int64?
    @Option(name: .long, help: "Only this pipeline.") var pipeline: String?
    @Option(name: .long, help: "Only this step.") var step: String?
    @Option(name: .long, help: "At most this many.") var limit: Int = 100
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() async throws {
      var statuses: Set<JobStatus> = []
      for name in (status ?? "").split(separator: ",") {
        guard let s = JobStatus(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
          throw ValidationError("unknown status \(name); use queued, running, succeeded, failed or cancelled")
        }
        statuses.insert(s)
      }
      let workspace = try Workspace.open(try settings.resolve(), loadPipelines: false)
      let jobs = try await workspace.store.jobs(
        matching: JobFilter(statuses: statuses, documentID: document, pipelineName: pipeline, stepID: step, limit: limit))
      if json {
        try Output.json(jobs)
        return
      }
      var table = Table("job", "doc", "pipeline/step", "lang", "gen", "status", "attempts", "trigger", "error")
      for job in jobs {
        table.add(
          String(job.id ?? 0), String(job.documentID), "\(job.pipelineName)/\(job.stepID)", job.language,
          String(job.generation), job.status.rawValue, "\(job.attempts)/\(job.maxAttempts)", job.trigger.rawValue,
          job.errorCode.map { "\($0): \(Table.cell(job.errorMessage ?? "", width: 50))" } ?? "")
      }
      Output.print(table.rendered)
    }
  }

  struct Retry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Queue failed or cancelled jobs again (attempts start from zero).")
    @OptionGroup var settings: ConfigurationOptions
    @Argument(help: "Job ids.") var ids: [Int64] = []
    @Flag(name: .long, help: "Retry every failed job (with --pipeline/--step to narrow it).") var allFailed = false
    @Option(name: .long, help: "With --all-failed: only this pipeline.") var pipeline: String?
    @Option(name: .long, help: "With --all-failed: only this step.") var step: String?

    func validate() throws {
      if ids.isEmpty && !allFailed { throw ValidationError("give job ids, or --all-failed") }
    }

    func run() async throws {
      let workspace = try Workspace.open(try settings.resolve(), loadPipelines: false)
      let requeued =
        allFailed
        ? try await workspace.store.retryFailed(matching: JobFilter(pipelineName: pipeline, stepID: step))
        : try await workspace.store.retry(jobIDs: ids)
      Output.print(
        "Queued again: \(requeued.count) job(s)\(requeued.isEmpty ? "" : " (" + requeued.map(String.init).joined(separator: ", ") + ")"). The daemon picks them up; `folio daemon --once` runs them now.\n")
    }
  }
}

/// `folio sets list`.
struct SetsCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sets", abstract: "Document sets (first-level inbox folders).", subcommands: [List.self],
    defaultSubcommand: List.self)

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List document sets with counts.")
    @OptionGroup var settings: ConfigurationOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() async throws {
      let workspace = try Workspace.open(try settings.resolve(), loadPipelines: false)
      let sets = try await workspace.store.sets()
      if json {
        try Output.json(sets)
        return
      }
      var table = Table("set", "documents", "images", "texts", "failed", "results", "last added")
      for s in sets {
        table.add(
          s.setName, String(s.documents), String(s.images), String(s.texts), String(s.failedDocuments),
          String(s.results), Output.date(s.lastAddedAt))
      }
      Output.print(table.rendered)
    }
  }
}
