import FolioTokenizer
import Foundation
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

  /// Prints encode throughput by wall clock and by this thread's CPU time (which a busy machine disturbs less).
  @Test func encodeThroughput() throws {
    let documents = try Self.documents().map(\.text)
    let bytes = documents.reduce(0) { $0 + $1.utf8.count }
    let joined = documents.joined(separator: "\n")
    func measure(_ work: () -> Void) -> String {
      var cpuStart = timespec()
      var cpuEnd = timespec()
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpuStart)
      let wall = ContinuousClock().measure(work)
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpuEnd)
      let cpuSeconds = Double(cpuEnd.tv_sec - cpuStart.tv_sec) + Double(cpuEnd.tv_nsec - cpuStart.tv_nsec) * 1e-9
      let wallSeconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) * 1e-18
      return String(
        format: "%.1f MB/s wall, %.1f MB/s CPU", Double(bytes) / wallSeconds / 1e6, Double(bytes) / cpuSeconds / 1e6)
    }
    var tokenizer = try Tokenizer(tokenizerJSON: Fixtures.qwenTokenizerURL)  // empty word cache
    let cold = measure { for text in documents { _ = tokenizer.encode(text) } }
    let warm = measure { for text in documents { _ = tokenizer.encode(text) } }
    tokenizer = try Tokenizer(tokenizerJSON: Fixtures.qwenTokenizerURL)
    let single = measure { _ = tokenizer.encode(joined) }
    print("encode throughput on \(bytes) bytes in \(documents.count) documents:")
    print("  cold word cache: \(cold)\n  warm word cache: \(warm)\n  as one string (cold): \(single)")
  }
}
