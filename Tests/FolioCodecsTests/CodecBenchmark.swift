import FolioCodecs
import Foundation
import Testing

/// Decode and preprocessing speed; not a timed test. Runs only when `FOLIO_BENCH_DIR` names a folder of images
/// (see `scripts/bench_codecs.sh`, which makes them and runs this in release mode).
@Suite("Codec benchmark", .serialized, .enabled(if: ProcessInfo.processInfo.environment["FOLIO_BENCH_DIR"] != nil))
struct CodecBenchmark {
  static let folder = URL(fileURLWithPath: ProcessInfo.processInfo.environment["FOLIO_BENCH_DIR"] ?? "/nonexistent")

  func measure(_ repetitions: Int, _ body: () throws -> Void) rethrows -> (best: Double, median: Double) {
    var times: [Double] = []
    for _ in 0..<repetitions {
      let start = DispatchTime.now().uptimeNanoseconds
      try body()
      times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    times.sort()
    return (times[0], times[times.count / 2])
  }

  @Test("decode time per megapixel")
  func decode() throws {
    let files = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path)
      .filter { $0.hasSuffix(".png") || $0.hasSuffix(".jpg") }.sorted()
    for file in files {
      let data = try Data(contentsOf: Self.folder.appendingPathComponent(file))
      let info = try ImageDecoder.probe(data: data)
      let megapixels = Double(info.storedWidth * info.storedHeight) / 1e6
      let limits = ImageLimits(maxFileBytes: 1 << 30)
      let t = try measure(5) { _ = try ImageDecoder.decode(data: data, limits: limits) }
      print(
        String(
          format: "[bench] decode %@ %dx%d (%.1f MP, %d KB): best %.1f ms, median %.1f ms, %.1f ms/MP",
          file, info.storedWidth, info.storedHeight, megapixels, data.count / 1024, t.best, t.median,
          t.best / megapixels))
    }
  }

  @Test("preprocessing time (resize + normalise + patchify)")
  func preprocess() throws {
    let data = try Data(contentsOf: Self.folder.appendingPathComponent("photo_rgb.png"))
    let image = try ImageDecoder.decode(data: data, limits: ImageLimits(maxFileBytes: 1 << 30))
    let small = VisionPreprocessorConfiguration(
      minPixels: 65_536, maxPixels: 1_048_576, patchSize: 16, temporalPatchSize: 2, mergeSize: 2,
      imageMean: [0.5, 0.5, 0.5], imageStd: [0.5, 0.5, 0.5])
    for (name, configuration) in [("qwen35", VisionPreprocessorConfiguration.qwen35), ("max 1 MP", small)] {
      let preprocessor = VisionPreprocessor(configuration: configuration)
      let size = try preprocessor.resizedSize(height: image.height, width: image.width)
      let resize = try measure(3) { _ = try preprocessor.resized(image) }
      let full = try measure(3) { _ = try preprocessor.preprocess(image) }
      print(
        String(
          format: "[bench] preprocess %@ %dx%d -> %dx%d: resize best %.1f ms, resize+patchify best %.1f ms",
          name, image.width, image.height, size.width, size.height, resize.best, full.best))
    }
  }
}
