import FolioBase
import FolioInbox
import FolioStore
import Foundation

/// Reads a text document's content and splits it into segments that fit the model (issue 4: "Long text is split
/// into segments that fit the model's context"). Segments are stored once per (document, source), so a resumed
/// run and the translation memory see the same pieces.
struct DocumentText {
  let store: Store
  let runner: any StepRunner
  let segmentTokens: Int

  var segmenter: TextSegmenter {
    let runner = self.runner
    return TextSegmenter(budget: segmentTokens) { runner.countTokens($0) }
  }

  /// The stored segments of the document's own text, segmenting (and storing) them on first use.
  func documentSegments(_ document: Document) async throws -> [Segment] {
    guard let id = document.id else { return [] }
    let existing = try await store.segments(documentID: id, source: "document")
    if !existing.isEmpty { return existing }
    guard document.kind == .text else {
      throw FolioError(
        .invalidArgument,
        "document \(id) (\(document.relativePath)) is an image: a step with `input: document` needs a text document; "
          + "read the image's text with `input: ocr` instead")
    }
    let text = try Self.readText(document)
    return try await store.saveSegments(documentID: id, source: "document", texts: segmenter.segments(of: text))
  }

  /// The stored segments of a step's output (e.g. the OCR text an image's translation reads).
  func stepSegments(documentID: Int64, stepID: String, text: String) async throws -> [Segment] {
    let existing = try await store.segments(documentID: documentID, source: stepID)
    if !existing.isEmpty, existing.map(\.text).joined() == text { return existing }
    if !existing.isEmpty {
      // A reprocessed step produced different text: key its segments by a source that names the new text.
      let source = "\(stepID)@\(Segment.hash(of: text).prefix(12))"
      return try await store.saveSegments(documentID: documentID, source: source, texts: segmenter.segments(of: text))
    }
    return try await store.saveSegments(documentID: documentID, source: stepID, texts: segmenter.segments(of: text))
  }

  /// The document's file content as UTF-8 (the managed copy, the work-area copy, or the original).
  static func readText(_ document: Document) throws(FolioError) -> String {
    let path = document.storedPath ?? document.originalPath
    guard let data = FileManager.default.contents(atPath: path) else {
      throw FolioError(
        .fileVanished,
        "the text of document \(document.id ?? 0) is no longer at \(path) (it was moved or deleted after intake); "
          + "add the file again")
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw FolioError(.notUTF8, "\(path) is not valid UTF-8")
    }
    return text
  }
}

/// Width and height read from a PNG IHDR or JPEG SOF header, without decoding (lessons row 10: check `max_pixels`
/// before decoding, and turn a corrupt header into a typed error).
///
/// When FolioCodecs lands with its own header reader, this check should call it so `max_pixels` lives in one place.
enum ImageProbe {
  struct Dimensions: Equatable {
    var width: Int
    var height: Int
    var pixels: Int { width * height }
  }

  /// Reads the dimensions of the PNG or JPEG at `path`.
  ///
  /// - Throws: ``FolioError/Code/corruptImage`` when the header is missing, malformed or the file is truncated.
  static func dimensions(at path: String, kind: FolioInbox.DocumentKind) throws(FolioError) -> Dimensions {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw FolioError(.fileVanished, "cannot open \(path)")
    }
    defer { try? handle.close() }
    let name = (path as NSString).lastPathComponent
    switch kind {
    case .png:
      let head = [UInt8](handle.readData(ofLength: 33))
      guard head.count == 33, Array(head[8..<16]) == [0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52] else {
        throw FolioError(.corruptImage, "\(name) starts like a PNG but has no valid IHDR header; the file is corrupt")
      }
      let crc = head[29..<33].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
      guard CRC32.checksum(head[12..<29]) == crc else {
        throw FolioError(.corruptImage, "\(name): the PNG header's checksum does not match; the file is corrupt")
      }
      let width = head[16..<20].reduce(0) { $0 << 8 | Int($1) }
      let height = head[20..<24].reduce(0) { $0 << 8 | Int($1) }
      guard width > 0, height > 0 else {
        throw FolioError(.corruptImage, "\(name): the PNG header gives a size of \(width)×\(height)")
      }
      let size = (try? handle.seekToEnd()) ?? 0
      guard size >= 45 else { throw FolioError(.corruptImage, "\(name): the PNG is truncated") }
      try? handle.seek(toOffset: size - 12)
      let tail = [UInt8](handle.readData(ofLength: 12))
      guard tail == [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82] else {
        throw FolioError(
          .corruptImage, "\(name): the PNG does not end with an IEND chunk; it is truncated or corrupt")
      }
      return Dimensions(width: width, height: height)
    case .jpeg:
      // SOF markers hold the frame size; scan the marker segments up to the first one (headers are small).
      let data = [UInt8](handle.readData(ofLength: 1 << 20))
      var i = 2
      while i + 9 < data.count {
        guard data[i] == 0xFF else {
          throw FolioError(.corruptImage, "\(name): the JPEG marker structure is broken at byte \(i); the file is corrupt")
        }
        let marker = data[i + 1]
        if marker == 0xFF {
          i += 1
          continue
        }
        if marker == 0xD8 || (0xD0...0xD7).contains(marker) || marker == 0x01 {
          i += 2
          continue
        }
        let length = Int(data[i + 2]) << 8 | Int(data[i + 3])
        guard length >= 2 else { throw FolioError(.corruptImage, "\(name): a JPEG segment has length \(length)") }
        if (0xC0...0xCF).contains(marker), marker != 0xC4, marker != 0xC8, marker != 0xCC {
          let height = Int(data[i + 5]) << 8 | Int(data[i + 6])
          let width = Int(data[i + 7]) << 8 | Int(data[i + 8])
          guard width > 0, height > 0 else {
            throw FolioError(.corruptImage, "\(name): the JPEG frame header gives a size of \(width)×\(height)")
          }
          return Dimensions(width: width, height: height)
        }
        if marker == 0xDA || marker == 0xD9 { break }
        i += 2 + length
      }
      throw FolioError(.corruptImage, "\(name): no JPEG frame header (SOF) found; the file is corrupt or truncated")
    case .text:
      throw FolioError(.invalidArgument, "\(name) is not an image")
    }
  }
}

/// CRC-32 (ISO-HDLC, as PNG uses).
enum CRC32 {
  static let table: [UInt32] = (0..<256).map { n -> UInt32 in
    var c = UInt32(n)
    for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
  }

  static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
  }
}
