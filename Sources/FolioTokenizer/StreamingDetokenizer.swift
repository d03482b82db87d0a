/// Incremental detokenizer for generation: feed ids one at a time and get back only complete UTF-8 text.
///
/// A token can end in the middle of a character (Qwen's byte-level vocabulary splits many CJK characters and
/// emoji across tokens). The bytes of an unfinished character are held until the character completes;
/// bytes that can never form a character are emitted as U+FFFD right away. The concatenation of everything
/// `append` and `finish` return equals `tokenizer.decode(allIDs, skipSpecialTokens:)`.
public struct StreamingDetokenizer: Sendable {
  private let tokenizer: Tokenizer
  private let skipSpecialTokens: Bool
  private var pending: [UInt8] = []

  /// Creates a detokenizer; `skipSpecialTokens` drops special tokens as `Tokenizer.decode` does.
  public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
    self.tokenizer = tokenizer
    self.skipSpecialTokens = skipSpecialTokens
  }

  /// Adds one id and returns the text that is now complete (possibly empty).
  public mutating func append(_ id: Int) -> String {
    tokenizer.appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &pending)
    let complete = Self.completePrefixLength(pending)
    if complete == 0 { return "" }
    let text = String(decoding: pending[0..<complete], as: UTF8.self)
    pending.removeFirst(complete)
    return text
  }

  /// Returns whatever is still held, with U+FFFD for an unfinished character, and resets the detokenizer.
  public mutating func finish() -> String {
    defer { pending.removeAll() }
    return String(decoding: pending, as: UTF8.self)
  }

  /// The length of the longest prefix of `bytes` that ends at a boundary a UTF-8 decoder cannot look across:
  /// everything except a trailing, so far valid, but incomplete sequence.
  static func completePrefixLength(_ bytes: [UInt8]) -> Int {
    // An incomplete sequence is at most 3 bytes long: find the last lead byte among the final 3 bytes.
    let n = bytes.count
    var lead = n - 1
    while lead >= 0, lead >= n - 3, bytes[lead] & 0xC0 == 0x80 { lead -= 1 }
    guard lead >= 0, lead >= n - 3 else { return n }
    let b0 = bytes[lead]
    let needed: Int
    var secondRange: ClosedRange<UInt8> = 0x80...0xBF
    switch b0 {
    case 0xC2...0xDF: needed = 2
    case 0xE0:
      needed = 3
      secondRange = 0xA0...0xBF
    case 0xE1...0xEC, 0xEE...0xEF: needed = 3
    case 0xED:
      needed = 3
      secondRange = 0x80...0x9F
    case 0xF0:
      needed = 4
      secondRange = 0x90...0xBF
    case 0xF1...0xF3: needed = 4
    case 0xF4:
      needed = 4
      secondRange = 0x80...0x8F
    default: return n  // ASCII or a byte that never starts a sequence
    }
    let have = n - lead
    if have >= needed { return n }
    if have >= 2, !secondRange.contains(bytes[lead + 1]) { return n }  // already invalid: emit now
    return lead
  }
}
