import FolioBase
import FolioKernels
import FolioTensors
import Foundation

/// Writes a Hugging Face Qwen3.5 folder as an MLX quantized folder, the layout mlx-community publishes
/// (qwen35.md §6.2): `language_model.model.*` / `language_model.lm_head.*` / `vision_tower.*` names, zero-centred
/// norm weights with +1 baked in, conv1d as `[C, K, 1]`, the patch embedding channels-last, and every language-model
/// linear layer and the embedding as affine `bits`-bit codes (uint32, LSB first) with per-group scales and biases in
/// the stored dtype; `config.json` gains the `quantization` block. Vision layers stay unquantized (`skip_vision`).
public enum MLXExport {
  /// Converts `input` (a Hugging Face folder) into `output` (created; must not exist).
  public static func quantize(input: URL, output: URL, bits: Int, groupSize: Int) throws {
    guard [4, 6, 8].contains(bits) else { throw FolioError(.invalidArgument, "--bits takes 4, 6 or 8, got \(bits).") }
    guard groupSize > 0, groupSize % 32 == 0 else {
      throw FolioError(.invalidArgument, "--group-size must be a positive multiple of 32, got \(groupSize).")
    }
    let fm = FileManager.default
    guard !fm.fileExists(atPath: output.path) else {
      throw FolioError(.invalidArgument, "\(output.path) already exists; choose a new folder for the quantized model.")
    }
    let configURL = input.appendingPathComponent("config.json")
    let config = try ModelConfiguration.load(from: configURL)
    guard config.text.experts == nil else {
      throw FolioError(
        .unsupportedModel, "quantizing mixture-of-experts checkpoints (MLX's switch_mlp layout) is not supported yet.")
    }
    guard config.quantization == nil else {
      throw FolioError(.invalidArgument, "\(input.path) is already quantized.")
    }
    let store = try TensorStore(folder: input)
    var writer = SafetensorsWriter()
    for name in store.tensors.keys.sorted() where !name.hasPrefix("mtp.") {
      guard let tensor = store[name], let target = mlxName(name) else { continue }
      try add(tensor, as: target, to: &writer, bits: bits, groupSize: groupSize)
    }
    try fm.createDirectory(at: output, withIntermediateDirectories: true)
    try writer.write(to: output.appendingPathComponent("model.safetensors"))
    try writeIndex(writer, to: output)
    try writeConfig(from: configURL, to: output.appendingPathComponent("config.json"), bits: bits, groupSize: groupSize)
    for file in [
      "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json",
      "preprocessor_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
    ] where fm.fileExists(atPath: input.appendingPathComponent(file).path) {
      try fm.copyItem(at: input.appendingPathComponent(file), to: output.appendingPathComponent(file))
    }
  }

  /// The MLX name of a Hugging Face tensor, or `nil` for tensors MLX folders do not carry.
  static func mlxName(_ name: String) -> String? {
    if name.hasPrefix("model.language_model.") { return "language_model.model." + name.dropFirst("model.language_model.".count) }
    if name.hasPrefix("model.visual.") { return "vision_tower." + name.dropFirst("model.visual.".count) }
    if name == "lm_head.weight" { return "language_model.lm_head.weight" }
    if name.hasPrefix("model.") { return "language_model.model." + name.dropFirst("model.".count) }
    return nil
  }

  /// Zero-centred RMSNorm weights, stored by MLX with the +1 added.
  static func isZeroCentredNorm(_ name: String) -> Bool {
    name.hasPrefix("language_model.")
      && ["input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_norm.weight",
        "self_attn.k_norm.weight"].contains { name.hasSuffix($0) } || name == "language_model.model.norm.weight"
  }

  static func isQuantizable(_ name: String, _ tensor: TensorView, groupSize: Int) -> Bool {
    name.hasPrefix("language_model.") && name.hasSuffix(".weight") && tensor.shape.count == 2
      && !name.hasSuffix("norm.weight") && !name.hasSuffix("mlp.gate.weight")
      && !name.hasSuffix("shared_expert_gate.weight") && tensor.shape[1] % groupSize == 0
  }

  private static func add(
    _ tensor: TensorView, as name: String, to writer: inout SafetensorsWriter, bits: Int, groupSize: Int
  ) throws {
    let storedBytes = Data(bytes: tensor.data, count: tensor.byteCount)
    if isQuantizable(name, tensor, groupSize: groupSize) {
      let (rows, columns) = (tensor.shape[0], tensor.shape[1])
      let source = WeightReader.matrix(tensor, rows: rows, columns: columns)
      guard let storage = source.quantized(bits: bits, groupSize: groupSize).quantization else {
        throw FolioError(.invalidArgument, "\(tensor.name) cannot be quantized to \(bits) bits in groups of \(groupSize).")
      }
      let module = String(name.dropLast(".weight".count))
      let (codes, scales, biases) = storage.mlxLayout()
      try writer.add(.init(name: name, dtype: .u32, shape: [rows, columns * bits / 32], bytes: codes))
      let groupsShape = [rows, columns / groupSize]
      try writer.add(.init(name: module + ".scales", dtype: tensor.dtype, shape: groupsShape, bytes: encode(scales, tensor.dtype)))
      try writer.add(.init(name: module + ".biases", dtype: tensor.dtype, shape: groupsShape, bytes: encode(biases, tensor.dtype)))
    } else if isZeroCentredNorm(name) {
      try writer.add(.init(name: name, dtype: tensor.dtype, shape: tensor.shape, bytes: encode(try tensor.floats().map { 1 + $0 }, tensor.dtype)))
    } else if name.hasSuffix("conv1d.weight"), tensor.shape.count == 3, tensor.shape[1] == 1 {
      // [C, 1, K] → [C, K, 1]: the same bytes in the same order.
      try writer.add(.init(name: name, dtype: tensor.dtype, shape: [tensor.shape[0], tensor.shape[2], 1], bytes: storedBytes))
    } else if name.hasSuffix("patch_embed.proj.weight"), tensor.shape.count == 5 {
      try writer.add(channelsLast(tensor, name: name))
    } else {
      try writer.add(.init(name: name, dtype: tensor.dtype, shape: tensor.shape, bytes: storedBytes))
    }
  }

  /// `[O, C, T, P, P]` → `[O, T, P, P, C]`, element by element in the stored dtype.
  private static func channelsLast(_ t: TensorView, name: String) throws -> SafetensorsWriter.Tensor {
    let (o, c, tp, p) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
    let width = t.dtype.byteWidth
    var out = Data(count: t.byteCount)
    out.withUnsafeMutableBytes { destination in
      for oi in 0..<o {
        for ci in 0..<c {
          for ti in 0..<tp {
            for y in 0..<p {
              for x in 0..<p {
                let source = ((((oi * c + ci) * tp + ti) * p + y) * p + x) * width
                let target = ((((oi * tp + ti) * p + y) * p + x) * c + ci) * width
                destination.baseAddress!.advanced(by: target).copyMemory(from: t.data + source, byteCount: width)
              }
            }
          }
        }
      }
    }
    return .init(name: name, dtype: t.dtype, shape: [o, tp, p, p, c], bytes: out)
  }

  /// Floats in a stored float dtype's bytes.
  static func encode(_ values: [Float], _ dtype: TensorDType) -> Data {
    switch dtype {
    case .bf16: return values.map { Convert.bfloat16(from: $0).littleEndian }.withUnsafeBytes { Data($0) }
    case .f16: return values.map { Float16($0).bitPattern.littleEndian }.withUnsafeBytes { Data($0) }
    default: return values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { Data($0) }
    }
  }

  private static func writeIndex(_ writer: SafetensorsWriter, to folder: URL) throws {
    let map = Dictionary(uniqueKeysWithValues: writer.tensors.map { ($0.name, "model.safetensors") })
    let total = writer.tensors.reduce(0) { $0 + $1.bytes.count }
    let index: [String: Any] = ["metadata": ["total_size": total], "weight_map": map]
    try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys, .prettyPrinted])
      .write(to: folder.appendingPathComponent("model.safetensors.index.json"))
  }

  private static func writeConfig(from source: URL, to target: URL, bits: Int, groupSize: Int) throws {
    guard var root = (try? JSONSerialization.jsonObject(with: Data(contentsOf: source))) as? [String: Any] else {
      throw FolioError(.invalidConfig, "\(source.path): not a JSON object.")
    }
    let quantization: [String: Any] = ["group_size": groupSize, "bits": bits, "mode": "affine"]
    root["quantization"] = quantization
    root["quantization_config"] = quantization
    try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .prettyPrinted]).write(to: target)
  }
}
