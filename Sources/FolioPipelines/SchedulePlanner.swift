import Foundation

/// What a scheduler tick should do for one scheduled pipeline: which occurrences to run, which to record as
/// skipped, and the new `next_run_at` to persist.
public struct ScheduleDecision: Sendable, Hashable {
  /// Occurrences to start, oldest first. Each becomes a schedule run; overlap is applied when it starts.
  public var runs: [Date]
  /// Occurrences that passed while the daemon was down and that the missed-run policy does not run.
  public var skipped: [Date]
  /// How many further missed occurrences were not enumerated (beyond ``SchedulePlanner/enumerationLimit``).
  public var uncountedSkipped: Bool
  /// The next occurrence after `now`, to persist as `next_run_at` (nil if the cron never fires again).
  public var nextRunAt: Date?

  /// Creates a decision.
  public init(runs: [Date] = [], skipped: [Date] = [], uncountedSkipped: Bool = false, nextRunAt: Date?) {
    self.runs = runs
    self.skipped = skipped
    self.uncountedSkipped = uncountedSkipped
    self.nextRunAt = nextRunAt
  }
}

/// Applies a schedule's missed-run policy to the persisted `next_run_at`. Pure: the caller supplies `now`.
///
/// The persisted `next_run_at` is the earliest occurrence not yet handled, so a restart neither repeats a finished
/// run nor forgets one: every occurrence in `[next_run_at, now]` is either run or recorded as skipped, exactly once.
public enum SchedulePlanner {
  /// At most this many missed occurrences are enumerated after a long outage (a per-minute cron down for a year
  /// would otherwise produce half a million skipped rows); the rest are summarised by ``ScheduleDecision/uncountedSkipped``.
  public static let enumerationLimit = 1000

  /// How late a tick may be and still count as on time (the daemon was busy, the machine slept briefly).
  public static let defaultGrace: Duration = .seconds(300)

  /// Decides what to do at `now`.
  ///
  /// - Parameters:
  ///   - nextRunAt: the persisted next occurrence; nil for a schedule seen for the first time, which starts
  ///     with the next occurrence after `now` (a new schedule never fires retroactively).
  ///   - grace: occurrences older than `now - grace` count as missed.
  public static func decide(
    schedule: PipelineSchedule, nextRunAt: Date?, now: Date, grace: Duration = defaultGrace
  ) -> ScheduleDecision {
    guard let first = nextRunAt else {
      return ScheduleDecision(nextRunAt: schedule.next(after: now))
    }
    guard first <= now else { return ScheduleDecision(nextRunAt: first) }
    var due = [first]
    due += schedule.cron.occurrences(
      after: first, through: now, in: schedule.timeZone, limit: enumerationLimit - 1)
    let truncated = due.count >= enumerationLimit
    let lastEnumerated = due.last ?? first
    let next = schedule.next(after: max(now, lastEnumerated))
    let graceSeconds = Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18
    let cutoff = now.addingTimeInterval(-graceSeconds)
    // At most one occurrence runs "on time": the newest within the grace window.
    var missed = due.filter { $0 < cutoff }
    var onTime = due.filter { $0 >= cutoff }
    if onTime.count > 1 {
      missed += onTime.dropLast()
      onTime = Array(onTime.suffix(1))
      missed.sort()
    }
    var runs = onTime
    var skipped: [Date] = []
    switch schedule.missed {
    case .skip:
      skipped = missed
    case .runOnce:
      if runs.isEmpty, let latest = missed.last {
        runs = [latest]
        skipped = Array(missed.dropLast())
      } else {
        skipped = missed
      }
    case .runAll(let cap):
      let kept = missed.suffix(max(0, cap))
      skipped = Array(missed.dropLast(kept.count))
      runs = Array(kept) + runs
    }
    return ScheduleDecision(runs: runs, skipped: skipped, uncountedSkipped: truncated, nextRunAt: next)
  }
}
