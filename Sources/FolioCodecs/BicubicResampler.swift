/// Pillow's `Image.resize(..., BICUBIC)` for 8-bit RGB, reproduced operation for operation
/// (Pillow `libImaging/Resample.c`: `precompute_coeffs`, `normalize_coeffs_8bpc`, `ImagingResampleInner`).
///
/// Separable: a horizontal and a vertical pass, each skipped when that dimension does not change, in Pillow 13's
/// order (horizontal first, over only the source rows the vertical pass needs, unless the height shrinks much more). Cubic kernel a = −0.5 with support 2, widened by the downscale
/// factor (antialiasing). Coefficients are computed in double, normalised to sum 1, then rounded to 22-bit fixed
/// point; sums start at ½ and are shifted and clamped to 0…255. The intermediate image is 8-bit, as in Pillow.
public enum BicubicResampler {
  /// `image` resized to `width` × `height` (each at least 1); returns `image` unchanged when the size matches.
  public static func resize(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
    let width = max(width, 1)
    let height = max(height, 1)
    if width == image.width && height == image.height { return image }
    let needsHorizontal = width != image.width
    let needsVertical = height != image.height
    // Pillow 13's pass order (Resample.c `ImagingResampleInner`, PR #9549): vertical first when the height
    // loses more than twice as many pixels as the width, else horizontal first. The 8-bit intermediate makes
    // the order visible in the output; Pillow 12 and older always went horizontal first.
    let heightLoss = image.height - height
    let widthLoss = image.width - width
    let horizontalFirst = !(heightLoss > 0 && heightLoss > widthLoss * 2)
    let vertical = Coefficients(inSize: image.height, outSize: height)
    if horizontalFirst {
      var current = image
      var rowOffset = 0
      if needsHorizontal {
        // Only the source rows the vertical pass reads.
        let firstRow = vertical.bounds[0]
        let lastRow = vertical.bounds[2 * (height - 1)] + vertical.bounds[2 * (height - 1) + 1]
        current = horizontalPass(
          image, coefficients: Coefficients(inSize: image.width, outSize: width), rows: firstRow..<lastRow)
        rowOffset = firstRow
      }
      if needsVertical { current = verticalPass(current, coefficients: vertical, rowOffset: rowOffset) }
      return current
    }
    var current = verticalPass(image, coefficients: vertical, rowOffset: 0)
    if needsHorizontal {
      current = horizontalPass(
        current, coefficients: Coefficients(inSize: image.width, outSize: width), rows: 0..<current.height)
    }
    return current
  }

  /// Pillow's PRECISION_BITS for 8-bit resampling: 32 − 8 − 2.
  static let precisionBits: Int32 = 22

  /// Per-output-sample source windows and fixed-point weights.
  struct Coefficients {
    /// Pairs (first source index, number of taps) per output sample.
    var bounds: [Int]
    /// `outSize * kernelSize` fixed-point weights (unused taps are zero).
    var weights: [Int32]
    /// Taps reserved per output sample.
    var kernelSize: Int

    init(inSize: Int, outSize: Int) {
      let support0 = 2.0  // BICUBIC support.
      // Pillow passes the box edges as C floats: (double)(in1 - in0) / outSize with in0 = 0.
      let scale = Double(Float(inSize) - Float(0)) / Double(outSize)
      let filterScale = max(scale, 1.0)
      let support = support0 * filterScale
      let kernelSize = Int(support.rounded(.up)) * 2 + 1
      var bounds = [Int](repeating: 0, count: outSize * 2)
      var weights = [Int32](repeating: 0, count: outSize * kernelSize)
      var taps = [Double](repeating: 0, count: kernelSize)
      let inverseScale = 1.0 / filterScale
      let one = Double(1 << BicubicResampler.precisionBits)
      for xx in 0..<outSize {
        let center = Double(Float(0)) + (Double(xx) + 0.5) * scale
        var total = 0.0
        // C `(int)` casts truncate toward zero; Swift's Int(Double) does the same.
        let xmin = max(Int(center - support + 0.5), 0)
        let xmax = min(Int(center + support + 0.5), inSize) - xmin
        for x in 0..<xmax {
          let w = BicubicResampler.cubic((Double(x + xmin) - center + 0.5) * inverseScale)
          taps[x] = w
          total += w
        }
        for x in 0..<max(xmax, 0) {
          if total != 0.0 { taps[x] /= total }
          let k = taps[x]
          weights[xx * kernelSize + x] = k < 0 ? Int32(-0.5 + k * one) : Int32(0.5 + k * one)
        }
        bounds[2 * xx] = xmin
        bounds[2 * xx + 1] = max(xmax, 0)
      }
      self.bounds = bounds
      self.weights = weights
      self.kernelSize = kernelSize
    }
  }

  /// Pillow's `bicubic_filter` with a = −0.5, same operation order.
  @inline(__always)
  static func cubic(_ value: Double) -> Double {
    let a = -0.5
    let x = value < 0.0 ? -value : value
    if x < 1.0 { return ((a + 2.0) * x - (a + 3.0)) * x * x + 1 }
    if x < 2.0 { return (((x - 5) * x + 8) * x - 4) * a }
    return 0.0
  }

  /// Pillow's `clip8`: drop the fraction bits, clamp to a byte.
  @inline(__always)
  static func clip8(_ sum: Int32) -> UInt8 {
    let v = sum >> precisionBits
    return v < 0 ? 0 : (v > 255 ? 255 : UInt8(truncatingIfNeeded: v))
  }

  static func horizontalPass(_ image: RGBImage, coefficients c: Coefficients, rows: Range<Int>) -> RGBImage {
    let outWidth = c.bounds.count / 2
    let inWidth = image.width
    let half: Int32 = 1 << (precisionBits - 1)
    var out = [UInt8](repeating: 0, count: outWidth * rows.count * 3)
    image.pixels.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        c.weights.withUnsafeBufferPointer { weights in
          c.bounds.withUnsafeBufferPointer { bounds in
            for (outRow, y) in rows.enumerated() {
              let srcRow = y * inWidth * 3
              let dstRow = outRow * outWidth * 3
              for xx in 0..<outWidth {
                let xmin = bounds[2 * xx]
                let count = bounds[2 * xx + 1]
                let k = xx * c.kernelSize
                var r = half
                var g = half
                var b = half
                var s = srcRow + xmin * 3
                for t in 0..<count {
                  let w = weights[k + t]
                  r &+= Int32(src[s]) &* w
                  g &+= Int32(src[s + 1]) &* w
                  b &+= Int32(src[s + 2]) &* w
                  s += 3
                }
                let d = dstRow + xx * 3
                dst[d] = clip8(r)
                dst[d + 1] = clip8(g)
                dst[d + 2] = clip8(b)
              }
            }
          }
        }
      }
    }
    return RGBImage(uncheckedWidth: outWidth, height: rows.count, pixels: out)
  }

  /// `rowOffset`: the source row that `image`'s row 0 corresponds to (the horizontal pass skips unused rows).
  static func verticalPass(_ image: RGBImage, coefficients c: Coefficients, rowOffset: Int) -> RGBImage {
    let outHeight = c.bounds.count / 2
    let rowLength = image.width * 3
    let half: Int32 = 1 << (precisionBits - 1)
    var out = [UInt8](repeating: 0, count: rowLength * outHeight)
    var accumulator = [Int32](repeating: 0, count: rowLength)
    image.pixels.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        accumulator.withUnsafeMutableBufferPointer { acc in
          for yy in 0..<outHeight {
            let ymin = c.bounds[2 * yy] - rowOffset
            let count = c.bounds[2 * yy + 1]
            for i in 0..<rowLength { acc[i] = half }
            // Integer sums: accumulating row by row gives exactly Pillow's per-pixel column sums.
            for t in 0..<count {
              let w = c.weights[yy * c.kernelSize + t]
              let row = (ymin + t) * rowLength
              for i in 0..<rowLength { acc[i] &+= Int32(src[row + i]) &* w }
            }
            let d = yy * rowLength
            for i in 0..<rowLength { dst[d + i] = clip8(acc[i]) }
          }
        }
      }
    }
    return RGBImage(uncheckedWidth: image.width, height: outHeight, pixels: out)
  }
}
