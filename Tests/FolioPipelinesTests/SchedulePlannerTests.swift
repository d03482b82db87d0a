import Foundation
import Testing

@testable import FolioPipelines

@Suite("Missed runs and catch-up")
struct SchedulePlannerTests {
  func schedule(_ missed: MissedRunPolicy) throws -> PipelineSchedule {
    PipelineSchedule(cron: try CronExpression(parsing: "0 2 * * *"), targetSet: "contracts", missed: missed)
  }

  @Test("A new schedule starts at the next occurrence, never retroactively")
  func fresh() throws {
    let d = SchedulePlanner.decide(schedule: try schedule(.runOnce), nextRunAt: nil, now: utc("2024-05-10T03:00:00Z"))
    #expect(d.runs.isEmpty && d.skipped.isEmpty)
    #expect(d.nextRunAt == utc("2024-05-11T02:00:00Z"))
  }

  @Test("Not yet due: nothing happens")
  func notDue() throws {
    let next = utc("2024-05-11T02:00:00Z")
    let d = SchedulePlanner.decide(schedule: try schedule(.runOnce), nextRunAt: next, now: utc("2024-05-10T03:00:00Z"))
    #expect(d == ScheduleDecision(nextRunAt: next))
  }

  @Test("On time: runs once and moves on")
  func onTime() throws {
    let d = SchedulePlanner.decide(
      schedule: try schedule(.skip), nextRunAt: utc("2024-05-10T02:00:00Z"), now: utc("2024-05-10T02:00:30Z"))
    #expect(d.runs == [utc("2024-05-10T02:00:00Z")])
    #expect(d.skipped.isEmpty)
    #expect(d.nextRunAt == utc("2024-05-11T02:00:00Z"))
  }

  @Test(
    "Three nights missed",
    arguments: [
      (MissedRunPolicy.skip, 0, 3),
      (.runOnce, 1, 2),
      (.runAll(cap: 2), 2, 1),
      (.runAll(cap: 10), 3, 0),
    ])
  func missed(policy: MissedRunPolicy, runs: Int, skipped: Int) throws {
    let d = SchedulePlanner.decide(
      schedule: try schedule(policy), nextRunAt: utc("2024-05-10T02:00:00Z"), now: utc("2024-05-12T12:00:00Z"))
    #expect(d.runs.count == runs)
    #expect(d.skipped.count == skipped)
    #expect(d.nextRunAt == utc("2024-05-13T02:00:00Z"))
    // Every occurrence is accounted for exactly once, and runs are the newest.
    #expect(Set(d.runs).isDisjoint(with: Set(d.skipped)))
    if let newestRun = d.runs.last { #expect(newestRun == utc("2024-05-12T02:00:00Z")) }
  }
}
