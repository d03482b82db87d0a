import FolioBase

/// The resource limits every image goes through before it is decoded — the one place they are enforced.
///
/// Both are checked before any pixel data is inflated: the byte size before the file is read, the pixel count
/// from the PNG IHDR / JPEG SOF header (inbox lessons rows 9–10: decompression bombs must fail fast).
public struct ImageLimits: Sendable, Equatable {
  /// The largest width × height accepted (setting `max_pixels`).
  public var maxPixels: Int
  /// The largest encoded file accepted, in bytes (setting `max_file_bytes`).
  public var maxFileBytes: Int

  /// Creates limits; the defaults are `ImageLimits.default`'s values.
  public init(maxPixels: Int = ImageLimits.defaultMaxPixels, maxFileBytes: Int = ImageLimits.defaultMaxFileBytes) {
    self.maxPixels = maxPixels
    self.maxFileBytes = maxFileBytes
  }

  /// 64 Mi pixels: admits 50-megapixel phone photos (8160 × 6144) while capping the RGBA scratch of a decode at
  /// 256 MiB.
  public static let defaultMaxPixels = 64 * 1024 * 1024
  /// 128 MiB: far above any real PNG/JPEG of `defaultMaxPixels` pixels, well below the daemon's memory.
  public static let defaultMaxFileBytes = 128 * 1024 * 1024

  /// The default limits.
  public static let `default` = ImageLimits()

  /// Throws `file_too_large` when `byteCount` exceeds `maxFileBytes`.
  public func checkFileSize(_ byteCount: Int) throws {
    guard byteCount <= maxFileBytes else {
      throw FolioError(
        .fileTooLarge,
        "The file is \(byteCount) bytes, more than max_file_bytes = \(maxFileBytes). "
          + "Raise max_file_bytes in the configuration, or shrink the file before adding it.")
    }
  }

  /// Throws `image_too_large` when `width × height` exceeds `maxPixels` (or either side is zero).
  public func checkDimensions(width: Int, height: Int) throws {
    guard width > 0, height > 0 else {
      throw FolioError(.imageCorrupt, "The image header gives a size of \(width)×\(height) pixels.")
    }
    let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
    guard !overflow, pixels <= maxPixels else {
      let count = overflow ? "more than \(Int.max)" : "\(pixels)"
      throw FolioError(
        .imageTooLarge,
        "The image is \(width)×\(height) = \(count) pixels, more than max_pixels = \(maxPixels). "
          + "Raise max_pixels in the configuration, or downscale the image before adding it.")
    }
  }
}
