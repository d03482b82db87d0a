import Foundation
import FolioTokenizer
import Testing

/// The folder named by FOLIO_TOKENIZER_CORPUS, if set.
private let corpusFolder = ProcessInfo.processInfo.environment["FOLIO_TOKENIZER_CORPUS"].map {
  URL(fileURLWithPath: $0)
}

/// Opt-in checks on a large corpus (a few MB) that is not committed. Generate it with
/// `/work/venv/bin/python scripts/make_tokenizer_fixture.py --corpus-out DIR`, then run with
/// `FOLIO_TOKENIZER_CORPUS=DIR swift test -c release --filter CorpusTests`.
@Suite(.enabled(if: corpusFolder != nil, "set FOLIO_TOKENIZER_CORPUS to a corpus folder"))
struct CorpusTests {
  struct Document: Decodable {
    var text: String
    var ids: [Int]
  }

  static func documents() throws -> [Document] {
    let folder = try #require(corpusFolder)
    let data = try Data(contentsOf: folder.appendingPathComponent("corpus.json"))
    return try JSONDecoder().decode([Document].self, from: data)
  }

  @Test func everyDocumentMatchesTokenizers() throws {
    let tokenizer = Fixtures.qwen
    let documents = try Self.documents()
    var mismatches: [String] = []
    for document in documents {
      if tokenizer.encode(document.text) != document.ids { mismatches.append(String(document.text.prefix(80))) }
      if tokenizer.decode(document.ids) != document.text.precomposedStringWithCanonicalMapping {
        mismatches.append("decode: " + String(document.text.prefix(80)))
      }
    }
    #expect(mismatches.isEmpty, "\(mismatches.count) of \(documents.count) differ: \(mismatches.prefix(5))")
  }

  @Test func encodeThroughput() throws {
    let tokenizer = try Tokenizer(tokenizerJSON: Fixtures.qwenTokenizerURL)  // cold word cache
    let documents = try Self.documents().map(\.text)
    let bytes = documents.reduce(0) { $0 + $1.utf8.count }
    let clock = ContinuousClock()
    var tokens = 0
    let cold = clock.measure { for text in documents { tokens += tokenizer.encode(text).count } }
    let warm = clock.measure { for text in documents { _ = tokenizer.encode(text) } }
    let joined = documents.joined(separator: "\n")
    let single = clock.measure { _ = tokenizer.encode(joined) }
    func rate(_ d: Duration) -> String {
      let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
      return String(format: "%.1f MB/s", Double(bytes) / seconds / 1e6)
    }
    print(
      "encode: \(bytes) bytes, \(tokens) tokens in \(documents.count) documents; cold cache \(rate(cold)),",
      "warm cache \(rate(warm)), one string \(rate(single))")
  }
}
