import FolioBase
import Foundation
import Synchronization

/// An exact byte-level BPE tokenizer loaded from a Hugging Face `tokenizer.json` (Qwen3.5's and the like).
///
/// `encode` and `decode` give the same ids and text as the `tokenizers` library on the same file:
/// added tokens are matched first (leftmost-longest, honouring `lstrip`/`rstrip`/`single_word`/`normalized`),
/// the rest is normalized (NFC for Qwen3.5), split by the pre-tokenizer regex, mapped to GPT-2's byte alphabet
/// and merged by BPE rank; decoding reverses the byte mapping. No BOS/EOS or other template tokens are added.
///
/// Instances are immutable apart from an internal, lock-protected cache of recently encoded words, and can be
/// shared between threads.
public final class Tokenizer: Sendable {
  private let encoder: BytePairEncoder
  private let normalizer: Normalizer
  private let splitPatterns: [SplitPattern]
  private let addsPrefixSpace: Bool
  /// Index in `splitPatterns` where the ByteLevel pre-tokenizer's own processing starts.
  private let byteLevelStep: Int
  /// Added tokens matched on the raw input (`normalized: false`) and on normalized text (`normalized: true`).
  private let rawAddedTokens: AddedTokenMatcher
  private let normalizedAddedTokens: AddedTokenMatcher
  private let vocabulary: Vocabulary
  private let wordCache = Mutex(WordCache())
  /// Every added token's spelling, longest first (see `neutralizingAddedTokens(in:)`).
  private let addedTokenSpellings: [String]

  /// The number of ids: the largest id in the vocabulary or the added tokens, plus one.
  public var vocabularySize: Int { vocabulary.count }

  /// Loads `tokenizer.json` from a model folder.
  ///
  /// - Throws: `FolioError` with code `.fileNotFound` when the folder has no `tokenizer.json`, or
  ///   `.invalidTokenizer` when the file is malformed or not a byte-level BPE tokenizer.
  public convenience init(folder: URL) throws {
    try self.init(tokenizerJSON: folder.appendingPathComponent("tokenizer.json"))
  }

  /// Loads a `tokenizer.json` file.
  ///
  /// - Throws: `FolioError` with code `.fileNotFound` when the file does not exist, `.fileUnreadable` when it
  ///   cannot be read, or `.invalidTokenizer` when it is malformed or describes a tokenizer this type cannot
  ///   reproduce exactly (the message names the file and the problem).
  public init(tokenizerJSON url: URL) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
      throw FolioError(.fileNotFound, "tokenizer file not found: \(url.path)")
    }
    let data: Data
    do {
      data = try Data(contentsOf: url)
    } catch {
      throw FolioError(.fileUnreadable, "cannot read \(url.path)", cause: error)
    }
    let definition = try TokenizerDefinition(data: data, url: url)
    func invalid(_ message: String) -> FolioError { FolioError(.invalidTokenizer, "\(url.path): \(message)") }

    let normalizer = definition.normalizer
    let vocabulary = Vocabulary(model: definition.vocabulary, added: definition.addedTokens, normalizer: normalizer)

    // The model: single bytes, then merges resolved to ids (each side and the merged token must be in the
    // model's vocabulary, as `tokenizers` requires).
    var byteIDs = [Int32](repeating: -1, count: 256)
    for byte in 0..<256 {
      let single = [UInt8(byte)]
      if let id = single.withUnsafeBufferPointer({ vocabulary.byteLevelIDs.lookup($0) }) { byteIDs[byte] = id.value }
    }
    var merges = MergeTable(capacity: definition.merges.count)
    var joined: [UInt8] = []
    for (rank, merge) in definition.merges.enumerated() {
      var left = merge.left
      var right = merge.right
      let leftID = left.withUTF8 { vocabulary.modelID(utf8: $0) }
      let rightID = right.withUTF8 { vocabulary.modelID(utf8: $0) }
      joined.removeAll(keepingCapacity: true)
      joined.append(contentsOf: merge.left.utf8)
      joined.append(contentsOf: merge.right.utf8)
      let mergedID = joined.withUnsafeBufferPointer { vocabulary.modelID(utf8: $0) }
      guard let leftID, let rightID, let mergedID else {
        let missing = leftID == nil ? merge.left : rightID == nil ? merge.right : merge.left + merge.right
        throw invalid(
          "merge \(rank + 1) (\"\(merge.left) \(merge.right)\") needs \"\(missing)\", which is not in the vocabulary")
      }
      merges.insert(left: leftID, right: rightID, rank: Int32(rank), merged: mergedID)
    }
    encoder = BytePairEncoder(
      byteIDs: byteIDs, merges: merges, vocabulary: vocabulary.byteLevelIDs, ignoresMerges: definition.ignoresMerges)

    self.vocabulary = vocabulary
    self.normalizer = normalizer
    self.splitPatterns = definition.splitPatterns
    self.addsPrefixSpace = definition.addsPrefixSpace
    self.byteLevelStep = definition.byteLevelStep
    self.addedTokenSpellings = Set(definition.addedTokens.map(\.content)).filter { !$0.isEmpty }
      .sorted { $0.utf8.count != $1.utf8.count ? $0.utf8.count > $1.utf8.count : $0 < $1 }
    self.rawAddedTokens = AddedTokenMatcher(Self.uniqueByContent(definition.addedTokens.filter { !$0.normalized }))
    self.normalizedAddedTokens = AddedTokenMatcher(
      Self.uniqueByContent(
        definition.addedTokens.filter(\.normalized).map { token in
          var token = token
          token.content = normalizer.normalize(token.content)
          return token
        }))
  }

  /// Keeps the last token for each content (a later entry replaces an earlier one in `tokenizers`).
  private static func uniqueByContent(_ tokens: [AddedToken]) -> [AddedToken] {
    var seen = Set<[UInt8]>()
    var result: [AddedToken] = []
    for token in tokens.reversed() where seen.insert(Array(token.content.utf8)).inserted { result.append(token) }
    return result.reversed()
  }

  // MARK: - Encoding

  /// `text` with every added token's spelling (`<|im_end|>`, `<|image_pad|>`, `<think>`, …) broken by a zero-width
  /// space after its first character. Text from a document or from an earlier answer placed inside a chat prompt
  /// is then read as the text it is: it cannot end a turn, open reasoning or ask for an image that was never given.
  public func neutralizingAddedTokens(in text: String) -> String {
    var result = text
    for spelling in addedTokenSpellings where result.contains(spelling) {
      let breakAt = spelling.index(after: spelling.startIndex)
      result = result.replacingOccurrences(
        of: spelling, with: spelling[..<breakAt] + "\u{200B}" + spelling[breakAt...])
    }
    return result
  }

  /// Encodes `text` into token ids.
  ///
  /// - Parameter parseSpecialTokens: when false, special added tokens (`<|im_start|>`, …) written in `text` are
  ///   encoded as the plain text they spell. Added tokens that are not special (Qwen3.5's `<think>`,
  ///   `<tool_call>`, …) are still recognised, exactly as `tokenizers` does with `encode_special_tokens`.
  public func encode(_ text: String, parseSpecialTokens: Bool = true) -> [Int] {
    var ids: [Int32] = []
    ids.reserveCapacity(text.utf8.count / 3)
    let original = text
    var text = text
    text.withUTF8 { raw in
      rawAddedTokens.split(raw, parseSpecialTokens: parseSpecialTokens) { segment in
        switch segment {
        case .token(let id):
          ids.append(id)
        case .text(let range):
          let piece =
            range.count == raw.count
            ? original : String(decoding: UnsafeBufferPointer(rebasing: raw[range]), as: UTF8.self)
          encodeNormalizing(piece, parseSpecialTokens: parseSpecialTokens, into: &ids)
        }
      }
    }
    return ids.map(Int.init)
  }

  private func encodeNormalizing(_ text: String, parseSpecialTokens: Bool, into ids: inout [Int32]) {
    var normalized = normalizer.normalize(text)
    normalized.withUTF8 { bytes in
      normalizedAddedTokens.split(bytes, parseSpecialTokens: parseSpecialTokens) { segment in
        switch segment {
        case .token(let id): ids.append(id)
        case .text(let range): preTokenize(UnsafeBufferPointer(rebasing: bytes[range]), level: 0, into: &ids)
        }
      }
    }
  }

  /// Applies the split patterns from `level` on; the ByteLevel step's `add_prefix_space` prepends a space to
  /// each piece it receives (the pieces of the preceding `Split`s) that does not start with one.
  private func preTokenize(
    _ text: UnsafeBufferPointer<UInt8>, level: Int, isPrefixed: Bool = false, into ids: inout [Int32]
  ) {
    if level == byteLevelStep, addsPrefixSpace, !isPrefixed, text.first != 0x20 {
      let prefixed = [0x20] + Array(text)
      prefixed.withUnsafeBufferPointer { preTokenize($0, level: level, isPrefixed: true, into: &ids) }
      return
    }
    guard level < splitPatterns.count else {
      encodeWordCached(text, into: &ids)
      return
    }
    splitPatterns[level].split(text) { start, end in
      preTokenize(UnsafeBufferPointer(rebasing: text[start..<end]), level: level + 1, into: &ids)
    }
  }

  private func encodeWordCached(_ word: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
    guard word.count > 1, word.count <= WordCache.maximumWordLength else {
      encoder.encode(word, into: &ids)
      return
    }
    // With `ignore_merges` a word in the vocabulary is one token: the vocabulary is the first cache.
    if encoder.ignoresMerges, let hit = encoder.vocabulary.lookup(word) {
      ids.append(hit.value)
      return
    }
    if wordCache.withLock({ $0.append(word, into: &ids) }) { return }
    let start = ids.count
    encoder.encode(word, into: &ids)
    ids.withUnsafeBufferPointer { all in
      let result = UnsafeBufferPointer(rebasing: all[start...])
      wordCache.withLock { $0.insert(word, ids: result) }
    }
  }

  // MARK: - Decoding

  /// Decodes ids into text. Ids that belong to no token are skipped; byte sequences that are not valid UTF-8
  /// become U+FFFD (per maximal invalid subsequence, like Rust's `String::from_utf8_lossy`).
  ///
  /// - Parameter skipSpecialTokens: leave out special added tokens (not the non-special ones such as `<think>`).
  public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(ids.count * 4)
    for id in ids { appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &bytes) }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// Appends the decoder's bytes for `id` (nothing for unknown or skipped ids).
  func appendBytes(of id: Int, skipSpecialTokens: Bool, to bytes: inout [UInt8]) {
    vocabulary.appendDecodedBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &bytes)
  }

  // MARK: - Vocabulary

  /// The id of a token, written as in `tokenizer.json` (byte-level spelling for vocabulary entries, e.g. "Ġthe"
  /// for " the"; literal content for added tokens such as "<|im_start|>"). Added tokens take precedence.
  public func id(forToken token: String) -> Int? {
    vocabulary.id(forToken: token).map(Int.init)
  }

  /// The token with this id, spelled as in `tokenizer.json`, or nil if no token has it.
  public func token(forID id: Int) -> String? {
    guard id >= 0, id < vocabulary.count else { return nil }
    return vocabulary.tokens[id]
  }

  /// Whether `id` is a special token (an added token marked `special`), which `decode(skipSpecialTokens:)` drops.
  public func isSpecial(_ id: Int) -> Bool {
    guard id >= 0, id < vocabulary.count else { return false }
    return vocabulary.specialFlags[id]
  }
}
