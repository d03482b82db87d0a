import Foundation
import Testing

@testable import FolioTokenizer

/// The partial NFC (Foundation only around unstable scalars) against Foundation's NFC of the whole text.
@Suite struct NormalizerTests {
  /// A small deterministic generator (SplitMix64), so failures reproduce.
  struct Generator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }

  /// Scalars that stress composition: bases, combining marks in and out of canonical order, Hangul jamo,
  /// composition exclusions, singletons, Indic vowel signs, and ordinary text.
  static let pool: [Unicode.Scalar] = [
    "a", "e", "o", "A", " ", "\n", "1", "é", "Å", "\u{212B}", "\u{2126}", "\u{0340}", "\u{0344}", "\u{0301}",
    "\u{0300}",
    "\u{0323}", "\u{0327}", "\u{0308}", "\u{031B}", "\u{0345}", "\u{1100}", "\u{1161}", "\u{11A8}", "\u{AC00}",
    "\u{0915}", "\u{093C}", "\u{094D}", "\u{0B47}", "\u{0B3E}", "\u{0BC6}", "\u{0BBE}", "\u{0E01}", "\u{0E48}",
    "\u{0E38}", "\u{3099}", "\u{304B}", "\u{30CF}", "\u{F900}", "\u{2F800}", "中", "😀", "\u{1F3FD}", "\u{200D}",
    "\u{05B8}", "\u{05D0}", "\u{0651}", "\u{064E}", "\u{0627}", "\u{0653}", "ſ", "\u{1E9B}", "\u{0387}", "\u{037E}",
    "\u{1D15E}", "\u{1D165}", "\u{1D16E}", "\u{110AB}", "\u{110BA}", "\u{11131}", "\u{11127}",
  ]

  @Test func partialNFCEqualsFoundationOnRandomText() {
    var generator = Generator(state: 42)
    for _ in 0..<3000 {
      let length = Int.random(in: 0..<40, using: &generator)
      var scalars = String.UnicodeScalarView()
      for _ in 0..<length { scalars.append(Self.pool.randomElement(using: &generator)!) }
      if Bool.random(using: &generator) {
        // Long stable stretches between unstable ones exercise the region joining.
        scalars.append(
          contentsOf: String(repeating: "x", count: Int.random(in: 0..<150, using: &generator)).unicodeScalars)
        scalars.append("\u{0301}")
      }
      let text = String(scalars)
      let expected = text.precomposedStringWithCanonicalMapping
      let actual = Normalizer.nfc(text)
      #expect(Array(actual.utf8) == Array(expected.utf8), "\(text.unicodeScalars.map { String($0.value, radix: 16) })")
    }
  }

  @Test func stableScalarsAreUnchangedByNFC() {
    // A scalar classified stable must be its own NFC, alone and after a base letter.
    var checked = 0
    for value in UInt32(0x300)..<UInt32(0x30000) {
      guard let scalar = Unicode.Scalar(value), !ScalarClasses.nfcMayChange(scalar) else { continue }
      let alone = String(Character(scalar))
      #expect(alone.precomposedStringWithCanonicalMapping.unicodeScalars.elementsEqual(alone.unicodeScalars))
      let after = "a" + alone
      #expect(after.precomposedStringWithCanonicalMapping.unicodeScalars.elementsEqual(after.unicodeScalars))
      checked += 1
    }
    #expect(checked > 100_000)
  }
}
