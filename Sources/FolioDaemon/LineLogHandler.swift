#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import Foundation
import Logging

/// A swift-log handler that writes one complete line per event with a single `write(2)` (lessons row 12: line
/// buffered, so `journalctl`, `tail -f` and pipes never see half lines or interleaving).
///
/// Text: `2026-05-01T10:00:00.123Z info  [daemon] job 12 succeeded document=3 step=summary`.
/// JSON: `{"ts":"…","level":"info","label":"daemon","message":"…","document":"3",…}`.
public struct LineLogHandler: LogHandler {
  /// Where lines go.
  public enum Destination: Sendable {
    /// Standard error (the default: stdout stays free for command output).
    case standardError
    /// A callback (tests).
    case custom(@Sendable (String) -> Void)
  }

  public var metadata: Logger.Metadata = [:]
  public var logLevel: Logger.Level
  let label: String
  let format: DaemonConfiguration.LogFormat
  let destination: Destination

  /// A handler for `label`.
  public init(
    label: String, level: Logger.Level = .info, format: DaemonConfiguration.LogFormat = .text,
    destination: Destination = .standardError
  ) {
    self.label = label
    self.logLevel = level
    self.format = format
    self.destination = destination
  }

  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  public func log(event: LogEvent) {
    var merged = metadata
    if let extra = event.metadata { merged.merge(extra) { $1 } }
    let timestamp = Self.timestamp()
    let line: String
    switch format {
    case .text:
      let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.quoted("\($0.value)"))" }
      let tail = fields.isEmpty ? "" : " " + fields.joined(separator: " ")
      let level = event.level.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)
      line = "\(timestamp) \(level) [\(label)] \(event.message)\(tail)\n"
    case .json:
      var object: [String: String] = ["ts": timestamp, "level": event.level.rawValue, "label": label]
      object["message"] = "\(event.message)"
      for (key, value) in merged where object[key] == nil { object[key] = "\(value)" }
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
      let data = (try? encoder.encode(object)) ?? Data("{}".utf8)
      line = String(decoding: data, as: UTF8.self) + "\n"
    }
    switch destination {
    case .standardError:
      var bytes = Array(line.utf8)
      bytes.withUnsafeMutableBytes { buffer in
        var offset = 0
        while offset < buffer.count {
          let n = write(2, buffer.baseAddress! + offset, buffer.count - offset)
          if n <= 0 { if errno == EINTR { continue } else { return } }
          offset += n
        }
      }
    case .custom(let sink):
      sink(line)
    }
  }

  static func quoted(_ value: String) -> String {
    if !value.isEmpty, value.allSatisfy({ !$0.isWhitespace && $0 != "\"" && $0 != "=" }) { return value }
    let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
      .replacingOccurrences(of: "\n", with: "\\n")
    return "\"\(escaped)\""
  }

  static func timestamp() -> String {
    var tv = timeval()
    gettimeofday(&tv, nil)
    var seconds = time_t(tv.tv_sec)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    return String(
      format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(tv.tv_usec) / 1000)
  }
}
