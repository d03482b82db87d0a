import FolioBase
import Foundation

/// The fields of a checkpoint's `preprocessor_config.json` that the Qwen2-VL image processor (used by Qwen3.5)
/// reads. Missing fields take the defaults of transformers' `Qwen2VLImageProcessorPil` class.
public struct VisionPreprocessorConfiguration: Sendable, Equatable, Decodable {
  /// Lower bound on resized height × width (`size.shortest_edge`, or a top-level `min_pixels`, which wins).
  public var minPixels: Int
  /// Upper bound on resized height × width (`size.longest_edge`, or a top-level `max_pixels`, which wins).
  public var maxPixels: Int
  /// Side of a square patch (`patch_size`).
  public var patchSize: Int
  /// Frames per temporal patch; a still image is repeated this many times (`temporal_patch_size`).
  public var temporalPatchSize: Int
  /// Side of the block of patches the merger fuses into one token (`merge_size`).
  public var mergeSize: Int
  /// Per-channel mean subtracted after rescaling (`image_mean`).
  public var imageMean: [Double]
  /// Per-channel divisor applied after the mean (`image_std`).
  public var imageStd: [Double]
  /// Multiplier from 8-bit values to [0, 1] (`rescale_factor`).
  public var rescaleFactor: Double
  /// Whether to resize with `smart_resize` (`do_resize`).
  public var doResize: Bool
  /// Whether to multiply by `rescaleFactor` (`do_rescale`).
  public var doRescale: Bool
  /// Whether to apply mean/std (`do_normalize`).
  public var doNormalize: Bool

  /// The values of `Qwen/Qwen3.5-*` checkpoints (qwen35.md §4.1): 256²…4096² pixels, patch 16, merge 2, mean = std = ½.
  public static let qwen35 = VisionPreprocessorConfiguration(
    minPixels: 65_536, maxPixels: 16_777_216, patchSize: 16, temporalPatchSize: 2, mergeSize: 2,
    imageMean: [0.5, 0.5, 0.5], imageStd: [0.5, 0.5, 0.5])

  /// Creates a configuration; the defaults are the Qwen3.5 values except where given.
  public init(
    minPixels: Int, maxPixels: Int, patchSize: Int, temporalPatchSize: Int, mergeSize: Int,
    imageMean: [Double], imageStd: [Double], rescaleFactor: Double = 1.0 / 255.0,
    doResize: Bool = true, doRescale: Bool = true, doNormalize: Bool = true
  ) {
    self.minPixels = minPixels
    self.maxPixels = maxPixels
    self.patchSize = patchSize
    self.temporalPatchSize = temporalPatchSize
    self.mergeSize = mergeSize
    self.imageMean = imageMean
    self.imageStd = imageStd
    self.rescaleFactor = rescaleFactor
    self.doResize = doResize
    self.doRescale = doRescale
    self.doNormalize = doNormalize
  }

  /// Reads and validates `preprocessor_config.json`.
  public static func load(from url: URL) throws -> VisionPreprocessorConfiguration {
    let data: Data
    do {
      data = try Data(contentsOf: url)
    } catch {
      throw FolioError(
        .fileNotFound, "Cannot read \(url.path); the model folder needs its preprocessor_config.json.",
        cause: error)
    }
    do {
      return try JSONDecoder().decode(VisionPreprocessorConfiguration.self, from: data)
    } catch let error as FolioError {
      throw error
    } catch {
      throw FolioError(.invalidConfig, "\(url.path) is not a valid preprocessor_config.json.", cause: error)
    }
  }

  private enum CodingKeys: String, CodingKey {
    case size
    case minPixels = "min_pixels"
    case maxPixels = "max_pixels"
    case patchSize = "patch_size"
    case temporalPatchSize = "temporal_patch_size"
    case mergeSize = "merge_size"
    case imageMean = "image_mean"
    case imageStd = "image_std"
    case rescaleFactor = "rescale_factor"
    case doResize = "do_resize"
    case doRescale = "do_rescale"
    case doNormalize = "do_normalize"
  }

  private struct Size: Decodable {
    var shortestEdge: Int?
    var longestEdge: Int?
    var minPixels: Int?
    var maxPixels: Int?
    enum CodingKeys: String, CodingKey {
      case shortestEdge = "shortest_edge"
      case longestEdge = "longest_edge"
      case minPixels = "min_pixels"
      case maxPixels = "max_pixels"
    }
  }

  /// Decodes with transformers' precedence: class defaults, then `size`, then top-level `min_pixels`/`max_pixels`.
  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    // Qwen2VLImageProcessorPil class defaults.
    var minPixels = 56 * 56
    var maxPixels = 28 * 28 * 1280
    if let size = try c.decodeIfPresent(Size.self, forKey: .size) {
      guard let shortest = size.shortestEdge ?? size.minPixels, let longest = size.longestEdge ?? size.maxPixels
      else {
        throw FolioError(
          .invalidConfig, "preprocessor_config.json: `size` needs both `shortest_edge` and `longest_edge`.")
      }
      (minPixels, maxPixels) = (shortest, longest)
    }
    minPixels = try c.decodeIfPresent(Int.self, forKey: .minPixels) ?? minPixels
    maxPixels = try c.decodeIfPresent(Int.self, forKey: .maxPixels) ?? maxPixels
    self.init(
      minPixels: minPixels, maxPixels: maxPixels,
      patchSize: try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? 14,
      temporalPatchSize: try c.decodeIfPresent(Int.self, forKey: .temporalPatchSize) ?? 2,
      mergeSize: try c.decodeIfPresent(Int.self, forKey: .mergeSize) ?? 2,
      // OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, the class defaults.
      imageMean: try c.decodeIfPresent([Double].self, forKey: .imageMean) ?? [0.48145466, 0.4578275, 0.40821073],
      imageStd: try c.decodeIfPresent([Double].self, forKey: .imageStd) ?? [0.26862954, 0.26130258, 0.27577711],
      rescaleFactor: try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? 1.0 / 255.0,
      doResize: try c.decodeIfPresent(Bool.self, forKey: .doResize) ?? true,
      doRescale: try c.decodeIfPresent(Bool.self, forKey: .doRescale) ?? true,
      doNormalize: try c.decodeIfPresent(Bool.self, forKey: .doNormalize) ?? true)
    try validate()
  }

  /// Throws `invalid_config` for values the processor cannot work with.
  public func validate() throws {
    func fail(_ what: String) -> FolioError { FolioError(.invalidConfig, "preprocessor_config.json: \(what)") }
    guard patchSize > 0, mergeSize > 0, temporalPatchSize > 0 else {
      throw fail("patch_size, merge_size and temporal_patch_size must be positive.")
    }
    guard minPixels > 0, maxPixels >= minPixels else {
      throw fail("need 0 < min_pixels (shortest_edge) ≤ max_pixels (longest_edge); got \(minPixels), \(maxPixels).")
    }
    guard imageMean.count == 3, imageStd.count == 3, imageStd.allSatisfy({ $0 != 0 }) else {
      throw fail("image_mean and image_std need three values, and image_std no zeros.")
    }
  }
}

/// The size of the patch grid for one image: `t` temporal, `h` × `w` spatial patches (`image_grid_thw`).
public struct GridTHW: Sendable, Equatable, CustomStringConvertible {
  /// Temporal patches (1 for a still image).
  public var t: Int
  /// Patch rows.
  public var h: Int
  /// Patch columns.
  public var w: Int
  /// Creates a grid.
  public init(t: Int, h: Int, w: Int) {
    self.t = t
    self.h = h
    self.w = w
  }
  /// `[t, h, w]`, as transformers prints it.
  public var description: String { "[\(t), \(h), \(w)]" }
}

/// One image ready for the vision encoder.
public struct PreprocessedImage: Sendable {
  /// `patchCount × patchDimension` values, row-major (`pixel_values`): rows in 2×2-merge-block order, columns
  /// in (channel, time, y, x) order.
  public var pixelValues: [Float]
  /// Rows of `pixelValues` (`t·h·w`).
  public var patchCount: Int
  /// Columns of `pixelValues` (`3 · temporal_patch_size · patch_size²`, 1536 for Qwen3.5).
  public var patchDimension: Int
  /// `image_grid_thw`.
  public var grid: GridTHW
  /// Height after `smart_resize`.
  public var resizedHeight: Int
  /// Width after `smart_resize`.
  public var resizedWidth: Int
  /// Language-model tokens this image becomes after the merger (`t·h·w / merge_size²`).
  public var tokenCount: Int
}

/// transformers' `Qwen2VLImageProcessorPil` (the processor Qwen3.5 checkpoints select) in Swift:
/// `smart_resize`, Pillow-exact bicubic resize on 8-bit RGB, rescale + normalise in float32, and the patch order
/// (qwen35.md §4.1; pitfalls 14–15).
public struct VisionPreprocessor: Sendable {
  /// The checkpoint's preprocessing parameters.
  public var configuration: VisionPreprocessorConfiguration

  /// Creates a preprocessor.
  public init(configuration: VisionPreprocessorConfiguration = .qwen35) {
    self.configuration = configuration
  }

  /// transformers' `smart_resize`: both sides multiples of `factor`, area within [minPixels, maxPixels], aspect
  /// ratio kept. Python semantics: `round` is half-to-even, divisions are IEEE double in the same order.
  public static func smartResize(
    height: Int, width: Int, factor: Int, minPixels: Int, maxPixels: Int
  ) throws -> (height: Int, width: Int) {
    guard height > 0, width > 0, factor > 0 else {
      throw FolioError(.invalidArgument, "smart_resize needs positive sizes; got \(height)×\(width).")
    }
    let h = Double(height)
    let w = Double(width)
    let f = Double(factor)
    let ratio = max(h, w) / min(h, w)
    guard ratio <= 200 else {
      throw FolioError(
        .imageAspectRatioTooLarge,
        "The image is \(width)×\(height) pixels, an aspect ratio of \(ratio); the vision model accepts at most 200. "
          + "Crop or split the image.")
    }
    var hBar = Int((h / f).rounded(.toNearestOrEven)) * factor
    var wBar = Int((w / f).rounded(.toNearestOrEven)) * factor
    if hBar * wBar > maxPixels {
      let beta = ((h * w) / Double(maxPixels)).squareRoot()
      hBar = max(factor, Int((h / beta / f).rounded(.down)) * factor)
      wBar = max(factor, Int((w / beta / f).rounded(.down)) * factor)
    } else if hBar * wBar < minPixels {
      let beta = (Double(minPixels) / (h * w)).squareRoot()
      hBar = Int((h * beta / f).rounded(.up)) * factor
      wBar = Int((w * beta / f).rounded(.up)) * factor
    }
    return (hBar, wBar)
  }

  /// The size `image` will be resized to, for this configuration.
  public func resizedSize(height: Int, width: Int) throws -> (height: Int, width: Int) {
    let c = configuration
    guard c.doResize else { return (height, width) }
    return try Self.smartResize(
      height: height, width: width, factor: c.patchSize * c.mergeSize, minPixels: c.minPixels,
      maxPixels: c.maxPixels)
  }

  /// Resizes (Pillow bicubic) to the `smart_resize` size; the 8-bit image the model actually sees.
  public func resized(_ image: RGBImage) throws -> RGBImage {
    let size = try resizedSize(height: image.height, width: image.width)
    return BicubicResampler.resize(image, width: size.width, height: size.height)
  }

  /// Full preprocessing of a decoded image: resize, then `patchify(_:)`.
  public func preprocess(_ image: RGBImage) throws -> PreprocessedImage {
    try patchify(resized(image))
  }

  /// Rescales, normalises and lays out an already resized image as `pixel_values`.
  ///
  /// Values follow numpy's dtype path exactly: `float32(float64(p) * rescale_factor)`, then
  /// `(x − float32(mean)) / float32(std)` in float32.
  public func patchify(_ image: RGBImage) throws -> PreprocessedImage {
    let c = configuration
    let patch = c.patchSize
    let merge = c.mergeSize
    let temporal = c.temporalPatchSize
    guard image.height % (patch * merge) == 0, image.width % (patch * merge) == 0 else {
      throw FolioError(
        .invalidArgument,
        "patchify needs sides divisible by \(patch * merge); got \(image.width)×\(image.height).")
    }
    // One float per (channel, byte value).
    var table = [Float](repeating: 0, count: 3 * 256)
    for channel in 0..<3 {
      for value in 0..<256 {
        var x = c.doRescale ? Float(Double(value) * c.rescaleFactor) : Float(value)
        if c.doNormalize { x = (x - Float(c.imageMean[channel])) / Float(c.imageStd[channel]) }
        table[channel * 256 + value] = x
      }
    }
    let gridH = image.height / patch
    let gridW = image.width / patch
    let rows = gridH * gridW
    let patchArea = patch * patch
    let columns = 3 * temporal * patchArea
    let width = image.width
    var values = [Float](repeating: 0, count: rows * columns)
    image.pixels.withUnsafeBufferPointer { src in
      table.withUnsafeBufferPointer { lut in
        values.withUnsafeMutableBufferPointer { out in
          var row = 0
          // Rows: merge blocks row-major, then (dy, dx) inside the block (pitfall 14).
          for blockY in 0..<(gridH / merge) {
            for blockX in 0..<(gridW / merge) {
              for dy in 0..<merge {
                for dx in 0..<merge {
                  let top = (blockY * merge + dy) * patch
                  let left = (blockX * merge + dx) * patch
                  let base = row * columns
                  // Columns: channel, time, y, x.
                  for channel in 0..<3 {
                    for y in 0..<patch {
                      var s = ((top + y) * width + left) * 3 + channel
                      let o = base + channel * temporal * patchArea + y * patch
                      for x in 0..<patch {
                        out[o + x] = lut[channel * 256 + Int(src[s])]
                        s += 3
                      }
                    }
                    // Still image: every temporal slice repeats the first.
                    for t in 1..<max(temporal, 1) {
                      let from = base + channel * temporal * patchArea
                      for i in 0..<patchArea { out[from + t * patchArea + i] = out[from + i] }
                    }
                  }
                  row += 1
                }
              }
            }
          }
        }
      }
    }
    return PreprocessedImage(
      pixelValues: values, patchCount: rows, patchDimension: columns, grid: GridTHW(t: 1, h: gridH, w: gridW),
      resizedHeight: image.height, resizedWidth: image.width, tokenCount: rows / (merge * merge))
  }
}
