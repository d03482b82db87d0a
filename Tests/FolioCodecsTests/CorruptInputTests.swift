import FolioBase
import FolioCodecs
import Foundation
import Testing

/// Hostile and broken inputs: every one must end in a typed `FolioError`, never a crash, and the C shim must
/// not leak (each case runs `repetitions` times; `scripts/check_codec_leaks.sh` runs them under valgrind).
@Suite("Corrupt and hostile images")
struct CorruptInputTests {
  static let repetitions = 50

  /// Decodes `data` `repetitions` times and returns the error code each time (all must be equal).
  func failure(_ data: Data, limits: ImageLimits = .default) throws -> FolioError {
    var first: FolioError?
    for _ in 0..<Self.repetitions {
      let error = try #require(throws: FolioError.self) { try ImageDecoder.decode(data: data, limits: limits) }
      if let first { #expect(error.code == first.code) } else { first = error }
    }
    return try #require(first)
  }

  static let truncatable = [
    "png_rgb8_97x61.png", "png_rgba8_interlaced_97x61.png", "png_rgb16_97x61.png", "png_palette8_trns_97x61.png",
    "png_gray1_interlaced_97x61.png", "jpeg_baseline420_97x61.jpg", "jpeg_progressive_97x61.jpg",
    "jpeg_cmyk_97x61.jpg", "jpeg_gray_97x61.jpg", "jpeg_exif6_97x61.jpg",
  ]

  @Test("truncated files give image_truncated", arguments: truncatable)
  func truncated(_ file: String) throws {
    let data = try ImageFixtures.data(file)
    let n = data.count
    for cut in [3, 9, 20, 40, n / 10, n / 4, n / 2, 3 * n / 4, n - 30] {
      let error = try failure(data.prefix(cut))
      #expect(error.code == .imageTruncated, "\(file) cut at \(cut)/\(n): \(error)")
    }
  }

  @Test("random bytes after a valid signature give a typed error")
  func randomAfterSignature() throws {
    let signatures: [[UInt8]] = [[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], [0xFF, 0xD8, 0xFF]]
    for signature in signatures {
      for seed in UInt64(1)...20 {
        var random = SeededBytes(state: seed)
        let data = Data(signature + random.bytes(Int(seed) * 97))
        let error = try failure(data)
        #expect(
          [.imageCorrupt, .imageTruncated, .imageTooLarge, .unsupportedImageFormat].contains(error.code), "\(error)")
      }
    }
  }

  @Test("damaged image data inside a valid PNG is image_corrupt")
  func damagedPNG() throws {
    var bytes = [UInt8](try ImageFixtures.data("png_rgb8_97x61.png"))
    for i in stride(from: bytes.count / 2, to: bytes.count / 2 + 64, by: 1) { bytes[i] ^= 0x5A }
    #expect(try failure(Data(bytes)).code == .imageCorrupt)
  }

  @Test("damaged entropy data in a JPEG never crashes (libjpeg, like Pillow, may still return pixels)")
  func damagedJPEG() throws {
    for file in ["jpeg_baseline420_97x61.jpg", "jpeg_progressive_97x61.jpg"] {
      var bytes = [UInt8](try ImageFixtures.data(file))
      var random = SeededBytes(state: 7)
      for i in stride(from: bytes.count / 3, to: bytes.count - 10, by: 7) { bytes[i] = UInt8(random.next() & 0xFF) }
      for _ in 0..<Self.repetitions {
        do {
          let image = try ImageDecoder.decode(data: Data(bytes))
          #expect(image.width == 97 && image.height == 61)
        } catch let error as FolioError {
          #expect([.imageCorrupt, .imageTruncated].contains(error.code))
        }
      }
    }
  }

  /// A PNG whose IHDR (with a valid CRC) claims `width × height`, followed by a tiny IDAT and IEND.
  static func pngHeader(width: UInt32, height: UInt32) -> Data {
    func chunk(_ type: String, _ payload: [UInt8]) -> [UInt8] {
      let body = Array(type.utf8) + payload
      let crc = body.withUnsafeBytes { CRC32.checksum($0) }
      return bigEndian(UInt32(payload.count)) + body + bigEndian(crc)
    }
    func bigEndian(_ v: UInt32) -> [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: v >> $0) } }
    let ihdr = bigEndian(width) + bigEndian(height) + [8, 2, 0, 0, 0]
    let idat: [UInt8] = [0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]
    return Data(
      [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", idat)
        + chunk("IEND", []))
  }

  /// A JPEG whose SOF0 claims `width × height` (three components), followed by SOS and a few bytes.
  static func jpegHeader(width: UInt16, height: UInt16) -> Data {
    func be(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    let sof: [UInt8] = [0xFF, 0xC0] + be(17) + [8] + be(height) + be(width) + [3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]
    let sos: [UInt8] = [0xFF, 0xDA] + be(12) + [3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]
    return Data([0xFF, 0xD8] + sof + sos + [0x00, 0x01, 0x02, 0x03, 0xFF, 0xD9])
  }

  @Test("a PNG header claiming 100000×100000 fails at the probe with image_too_large")
  func pngDecompressionBomb() throws {
    let data = Self.pngHeader(width: 100_000, height: 100_000)
    let info = try ImageDecoder.probe(data: data)
    #expect(info.storedWidth == 100_000 && info.storedHeight == 100_000)
    let error = try failure(data)
    #expect(error.code == .imageTooLarge)
    #expect(error.message.contains("100000×100000 = 10000000000 pixels"))
    #expect(error.message.contains("max_pixels = \(ImageLimits.defaultMaxPixels)"))
  }

  @Test("a JPEG header claiming 65500×65500 fails at the probe with image_too_large")
  func jpegDecompressionBomb() throws {
    let data = Self.jpegHeader(width: 65500, height: 65500)
    let info = try ImageDecoder.probe(data: data)
    #expect(info.storedWidth == 65500 && info.storedHeight == 65500)
    #expect(try failure(data).code == .imageTooLarge)
    // Beyond libjpeg's own 65500 limit: still image_too_large, from the library.
    #expect(try failure(Self.jpegHeader(width: 65535, height: 65535)).code == .imageTooLarge)
  }

  @Test("max_pixels is one setting, checked against the header before decoding")
  func pixelLimit() throws {
    let data = try ImageFixtures.data("png_rgb8_97x61.png")
    let error = try failure(data, limits: ImageLimits(maxPixels: 97 * 61 - 1))
    #expect(error.code == .imageTooLarge)
    #expect(error.message.contains("97×61 = 5917 pixels, more than max_pixels = 5916"))
    #expect(try ImageDecoder.decode(data: data, limits: ImageLimits(maxPixels: 97 * 61)).width == 97)
  }

  @Test("max_file_bytes is checked before reading or decoding")
  func fileSizeLimit() throws {
    let file = ImageFixtures.url("jpeg_baseline420_97x61.jpg")
    let size = try ImageFixtures.data("jpeg_baseline420_97x61.jpg").count
    let limits = ImageLimits(maxFileBytes: size - 1)
    let error = try #require(throws: FolioError.self) { try ImageDecoder.decode(file: file, limits: limits) }
    #expect(error.code == .fileTooLarge)
    #expect(error.message.contains("max_file_bytes = \(size - 1)"))
    #expect(try failure(ImageFixtures.data("jpeg_baseline420_97x61.jpg"), limits: limits).code == .fileTooLarge)
    #expect(try ImageDecoder.decode(file: file, limits: ImageLimits(maxFileBytes: size)).height == 61)
  }

  @Test("a zero-byte file is empty_file")
  func zeroBytes() throws {
    #expect(try failure(Data()).code == .emptyFile)
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("folio-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let empty = folder.appendingPathComponent("scan.png")
    try Data().write(to: empty)
    let error = try #require(throws: FolioError.self) { try ImageDecoder.decode(file: empty) }
    #expect(error.code == .emptyFile)
    let missing = try #require(throws: FolioError.self) {
      try ImageDecoder.decode(file: folder.appendingPathComponent("absent.jpg"))
    }
    #expect(missing.code == .fileNotFound)
  }

  @Test("non-images are unsupported_image_format, whatever their extension says")
  func notAnImage() throws {
    let text = try failure(Data("Dear Sir or Madam, please find attached…".utf8))
    #expect(text.code == .unsupportedImageFormat)
    let gif = try failure(Data("GIF89a".utf8 + [1, 0, 1, 0, 0, 0, 0]))
    #expect(gif.code == .unsupportedImageFormat && gif.message.contains("GIF"))
    let pdf = try failure(Data("%PDF-1.7\n".utf8))
    #expect(pdf.message.contains("PDF"))
    // A PNG named .jpg is still decoded as PNG.
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("folio-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let misnamed = folder.appendingPathComponent("photo.jpg")
    try ImageFixtures.data("png_rgb8_97x61.png").write(to: misnamed)
    #expect(try ImageDecoder.probe(file: misnamed).format == .png)
    #expect(try ImageDecoder.decode(file: misnamed).width == 97)
  }
}
