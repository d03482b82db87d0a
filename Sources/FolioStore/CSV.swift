/// RFC 4180 CSV writing: fields containing a comma, a double quote, CR or LF (or leading/trailing spaces) are
/// quoted, with embedded quotes doubled; records end with CRLF.
public enum CSV {
  /// One field, quoted when needed.
  public static func field(_ value: String) -> String {
    let needsQuotes =
      value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
      || value.first == " " || value.last == " "
    guard needsQuotes else { return value }
    return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
  }

  /// One record (without the line ending).
  public static func record(_ fields: [String]) -> String {
    fields.map(field).joined(separator: ",")
  }

  /// A whole table: header then rows, each ending with CRLF.
  public static func table(header: [String], rows: [[String]]) -> String {
    var out = record(header) + "\r\n"
    for row in rows { out += record(row) + "\r\n" }
    return out
  }
}

extension String {
  fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
    split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
  }
}
