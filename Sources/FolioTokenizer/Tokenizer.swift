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
  /// Token string → id over the vocabulary and the added tokens (added tokens win), byte-exact.
  private let idsByToken: ByteStringTable
  /// Token string per id (nil where no token has that id).
  private let tokens: [String?]
  /// Bytes the ByteLevel decoder yields per id: `decodedBytes[decodedOffsets[id]..<decodedOffsets[id + 1]]`.
  private let decodedBytes: [UInt8]
  private let decodedOffsets: [Int32]
  private let specialFlags: [Bool]
  private let wordCache = Mutex(WordCache())

  /// The number of ids: the largest id in the vocabulary or the added tokens, plus one.
  public let vocabularySize: Int

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

    // Token strings and ids; added tokens override vocabulary entries with the same id or content.
    var size = 0
    for entry in definition.vocabulary { size = max(size, Int(entry.id) + 1) }
    for token in definition.addedTokens { size = max(size, Int(token.id) + 1) }
    var tokens = [String?](repeating: nil, count: size)
    var idsByToken = ByteStringTable(capacity: definition.vocabulary.count + definition.addedTokens.count)
    for (token, id) in definition.vocabulary {
      idsByToken.insert(token, value: id)
      tokens[Int(id)] = token
    }
    var vocabulary = ByteStringTable(capacity: definition.vocabulary.count)
    for (token, id) in definition.vocabulary {
      guard let bytes = ByteLevel.bytes(ofToken: token) else { continue }
      bytes.withUnsafeBufferPointer { vocabulary.insert($0, value: id) }
    }
    let modelIDsByToken = idsByToken  // merges refer to the model's own vocabulary
    for token in definition.addedTokens {
      idsByToken.insert(token.content, value: token.id)
      tokens[Int(token.id)] = token.content
    }

    // The model.
    var byteIDs = [Int32](repeating: -1, count: 256)
    for byte in 0..<256 {
      let character = String(Character(ByteLevel.characterForByte[byte]))
      if let hit = modelIDsByToken.lookup(character) { byteIDs[byte] = hit.value }
    }
    var merges = MergeTable(capacity: definition.merges.count)
    for (rank, merge) in definition.merges.enumerated() {
      guard let left = modelIDsByToken.lookup(merge.left)?.value else {
        throw invalid("merge \(rank + 1) uses \"\(merge.left)\", which is not in the vocabulary")
      }
      guard let right = modelIDsByToken.lookup(merge.right)?.value else {
        throw invalid("merge \(rank + 1) uses \"\(merge.right)\", which is not in the vocabulary")
      }
      guard let merged = modelIDsByToken.lookup(merge.left + merge.right)?.value else {
        throw invalid("merge \(rank + 1) makes \"\(merge.left + merge.right)\", which is not in the vocabulary")
      }
      merges.insert(left: left, right: right, rank: Int32(rank), merged: merged)
    }
    encoder = BytePairEncoder(
      byteIDs: byteIDs, merges: merges, vocabulary: vocabulary, ignoresMerges: definition.ignoresMerges)

    // Decoding tables. An added token with `normalized: true` decodes from its normalized form
    // (`AddedVocabulary::simple_id_to_token`).
    let normalizer = definition.normalizer
    var decodeTokens = tokens
    for token in definition.addedTokens where token.normalized {
      decodeTokens[Int(token.id)] = normalizer.normalize(token.content)
    }
    var decodedBytes: [UInt8] = []
    var decodedOffsets: [Int32] = [0]
    decodedOffsets.reserveCapacity(size + 1)
    for token in decodeTokens {
      if let token { decodedBytes += ByteLevel.decodedBytes(ofToken: token) }
      decodedOffsets.append(Int32(decodedBytes.count))
    }
    let specialContents = Set(definition.addedTokens.filter(\.isSpecial).map { Array($0.content.utf8) })
    self.specialFlags = tokens.map { token in token.map { specialContents.contains(Array($0.utf8)) } ?? false }

    self.normalizer = normalizer
    self.splitPatterns = definition.splitPatterns
    self.addsPrefixSpace = definition.addsPrefixSpace
    self.byteLevelStep = definition.byteLevelStep
    self.rawAddedTokens = AddedTokenMatcher(Self.uniqueByContent(definition.addedTokens.filter { !$0.normalized }))
    self.normalizedAddedTokens = AddedTokenMatcher(
      Self.uniqueByContent(
        definition.addedTokens.filter(\.normalized).map { token in
          var token = token
          token.content = normalizer.normalize(token.content)
          return token
        }))
    self.idsByToken = idsByToken
    self.tokens = tokens
    self.decodedBytes = decodedBytes
    self.decodedOffsets = decodedOffsets
    self.vocabularySize = size
  }

  /// Keeps the last token for each content (a later entry replaces an earlier one in `tokenizers`).
  private static func uniqueByContent(_ tokens: [AddedToken]) -> [AddedToken] {
    var seen = Set<[UInt8]>()
    var result: [AddedToken] = []
    for token in tokens.reversed() where seen.insert(Array(token.content.utf8)).inserted { result.append(token) }
    return result.reversed()
  }

  // MARK: - Encoding

  /// Encodes `text` into token ids.
  ///
  /// - Parameter parseSpecialTokens: when false, special added tokens (`<|im_start|>`, …) written in `text` are
  ///   encoded as the plain text they spell. Added tokens that are not special (Qwen3.5's `<think>`,
  ///   `<tool_call>`, …) are still recognised, exactly as `tokenizers` does with `encode_special_tokens`.
  public func encode(_ text: String, parseSpecialTokens: Bool = true) -> [Int] {
    var ids: [Int32] = []
    ids.reserveCapacity(text.utf8.count / 3)
    var text = text
    text.withUTF8 { raw in
      rawAddedTokens.split(raw, parseSpecialTokens: parseSpecialTokens) { segment in
        switch segment {
        case .token(let id):
          ids.append(id)
        case .text(let range):
          let piece = String(decoding: UnsafeBufferPointer(rebasing: raw[range]), as: UTF8.self)
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
    guard id >= 0, id < vocabularySize, !(skipSpecialTokens && specialFlags[id]) else { return }
    let start = Int(decodedOffsets[id])
    let end = Int(decodedOffsets[id + 1])
    if start < end { bytes.append(contentsOf: decodedBytes[start..<end]) }
  }

  // MARK: - Vocabulary

  /// The id of a token, written as in `tokenizer.json` (byte-level spelling for vocabulary entries, e.g. "Ġthe"
  /// for " the"; literal content for added tokens such as "<|im_start|>"). Added tokens take precedence.
  public func id(forToken token: String) -> Int? {
    idsByToken.lookup(token).map { Int($0.value) }
  }

  /// The token with this id, spelled as in `tokenizer.json`, or nil if no token has it.
  public func token(forID id: Int) -> String? {
    guard id >= 0, id < tokens.count else { return nil }
    return tokens[id]
  }

  /// Whether `id` is a special token (an added token marked `special`), which `decode(skipSpecialTokens:)` drops.
  public func isSpecial(_ id: Int) -> Bool {
    guard id >= 0, id < specialFlags.count else { return false }
    return specialFlags[id]
  }
}
