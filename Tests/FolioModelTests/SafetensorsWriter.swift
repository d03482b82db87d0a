import Foundation

/// Writes small safetensors files for tests (F32 only), optionally corrupting the header.
enum SafetensorsWriter {
  struct Entry {
    var name: String
    var shape: [Int]
    var values: [Float]
  }

  /// The file's bytes; `headerOverride` replaces the JSON header verbatim.
  static func bytes(_ entries: [Entry], headerOverride: String? = nil) -> Data {
    var header: [String] = []
    var payload = Data()
    for e in entries {
      let begin = payload.count
      for v in e.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { payload.append(contentsOf: $0) } }
      let shape = e.shape.map(String.init).joined(separator: ",")
      header.append(
        "\"\(e.name)\":{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(begin),\(payload.count)]}")
    }
    let json = headerOverride ?? "{" + header.joined(separator: ",") + "}"
    var data = Data()
    withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(contentsOf: Array(json.utf8))
    data.append(payload)
    return data
  }
}
