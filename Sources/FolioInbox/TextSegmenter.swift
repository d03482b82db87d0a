/// Splits long UTF-8 text into segments that each fit a token budget, for models with a bounded context and for
/// a translation memory keyed by segment.
///
/// Boundaries are preferred in this order: paragraphs (blank lines), sentences (`.`, `!`, `?`, `…` and the CJK
/// full stops, followed by whitespace or, for CJK marks, directly), lines, whitespace, and finally single
/// characters (grapheme clusters, never split). A segment never spans a paragraph boundary unless
/// `mergesParagraphs` is set, so editing one paragraph changes only that paragraph's segments and the rest keep
/// their translation-memory keys.
///
/// Guarantees: the segments concatenated equal the input exactly (separators stay attached to the end of the
/// piece before them); every segment satisfies `count(segment) <= budget` unless it is a single grapheme cluster
/// that alone exceeds the budget; the same input, budget and counter always give the same segments.
public struct TextSegmenter: Sendable {
  /// The most tokens a segment may have (at least 1).
  public var budget: Int
  /// Counts the tokens of a string (a tokenizer, or a stand-in).
  public var count: @Sendable (String) -> Int
  /// Whether whole paragraphs that fit together are packed into one segment (fewer, longer segments) instead of
  /// one segment per paragraph.
  public var mergesParagraphs: Bool

  /// A segmenter for `budget` tokens as counted by `count`.
  public init(budget: Int, mergesParagraphs: Bool = false, count: @escaping @Sendable (String) -> Int) {
    self.budget = max(1, budget)
    self.count = count
    self.mergesParagraphs = mergesParagraphs
  }

  /// The segments of `text`, in order. Empty text gives no segments.
  public func segments(of text: String) -> [String] {
    guard !text.isEmpty else { return [] }
    let paragraphs = Self.pieces(of: Substring(text), level: .paragraph)
    if mergesParagraphs { return pack(paragraphs, level: .paragraph) }
    return paragraphs.flatMap { fit($0, level: .paragraph) }
  }

  enum Level: Int, CaseIterable {
    case paragraph, sentence, line, word, grapheme

    var finer: Level? { Level(rawValue: rawValue + 1) }
  }

  /// `piece` as one segment if it fits, otherwise split at the next finer level and packed.
  private func fit(_ piece: Substring, level: Level) -> [String] {
    if count(String(piece)) <= budget { return [String(piece)] }
    guard let finer = level.finer else { return [String(piece)] }  // one grapheme over budget: cannot split
    return pack(Self.pieces(of: piece, level: finer), level: finer)
  }

  /// Greedily joins consecutive `pieces` while the joined text fits; pieces too long alone are split further.
  private func pack(_ pieces: [Substring], level: Level) -> [String] {
    var result: [String] = []
    var current = ""
    for piece in pieces {
      let candidate = current + piece
      if count(candidate) <= budget {
        current = candidate
        continue
      }
      if !current.isEmpty {
        result.append(current)
        current = ""
      }
      if count(String(piece)) <= budget {
        current = String(piece)
      } else {
        result.append(contentsOf: fit(piece, level: level))
      }
    }
    if !current.isEmpty { result.append(current) }
    return result
  }

  /// Splits `text` into consecutive pieces ending at boundaries of `level`; the pieces concatenate to `text`.
  static func pieces(of text: Substring, level: Level) -> [Substring] {
    var pieces: [Substring] = []
    var start = text.startIndex
    var index = text.startIndex
    func cut(at end: Substring.Index) {
      if end > start {
        pieces.append(text[start..<end])
        start = end
      }
    }
    switch level {
    case .grapheme:
      return text.indices.map { text[$0...$0] }
    case .paragraph:
      // A paragraph ends after a run of whitespace that holds two or more line breaks.
      while index < text.endIndex {
        if text[index].isNewline {
          var end = index
          var breaks = 0
          while end < text.endIndex, text[end].isWhitespace {
            if text[end].isNewline { breaks += 1 }
            end = text.index(after: end)
          }
          if breaks >= 2 { cut(at: end) }
          index = end
        } else {
          index = text.index(after: index)
        }
      }
    case .sentence:
      let terminators: Set<Character> = [".", "!", "?", "…"]
      let fullWidth: Set<Character> = ["。", "！", "？"]
      let closers: Set<Character> = ["\"", "'", ")", "]", "”", "’", "」", "』", "）"]
      while index < text.endIndex {
        let character = text[index]
        index = text.index(after: index)
        guard terminators.contains(character) || fullWidth.contains(character) else { continue }
        while index < text.endIndex, terminators.contains(text[index]) || closers.contains(text[index]) {
          index = text.index(after: index)
        }
        if index < text.endIndex, text[index].isWhitespace {
          while index < text.endIndex, text[index].isWhitespace { index = text.index(after: index) }
          cut(at: index)
        } else if fullWidth.contains(character) || index == text.endIndex {
          cut(at: index)
        }
      }
    case .line, .word:
      let isBoundary: (Character) -> Bool = level == .line ? { $0.isNewline } : { $0.isWhitespace }
      while index < text.endIndex {
        if isBoundary(text[index]) {
          while index < text.endIndex, isBoundary(text[index]) { index = text.index(after: index) }
          cut(at: index)
        } else {
          index = text.index(after: index)
        }
      }
    }
    cut(at: text.endIndex)
    return pieces
  }
}
