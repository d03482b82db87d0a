import ArgumentParser
import FolioKernels

/// Options that pick a model and how it runs.
struct ModelOptions: ParsableArguments {
  @Option(name: .long, help: "Model folder, Hugging Face cache entry, or model id (Org/Name) in the HF cache.")
  var model: String

  @Option(name: .long, help: "Compute threads (default: all cores).")
  var threads: Int?

  @Option(name: .long, help: "Quantize the decoder's linear layers at load to 4, 6 or 8 bits (groups of 64).")
  var quantize: Int?

  @Option(
    name: .long,
    help:
      "How layers multiply: int8 (quantized layers with int8 dot products; the default where the CPU has them), float (exact fp32, as MLX and transformers do), or bf16 (as int8, plus bf16 dot products for a bf16 model's prompts and vision tower where the CPU has AVX512_BF16).")
  var activations: ActivationsChoice?

  func validate() throws {
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
    if let quantize, ![4, 6, 8].contains(quantize) { throw ValidationError("--quantize takes 4, 6 or 8.") }
  }

  var pool: ComputePool { ComputePool(threadCount: threads) }

  /// The `--activations` choice, else the fastest this CPU supports.
  var quantizedActivations: QuantizedActivations {
    switch activations {
    case .int8: .int8
    case .float: .float32
    case .bf16: .bfloat16
    case nil: .fastest
    }
  }
}

/// `--activations` values.
enum ActivationsChoice: String, ExpressibleByArgument, CaseIterable {
  case int8
  case float
  case bf16
}

/// Sampling and length options shared by commands that generate text.
struct GenerationOptions: ParsableArguments {
  @Option(name: .long, help: "Stop after this many generated tokens.")
  var maxTokens: Int = 512

  @Option(
    name: .long,
    help: "Sampling temperature; 0 is greedy. Default: the checkpoint's generation_config.json, else greedy.")
  var temperature: Double?

  @Option(name: .long, help: "Nucleus sampling: keep the most likely tokens up to this total probability.")
  var topP: Double?

  @Option(name: .long, help: "Keep only the K most likely tokens.")
  var topK: Int?

  @Option(name: .long, help: "Drop tokens less likely than this fraction of the top token's probability.")
  var minP: Double?

  @Option(name: .long, help: "Penalise tokens already in the prompt or output (1 = off).")
  var repetitionPenalty: Double?

  @Option(name: .long, help: "Subtract this from the logits of tokens already generated.")
  var presencePenalty: Double?

  @Option(name: .long, help: "Random seed for sampling (reproducible output).")
  var seed: UInt64?

  func validate() throws {
    if maxTokens < 0 { throw ValidationError("--max-tokens must be ≥ 0.") }
  }
}
