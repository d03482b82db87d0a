/// One entry of `added_tokens` in `tokenizer.json`.
struct AddedToken: Sendable, Equatable {
  var id: Int32
  var content: String
  /// Special tokens are skipped by `decode(skipSpecialTokens: true)` and left unparsed by
  /// `encode(parseSpecialTokens: false)`.
  var isSpecial: Bool
  /// Match only when not preceded or followed by a word character.
  var singleWord: Bool
  /// Absorb the whitespace before the match.
  var lstrip: Bool
  /// Absorb the whitespace after the match.
  var rstrip: Bool
  /// Match against normalized text instead of the raw input.
  var normalized: Bool
}

/// A piece of text after added tokens are extracted: either plain text (a byte range) or an added token.
enum AddedTokenSegment {
  case text(Range<Int>)
  case token(Int32)
}

/// Finds added tokens in text the way `tokenizers`' `AddedVocabulary::find_matches` does: non-overlapping
/// leftmost-longest matches (its Aho-Corasick automaton uses `MatchKind::LeftmostLongest`), then the
/// `single_word`, `lstrip` and `rstrip` options; special tokens are skipped when special-token parsing is off.
struct AddedTokenMatcher: Sendable {
  private struct Node: Sendable {
    var children: [(byte: UInt8, node: Int32)] = []
    /// Index into `tokens` of the token ending here, or -1.
    var token: Int32 = -1
  }

  private var nodes: [Node] = [Node()]
  private var isFirstByte = [Bool](repeating: false, count: 256)
  private let tokens: [AddedToken]

  /// Builds a matcher for `tokens` (their `content`s must be distinct and non-empty).
  init(_ tokens: [AddedToken]) {
    self.tokens = tokens
    for (index, token) in tokens.enumerated() {
      var node = 0
      for byte in token.content.utf8 {
        if let child = nodes[node].children.first(where: { $0.byte == byte }) {
          node = Int(child.node)
        } else {
          nodes.append(Node())
          nodes[node].children.append((byte, Int32(nodes.count - 1)))
          node = nodes.count - 1
        }
      }
      nodes[node].token = Int32(index)
      if let first = token.content.utf8.first { isFirstByte[Int(first)] = true }
    }
  }

  /// The longest token starting at `start`, as (end, token index).
  private func longestMatch(_ text: UnsafeBufferPointer<UInt8>, at start: Int) -> (end: Int, token: Int)? {
    var node = 0
    var best: (Int, Int)?
    var i = start
    while i < text.count {
      let byte = text[i]
      guard let child = nodes[node].children.first(where: { $0.byte == byte }) else { break }
      node = Int(child.node)
      i += 1
      if nodes[node].token >= 0 { best = (i, Int(nodes[node].token)) }
    }
    return best
  }

  /// Splits `text` into plain-text ranges and added tokens, calling `body` for each in order.
  func split(_ text: UnsafeBufferPointer<UInt8>, parseSpecialTokens: Bool, _ body: (AddedTokenSegment) -> Void) {
    if tokens.isEmpty {
      if !text.isEmpty { body(.text(0..<text.count)) }
      return
    }
    var emitted = 0  // `start_offset` in tokenizers: everything before it has been emitted
    var position = 0
    while position < text.count {
      guard isFirstByte[Int(text[position])], let (matchEnd, index) = longestMatch(text, at: position) else {
        position += 1
        continue
      }
      var start = position
      var stop = matchEnd
      position = matchEnd
      let token = tokens[index]
      if !parseSpecialTokens && token.isSpecial { continue }
      if token.singleWord {
        if start > 0, let before = scalarBefore(text, start), ScalarClasses.isWordCharacter(before) { continue }
        if stop < text.count, ScalarClasses.isWordCharacter(scalarAt(text, stop)) { continue }
      }
      if token.lstrip {
        var s = start
        while s > 0, let before = scalarBefore(text, s), before.properties.isWhitespace {
          s -= before.utf8.count
        }
        start = max(s, emitted)
      }
      if token.rstrip {
        while stop < text.count {
          let scalar = scalarAt(text, stop)
          guard scalar.properties.isWhitespace else { break }
          stop += scalar.utf8.count
        }
      }
      start = max(start, emitted)
      if emitted < start { body(.text(emitted..<start)) }
      body(.token(token.id))
      emitted = stop
    }
    if emitted < text.count { body(.text(emitted..<text.count)) }
  }

  private func scalarAt(_ text: UnsafeBufferPointer<UInt8>, _ i: Int) -> Unicode.Scalar {
    Unicode.Scalar(decodeScalar(text, at: i).value) ?? "\u{FFFD}"
  }

  private func scalarBefore(_ text: UnsafeBufferPointer<UInt8>, _ i: Int) -> Unicode.Scalar? {
    guard i > 0 else { return nil }
    var s = i - 1
    while s > 0, text[s] & 0xC0 == 0x80 { s -= 1 }
    return scalarAt(text, s)
  }
}
