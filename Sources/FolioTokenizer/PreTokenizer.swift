/// A hand-written matcher for the GPT-2 family of pre-tokenizer regexes, which `tokenizers` runs with
/// `Split(pattern, behavior: isolated)` (or inside `ByteLevel(use_regex: true)`). Swift `Regex` would work but is
/// far too slow for whole documents; every pattern in the family is a fixed alternation of these branches:
///
/// 1. contractions `'s|'t|'re|'ve|'m|'ll|'d`, optionally case-insensitive (`(?i:...)`, where `s` also
///    matches U+017F LATIN SMALL LETTER LONG S by Unicode case folding);
/// 2. a word: a letter run (`\p{L}+` or `[\p{L}\p{M}]+`) after an optional prefix (` ?` or `[^\r\n\p{L}\p{N}]?`);
/// 3. numbers: `\p{N}`, `\p{N}{1,3}` or ` ?\p{N}+`;
/// 4. punctuation: ` ?[^\s\p{L}\p{N}]+` (marks also excluded when words include them), optionally `[\r\n]*`;
/// 5. optionally `\s*[\r\n]+`; then `\s+(?!\S)` and `\s+`.
///
/// Oniguruma tries the branches in order at each position (leftmost-first) and every branch is greedy with
/// no backtracking that could change the outcome except the ones handled below, so each match has a closed form.
struct SplitPattern: Sendable, Equatable {
  enum WordPrefix: Sendable { case optionalSpace, anyNonLetterNumberNewline }

  var caseInsensitiveContractions: Bool
  var wordPrefix: WordPrefix
  var wordsIncludeMarks: Bool
  /// The longest digit run one match takes (`Int.max` for `\p{N}+`).
  var maximumDigits: Int
  var numbersTakeLeadingSpace: Bool
  var punctuationTakesTrailingNewlines: Bool
  var hasNewlineBranch: Bool

  /// Qwen3.5 / Qwen3.6 (`Qwen3_5Tokenizer`; llama.cpp's `LLAMA_VOCAB_PRE_TYPE_QWEN35`).
  static let qwen35 = SplitPattern(
    caseInsensitiveContractions: true, wordPrefix: .anyNonLetterNumberNewline, wordsIncludeMarks: true,
    maximumDigits: 1, numbersTakeLeadingSpace: false, punctuationTakesTrailingNewlines: true, hasNewlineBranch: true)
  /// Qwen2 / Qwen2.5 / Qwen3.
  static let qwen2 = SplitPattern(
    caseInsensitiveContractions: true, wordPrefix: .anyNonLetterNumberNewline, wordsIncludeMarks: false,
    maximumDigits: 1, numbersTakeLeadingSpace: false, punctuationTakesTrailingNewlines: true, hasNewlineBranch: true)
  /// Llama 3 (cl100k-style, digits in groups of up to three).
  static let llama3 = SplitPattern(
    caseInsensitiveContractions: true, wordPrefix: .anyNonLetterNumberNewline, wordsIncludeMarks: false,
    maximumDigits: 3, numbersTakeLeadingSpace: false, punctuationTakesTrailingNewlines: true, hasNewlineBranch: true)
  /// GPT-2, also what `ByteLevel(use_regex: true)` applies.
  static let gpt2 = SplitPattern(
    caseInsensitiveContractions: false, wordPrefix: .optionalSpace, wordsIncludeMarks: false,
    maximumDigits: .max, numbersTakeLeadingSpace: true, punctuationTakesTrailingNewlines: false,
    hasNewlineBranch: false)

  /// The supported regex sources, exactly as they appear in `tokenizer.json`.
  static let known: [String: SplitPattern] = [
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#:
      qwen35,
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#:
      qwen2,
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#:
      llama3,
    #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#: gpt2,
  ]

  /// Calls `body` with the byte range of each piece of `text`, in order; the pieces cover `text` exactly.
  func split(_ text: UnsafeBufferPointer<UInt8>, _ body: (Int, Int) -> Void) {
    ScalarClasses.withBasicPlaneTable { table in
      let scanner = Scanner(text: text, table: table)
      var position = 0
      var gapStart = -1
      while position < text.count {
        if let end = matchEnd(scanner, at: position) {
          if gapStart >= 0 {
            body(gapStart, position)
            gapStart = -1
          }
          body(position, end)
          position = end
        } else {
          // Text no branch matches stays a piece of its own (Split's "isolated" keeps the gaps).
          if gapStart < 0 { gapStart = position }
          position += decodeScalar(text, at: position).length
        }
      }
      if gapStart >= 0 { body(gapStart, text.count) }
    }
  }

  /// Reads scalars and their `ScalarClasses` flags from UTF-8 text.
  private struct Scanner {
    let text: UnsafeBufferPointer<UInt8>
    let table: UnsafeBufferPointer<UInt8>

    var count: Int { text.count }

    @inline(__always) subscript(i: Int) -> UInt8 { text[i] }

    @inline(__always)
    func flags(at i: Int) -> (flags: UInt8, length: Int) {
      let b = text[i]
      if b < 0x80 { return (table[Int(b)], 1) }
      let (value, length) = decodeScalar(text, at: i)
      return (value < 0x10000 ? table[Int(value)] : ScalarClasses.flags(value), length)
    }

    /// End of the run of scalars whose flags intersect `mask`, starting at `i`, taking at most `limit` scalars.
    @inline(__always)
    func run(from i: Int, mask: UInt8, limit: Int = .max) -> Int {
      var j = i
      var taken = 0
      while j < text.count, taken < limit {
        let (f, length) = flags(at: j)
        if f & mask == 0 { break }
        j += length
        taken += 1
      }
      return j
    }

    /// End of the run of scalars whose flags do not intersect `excluded`, starting at `i`.
    @inline(__always)
    func runExcluding(from i: Int, excluded: UInt8) -> Int {
      var j = i
      while j < text.count {
        let (f, length) = flags(at: j)
        if f & excluded != 0 { break }
        j += length
      }
      return j
    }
  }

  /// The end of the match starting at `i`, or nil when no branch matches there.
  private func matchEnd(_ text: Scanner, at i: Int) -> Int? {
    let n = text.count
    let first = text[i]
    let (f0, length0) = text.flags(at: i)
    let letterMask = ScalarClasses.letter | (wordsIncludeMarks ? ScalarClasses.mark : 0)

    // 1. Contractions.
    if first == UInt8(ascii: "'"), let end = contractionEnd(text, at: i + 1) { return end }

    // 2. Words.
    let next = i + length0
    switch wordPrefix {
    case .anyNonLetterNumberNewline:
      if f0 & (ScalarClasses.letter | ScalarClasses.number | ScalarClasses.newline) == 0, next < n,
        text.flags(at: next).flags & letterMask != 0
      {
        return text.run(from: next, mask: letterMask)
      }
    case .optionalSpace:
      if first == 0x20, next < n, text.flags(at: next).flags & letterMask != 0 {
        return text.run(from: next, mask: letterMask)
      }
    }
    if f0 & letterMask != 0 { return text.run(from: i, mask: letterMask) }

    // 3. Numbers.
    if numbersTakeLeadingSpace, first == 0x20, next < n, text.flags(at: next).flags & ScalarClasses.number != 0 {
      return text.run(from: next, mask: ScalarClasses.number, limit: maximumDigits)
    }
    if f0 & ScalarClasses.number != 0 { return text.run(from: i, mask: ScalarClasses.number, limit: maximumDigits) }

    // 4. Punctuation and symbols.
    let punctuationExcluded =
      ScalarClasses.whitespace | ScalarClasses.letter | ScalarClasses.number
      | (wordsIncludeMarks ? ScalarClasses.mark : 0)
    let punctuationStart = first == 0x20 ? next : i
    if punctuationStart < n, text.flags(at: punctuationStart).flags & punctuationExcluded == 0 {
      let end = text.runExcluding(from: punctuationStart, excluded: punctuationExcluded)
      return punctuationTakesTrailingNewlines ? text.run(from: end, mask: ScalarClasses.newline) : end
    }

    // 5. Whitespace.
    guard f0 & ScalarClasses.whitespace != 0 else { return nil }
    var j = i
    var lastStart = i
    var afterLastNewline = -1
    var count = 0
    while j < n {
      let (f, length) = text.flags(at: j)
      if f & ScalarClasses.whitespace == 0 { break }
      if f & ScalarClasses.newline != 0 { afterLastNewline = j + length }
      lastStart = j
      j += length
      count += 1
    }
    // `\s*[\r\n]+`: backtrack the whitespace run to just after its last newline.
    if hasNewlineBranch, afterLastNewline >= 0 { return afterLastNewline }
    // `\s+(?!\S)`: the whole run at the end of text, else all but its last scalar; `\s+` for a single one.
    if j == n || count == 1 { return j }
    return lastStart
  }

  /// The end of a contraction whose letters start at `i` (just after the apostrophe), if there is one.
  private func contractionEnd(_ text: Scanner, at i: Int) -> Int? {
    let n = text.count
    guard i < n else { return nil }
    let caseless = caseInsensitiveContractions
    @inline(__always) func isLetter(_ k: Int, _ lower: UInt8) -> Bool {
      guard k < n else { return false }
      return text[k] == lower || (caseless && text[k] == lower - 0x20)
    }
    let c = text[i]
    if isLetter(i, UInt8(ascii: "s")) || isLetter(i, UInt8(ascii: "t")) || isLetter(i, UInt8(ascii: "m"))
      || isLetter(i, UInt8(ascii: "d"))
    {
      return i + 1
    }
    // U+017F (UTF-8 C5 BF) case-folds to "s".
    if caseless, c == 0xC5, i + 1 < n, text[i + 1] == 0xBF { return i + 2 }
    if isLetter(i, UInt8(ascii: "r")) && isLetter(i + 1, UInt8(ascii: "e"))
      || isLetter(i, UInt8(ascii: "v")) && isLetter(i + 1, UInt8(ascii: "e"))
      || isLetter(i, UInt8(ascii: "l")) && isLetter(i + 1, UInt8(ascii: "l"))
    {
      return i + 2
    }
    return nil
  }
}
