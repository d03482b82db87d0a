import FolioBase
import FolioTokenizer
import Foundation
import Testing

/// Bad files fail with a `FolioError` that names the file, never with a crash.
@Suite struct TokenizerErrorTests {
  /// A fresh temporary folder, removed when the test ends.
  final class TemporaryFolder {
    let url: URL
    init() throws {
      url = FileManager.default.temporaryDirectory.appendingPathComponent("folio-tokenizer-\(UUID().uuidString)")
      try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }

    func write(_ text: String, to name: String = "tokenizer.json") throws -> URL {
      let file = url.appendingPathComponent(name)
      try Data(text.utf8).write(to: file)
      return file
    }
  }

  private func expectError(
    _ code: FolioError.Code, naming file: URL, sourceLocation: SourceLocation = #_sourceLocation,
    _ load: () throws -> Tokenizer
  ) {
    do {
      _ = try load()
      Issue.record("loading succeeded", sourceLocation: sourceLocation)
    } catch let error as FolioError {
      #expect(error.code == code, sourceLocation: sourceLocation)
      #expect(error.message.contains(file.path), "\(error.message)", sourceLocation: sourceLocation)
    } catch {
      Issue.record("not a FolioError: \(error)", sourceLocation: sourceLocation)
    }
  }

  /// A minimal valid byte-level BPE tokenizer.json, with parts replaceable.
  static func minimalJSON(
    model: String = #"{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}"#,
    preTokenizer: String = #"{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}"#,
    decoder: String = #"{"type":"ByteLevel"}"#,
    normalizer: String = "null"
  ) -> String {
    """
    {"version":"1.0","added_tokens":[{"id":3,"content":"<s>","special":true}],"normalizer":\(normalizer),
    "pre_tokenizer":\(preTokenizer),"post_processor":null,"decoder":\(decoder),"model":\(model)}
    """
  }

  @Test func missingFile() throws {
    let folder = try TemporaryFolder()
    expectError(.fileNotFound, naming: folder.url) { try Tokenizer(folder: folder.url) }
    let file = folder.url.appendingPathComponent("nope.json")
    expectError(.fileNotFound, naming: file) { try Tokenizer(tokenizerJSON: file) }
  }

  @Test func directoryInsteadOfFile() throws {
    let folder = try TemporaryFolder()
    expectError(.fileNotFound, naming: folder.url) { try Tokenizer(tokenizerJSON: folder.url) }
  }

  @Test(arguments: [
    "", "{", "{\"model\": }", "[1, 2", "{\"a\": \"\\ud800\"}", "{\"a\": 01}", "nul", "{\"a\": \"x\" \"b\"}",
    String(repeating: "[", count: 10_000),
  ])
  func malformedJSON(_ text: String) throws {
    let folder = try TemporaryFolder()
    let file = try folder.write(text)
    expectError(.invalidTokenizer, naming: file) { try Tokenizer(tokenizerJSON: file) }
  }

  @Test func invalidUTF8() throws {
    let folder = try TemporaryFolder()
    let file = folder.url.appendingPathComponent("tokenizer.json")
    try Data([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]).write(to: file)
    expectError(.invalidTokenizer, naming: file) { try Tokenizer(tokenizerJSON: file) }
  }

  @Test(arguments: [
    // Not a tokenizer at all.
    #"{"architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5"}"#,
    #"[1, 2, 3]"#,
    // Other model types.
    minimalJSON(model: #"{"type":"WordPiece","vocab":{"a":0},"unk_token":"[UNK]"}"#),
    minimalJSON(model: #"{"type":"Unigram","vocab":[["a", -1.0]]}"#),
    // BPE without its parts, or with broken parts.
    minimalJSON(model: #"{"type":"BPE","merges":[]}"#),
    minimalJSON(model: #"{"type":"BPE","vocab":{"a":0}}"#),
    minimalJSON(model: #"{"type":"BPE","vocab":{"a":-4},"merges":[]}"#),
    minimalJSON(model: #"{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b c"]}"#),
    minimalJSON(model: #"{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a c"]}"#),
    minimalJSON(model: #"{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}"#),
    minimalJSON(model: #"{"type":"BPE","vocab":{"a":0,"b":1},"merges":[7]}"#),
    minimalJSON(model: #"{"type":"BPE","vocab":{"a":0},"merges":[],"continuing_subword_prefix":"@@"}"#),
    // Not byte-level, or an unsupported pipeline.
    minimalJSON(preTokenizer: #"{"type":"Whitespace"}"#),
    minimalJSON(preTokenizer: "null"),
    minimalJSON(
      preTokenizer:
        #"{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","use_regex":false}]}"#
    ),
    minimalJSON(
      preTokenizer:
        #"{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"String":" "},"behavior":"Isolated","invert":false},{"type":"ByteLevel","use_regex":false}]}"#
    ),
    minimalJSON(decoder: #"{"type":"WordPiece"}"#),
    minimalJSON(decoder: "null"),
    minimalJSON(normalizer: #"{"type":"Lowercase"}"#),
  ])
  func notAByteLevelBPETokenizer(_ text: String) throws {
    let folder = try TemporaryFolder()
    let file = try folder.write(text)
    expectError(.invalidTokenizer, naming: file) { try Tokenizer(tokenizerJSON: file) }
  }

  @Test func minimalFileWorks() throws {
    let folder = try TemporaryFolder()
    let file = try folder.write(Self.minimalJSON())
    let tokenizer = try Tokenizer(tokenizerJSON: file)
    #expect(tokenizer.vocabularySize == 4)
    #expect(tokenizer.encode("ab<s>ba") == [2, 3, 1, 0])
    #expect(tokenizer.decode([2, 3, 1, 0]) == "ab<s>ba")
    #expect(tokenizer.decode([2, 3, 1, 0], skipSpecialTokens: true) == "abba")
    // Bytes missing from the vocabulary are dropped, as tokenizers does without an unknown token.
    #expect(tokenizer.encode("a c") == [0])
    #expect(tokenizer.isSpecial(3) && !tokenizer.isSpecial(2))
    // The same through the folder initializer.
    #expect(try Tokenizer(folder: folder.url).encode("ab") == [2])
  }
}
