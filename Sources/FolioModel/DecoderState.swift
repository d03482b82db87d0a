/// Everything the decoder remembers between calls: per-layer convolution and recurrent state for Gated DeltaNet
/// layers, keys and values for full-attention layers, and the position reached.
///
/// A value type: copying it (e.g. to reuse a shared prompt prefix) copies the state.
public struct DecoderState: Sendable {
  /// Per-layer state, indexed like the decoder's layers.
  enum Layer: Sendable {
    /// `conv`: the last K−1 *pre-convolution* projections, `[K−1, conv_dim]`, oldest first (zeros before the start);
    /// `recurrent`: fp32 `[nv, dk, dv]`.
    case linear(conv: [Float], recurrent: [Float])
    /// Post-norm, post-RoPE keys and values, `[tokens, kv_heads·D]`.
    case full(keys: [Float], values: [Float])
  }

  var layers: [Layer]
  /// Tokens processed so far (the next token's cache index).
  public internal(set) var tokenCount: Int = 0
  /// Offset added to text positions after an image (`rope_delta`, qwen35.md §3.2); 0 for text-only prompts.
  public var positionDelta: Int = 0

  /// Fresh state for a model with `config`.
  public init(config c: TextConfiguration) {
    layers = c.layerKinds.map { kind in
      switch kind {
      case .linearAttention:
        .linear(
          conv: [Float](repeating: 0, count: (c.convKernelSize - 1) * c.linearConvDimension),
          recurrent: [Float](
            repeating: 0, count: c.linearValueHeads * c.linearKeyHeadDimension * c.linearValueHeadDimension))
      case .fullAttention:
        .full(keys: [], values: [])
      }
    }
  }
}
