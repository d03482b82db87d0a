import FolioKernels
import Foundation

/// A Gated DeltaNet layer (qwen35.md §2.4): input projections, causal depthwise convolution with carried state,
/// the gated delta rule (chunked for several tokens, recurrent for one), gated RMSNorm and output projection.
struct GatedDeltaNet {
  let config: TextConfiguration
  let weights: GatedDeltaNetWeights

  /// Chunk length of the chunked delta rule, as in the reference (`torch_chunk_gated_delta_rule`).
  static let chunkLength = 64

  func forward(
    _ x: UnsafePointer<Float>, tokens: Int, conv: inout [Float], recurrent: inout [Float],
    output: UnsafeMutablePointer<Float>, pool: ComputePool
  ) {
    let nk = config.linearKeyHeads, nv = config.linearValueHeads
    let dk = config.linearKeyHeadDimension, dv = config.linearValueHeadDimension
    let channels = config.linearConvDimension
    let mixed = FloatBuffer(count: tokens * channels)
    let z = FloatBuffer(count: tokens * nv * dv)
    let b = FloatBuffer(count: tokens * nv)
    let a = FloatBuffer(count: tokens * nv)
    MatMul.linear(x, tokens: tokens, weight: weights.inProjQKV, into: mixed.pointer, pool: pool)
    MatMul.linear(x, tokens: tokens, weight: weights.inProjZ, into: z.pointer, pool: pool)
    MatMul.linear(x, tokens: tokens, weight: weights.inProjB, into: b.pointer, pool: pool)
    MatMul.linear(x, tokens: tokens, weight: weights.inProjA, into: a.pointer, pool: pool)

    let activated = convolve(mixed, tokens: tokens, state: &conv, pool: pool)

    // Per token and value head: beta = sigmoid(b), g = −exp(A_log)·softplus(a + dt_bias) (fp32).
    let beta = FloatBuffer(count: tokens * nv)
    let g = FloatBuffer(count: tokens * nv)
    for t in 0..<tokens {
      for head in 0..<nv {
        let i = t * nv + head
        beta.pointer[i] = Elementwise.sigmoid(b.pointer[i])
        g.pointer[i] = weights.negativeDecayRate[head] * Elementwise.softplus(a.pointer[i] + weights.dtBias[head])
      }
    }
    // q and k are L2-normalised per head (eps 1e-6 inside the sum), q further scaled by dk^-1/2.
    let queryScale = 1 / Float(dk).squareRoot()
    for t in 0..<tokens {
      let row = activated.pointer + t * channels
      for head in 0..<nk {
        let q = row + head * dk
        Elementwise.l2Normalize(q, count: dk)
        for i in 0..<dk { q[i] *= queryScale }
        Elementwise.l2Normalize(row + nk * dk + head * dk, count: dk)
      }
    }

    let core = FloatBuffer(count: tokens * nv * dv)
    let headsPerKey = nv / nk
    recurrent.withUnsafeMutableBufferPointer { stateBuffer in
      let states = UncheckedMutablePointer(stateBuffer.baseAddress!)
      pool.parallelFor(nv) { range in
        for head in range {
          let rule = DeltaRuleHead(
            activated: activated.pointer, channels: channels, tokens: tokens,
            queryOffset: (head / headsPerKey) * dk, keyOffset: nk * dk + (head / headsPerKey) * dk,
            valueOffset: 2 * nk * dk + head * dv, dk: dk, dv: dv,
            beta: beta.pointer + head, g: g.pointer + head, stride: nv,
            output: core.pointer + head * dv, outputStride: nv * dv)
          let state = states.pointer + head * dk * dv
          if tokens == 1 { rule.recurrent(state: state) } else { rule.chunked(state: state, chunk: Self.chunkLength) }
        }
      }
    }

    // Gated RMSNorm per head: norm(o)·w·silu(z).
    weights.normWeight.withUnsafeBufferPointer { w in
      for item in 0..<(tokens * nv) {
        let o = core.pointer + item * dv
        Elementwise.rmsNorm(o, count: dv, scale: w.baseAddress!, epsilon: config.rmsNormEpsilon)
        let gate = z.pointer + item * dv
        Elementwise.siluMultiply(gate, o, into: o, count: dv)
      }
    }
    MatMul.linear(core.pointer, tokens: tokens, weight: weights.outProj, into: output, pool: pool)
  }

  /// Causal depthwise convolution over the carried K−1 previous inputs and the new ones, then SiLU.
  /// Updates `state` to the last K−1 pre-convolution inputs. Tokens are split across the pool; the taps are
  /// transposed to `[K, channels]` so the inner loop runs along channels.
  private func convolve(_ mixed: FloatBuffer, tokens: Int, state: inout [Float], pool: ComputePool) -> FloatBuffer {
    let channels = config.linearConvDimension
    let k = config.convKernelSize
    let history = k - 1
    let taps = FloatBuffer(count: k * channels)
    for c in 0..<channels {
      for j in 0..<k { taps.pointer[j * channels + c] = weights.convTaps[c * k + j] }
    }
    let out = FloatBuffer(count: tokens * channels)
    state.withUnsafeBufferPointer { carried in
      let carried = UncheckedPointer(carried.baseAddress!)
      pool.parallelFor(tokens, minimumPerThread: 16) { range in
        for t in range {
          let dst = out.pointer + t * channels
          dst.update(repeating: 0, count: channels)
          for j in 0..<k {
            // Row t + j of the timeline [carried history | new rows].
            let index = t + j
            let row: UnsafePointer<Float> =
              index < history
              ? carried.pointer + index * channels : UnsafePointer(mixed.pointer + (index - history) * channels)
            Elementwise.multiplyAdd(dst, taps.pointer + j * channels, row, count: channels)
          }
          Elementwise.siluMultiply(dst, nil, into: dst, count: channels)
        }
      }
    }
    // The new history: the last K−1 rows of the timeline.
    var next = [Float](repeating: 0, count: history * channels)
    for r in 0..<history {
      let index = tokens + r
      let source =
        index < history
        ? Array(state[(index * channels)..<((index + 1) * channels)])
        : Array(UnsafeBufferPointer(start: mixed.pointer + (index - history) * channels, count: channels))
      next.replaceSubrange((r * channels)..<((r + 1) * channels), with: source)
    }
    state = next
    return out
  }
}

/// A mutable pointer shared across the threads of one parallel call, each touching its own part.
struct UncheckedMutablePointer: @unchecked Sendable {
  let pointer: UnsafeMutablePointer<Float>
  init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}

/// The gated delta rule for one value head over a run of tokens, in fp32 (qwen35.md §2.4.1–2.4.2).
struct DeltaRuleHead {
  /// Activated, normalised `[tokens, channels]` rows holding q, k and v.
  let activated: UnsafeMutablePointer<Float>
  let channels: Int
  let tokens: Int
  let queryOffset: Int
  let keyOffset: Int
  let valueOffset: Int
  let dk: Int
  let dv: Int
  /// Per-token beta and log-decay g, `stride` apart.
  let beta: UnsafeMutablePointer<Float>
  let g: UnsafeMutablePointer<Float>
  let stride: Int
  let output: UnsafeMutablePointer<Float>
  let outputStride: Int

  @inline(__always) func q(_ t: Int) -> UnsafeMutablePointer<Float> { activated + t * channels + queryOffset }
  @inline(__always) func k(_ t: Int) -> UnsafeMutablePointer<Float> { activated + t * channels + keyOffset }
  @inline(__always) func v(_ t: Int) -> UnsafeMutablePointer<Float> { activated + t * channels + valueOffset }

  /// Token by token: `S ← S·e^g; δ = (v − Sᵀk)·β; S ← S + k⊗δ; o = Sᵀq`, with S `[dk, dv]`.
  func recurrent(state s: UnsafeMutablePointer<Float>) {
    let delta = UnsafeMutablePointer<Float>.allocate(capacity: dv)
    defer { delta.deallocate() }
    for t in 0..<tokens {
      let decay = exp(g[t * stride])
      for i in 0..<(dk * dv) { s[i] *= decay }
      let kt = k(t), vt = v(t), qt = q(t)
      for j in 0..<dv { delta[j] = 0 }
      for i in 0..<dk { Elementwise.addScaled(delta, s + i * dv, kt[i], count: dv) }
      let b = beta[t * stride]
      for j in 0..<dv { delta[j] = (vt[j] - delta[j]) * b }
      for i in 0..<dk { Elementwise.addScaled(s + i * dv, delta, kt[i], count: dv) }
      let o = output + t * outputStride
      for j in 0..<dv { o[j] = 0 }
      for i in 0..<dk { Elementwise.addScaled(o, s + i * dv, qt[i], count: dv) }
    }
  }

  /// The chunked (WY) form over chunks of `chunk` tokens. A final short chunk is processed at its own length,
  /// which equals the reference's zero padding: padded rows have k = β = g = 0 and cannot affect real rows.
  func chunked(state s: UnsafeMutablePointer<Float>, chunk: Int) {
    let gamma = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
    let attention = UnsafeMutablePointer<Float>.allocate(capacity: chunk * chunk)
    let u = UnsafeMutablePointer<Float>.allocate(capacity: chunk * dv)
    let w = UnsafeMutablePointer<Float>.allocate(capacity: chunk * dk)
    let newValues = UnsafeMutablePointer<Float>.allocate(capacity: chunk * dv)
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(dk, dv))
    defer {
      gamma.deallocate(); attention.deallocate(); u.deallocate(); w.deallocate(); newValues.deallocate()
      scratch.deallocate()
    }
    var start = 0
    while start < tokens {
      let n = min(chunk, tokens - start)
      var running: Float = 0
      for i in 0..<n {
        running += g[(start + i) * stride]
        gamma[i] = running
      }
      // A[i][j] = β_i (k_i·k_j) e^{γ_i−γ_j} for j < i; solve (I + A) U = βV and (I + A) W = β e^γ K by
      // forward substitution (the reference inverts the same unit lower-triangular matrix).
      for i in 0..<n {
        let bi = beta[(start + i) * stride]
        let ki = k(start + i)
        for j in 0..<i {
          attention[i * chunk + j] = bi * Dot.float(ki, k(start + j), count: dk) * exp(gamma[i] - gamma[j])
        }
        let ui = u + i * dv, vi = v(start + i)
        for c in 0..<dv { ui[c] = bi * vi[c] }
        let wi = w + i * dk
        let scale = bi * exp(gamma[i])
        for c in 0..<dk { wi[c] = scale * ki[c] }
        for j in 0..<i {
          let aij = attention[i * chunk + j]
          Elementwise.addScaled(ui, u + j * dv, -aij, count: dv)
          Elementwise.addScaled(wi, w + j * dk, -aij, count: dk)
        }
      }
      // Vn = U − W S;  O_i = e^{γ_i} q_i S + Σ_{j≤i} (q_i·k_j) e^{γ_i−γ_j} Vn_j.
      for i in 0..<n {
        let vn = newValues + i * dv
        vn.update(from: u + i * dv, count: dv)
        let wi = w + i * dk
        for r in 0..<dk { Elementwise.addScaled(vn, s + r * dv, -wi[r], count: dv) }
      }
      for i in 0..<n {
        let qi = q(start + i)
        let o = output + (start + i) * outputStride
        for c in 0..<dv { o[c] = 0 }
        for r in 0..<dk { Elementwise.addScaled(o, s + r * dv, qi[r], count: dv) }
        let decay = exp(gamma[i])
        for c in 0..<dv { o[c] *= decay }
        for j in 0...i {
          let weight = Dot.float(qi, k(start + j), count: dk) * exp(gamma[i] - gamma[j])
          Elementwise.addScaled(o, newValues + j * dv, weight, count: dv)
        }
      }
      // S ← e^{γ_last} S + Σ_j e^{γ_last−γ_j} k_j ⊗ Vn_j.
      let last = gamma[n - 1]
      let total = exp(last)
      for i in 0..<(dk * dv) { s[i] *= total }
      for j in 0..<n {
        let kj = k(start + j)
        let factor = exp(last - gamma[j])
        for r in 0..<dk { Elementwise.addScaled(s + r * dv, newValues + j * dv, kj[r] * factor, count: dv) }
      }
      start += n
    }
  }
}
