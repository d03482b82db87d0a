import FolioTokenizer
import Foundation
import Testing

/// The real Qwen3.5 vocabulary against ids recorded from Hugging Face `tokenizers`
/// (`scripts/make_tokenizer_fixture.py`).
@Suite struct QwenTokenizerTests {
  let tokenizer = Fixtures.qwen

  @Test(arguments: Fixtures.cases.cases)
  func encodeMatchesTokenizers(_ testCase: CaseFile.TextCase) {
    #expect(tokenizer.encode(testCase.text) == testCase.ids)
  }

  @Test(arguments: Fixtures.cases.cases)
  func encodeWithoutSpecialParsingMatchesTokenizers(_ testCase: CaseFile.TextCase) {
    #expect(tokenizer.encode(testCase.text, parseSpecialTokens: false) == testCase.idsWithoutSpecialParsing)
  }

  @Test(arguments: Fixtures.cases.cases)
  func decodeMatchesTokenizers(_ testCase: CaseFile.TextCase) {
    #expect(tokenizer.decode(testCase.ids) == testCase.decoded)
    #expect(tokenizer.decode(testCase.ids, skipSpecialTokens: true) == testCase.decodedSkippingSpecial)
  }

  @Test(arguments: Fixtures.cases.decodeCases)
  func decodeOnlyCasesMatchTokenizers(_ testCase: CaseFile.DecodeCase) {
    #expect(tokenizer.decode(testCase.ids) == testCase.decoded)
    #expect(tokenizer.decode(testCase.ids, skipSpecialTokens: true) == testCase.decodedSkippingSpecial)
  }

  @Test(arguments: Fixtures.cases.cases)
  func streamingDecodeConcatenatesToDecode(_ testCase: CaseFile.TextCase) {
    for skip in [false, true] {
      let pieces = streamPieces(tokenizer, testCase.ids, skipSpecialTokens: skip)
      #expect(pieces.joined() == tokenizer.decode(testCase.ids, skipSpecialTokens: skip))
      // The cases are valid text, so no piece may hold a replacement character unless the text does.
      if !testCase.text.contains("\u{FFFD}") {
        #expect(!pieces.contains { $0.contains("\u{FFFD}") })
      }
    }
  }

  @Test(arguments: Fixtures.cases.decodeCases)
  func streamingDecodeOfBrokenBytesMatchesDecode(_ testCase: CaseFile.DecodeCase) {
    #expect(streamPieces(tokenizer, testCase.ids).joined() == testCase.decoded)
  }

  @Test func streamingHoldsCharactersSplitAcrossTokens() throws {
    // Each of these characters is several byte-level tokens in Qwen3.5's vocabulary.
    for text in ["𠜎𠜱", "👨‍👩‍👧‍👦", "🏳️‍🌈", "龘", "ᚠᛇᚻ"] {
      let ids = tokenizer.encode(text)
      let pieces = streamPieces(tokenizer, ids)
      #expect(pieces.joined() == text)
      for piece in pieces { #expect(!piece.contains("\u{FFFD}"), "\(text): \(pieces)") }
    }
    // Feeding the single bytes of an emoji: nothing until the last byte.
    let byteIDs = try "😀".utf8.map { byte in try #require(tokenizer.id(forToken: byteLevelToken(byte))) }
    #expect(streamPieces(tokenizer, byteIDs) == ["", "", "", "😀", ""])
  }

  @Test func streamingFlushesAnUnfinishedCharacterWithReplacement() throws {
    let lead = try #require(tokenizer.id(forToken: byteLevelToken(0xE4)))
    var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
    #expect(detokenizer.append(lead) == "")
    #expect(detokenizer.finish() == "\u{FFFD}")
    #expect(detokenizer.append(tokenizer.id(forToken: "a")!) == "a")
  }

  @Test func specialTokensAreParsedOnlyWhenAsked() {
    let text = "<|im_start|>user\nhi<|im_end|>"
    let parsed = tokenizer.encode(text)
    #expect(parsed.first == 248045)
    #expect(parsed.last == 248046)
    let plain = tokenizer.encode(text, parseSpecialTokens: false)
    #expect(!plain.contains(248045) && !plain.contains(248046))
    #expect(tokenizer.decode(plain) == text)
    #expect(
      plain == tokenizer.encode("<|im_start") + tokenizer.encode("|>user\nhi<|im_end|>", parseSpecialTokens: false))
  }

  @Test func addedTokenTable() {
    #expect(tokenizer.vocabularySize == Fixtures.cases.vocabularySize)
    #expect(tokenizer.vocabularySize == 248_077)
    for added in Fixtures.cases.addedTokens {
      #expect(tokenizer.id(forToken: added.content) == added.id)
      #expect(tokenizer.token(forID: added.id) == added.content)
      #expect(tokenizer.isSpecial(added.id) == added.special, "\(added.content)")
      #expect(tokenizer.encode(added.content) == [added.id])
    }
    #expect(tokenizer.id(forToken: "<|im_end|>") == 248046)
    #expect(tokenizer.isSpecial(248046))
    #expect(!tokenizer.isSpecial(248068))  // <think> is an added token but not special in Qwen3.5
  }

  @Test func vocabularyLookups() {
    #expect(tokenizer.token(forID: 0) == "!")
    #expect(tokenizer.id(forToken: "!") == 0)
    #expect(tokenizer.id(forToken: "Ġthe") != nil)
    #expect(tokenizer.token(forID: -1) == nil)
    #expect(tokenizer.token(forID: 248_077) == nil)
    #expect(tokenizer.token(forID: 1_000_000) == nil)
    #expect(tokenizer.id(forToken: "no such token at all") == nil)
    #expect(!tokenizer.isSpecial(-5) && !tokenizer.isSpecial(10))
    #expect(tokenizer.decode([-1, 248_100, 1_000_000]) == "")
  }

  @Test func encodingIsDeterministicAcrossThreads() async {
    let cases = Fixtures.cases.cases
    let tokenizer = self.tokenizer
    await withTaskGroup(of: Bool.self) { group in
      for worker in 0..<4 {
        group.addTask {
          var ok = true
          for round in 0..<3 {
            for (index, testCase) in cases.enumerated() where (index + worker + round) % 2 == 0 {
              ok = ok && tokenizer.encode(testCase.text) == testCase.ids
            }
          }
          return ok
        }
      }
      for await ok in group { #expect(ok) }
    }
  }
}

/// The byte-level spelling of a single byte (GPT-2's `bytes_to_unicode`).
func byteLevelToken(_ byte: UInt8) -> String {
  let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
  if printable { return String(UnicodeScalar(byte)) }
  var next: UInt32 = 256
  for b in 0..<Int(byte) {
    let p = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
    if !p { next += 1 }
  }
  return String(UnicodeScalar(next)!)
}
