import FolioBase
import FolioKernels
import FolioTensors
import Foundation

/// A linear layer with bias.
struct AffineWeights: Sendable {
  var weight: WeightMatrix
  var bias: [Float]

  /// `y = x·Wᵀ + b` for `tokens` rows.
  func apply(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, pool: ComputePool) {
    MatMul.linear(x, tokens: tokens, weight: weight, into: y, pool: pool)
    let n = weight.rows
    bias.withUnsafeBufferPointer { b in
      for t in 0..<tokens { Elementwise.addScaled(y + t * n, b.baseAddress!, 1, count: n) }
    }
  }
}

/// A LayerNorm with weight and bias.
struct LayerNormWeights: Sendable {
  var weight: [Float]
  var bias: [Float]
  var epsilon: Float

  /// Normalises each of `tokens` rows of `x` into `y` (may alias), rows split across the pool.
  func apply(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, pool: ComputePool) {
    let (xs, ys) = (UncheckedPointer(x), UncheckedMutablePointer(y))
    pool.parallelFor(tokens, minimumPerThread: 16) { range in apply(xs.pointer, rows: range, into: ys.pointer) }
  }

  private func apply(_ x: UnsafePointer<Float>, rows: Range<Int>, into y: UnsafeMutablePointer<Float>) {
    let n = weight.count
    for t in rows {
      let row = x + t * n
      let out = y + t * n
      var mean: Float = 0
      for i in 0..<n { mean += row[i] }
      mean /= Float(n)
      var variance: Float = 0
      for i in 0..<n {
        let d = row[i] - mean
        variance += d * d
      }
      variance /= Float(n)
      let inverse = 1 / (variance + epsilon).squareRoot()
      for i in 0..<n { out[i] = (row[i] - mean) * inverse * weight[i] + bias[i] }
    }
  }
}

struct VisionBlockWeights: Sendable {
  var norm1: LayerNormWeights
  var norm2: LayerNormWeights
  var qkv: AffineWeights
  var proj: AffineWeights
  var fc1: AffineWeights
  var fc2: AffineWeights
}

/// One image's patch grid in patches (`grid_thw`): `t` frames of `h × w` patches.
public struct PatchGrid: Sendable, Equatable {
  public var t: Int
  public var h: Int
  public var w: Int
  public init(t: Int, h: Int, w: Int) {
    self.t = t
    self.h = h
    self.w = w
  }
  /// Patches in the grid.
  public var patchCount: Int { t * h * w }
}

/// The Qwen3.5 vision tower (qwen35.md §4.2–4.6): patch embedding, interpolated learned positions, 2-D rotary,
/// bidirectional attention blocks per image, and the 2×2 patch merger into the text model's width.
public final class VisionEncoder: Sendable {
  public let config: VisionConfiguration
  let patchEmbed: AffineWeights
  /// The learned `[side², hidden]` position table, widened to fp32.
  let positionTable: [Float]
  let blocks: [VisionBlockWeights]
  let mergerNorm: LayerNormWeights
  let mergerFC1: AffineWeights
  let mergerFC2: AffineWeights
  /// Attention products with int8 dot products too, as the linear layers (`HeadAttention`; head sizes that are not a
  /// multiple of 32 stay fp32 there).
  let int8Attention: Bool
  /// Attention products with bf16 dot products, as the bf16 linear layers (`bf16Linears`).
  let bf16Attention: Bool

  /// Loads the vision tower from `store` (HF `model.visual.` or MLX `vision_tower.` names).
  /// `quantization` is an MLX folder's settings (its vision layers may be quantized too). `int8Linears` quantizes
  /// the blocks' and merger's linear layers to 8 bits at load and multiplies them with int8 activations (VNNI dot
  /// products, about 4× the fp32 rate); the patch embedding stays as stored. `bf16Linears` (without `int8Linears`)
  /// repacks bf16 linear layers into row panels multiplied with activations rounded to bf16 (twice the fp32 rate).
  public init(
    store: TensorStore, config c: VisionConfiguration, quantization: QuantizationSettings? = nil,
    int8Linears: Bool = false, bf16Linears: Bool = false
  ) throws {
    self.config = c
    int8Attention = int8Linears
    bf16Attention = bf16Linears && !int8Linears
    let prefix = store["vision_tower.patch_embed.proj.weight"] != nil ? "vision_tower." : "model.visual."
    let r = WeightReader(store: store, prefix: prefix, quantization: quantization)
    let h = c.hiddenSize
    func affine(_ name: String, _ rows: Int, _ columns: Int) throws -> AffineWeights {
      var weight = try r.matrix(name + ".weight", rows, columns)
      if int8Linears {
        weight = weight.quantizedAtLoad(bits: 8, interleave: true)
      } else if bf16Linears {
        weight = weight.packedAtLoad(bf16Activations: true)
      }
      return AffineWeights(weight: weight, bias: try r.vector(name + ".bias", rows))
    }
    func layerNorm(_ name: String) throws -> LayerNormWeights {
      LayerNormWeights(weight: try r.vector(name + ".weight", h), bias: try r.vector(name + ".bias", h), epsilon: 1e-6)
    }
    let patch = try r.tensor(prefix + "patch_embed.proj.weight")
    let hfShape = [h, c.inChannels, c.temporalPatchSize, c.patchSize, c.patchSize]
    let mlxShape = [h, c.temporalPatchSize, c.patchSize, c.patchSize, c.inChannels]
    let patchWeight: WeightMatrix
    if patch.shape == mlxShape && prefix == "vision_tower." {
      // MLX stores the Conv3d kernel channels-last; reorder to the (c, t, y, x) order of the flattened patches.
      let values = try patch.floats()
      let (t, p, channels) = (c.temporalPatchSize, c.patchSize, c.inChannels)
      var reordered = [Float](repeating: 0, count: values.count)
      for o in 0..<h {
        for ti in 0..<t {
          for y in 0..<p {
            for x in 0..<p {
              for ch in 0..<channels {
                let source = (((o * t + ti) * p + y) * p + x) * channels + ch
                let target = (((o * channels + ch) * t + ti) * p + y) * p + x
                reordered[target] = values[source]
              }
            }
          }
        }
      }
      patchWeight = WeightMatrix.owning(reordered, rows: h, columns: c.patchValueCount)
    } else {
      try r.checkShape(patch, hfShape)
      patchWeight = WeightReader.matrix(patch, rows: h, columns: c.patchValueCount)
    }
    patchEmbed = AffineWeights(weight: patchWeight, bias: try r.vector("patch_embed.proj.bias", h))
    positionTable = try r.vector(
      "pos_embed.weight", c.positionEmbeddingCount * h, shape: [c.positionEmbeddingCount, h])
    blocks = try (0..<c.depth).map { j in
      let p = "blocks.\(j)."
      return VisionBlockWeights(
        norm1: try layerNorm(p + "norm1"), norm2: try layerNorm(p + "norm2"),
        qkv: try affine(p + "attn.qkv", 3 * h, h), proj: try affine(p + "attn.proj", h, h),
        fc1: try affine(p + "mlp.linear_fc1", c.intermediateSize, h),
        fc2: try affine(p + "mlp.linear_fc2", h, c.intermediateSize))
    }
    let merged = h * c.spatialMergeSize * c.spatialMergeSize
    mergerNorm = try layerNorm("merger.norm")
    mergerFC1 = try affine("merger.linear_fc1", merged, merged)
    mergerFC2 = try affine("merger.linear_fc2", c.outHiddenSize, merged)
  }

  /// Encodes `pixelValues` (`[Σ patches, patchValueCount]`, images in order, each in 2×2-block patch order) into
  /// `[Σ patches / 4, outHiddenSize]` features, the rows that replace the images' `<|image_pad|>` embeddings.
  public func encode(pixelValues: [Float], grids: [PatchGrid], pool: ComputePool) throws -> [Float] {
    let c = config
    let h = c.hiddenSize
    let total = grids.reduce(0) { $0 + $1.patchCount }
    let mergeArea = c.spatialMergeSize * c.spatialMergeSize
    guard pixelValues.count == total * c.patchValueCount else {
      throw FolioError(
        .invalidArgument,
        "pixel values hold \(pixelValues.count) floats; the grids need \(total) × \(c.patchValueCount).")
    }
    guard grids.allSatisfy({ $0.h % c.spatialMergeSize == 0 && $0.w % c.spatialMergeSize == 0 && $0.t > 0 }) else {
      throw FolioError(.invalidArgument, "every patch grid must be a multiple of the merge size \(c.spatialMergeSize).")
    }
    let hidden = FloatBuffer(count: total * h)
    pixelValues.withUnsafeBufferPointer { pv in
      patchEmbed.apply(pv.baseAddress!, tokens: total, into: hidden.pointer, pool: pool)
    }
    let (rows, columns) = patchCoordinates(grids)
    addInterpolatedPositions(hidden, grids: grids)
    let rotary = VisionRotary(config: c, rows: rows, columns: columns)

    let normed = FloatBuffer(count: total * h)
    let qkv = FloatBuffer(count: total * 3 * h)
    let attended = FloatBuffer(count: total * h)
    let projected = FloatBuffer(count: total * h)
    let intermediate = FloatBuffer(count: total * c.intermediateSize)
    let width = c.intermediateSize
    for block in blocks {
      block.norm1.apply(hidden.pointer, tokens: total, into: normed.pointer, pool: pool)
      block.qkv.apply(normed.pointer, tokens: total, into: qkv.pointer, pool: pool)
      attend(qkv: qkv, grids: grids, rotary: rotary, into: attended, pool: pool)
      block.proj.apply(attended.pointer, tokens: total, into: projected.pointer, pool: pool)
      for i in 0..<(total * h) { hidden.pointer[i] += projected.pointer[i] }
      block.norm2.apply(hidden.pointer, tokens: total, into: normed.pointer, pool: pool)
      block.fc1.apply(normed.pointer, tokens: total, into: intermediate.pointer, pool: pool)
      pool.parallelFor(total, minimumPerThread: 16) { range in
        Elementwise.geluTanh(intermediate.pointer + range.lowerBound * width, count: range.count * width)
      }
      block.fc2.apply(intermediate.pointer, tokens: total, into: projected.pointer, pool: pool)
      for i in 0..<(total * h) { hidden.pointer[i] += projected.pointer[i] }
    }
    // Merger: LayerNorm per patch, then 4 consecutive patches (one 2×2 block) form one row.
    mergerNorm.apply(hidden.pointer, tokens: total, into: hidden.pointer, pool: pool)
    let mergedCount = total / mergeArea
    let mergedWidth = h * mergeArea
    let fc1 = FloatBuffer(count: mergedCount * mergedWidth)
    mergerFC1.apply(hidden.pointer, tokens: mergedCount, into: fc1.pointer, pool: pool)
    for i in 0..<(mergedCount * mergedWidth) { fc1.pointer[i] = Elementwise.geluErf(fc1.pointer[i]) }
    var features = [Float](repeating: 0, count: mergedCount * c.outHiddenSize)
    features.withUnsafeMutableBufferPointer {
      mergerFC2.apply(fc1.pointer, tokens: mergedCount, into: $0.baseAddress!, pool: pool)
    }
    return features
  }

  /// (row, column) of every patch in 2×2-block order (qwen35.md §4.1 step 5, §4.4).
  func patchCoordinates(_ grids: [PatchGrid]) -> (rows: [Int], columns: [Int]) {
    let m = config.spatialMergeSize
    var rows: [Int] = []
    var columns: [Int] = []
    for g in grids {
      for _ in 0..<g.t {
        for blockRow in 0..<(g.h / m) {
          for blockColumn in 0..<(g.w / m) {
            for dy in 0..<m {
              for dx in 0..<m {
                rows.append(blockRow * m + dy)
                columns.append(blockColumn * m + dx)
              }
            }
          }
        }
      }
    }
    return (rows, columns)
  }

  /// Adds the learned position table, bilinearly interpolated (align_corners) to each image's grid (§4.3).
  func addInterpolatedPositions(_ hidden: FloatBuffer, grids: [PatchGrid]) {
    let h = config.hiddenSize
    let side = config.positionGridSide
    let m = config.spatialMergeSize
    /// Taps and weights along one axis of length n.
    func taps(_ index: Int, _ n: Int) -> [(Int, Float)] {
      let source = Float(index) * Float(side - 1) / Float(max(n - 1, 1))
      let f = floorf(source)
      let lower = Int(f)
      let upper = lower + 1
      let wLower = 1 - abs(source - Float(lower))
      let wUpper = 1 - abs(source - Float(upper))
      return [(min(max(lower, 0), side - 1), wLower), (min(max(upper, 0), side - 1), wUpper)]
    }
    var patch = 0
    let sum = UnsafeMutablePointer<Float>.allocate(capacity: h)
    defer { sum.deallocate() }
    positionTable.withUnsafeBufferPointer { table in
      for g in grids {
        for _ in 0..<g.t {
          for blockRow in 0..<(g.h / m) {
            for blockColumn in 0..<(g.w / m) {
              for dy in 0..<m {
                for dx in 0..<m {
                  sum.initialize(repeating: 0, count: h)
                  for (r, wr) in taps(blockRow * m + dy, g.h) {
                    for (c, wc) in taps(blockColumn * m + dx, g.w) {
                      Elementwise.addScaled(sum, table.baseAddress! + (r * side + c) * h, wr * wc, count: h)
                    }
                  }
                  Elementwise.addScaled(hidden.pointer + patch * h, sum, 1, count: h)
                  patch += 1
                }
              }
            }
          }
        }
      }
    }
  }

  /// Bidirectional multi-head attention within each frame of each image, with 2-D rotary on q and k.
  func attend(qkv: FloatBuffer, grids: [PatchGrid], rotary: VisionRotary, into out: FloatBuffer, pool: ComputePool) {
    let h = config.hiddenSize
    let heads = config.heads
    let d = config.headDimension
    let total = grids.reduce(0) { $0 + $1.patchCount }
    // Rotate q and k in place: qkv rows are [Q all heads | K all heads | V all heads].
    for p in 0..<total {
      for head in 0..<heads {
        rotary.apply(qkv.pointer + p * 3 * h + head * d, patch: p)
        rotary.apply(qkv.pointer + p * 3 * h + h + head * d, patch: p)
      }
    }
    var segments: [Range<Int>] = []
    var start = 0
    for g in grids {
      for _ in 0..<g.t {
        segments.append(start..<(start + g.h * g.w))
        start += g.h * g.w
      }
    }
    let scale = 1 / Float(d).squareRoot()
    // Per image segment and head: gather K [n, d] and Vᵀ [d, n] contiguously, then for blocks of queries compute
    // S = Q·Kᵀ and O = softmax(S)·V with the blocked linear kernels. Memory stays O(block · n), not O(n²).
    let queryBlock = 64
    for segment in segments {
      let n = segment.count
      let keys = FloatBuffer(count: n * d)
      let valuesT = FloatBuffer(count: d * n)
      let queries = FloatBuffer(count: min(queryBlock, n) * d)
      let scores = FloatBuffer(count: min(queryBlock, n) * HeadAttention.padded(n))
      let output = FloatBuffer(count: min(queryBlock, n) * d)
      for head in 0..<heads {
        for (j, p) in segment.enumerated() {
          let row = qkv.pointer + p * 3 * h
          (keys.pointer + j * d).update(from: row + h + head * d, count: d)
          for c in 0..<d { valuesT.pointer[c * n + j] = row[2 * h + head * d + c] }
        }
        let products = HeadAttention(
          keys: keys, valuesT: valuesT, count: n, headDimension: d, int8: int8Attention, bf16: bf16Attention)
        var start = 0
        while start < n {
          let count = min(queryBlock, n - start)
          for i in 0..<count {
            let q = qkv.pointer + (segment.lowerBound + start + i) * 3 * h + head * d
            for c in 0..<d { queries.pointer[i * d + c] = q[c] * scale }
          }
          products.attend(queries.pointer, count: count, scores: scores.pointer, into: output.pointer, pool: pool)
          for i in 0..<count {
            (out.pointer + (segment.lowerBound + start + i) * h + head * d).update(
              from: output.pointer + i * d, count: d)
          }
          start += count
        }
      }
    }
  }

}

/// One head's bidirectional attention over `count` keys: S = Q·Kᵀ, softmax per query, O = P·V, with the products
/// through the linear kernels. With `int8`, K and Vᵀ are held as 8-bit weights repacked for int8 dot products (Vᵀ
/// zero-padded to whole groups of 64 keys) and the queries and probabilities are rounded to int8 per group: attention
/// over a page's ~9000 patches is most of the vision tower's work, and int8 runs at about 4× the fp32 rate.
struct HeadAttention {
  let keys: WeightMatrix
  let valuesT: WeightMatrix
  let count: Int

  /// Key counts rounded up to whole groups of 64 for the int8 value product.
  static func padded(_ n: Int) -> Int { (n + 63) / 64 * 64 }

  /// K `[count, headDimension]` and Vᵀ `[headDimension, count]` of one head (contiguous, fp32). With `bf16` (and
  /// not `int8`), K and Vᵀ are rounded to bf16 and the products run as bf16 dot products (queries and probabilities
  /// rounded to bf16), twice the fp32 rate.
  init(keys: FloatBuffer, valuesT: FloatBuffer, count n: Int, headDimension d: Int, int8: Bool, bf16: Bool = false) {
    count = n
    let k = WeightMatrix(base: UnsafeRawPointer(keys.pointer), rows: n, columns: d, elementType: .float32, owner: keys)
    let v = WeightMatrix(
      base: UnsafeRawPointer(valuesT.pointer), rows: d, columns: n, elementType: .float32, owner: valuesT)
    if bf16, !int8, let kb = WeightMatrix.bf16Panels(rounding: keys.pointer, rows: n, columns: d),
      let vb = WeightMatrix.bf16Panels(rounding: valuesT.pointer, rows: d, columns: n)
    {
      (self.keys, self.valuesT) = (kb, vb)
      return
    }
    guard int8, d % 32 == 0 else {
      (self.keys, self.valuesT) = (k, v)
      return
    }
    // Zero keys pad K to whole groups too, so each query's scores are already a row of the padded value product's
    // input (their probabilities are set to zero after the softmax). FloatBuffers start zeroed.
    let padded = Self.padded(n)
    let keysPadded = FloatBuffer(count: padded * d)
    keysPadded.pointer.update(from: keys.pointer, count: n * d)
    let kPadded = WeightMatrix(
      base: UnsafeRawPointer(keysPadded.pointer), rows: padded, columns: d, elementType: .float32, owner: keysPadded)
    let valuesPadded = FloatBuffer(count: d * padded)
    for c in 0..<d { (valuesPadded.pointer + c * padded).update(from: valuesT.pointer + c * n, count: n) }
    let vPadded = WeightMatrix(
      base: UnsafeRawPointer(valuesPadded.pointer), rows: d, columns: padded, elementType: .float32,
      owner: valuesPadded)
    guard let kq = kPadded.quantized(bits: 8, groupSize: d % 64 == 0 ? 64 : 32).quantization,
      let vq = vPadded.quantized(bits: 8, groupSize: 64).quantization
    else {
      (self.keys, self.valuesT) = (k, v)
      return
    }
    self.keys = kq.interleaved().matrix(elementType: .float32)
    self.valuesT = vq.interleaved().matrix(elementType: .float32)
  }

  /// Attends `queries` (`[n, d]`, already scaled by 1/√d) into `output` (`[n, d]`); `scores` holds at least
  /// n × `padded(count)` floats.
  func attend(
    _ queries: UnsafePointer<Float>, count n: Int, scores: UnsafeMutablePointer<Float>,
    into output: UnsafeMutablePointer<Float>, pool: ComputePool
  ) {
    // Rows of `width` scores (the keys padded with zero keys in the int8 path); the padding keys weigh zero.
    let width = valuesT.columns
    MatMul.linear(queries, tokens: n, weight: keys, into: scores, pool: pool)
    pool.parallelFor(n) { rows in
      for i in rows {
        Elementwise.softmax(scores + i * width, count: count)
        if width > count { (scores + i * width + count).update(repeating: 0, count: width - count) }
      }
    }
    MatMul.linear(scores, tokens: n, weight: valuesT, into: output, pool: pool)
  }
}

/// The vision blocks' 2-D rotary: per patch, `cat(row·f, col·f)` duplicated over the head (§4.4).
struct VisionRotary {
  let cos: [Float]
  let sin: [Float]
  let half: Int

  init(config: VisionConfiguration, rows: [Int], columns: [Int]) {
    let d = config.headDimension
    half = d / 2
    let quarter = d / 4
    let dim = Float(half)
    let theta = Float(config.ropeTheta)
    let inverse = (0..<quarter).map { i in 1 / powf(theta, Float(2 * i) / dim) }
    var cosines = [Float](repeating: 0, count: rows.count * half)
    var sines = cosines
    for p in rows.indices {
      for i in 0..<quarter {
        let a = Float(rows[p]) * inverse[i]
        let b = Float(columns[p]) * inverse[i]
        cosines[p * half + i] = Foundation.cos(a)
        sines[p * half + i] = Foundation.sin(a)
        cosines[p * half + quarter + i] = Foundation.cos(b)
        sines[p * half + quarter + i] = Foundation.sin(b)
      }
    }
    cos = cosines
    sin = sines
  }

  /// Rotates one head (width `2·half`) of patch `p` with `rotate_half`.
  func apply(_ x: UnsafeMutablePointer<Float>, patch p: Int) {
    cos.withUnsafeBufferPointer { c in
      sin.withUnsafeBufferPointer { s in
        Elementwise.rotateHalf(x, half: half, cos: c.baseAddress! + p * half, sin: s.baseAddress! + p * half)
      }
    }
  }
}
