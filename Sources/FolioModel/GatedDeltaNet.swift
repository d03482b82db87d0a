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
    MatMul.linear(
      x, tokens: tokens, weights: [weights.inProjQKV, weights.inProjZ, weights.inProjB, weights.inProjA],
      into: [mixed.pointer, z.pointer, b.pointer, a.pointer], pool: pool)

    let activated = convolve(mixed, tokens: tokens, state: &conv, pool: pool)

    // Per token and value head: beta = sigmoid(b), g = −exp(A_log)·softplus(a + dt_bias) (fp32).
    let beta = FloatBuffer(count: tokens * nv)
    let g = FloatBuffer(count: tokens * nv)
    // q and k are L2-normalised per head (eps 1e-6 inside the sum), q further scaled by dk^-1/2.
    let queryScale = 1 / Float(dk).squareRoot()
    pool.parallelFor(tokens, minimumPerThread: GatedAttention.tokensPerPart) { range in
      for t in range {
        for head in 0..<nv {
          let i = t * nv + head
          beta.pointer[i] = Elementwise.sigmoid(b.pointer[i])
          g.pointer[i] = weights.negativeDecayRate[head] * Elementwise.softplus(a.pointer[i] + weights.dtBias[head])
        }
        let row = activated.pointer + t * channels
        for head in 0..<nk {
          let q = row + head * dk
          Elementwise.l2Normalize(q, count: dk)
          for i in 0..<dk { q[i] *= queryScale }
          Elementwise.l2Normalize(row + nk * dk + head * dk, count: dk)
        }
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
      pool.parallelFor(tokens * nv, minimumPerThread: GatedAttention.tokensPerPart * nv) { range in
        for item in range {
          let o = core.pointer + item * dv
          Elementwise.rmsNorm(o, count: dv, scale: w.baseAddress!, epsilon: config.rmsNormEpsilon)
          let gate = z.pointer + item * dv
          Elementwise.siluMultiply(gate, o, into: o, count: dv)
        }
      }
    }
    MatMul.linear(core.pointer, tokens: tokens, weight: weights.outProj, into: output, pool: pool)
  }

  /// Causal depthwise convolution over the carried K−1 previous inputs and the new ones, then SiLU.
  /// Updates `state` to the last K−1 pre-convolution inputs. Tokens are split across the pool; the taps are
  /// stored `[K, channels]` so the inner loop runs along channels.
  private func convolve(_ mixed: FloatBuffer, tokens: Int, state: inout [Float], pool: ComputePool) -> FloatBuffer {
    let channels = config.linearConvDimension
    let k = config.convKernelSize
    let history = k - 1
    let out = FloatBuffer(count: tokens * channels)
    weights.convTaps.withUnsafeBufferPointer { taps in
      state.withUnsafeBufferPointer { carried in
        let (taps, carried) = (UncheckedPointer(taps.baseAddress!), UncheckedPointer(carried.baseAddress!))
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
    }
    // The new history, in place: the last K−1 rows of the timeline (older carried rows move up first).
    state.withUnsafeMutableBufferPointer { carried in
      let base = carried.baseAddress!
      for r in 0..<history {
        let index = tokens + r
        let source =
          index < history
          ? UnsafePointer(base + index * channels) : UnsafePointer(mixed.pointer + (index - history) * channels)
        (base + r * channels).update(from: source, count: channels)
      }
    }
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
    // Two passes over S per token (18 layers of states do not stay in cache): one read-only pass for a = Sᵀk and
    // b = Sᵀq of the old state, then with δ = β(v − e^g·a) the output is o = e^g·b + (k·q)·δ and one read-write
    // pass applies S ← e^g·S + k⊗δ.
    let projected = UnsafeMutablePointer<Float>.allocate(capacity: dv)
    defer { projected.deallocate() }
    for t in 0..<tokens {
      let decay = exp(g[t * stride])
      let kt = k(t), vt = v(t), qt = q(t)
      delta.update(repeating: 0, count: dv)
      projected.update(repeating: 0, count: dv)
      var kq: Float = 0
      for i in 0..<dk {
        Elementwise.addScaled2(delta, projected, s + i * dv, kt[i], qt[i], count: dv)
        kq += kt[i] * qt[i]
      }
      let b = beta[t * stride]
      let o = output + t * outputStride
      for j in 0..<dv {
        delta[j] = (vt[j] - decay * delta[j]) * b
        o[j] = decay * projected[j] + kq * delta[j]
      }
      for i in 0..<dk { Elementwise.scaleAdd(s + i * dv, by: decay, delta, kt[i], count: dv) }
    }
  }

  /// The chunked (WY) form over chunks of `chunk` tokens. A final short chunk is processed at its own length,
  /// which equals the reference's zero padding: padded rows have k = β = g = 0 and cannot affect real rows.
  func chunked(state s: UnsafeMutablePointer<Float>, chunk: Int) {
    let buffers = ChunkBuffers(chunk: chunk, dk: dk, dv: dv)
    defer { buffers.deallocate() }
    // The chunks work on Sᵀ [dv, dk], the layout in which their products take the state.
    transpose(s, rows: dk, columns: dv, rowStride: dv, into: buffers.stateT)
    var start = 0
    while start < tokens {
      let n = min(chunk, tokens - start)
      chunkStep(start: start, count: n, buffers)
      start += n
    }
    transpose(buffers.stateT, rows: dv, columns: dk, rowStride: dk, into: s)
  }

  /// One chunk of n tokens, with γ the running sum of g over the chunk and S the `[dk, dv]` state (held as Sᵀ):
  /// A = β_i (k_i·k_j) e^{γ_i−γ_j} (j < i),  T = (I + A)⁻¹,  Vn = U − W·S with U = T·βV and W = T·βe^γK,
  /// O = e^γ Q·S + P·Vn with P = (q_i·k_j) e^{γ_i−γ_j} (j ≤ i),  S ← e^{γ_last} S + Σ_j e^{γ_last−γ_j} k_j ⊗ Vn_j.
  /// The products run in the blocked fp32 kernel on this thread (the heads are already split across the pool),
  /// on gathered or transposed copies that put each product's contraction innermost in both operands.
  private func chunkStep(start: Int, count n: Int, _ b: ChunkBuffers) {
    var running: Float = 0
    for i in 0..<n {
      running += g[(start + i) * stride]
      b.gamma[i] = running
      b.betas[i] = beta[(start + i) * stride]
    }
    // e^{γ_i−γ_j} from the difference: over a chunk γ can fall far enough for e^{−γ_j} alone to overflow.
    for i in 0..<n {
      for j in 0...i { b.decay[i * n + j] = exp(b.gamma[i] - b.gamma[j]) }
    }
    // Contiguous q, k and βe^γk rows, and βv transposed.
    for i in 0..<n {
      let qi = q(start + i), ki = k(start + i)
      (b.queries + i * dk).update(from: qi, count: dk)
      (b.keys + i * dk).update(from: ki, count: dk)
      let keyScale = b.betas[i] * exp(b.gamma[i])
      let scaledKey = b.scaledKeys + i * dk
      for r in 0..<dk { scaledKey[r] = keyScale * ki[r] }
    }
    transpose(v(start), rows: n, columns: dv, rowStride: channels, scales: b.betas, into: b.valuesT)
    MatMul.product(b.keys, tokens: n, weights: b.keys, rows: n, columns: dk, into: b.keyProducts, stride: n)
    MatMul.product(b.queries, tokens: n, weights: b.keys, rows: n, columns: dk, into: b.queryKeyProducts, stride: n)

    // T by forward substitution, as the reference builds it: row T_i = e_i − Σ_{j<i} A_ij T_j (T_j ends at j).
    for i in 0..<n {
      let ti = b.inverse + i * n
      for m in 0..<n { ti[m] = 0 }
      ti[i] = 1
      for j in 0..<i {
        let aij = b.betas[i] * b.keyProducts[i * n + j] * b.decay[i * n + j]
        Elementwise.addScaled(ti, b.inverse + j * n, -aij, count: j + 1)
      }
    }
    // Vn = U − W·S = T·(βV − βe^γK·S): factoring T out saves a product. Computed as Vnᵀ [dv, n], the layout
    // in which the products below take it.
    MatMul.product(b.stateT, tokens: dv, weights: b.scaledKeys, rows: n, columns: dk, into: b.correction, stride: n)
    for e in 0..<(dv * n) { b.valuesT[e] -= b.correction[e] }
    MatMul.product(b.valuesT, tokens: dv, weights: b.inverse, rows: n, columns: n, into: b.newValuesT, stride: n)

    // O = [e^γ Q | P] · [S ; Vn] in one product over dk + n columns, written straight into the output rows.
    let width = dk + n
    for i in 0..<n {
      let row = b.outputInputs + i * width
      let queryScale = exp(b.gamma[i])
      for r in 0..<dk { row[r] = queryScale * b.queries[i * dk + r] }
      for j in 0...i { row[dk + j] = b.queryKeyProducts[i * n + j] * b.decay[i * n + j] }
      for j in (i + 1)..<n { row[dk + j] = 0 }
    }
    for c in 0..<dv {
      let row = b.outputWeights + c * width
      row.update(from: b.stateT + c * dk, count: dk)
      (row + dk).update(from: b.newValuesT + c * n, count: n)
    }
    MatMul.product(
      b.outputInputs, tokens: n, weights: b.outputWeights, rows: dv, columns: width,
      into: output + start * outputStride, stride: outputStride)

    // Sᵀ ← e^{γ_last} Sᵀ + Vnᵀ·(e^{γ_last−γ} K): the product of Vnᵀ [dv, n] and the decayed keys transposed.
    let lastDecays = b.decay + (n - 1) * n
    transpose(b.keys, rows: n, columns: dk, rowStride: dk, scales: lastDecays, into: b.keysT)
    MatMul.product(b.newValuesT, tokens: dv, weights: b.keysT, rows: dk, columns: n, into: b.stateUpdate, stride: dk)
    let total = exp(b.gamma[n - 1])
    for e in 0..<(dv * dk) { b.stateT[e] = b.stateT[e] * total + b.stateUpdate[e] }
  }

  /// `destination[c · rows + r] = scales[r] · source[r · rowStride + c]` (scale 1 without `scales`): the transpose
  /// of a `[rows, columns]` block, eight source rows at a time so that reads and writes both stay in few lines.
  private func transpose(
    _ source: UnsafePointer<Float>, rows: Int, columns: Int, rowStride: Int, scales: UnsafePointer<Float>? = nil,
    into destination: UnsafeMutablePointer<Float>
  ) {
    var first = 0
    while first < rows {
      let count = min(8, rows - first)
      let block = source + first * rowStride
      for c in 0..<columns {
        let column = destination + c * rows + first
        if let scales {
          for r in 0..<count { column[r] = scales[first + r] * block[r * rowStride + c] }
        } else {
          for r in 0..<count { column[r] = block[r * rowStride + c] }
        }
      }
      first += count
    }
  }
}

/// Working buffers of one head's chunked delta rule, carved from one allocation. Dimensions of chunk length are
/// sized for a full chunk and packed at the current chunk's length n.
private struct ChunkBuffers {
  let storage: UnsafeMutablePointer<Float>
  /// γ and β [n]; e^{γ_i−γ_j} [n, n].
  let gamma, betas, decay: UnsafeMutablePointer<Float>
  /// The chunk's q and k rows [n, dk] and their products K·Kᵀ, Q·Kᵀ [n, n].
  let queries, keys, keyProducts, queryKeyProducts: UnsafeMutablePointer<Float>
  /// T [n, n]; βe^γK [n, dk]; βV transposed [dv, n]; e^{γ_last−γ}K transposed [dk, n].
  let inverse, scaledKeys, valuesT, keysT: UnsafeMutablePointer<Float>
  /// Vnᵀ and (βe^γK·S)ᵀ [dv, n]; Sᵀ and its increment [dv, dk].
  let newValuesT, correction, stateT, stateUpdate: UnsafeMutablePointer<Float>
  /// The output product's operands, [n, dk + n] and [dv, dk + n].
  let outputInputs, outputWeights: UnsafeMutablePointer<Float>

  init(chunk: Int, dk: Int, dv: Int) {
    let square = chunk * chunk, width = dk + chunk
    let sizes = [
      chunk, chunk, square, chunk * dk, chunk * dk, square, square, square, chunk * dk, dv * chunk, dk * chunk,
      dv * chunk, dv * chunk, dv * dk, dk * dv, chunk * width, dv * width,
    ]
    let base = UnsafeMutablePointer<Float>.allocate(capacity: sizes.reduce(0, +))
    var parts: [UnsafeMutablePointer<Float>] = []
    var offset = 0
    for size in sizes {
      parts.append(base + offset)
      offset += size
    }
    storage = base
    (gamma, betas, decay, queries, keys) = (parts[0], parts[1], parts[2], parts[3], parts[4])
    (keyProducts, queryKeyProducts, inverse, scaledKeys) = (parts[5], parts[6], parts[7], parts[8])
    (valuesT, keysT, newValuesT, correction) = (parts[9], parts[10], parts[11], parts[12])
    (stateT, stateUpdate, outputInputs, outputWeights) = (parts[13], parts[14], parts[15], parts[16])
  }

  func deallocate() { storage.deallocate() }
}
