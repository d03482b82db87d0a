import FolioTokenizer
import Foundation
import Testing

/// A tiny byte-level BPE trained with `tokenizers` (the format of the engine's test models' tokenizers), and
/// variants of it that cover the configurations FolioTokenizer supports, against ids from `tokenizers`.
@Suite struct SmallTokenizerTests {
  let tokenizer = Fixtures.small

  @Test func vocabularySize() {
    #expect(tokenizer.vocabularySize == Fixtures.cases.smallTokenizer.vocabularySize)
  }

  @Test(arguments: Fixtures.cases.smallTokenizer.cases)
  func encodeAndDecodeMatchTokenizers(_ testCase: CaseFile.TextCase) {
    #expect(tokenizer.encode(testCase.text) == testCase.ids)
    #expect(tokenizer.encode(testCase.text, parseSpecialTokens: false) == testCase.idsWithoutSpecialParsing)
    #expect(tokenizer.decode(testCase.ids) == testCase.decoded)
    #expect(tokenizer.decode(testCase.ids, skipSpecialTokens: true) == testCase.decodedSkippingSpecial)
    #expect(streamPieces(tokenizer, testCase.ids).joined() == testCase.decoded)
  }

  @Test(arguments: Fixtures.cases.smallTokenizer.variants.keys.sorted())
  func variantMatchesTokenizers(_ name: String) throws {
    let variant = try Tokenizer(tokenizerJSON: Fixtures.variantURL(name))
    let texts = Dictionary(uniqueKeysWithValues: Fixtures.cases.smallTokenizer.cases.map { ($0.name, $0.text) })
    for expected in try #require(Fixtures.cases.smallTokenizer.variants[name]) {
      let text = try #require(texts[expected.name])
      #expect(variant.encode(text) == expected.ids, "\(name): \(expected.name)")
    }
  }

  @Test func addedTokenOptions() throws {
    let mask = try #require(tokenizer.id(forToken: "<mask>"))
    let note = try #require(tokenizer.id(forToken: "[note]"))
    // lstrip/rstrip: the whitespace around "<mask>" belongs to it.
    #expect(tokenizer.encode("a   <mask>   b") == tokenizer.encode("a") + [mask] + tokenizer.encode("b"))
    // single_word: no match inside a word.
    #expect(tokenizer.encode("x[note]").contains(note) == false)
    #expect(tokenizer.encode("x [note] y").contains(note))
    // normalized: the NFD spelling in tokenizer.json matches NFC and NFD input alike.
    let cafe = try #require(tokenizer.id(forToken: "cafe\u{301}!"))
    #expect(tokenizer.encode("caf\u{E9}!") == [cafe])
    #expect(tokenizer.encode("cafe\u{301}!") == [cafe])
  }
}
