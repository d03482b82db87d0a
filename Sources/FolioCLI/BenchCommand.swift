import ArgumentParser
import FolioEngine
import Foundation

/// `folio bench`: load, prefill, decode and vision speed of a model on synthetic input (release builds only).
struct BenchCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Measure load time, prefill and decode speed, vision time, time to first token and peak memory.",
    discussion: "Build with `swift build -c release`; debug builds are 10-100x slower. See BENCHMARKS.md.")

  @OptionGroup var modelOptions: ModelOptions

  @Option(name: .long, help: "Prompt length in tokens.")
  var promptTokens: Int = 512

  @Option(name: .long, help: "Tokens to generate.")
  var genTokens: Int = 128

  @Option(name: .long, help: "Add a synthetic image of this size before the prompt, e.g. 1024x768.")
  var image: String?

  @Option(
    name: .long,
    help: "Also time three jobs whose prompts share their first N tokens (the same instructions for every page).")
  var sharedPrefix: Int = 0

  @Flag(name: .long, help: "Print the report as JSON.")
  var json = false

  func run() async throws {
    let size = try image.map(Self.parseSize)
    let model = try LanguageModel(
      reference: modelOptions.model, quantizeBits: modelOptions.quantize,
      activations: modelOptions.quantizedActivations)
    let report = try Benchmark.run(
      model: model, promptTokens: promptTokens, generatedTokens: genTokens, imageSize: size,
      sharedPrefixTokens: sharedPrefix, pool: modelOptions.pool)
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
      print(String(decoding: try encoder.encode(report), as: UTF8.self))
      return
    }
    print("model            \(report.model)")
    print("threads          \(report.threads)")
    print("kernels          \(report.kernels), \(report.activations) activations")
    print("load             \(Self.format(report.loadSeconds)) s")
    if let vision = report.visionSeconds, let image = report.image, let tokens = report.imageTokens {
      print("vision           \(Self.format(vision)) s  (\(image), \(tokens) image tokens)")
    }
    print(
      "prefill          \(Self.format(report.prefillTokensPerSecond)) tokens/s  (\(report.promptTokens) tokens in \(Self.format(report.prefillSeconds)) s)"
    )
    print("decode           \(Self.format(report.decodeTokensPerSecond)) tokens/s  (\(report.generatedTokens) tokens)")
    print("first token      \(Self.format(report.timeToFirstTokenSeconds)) s")
    if let shared = report.sharedPrefixTokens, let first = report.firstJobTimeToFirstTokenSeconds,
      let reused = report.reusedJobTimeToFirstTokenSeconds, let reusedTokens = report.reusedPromptTokens
    {
      print(
        "shared prefix    \(shared) tokens: first job's first token \(Self.format(first)) s, third job's "
          + "\(Self.format(reused)) s (\(reusedTokens) prompt tokens reused)")
    }
    if let rss = report.peakResidentMiB { print("peak RSS         \(Self.format(rss)) MiB") }
  }

  static func parseSize(_ text: String) throws -> (width: Int, height: Int) {
    let parts = text.lowercased().split(separator: "x").compactMap { Int($0) }
    guard parts.count == 2, parts[0] > 0, parts[1] > 0 else {
      throw ValidationError("--image takes WIDTHxHEIGHT, e.g. 1024x768.")
    }
    return (parts[0], parts[1])
  }

  static func format(_ value: Double) -> String { String(format: "%.2f", value) }
}
