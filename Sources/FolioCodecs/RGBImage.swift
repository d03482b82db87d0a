/// An 8-bit RGB image: rows top to bottom, pixels left to right, three bytes (R, G, B) per pixel.
public struct RGBImage: Sendable, Equatable {
  /// Width in pixels.
  public var width: Int
  /// Height in pixels.
  public var height: Int
  /// `width * height * 3` bytes, row-major, interleaved RGB.
  public var pixels: [UInt8]

  /// Wraps existing pixels; returns `nil` when the buffer size does not match the dimensions.
  public init?(width: Int, height: Int, pixels: [UInt8]) {
    guard width > 0, height > 0, pixels.count == width * height * 3 else { return nil }
    self.width = width
    self.height = height
    self.pixels = pixels
  }

  /// Internal initializer for buffers whose size is already known to match.
  init(uncheckedWidth width: Int, height: Int, pixels: [UInt8]) {
    self.width = width
    self.height = height
    self.pixels = pixels
  }

  /// The image turned upright for an EXIF orientation (what Pillow's `ImageOps.exif_transpose` does).
  public func applying(_ orientation: ExifOrientation) -> RGBImage {
    if orientation == .up { return self }
    let w = width
    let h = height
    let swaps = orientation.swapsDimensions
    let outWidth = swaps ? h : w
    let outHeight = swaps ? w : h
    var result = [UInt8](repeating: 0, count: pixels.count)
    pixels.withUnsafeBufferPointer { src in
      result.withUnsafeMutableBufferPointer { dst in
        for y in 0..<outHeight {
          for x in 0..<outWidth {
            // (sx, sy): the stored pixel that lands at (x, y) of the upright image.
            let sx: Int
            let sy: Int
            switch orientation {
            case .up: (sx, sy) = (x, y)
            case .upMirrored: (sx, sy) = (w - 1 - x, y)  // FLIP_LEFT_RIGHT
            case .down: (sx, sy) = (w - 1 - x, h - 1 - y)  // ROTATE_180
            case .downMirrored: (sx, sy) = (x, h - 1 - y)  // FLIP_TOP_BOTTOM
            case .leftMirrored: (sx, sy) = (y, x)  // TRANSPOSE
            case .right: (sx, sy) = (y, h - 1 - x)  // ROTATE_270 (90° clockwise)
            case .rightMirrored: (sx, sy) = (w - 1 - y, h - 1 - x)  // TRANSVERSE
            case .left: (sx, sy) = (w - 1 - y, x)  // ROTATE_90 (90° counter-clockwise)
            }
            let s = (sy * w + sx) * 3
            let d = (y * outWidth + x) * 3
            dst[d] = src[s]
            dst[d + 1] = src[s + 1]
            dst[d + 2] = src[s + 2]
          }
        }
      }
    }
    return RGBImage(uncheckedWidth: outWidth, height: outHeight, pixels: result)
  }
}

/// The EXIF `Orientation` tag (0x0112): how the stored pixels must be transformed to appear upright.
///
/// Raw values follow the EXIF/TIFF specification; the comments name the Pillow transpose method
/// `ImageOps.exif_transpose` uses for each.
public enum ExifOrientation: Int, Sendable, Equatable, CaseIterable {
  /// 1: already upright.
  case up = 1
  /// 2: mirrored horizontally (`FLIP_LEFT_RIGHT`).
  case upMirrored = 2
  /// 3: rotated 180° (`ROTATE_180`).
  case down = 3
  /// 4: mirrored vertically (`FLIP_TOP_BOTTOM`).
  case downMirrored = 4
  /// 5: mirrored across the main diagonal (`TRANSPOSE`).
  case leftMirrored = 5
  /// 6: needs a 90° clockwise turn (`ROTATE_270`).
  case right = 6
  /// 7: mirrored across the anti-diagonal (`TRANSVERSE`).
  case rightMirrored = 7
  /// 8: needs a 90° counter-clockwise turn (`ROTATE_90`).
  case left = 8

  /// Whether the upright image has width and height exchanged.
  public var swapsDimensions: Bool { rawValue >= 5 }
}
