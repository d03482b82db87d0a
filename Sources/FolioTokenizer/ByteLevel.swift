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

  /// The raw bytes a byte-level token spells, or nil when it has a character outside the alphabet.
  static func bytes(ofToken token: String) -> [UInt8]? {
    var result: [UInt8] = []
    result.reserveCapacity(token.utf8.count)
    for scalar in token.unicodeScalars {
      let value = Int(scalar.value)
      guard value < byteForCharacter.count, byteForCharacter[value] >= 0 else { return nil }
      result.append(UInt8(byteForCharacter[value]))
    }
    return result
  }

  /// The bytes the ByteLevel decoder produces for one token: its raw bytes when every character is in the
  /// alphabet, otherwise the token's own UTF-8 (what `tokenizers`' `ByteLevel::decode_chain` does).
  static func decodedBytes(ofToken token: String) -> [UInt8] {
    bytes(ofToken: token) ?? Array(token.utf8)
  }

  /// The byte-level spelling of raw bytes.
  static func token(forBytes bytes: some Sequence<UInt8>) -> String {
    var result = String.UnicodeScalarView()
    for byte in bytes { result.append(characterForByte[Int(byte)]) }
    return String(result)
  }
}
