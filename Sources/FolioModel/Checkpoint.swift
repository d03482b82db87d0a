import FolioBase
import FolioKernels
import FolioTensors
import Foundation

/// A loaded Qwen3.5 checkpoint: its folder, configuration, generation defaults and text decoder.
public final class Checkpoint: Sendable {
  public let folder: URL
  public let config: ModelConfiguration
  public let generationDefaults: GenerationDefaults
  public let textModel: TextModel
  /// Keeps the memory-mapped weight files open.
  public let store: TensorStore
  /// Whether the decoder's linear layers are quantized (at load or in an MLX folder) and multiply with int8
  /// activations; the vision tower follows the same choice (`VisionEncoder`'s `int8Linears`).
  public let int8Activations: Bool
  /// Whether bf16 weights multiply prompts with activations rounded to bf16 (`QuantizedActivations.bfloat16` on a
  /// CPU with bf16 dot products); the vision tower's bf16 linear layers follow (`VisionEncoder`'s `bf16Linears`).
  public let bf16Activations: Bool

  /// Loads the checkpoint in `folder` (already resolved by `ModelLocator`); `quantizeBits` (4, 6 or 8) quantizes the
  /// decoder's linear layers at load; `activations` picks how quantized layers multiply (see `QuantizedActivations`).
  public init(folder: URL, quantizeBits: Int? = nil, activations: QuantizedActivations = .fastest) throws {
    if let bits = quantizeBits, ![4, 6, 8].contains(bits) {
      throw FolioError(.invalidArgument, "--quantize takes 4, 6 or 8, got \(bits).")
    }
    self.folder = folder
    config = try ModelConfiguration.load(from: folder.appendingPathComponent("config.json"))
    generationDefaults = try GenerationDefaults.load(from: folder.appendingPathComponent("generation_config.json"))
    store = try TensorStore(folder: folder)
    int8Activations = activations.int8Quantized && (quantizeBits != nil || config.quantization != nil)
    bf16Activations = activations.bf16Prompts
    textModel = try TextModel(
      store: store, config: config.text, quantization: config.quantization, quantizeBits: quantizeBits,
      activations: activations)
  }
}
