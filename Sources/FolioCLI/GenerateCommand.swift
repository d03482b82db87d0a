import ArgumentParser
import FolioBase
import FolioCodecs
import FolioEngine
import FolioModel
import FolioTokenizer
import Foundation

/// `folio generate`: run the model on a prompt and stream or print the answer.
struct GenerateCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "generate",
    abstract: "Generate text from a prompt.",
    discussion: """
      The prompt is wrapped in the model's chat template unless --raw is given, in which case it is tokenized as
      it is (special tokens such as <|im_start|> are recognised). Text streams to stdout; --json prints one JSON
      object instead: model, prompt_tokens, tokens, text, finish_reason, logprobs, timings.
      """)

  @OptionGroup var modelOptions: ModelOptions
  @OptionGroup var generation: GenerationOptions

  @Option(name: .long, help: "The prompt text.")
  var prompt: String?

  @Option(name: .long, help: "Read the prompt from this file (UTF-8).")
  var promptFile: String?

  @Option(
    name: .long,
    help: ArgumentHelp(
      "An image (PNG or JPEG) to show the model; repeatable.",
      discussion:
        "In chat mode the images precede the prompt text in the user turn; with --raw each <|vision_start|><|image_pad|><|vision_end|> takes the next image."
    ))
  var image: [String] = []

  @Option(name: .long, help: "Refuse images with more pixels than this (checked from the header, before decoding).")
  var maxPixels: Int = ImageLimits.defaultMaxPixels

  @Option(name: .long, help: "A system message (chat mode only).")
  var system: String?

  @Flag(name: .long, help: "Tokenize the prompt as it is, without the chat template.")
  var raw = false

  @Flag(inversion: .prefixedNo, help: "Open a reasoning block (default: the chat template's default).")
  var think: Bool?

  @Option(name: .long, help: "Report the top K log-probabilities of each generated token (with --json).")
  var logprobs: Int = 0

  @Flag(name: .long, help: "Print one JSON object instead of streaming text.")
  var json = false

  func validate() throws {
    if (prompt == nil) == (promptFile == nil) {
      throw ValidationError("Give exactly one of --prompt or --prompt-file.")
    }
    if raw && (system != nil || think != nil) {
      throw ValidationError("--system and --think/--no-think need chat mode (drop --raw).")
    }
    if logprobs < 0 { throw ValidationError("--logprobs must be ≥ 0.") }
  }

  func run() async throws {
    let promptText = try readPrompt()
    let model = try LanguageModel(
      reference: modelOptions.model, quantizeBits: modelOptions.quantize,
      activations: modelOptions.quantizedActivations)
    let pool = modelOptions.pool
    let images = try image.map {
      try model.prepareImage(file: URL(fileURLWithPath: $0), limits: ImageLimits(maxPixels: maxPixels))
    }
    var promptTokens: [Int]
    if raw {
      promptTokens = model.tokenizer.encode(promptText)
    } else {
      var messages: [ChatMessage] = []
      if let system { messages.append(ChatMessage(role: .system, content: system)) }
      messages.append(
        ChatMessage(role: .user, parts: Array(repeating: .image, count: images.count) + [.text(promptText)]))
      promptTokens = model.encodeChat(messages, enableThinking: think)
    }
    promptTokens = try model.expandImagePlaceholders(promptTokens, images: images)
    let request = GenerationRequest(
      promptTokens: promptTokens, maxTokens: generation.maxTokens,
      sampling: generation.sampling(defaults: model.checkpoint.generationDefaults),
      stopTokens: model.stopTokens, logprobCount: logprobs,
      images: images.isEmpty ? nil : try model.encodeImages(images, pool: pool))
    var state = model.checkpoint.textModel.makeState()
    var detokenizer = StreamingDetokenizer(tokenizer: model.tokenizer, skipSpecialTokens: true)
    let output = StandardOutput()
    let result = try model.generator(pool: pool).generate(request, state: &state) { token in
      if !json && !token.isStop { output.write(detokenizer.append(token.id)) }
      return true
    }
    if json {
      let text = model.tokenizer.decode(result.tokens, skipSpecialTokens: true)
      let report = GenerateReport(
        model: model.checkpoint.folder.path, promptTokens: promptTokens, tokens: result.tokens, text: text,
        finishReason: result.finishReason.rawValue, logprobs: result.topLogprobs,
        images: images.isEmpty ? nil : images.map(GenerateReport.Image.init),
        timings: .init(
          loadSeconds: model.loadSeconds, prefillSeconds: result.prefillSeconds, decodeSeconds: result.decodeSeconds,
          prefillTokensPerSecond: Double(promptTokens.count) / max(result.prefillSeconds, 1e-9),
          decodeTokensPerSecond: Double(max(result.tokens.count - 1, 0)) / max(result.decodeSeconds, 1e-9)))
      output.write(try report.jsonLine())
    } else {
      output.write(detokenizer.finish() + "\n")
    }
  }

  private func readPrompt() throws -> String {
    if let prompt { return prompt }
    let path = promptFile ?? ""
    guard let data = FileManager.default.contents(atPath: path) else {
      throw FolioError(.fileNotFound, "\(path): cannot read the prompt file.")
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw FolioError(.invalidArgument, "\(path): the prompt file is not UTF-8 text.")
    }
    return text
  }
}

/// The `--json` output of `folio generate` (a stable contract for scripts).
struct GenerateReport: Encodable {
  struct Timings: Encodable {
    var loadSeconds: Double
    var prefillSeconds: Double
    var decodeSeconds: Double
    var prefillTokensPerSecond: Double
    var decodeTokensPerSecond: Double
    enum CodingKeys: String, CodingKey {
      case loadSeconds = "load_s", prefillSeconds = "prefill_s", decodeSeconds = "decode_s"
      case prefillTokensPerSecond = "prefill_tokens_per_s", decodeTokensPerSecond = "decode_tokens_per_s"
    }
  }
  var model: String
  var promptTokens: [Int]
  var tokens: [Int]
  var text: String
  var finishReason: String
  var logprobs: [[TokenLogprob]]
  /// Present only when images were given.
  var images: [Image]?
  var timings: Timings

  struct Image: Encodable {
    var file: String
    var width: Int
    var height: Int
    var resizedWidth: Int
    var resizedHeight: Int
    var tokens: Int
    init(_ p: PreparedImage) {
      file = p.source
      width = p.width
      height = p.height
      resizedWidth = p.resizedWidth
      resizedHeight = p.resizedHeight
      tokens = p.tokenCount
    }
    enum CodingKeys: String, CodingKey {
      case file, width, height, resizedWidth = "resized_width", resizedHeight = "resized_height", tokens
    }
  }

  enum CodingKeys: String, CodingKey {
    case model, promptTokens = "prompt_tokens", tokens, text, finishReason = "finish_reason", logprobs, images
    case timings
  }

  func jsonLine() throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
  }
}

extension GenerationOptions {
  /// Flags override the checkpoint's generation_config.json; without either, decoding is greedy.
  func sampling(defaults: GenerationDefaults) -> SamplingParameters {
    let sample = defaults.doSample ?? false
    return SamplingParameters(
      temperature: temperature ?? (sample ? defaults.temperature ?? 1 : 0),
      topK: topK ?? (sample ? defaults.topK : nil),
      topP: topP ?? (sample ? defaults.topP : nil),
      minP: minP ?? (sample ? defaults.minP : nil),
      repetitionPenalty: repetitionPenalty ?? defaults.repetitionPenalty,
      presencePenalty: presencePenalty, seed: seed)
  }
}

/// Unbuffered writes to stdout so streamed tokens appear as they are produced.
struct StandardOutput {
  func write(_ text: String) {
    guard !text.isEmpty else { return }
    FileHandle.standardOutput.write(Data(text.utf8))
  }
}
