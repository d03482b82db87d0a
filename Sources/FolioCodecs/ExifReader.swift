/// Finds the EXIF orientation in a PNG or JPEG without decoding pixels. Every read is bounds-checked;
/// anything malformed yields `.up` (the decoder reports real corruption itself).
enum ExifReader {
  /// The orientation stored in `bytes` of the given format.
  static func orientation(in bytes: UnsafeRawBufferPointer, format: ImageFormat) -> ExifOrientation {
    let tiff: UnsafeRawBufferPointer?
    switch format {
    case .jpeg: tiff = jpegExif(bytes)
    case .png: tiff = pngExif(bytes)
    }
    guard let tiff, let value = orientationTag(inTIFF: tiff) else { return .up }
    return ExifOrientation(rawValue: value) ?? .up
  }

  private static let exifHeader: [UInt8] = [0x45, 0x78, 0x69, 0x66, 0, 0]  // "Exif\0\0"

  private static func hasExifHeader(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Bool {
    guard offset + 6 <= bytes.count else { return false }
    for i in 0..<6 where bytes[offset + i] != exifHeader[i] { return false }
    return true
  }

  /// The TIFF payload of the first APP1 "Exif" segment before the first scan.
  static func jpegExif(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
    var position = 2  // After SOI.
    while position + 4 <= bytes.count {
      guard bytes[position] == 0xFF else { return nil }
      let marker = bytes[position + 1]
      if marker == 0xFF {  // Fill byte.
        position += 1
        continue
      }
      if marker == 0x01 || (0xD0...0xD8).contains(marker) {  // Stand-alone markers.
        position += 2
        continue
      }
      if marker == 0xDA || marker == 0xD9 { return nil }  // Start of scan / end of image.
      let length = Int(bytes[position + 2]) << 8 | Int(bytes[position + 3])
      guard length >= 2, position + 2 + length <= bytes.count else { return nil }
      let start = position + 4
      if marker == 0xE1, length >= 8, hasExifHeader(bytes, at: start) {
        return UnsafeRawBufferPointer(rebasing: bytes[(start + 6)..<(position + 2 + length)])
      }
      position += 2 + length
    }
    return nil
  }

  /// The payload of the PNG `eXIf` chunk (anywhere before IEND), with an optional "Exif\0\0" prefix removed.
  static func pngExif(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
    var position = 8
    while position + 12 <= bytes.count {
      let length = Int(readUInt32(bytes, position, bigEndian: true))
      let type = (bytes[position + 4], bytes[position + 5], bytes[position + 6], bytes[position + 7])
      let start = position + 8
      guard length <= bytes.count - start - 4 else { return nil }
      if type == (0x65, 0x58, 0x49, 0x66) {  // "eXIf"
        var data = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)])
        if hasExifHeader(data, at: 0) { data = UnsafeRawBufferPointer(rebasing: data[6...]) }
        return data
      }
      if type == (0x49, 0x45, 0x4E, 0x44) { return nil }  // "IEND"
      position = start + length + 4
    }
    return nil
  }

  /// Tag 0x0112 of IFD0 in a TIFF structure ("II*\0" little-endian or "MM\0*" big-endian).
  static func orientationTag(inTIFF tiff: UnsafeRawBufferPointer) -> Int? {
    guard tiff.count >= 8 else { return nil }
    let bigEndian: Bool
    switch (tiff[0], tiff[1]) {
    case (0x49, 0x49): bigEndian = false
    case (0x4D, 0x4D): bigEndian = true
    default: return nil
    }
    guard readUInt16(tiff, 2, bigEndian: bigEndian) == 42 else { return nil }
    let ifd = Int(readUInt32(tiff, 4, bigEndian: bigEndian))
    guard ifd >= 8, ifd <= tiff.count - 2 else { return nil }
    let count = Int(readUInt16(tiff, ifd, bigEndian: bigEndian))
    for index in 0..<count {
      let entry = ifd + 2 + index * 12
      guard entry + 12 <= tiff.count else { return nil }
      guard readUInt16(tiff, entry, bigEndian: bigEndian) == 0x0112 else { continue }
      let type = readUInt16(tiff, entry + 2, bigEndian: bigEndian)
      switch type {
      case 3: return Int(readUInt16(tiff, entry + 8, bigEndian: bigEndian))  // SHORT
      case 4: return Int(readUInt32(tiff, entry + 8, bigEndian: bigEndian))  // LONG
      default: return nil
      }
    }
    return nil
  }

  private static func readUInt16(_ b: UnsafeRawBufferPointer, _ at: Int, bigEndian: Bool) -> UInt16 {
    let x = UInt16(b[at])
    let y = UInt16(b[at + 1])
    return bigEndian ? x << 8 | y : y << 8 | x
  }

  private static func readUInt32(_ b: UnsafeRawBufferPointer, _ at: Int, bigEndian: Bool) -> UInt32 {
    let bytes = (0..<4).map { UInt32(b[at + $0]) }
    return bigEndian
      ? bytes[0] << 24 | bytes[1] << 16 | bytes[2] << 8 | bytes[3]
      : bytes[3] << 24 | bytes[2] << 16 | bytes[1] << 8 | bytes[0]
  }
}
