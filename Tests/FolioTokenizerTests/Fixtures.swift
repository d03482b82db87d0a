import FolioTokenizer
import Foundation
import Testing

/// Locates and loads the tokenizer fixtures written by `scripts/make_tokenizer_fixture.py`.
enum Fixtures {
  /// The repository root: the nearest folder above this file that holds `Package.swift`.
  static let repositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while url.path != "/" {
      if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
      url = url.deletingLastPathComponent()
    }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  }()

  static let folder = repositoryRoot.appendingPathComponent("Tests/Fixtures/tokenizer")
  static let qwenTokenizerURL = folder.appendingPathComponent("qwen35-tokenizer.json")
  static let smallTokenizerURL = folder.appendingPathComponent("small-tokenizer.json")

  static func variantURL(_ name: String) -> URL {
    folder.appendingPathComponent("variants/\(name).json")
  }

  /// The Qwen3.5 tokenizer, loaded once for all tests.
  static let qwen: Tokenizer = {
    do {
      return try Tokenizer(tokenizerJSON: qwenTokenizerURL)
    } catch {
      preconditionFailure("cannot load the Qwen3.5 tokenizer fixture: \(error)")
    }
  }()

  static let small: Tokenizer = {
    do {
      return try Tokenizer(tokenizerJSON: smallTokenizerURL)
    } catch {
      preconditionFailure("cannot load the small tokenizer fixture: \(error)")
    }
  }()

  static let cases: CaseFile = {
    do {
      let data = try Data(contentsOf: folder.appendingPathComponent("cases.json"))
      return try JSONDecoder().decode(CaseFile.self, from: data)
    } catch {
      preconditionFailure("cannot read cases.json: \(error)")
    }
  }()
}

/// `cases.json`.
struct CaseFile: Decodable {
  struct AddedToken: Decodable {
    var id: Int
    var content: String
    var special: Bool
  }

  struct TextCase: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var text: String
    var ids: [Int]
    var idsWithoutSpecialParsing: [Int]
    var decoded: String
    var decodedSkippingSpecial: String
    var testDescription: String { name }

    enum CodingKeys: String, CodingKey {
      case name, text, ids, decoded
      case idsWithoutSpecialParsing = "ids_without_special_parsing"
      case decodedSkippingSpecial = "decoded_skipping_special"
    }
  }

  struct DecodeCase: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var ids: [Int]
    var decoded: String
    var decodedSkippingSpecial: String
    var testDescription: String { name }

    enum CodingKeys: String, CodingKey {
      case name, ids, decoded
      case decodedSkippingSpecial = "decoded_skipping_special"
    }
  }

  struct IDsCase: Decodable, Sendable {
    var name: String
    var ids: [Int]
  }

  struct SmallTokenizer: Decodable {
    var vocabularySize: Int
    var cases: [TextCase]
    /// Variant file name (without `.json`) → ids per case name.
    var variants: [String: [IDsCase]]
    enum CodingKeys: String, CodingKey {
      case cases, variants
      case vocabularySize = "vocabulary_size"
    }
  }

  var vocabularySize: Int
  var addedTokens: [AddedToken]
  var cases: [TextCase]
  var decodeCases: [DecodeCase]
  var smallTokenizer: SmallTokenizer

  enum CodingKeys: String, CodingKey {
    case cases
    case vocabularySize = "vocabulary_size"
    case addedTokens = "added_tokens"
    case decodeCases = "decode_cases"
    case smallTokenizer = "small_tokenizer"
  }
}

/// Decodes `ids` one at a time through a `StreamingDetokenizer`, returning each piece it emitted.
func streamPieces(_ tokenizer: Tokenizer, _ ids: [Int], skipSpecialTokens: Bool = false) -> [String] {
  var detokenizer = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: skipSpecialTokens)
  var pieces = ids.map { detokenizer.append($0) }
  pieces.append(detokenizer.finish())
  return pieces
}
