import CFolioKernels
import Foundation

/// Normalisations and activations over fp32 vectors, written to match the reference formulas
/// (qwen35.md §2.2, §2.4) operation by operation.
public enum Elementwise {
  /// RMSNorm of `count` values in place: `x · 1/sqrt(mean(x²) + eps) · scale`.
  ///
  /// Qwen's zero-centred norms pass `scale = 1 + w` (precomputed in fp32 at load), the plain gated norm passes `w`.
  @inlinable public static func rmsNorm(
    _ x: UnsafeMutablePointer<Float>, count: Int, scale: UnsafePointer<Float>, epsilon: Float
  ) {
    let inverse = 1 / (sumOfSquares(x, count: count) / Float(count) + epsilon).squareRoot()
    for i in 0..<count { x[i] = x[i] * inverse * scale[i] }
  }

  /// `Σ x²` with SIMD accumulation.
  @inlinable public static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Float {
    Dot.float(x, x, count: count)
  }

  /// `x · rsqrt(Σx² + eps)` in place (the delta rule's q/k normalisation, eps inside the sum).
  @inlinable public static func l2Normalize(_ x: UnsafeMutablePointer<Float>, count: Int, epsilon: Float = 1e-6) {
    let inverse = 1 / (sumOfSquares(x, count: count) + epsilon).squareRoot()
    for i in 0..<count { x[i] *= inverse }
  }

  /// Logistic sigmoid.
  @inlinable public static func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }

  /// `torch.nn.functional.softplus` with beta 1 and threshold 20.
  @inlinable public static func softplus(_ x: Float) -> Float {
    x > 20 ? x : Foundation.log1p(Foundation.exp(x))
  }

  /// GELU with the exact erf (`nn.GELU()`).
  @inlinable public static func geluErf(_ x: Float) -> Float {
    0.5 * x * (1 + Foundation.erf(x * 0.7071067811865476))
  }

  /// `out[i] = silu(a[i]) · b[i]` (`b` nil: `silu(a[i])`), vectorised; `out` may be `a` or `b`.
  public static func siluMultiply(
    _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>, count: Int
  ) {
    folio_silu_multiply(a, b, out, count)
  }

  /// GELU with the tanh approximation in place, vectorised: `0.5·x·(1 + tanh(u)) = x · sigmoid(2u)`.
  public static func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
    folio_gelu_tanh(x, count)
  }

  /// Numerically stable softmax in place (vectorised exp in `CFolioKernels`, a few ulp from `expf`).
  @inlinable public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
    folio_softmax(x, count)
  }

  /// Rotary embedding with the NeoX `rotate_half` convention on the first `2·half` values of `x`:
  /// `x' = x·cos + rotate_half(x)·sin`, where `cos[j]`/`sin[j]` serve both halves (`emb = cat(freqs, freqs)`).
  @inlinable public static func rotateHalf(
    _ x: UnsafeMutablePointer<Float>, half: Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>
  ) {
    for j in 0..<half {
      let a = x[j]
      let b = x[j + half]
      x[j] = a * cos[j] - b * sin[j]
      x[j + half] = b * cos[j] + a * sin[j]
    }
  }

  /// `y += a · x` over `count` floats.
  /// `a[i] += x[i]·p` and `b[i] += x[i]·q` over `count` floats, reading `x` once.
  @inlinable public static func addScaled2(
    _ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ p: Float,
    _ q: Float, count: Int
  ) {
    var i = 0
    let (ra, rb, rx) = (UnsafeMutableRawPointer(a), UnsafeMutableRawPointer(b), UnsafeRawPointer(x))
    while i + 16 <= count {
      let v = rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
      ra.storeBytes(
        of: ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) + v * p, toByteOffset: i * 4,
        as: SIMD16<Float>.self)
      rb.storeBytes(
        of: rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) + v * q, toByteOffset: i * 4,
        as: SIMD16<Float>.self)
      i += 16
    }
    while i < count {
      a[i] += x[i] * p
      b[i] += x[i] * q
      i += 1
    }
  }

  /// `x[i] = x[i]·factor + y[i]·a` over `count` floats.
  @inlinable public static func scaleAdd(
    _ x: UnsafeMutablePointer<Float>, by factor: Float, _ y: UnsafePointer<Float>, _ a: Float, count: Int
  ) {
    var i = 0
    let (rx, ry) = (UnsafeMutableRawPointer(x), UnsafeRawPointer(y))
    while i + 16 <= count {
      let v =
        rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * factor
        + ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * a
      rx.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
      i += 16
    }
    while i < count {
      x[i] = x[i] * factor + y[i] * a
      i += 1
    }
  }

  /// `y[i] += a[i] · b[i]` over `count` floats.
  @inlinable public static func multiplyAdd(
    _ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int
  ) {
    var i = 0
    let (ry, ra, rb) = (UnsafeMutableRawPointer(y), UnsafeRawPointer(a), UnsafeRawPointer(b))
    while i + 16 <= count {
      let sum =
        ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        + ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
      ry.storeBytes(of: sum, toByteOffset: i * 4, as: SIMD16<Float>.self)
      i += 16
    }
    while i < count {
      y[i] += a[i] * b[i]
      i += 1
    }
  }

  @inlinable public static func addScaled(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ a: Float, count: Int
  ) {
    for i in 0..<count { y[i] += a * x[i] }
  }
}
