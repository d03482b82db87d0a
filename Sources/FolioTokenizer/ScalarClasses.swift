/// Per-scalar character classes used by the pre-tokenizer and the normalizer, as bit flags.
///
/// The regex engine behind `tokenizers` (Oniguruma) uses Unicode's General_Category for `\p{L}`, `\p{M}`,
/// `\p{N}` and the White_Space property for `\s`; these are the same properties, read from the Swift standard
/// library. Basic-plane scalars are looked up in a 64 KiB table built once per process.
enum ScalarClasses {
  static let letter: UInt8 = 1 << 0
  static let mark: UInt8 = 1 << 1
  static let number: UInt8 = 1 << 2
  /// Unicode White_Space (what `\s` matches).
  static let whitespace: UInt8 = 1 << 3
  /// U+000D or U+000A (`[\r\n]`).
  static let newline: UInt8 = 1 << 4
  /// The scalar may change, or change its neighbours, under NFC (see `nfcMayChange`).
  static let nfcUnstable: UInt8 = 1 << 5

  /// Flags for U+0000...U+FFFF.
  private static let basicPlane: [UInt8] = (0..<0x10000).map { value in
    Unicode.Scalar(UInt32(value)).map(computeFlags) ?? 0
  }

  /// The flags of `scalar`.
  static func flags(_ scalar: UInt32) -> UInt8 {
    if scalar < 0x10000 { return basicPlane[Int(scalar)] }
    return Unicode.Scalar(scalar).map(computeFlags) ?? 0
  }

  /// Calls `body` with the flags of U+0000...U+FFFF, indexed by scalar value.
  static func withBasicPlaneTable<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    basicPlane.withUnsafeBufferPointer(body)
  }

  private static func computeFlags(_ scalar: Unicode.Scalar) -> UInt8 {
    let properties = scalar.properties
    var flags: UInt8 = 0
    switch properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
      flags |= letter
    case .nonspacingMark, .spacingMark, .enclosingMark:
      flags |= mark
    case .decimalNumber, .letterNumber, .otherNumber:
      flags |= number
    default:
      break
    }
    if properties.isWhitespace { flags |= whitespace }
    if scalar == "\r" || scalar == "\n" { flags |= newline }
    if nfcMayChange(scalar) { flags |= nfcUnstable }
    return flags
  }

  /// Whether NFC might alter text around `scalar`. False only for scalars that are NFC_Quick_Check=Yes with
  /// canonical combining class 0 and that no canonical composition takes as its second half: such a scalar is
  /// unchanged by NFC and is a boundary that NFC never looks across (UAX #15 §9, "stable code points").
  ///
  /// NFC_Quick_Check=No is Full_Composition_Exclusion. The Maybe scalars are combining marks (class ≠ 0) plus the
  /// class-0 list below: the Hangul medial vowels and final consonants and the second halves of the Indic-script
  /// vowel-sign compositions (derived with Python's `unicodedata` 14.0 from the canonical decompositions that
  /// recompose). Scalars newer than Unicode 14 are treated as unstable, which is always safe.
  static func nfcMayChange(_ scalar: Unicode.Scalar) -> Bool {
    let value = scalar.value
    if value < 0x300 { return false }
    let properties = scalar.properties
    guard let age = properties.age, age.major < 14 || (age.major == 14 && age.minor == 0) else { return true }
    if properties.canonicalCombiningClass.rawValue != 0 || properties.isFullCompositionExclusion { return true }
    if (0x1161...0x1175).contains(value) || (0x11A8...0x11C2).contains(value) { return true }
    return classZeroCompositionSeconds.contains(value)
  }

  private static let classZeroCompositionSeconds: Set<UInt32> = [
    0x09BE, 0x09D7, 0x0B3E, 0x0B56, 0x0B57, 0x0BBE, 0x0BD7, 0x0CC2, 0x0CD5, 0x0CD6, 0x0D3E, 0x0D57, 0x0DCF, 0x0DDF,
    0x102E, 0x1B35, 0x11127, 0x1133E, 0x11357, 0x114B0, 0x114BA, 0x114BD, 0x115AF, 0x11930,
  ]

  /// Whether `scalar` is a regex word character (`\w` in the Rust `regex` crate: Alphabetic, marks, decimal
  /// digits, connector punctuation, join controls), used by added tokens' `single_word` option.
  static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
    let properties = scalar.properties
    if properties.isAlphabetic || properties.isJoinControl { return true }
    switch properties.generalCategory {
    case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
    default: return false
    }
  }
}

/// Decodes the scalar starting at byte `i` of valid UTF-8 (as any Swift `String` holds).
@inline(__always)
func decodeScalar(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> (value: UInt32, length: Int) {
  let b0 = UInt32(bytes[i])
  if b0 < 0x80 { return (b0, 1) }
  if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F), 2) }
  if b0 < 0xF0 {
    return ((b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F), 3)
  }
  return (
    (b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F) << 6
      | UInt32(bytes[i + 3] & 0x3F), 4
  )
}
