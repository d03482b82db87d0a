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

