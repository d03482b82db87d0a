/// The token ↔ id tables of a tokenizer: the BPE model's vocabulary, the added tokens, and what the ByteLevel
/// decoder yields for each id.
final class Vocabulary: Sendable {
  /// Raw bytes → id for model tokens spelled in the ByteLevel alphabet (all of them, in byte-level BPE).
  let byteLevelIDs: ByteStringTable
  /// UTF-8 → id for model tokens with characters outside the alphabet, which BPE can never produce.
  private let otherModelIDs: ByteStringTable
  /// UTF-8 content → id for added tokens.
  private let addedIDs: ByteStringTable
  /// Token string per id (nil where no token has that id); added tokens override model tokens.
  let tokens: [String?]
  /// Bytes the ByteLevel decoder yields per id: `decodedBytes[decodedOffsets[id]..<decodedOffsets[id + 1]]`.
  private let decodedBytes: [UInt8]
  private let decodedOffsets: [Int32]
  /// Whether each id's token is special (`tokenizers` tests the token's string against the special contents).
  let specialFlags: [Bool]

  /// The number of ids: the largest id plus one.
  var count: Int { tokens.count }

  /// Builds the tables. Later duplicates win, as in `tokenizers`' hash maps.
  init(model: [(token: String, id: Int32)], added: [AddedToken], normalizer: Normalizer) {
    var size = 0
    for entry in model { size = max(size, Int(entry.id) + 1) }
    for token in added { size = max(size, Int(token.id) + 1) }

    var tokens = [String?](repeating: nil, count: size)
    var byteLevelIDs = ByteStringTable(capacity: model.count)
    var otherModelIDs = ByteStringTable()
    for (token, id) in model {
      tokens[Int(id)] = token
      var token = token
      token.withUTF8 { utf8 in
        ByteLevel.withRawBytes(ofUTF8: utf8) { raw in
          if let raw {
            byteLevelIDs.insert(raw, value: id)
          } else {
            otherModelIDs.insert(utf8, value: id)
          }
        }
      }
    }
    var addedIDs = ByteStringTable()
    for token in added {
      addedIDs.insert(token.content, value: token.id)
      tokens[Int(token.id)] = token.content
    }

    // An added token with `normalized: true` decodes from its normalized form
    // (`AddedVocabulary::simple_id_to_token`).
    var decodeForms = tokens
    for token in added where token.normalized { decodeForms[Int(token.id)] = normalizer.normalize(token.content) }
    var decodedBytes: [UInt8] = []
    decodedBytes.reserveCapacity(size * 8)
    var decodedOffsets: [Int32] = [0]
    decodedOffsets.reserveCapacity(size + 1)
    for token in decodeForms {
      if var token {
        token.withUTF8 { utf8 in
          ByteLevel.withRawBytes(ofUTF8: utf8) { raw in decodedBytes.append(contentsOf: raw ?? utf8) }
        }
      }
      decodedOffsets.append(Int32(decodedBytes.count))
    }

    var specialFlags = [Bool](repeating: false, count: size)
    for token in added where token.isSpecial {
      var content = token.content
      let modelID = content.withUTF8 { utf8 in
        Self.modelID(utf8: utf8, byteLevelIDs: byteLevelIDs, otherModelIDs: otherModelIDs)
      }
      for id in [Optional(token.id), modelID] {
        if let id, tokens[Int(id)].map({ $0.utf8.elementsEqual(token.content.utf8) }) == true {
          specialFlags[Int(id)] = true
        }
      }
    }

    self.byteLevelIDs = byteLevelIDs
    self.otherModelIDs = otherModelIDs
    self.addedIDs = addedIDs
    self.tokens = tokens
    self.decodedBytes = decodedBytes
    self.decodedOffsets = decodedOffsets
    self.specialFlags = specialFlags
  }

  private static func modelID(
    utf8: UnsafeBufferPointer<UInt8>, byteLevelIDs: ByteStringTable, otherModelIDs: ByteStringTable
  ) -> Int32? {
    ByteLevel.withRawBytes(ofUTF8: utf8) { raw in
      if let raw { byteLevelIDs.lookup(raw)?.value } else { otherModelIDs.lookup(utf8)?.value }
    }
  }

  /// The model's id for a token spelled as in `tokenizer.json` (UTF-8).
  func modelID(utf8: UnsafeBufferPointer<UInt8>) -> Int32? {
    Self.modelID(utf8: utf8, byteLevelIDs: byteLevelIDs, otherModelIDs: otherModelIDs)
  }

  /// The model's id for a token spelled as in `tokenizer.json`.
  func modelID(_ token: String) -> Int32? {
    var token = token
    return token.withUTF8 { modelID(utf8: $0) }
  }

  /// The id of an added token or, failing that, of a model token.
  func id(forToken token: String) -> Int32? {
    addedIDs.lookup(token)?.value ?? modelID(token)
  }

  /// Appends the decoder's bytes for `id` (nothing for ids that have no token or are skipped).
  @inline(__always)
  func appendDecodedBytes(of id: Int, skipSpecialTokens: Bool, to bytes: inout [UInt8]) {
    guard id >= 0, id < tokens.count, !(skipSpecialTokens && specialFlags[id]) else { return }
    let start = Int(decodedOffsets[id])
    let end = Int(decodedOffsets[id + 1])
    if start < end { bytes.append(contentsOf: decodedBytes[start..<end]) }
  }
}
