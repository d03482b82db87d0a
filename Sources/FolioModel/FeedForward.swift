import FolioKernels
import Foundation

/// Dense SwiGLU MLPs and the sparse mixture of experts (qwen35.md §2.6–2.7).
enum FeedForward {
  /// `output = down(silu(gate(x)) · up(x))` for `tokens` rows.
  static func dense(
    _ w: MLPWeights, _ x: UnsafePointer<Float>, tokens: Int, hidden: Int, output: UnsafeMutablePointer<Float>,
    pool: ComputePool
  ) {
    let width = w.gate.rows
    let gate = FloatBuffer(count: tokens * width)
    let up = FloatBuffer(count: tokens * width)
    MatMul.linear(x, tokens: tokens, weights: [w.gate, w.up], into: [gate.pointer, up.pointer], pool: pool)
    Elementwise.siluMultiply(gate.pointer, up.pointer, into: gate.pointer, count: tokens * width)
    MatMul.linear(gate.pointer, tokens: tokens, weight: w.down, into: output, pool: pool)
  }

  /// Routed experts (fp32 softmax over all experts, top-k, renormalised) plus the sigmoid-gated shared expert.
  /// Tokens are grouped by expert so each expert's weights are read once per call.
  static func sparse(
    _ w: MoEWeights, _ x: UnsafePointer<Float>, tokens: Int, hidden: Int, output: UnsafeMutablePointer<Float>,
    pool: ComputePool
  ) {
    let expertCount = w.experts.count
    let routerLogits = FloatBuffer(count: tokens * expertCount)
    MatMul.linear(x, tokens: tokens, weight: w.router, into: routerLogits.pointer, pool: pool)
    var assignments = [[(token: Int, weight: Float)]](repeating: [], count: expertCount)
    for t in 0..<tokens {
      let p = routerLogits.pointer + t * expertCount
      Elementwise.softmax(p, count: expertCount)
      // torch.topk order: larger probability first, ties by lower index.
      let chosen = (0..<expertCount).sorted { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }.prefix(w.expertsPerToken)
      let total = chosen.reduce(Float(0)) { $0 + p[$1] }
      for e in chosen { assignments[e].append((t, p[e] / total)) }
    }

    // Shared expert, gated per token by sigmoid(x · w_sg).
    dense(w.shared, x, tokens: tokens, hidden: hidden, output: output, pool: pool)
    let gateLogits = FloatBuffer(count: tokens)
    MatMul.linear(x, tokens: tokens, weight: w.sharedGate, into: gateLogits.pointer, pool: pool)
    for t in 0..<tokens {
      let gate = Elementwise.sigmoid(gateLogits.pointer[t])
      for i in 0..<hidden { output[t * hidden + i] *= gate }
    }

    for (e, routed) in assignments.enumerated() where !routed.isEmpty {
      let gathered = FloatBuffer(count: routed.count * hidden)
      for (row, item) in routed.enumerated() {
        (gathered.pointer + row * hidden).update(from: x + item.token * hidden, count: hidden)
      }
      let result = FloatBuffer(count: routed.count * hidden)
      dense(w.experts[e], gathered.pointer, tokens: routed.count, hidden: hidden, output: result.pointer, pool: pool)
      for (row, item) in routed.enumerated() {
        Elementwise.addScaled(output + item.token * hidden, result.pointer + row * hidden, item.weight, count: hidden)
      }
    }
  }
}
