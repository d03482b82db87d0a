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
    MatMul.linear(x, tokens: tokens, weight: weights.qProj, into: queryGate.pointer, pool: pool)
    MatMul.linear(x, tokens: tokens, weight: weights.kProj, into: newKeys.pointer, pool: pool)
    MatMul.linear(x, tokens: tokens, weight: weights.vProj, into: newValues.pointer, pool: pool)

    // Per-head layout of q_proj's output is [q_h | gate_h] (qwen35.md pitfall 3).
    weights.qNormScale.withUnsafeBufferPointer { qs in
      weights.kNormScale.withUnsafeBufferPointer { ks in
        for t in 0..<tokens {
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
    let past = keys.count / (hkv * d)
    keys.append(contentsOf: UnsafeBufferPointer(start: newKeys.pointer, count: tokens * hkv * d))
    values.append(contentsOf: UnsafeBufferPointer(start: newValues.pointer, count: tokens * hkv * d))

    let attended = FloatBuffer(count: tokens * hq * d)
    let scale = 1 / Float(d).squareRoot()
    let groupSize = hq / hkv
    keys.withUnsafeBufferPointer { kb in
      values.withUnsafeBufferPointer { vb in
        let kBase = UncheckedPointer(kb.baseAddress!)
        let vBase = UncheckedPointer(vb.baseAddress!)
        pool.parallelFor(tokens * hq) { range in
          let scores = UnsafeMutablePointer<Float>.allocate(capacity: past + tokens)
          defer { scores.deallocate() }
          for item in range {
            let t = item / hq
            let head = item % hq
            let kvHead = head / groupSize
            let q = queryGate.pointer + (t * hq + head) * 2 * d
            let visible = past + t + 1
            for s in 0..<visible {
              scores[s] = Dot.float(q, kBase.pointer + (s * hkv + kvHead) * d, count: d) * scale
            }
            Elementwise.softmax(scores, count: visible)
            let out = attended.pointer + (t * hq + head) * d
            out.initialize(repeating: 0, count: d)
            for s in 0..<visible {
              Elementwise.addScaled(out, vBase.pointer + (s * hkv + kvHead) * d, scores[s], count: d)
            }
            let gate = q + d
            for i in 0..<d { out[i] *= Elementwise.sigmoid(gate[i]) }
          }
        }
      }
    }
    MatMul.linear(attended.pointer, tokens: tokens, weight: weights.oProj, into: output, pool: pool)
  }
}

/// A pointer shared read-only across the threads of one parallel call.
struct UncheckedPointer: @unchecked Sendable {
  let pointer: UnsafePointer<Float>
  init(_ pointer: UnsafePointer<Float>) { self.pointer = pointer }
}
