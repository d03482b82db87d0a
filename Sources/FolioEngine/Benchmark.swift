import FolioBase
import FolioCodecs
import FolioKernels
import FolioModel
import Foundation

/// One `folio bench` run: what was measured and how fast it went.
public struct BenchmarkReport: Sendable, Encodable {
  public var model: String
  public var threads: Int
  /// The SIMD path the kernels took (`avx512`, `avx2`, `neon`, `portable`) and how layers multiplied: `int8`
  /// (quantized layers with int8 activations), `bf16` (a bf16 model's prompts with bf16 activations), both, or `float`.
  public var kernels: String
  public var activations: String
  public var promptTokens: Int
  public var generatedTokens: Int
  public var loadSeconds: Double
  public var prefillSeconds: Double
  public var prefillTokensPerSecond: Double
  public var decodeSeconds: Double
  public var decodeTokensPerSecond: Double
  /// Image size, vision-encoder seconds and image tokens, when an image was part of the run.
  public var image: String?
  public var imageTokens: Int?
  public var visionSeconds: Double?
  /// Seconds from the start of the request (vision included) to the first generated token.
  public var timeToFirstTokenSeconds: Double
  /// Peak resident memory of the process (VmHWM), in MiB.
  public var peakResidentMiB: Double?
  /// With `--shared-prefix`: three more jobs whose prompts share their first tokens; the first job's time to first
  /// token (nothing saved yet), the third job's (started from the state the second job saved), and the prompt
  /// tokens the third job did not prefill.
  public var sharedPrefixTokens: Int?
  public var firstJobTimeToFirstTokenSeconds: Double?
  public var reusedJobTimeToFirstTokenSeconds: Double?
  public var reusedPromptTokens: Int?

  enum CodingKeys: String, CodingKey {
    case model, threads, image, kernels, activations
    case promptTokens = "prompt_tokens", generatedTokens = "generated_tokens", loadSeconds = "load_s"
    case prefillSeconds = "prefill_s", prefillTokensPerSecond = "prefill_tokens_per_s", decodeSeconds = "decode_s"
    case decodeTokensPerSecond = "decode_tokens_per_s", imageTokens = "image_tokens", visionSeconds = "vision_s"
    case timeToFirstTokenSeconds = "ttft_s", peakResidentMiB = "peak_rss_mib"
    case sharedPrefixTokens = "shared_prefix_tokens", firstJobTimeToFirstTokenSeconds = "first_job_ttft_s"
    case reusedJobTimeToFirstTokenSeconds = "reused_job_ttft_s", reusedPromptTokens = "reused_prompt_tokens"
  }
}

/// Measures load, prefill, decode and vision speed on synthetic inputs (deterministic token ids, a gradient image).
public enum Benchmark {
  /// Runs the benchmark on `model` (already loaded). `imageSize` adds an image of that size before the prompt;
  /// `sharedPrefixTokens` > 0 adds three jobs whose prompts share that many first tokens (prefix-state reuse).
  public static func run(
    model: LanguageModel, promptTokens: Int, generatedTokens: Int, imageSize: (width: Int, height: Int)?,
    sharedPrefixTokens: Int = 0, pool: ComputePool
  ) throws -> BenchmarkReport {
    guard promptTokens > 0, generatedTokens > 0 else {
      throw FolioError(.invalidArgument, "--prompt-tokens and --gen-tokens must be positive.")
    }
    guard sharedPrefixTokens == 0 || (sharedPrefixTokens < promptTokens && imageSize == nil) else {
      throw FolioError(
        .invalidArgument,
        "--shared-prefix must be below --prompt-tokens (each job needs tokens of its own) and is measured on text "
          + "prompts: leave out --image.")
    }
    let clock = ContinuousClock()
    let start = clock.now
    // Ordinary text ids spread over the vocabulary (a fixed linear congruence: reproducible across runs), below the
    // first special token (Qwen's added tokens, `<|vision_start|>` among them, follow the ordinary vocabulary).
    let vocabulary = min(model.checkpoint.config.text.vocabularySize, model.tokenizer.vocabularySize)
    let textLimit = (0..<vocabulary).first { model.tokenizer.isSpecial($0) } ?? vocabulary
    var tokens = (0..<promptTokens).map { (($0 &* 7919) &+ 13) % max(textLimit - 1, 1) }
    var features: ImageFeatures?
    var visionSeconds: Double?
    var imageTokens: Int?
    if let imageSize {
      _ = try model.vision?.encoder()  // built on first use: load it before timing the encoder
      let image = gradient(width: imageSize.width, height: imageSize.height)
      let visionStart = clock.now
      let prepared = try model.prepareImage(image, source: "synthetic \(imageSize.width)x\(imageSize.height)")
      features = try model.encodeImages([prepared], pool: pool)
      visionSeconds = visionStart.duration(to: clock.now).seconds
      let config = model.checkpoint.config
      tokens =
        [config.visionStartTokenID] + Array(repeating: config.imageTokenID, count: prepared.tokenCount)
        + [config.visionEndTokenID] + tokens
      imageTokens = prepared.tokenCount
    }
    var state = model.checkpoint.textModel.makeState()
    var firstToken: Double?
    let result = try model.generator(pool: pool).generate(
      GenerationRequest(promptTokens: tokens, maxTokens: generatedTokens, images: features), state: &state
    ) { _ in
      if firstToken == nil { firstToken = start.duration(to: clock.now).seconds }
      return true
    }
    let decoded = max(result.tokens.count - 1, 1)
    var report = BenchmarkReport(
      model: model.checkpoint.folder.path, threads: pool.threadCount, kernels: MatMul.kernelPath.description,
      activations: activationsDescription(model.checkpoint), promptTokens: tokens.count,
      generatedTokens: result.tokens.count, loadSeconds: model.loadSeconds, prefillSeconds: result.prefillSeconds,
      prefillTokensPerSecond: Double(tokens.count) / max(result.prefillSeconds, 1e-9),
      decodeSeconds: result.decodeSeconds, decodeTokensPerSecond: Double(decoded) / max(result.decodeSeconds, 1e-9),
      image: imageSize.map { "\($0.width)x\($0.height)" }, imageTokens: imageTokens, visionSeconds: visionSeconds,
      timeToFirstTokenSeconds: firstToken ?? 0, peakResidentMiB: peakResidentMiB())
    if sharedPrefixTokens > 0 {
      let jobs = try (1...3).map { job in
        let own = (sharedPrefixTokens..<promptTokens).map { (($0 &* 7919) &+ 13 &+ job) % max(textLimit - 1, 1) }
        return try timeToFirstToken(model: model, prompt: Array(tokens[..<sharedPrefixTokens]) + own, pool: pool)
      }
      report.sharedPrefixTokens = sharedPrefixTokens
      report.firstJobTimeToFirstTokenSeconds = jobs[0].seconds
      report.reusedJobTimeToFirstTokenSeconds = jobs[2].seconds
      report.reusedPromptTokens = jobs[2].reused
      report.peakResidentMiB = peakResidentMiB()
    }
    return report
  }

  /// One job as the daemon runs it (from the longest saved prefix, saving shared ones) up to its first token.
  static func timeToFirstToken(
    model: LanguageModel, prompt: [Int], pool: ComputePool
  ) throws -> (seconds: Double, reused: Int) {
    let clock = ContinuousClock()
    let start = clock.now
    let prefilled = try model.prefillSharedPrefixes(of: prompt, images: [], pool: pool)
    var state = prefilled.state
    _ = try model.generator(pool: pool).generate(
      GenerationRequest(promptTokens: Array(prompt[prefilled.done...]), maxTokens: 1), state: &state)
    return (start.duration(to: clock.now).seconds, prefilled.reused)
  }

  static func activationsDescription(_ checkpoint: Checkpoint) -> String {
    let modes = (checkpoint.int8Activations ? ["int8"] : []) + (checkpoint.bf16Activations ? ["bf16"] : [])
    return modes.isEmpty ? "float" : modes.joined(separator: "+")
  }

  /// A smooth colour gradient with some structure, so resizing does real work.
  static func gradient(width: Int, height: Int) -> RGBImage {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
      for x in 0..<width {
        let i = (y * width + x) * 3
        pixels[i] = UInt8(truncatingIfNeeded: x * 255 / max(width - 1, 1))
        pixels[i + 1] = UInt8(truncatingIfNeeded: y * 255 / max(height - 1, 1))
        pixels[i + 2] = UInt8(truncatingIfNeeded: (x ^ y) & 0xFF)
      }
    }
    return RGBImage(width: width, height: height, pixels: pixels) ?? RGBImage(width: 1, height: 1, pixels: [0, 0, 0])!
  }

  /// Peak resident set size from `/proc/self/status`, or `nil` where that file does not exist.
  static func peakResidentMiB() -> Double? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
      let digits = line.split(separator: " ").compactMap { Double($0) }
      if let kib = digits.first { return kib / 1024 }
    }
    return nil
  }
}
