import FolioCodecs
import Foundation
import Testing

/// The committed image fixtures made by `scripts/make_image_fixtures.py` (Pillow 13 + transformers 5.24's
/// `Qwen2VLImageProcessorPil`).
enum ImageFixtures {
  static let folder: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
      url.deleteLastPathComponent()
      if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { break }
    }
    return url.appendingPathComponent("Tests/Fixtures/images")
  }()

  static func url(_ file: String) -> URL { folder.appendingPathComponent(file) }

  static func data(_ file: String) throws -> Data { try Data(contentsOf: url(file)) }

  /// The manifest, or `nil` when it cannot be read (a test then fails on it explicitly).
  static let manifest: Manifest? = {
    guard let data = try? Data(contentsOf: url("manifest.json")) else { return nil }
    return try? JSONDecoder().decode(Manifest.self, from: data)
  }()

  static var images: [FixtureImage] { manifest?.images ?? [] }

  /// (image, processing) pairs for parameterised tests.
  static var processed: [ProcessedCase] {
    images.flatMap { image in image.processed.map { ProcessedCase(image: image, processing: $0) } }
  }

  /// A configuration from the manifest, decoded through Folio's own `preprocessor_config.json` parser.
  static func configuration(_ name: String) throws -> VisionPreprocessorConfiguration {
    guard let raw = manifest?.configs[name] else { throw FixtureError.missing("config \(name)") }
    return try JSONDecoder().decode(VisionPreprocessorConfiguration.self, from: JSONEncoder().encode(raw))
  }

  /// Reference pixels stored as a lossless PNG, decoded by Folio's PNG path (itself checked exactly elsewhere).
  static func png(_ file: String) throws -> RGBImage { try ImageDecoder.decode(file: url(file)) }
}

enum FixtureError: Error { case missing(String) }

struct Manifest: Decodable {
  var pillow: String
  var transformers: String
  var configs: [String: JSONValue]
  var images: [FixtureImage]
  var resizeSource: String
  var resizeCases: [ResizeCase]
  enum CodingKeys: String, CodingKey {
    case pillow, transformers, configs, images
    case resizeSource = "resize_source"
    case resizeCases = "resize_cases"
  }
}

/// Pillow's BICUBIC output size and CRC for the noise image.
struct ResizeCase: Decodable, Sendable, CustomTestStringConvertible {
  var width: Int
  var height: Int
  var crc32: UInt32
  var testDescription: String { "\(width)x\(height)" }
}

struct FixtureImage: Decodable, Sendable {
  var name: String
  var file: String
  var format: String
  var description: String
  var storedWidth: Int
  var storedHeight: Int
  var width: Int
  var height: Int
  var decodedCRC32: UInt32
  var decodedPNG: String?
  var deviation: String?
  var processed: [FixtureProcessing]

  enum CodingKeys: String, CodingKey {
    case name, file, format, description, width, height, deviation, processed
    case storedWidth = "stored_width"
    case storedHeight = "stored_height"
    case decodedCRC32 = "decoded_crc32"
    case decodedPNG = "decoded_png"
  }
}

extension FixtureImage: CustomTestStringConvertible {
  var testDescription: String { name }
}

struct FixtureProcessing: Decodable, Sendable {
  var config: String
  var gridTHW: [Int]
  var resizedHeight: Int
  var resizedWidth: Int
  var pixelValuesShape: [Int]
  var pixelValuesCRC32: UInt32
  var resizedCRC32: UInt32
  var resizedPNG: String?
  var sampleRows: [String: [Float]]?

  enum CodingKeys: String, CodingKey {
    case config
    case gridTHW = "grid_thw"
    case resizedHeight = "resized_height"
    case resizedWidth = "resized_width"
    case pixelValuesShape = "pixel_values_shape"
    case pixelValuesCRC32 = "pixel_values_crc32"
    case resizedCRC32 = "resized_crc32"
    case resizedPNG = "resized_png"
    case sampleRows = "sample_rows"
  }
}

struct ProcessedCase: Sendable, CustomTestStringConvertible {
  var image: FixtureImage
  var processing: FixtureProcessing
  var testDescription: String { "\(image.name)/\(processing.config)" }
}

/// Enough JSON to round-trip the manifest's processor configurations.
enum JSONValue: Codable, Sendable {
  case number(Double)
  case integer(Int)
  case string(String)
  case bool(Bool)
  case array([JSONValue])
  case object([String: JSONValue])
  case null

  init(from decoder: any Decoder) throws {
    let c = try decoder.singleValueContainer()
    if c.decodeNil() {
      self = .null
    } else if let v = try? c.decode(Bool.self) {
      self = .bool(v)
    } else if let v = try? c.decode(Int.self) {
      self = .integer(v)
    } else if let v = try? c.decode(Double.self) {
      self = .number(v)
    } else if let v = try? c.decode(String.self) {
      self = .string(v)
    } else if let v = try? c.decode([JSONValue].self) {
      self = .array(v)
    } else {
      self = .object(try c.decode([String: JSONValue].self))
    }
  }

  func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    switch self {
    case .number(let v): try c.encode(v)
    case .integer(let v): try c.encode(v)
    case .string(let v): try c.encode(v)
    case .bool(let v): try c.encode(v)
    case .array(let v): try c.encode(v)
    case .object(let v): try c.encode(v)
    case .null: try c.encodeNil()
    }
  }
}

/// CRC-32 (zlib polynomial), matching Python's `zlib.crc32`.
enum CRC32 {
  static let table: [UInt32] = (0..<256).map { n in
    var c = UInt32(n)
    for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
  }

  static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    return ~crc
  }

  static func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { checksum($0) } }

  /// CRC of float32 values as little-endian bytes (numpy `astype('<f4').tobytes()`; x86-64 is little-endian).
  static func checksum(_ floats: [Float]) -> UInt32 { floats.withUnsafeBytes { checksum($0) } }
}

/// Deterministic bytes for the corrupt-input tests (SplitMix64).
struct SeededBytes {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

/// Per-byte differences between two equally sized images.
struct PixelDifference {
  var maxAbs = 0
  var differing = 0
  var total = 0
  var fraction: Double { total == 0 ? 0 : Double(differing) / Double(total) }

  init(_ a: [UInt8], _ b: [UInt8]) {
    total = min(a.count, b.count)
    for i in 0..<total where a[i] != b[i] {
      differing += 1
      maxAbs = max(maxAbs, abs(Int(a[i]) - Int(b[i])))
    }
  }
}
