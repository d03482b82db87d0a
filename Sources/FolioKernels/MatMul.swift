import CFolioKernels

/// Matrix products of fp32 activations with stored weights, accumulating in fp32.
public enum MatMul {
  /// `y[t, o] = Σ_i x[t, i] · w[o, i]` for `t < tokens`: the Hugging Face linear layer `x · Wᵀ`.
  ///
  /// `x` is `[tokens, w.columns]`, `y` is `[tokens, w.rows]`, both row-major and dense. Rows of `w` are split
  /// across the pool; each thread runs the C kernel (`CFolioKernels`, AVX-512 / AVX2 / portable, chosen at run
  /// time) over its rows for all tokens, so every weight row is read once per token tile.
  /// `path` runs a specific SIMD path (tests compare them); `nil` takes the best one this CPU has.
  public static func linear(
    _ x: UnsafePointer<Float>, tokens: Int, weight w: WeightMatrix, into y: UnsafeMutablePointer<Float>,
    pool: ComputePool, path: KernelPath? = nil
  ) {
    let pathCode = Int32((path ?? kernelPath).rawValue)
    let xs = UncheckedSendable(x)
    let ys = UncheckedSendable(y)
    if let quantization = w.quantization, quantization.layout == .interleaved {
      int8(x, tokens: tokens, [quantization], into: [ys], pool: pool, path: pathCode)
      return
    }
    if let descriptor = w.quantization?.descriptor {
      affine(xs, tokens: tokens, descriptor, columns: w.columns, rows: w.rows, into: ys, pool: pool, path: pathCode)
      return
    }
    if let panels = w.panels {
      panelProduct(x, tokens: tokens, panels, into: ys, pool: pool, path: pathCode)
      return
    }
    let type: Int32 =
      switch w.elementType {
      case .float32: Int32(FOLIO_WEIGHT_F32.rawValue)
      case .bfloat16: Int32(FOLIO_WEIGHT_BF16.rawValue)
      case .float16: Int32(FOLIO_WEIGHT_F16.rawValue)
      }
    pool.parallelFor(w.rows, granularity: 4, minimumPerThread: 64) { range in
      folio_linear_rows_on(
        pathCode, xs.value, tokens, w.base, type, w.columns, range.lowerBound, range.upperBound, ys.value, w.rows)
    }
  }

  /// `y[t · stride + r] = Σ_i x[t, i] · w[r, i]` for dense fp32 `x` `[tokens, columns]` and fp32 rows of `w`
  /// `rowStride` floats apart (default `columns`; larger for one head's keys inside a KV cache), on the calling
  /// thread: for small products inside work that is already split across the pool.
  public static func product(
    _ x: UnsafePointer<Float>, tokens: Int, weights w: UnsafePointer<Float>, rows: Int, columns: Int,
    rowStride: Int? = nil, into y: UnsafeMutablePointer<Float>, stride: Int
  ) {
    folio_linear_rows_strided_on(
      Int32(kernelPath.rawValue), x, tokens, w, Int32(FOLIO_WEIGHT_F32.rawValue), columns, rowStride ?? columns, 0,
      rows, y, stride)
  }

  /// Quantized weights: decode multiplies with codes dequantized in registers; with several tokens each block of
  /// rows is widened to fp32 once and multiplied by the blocked fp32 kernel (the widening is then amortised).
  static func affine(
    _ xs: UncheckedSendable<UnsafePointer<Float>>, tokens: Int, _ weights: folio_affine_weights, columns: Int,
    rows: Int, into ys: UncheckedSendable<UnsafeMutablePointer<Float>>, pool: ComputePool, path: Int32
  ) {
    let weights = UncheckedSendable(weights)
    let blockRows = 32
    pool.parallelFor(rows, granularity: tokens < 4 ? 4 : blockRows, minimumPerThread: 64) { range in
      var descriptor = weights.value
      if tokens < 4 {
        folio_linear_rows_affine_on(
          path, xs.value, tokens, &descriptor, columns, range.lowerBound, range.upperBound, ys.value, rows)
        return
      }
      let scratch = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * columns)
      defer { scratch.deallocate() }
      var start = range.lowerBound
      while start < range.upperBound {
        let count = min(blockRows, range.upperBound - start)
        folio_dequantize_rows(&descriptor, columns, start, start + count, scratch)
        folio_linear_rows_on(
          path, xs.value, tokens, scratch, Int32(FOLIO_WEIGHT_F32.rawValue), columns, 0, count, ys.value + start, rows)
        start += count
      }
    }
  }

  /// bf16 row panels: a few tokens stream the panels once with the activations split into even and odd columns
  /// (each block is re-read from cache per token); from `panelTokenLimit` tokens on, a few blocks at a time are
  /// widened to fp32 once for the blocked fp32 kernel, which reuses each loaded weight for four tokens.
  static let panelTokenLimit = 8

  static func panelProduct(
    _ x: UnsafePointer<Float>, tokens: Int, _ panels: BF16Panels,
    into ys: UncheckedSendable<UnsafeMutablePointer<Float>>, pool: ComputePool, path: Int32
  ) {
    let (rows, columns) = (panels.rows, panels.columns)
    let blocks = (rows + 15) / 16
    let weights = UncheckedSendable(panels.pointer)
    if tokens >= panelTokenLimit, panels.bf16Activations {
      // Activations rounded to bf16 once (tokens split across the pool), then bf16 dot products per block.
      let width = folio_even_odd_floats(columns)
      let rounded = UnsafeMutablePointer<UInt16>.allocate(capacity: tokens * width)
      defer { rounded.deallocate() }
      let (xs, bf) = (UncheckedSendable(x), UncheckedSendable(rounded))
      pool.parallelFor(tokens, minimumPerThread: 16) { range in
        folio_bf16_round_rows(
          xs.value + range.lowerBound * columns, range.count, columns, bf.value + range.lowerBound * width)
      }
      pool.parallelFor(blocks, minimumPerThread: 2) { range in
        folio_linear_bf16_dot_on(
          path, bf.value, tokens, weights.value, rows, columns, range.lowerBound, range.upperBound, ys.value, rows)
      }
      return
    }
    if tokens < panelTokenLimit {
      let width = folio_even_odd_floats(columns)
      let split = UnsafeMutablePointer<Float>.allocate(capacity: tokens * width)
      defer { split.deallocate() }
      folio_split_even_odd(x, tokens, columns, split)
      let xs = UncheckedSendable(split)
      pool.parallelFor(blocks, minimumPerThread: 4) { range in
        folio_linear_bf16_panels_on(
          path, xs.value, tokens, weights.value, rows, columns, range.lowerBound, range.upperBound, ys.value, rows)
      }
      return
    }
    // About 256 KiB of widened rows at a time: they stay in L2 while every token multiplies them.
    let blocksAtOnce = max(1, 4096 / columns)
    let xs = UncheckedSendable(x)
    pool.parallelFor(blocks, granularity: blocksAtOnce, minimumPerThread: 2) { range in
      let scratch = UnsafeMutablePointer<Float>.allocate(capacity: blocksAtOnce * 16 * columns)
      defer { scratch.deallocate() }
      var block = range.lowerBound
      while block < range.upperBound {
        let end = min(block + blocksAtOnce, range.upperBound)
        folio_bf16_unpack_panels(weights.value, columns, block, end, scratch)
        let count = min(end * 16, rows) - block * 16
        folio_linear_rows_on(
          path, xs.value, tokens, scratch, Int32(FOLIO_WEIGHT_F32.rawValue), columns, 0, count,
          ys.value + block * 16, rows)
        block = end
      }
    }
  }

  /// Several products of the same input, `outputs[m] = x · weights[m]ᵀ` (a layer's q/k/v, or gate and up). When
  /// every matrix is repacked for int8 activations with the same group size, the input is quantized once and the
  /// threads split all the matrices' 16-row blocks in one parallel call: a decode token then pays one barrier and
  /// one activation pass for the whole set instead of one per matrix. Other kinds run one product at a time.
  public static func linear(
    _ x: UnsafePointer<Float>, tokens: Int, weights: [WeightMatrix], into outputs: [UnsafeMutablePointer<Float>],
    pool: ComputePool, path: KernelPath? = nil
  ) {
    precondition(weights.count == outputs.count, "one output per weight matrix")
    let storages = weights.compactMap { w in w.quantization.flatMap { $0.layout == .interleaved ? $0 : nil } }
    if let first = storages.first, storages.count == weights.count,
      storages.allSatisfy({ $0.groupSize == first.groupSize && $0.columns == first.columns })
    {
      let pathCode = Int32((path ?? kernelPath).rawValue)
      int8(x, tokens: tokens, storages, into: outputs.map(UncheckedSendable.init), pool: pool, path: pathCode)
      return
    }
    for (w, y) in zip(weights, outputs) { linear(x, tokens: tokens, weight: w, into: y, pool: pool, path: path) }
  }

  /// Interleaved quantized weights sharing one input width and group size: the activations are quantized to int8
  /// per group once, then each thread multiplies its share of all the matrices' blocks of 16 rows with int8 dot
  /// products.
  static func int8(
    _ x: UnsafePointer<Float>, tokens: Int, _ storages: [AffineQuantizedStorage],
    into outputs: [UncheckedSendable<UnsafeMutablePointer<Float>>], pool: ComputePool, path: Int32
  ) {
    let (columns, groupSize) = (storages[0].columns, storages[0].groupSize)
    let groups = tokens * (columns / groupSize)
    let q = UnsafeMutablePointer<Int8>.allocate(capacity: tokens * columns)
    let scales = UnsafeMutablePointer<Float>.allocate(capacity: groups)
    let sums = UnsafeMutablePointer<Float>.allocate(capacity: groups)
    defer {
      q.deallocate()
      scales.deallocate()
      sums.deallocate()
    }
    let (xs, qs) = (UncheckedSendable(x), UncheckedSendable(q))
    let (ss, sm) = (UncheckedSendable(scales), UncheckedSendable(sums))
    let groupsPerToken = columns / groupSize
    pool.parallelFor(tokens, minimumPerThread: 16) { range in
      let (t, n) = (range.lowerBound, range.count)
      folio_quantize_activations_on(
        path, xs.value + t * columns, n, columns, groupSize, qs.value + t * columns, ss.value + t * groupsPerToken,
        sm.value + t * groupsPerToken)
    }
    let activations = UncheckedSendable(folio_int8_activations(q: q, scales: scales, sums: sums))
    // Matrix m owns blocks [firstBlock[m], firstBlock[m + 1]) of the combined run.
    var firstBlock = [0]
    for storage in storages { firstBlock.append(firstBlock[firstBlock.count - 1] + (storage.rows + 15) / 16) }
    let descriptors = storages.map { UncheckedSendable($0.interleavedDescriptor) }
    // A block of 16 rows is the unit of work; decode splits even small matrices, prefill needs fewer parts.
    pool.parallelFor(firstBlock[storages.count], minimumPerThread: 4) { range in
      var x = activations.value
      for m in 0..<storages.count {
        let begin = max(range.lowerBound, firstBlock[m]), end = min(range.upperBound, firstBlock[m + 1])
        guard begin < end else { continue }
        var weights = descriptors[m].value
        folio_linear_int8_on(
          path, &x, tokens, &weights, begin - firstBlock[m], end - firstBlock[m], outputs[m].value,
          storages[m].rows)
      }
    }
  }

  /// `out[g, c] = Σ_s p[g, s] · v[s, c]` for `g < groups` over `count` fp32 rows of `v` `rowStride` floats apart
  /// (attention's weighted sum of one head's values), on the calling thread.
  public static func weightedRows(
    _ p: UnsafePointer<Float>, groups: Int, count: Int, rows v: UnsafePointer<Float>, rowStride: Int, columns: Int,
    into out: UnsafeMutablePointer<Float>
  ) {
    folio_weighted_rows(p, groups, count, v, rowStride, columns, out)
  }

  /// The SIMD path the kernels take on this CPU.
  public static var kernelPath: KernelPath { KernelPath(rawValue: Int(folio_kernel_path())) ?? .portable }

  /// The path actually taken for `path` on this CPU (the best available when the CPU lacks it).
  public static func supportedPath(_ path: KernelPath) -> KernelPath {
    KernelPath(rawValue: Int(folio_supported_path(Int32(path.rawValue)))) ?? .portable
  }
}

/// SIMD implementations of the linear kernels, chosen at run time from the CPU's features.
public enum KernelPath: Int, Sendable, CaseIterable, CustomStringConvertible {
  case portable = 0
  case avx2 = 1
  case avx512 = 2
  /// arm64 Advanced SIMD (baseline on arm64; the int8 kernel also uses the dot-product extension when present).
  case neon = 3

  public var description: String {
    switch self {
    case .portable: "portable"
    case .avx2: "avx2"
    case .avx512: "avx512"
    case .neon: "neon"
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
      s0 +=
        ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
      s1 +=
        ra.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self)
        * rb.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self)
      i += 32
    }
    while i + 16 <= count {
      s0 +=
        ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
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
