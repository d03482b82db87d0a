import FolioBase
import FolioKernels
import FolioTensors
import Foundation

/// Weights of one Gated DeltaNet layer (qwen35.md §2.4), small vectors widened to fp32 at load.
struct GatedDeltaNetWeights: Sendable {
  var inProjQKV: WeightMatrix
  var inProjZ: WeightMatrix
  var inProjB: WeightMatrix
  var inProjA: WeightMatrix
  /// Depthwise taps transposed at load to `[K, conv_dim]` (the checkpoint's `[conv_dim, K]`), so the convolution's
  /// inner loop runs along channels; tap K−1 multiplies the current token.
  var convTaps: [Float]
  var dtBias: [Float]
  /// `−exp(A_log)`, precomputed in fp32 exactly as the reference does per call.
  var negativeDecayRate: [Float]
  /// The gated RMSNorm's plain weight `[dv]`.
  var normWeight: [Float]
  var outProj: WeightMatrix
}

/// Weights of one gated full-attention layer (qwen35.md §2.5).
struct AttentionWeights: Sendable {
  var qProj: WeightMatrix
  var kProj: WeightMatrix
  var vProj: WeightMatrix
  var oProj: WeightMatrix
  /// `1 + w` of the zero-centred q/k norms.
  var qNormScale: [Float]
  var kNormScale: [Float]
}

/// A SwiGLU MLP: `down(silu(gate(x)) · up(x))`.
struct MLPWeights: Sendable {
  var gate: WeightMatrix
  var up: WeightMatrix
  var down: WeightMatrix
}

/// The sparse MoE block with a shared expert (qwen35.md §2.7).
struct MoEWeights: Sendable {
  var router: WeightMatrix
  var experts: [MLPWeights]
  var shared: MLPWeights
  var sharedGate: WeightMatrix
  var expertsPerToken: Int
}

enum TokenMixerWeights: Sendable {
  case linear(GatedDeltaNetWeights)
  case full(AttentionWeights)
}

enum FeedForwardWeights: Sendable {
  case dense(MLPWeights)
  case sparse(MoEWeights)
}

struct DecoderLayerWeights: Sendable {
  var inputNormScale: [Float]
  var postAttentionNormScale: [Float]
  var mixer: TokenMixerWeights
  var feedForward: FeedForwardWeights
}

/// All text-decoder weights of a checkpoint, viewed in place in the mapped safetensors files.
struct TextWeights: Sendable {
  var embedTokens: WeightMatrix
  var layers: [DecoderLayerWeights]
  var finalNormScale: [Float]
  var lmHead: WeightMatrix
}

/// Reads checkpoint tensors by module path, checking presence, dtype and shape, with errors that name the file.
struct WeightReader {
  let store: TensorStore
  /// Prefix of text-decoder tensors, e.g. `model.language_model.`.
  let prefix: String
  /// `config.json`'s MLX `quantization` settings, when the checkpoint is an MLX quantized folder.
  var quantization: QuantizationSettings? = nil
  /// Repack quantized matrices for int8 dot products as they are read (one at a time, releasing the mapped codes'
  /// pages), so the MLX-layout copies never coexist.
  var interleave = false

  /// MLX folders (`language_model.model.…`) store zero-centred norm weights with the +1 already added.
  var normsIncludeOne: Bool { prefix == "language_model.model." }

  /// Finds the text decoder's prefix among the layouts Folio reads.
  static func textPrefix(in store: TensorStore) throws -> String {
    for candidate in ["model.language_model.", "model.", "language_model.model."]
    where store[candidate + "embed_tokens.weight"] != nil {
      return candidate
    }
    throw FolioError(
      .missingTensor,
      "\(store.folder.path): no embed_tokens.weight under model.language_model., model. or language_model.model.; this does not look like a Qwen3.5 checkpoint."
    )
  }

  func tensor(_ name: String) throws -> TensorView {
    guard let t = store[name] else {
      throw FolioError(.missingTensor, "\(store.folder.path): tensor '\(name)' is missing from the checkpoint.")
    }
    guard t.dtype == .f32 || t.dtype == .bf16 || t.dtype == .f16 else {
      throw FolioError(
        .unsupportedDType,
        "\(t.file.url.lastPathComponent): tensor '\(name)' is \(t.dtype.rawValue); expected F32, BF16 or F16.")
    }
    return t
  }

  func checkShape(_ t: TensorView, _ expected: [Int]) throws {
    guard t.shape == expected else {
      throw FolioError(
        .tensorShapeMismatch,
        "\(t.file.url.lastPathComponent): tensor '\(t.name)' has shape \(t.shape), expected \(expected) from config.json."
      )
    }
  }

  /// A `[rows, columns]` matrix named `prefix + name` (or the absolute `name` when `absolute`); an MLX-quantized
  /// module (`weight` uint32 codes with `scales` and `biases` beside it) is read in place as affine-quantized.
  func matrix(_ name: String, _ rows: Int, _ columns: Int, absolute: Bool = false) throws -> WeightMatrix {
    let full = absolute ? name : prefix + name
    if let codes = store[full], codes.dtype == .u32 {
      return try quantizedMatrices(full, codes, count: nil, rows, columns)[0]
    }
    let t = try tensor(full)
    try checkShape(t, [rows, columns])
    return Self.matrix(t, rows: rows, columns: columns)
  }

  /// `count` matrices `[rows, columns]` stacked along a leading axis (`prefix + name`, `[count, rows, columns]`), as
  /// MLX stores the experts of a mixture (`switch_mlp.*`); each is a view into the stored tensor, and an
  /// MLX-quantized stack (codes `[count, rows, columns·bits/32]`, scales and biases `[count, rows, groups]`) gives
  /// views of its codes, so the experts never take a second copy of the checkpoint.
  func stackedMatrices(_ name: String, count: Int, _ rows: Int, _ columns: Int) throws -> [WeightMatrix] {
    let full = prefix + name
    if let codes = store[full], codes.dtype == .u32 {
      return try quantizedMatrices(full, codes, count: count, rows, columns)
    }
    let t = try tensor(full)
    try checkShape(t, [count, rows, columns])
    return (0..<count).map { Self.matrix(t, rows: rows, columns: columns, rowOffset: $0 * rows) }
  }

  /// MLX affine quantization (qwen35.md §6.2): bits and group size per module from `config.json`'s `quantization`,
  /// else its global values. One matrix when `count` is `nil`, else `count` of them stacked along a leading axis.
  private func quantizedMatrices(_ name: String, _ codes: TensorView, count: Int?, _ rows: Int, _ columns: Int) throws
    -> [WeightMatrix]
  {
    let module = name.hasSuffix(".weight") ? String(name.dropLast(".weight".count)) : name
    let settings = quantization?.settings(for: module)
    guard let settings, let scales = store[module + ".scales"], let biases = store[module + ".biases"] else {
      throw FolioError(
        .invalidConfig,
        "\(store.folder.path): '\(name)' holds quantized codes but config.json has no \"quantization\" entry for it (or its scales/biases are missing).")
    }
    let (bits, groupSize) = settings
    guard AffineQuantizedStorage.canQuantize(columns: columns, bits: bits, groupSize: groupSize) else {
      throw FolioError(
        .unsupportedDType, "\(name): \(bits)-bit quantization with group size \(groupSize) is not supported (4, 6 or 8 bits, groups of a multiple of 32).")
    }
    let leading = count.map { [$0] } ?? []
    try checkShape(codes, leading + [rows, columns * bits / 32])
    try checkShape(scales, leading + [rows, columns / groupSize])
    try checkShape(biases, leading + [rows, columns / groupSize])
    let (allScales, allBiases) = (try scales.floats(), try biases.floats())
    let elementType: WeightElementType = scales.dtype == .f16 ? .float16 : scales.dtype == .f32 ? .float32 : .bfloat16
    let codeBytes = rows * columns * bits / 8
    let groups = rows * (columns / groupSize)
    return (0..<(count ?? 1)).map { x in
      let start = codes.data + x * codeBytes
      let range = (x * groups)..<((x + 1) * groups)
      var storage = AffineQuantizedStorage(
        codes: start, codesOwner: codes.file, scales: Array(allScales[range]), biases: Array(allBiases[range]),
        bits: bits, groupSize: groupSize, rows: rows, columns: columns)
      if interleave {
        // Repack one matrix (one expert) at a time and hand its mapped pages back before the next.
        storage = storage.interleaved()
        codes.file.discard(start, count: codeBytes)
      }
      return storage.matrix(elementType: elementType)
    }
  }

  /// A vector of `count` floats; `shape` defaults to `[count]`.
  func vector(_ name: String, _ count: Int, shape: [Int]? = nil) throws -> [Float] {
    let t = try tensor(prefix + name)
    try checkShape(t, shape ?? [count])
    return try t.floats()
  }

  /// A zero-centred RMSNorm weight as its effective scale `1 + w` (fp32, as the reference computes it).
  func normScale(_ name: String, _ count: Int) throws -> [Float] {
    let stored = try vector(name, count)
    return normsIncludeOne ? stored : stored.map { 1 + $0 }
  }

  static func matrix(_ t: TensorView, rows: Int, columns: Int, rowOffset: Int = 0) -> WeightMatrix {
    let type: WeightElementType =
      switch t.dtype {
      case .bf16: .bfloat16
      case .f16: .float16
      default: .float32
      }
    let stride = columns * type.byteWidth
    return WeightMatrix(
      base: t.data + rowOffset * stride, rows: rows, columns: columns, elementType: type, owner: t.file)
  }
}

extension TextWeights {
  /// Loads and validates every text-decoder tensor against `config`.
  static func load(
    from store: TensorStore, config c: TextConfiguration, quantization: QuantizationSettings? = nil,
    interleave: Bool = false
  ) throws -> TextWeights {
    let reader = WeightReader(
      store: store, prefix: try WeightReader.textPrefix(in: store), quantization: quantization,
      interleave: interleave)
    let h = c.hiddenSize
    let embed = try reader.matrix("embed_tokens.weight", c.vocabularySize, h)
    var layers: [DecoderLayerWeights] = []
    for (i, kind) in c.layerKinds.enumerated() {
      let p = "layers.\(i)."
      let mixer: TokenMixerWeights
      switch kind {
      case .linearAttention:
        mixer = .linear(try loadGatedDeltaNet(reader, p + "linear_attn.", c))
      case .fullAttention:
        let d = c.headDimension
        mixer = .full(
          AttentionWeights(
            qProj: try reader.matrix(p + "self_attn.q_proj.weight", 2 * c.attentionHeads * d, h),
            kProj: try reader.matrix(p + "self_attn.k_proj.weight", c.keyValueHeads * d, h),
            vProj: try reader.matrix(p + "self_attn.v_proj.weight", c.keyValueHeads * d, h),
            oProj: try reader.matrix(p + "self_attn.o_proj.weight", h, c.attentionHeads * d),
            qNormScale: try reader.normScale(p + "self_attn.q_norm.weight", d),
            kNormScale: try reader.normScale(p + "self_attn.k_norm.weight", d)))
      }
      let feedForward: FeedForwardWeights
      if let e = c.experts {
        feedForward = .sparse(try loadMoE(reader, p + "mlp.", c, e))
      } else {
        feedForward = .dense(try loadMLP(reader, p + "mlp.", hidden: h, intermediate: c.intermediateSize))
      }
      layers.append(
        DecoderLayerWeights(
          inputNormScale: try reader.normScale(p + "input_layernorm.weight", h),
          postAttentionNormScale: try reader.normScale(p + "post_attention_layernorm.weight", h),
          mixer: mixer, feedForward: feedForward))
    }
    // qwen35.md §1.4: the model is tied iff lm_head.weight is absent.
    let headName = reader.prefix == "language_model.model." ? "language_model.lm_head.weight" : "lm_head.weight"
    let lmHead =
      store[headName] != nil
      ? try reader.matrix(headName, c.vocabularySize, h, absolute: true) : embed
    return TextWeights(
      embedTokens: embed, layers: layers, finalNormScale: try reader.normScale("norm.weight", h), lmHead: lmHead)
  }

  private static func loadGatedDeltaNet(_ r: WeightReader, _ p: String, _ c: TextConfiguration) throws
    -> GatedDeltaNetWeights
  {
    let h = c.hiddenSize
    let valueDim = c.linearValueHeads * c.linearValueHeadDimension
    let convDim = c.linearConvDimension
    let k = c.convKernelSize
    let aLog = try r.vector(p + "A_log", c.linearValueHeads)
    return GatedDeltaNetWeights(
      inProjQKV: try r.matrix(p + "in_proj_qkv.weight", convDim, h),
      inProjZ: try r.matrix(p + "in_proj_z.weight", valueDim, h),
      inProjB: try r.matrix(p + "in_proj_b.weight", c.linearValueHeads, h),
      inProjA: try r.matrix(p + "in_proj_a.weight", c.linearValueHeads, h),
      convTaps: transposed(
        try r.vector(p + "conv1d.weight", convDim * k, shape: r.normsIncludeOne ? [convDim, k, 1] : [convDim, 1, k]),
        rows: convDim, columns: k),
      dtBias: try r.vector(p + "dt_bias", c.linearValueHeads),
      negativeDecayRate: aLog.map { -exp($0) },
      normWeight: try r.vector(p + "norm.weight", c.linearValueHeadDimension),
      outProj: try r.matrix(p + "out_proj.weight", h, valueDim))
  }

  /// `values` `[rows, columns]` as `[columns, rows]`.
  private static func transposed(_ values: [Float], rows: Int, columns: Int) -> [Float] {
    var out = [Float](repeating: 0, count: values.count)
    for r in 0..<rows {
      for c in 0..<columns { out[c * rows + r] = values[r * columns + c] }
    }
    return out
  }

  private static func loadMLP(_ r: WeightReader, _ p: String, hidden: Int, intermediate: Int) throws -> MLPWeights {
    MLPWeights(
      gate: try r.matrix(p + "gate_proj.weight", intermediate, hidden),
      up: try r.matrix(p + "up_proj.weight", intermediate, hidden),
      down: try r.matrix(p + "down_proj.weight", hidden, intermediate))
  }

  /// Experts stored fused (`experts.gate_up_proj` `[E, 2·Im, H]`, `experts.down_proj` `[E, H, Im]`), one tensor
  /// per expert (`experts.{e}.{gate,up,down}_proj.weight`), or stacked per projection as MLX folders store them
  /// (`switch_mlp.{gate,up}_proj` `[E, Im, H]`, `switch_mlp.down_proj` `[E, H, Im]`, each quantized or not), all
  /// viewed without copying.
  private static func loadMoE(
    _ r: WeightReader, _ p: String, _ c: TextConfiguration, _ e: ExpertConfiguration
  ) throws -> MoEWeights {
    let h = c.hiddenSize
    let im = e.expertIntermediateSize
    var experts: [MLPWeights] = []
    if r.store[r.prefix + p + "switch_mlp.gate_proj.weight"] != nil {
      let gates = try r.stackedMatrices(p + "switch_mlp.gate_proj.weight", count: e.expertCount, im, h)
      let ups = try r.stackedMatrices(p + "switch_mlp.up_proj.weight", count: e.expertCount, im, h)
      let downs = try r.stackedMatrices(p + "switch_mlp.down_proj.weight", count: e.expertCount, h, im)
      experts = (0..<e.expertCount).map { MLPWeights(gate: gates[$0], up: ups[$0], down: downs[$0]) }
    } else if r.store[r.prefix + p + "experts.gate_up_proj"] != nil {
      let gateUp = try r.tensor(r.prefix + p + "experts.gate_up_proj")
      try r.checkShape(gateUp, [e.expertCount, 2 * im, h])
      let down = try r.tensor(r.prefix + p + "experts.down_proj")
      try r.checkShape(down, [e.expertCount, h, im])
      for x in 0..<e.expertCount {
        experts.append(
          MLPWeights(
            gate: WeightReader.matrix(gateUp, rows: im, columns: h, rowOffset: x * 2 * im),
            up: WeightReader.matrix(gateUp, rows: im, columns: h, rowOffset: x * 2 * im + im),
            down: WeightReader.matrix(down, rows: h, columns: im, rowOffset: x * h)))
      }
    } else {
      for x in 0..<e.expertCount {
        experts.append(try loadMLP(r, p + "experts.\(x).", hidden: h, intermediate: im))
      }
    }
    return MoEWeights(
      router: try r.matrix(p + "gate.weight", e.expertCount, h),
      experts: experts,
      shared: try loadMLP(r, p + "shared_expert.", hidden: h, intermediate: e.sharedExpertIntermediateSize),
      sharedGate: try r.matrix(p + "shared_expert_gate.weight", 1, h),
      expertsPerToken: e.expertsPerToken)
  }
}

extension WeightMatrix {
  /// Quantized to `bits` at load (if it is not already), the memory-mapped source's pages handed back slice by
  /// slice as they are read, and with `interleave` repacked for int8 dot products right after.
  func quantizedAtLoad(bits: Int, interleave: Bool) -> WeightMatrix {
    var result = self
    if quantization == nil {
      let file = owner as? MappedFile
      var release: (@Sendable (UnsafeRawPointer, Int) -> Void)? = nil
      if let file { release = { start, count in file.discard(start, count: count) } }
      result = quantized(bits: bits, releaseSource: release)
      if result.quantization != nil, let file { file.discard(base, count: rows * rowStride) }
    }
    if interleave, let storage = result.quantization {
      result = storage.interleaved().matrix(elementType: elementType)
    }
    return result
  }
}

extension WeightMatrix {
  /// A bf16 matrix repacked into row panels for decode, the memory-mapped source's pages handed back slice by slice
  /// as they are copied (so the model is not held twice).
  /// With `bf16Activations`, prompts multiply it with activations rounded to bf16.
  func packedAtLoad(bf16Activations: Bool = false) -> WeightMatrix {
    guard let file = owner as? MappedFile else { return packedIntoPanels(bf16Activations: bf16Activations) }
    return packedIntoPanels(bf16Activations: bf16Activations) { start, count in file.discard(start, count: count) }
  }
}

extension TextWeights {
  /// Every bf16 linear layer and the embedding repacked into row panels (see `BF16Panels`); other types stay.
  /// With `bf16Activations`, prompts multiply them with activations rounded to bf16.
  func panelPacked(bf16Activations: Bool = false) -> TextWeights {
    mappingQuantizable { $0.packedAtLoad(bf16Activations: bf16Activations) }
  }

  /// Every linear layer and the embedding quantized to `bits` (MLX affine, groups of 64 columns), as mlx-lm
  /// quantizes them; norms, convolution taps, decay parameters and MoE router gates stay as stored. A tied LM head
  /// stays the same matrix as the embedding.
  /// With `interleave`, each matrix is also repacked for int8 dot products right after it is quantized.
  func quantized(bits: Int, interleave: Bool = false) -> TextWeights {
    // Quantize one matrix at a time and let its stored pages go, so peak memory is the quantized model plus one
    // matrix rather than both models.
    mappingQuantizable { $0.quantizedAtLoad(bits: bits, interleave: interleave) }
  }

  /// A copy with `transform` applied to every linear layer and the embedding (the matrices that can be quantized),
  /// one at a time; a tied LM head stays the same matrix as the embedding.
  private func mappingQuantizable(_ transform: (WeightMatrix) -> WeightMatrix) -> TextWeights {
    let q = transform
    func mlp(_ m: MLPWeights) -> MLPWeights { MLPWeights(gate: q(m.gate), up: q(m.up), down: q(m.down)) }
    var copy = self
    let tied = lmHead.base == embedTokens.base
    copy.embedTokens = q(embedTokens)
    copy.lmHead = tied ? copy.embedTokens : q(lmHead)
    copy.layers = layers.map { layer in
      var l = layer
      switch layer.mixer {
      case .linear(var w):
        w.inProjQKV = q(w.inProjQKV)
        w.inProjZ = q(w.inProjZ)
        w.inProjB = q(w.inProjB)
        w.inProjA = q(w.inProjA)
        w.outProj = q(w.outProj)
        l.mixer = .linear(w)
      case .full(var w):
        w.qProj = q(w.qProj)
        w.kProj = q(w.kProj)
        w.vProj = q(w.vProj)
        w.oProj = q(w.oProj)
        l.mixer = .full(w)
      }
      switch layer.feedForward {
      case .dense(let w): l.feedForward = .dense(mlp(w))
      case .sparse(var w):
        w.experts = w.experts.map(mlp)
        w.shared = mlp(w.shared)
        l.feedForward = .sparse(w)
      }
      return l
    }
    return copy
  }
}

/// MLX's `quantization` block of `config.json`: global bits and group size, with per-module overrides.
public struct QuantizationSettings: Sendable, Equatable {
  public var bits: Int
  public var groupSize: Int
  /// Module path → (bits, group size); a module mapped to `nil` is not quantized.
  public var overrides: [String: (bits: Int, groupSize: Int)?]

  public static func == (a: Self, b: Self) -> Bool {
    a.bits == b.bits && a.groupSize == b.groupSize && a.overrides.keys == b.overrides.keys
  }

  /// Reads `config.json`'s `quantization` (or `quantization_config`) object; `nil` when absent.
  static func parse(_ root: [String: Any]) -> QuantizationSettings? {
    guard let q = (root["quantization"] ?? root["quantization_config"]) as? [String: Any] else { return nil }
    let bits = (q["bits"] as? NSNumber)?.intValue ?? 4
    let groupSize = (q["group_size"] as? NSNumber)?.intValue ?? 64
    var overrides: [String: (bits: Int, groupSize: Int)?] = [:]
    for (key, value) in q {
      if let entry = value as? [String: Any] {
        overrides[key] = (
          (entry["bits"] as? NSNumber)?.intValue ?? bits, (entry["group_size"] as? NSNumber)?.intValue ?? groupSize
        )
      } else if value as? Bool == false {
        overrides[key] = .some(nil)
      }
    }
    return QuantizationSettings(bits: bits, groupSize: groupSize, overrides: overrides)
  }

  /// Bits and group size of `module`, or `nil` when it is marked unquantized.
  func settings(for module: String) -> (Int, Int)? {
    if let entry = overrides[module] { return entry.map { ($0.bits, $0.groupSize) } }
    return (bits, groupSize)
  }
}
