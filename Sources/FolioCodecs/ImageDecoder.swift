import CFolioImage
import FolioBase
import Foundation

/// What an image header says, read without decoding any pixel data.
public struct ImageInfo: Sendable, Equatable {
  /// The container format, from the signature.
  public var format: ImageFormat
  /// Stored width in pixels (before EXIF orientation).
  public var storedWidth: Int
  /// Stored height in pixels (before EXIF orientation).
  public var storedHeight: Int
  /// The EXIF orientation (`.up` when absent).
  public var orientation: ExifOrientation
  /// PNG: colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA); JPEG: number of components.
  public var colorType: Int
  /// Bits per sample (PNG 1–16, JPEG 8).
  public var bitDepth: Int
  /// PNG: Adam7 interlaced; JPEG: progressive (multi-scan).
  public var isInterlaced: Bool

  /// Width of the upright image.
  public var width: Int { orientation.swapsDimensions ? storedHeight : storedWidth }
  /// Height of the upright image.
  public var height: Int { orientation.swapsDimensions ? storedWidth : storedHeight }
}

/// Decodes PNG and JPEG files into upright RGB8 images, enforcing `ImageLimits` before any pixel is decoded.
///
/// libpng and libjpeg run inside the `CFolioImage` shim; their errors come back as `FolioError`s with the codes
/// `image_truncated`, `image_corrupt`, `image_too_large`, `file_too_large`, `empty_file` or
/// `unsupported_image_format`. Alpha is composited onto white (as transformers' `convert_to_rgb` does) and the
/// EXIF orientation is applied (as `ImageOps.exif_transpose` does).
public enum ImageDecoder {
  /// Reads the format, header dimensions and EXIF orientation of `data` without decoding pixels.
  public static func probe(data: Data) throws -> ImageInfo {
    try data.withUnsafeBytes { try probe(bytes: $0) }
  }

  /// Decodes `data` after checking it against `limits` (file size first, then the header's pixel count).
  public static func decode(data: Data, limits: ImageLimits = .default) throws -> RGBImage {
    try limits.checkFileSize(data.count)
    return try data.withUnsafeBytes { bytes in
      let info = try probe(bytes: bytes)
      try limits.checkDimensions(width: info.storedWidth, height: info.storedHeight)
      return try decode(bytes: bytes, info: info)
    }
  }

  /// Reads and decodes a file; its size is checked against `limits.maxFileBytes` before it is read.
  public static func decode(file: URL, limits: ImageLimits = .default) throws -> RGBImage {
    let data = try readFile(file, limits: limits)
    return try decode(data: data, limits: limits)
  }

  /// Probes a file (reads it whole, after the `max_file_bytes` check).
  public static func probe(file: URL, limits: ImageLimits = .default) throws -> ImageInfo {
    try probe(data: readFile(file, limits: limits))
  }

  // MARK: - Internals

  static func readFile(_ url: URL, limits: ImageLimits) throws -> Data {
    let handle: FileHandle
    do {
      handle = try FileHandle(forReadingFrom: url)
    } catch {
      let exists = FileManager.default.fileExists(atPath: url.path)
      throw FolioError(
        exists ? .fileUnreadable : .fileNotFound,
        exists
          ? "Cannot open \(url.path) for reading; check its permissions."
          : "No file at \(url.path).",
        cause: error)
    }
    defer { try? handle.close() }
    do {
      let size = try handle.seekToEnd()
      try limits.checkFileSize(size > UInt64(Int.max) ? Int.max : Int(size))
      try handle.seek(toOffset: 0)
      // Read at most one byte past the limit, in case the file grows after the size check.
      let data = try handle.read(upToCount: limits.maxFileBytes + 1) ?? Data()
      try limits.checkFileSize(data.count)
      return data
    } catch let error as FolioError {
      throw error
    } catch {
      throw FolioError(.fileUnreadable, "Reading \(url.path) failed.", cause: error)
    }
  }

  static func probe(bytes: UnsafeRawBufferPointer) throws -> ImageInfo {
    guard bytes.count > 0 else {
      throw FolioError(.emptyFile, "The file is empty (0 bytes); if it is still being written, retry later.")
    }
    guard let format = ImageFormat.detect(bytes) else {
      if let format = ImageFormat.truncatedSignature(bytes) {
        throw FolioError(
          .imageTruncated,
          "The file holds only \(bytes.count) bytes of a \(format == .png ? "PNG" : "JPEG") signature; if it is "
            + "still being written, retry later.")
      }
      throw FolioError(
        .unsupportedImageFormat,
        "The file is \(ImageFormat.describeUnsupported(bytes)); Folio reads PNG and JPEG images. "
          + "Convert it to PNG or JPEG first.")
    }
    guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
      throw FolioError(.emptyFile, "The image buffer has no storage.")
    }
    var result = folio_image_result()
    let code: Int32
    switch format {
    case .png: code = folio_png_probe(base, bytes.count, &result)
    case .jpeg: code = folio_jpeg_probe(base, bytes.count, &result)
    }
    try check(code, &result, format: format)
    return ImageInfo(
      format: format,
      storedWidth: Int(result.width),
      storedHeight: Int(result.height),
      orientation: ExifReader.orientation(in: bytes, format: format),
      colorType: Int(result.color_type),
      bitDepth: Int(result.bit_depth),
      isInterlaced: result.is_interlaced != 0)
  }

  /// Full decode; the caller has already checked `info` against the limits.
  static func decode(bytes: UnsafeRawBufferPointer, info: ImageInfo) throws -> RGBImage {
    let width = info.storedWidth
    let height = info.storedHeight
    let count = width * height * 3
    guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), count > 0 else {
      throw FolioError(.emptyFile, "The image buffer has no storage.")
    }
    var result = folio_image_result()
    var code: Int32 = 0
    let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
      // Zero first so that the array is fully initialised even if a decoder fails half way.
      buffer.initialize(repeating: 0)
      switch info.format {
      case .png: code = folio_png_decode_rgb(base, bytes.count, buffer.baseAddress, count, &result)
      case .jpeg: code = folio_jpeg_decode_rgb(base, bytes.count, buffer.baseAddress, count, &result)
      }
      initialized = count
    }
    try check(code, &result, format: info.format)
    return RGBImage(uncheckedWidth: width, height: height, pixels: pixels).applying(info.orientation)
  }

  private static func check(_ code: Int32, _ result: inout folio_image_result, format: ImageFormat) throws {
    guard code != Int32(FOLIO_IMAGE_OK) else { return }
    let detail = withUnsafeBytes(of: &result.message) { raw in
      String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
    let name = format == .png ? "PNG" : "JPEG"
    switch code {
    case Int32(FOLIO_IMAGE_TRUNCATED):
      throw FolioError(
        .imageTruncated,
        "The \(name) data ends before the image does (\(detail)). If the file is still being copied, retry "
          + "once it is complete; otherwise re-export it.")
    case Int32(FOLIO_IMAGE_UNSUPPORTED):
      throw FolioError(
        .unsupportedImageFormat, "This \(name) variant is not supported (\(detail)). Re-save it as 8-bit RGB.")
    case Int32(FOLIO_IMAGE_TOO_LARGE):
      throw FolioError(
        .imageTooLarge, "The \(name) header gives dimensions the decoder refuses (\(detail)). Downscale the image.")
    case Int32(FOLIO_IMAGE_NO_MEMORY):
      throw FolioError(
        .imageTooLarge, "Out of memory while decoding the \(name) (\(detail)). Lower max_pixels or free memory.")
    default:
      throw FolioError(
        .imageCorrupt, "The \(name) data is damaged (\(detail)). Re-export or re-scan the original.")
    }
  }
}
