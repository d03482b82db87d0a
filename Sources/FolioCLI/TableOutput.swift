import FolioStore
import Foundation

/// Human-readable tables for the query commands (`--json` prints the same data for scripts).
struct Table {
  var headers: [String]
  var rows: [[String]] = []

  init(_ headers: String...) { self.headers = headers }

  mutating func add(_ cells: String...) { rows.append(cells) }

  /// One cell on one line: newlines shown as ⏎, long text cut with an ellipsis.
  static func cell(_ text: String, width: Int = 60) -> String {
    let flat = text.replacingOccurrences(of: "\r\n", with: "⏎").replacingOccurrences(of: "\n", with: "⏎")
      .replacingOccurrences(of: "\t", with: " ")
    return flat.count > width ? String(flat.prefix(width - 1)) + "…" : flat
  }

  var rendered: String {
    var widths = headers.map(\.count)
    for row in rows {
      for (i, value) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], value.count) }
    }
    func line(_ cells: [String]) -> String {
      cells.enumerated().map { i, v in
        i == cells.count - 1 ? v : v.padding(toLength: widths[i], withPad: " ", startingAt: 0)
      }.joined(separator: "  ")
    }
    var out = [line(headers), line(widths.map { String(repeating: "-", count: $0) })]
    out += rows.map(line)
    return out.joined(separator: "\n") + "\n"
  }
}

enum Output {
  static func print(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
  }

  static func json<T: Encodable>(_ value: T) throws {
    print(String(decoding: try Store.json(value), as: UTF8.self) + "\n")
  }

  static let time: DateFormatter = {
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "UTC")
    f.dateFormat = "yyyy-MM-dd HH:mm:ss'Z'"
    return f
  }()

  static func date(_ date: Date?) -> String { date.map { time.string(from: $0) } ?? "-" }
}
