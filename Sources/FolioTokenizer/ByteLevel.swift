/// GPT-2's reversible map between bytes and printable characters (`bytes_to_unicode` in openai/gpt-2's
/// `encoder.py`, `bytes_char` in `tokenizers`' `pre_tokenizers/byte_level.rs`). Byte-level BPE vocabularies spell
/// every token with these 256 characters: the printable Latin-1 bytes stand for themselves, and the others
/// (controls, space, 0x7F–0xA0, 0xAD) are moved to U+0100 and up in byte order, so a space is "Ġ" (U+0120).
enum ByteLevel {
  /// The character standing for each byte.
  static let characterForByte: [Unicode.Scalar] = {
    var table = [Unicode.Scalar](repeating: "\0", count: 256)
    var next: UInt32 = 256
    for byte in 0..<256 {
      if isPrintable(UInt8(byte)) {
        table[byte] = Unicode.Scalar(UInt8(byte))
      } else {
        table[byte] = Unicode.Scalar(next)!  // 256...323: always valid scalars
        next += 1
      }
    }
    return table
  }()

  /// The byte for each character of the byte-level alphabet, indexed by scalar value (0..<324); -1 elsewhere.
  static let byteForCharacter: [Int16] = {
    var table = [Int16](repeating: -1, count: 324)
    for (byte, scalar) in characterForByte.enumerated() { table[Int(scalar.value)] = Int16(byte) }
    return table
  }()

  private static func isPrintable(_ byte: UInt8) -> Bool {
    (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
  }

  /// Calls `body` with the raw bytes a byte-level token spells (given as UTF-8), or with nil when the token has
  /// a character outside the alphabet. Never allocates for tokens up to 256 bytes.
  static func withRawBytes<R>(
    ofUTF8 utf8: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>?) -> R
  ) -> R {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(utf8.count, 1)) { raw in
      byteForCharacter.withUnsafeBufferPointer { table in
        var i = 0
        var count = 0
        while i < utf8.count {
          let (value, length) = decodeScalar(utf8, at: i)
          guard value < UInt32(table.count), table[Int(value)] >= 0 else { return body(nil) }
          raw[count] = UInt8(table[Int(value)])
          count += 1
          i += length
        }
        return body(UnsafeBufferPointer(rebasing: raw[0..<count]))
      }
    }
  }
}
