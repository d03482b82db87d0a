import FolioBase
import Foundation
import GRDB
import Testing

@testable import FolioStore

@Suite("Documents and the job queue")
struct StoreJobTests {
  @Test("Duplicate policies: reject says which document, link and allow record the link")
  func duplicates() async throws {
    let store = try Store.inMemory()
    let first = try await store.insertDocument(newDocument(1), policy: .reject)
    #expect(first.original == nil && first.document.status == .pending)
    var copy = newDocument(1)
    copy.relativePath = "again/doc1.txt"
    await #expect {
      try await store.insertDocument(copy, policy: .reject)
    } throws: { error in
      guard let e = error as? FolioError else { return false }
      return e.code == .duplicateDocument && e.message.contains("duplicate of document \(first.document.id!)")
    }
    #expect(try await store.documents().count == 1)  // nothing written on reject
    let linked = try await store.insertDocument(copy, policy: .link)
    #expect(linked.document.status == .linked)
    #expect(linked.document.duplicateOf == first.document.id)
    #expect(!linked.needsProcessing)
    let allowed = try await store.insertDocument(copy, policy: .allow)
    #expect(allowed.needsProcessing && allowed.document.duplicateOf == first.document.id)
    #expect(try await store.document(sha256: sha(1))?.id == first.document.id)
    await expectError(.invalidArgument) {
      try await store.insertDocument(
        NewDocument(sha256: "nope", originalPath: "/x", sizeBytes: 0, kind: .text), policy: .allow)
    }
  }

  @Test("Enqueue is idempotent; dependent steps wait for their input; results are written with the job")
  func lifecycle() async throws {
    let clock = TestClock()
    let store = try Store.inMemory(now: clock.closure)
    let doc = try await store.insertDocument(newDocument(1, kind: .image), policy: .reject).document
    let plan = [
      JobPlan(stepID: "ocr", task: "ocr"),
      JobPlan(stepID: "translate", task: "translate", language: "de", inputStepID: "ocr"),
      JobPlan(stepID: "translate", task: "translate", language: "ja", inputStepID: "ocr"),
    ]
    let jobs = try await store.enqueue(
      documentID: doc.id!, pipelineName: "images", pipelineVersion: 2, steps: plan, trigger: .inbox)
    #expect(jobs.count == 3)
    #expect(jobs[1].dependsOnJobID == jobs[0].id && jobs[2].dependsOnJobID == jobs[0].id)
    let again = try await store.enqueue(
      documentID: doc.id!, pipelineName: "images", pipelineVersion: 2, steps: plan, trigger: .inbox)
    #expect(again.map(\.id) == jobs.map(\.id))
    #expect(try await store.jobs().count == 3)

    let ocr = try #require(try await store.claimNextJob(owner: "w1", leaseDuration: .seconds(60)))
    #expect(ocr.id == jobs[0].id && ocr.attempts == 1 && ocr.status == .running)
    #expect(try await store.document(id: doc.id!)?.status == .processing)
    // The translations read the OCR text: nothing else is claimable yet.
    #expect(try await store.claimNextJob(owner: "w2", leaseDuration: .seconds(60)) == nil)
    let lease = try #require(ocr.lease)
    let result = try await store.complete(lease, output: output("Hallo, Welt"))
    #expect(result.jobID == ocr.id && result.pipelineVersion == 2 && result.modelID == "qwen3.5-0.8b")
    #expect(result.totalMilliseconds == 2400)
    #expect(try await store.result(jobID: ocr.id!)?.text == "Hallo, Welt")
    // Completing twice (a worker that lost track) writes nothing.
    await expectError(.leaseLost) { try await store.complete(lease, output: output("again")) }

    let de = try #require(try await store.claimNextJob(owner: "w1", leaseDuration: .seconds(60)))
    #expect(de.language == "de")
    try await store.complete(de.lease!, output: output("Hello, world"))
    let ja = try #require(try await store.claimNextJob(owner: "w1", leaseDuration: .seconds(60)))
    try await store.complete(ja.lease!, output: output("こんにちは"))
    #expect(try await store.document(id: doc.id!)?.status == .processed)
    let rows = try await store.results()
    #expect(rows.count == 3)
    #expect(Set(rows.compactMap(\.language)) == ["de", "ja"])

    // Reprocess: a new generation; listing shows only the newest unless asked.
    let re = try await store.enqueue(
      documentID: doc.id!, pipelineName: "images", pipelineVersion: 3, steps: [plan[0]], trigger: .reprocess)
    #expect(re[0].generation == 1 && re[0].trigger == .reprocess)
    let claimed = try #require(try await store.claimNextJob(owner: "w1", leaseDuration: .seconds(60)))
    try await store.complete(claimed.lease!, output: output("Hallo, Welt!"))
    #expect(try await store.results(matching: ResultFilter(step: "ocr")).map(\.text) == ["Hallo, Welt!"])
    #expect(try await store.results(matching: ResultFilter(step: "ocr", latestOnly: false)).count == 2)
    #expect(try await store.results(matching: ResultFilter(pipelineVersionBelow: 3)).count == 2)
  }

  @Test("Priority first, then age; task filters")
  func ordering() async throws {
    let store = try Store.inMemory()
    let a = try await store.insertDocument(newDocument(1), policy: .reject).document
    let b = try await store.insertDocument(newDocument(2, kind: .image), policy: .reject).document
    _ = try await store.enqueue(
      documentID: a.id!, pipelineName: "documents", pipelineVersion: 1,
      steps: [JobPlan(stepID: "s", task: "summarize")],
      trigger: .inbox)
    let urgent = try await store.enqueue(
      documentID: b.id!, pipelineName: "images", pipelineVersion: 1, steps: [JobPlan(stepID: "c", task: "caption")],
      trigger: .add, priority: 10)
    #expect(
      try await store.claimNextJob(owner: "w", leaseDuration: .seconds(9), tasks: ["summarize"])?.task == "summarize")
    #expect(try await store.claimNextJob(owner: "w", leaseDuration: .seconds(9))?.id == urgent[0].id)
  }

  @Test("An expired lease returns the job to the queue, counting the attempt; the last attempt fails permanently")
  func leaseExpiry() async throws {
    let clock = TestClock()
    let store = try Store.inMemory(now: clock.closure)
    let doc = try await store.insertDocument(newDocument(1), policy: .reject).document
    _ = try await store.enqueue(
      documentID: doc.id!, pipelineName: "documents", pipelineVersion: 1,
      steps: [JobPlan(stepID: "summary", task: "summarize")], trigger: .inbox, maxAttempts: 2)

    let first = try #require(try await store.claimNextJob(owner: "dead-worker", leaseDuration: .seconds(60)))
    clock.advance(by: 30)
    let renewed = try await store.heartbeat(first.lease!, leaseDuration: .seconds(60))
    #expect(renewed.expiresAt == clock.now.addingTimeInterval(60))
    clock.advance(by: 59)
    #expect(try await store.requeueExpiredLeases() == LeaseRecovery(requeued: [], failed: []))  // heartbeat kept it
    clock.advance(by: 2)  // the worker died: no more heartbeats
    let recovery = try await store.requeueExpiredLeases()
    #expect(recovery.requeued == [first.id!])
    let requeued = try #require(try await store.job(id: first.id!))
    #expect(requeued.status == .queued && requeued.attempts == 1 && requeued.errorCode == "lease_expired")
    #expect(!requeued.isNeverAttempted)
    #expect(try await store.status().retrying == 1)
    // The dead worker's late writes are refused.
    await expectError(.leaseLost) { try await store.heartbeat(first.lease!, leaseDuration: .seconds(60)) }
    await expectError(.leaseLost) { try await store.complete(first.lease!, output: output("late")) }

    // Second (last) attempt also dies; claim itself recovers expired leases.
    let second = try #require(try await store.claimNextJob(owner: "w2", leaseDuration: .seconds(60)))
    #expect(second.attempts == 2)
    clock.advance(by: 61)
    #expect(try await store.claimNextJob(owner: "w3", leaseDuration: .seconds(60)) == nil)
    let failed = try #require(try await store.job(id: first.id!))
    #expect(failed.status == .failed && failed.errorCode == FolioError.Code.leaseExpired.rawValue)
    #expect(failed.errorMessage?.contains("attempt 2 of 2") == true)
    #expect(try await store.document(id: doc.id!)?.status == .failed)
    #expect(try await store.results().isEmpty)

    // Retry puts it back as never attempted.
    #expect(try await store.retryFailed() == [first.id!])
    let retried = try #require(try await store.job(id: first.id!))
    #expect(retried.isNeverAttempted && retried.trigger == .retry)
  }

  @Test("A restarted daemon can take back its own leases at once")
  func requeueOwnLeases() async throws {
    let store = try Store.inMemory()
    try await documentWithJob(store, 1)
    let job = try #require(try await store.claimNextJob(owner: "host:41", leaseDuration: .seconds(600)))
    #expect(try await store.requeueLeases(heldBy: "host:99").requeued.isEmpty)
    #expect(try await store.requeueLeases(heldBy: "host:41").requeued == [job.id!])
  }

  @Test("Transient failures back off; permanent ones cancel dependent steps; retry brings the chain back")
  func failures() async throws {
    let clock = TestClock()
    let store = try Store.inMemory(now: clock.closure)
    let doc = try await store.insertDocument(newDocument(1, kind: .image), policy: .reject).document
    let jobs = try await store.enqueue(
      documentID: doc.id!, pipelineName: "images", pipelineVersion: 1,
      steps: [
        JobPlan(stepID: "ocr", task: "ocr"),
        JobPlan(stepID: "tr", task: "translate", language: "de", inputStepID: "ocr"),
      ],
      trigger: .inbox)
    let a = try #require(try await store.claimNextJob(owner: "w", leaseDuration: .seconds(60)))
    let back = try await store.markFailed(
      a.lease!, code: .promptTooLong, message: "busy", permanent: false, retryAfter: .seconds(30))
    #expect(back.status == .queued && back.errorCode == "prompt_too_long")
    #expect(try await store.claimNextJob(owner: "w", leaseDuration: .seconds(60)) == nil)  // backing off
    clock.advance(by: 31)
    let b = try #require(try await store.claimNextJob(owner: "w", leaseDuration: .seconds(60)))
    #expect(b.attempts == 2)
    let failed = try await store.markFailed(
      b.lease!, code: FolioError.Code(rawValue: "corrupt_image"), message: "bad PNG", permanent: true)
    #expect(failed.status == .failed && failed.finishedAt == clock.now)
    let dependent = try #require(try await store.job(id: jobs[1].id!))
    #expect(dependent.status == .cancelled && dependent.errorCode == "dependency_failed")
    #expect(try await store.document(id: doc.id!)?.status == .failed)
    #expect(Set(try await store.retry(jobIDs: [jobs[0].id!])) == Set(jobs.compactMap(\.id)))
    #expect(try await store.jobs(matching: JobFilter(statuses: [.queued])).count == 2)
    await expectError(.jobNotFound) { try await store.retry(jobIDs: [999]) }
    #expect(Store.retryDelay(afterAttempt: 1) == .seconds(30))
    #expect(Store.retryDelay(afterAttempt: 9) == .seconds(600))
  }

  @Test("Two stores on one file claiming concurrently never get the same job")
  func concurrentClaims() async throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("folio.sqlite").path
    let one = try Store.open(path: path)
    let two = try Store.open(path: path)
    for n in 1...60 { try await documentWithJob(one, n) }
    func drain(_ store: Store, owner: String) async throws -> [Int64] {
      var claimed: [Int64] = []
      while let job = try await store.claimNextJob(owner: owner, leaseDuration: .seconds(60)) {
        claimed.append(job.id!)
        try await store.complete(job.lease!, output: output("done by \(owner)"))
      }
      return claimed
    }
    async let a = drain(one, owner: "one")
    async let b = drain(two, owner: "two")
    async let c = drain(one, owner: "one-b")
    let (x, y, z) = try await (a, b, c)
    let all = x + y + z
    #expect(all.count == 60)
    #expect(Set(all).count == 60)
    let results = try await two.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM result") }
    #expect(results == 60)
  }

  @Test("A separate sqlite3 process reads while the store holds a write transaction open")
  func sqlite3Reader() async throws {
    let cli = "/usr/bin/sqlite3"
    try #require(FileManager.default.isExecutableFile(atPath: cli), "sqlite3 CLI not installed")
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("folio.sqlite").path
    let store = try Store.open(path: path)
    for n in 1...3 { try await documentWithJob(store, n) }
    let seen: String = try await store.writer.write { db in
      try db.execute(sql: "UPDATE job SET priority = 5")
      try db.execute(sql: "DELETE FROM job WHERE id = 3")
      // The transaction is open: a reader in another process sees the last committed state, without waiting.
      let process = Process()
      process.executableURL = URL(fileURLWithPath: cli)
      process.arguments = [
        "-readonly", "-cmd", ".timeout 1", path, "SELECT count(*) || ',' || sum(priority) FROM v_jobs;",
      ]
      let pipe = Pipe()
      process.standardOutput = pipe
      process.standardError = pipe
      try process.run()
      process.waitUntilExit()
      return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }
    #expect(seen.trimmingCharacters(in: .whitespacesAndNewlines) == "3,0")
  }
}
