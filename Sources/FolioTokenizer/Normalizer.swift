import Foundation

/// The Unicode normalization forms `tokenizers` offers as normalizers (`NFC`, `NFD`, `NFKC`, `NFKD`), applied
/// in sequence. Qwen3.5 uses NFC alone.
struct Normalizer: Sendable, Equatable {
  enum Form: String, Sendable {
    case nfc = "NFC"
    case nfd = "NFD"
    case nfkc = "NFKC"
    case nfkd = "NFKD"
  }

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
    let result = text.withUTF8 { bytes -> String? in
      var i = 0
      // Fast scan: scalars below U+0300 are all stable, and their UTF-8 bytes are all below 0xCC.
      while i < bytes.count, bytes[i] < 0xCC { i += 1 }
      if i == bytes.count { return nil }
      return ScalarClasses.withBasicPlaneTable { table in
        @inline(__always) func isStable(_ value: UInt32) -> Bool {
          let flags = value < 0x10000 ? table[Int(value)] : ScalarClasses.flags(value)
          return flags & ScalarClasses.nfcUnstable == 0
        }
        // Back up to the start of the scalar holding byte i; the scalar before it is stable.
        while i > 0, bytes[i] & 0xC0 == 0x80 { i -= 1 }
        var lastStableStart = 0
        if i > 0 {
          lastStableStart = i - 1
          while lastStableStart > 0, bytes[lastStableStart] & 0xC0 == 0x80 { lastStableStart -= 1 }
        }
        var copied = 0
        var result: String?
        while i < bytes.count {
          let (value, length) = decodeScalar(bytes, at: i)
          if isStable(value) {
            lastStableStart = i
            i += length
            continue
          }
          // An unstable scalar: its region starts at the last stable scalar and runs to the next stable
          // scalar that is followed by at least `regionJoinDistance` bytes of stable text (or the end).
          let regionStart = max(lastStableStart, copied)
          var end = i + length
          var stableRunStart = -1
          while end < bytes.count {
            let (v, l) = decodeScalar(bytes, at: end)
            if isStable(v) {
              if stableRunStart < 0 { stableRunStart = end }
              if end - stableRunStart >= regionJoinDistance { break }
            } else {
              stableRunStart = -1
            }
            end += l
          }
          let regionEnd = stableRunStart >= 0 ? stableRunStart : end
          if result == nil {
            result = ""
            result?.reserveCapacity(bytes.count + 16)
          }
          result! += String(decoding: UnsafeBufferPointer(rebasing: bytes[copied..<regionStart]), as: UTF8.self)
          let region = String(decoding: UnsafeBufferPointer(rebasing: bytes[regionStart..<regionEnd]), as: UTF8.self)
          result! += region.precomposedStringWithCanonicalMapping
          copied = regionEnd
          lastStableStart = regionEnd
          i = regionEnd
        }
        guard var finished = result else { return nil }
        finished += String(decoding: UnsafeBufferPointer(rebasing: bytes[copied..<bytes.count]), as: UTF8.self)
        return finished
      }
    }
    return result ?? text
  }
}
