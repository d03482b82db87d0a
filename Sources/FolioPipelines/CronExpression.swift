import Foundation

/// A standard 5-field cron expression: `minute hour day-of-month month day-of-week`.
///
/// Each field accepts `*`, a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`, and comma-separated lists of those.
/// Months accept `jan`…`dec`, days of the week `sun`…`sat` (0 and 7 are both Sunday). The macros `@yearly`
/// (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and `@hourly` are accepted.
///
/// As in Vixie cron, when both day-of-month and day-of-week are restricted (neither starts with `*`), a day matches
/// if **either** matches; otherwise both must.
///
/// Occurrences are computed on wall-clock time in a time zone (``next(after:in:)``). Across daylight-saving changes,
/// a wall-clock time that does not exist that day (spring forward) is skipped, and one that occurs twice (fall back)
/// fires once, at its first occurrence.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
  /// The expression as written.
  public let source: String
  let minutes: [Int]
  let hours: [Int]
  let daysOfMonth: Set<Int>
  let months: Set<Int>
  let daysOfWeek: Set<Int>
  let isDayOfMonthRestricted: Bool
  let isDayOfWeekRestricted: Bool

  /// The expression as written.
  public var description: String { source }

  private static let macros: [String: String] = [
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
  ]
  private static let monthNames = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
  ]
  private static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

  /// Parses an expression, throwing a ``CronError`` that names the field and says how to fix it.
  public init(parsing text: String) throws(CronError) {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    source = trimmed
    var expanded = trimmed
    if trimmed.hasPrefix("@") {
      guard let macro = Self.macros[trimmed.lowercased()] else {
        throw CronError(
          expression: text, field: nil,
          message: "unknown macro `\(trimmed)`; use one of @yearly, @monthly, @weekly, @daily, @hourly")
      }
      expanded = macro
    }
    let fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    guard fields.count == 5 else {
      throw CronError(
        expression: text, field: nil,
        message:
          "expected 5 fields (minute hour day-of-month month day-of-week), found \(fields.count); "
          + "e.g. `0 2 * * *` for 02:00 every day")
    }
    minutes = try Self.parseField(fields[0], name: "minute", range: 0...59, names: [], text: text).sorted()
    hours = try Self.parseField(fields[1], name: "hour", range: 0...23, names: [], text: text).sorted()
    daysOfMonth = try Self.parseField(fields[2], name: "day-of-month", range: 1...31, names: [], text: text)
    months = try Self.parseField(fields[3], name: "month", range: 1...12, names: Self.monthNames, text: text)
    let dow = try Self.parseField(fields[4], name: "day-of-week", range: 0...7, names: Self.dayNames, text: text)
    daysOfWeek = Set(dow.map { $0 % 7 })
    isDayOfMonthRestricted = !fields[2].hasPrefix("*")
    isDayOfWeekRestricted = !fields[4].hasPrefix("*")
  }

  private static func parseField(
    _ field: String, name: String, range: ClosedRange<Int>, names: [String], text: String
  ) throws(CronError) -> Set<Int> {
    func fail(_ message: String) -> CronError {
      CronError(expression: text, field: name, message: "\(name) field `\(field)`: \(message)")
    }
    // Names map to their index; months are 1-based.
    let nameBase = range.lowerBound == 1 ? 1 : 0
    func value(_ s: Substring) throws(CronError) -> Int {
      if let i = names.firstIndex(of: s.lowercased()) { return i + nameBase }
      guard let v = Int(s) else {
        throw fail(
          "`\(s)` is not a number" + (names.isEmpty ? "" : " or a name (\(names.joined(separator: ", ")))"))
      }
      guard range.contains(v) else {
        throw fail("\(v) is outside \(range.lowerBound)–\(range.upperBound)")
      }
      return v
    }
    var result = Set<Int>()
    for part in field.split(separator: ",", omittingEmptySubsequences: false) {
      guard !part.isEmpty else { throw fail("empty list item; remove the extra comma") }
      let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
      guard pieces.count <= 2 else { throw fail("more than one `/` in `\(part)`") }
      var step = 1
      if pieces.count == 2 {
        guard let s = Int(pieces[1]), s > 0 else { throw fail("step `\(pieces[1])` must be a positive number") }
        step = s
      }
      let base = pieces[0]
      var lo: Int
      var hi: Int
      if base == "*" {
        lo = range.lowerBound
        hi = range.upperBound
      } else if let dash = base.firstIndex(of: "-") {
        lo = try value(base[base.startIndex..<dash])
        hi = try value(base[base.index(after: dash)...])
        guard lo <= hi else { throw fail("range \(lo)-\(hi) runs backwards; write \(hi)-\(lo)") }
      } else {
        lo = try value(base)
        hi = pieces.count == 2 ? range.upperBound : lo
      }
      var v = lo
      while v <= hi {
        result.insert(v)
        v += step
      }
    }
    return result
  }

  /// The first occurrence strictly after `date`, on wall-clock time in `timeZone`; nil if there is none within
  /// eight years (e.g. `0 0 30 2 *`), which ``PipelineLoader`` reports as an error.
  public func next(after date: Date, in timeZone: TimeZone) -> Date? {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = timeZone
    let start = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date)
    guard var year = start.year, var month = start.month, var day = start.day, let startHour = start.hour,
      let startMinute = start.minute
    else { return nil }
    let startDay = (year, month, day)
    // Eight years covers every leap-day schedule (Feb 29 recurs at most every 8 years around a skipped leap year).
    for _ in 0..<(366 * 8) {
      if months.contains(month) && dayMatches(year: year, month: month, day: day) {
        let isStartDay = (year, month, day) == startDay
        for hour in hours where !isStartDay || hour >= startHour {
          for minute in minutes where !(isStartDay && hour == startHour) || minute >= startMinute {
            var components = DateComponents()
            components.timeZone = timeZone
            (components.year, components.month, components.day) = (year, month, day)
            (components.hour, components.minute, components.second) = (hour, minute, 0)
            guard let candidate = calendar.date(from: components), candidate > date else { continue }
            // Skip wall-clock times that do not exist that day (the calendar moves them past the DST gap).
            let back = calendar.dateComponents([.day, .hour, .minute], from: candidate)
            guard back.day == day && back.hour == hour && back.minute == minute else { continue }
            return candidate
          }
        }
      }
      // Next civil day.
      day += 1
      if day > Self.daysIn(month: month, year: year) {
        day = 1
        month += 1
        if month > 12 {
          month = 1
          year += 1
        }
      }
    }
    return nil
  }

  /// Every occurrence in `(after, through]`, oldest first, at most `limit`.
  public func occurrences(after: Date, through end: Date, in timeZone: TimeZone, limit: Int) -> [Date] {
    var result: [Date] = []
    var cursor = after
    while result.count < limit, let next = next(after: cursor, in: timeZone), next <= end {
      result.append(next)
      cursor = next
    }
    return result
  }

  private func dayMatches(year: Int, month: Int, day: Int) -> Bool {
    let domMatch = daysOfMonth.contains(day)
    let dowMatch = daysOfWeek.contains(Self.weekday(year: year, month: month, day: day))
    if isDayOfMonthRestricted && isDayOfWeekRestricted { return domMatch || dowMatch }
    return domMatch && dowMatch
  }

  static func daysIn(month: Int, year: Int) -> Int {
    switch month {
    case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: 30
    default: 31
    }
  }

  /// Day of week, 0 = Sunday, from the proleptic Gregorian calendar (Hinnant's days-from-civil).
  static func weekday(year: Int, month: Int, day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    let days = era * 146097 + doe - 719468
    // 1970-01-01 was a Thursday (4).
    return ((days % 7) + 7 + 4) % 7
  }
}

/// A cron expression that cannot be parsed.
public struct CronError: Error, Sendable, Hashable, CustomStringConvertible {
  /// The expression.
  public var expression: String
  /// The field at fault, if one is.
  public var field: String?
  /// What is wrong and how to fix it.
  public var message: String
  /// A sentence for people.
  public var description: String { "cron `\(expression)`: \(message)" }
}
