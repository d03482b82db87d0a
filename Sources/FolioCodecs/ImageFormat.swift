import Foundation

/// An image container format that Folio decodes, recognised by its leading bytes (never by file extension).
public enum ImageFormat: String, Sendable, Equatable, CaseIterable {
  /// Portable Network Graphics (`89 50 4E 47 0D 0A 1A 0A`).
  case png
  /// JPEG/JFIF/Exif (`FF D8 FF`).
  case jpeg

  /// The format whose signature starts `bytes`, or `nil` when it is neither PNG nor JPEG.
  public static func detect<Bytes: Collection>(_ bytes: Bytes) -> ImageFormat? where Bytes.Element == UInt8 {
    let head = Array(bytes.prefix(8))
    if head == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
    if head.count >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return .jpeg }
    return nil
  }

  /// The format whose signature `bytes` is a proper prefix of (a file cut off inside its signature).
  static func truncatedSignature<Bytes: Collection>(_ bytes: Bytes) -> ImageFormat? where Bytes.Element == UInt8 {
    let head = Array(bytes.prefix(8))
    if head.isEmpty { return nil }
    if head.count < 8, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A].starts(with: head) { return .png }
    if head.count < 3, [0xFF, 0xD8, 0xFF].starts(with: head) { return .jpeg }
    return nil
  }

  /// A human name for common formats Folio does not decode, used in the `unsupported_image_format` message.
  static func describeUnsupported<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    let head = Array(bytes.prefix(12))
    func starts(_ prefix: [UInt8]) -> Bool { head.starts(with: prefix) }
    if starts(Array("GIF8".utf8)) { return "a GIF image" }
    if starts(Array("RIFF".utf8)), head.count >= 12, Array(head[8..<12]) == Array("WEBP".utf8) {
      return "a WebP image"
    }
    if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return "a TIFF image" }
    if starts(Array("BM".utf8)) { return "a BMP image" }
    if starts(Array("%PDF".utf8)) { return "a PDF document" }
    if head.count >= 12, Array(head[4..<8]) == Array("ftyp".utf8) { return "an HEIF/AVIF/MP4 file" }
    if starts([0x89, 0x50, 0x4E, 0x47]) { return "a damaged PNG (bad signature)" }
    if starts([0xFF, 0xD8]) { return "a damaged JPEG (bad signature)" }
    return "not a recognised image"
  }
}
