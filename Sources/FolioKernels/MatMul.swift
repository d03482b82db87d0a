/// Matrix products of fp32 activations with stored weights, accumulating in fp32.
public enum MatMul {
  /// `y[t, o] = Σ_i x[t, i] · w[o, i]` for `t < tokens`: the Hugging Face linear layer `x · Wᵀ`.
  ///
  /// `x` is `[tokens, w.columns]`, `y` is `[tokens, w.rows]`, both row-major and dense.
  /// Rows of `w` are split across the pool; for several tokens a block of rows is widened to fp32 once and
  /// reused for every token while it is hot in cache.
  public static func linear(
    _ x: UnsafePointer<Float>, tokens: Int, weight w: WeightMatrix, into y: UnsafeMutablePointer<Float>,
    pool: ComputePool
  ) {
    let n = w.columns
    let outCount = w.rows
    let blockRows = 16
    let xs = UncheckedSendable(x)
    let ys = UncheckedSendable(y)
    pool.parallelFor(outCount, granularity: blockRows, minimumPerThread: 64) { range in
      let x = xs.value
      let y = ys.value
      if tokens == 1 {
        for o in range {
          y[o] = Dot.weightRow(w, o, x)
        }
        return
      }
      let scratch = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * n)
      defer { scratch.deallocate() }
      var blockStart = range.lowerBound
      while blockStart < range.upperBound {
        let count = min(blockRows, range.upperBound - blockStart)
        let rows: UnsafePointer<Float>
        if w.elementType == .float32 {
          rows = (w.base + blockStart * w.rowStride).assumingMemoryBound(to: Float.self)
        } else {
          Convert.widen(w.base + blockStart * w.rowStride, w.elementType, count: count * n, into: scratch)
          rows = UnsafePointer(scratch)
        }
        for t in 0..<tokens {
          let xt = x + t * n
          let yt = y + t * outCount + blockStart
          for r in 0..<count {
            yt[r] = Dot.float(xt, rows + r * n, count: n)
          }
        }
        blockStart += count
      }
    }
  }
}

/// Dot products in fp32 with several SIMD accumulators.
public enum Dot {
  /// `Σ a[i]·b[i]` over `count` floats.
  @inlinable public static func float(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var s0 = SIMD16<Float>(), s1 = SIMD16<Float>()
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    var i = 0
    while i + 32 <= count {
      s0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
      s1 += ra.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self)
        * rb.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self)
      i += 32
    }
    while i + 16 <= count {
      s0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
      i += 16
    }
    var s = (s0 + s1).sum()
    while i < count {
      s += a[i] * b[i]
      i += 1
    }
    return s
  }

  /// Dot of row `r` of `w` with `x` (fp32), widening the row on the fly.
  @inlinable public static func weightRow(_ w: WeightMatrix, _ r: Int, _ x: UnsafePointer<Float>) -> Float {
    let n = w.columns
    let row = w.base + r * w.rowStride
    switch w.elementType {
    case .float32:
      return float(x, row.assumingMemoryBound(to: Float.self), count: n)
    case .bfloat16:
      var s0 = SIMD16<Float>(), s1 = SIMD16<Float>()
      let rx = UnsafeRawPointer(x)
      var i = 0
      while i + 32 <= n {
        let h0 = row.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<UInt16>.self)
        let h1 = row.loadUnaligned(fromByteOffset: i * 2 + 32, as: SIMD16<UInt16>.self)
        let w0 = unsafeBitCast(SIMD16<UInt32>(truncatingIfNeeded: h0) &<< 16, to: SIMD16<Float>.self)
        let w1 = unsafeBitCast(SIMD16<UInt32>(truncatingIfNeeded: h1) &<< 16, to: SIMD16<Float>.self)
        s0 += w0 * rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        s1 += w1 * rx.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self)
        i += 32
      }
      var s = (s0 + s1).sum()
      while i < n {
        s += Convert.float(fromBFloat16: row.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) * x[i]
        i += 1
      }
      return s
    case .float16:
      var s = SIMD16<Float>()
      let rx = UnsafeRawPointer(x)
      var i = 0
      while i + 16 <= n {
        let h = row.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<UInt16>.self)
        let wv = SIMD16<Float>(unsafeBitCast(h, to: SIMD16<Float16>.self))
        s += wv * rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
      }
      var total = s.sum()
      while i < n {
        total += Float(Float16(bitPattern: row.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) * x[i]
        i += 1
      }
      return total
    }
  }
}
