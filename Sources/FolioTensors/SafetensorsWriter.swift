import FolioBase
import Foundation

/// Writes a safetensors file: an 8-byte little-endian header length, the JSON header (keys sorted, padded with
/// spaces to a multiple of 8 bytes as the reference writer does), then the tensors' bytes in header order.
public struct SafetensorsWriter {
  /// One tensor to write.
  public struct Tensor {
    public var name: String
    public var dtype: TensorDType
    public var shape: [Int]
    public var bytes: Data
    public init(name: String, dtype: TensorDType, shape: [Int], bytes: Data) {
      self.name = name
      self.dtype = dtype
      self.shape = shape
      self.bytes = bytes
    }
  }

  public var tensors: [Tensor] = []
  public var metadata: [String: String] = ["format": "mlx"]

  public init() {}

  /// Adds a tensor; its byte count must match its dtype and shape.
  public mutating func add(_ tensor: Tensor) throws {
    guard tensor.shape.reduce(tensor.dtype.byteWidth, *) == tensor.bytes.count else {
      throw FolioError(.invalidArgument, "tensor '\(tensor.name)': \(tensor.bytes.count) bytes do not fit \(tensor.dtype.rawValue)\(tensor.shape).")
    }
    tensors.append(tensor)
  }

  /// Writes the file atomically (a temporary file renamed into place).
  public func write(to url: URL) throws {
    let ordered = tensors.sorted { $0.name < $1.name }
    var header: [String: Any] = ["__metadata__": metadata]
    var offset = 0
    for t in ordered {
      header[t.name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]]
      offset += t.bytes.count
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }
    var out = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
    out.append(json)
    for t in ordered { out.append(t.bytes) }
    do {
      try out.write(to: url, options: .atomic)
    } catch {
      throw FolioError(.fileUnreadable, "\(url.path): cannot write (\(error.localizedDescription)); check free space and permissions.", cause: error)
    }
  }
}
