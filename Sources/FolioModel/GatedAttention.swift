import FolioKernels
import Foundation

/// Gated full attention with q/k norms, partial rotary and a KV cache (qwen35.md §2.5).
struct GatedAttention {
  let config: TextConfiguration
  let weights: AttentionWeights

  func forward(
    _ x: UnsafePointer<Float>, tokens: Int, rotary: TextRotary.Table, keys: inout [Float], values: inout [Float],
    output: UnsafeMutablePointer<Float>, pool: ComputePool
  ) {
    let d = config.headDimension
    let hq = config.attentionHeads
    let hkv = config.keyValueHeads
    let eps = config.rmsNormEpsilon
    let queryGate = FloatBuffer(count: tokens * 2 * hq * d)
    let newKeys = FloatBuffer(count: tokens * hkv * d)
    let newValues = FloatBuffer(count: tokens * hkv * d)
    MatMul.linear(
      x, tokens: tokens, weights: [weights.qProj, weights.kProj, weights.vProj],
      into: [queryGate.pointer, newKeys.pointer, newValues.pointer], pool: pool)

    // Per-head layout of q_proj's output is [q_h | gate_h] (qwen35.md pitfall 3).
    weights.qNormScale.withUnsafeBufferPointer { qs in
      weights.kNormScale.withUnsafeBufferPointer { ks in
        pool.parallelFor(tokens, minimumPerThread: Self.tokensPerPart) { range in
          for t in range {
            for head in 0..<hq {
              let q = queryGate.pointer + (t * hq + head) * 2 * d
              Elementwise.rmsNorm(q, count: d, scale: qs.baseAddress!, epsilon: eps)
              rotary.apply(q, token: t)
            }
            for head in 0..<hkv {
              let k = newKeys.pointer + (t * hkv + head) * d
              Elementwise.rmsNorm(k, count: d, scale: ks.baseAddress!, epsilon: eps)
              rotary.apply(k, token: t)
            }
          }
        }
      }
    }
    let past = keys.count / (hkv * d)
    keys.append(contentsOf: UnsafeBufferPointer(start: newKeys.pointer, count: tokens * hkv * d))
    values.append(contentsOf: UnsafeBufferPointer(start: newValues.pointer, count: tokens * hkv * d))

    let attended = FloatBuffer(count: tokens * hq * d)
    keys.withUnsafeBufferPointer { kb in
      values.withUnsafeBufferPointer { vb in
        let (k, v) = (UncheckedPointer(kb.baseAddress!), UncheckedPointer(vb.baseAddress!))
        if tokens >= Self.blockedQueryThreshold {
          attendBlocked(queryGate, tokens: tokens, past: past, keys: k, values: v, into: attended, pool: pool)
        } else {
          attendRowByRow(queryGate, tokens: tokens, past: past, keys: k, values: v, into: attended, pool: pool)
        }
      }
    }
    // Output gate: o · sigmoid(gate), the gate being the second half of each head's q_proj output.
    pool.parallelFor(tokens, minimumPerThread: Self.tokensPerPart) { range in
      for t in range {
        for head in 0..<hq {
          let out = attended.pointer + (t * hq + head) * d
          let gate = queryGate.pointer + (t * hq + head) * 2 * d + d
          for i in 0..<d { out[i] *= Elementwise.sigmoid(gate[i]) }
        }
      }
    }
    MatMul.linear(attended.pointer, tokens: tokens, weight: weights.oProj, into: output, pool: pool)
  }

  /// Per-token work (norms, rotary, the output gate) is split across the pool from this many tokens per thread.
  static let tokensPerPart = 8

  /// Prompts of at least this many tokens compute scores and outputs as blocked matrix products.
  static let blockedQueryThreshold = 8
  /// Queries per block in the blocked path (bounds the scores buffer to block × visible keys).
  static let queryBlock = 256

  /// Decode (a few queries): per token and key/value head, the query heads that share it are scored together, so
  /// each cached key and value is read once per token rather than once per query head (at long contexts the
  /// cache, not the arithmetic, is the cost).
  private func attendRowByRow(
    _ queryGate: FloatBuffer, tokens: Int, past: Int, keys: UncheckedPointer, values: UncheckedPointer,
    into attended: FloatBuffer, pool: ComputePool
  ) {
    let (d, hq, hkv) = (config.headDimension, config.attentionHeads, config.keyValueHeads)
    let group = hq / hkv
    let scale = 1 / Float(d).squareRoot()
    pool.parallelFor(tokens * hkv) { range in
      let scores = UnsafeMutablePointer<Float>.allocate(capacity: group * (past + tokens))
      let queries = UnsafeMutablePointer<Float>.allocate(capacity: group * d)
      defer {
        scores.deallocate()
        queries.deallocate()
      }
      for item in range {
        let (t, kvHead) = (item / hkv, item % hkv)
        let visible = past + t + 1
        for g in 0..<group {
          let q = queryGate.pointer + (t * hq + kvHead * group + g) * 2 * d
          for c in 0..<d { queries[g * d + c] = q[c] * scale }
        }
        MatMul.product(
          queries, tokens: group, weights: keys.pointer + kvHead * d, rows: visible, columns: d, rowStride: hkv * d,
          into: scores, stride: visible)
        for g in 0..<group { Elementwise.softmax(scores + g * visible, count: visible) }
        MatMul.weightedRows(
          scores, groups: group, count: visible, rows: values.pointer + kvHead * d, rowStride: hkv * d, columns: d,
          into: attended.pointer + (t * hq + kvHead * group) * d)
      }
    }
  }

  /// Prefill: per head (heads split across the pool), K `[S, d]` and Vᵀ `[d, S]` gathered contiguously, and per
  /// block of queries S = Q·Kᵀ and O = softmax(S)·V through the blocked linear kernel, with the causal mask applied
  /// by softmaxing only each query's visible keys and zeroing the rest.
  private func attendBlocked(
    _ queryGate: FloatBuffer, tokens: Int, past: Int, keys: UncheckedPointer, values: UncheckedPointer,
    into attended: FloatBuffer, pool: ComputePool
  ) {
    let (d, hq, hkv) = (config.headDimension, config.attentionHeads, config.keyValueHeads)
    let scale = 1 / Float(d).squareRoot()
    let total = past + tokens
    let block = min(Self.queryBlock, tokens)
    let inline = ComputePool(threadCount: 1)
    pool.parallelFor(hq) { heads in
      let keyRows = FloatBuffer(count: total * d)
      let valuesT = FloatBuffer(count: d * total)
      let queries = FloatBuffer(count: block * d)
      let scores = FloatBuffer(count: block * total)
      let output = FloatBuffer(count: block * d)
      for head in heads {
        let kvHead = head / (hq / hkv)
        for s in 0..<total {
          (keyRows.pointer + s * d).update(from: keys.pointer + (s * hkv + kvHead) * d, count: d)
        }
        var start = 0
        while start < tokens {
          let count = min(block, tokens - start)
          // Keys visible to this block's last query; later ones are masked for every query in it.
          let visibleToBlock = past + start + count
          for i in 0..<count {
            let q = queryGate.pointer + ((start + i) * hq + head) * 2 * d
            for c in 0..<d { queries.pointer[i * d + c] = q[c] * scale }
          }
          let keyMatrix = WeightMatrix(
            base: UnsafeRawPointer(keyRows.pointer), rows: visibleToBlock, columns: d, elementType: .float32,
            owner: keyRows)
          MatMul.linear(queries.pointer, tokens: count, weight: keyMatrix, into: scores.pointer, pool: inline)
          for i in 0..<count {
            let row = scores.pointer + i * visibleToBlock
            let visible = past + start + i + 1
            Elementwise.softmax(row, count: visible)
            (row + visible).update(repeating: 0, count: visibleToBlock - visible)
          }
          // Vᵀ `[d, visibleToBlock]`, contiguous for the kernel.
          for s in 0..<visibleToBlock {
            let v = values.pointer + (s * hkv + kvHead) * d
            for c in 0..<d { valuesT.pointer[c * visibleToBlock + s] = v[c] }
          }
          let valueMatrix = WeightMatrix(
            base: UnsafeRawPointer(valuesT.pointer), rows: d, columns: visibleToBlock, elementType: .float32,
            owner: valuesT)
          MatMul.linear(scores.pointer, tokens: count, weight: valueMatrix, into: output.pointer, pool: inline)
          for i in 0..<count {
            (attended.pointer + ((start + i) * hq + head) * d).update(from: output.pointer + i * d, count: d)
          }
          start += count
        }
      }
    }
  }
}

/// A pointer shared read-only across the threads of one parallel call.
struct UncheckedPointer: @unchecked Sendable {
  let pointer: UnsafePointer<Float>
  init(_ pointer: UnsafePointer<Float>) { self.pointer = pointer }
}
