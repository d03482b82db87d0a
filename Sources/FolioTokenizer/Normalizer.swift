import Foundation

/// The Unicode normalization forms `tokenizers` offers as normalizers (`NFC`, `NFD`, `NFKC`, `NFKD`), applied
/// in sequence. Qwen3.5 uses NFC alone.
struct Normalizer: Sendable, Equatable {
  enum Form: String, Sendable { case nfc = "NFC", nfd = "NFD", nfkc = "NFKC", nfkd = "NFKD" }

  var forms: [Form]

  /// Normalizes `text`.
  func normalize(_ text: String) -> String {
    var result = text
    for form in forms {
      switch form {
      case .nfc: result = Self.nfc(result)
      case .nfd: result = result.decomposedStringWithCanonicalMapping
      case .nfkc: result = result.precomposedStringWithCompatibilityMapping
      case .nfkd: result = result.decomposedStringWithCompatibilityMapping
      }
    }
    return result
  }

  /// Text closer than this to a previous unstable region is normalized together with it, so that scripts
  /// with frequent combining marks (Thai, Vietnamese in NFD, …) make a few large calls instead of many small ones.
  private static let regionJoinDistance = 64

  /// NFC that only hands the regions around NFC-unstable scalars to Foundation. Text is cut before "stable"
  /// scalars (see `ScalarClasses.nfcMayChange`), which NFC never changes nor looks across, so normalizing each
  /// piece that holds an unstable scalar and copying the rest gives the NFC of the whole. Most text (all of
  /// ASCII, Latin-1, CJK ideographs, kana, Hangul syllables, emoji) has no unstable scalar and is returned as is.
  static func nfc(_ text: String) -> String {
    var text = text
    return text.withUTF8 { bytes -> String? in
      var i = 0
      // Fast scan: scalars below U+0300 are all stable, and their UTF-8 bytes are all below 0xCC.
      while i < bytes.count, bytes[i] < 0xCC { i += 1 }
      if i == bytes.count { return nil }
      var result = ""
      result.reserveCapacity(bytes.count)
      var copied = 0
      var lastStableStart = 0
      i = 0
      while i < bytes.count {
        let (value, length) = decodeScalar(bytes, at: i)
        if value < 0x300 || ScalarClasses.flags(value) & ScalarClasses.nfcUnstable == 0 {
          lastStableStart = i
          i += length
          continue
        }
        // An unstable scalar: its region starts at the last stable scalar and runs to the next stable scalar
        // that is followed by at least `regionJoinDistance` bytes of stable text (or the end).
        let regionStart = max(lastStableStart, copied)
        var end = i + length
        var stableRunStart = -1
        while end < bytes.count {
          let (v, l) = decodeScalar(bytes, at: end)
          let isStable = v < 0x300 || ScalarClasses.flags(v) & ScalarClasses.nfcUnstable == 0
          if isStable {
            if stableRunStart < 0 { stableRunStart = end }
            if end - stableRunStart >= regionJoinDistance { break }
          } else {
            stableRunStart = -1
          }
          end += l
        }
        let regionEnd = stableRunStart >= 0 ? stableRunStart : end
        result += String(decoding: UnsafeBufferPointer(rebasing: bytes[copied..<regionStart]), as: UTF8.self)
        let region = String(decoding: UnsafeBufferPointer(rebasing: bytes[regionStart..<regionEnd]), as: UTF8.self)
        result += region.precomposedStringWithCanonicalMapping
        copied = regionEnd
        lastStableStart = regionEnd
        i = regionEnd
      }
      result += String(decoding: UnsafeBufferPointer(rebasing: bytes[copied..<bytes.count]), as: UTF8.self)
      return result
    } ?? text
  }
}
