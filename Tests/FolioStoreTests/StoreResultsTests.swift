import FolioBase
import Foundation
import GRDB
import Testing

@testable import FolioStore

/// Queues and completes one summarize job per text; returns the store.
func storeWithResults(_ texts: [String], clock: TestClock = TestClock()) async throws -> Store {
  let store = try Store.inMemory(now: clock.closure)
  for (n, text) in texts.enumerated() {
    try await documentWithJob(store, n + 1, set: n.isMultiple(of: 2) ? "contracts" : "default")
    let job = try #require(try await store.claimNextJob(owner: "w", leaseDuration: .seconds(60)))
    try await store.complete(job.lease!, output: output(text))
  }
  return store
}

/// A minimal RFC 4180 reader for round-trip checks.
func parseCSV(_ text: String) -> [[String]] {
  var rows: [[String]] = []
  var row: [String] = []
  var field = ""
  var quoted = false
  var chars = Array(text.unicodeScalars)[...]
  while let c = chars.popFirst() {
    if quoted {
      if c == "\"" {
        if chars.first == "\"" {
          field.unicodeScalars.append("\"")
          chars = chars.dropFirst()
        } else {
          quoted = false
        }
      } else {
        field.unicodeScalars.append(c)
      }
    } else if c == "\"" {
      quoted = true
    } else if c == "," {
      row.append(field)
      field = ""
    } else if c == "\r" && chars.first == "\n" {
      chars = chars.dropFirst()
      row.append(field)
      rows.append(row)
      row = []
      field = ""
    } else {
      field.unicodeScalars.append(c)
    }
  }
  return rows
}

@Suite("Results: search, export, translation memory, schedules, status")
struct StoreResultsTests {
  @Test("Full-text search finds words, ranks, highlights, ignores accents, and rejects bad FTS5 syntax")
  func search() async throws {
    let store = try await storeWithResults([
      "The invoice total is 1,200 EUR, payable in thirty days.",
      "A cat sleeps on a red sofa.",
      "Der Vertrag endet am 31. Dezember; Kündigung schriftlich.",
      "Invoice reminder: the invoice is overdue.",
    ])
    let hits = try await store.search("invoice")
    #expect(hits.count == 2)
    #expect(hits.first?.result.text.hasPrefix("Invoice reminder") == true)  // two matches rank higher
    #expect(hits.first?.snippet.contains("[Invoice]") == true)
    #expect(try await store.search("kundigung").count == 1)  // remove_diacritics
    #expect(try await store.search("invoice", filter: ResultFilter(setName: "contracts")).count == 1)
    #expect(try await store.search("\"red sofa\"", syntax: .fts5).count == 1)
    #expect(try await store.search("sofa OR vertrag", syntax: .fts5).count == 2)
    #expect(try await store.search("cat\" OR (").isEmpty)  // plain words are quoted, never an FTS5 error
    await expectError(.invalidQuery) { try await store.search("\"unbalanced", syntax: .fts5) }
    #expect(try await store.search("   ").isEmpty)
    // Triggers keep the index in step with edits and deletes.
    try await store.writer.write { db in
      try db.execute(sql: "UPDATE result SET text = 'A dog sleeps.' WHERE text LIKE 'A cat%'")
    }
    #expect(try await store.search("cat").isEmpty)
    #expect(try await store.search("dog").count == 1)
    try await store.writer.write { db in try db.execute(sql: "DELETE FROM result WHERE text = 'A dog sleeps.'") }
    #expect(try await store.search("dog").isEmpty)
  }

  @Test("CSV export quotes commas, quotes and newlines, and round-trips")
  func csvExport() async throws {
    let tricky = "Line one, with comma\nLine \"two\"\r\nend"
    let store = try await storeWithResults([tricky, "plain", " padded "])
    let csv = try await store.exportResultsCSV()
    #expect(csv.hasPrefix(Store.csvHeader.joined(separator: ",") + "\r\n"))
    let rows = parseCSV(csv)
    #expect(rows.count == 4)
    #expect(rows.allSatisfy { $0.count == Store.csvHeader.count })
    let texts = rows.dropFirst().map { $0[Store.csvHeader.firstIndex(of: "text")!] }
    #expect(Set(texts) == [tricky, "plain", " padded "])
    #expect(CSV.field("a,b") == "\"a,b\"")
    #expect(CSV.field("say \"hi\"") == "\"say \"\"hi\"\"\"")
    #expect(CSV.field("x\ny") == "\"x\ny\"")
    #expect(CSV.field("plain") == "plain")
    #expect(CSV.field("") == "")
  }

  @Test("JSON export uses snake_case keys and ISO 8601 dates")
  func jsonExport() async throws {
    let store = try await storeWithResults(["hello"])
    let data = try await store.exportResultsJSON()
    let array = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
    #expect(array.count == 1)
    #expect(array[0]["model_id"] as? String == "qwen3.5-0.8b")
    #expect(array[0]["set_name"] as? String == "contracts")
    #expect((array[0]["created_at"] as? String)?.hasSuffix("Z") == true)
    let parameters = try #require(array[0]["parameters"] as? String)
    #expect(parameters == #"{"max_tokens":512,"temperature":0.3,"thinking":false}"#)
  }

  @Test("Translation memory: one entry per (segment, language, model); resumable runs find only what is missing")
  func translationMemory() async throws {
    let store = try Store.inMemory()
    let doc = try await store.insertDocument(newDocument(1, set: "contracts"), policy: .reject).document
    let segments = try await store.saveSegments(
      documentID: doc.id!, source: "document", texts: ["First clause.", "Second clause.", "First clause."])
    #expect(segments.map(\.ordinal) == [0, 1, 2])
    #expect(segments[0].sourceHash == segments[2].sourceHash)
    // Saving again is idempotent.
    #expect(try await store.saveSegments(documentID: doc.id!, source: "document", texts: ["changed"]) == segments)

    let first = try await store.recordTranslation(
      sourceText: "First clause.", translatedText: "Erste Klausel.", language: "de", modelID: "m1")
    let second = try await store.recordTranslation(
      sourceText: "First clause.", translatedText: "Something else", language: "de", modelID: "m1")
    #expect(second == first)  // the first finished translation wins
    let fixed = try await store.recordTranslation(
      sourceText: "First clause.", translatedText: "Erste Bestimmung.", language: "de", modelID: "m1", replace: true)
    #expect(fixed.id == first.id && fixed.translatedText == "Erste Bestimmung.")
    _ = try await store.recordTranslation(
      sourceText: "First clause.", translatedText: "第一条。", language: "ja", modelID: "m1")
    _ = try await store.recordTranslation(
      sourceText: "First clause.", translatedText: "Erste.", language: "de", modelID: "m2")

    let missing = try await store.untranslatedSegments(
      documentID: doc.id!, source: "document", language: "de", modelID: "m1")
    #expect(missing.map(\.text) == ["Second clause."])
    let found = try await store.translations(sourceHashes: segments.map(\.sourceHash), language: "de", modelID: "m1")
    #expect(found.count == 1 && found[segments[0].sourceHash]?.translatedText == "Erste Bestimmung.")
    // SQLite enforces the key.
    await #expect(throws: DatabaseError.self) {
      try await store.writer.write { db in
        try db.execute(
          sql:
            "INSERT INTO translation_memory (source_hash, target_language, model_id, source_text, translated_text, created_at) VALUES (?, 'de', 'm1', 'x', 'y', '2024-01-01')",
          arguments: [segments[0].sourceHash])
      }
    }
  }

  @Test(
    "Schedules: state persists, overlap skip and queue, runs finish with their jobs, skipped occurrences have reasons")
  func schedules() async throws {
    let clock = TestClock()
    let store = try Store.inMemory(now: clock.closure)
    let def = ScheduleDefinition(
      pipelineName: "nightly-translation", pipelineVersion: 1, cron: "0 2 * * *", targetSet: "contracts")
    let synced = try await store.syncSchedules([def])
    #expect(synced.count == 1 && synced[0].status == "idle" && synced[0].nextRunAt == nil)
    let tonight = clock.now
    let tomorrow = tonight.addingTimeInterval(86_400)
    try await store.setNextRunAt(pipelineName: def.pipelineName, tonight)

    // Missed occurrences are recorded once each with a reason.
    let skipped = try await store.recordSkippedOccurrences(
      pipelineName: def.pipelineName,
      occurrences: [tonight.addingTimeInterval(-172_800), tonight.addingTimeInterval(-86_400)],
      reason: "missed: the daemon was not running", nextRunAt: tonight)
    #expect(skipped.count == 2 && skipped.allSatisfy { $0.status == .skipped })

    guard
      case .started(let run) = try await store.beginScheduleRun(
        pipelineName: def.pipelineName, scheduledFor: tonight, nextRunAt: tomorrow)
    else {
      Issue.record("the run did not start")
      return
    }
    #expect(try await store.schedule(named: def.pipelineName)?.status == "running")
    #expect(try await store.schedule(named: def.pipelineName)?.nextRunAt == tomorrow)
    // The same occurrence again (a restart, a second daemon) is recognised.
    if case .alreadyHandled = try await store.beginScheduleRun(pipelineName: def.pipelineName, scheduledFor: tonight) {
    } else {
      Issue.record("a handled occurrence started again")
    }

    let doc = try await store.insertDocument(newDocument(1, set: "contracts"), policy: .reject).document
    let jobs = try await store.enqueue(
      documentID: doc.id!, pipelineName: def.pipelineName, pipelineVersion: 1,
      steps: [
        JobPlan(stepID: "translate", task: "translate", language: "de"),
        JobPlan(stepID: "translate", task: "translate", language: "ja"),
      ],
      trigger: .schedule, scheduleRunID: run.id)
    #expect(jobs.count == 2)

    // Overlap: the next tick while running is skipped.
    clock.advance(by: 86_400)
    guard
      case .skipped(let overlapped) = try await store.beginScheduleRun(
        pipelineName: def.pipelineName, scheduledFor: tomorrow)
    else {
      Issue.record("overlap was not skipped")
      return
    }
    #expect(overlapped.reason?.hasPrefix("overlap") == true)

    for _ in 0..<2 {
      let job = try #require(try await store.claimNextJob(owner: "w", leaseDuration: .seconds(60)))
      try await store.complete(job.lease!, output: output("übersetzt"))
    }
    let state = try #require(try await store.schedule(named: def.pipelineName))
    #expect(state.status == "idle" && state.lastRunStatus == "succeeded" && state.lastFinishedAt == clock.now)
    let runs = try await store.scheduleRuns(pipelineName: def.pipelineName)
    #expect(runs.count == 4)
    #expect(runs.first { $0.id == run.id }?.status == .succeeded)

    // The next run only redoes what is missing: succeeded jobs stay, nothing new is queued.
    clock.advance(by: 86_400)
    guard
      case .started(let next) = try await store.beginScheduleRun(
        pipelineName: def.pipelineName, scheduledFor: clock.now)
    else {
      Issue.record("the next run did not start")
      return
    }
    let again = try await store.enqueue(
      documentID: doc.id!, pipelineName: def.pipelineName, pipelineVersion: 1,
      steps: [JobPlan(stepID: "translate", task: "translate", language: "de")], trigger: .schedule,
      scheduleRunID: next.id)
    #expect(again[0].status == .succeeded)
    let finished = try await store.finishScheduleRun(runID: next.id!, reason: "nothing to translate")
    #expect(finished.status == .succeeded)

    // Overlap queue: a pending run waits, then starts.
    var queueDef = def
    queueDef.overlap = "queue"
    try await store.syncSchedules([queueDef])
    guard
      case .started(let a) = try await store.beginScheduleRun(
        pipelineName: def.pipelineName, scheduledFor: clock.now.addingTimeInterval(60))
    else {
      Issue.record("run a did not start")
      return
    }
    guard
      case .queued = try await store.beginScheduleRun(
        pipelineName: def.pipelineName, scheduledFor: clock.now.addingTimeInterval(120))
    else {
      Issue.record("run b was not queued")
      return
    }
    guard
      case .skipped = try await store.beginScheduleRun(
        pipelineName: def.pipelineName, scheduledFor: clock.now.addingTimeInterval(180))
    else {
      Issue.record("run c was not skipped")
      return
    }
    #expect(try await store.startPendingScheduleRun(pipelineName: def.pipelineName) == nil)  // a is running
    try await store.finishScheduleRun(runID: a.id!)
    #expect(try await store.startPendingScheduleRun(pipelineName: def.pipelineName)?.status == .running)

    // A pipeline removed from pipelines/ is disabled, its history kept.
    let after = try await store.syncSchedules([])
    #expect(after.first?.isEnabled == false)
    #expect(try await store.scheduleRuns(pipelineName: def.pipelineName).count == 8)
  }

  @Test("Sets and status summary")
  func statusAndSets() async throws {
    let clock = TestClock()
    let store = try await storeWithResults(["a", "b", "c"], clock: clock)
    try await documentWithJob(store, 10, set: "scans")
    try await documentWithJob(store, 11, set: "scans")
    let running = try #require(try await store.claimNextJob(owner: "w", leaseDuration: .seconds(60)))
    let sets = try await store.sets()
    #expect(sets.map(\.setName) == ["contracts", "default", "scans"])
    #expect(sets.first { $0.setName == "contracts" }?.results == 2)
    #expect(sets.first { $0.setName == "scans" }?.documents == 2)
    let status = try await store.status()
    #expect(status.queued == 1 && status.running == 1 && status.succeeded == 3 && status.failed == 0)
    #expect(status.queueDepth == 1)
    #expect(status.runningJobs.map(\.id) == [running.id])
    #expect(status.succeededInWindow == 3 && status.jobsPerHour == 3)
    #expect(status.tokensPerSecond == 10)  // 20 tokens in 2 s
    #expect(status.documents == 5 && status.results == 3)
    clock.advance(by: 7200)
    #expect(try await store.status().succeededInWindow == 0)
    let json = try Store.json(status)
    #expect(String(decoding: json, as: UTF8.self).contains("\"queue_depth\"") == false)
    #expect(String(decoding: json, as: UTF8.self).contains("\"running_jobs\""))
  }
}
