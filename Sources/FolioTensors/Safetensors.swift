import FolioBase
import Foundation

/// Element types that appear in safetensors headers.
public enum TensorDType: String, Sendable {
  case f32 = "F32"
  case f16 = "F16"
  case bf16 = "BF16"
  case f64 = "F64"
  case i64 = "I64"
  case i32 = "I32"
  case u32 = "U32"
  case i16 = "I16"
  case i8 = "I8"
  case u8 = "U8"
  case bool = "BOOL"

  /// Bytes per element.
  public var byteWidth: Int {
    switch self {
    case .f64, .i64: 8
    case .f32, .i32, .u32: 4
    case .f16, .bf16, .i16: 2
    case .i8, .u8, .bool: 1
    }
  }
}

/// One tensor inside a mapped safetensors file: its type, shape and bytes (no copy).
public struct TensorView: @unchecked Sendable {
  public let name: String
  public let dtype: TensorDType
  public let shape: [Int]
  /// First byte of the tensor's data inside the mapping.
  public let data: UnsafeRawPointer
  public let byteCount: Int
  /// The file the tensor lives in (keeps the mapping alive).
  public let file: MappedFile

  /// Number of elements.
  public var elementCount: Int { shape.reduce(1, *) }

  /// The tensor widened to fp32 (only float types).
  public func floats() throws -> [Float] {
    let n = elementCount
    switch dtype {
    case .f32:
      return [Float](UnsafeBufferPointer(start: data.assumingMemoryBound(to: Float.self), count: n))
    case .bf16:
      return (0..<n).map {
        Float(bitPattern: UInt32(data.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) << 16)
      }
    case .f16:
      return (0..<n).map { Float(Float16(bitPattern: data.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
    case .f64:
      return (0..<n).map { Float(data.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) }
    default:
      throw FolioError(
        .unsupportedDType,
        "\(file.url.lastPathComponent): tensor '\(name)' is \(dtype.rawValue); expected a float type.")
    }
  }
}

/// A safetensors file, memory-mapped, with its header parsed and validated against the file size.
///
/// Format: 8-byte little-endian header length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}}`,
/// then the data; offsets are relative to the end of the header.
public final class SafetensorsFile: @unchecked Sendable {
  public let file: MappedFile
  /// Tensors by name, in no particular order.
  public let tensors: [String: TensorView]
  /// The optional `__metadata__` string map.
  public let metadata: [String: String]

  /// Maps and validates `url`. Every problem is a `FolioError` naming the file and, where it applies, the tensor.
  public init(url: URL) throws {
    let file = try MappedFile(url: url)
    self.file = file
    let name = url.lastPathComponent
    guard file.count >= 8 else {
      throw FolioError(
        .corruptCheckpoint,
        "\(url.path): file is \(file.count) bytes, too short for a safetensors header (truncated download? re-download it)."
      )
    }
    let headerLength = UInt64(littleEndian: file.bytes.loadUnaligned(as: UInt64.self))
    guard headerLength > 0, headerLength <= UInt64(file.count - 8), headerLength < 100_000_000 else {
      throw FolioError(
        .corruptCheckpoint,
        "\(url.path): header claims \(headerLength) bytes but the file has \(file.count - 8) after the length field (truncated or not a safetensors file)."
      )
    }
    let dataStart = 8 + Int(headerLength)
    let headerData = Data(bytes: file.bytes + 8, count: Int(headerLength))
    let json: Any
    do {
      json = try JSONSerialization.jsonObject(with: headerData)
    } catch {
      throw FolioError(.corruptCheckpoint, "\(url.path): header is not valid JSON; the file is damaged.", cause: error)
    }
    guard let entries = json as? [String: Any] else {
      throw FolioError(.corruptCheckpoint, "\(url.path): header is not a JSON object.")
    }
    let dataBytes = file.count - dataStart
    var tensors: [String: TensorView] = [:]
    var metadata: [String: String] = [:]
    for (key, value) in entries {
      if key == "__metadata__" {
        if let m = value as? [String: String] { metadata = m }
        continue
      }
      guard let entry = value as? [String: Any],
        let dtypeName = entry["dtype"] as? String,
        let shape = (entry["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
        let offsets = (entry["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
        offsets.count == 2
      else {
        throw FolioError(.corruptCheckpoint, "\(name): tensor '\(key)' has a malformed header entry.")
      }
      guard let dtype = TensorDType(rawValue: dtypeName) else {
        throw FolioError(.unsupportedDType, "\(name): tensor '\(key)' has dtype \(dtypeName), which Folio cannot read.")
      }
      guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[1] >= offsets[0] else {
        throw FolioError(.corruptCheckpoint, "\(name): tensor '\(key)' has negative shape or offsets.")
      }
      let expected = shape.reduce(dtype.byteWidth) { $0.multipliedReportingOverflow(by: $1).partialValue }
      guard offsets[1] - offsets[0] == expected else {
        throw FolioError(
          .corruptCheckpoint,
          "\(name): tensor '\(key)' \(dtype.rawValue)\(shape) needs \(expected) bytes but its offsets span \(offsets[1] - offsets[0])."
        )
      }
      guard offsets[1] <= dataBytes else {
        throw FolioError(
          .corruptCheckpoint,
          "\(url.path): tensor '\(key)' ends at byte \(offsets[1]) of the data section, but the file holds only \(dataBytes) data bytes (truncated download? re-download the model)."
        )
      }
      tensors[key] = TensorView(
        name: key, dtype: dtype, shape: shape, data: file.bytes + dataStart + offsets[0], byteCount: expected,
        file: file)
    }
    self.tensors = tensors
    self.metadata = metadata
  }
}
