import Foundation
import Testing

@testable import FolioPipelines

/// Parses `2024-03-30T23:59:00Z`-style strings; tests only.
func utc(_ s: String) -> Date {
  let f = ISO8601DateFormatter()
  f.formatOptions = [.withInternetDateTime]
  guard let d = f.date(from: s) else {
    Issue.record("bad test date \(s)")
    return Date(timeIntervalSince1970: 0)
  }
  return d
}

let utcZone = TimeZone(identifier: "UTC")!

@Suite("Cron expressions")
struct CronExpressionTests {
  @Test(
    "next(after:) for common expressions",
    arguments: [
      ("0 2 * * *", "2024-05-10T01:00:00Z", "2024-05-10T02:00:00Z"),
      ("0 2 * * *", "2024-05-10T02:00:00Z", "2024-05-11T02:00:00Z"),  // strictly after
      ("*/15 * * * *", "2024-05-10T10:07:30Z", "2024-05-10T10:15:00Z"),
      ("30 9 * * mon-fri", "2024-05-10T10:00:00Z", "2024-05-13T09:30:00Z"),  // Friday after 09:30 → Monday
      ("0 0 1 jan *", "2024-05-10T00:00:00Z", "2025-01-01T00:00:00Z"),
      ("0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),  // leap days only
      ("0 12 13 * 5", "2024-09-01T00:00:00Z", "2024-09-06T12:00:00Z"),  // dom OR dow: Friday 6th comes first
      ("0 0 * * 7", "2024-05-10T00:00:00Z", "2024-05-12T00:00:00Z"),  // 7 is Sunday
      ("@hourly", "2024-05-10T10:59:59Z", "2024-05-10T11:00:00Z"),
      ("5-10/5 1,3 * * *", "2024-05-10T01:06:00Z", "2024-05-10T01:10:00Z"),
      ("59 23 31 12 *", "2024-12-31T23:59:00Z", "2025-12-31T23:59:00Z"),
    ])
  func next(expression: String, after: String, expected: String) throws {
    let cron = try CronExpression(parsing: expression)
    #expect(cron.next(after: utc(after), in: utcZone) == utc(expected))
  }

  @Test("Time zones: 02:00 in Berlin is 00:00 UTC in summer")
  func timeZone() throws {
    let cron = try CronExpression(parsing: "0 2 * * *")
    let berlin = try #require(TimeZone(identifier: "Europe/Berlin"))
    #expect(cron.next(after: utc("2024-07-01T12:00:00Z"), in: berlin) == utc("2024-07-02T00:00:00Z"))
  }

  @Test("A wall-clock time that does not exist on the DST change day is skipped")
  func springForward() throws {
    // Europe/Berlin skipped 02:00–03:00 on 2024-03-31.
    let cron = try CronExpression(parsing: "30 2 * * *")
    let berlin = try #require(TimeZone(identifier: "Europe/Berlin"))
    let next = cron.next(after: utc("2024-03-30T12:00:00Z"), in: berlin)
    #expect(next == utc("2024-04-01T00:30:00Z"))  // 02:30 CEST on April 1st
  }

  @Test("A wall-clock time that happens twice fires once")
  func fallBack() throws {
    // Europe/Berlin repeated 02:00–03:00 on 2024-10-27.
    let cron = try CronExpression(parsing: "30 2 * * *")
    let berlin = try #require(TimeZone(identifier: "Europe/Berlin"))
    let first = try #require(cron.next(after: utc("2024-10-26T12:00:00Z"), in: berlin))
    let second = try #require(cron.next(after: first, in: berlin))
    #expect(second.timeIntervalSince(first) > 23 * 3600)
  }

  @Test("Expressions that never fire return nil")
  func never() throws {
    let cron = try CronExpression(parsing: "0 0 30 2 *")
    #expect(cron.next(after: utc("2024-01-01T00:00:00Z"), in: utcZone) == nil)
  }

  @Test(
    "Errors name the field",
    arguments: [
      ("0 2 * *", "expected 5 fields"),
      ("60 2 * * *", "minute field"),
      ("0 24 * * *", "hour field"),
      ("0 2 0 * *", "day-of-month field"),
      ("0 2 * foo *", "month field"),
      ("0 2 * * 8", "day-of-week field"),
      ("0 5-1 * * *", "runs backwards"),
      ("*/0 * * * *", "step"),
      ("0,,1 * * * *", "empty list item"),
      ("@fortnightly", "unknown macro"),
    ])
  func errors(expression: String, fragment: String) {
    #expect {
      try CronExpression(parsing: expression)
    } throws: { error in
      String(describing: error).contains(fragment)
    }
  }

  @Test("occurrences(after:through:) is bounded")
  func occurrences() throws {
    let cron = try CronExpression(parsing: "* * * * *")
    let list = cron.occurrences(
      after: utc("2024-01-01T00:00:00Z"), through: utc("2024-01-02T00:00:00Z"), in: utcZone, limit: 10)
    #expect(list.count == 10)
    #expect(list.first == utc("2024-01-01T00:01:00Z"))
  }

  @Test("Weekday arithmetic agrees with Foundation")
  func weekday() {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = utcZone
    var date = utc("1999-12-25T00:00:00Z")
    for _ in 0..<800 {
      let c = calendar.dateComponents([.year, .month, .day, .weekday], from: date)
      #expect(CronExpression.weekday(year: c.year!, month: c.month!, day: c.day!) == c.weekday! - 1)
      date = date.addingTimeInterval(86_400 * 3 + 3600)
    }
  }
}

@Suite("Globs")
struct GlobTests {
  @Test(
    "Matching",
    arguments: [
      ("*.md", "notes.md", true),
      ("*.md", "dir/notes.md", false),
      ("**/*.md", "dir/sub/notes.md", true),
      ("**/*.md", "notes.md", true),
      ("contracts/**/a.txt", "contracts/a.txt", true),
      ("contracts/**/a.txt", "contracts/x/y/a.txt", true),
      ("contracts/**/a.txt", "contracts/xa.txt", false),
      ("scan-?", "scan-1", true),
      ("scan-[0-9]", "scan-a", false),
      ("scan-[!0-9]", "scan-a", true),
      ("*.{txt,md}", "a.md", true),
      ("*.{txt,md}", "a.png", false),
      ("\\*", "*", true),
      ("*", "", true),
    ])
  func matching(pattern: String, path: String, expected: Bool) throws {
    #expect(try Glob(pattern).matches(path) == expected)
  }

  @Test("Unterminated classes and braces are errors")
  func errors() {
    #expect(throws: GlobError.self) { try Glob("a[b") }
    #expect(throws: GlobError.self) { try Glob("a{b,c") }
    #expect(throws: GlobError.self) { try Glob("a\\") }
  }

  @Test("A match without `/` applies to the file name")
  func basename() throws {
    let match = DocumentMatch(kinds: [.text], sets: [try Glob("con*")], glob: try Glob("*.md"))
    #expect(match.matches(kind: .text, set: "contracts", relativePath: "contracts/2024/a.md"))
    #expect(!match.matches(kind: .image, set: "contracts", relativePath: "contracts/a.md"))
    #expect(!match.matches(kind: .text, set: "default", relativePath: "a.md"))
    #expect(!match.matches(kind: .text, set: "contracts", relativePath: "contracts/a.txt"))
  }
}
