import FolioBase
import FolioKernels
import FolioTensors
import Foundation

/// The Qwen3.5 text decoder: embeddings, hybrid Gated DeltaNet / gated attention layers, dense or sparse MLPs,
/// final norm and LM head (qwen35.md §2). Weights stay memory-mapped in their stored type; activations are fp32.
public final class TextModel: Sendable {
  public let config: TextConfiguration
  let weights: TextWeights
  let rotary: TextRotary

  init(config: TextConfiguration, weights: TextWeights) {
    self.config = config
    self.weights = weights
    rotary = TextRotary(config: config)
  }

  /// Loads the decoder weights of `store`, validated against `config`; with `quantizeBits` (4, 6 or 8) the linear
  /// layers are quantized at load (MLX affine, groups of 64) instead of being used in their stored type.
  /// `activations` picks how quantized layers multiply: `.int8` repacks them once for int8 dot products.
  public convenience init(
    store: TensorStore, config: TextConfiguration, quantization: QuantizationSettings? = nil, quantizeBits: Int? = nil,
    activations: QuantizedActivations = .fastest
  ) throws {
    var weights = try TextWeights.load(
      from: store, config: config, quantization: quantization, interleave: activations.int8Quantized)
    if let bits = quantizeBits {
      weights = weights.quantized(bits: bits, interleave: activations.int8Quantized)
    } else {
      weights = weights.panelPacked(bf16Activations: activations.bf16Prompts)
    }
    self.init(config: config, weights: weights)
  }

  /// A new, empty state for this model.
  public func makeState() -> DecoderState { DecoderState(config: config) }

  /// Runs `tokens` through the decoder after what `state` has seen and returns the logits of the last position.
  public func forward(tokens: [Int], state: inout DecoderState, pool: ComputePool) throws -> [Float] {
    guard !tokens.isEmpty else { throw FolioError(.invalidArgument, "forward needs at least one token.") }
    let hidden = try embed(tokens) { _, _ in false }
    let start = state.tokenCount + state.positionDelta
    let positions = (0..<tokens.count).map { PositionTriple(uniform: start + $0) }
    return forward(embeddings: hidden, count: tokens.count, positions: positions, state: &state, pool: pool)
  }

  /// Embeddings of `tokens` (`[count, hidden]`), checking every id against the vocabulary. `substitute(t, row)`
  /// may fill row `t` itself (image features) and return true; otherwise the token's embedding is copied.
  func embed(
    _ tokens: [Int], substitute: (Int, UnsafeMutablePointer<Float>) -> Bool
  ) throws -> FloatBuffer {
    let h = config.hiddenSize
    let hidden = FloatBuffer(count: tokens.count * h)
    for (t, id) in tokens.enumerated() {
      guard id >= 0, id < config.vocabularySize else {
        throw FolioError(.invalidArgument, "token id \(id) is outside the vocabulary (0..<\(config.vocabularySize)).")
      }
      if !substitute(t, hidden.pointer + t * h) { weights.embedTokens.copyRow(id, into: hidden.pointer + t * h) }
    }
    return hidden
  }

  /// Longest run of positions one pass holds; longer prompts are prefilled in runs of this many (as llama.cpp's
  /// micro-batches), so activation buffers stay bounded at long contexts while the state carries over exactly.
  public static let prefillChunk = 512

  /// Runs `count` input embeddings (`[count, hidden]`, consumed) with explicit (t, h, w) positions and returns the
  /// logits of the last position. Multimodal prompts use this with image features in place of pad embeddings.
  /// `chunk` caps the positions per pass (see `prefillChunk`).
  public func forward(
    embeddings hidden: FloatBuffer, count: Int, positions: [PositionTriple], state: inout DecoderState,
    pool: ComputePool, chunk: Int = TextModel.prefillChunk
  ) -> [Float] {
    guard count > chunk, chunk > 0 else {
      return forwardPass(embeddings: hidden, count: count, positions: positions, state: &state, pool: pool)
    }
    let h = config.hiddenSize
    var logits: [Float] = []
    var start = 0
    while start < count {
      let n = min(chunk, count - start)
      let part = FloatBuffer(count: n * h)
      part.pointer.update(from: hidden.pointer + start * h, count: n * h)
      logits = forwardPass(
        embeddings: part, count: n, positions: Array(positions[start..<(start + n)]), state: &state, pool: pool)
      start += n
    }
    return logits
  }

  /// One pass over `count` positions.
  private func forwardPass(
    embeddings hidden: FloatBuffer, count: Int, positions: [PositionTriple], state: inout DecoderState,
    pool: ComputePool
  ) -> [Float] {
    let h = config.hiddenSize
    let normed = FloatBuffer(count: count * h)
    let mixed = FloatBuffer(count: count * h)
    let table = rotary.table(for: positions)
    for (i, layer) in weights.layers.enumerated() {
      copyNormed(hidden, into: normed, count: count, scale: layer.inputNormScale, pool: pool)
      // The layer's state is taken out of the array (leaving an empty one) so its buffers are uniquely referenced
      // and updated in place: a second reference would copy the recurrent state or the whole KV cache per token.
      var layerState = DecoderState.Layer.linear(conv: [], recurrent: [])
      swap(&layerState, &state.layers[i])
      switch layer.mixer {
      case .linear(let w):
        guard case .linear(var conv, var recurrent) = consume layerState else {
          preconditionFailure("decoder state does not match the model's layer kinds")
        }
        GatedDeltaNet(config: config, weights: w).forward(
          normed.pointer, tokens: count, conv: &conv, recurrent: &recurrent, output: mixed.pointer, pool: pool)
        state.layers[i] = .linear(conv: conv, recurrent: recurrent)
      case .full(let w):
        guard case .full(var keys, var values) = consume layerState else {
          preconditionFailure("decoder state does not match the model's layer kinds")
        }
        GatedAttention(config: config, weights: w).forward(
          normed.pointer, tokens: count, rotary: table, keys: &keys, values: &values, output: mixed.pointer,
          pool: pool)
        state.layers[i] = .full(keys: keys, values: values)
      }
      add(mixed, into: hidden, rows: count, pool: pool)
      copyNormed(hidden, into: normed, count: count, scale: layer.postAttentionNormScale, pool: pool)
      switch layer.feedForward {
      case .dense(let w):
        FeedForward.dense(w, normed.pointer, tokens: count, hidden: h, output: mixed.pointer, pool: pool)
      case .sparse(let w):
        FeedForward.sparse(w, normed.pointer, tokens: count, hidden: h, output: mixed.pointer, pool: pool)
      }
      add(mixed, into: hidden, rows: count, pool: pool)
    }
    state.tokenCount += count
    let last = hidden.pointer + (count - 1) * h
    weights.finalNormScale.withUnsafeBufferPointer {
      Elementwise.rmsNorm(last, count: h, scale: $0.baseAddress!, epsilon: config.rmsNormEpsilon)
    }
    var logits = [Float](repeating: 0, count: config.vocabularySize)
    logits.withUnsafeMutableBufferPointer {
      MatMul.linear(last, tokens: 1, weight: weights.lmHead, into: $0.baseAddress!, pool: pool)
    }
    return logits
  }

  /// Row by row (tokens split across the pool): `destination = rmsNorm(source) · scale`.
  private func copyNormed(
    _ source: FloatBuffer, into destination: FloatBuffer, count: Int, scale: [Float], pool: ComputePool
  ) {
    let h = config.hiddenSize
    scale.withUnsafeBufferPointer { s in
      pool.parallelFor(count, minimumPerThread: GatedAttention.tokensPerPart) { range in
        for t in range {
          (destination.pointer + t * h).update(from: source.pointer + t * h, count: h)
          Elementwise.rmsNorm(
            destination.pointer + t * h, count: h, scale: s.baseAddress!, epsilon: config.rmsNormEpsilon)
        }
      }
    }
  }

  /// The residual connection, `destination += source` over `rows` rows.
  private func add(_ source: FloatBuffer, into destination: FloatBuffer, rows: Int, pool: ComputePool) {
    let h = config.hiddenSize
    pool.parallelFor(rows, minimumPerThread: GatedAttention.tokensPerPart) { range in
      for i in (range.lowerBound * h)..<(range.upperBound * h) { destination.pointer[i] += source.pointer[i] }
    }
  }
}

/// A token's (temporal, height, width) rotary position; equal rows for text.
public struct PositionTriple: Sendable, Equatable {
  public var t: Int
  public var h: Int
  public var w: Int
  public init(t: Int, h: Int, w: Int) {
    self.t = t
    self.h = h
    self.w = w
  }
  /// A text position: all three rows equal.
  public init(uniform p: Int) { self.init(t: p, h: p, w: p) }
}
