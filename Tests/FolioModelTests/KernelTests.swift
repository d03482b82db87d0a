import CFolioKernels
import FolioKernels
import Foundation
import Testing

/// The linear kernels against a straightforward widen-then-multiply reference in double precision, on every SIMD
/// path this CPU has, for each weight type and awkward sizes (tails, single tokens, token tiles).
@Suite("Linear kernels")
struct KernelTests {
  static func bits(_ values: [Float], as type: WeightElementType) -> [UInt8] {
    switch type {
    case .float32:
      return values.withUnsafeBytes { Array($0) }
    case .bfloat16:
      return values.map { Convert.bfloat16(from: $0) }.withUnsafeBytes { Array($0) }
    case .float16:
      return values.map { Float16($0).bitPattern }.withUnsafeBytes { Array($0) }
    }
  }

  @Test(arguments: [WeightElementType.float32, .bfloat16, .float16])
  func matchesReference(type: WeightElementType) throws {
    var generator = SystemRandomNumberGenerator()
    for (tokens, rows, columns) in [(1, 7, 37), (3, 9, 64), (5, 33, 130), (37, 70, 96), (1, 260, 1024)] {
      let weights = (0..<(rows * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
      let input = (0..<(tokens * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
      let raw = Self.bits(weights, as: type)
      let widened = raw.withUnsafeBytes { buffer -> [Float] in
        let m = WeightMatrix(base: buffer.baseAddress!, rows: rows, columns: columns, elementType: type, owner: nil)
        return m.toFloatArray()
      }
      raw.withUnsafeBytes { buffer in
        let m = WeightMatrix(base: buffer.baseAddress!, rows: rows, columns: columns, elementType: type, owner: nil)
        Self.expectEveryPathMatches(m, input: input, tokens: tokens, widened: widened, label: "\(type)")
      }
    }
  }

  /// bf16 row panels (16-row blocks of 32-column chunks, zero-padded) give the same products on every path — the
  /// decode kernel for up to 7 tokens, widened blocks for more — and the same rows as the row-major matrix.
  @Test func bf16PanelsMatchReference() throws {
    var generator = SystemRandomNumberGenerator()
    let shapes = [(1, 7, 37), (2, 16, 32), (3, 33, 130), (7, 17, 64), (8, 18, 64), (37, 70, 96), (1, 260, 1024)]
    for (tokens, rows, columns) in shapes {
      let weights = (0..<(rows * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
      let input = (0..<(tokens * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
      let raw = Self.bits(weights, as: .bfloat16)
      try raw.withUnsafeBytes { buffer in
        let rowMajor = WeightMatrix(
          base: buffer.baseAddress!, rows: rows, columns: columns, elementType: .bfloat16, owner: nil)
        let packed = rowMajor.packedIntoPanels()
        let panels = try #require(packed.panels)
        #expect(panels.rows == rows && panels.columns == columns)
        let widened = rowMajor.toFloatArray()
        #expect(packed.toFloatArray() == widened, "rows read back from the panels")
        Self.expectEveryPathMatches(packed, input: input, tokens: tokens, widened: widened, label: "bf16 panels")
      }
    }
  }

  /// Panels packed for bf16 activations: prompts (8 tokens and more) multiply the activations rounded to bf16 to
  /// nearest even (AVX512_BF16 dot products where the CPU has them, else the same arithmetic in portable C), so they
  /// equal `Σ bf16(input)·widened` in double within fp32 summation — and not the unrounded product, which the bound
  /// would reject; fewer tokens keep the fp32 decode kernel.
  @Test func bf16DotProductsMatchRoundedReference() throws {
    var generator = SystemRandomNumberGenerator()
    let shapes = [(8, 16, 32), (9, 33, 130), (13, 70, 96), (70, 17, 64), (3, 33, 130), (65, 40, 1024)]
    for (tokens, rows, columns) in shapes {
      let weights = (0..<(rows * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
      let input = (0..<(tokens * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
      let raw = Self.bits(weights, as: .bfloat16)
      try raw.withUnsafeBytes { buffer in
        let rowMajor = WeightMatrix(
          base: buffer.baseAddress!, rows: rows, columns: columns, elementType: .bfloat16, owner: nil)
        let packed = rowMajor.packedIntoPanels(bf16Activations: true)
        let panels = try #require(packed.panels)
        #expect(panels.bf16Activations)
        let rounded = input.map { Convert.float(fromBFloat16: Convert.bfloat16(from: $0)) }
        Self.expectEveryPathMatches(
          packed, input: tokens >= 8 ? rounded : input, tokens: tokens, widened: rowMajor.toFloatArray(),
          label: "bf16 dot", actualInput: input)
      }
    }
  }

  /// Runs `matrix` on every SIMD path and compares with `Σ input·widened` in double precision.
  /// `actualInput` (default `input`) is what the kernels are given, when the reference takes a rounded copy.
  static func expectEveryPathMatches(
    _ matrix: WeightMatrix, input: [Float], tokens: Int, widened: [Float], label: String, actualInput: [Float]? = nil
  ) {
    let (rows, columns) = (matrix.rows, matrix.columns)
    var expected = [Double](repeating: 0, count: tokens * rows)
    for t in 0..<tokens {
      for r in 0..<rows {
        var sum = 0.0
        for i in 0..<columns { sum += Double(input[t * columns + i]) * Double(widened[r * columns + i]) }
        expected[t * rows + r] = sum
      }
    }
    for path in KernelPath.allCases {
      var output = [Float](repeating: .nan, count: tokens * rows)
      (actualInput ?? input).withUnsafeBufferPointer { x in
        output.withUnsafeMutableBufferPointer { y in
          MatMul.linear(
            x.baseAddress!, tokens: tokens, weight: matrix, into: y.baseAddress!, pool: ComputePool(threadCount: 2),
            path: path)
        }
      }
      let worst = zip(output, expected).map { abs(Double($0) - $1) }.max() ?? .infinity
      let active = MatMul.supportedPath(path)
      #expect(worst < 1e-4 * Double(columns).squareRoot(), "\(label) \(active) \(tokens)x\(rows)x\(columns): \(worst)")
    }
  }
}

@Suite("Softmax")
struct SoftmaxTests {
  @Test(arguments: [1, 7, 8, 17, 100, 3072, 8963])
  func matchesDoublePrecision(count: Int) {
    var generator = SystemRandomNumberGenerator()
    let values = (0..<count).map { _ in Float.random(in: -30...30, using: &generator) }
    let maximum = Double(values.max() ?? 0)
    let exps = values.map { Foundation.exp(Double($0) - maximum) }
    let total = exps.reduce(0, +)
    // Every SIMD path this CPU has (a path it lacks runs its best one), and the portable code.
    for path in [FOLIO_PATH_PORTABLE, FOLIO_PATH_AVX2, FOLIO_PATH_AVX512, FOLIO_PATH_NEON] {
      var ours = values
      ours.withUnsafeMutableBufferPointer { folio_softmax_on(Int32(path.rawValue), $0.baseAddress!, count) }
      // Relative 1e-5: the exp is a few ulp; the rest is the fp32 sum over up to ~9000 terms (≈ √n · 2⁻²⁴ each way).
      let worst = zip(ours, exps).map { abs(Double($0) - $1 / total) / ($1 / total) }.max() ?? .infinity
      #expect(worst <= 1e-5, "path \(path.rawValue): relative error \(worst)")
      #expect(abs(ours.reduce(0, +) - 1) < 1e-5)
    }
  }
}

/// Quantized weights against the straightforward reference: dequantize the whole matrix, then multiply in double.
@Suite("Affine quantization")
struct AffineQuantizationTests {
  @Test(arguments: [4, 6, 8])
  func quantizedProductEqualsDequantizeThenMultiply(bits: Int) throws {
    var generator = SystemRandomNumberGenerator()
    for (tokens, rows, columns) in [(1, 9, 64), (2, 70, 128), (5, 33, 192), (37, 40, 256)] {
      let weights = (0..<(rows * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
      let input = (0..<(tokens * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
      let matrix = WeightMatrix.owning(weights, rows: rows, columns: columns).quantized(bits: bits, groupSize: 64)
      let quantization = try #require(matrix.quantization)
      let dequantized = matrix.toFloatArray()
      // Rounding to the nearest code: each weight within half a step of its group's scale.
      for r in 0..<rows {
        for i in 0..<columns {
          let step = (weights[(r * columns + i) / 64 * 64..<((r * columns + i) / 64 * 64 + 64)].max()! - weights[(r * columns + i) / 64 * 64..<((r * columns + i) / 64 * 64 + 64)].min()!) / Float((1 << bits) - 1)
          #expect(abs(dequantized[r * columns + i] - weights[r * columns + i]) <= step / 2 + 1e-6)
        }
      }
      #expect(quantization.bits == bits)
      KernelTests.expectEveryPathMatches(
        matrix, input: input, tokens: tokens, widened: dequantized, label: "\(bits)-bit")
    }
  }

  @Test func shapesThatDoNotDivideStayUnquantized() {
    let matrix = WeightMatrix.owning([Float](repeating: 1, count: 3 * 40), rows: 3, columns: 40)
    #expect(matrix.quantized(bits: 4, groupSize: 64).quantization == nil)
  }
}

/// Quantized weights repacked for int8 dot products (`AffineQuantizedStorage.interleaved()`), multiplied with
/// activations quantized to int8 per group: the repacking keeps every value, and on every path the product equals
/// the same arithmetic done in double precision, within the bound that int8 activations allow of the fp32 product.
@Suite("Int8 activations")
struct Int8ActivationTests {
  static let shapes = [(1, 9, 64, 64), (3, 16, 128, 32), (8, 33, 256, 128), (13, 70, 192, 64), (70, 17, 128, 64)]

  static func quantizedMatrix(rows: Int, columns: Int, bits: Int, groupSize: Int) throws -> WeightMatrix {
    var generator = SystemRandomNumberGenerator()
    let weights = (0..<(rows * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
    let matrix = WeightMatrix.owning(weights, rows: rows, columns: columns).quantized(bits: bits, groupSize: groupSize)
    _ = try #require(matrix.quantization)
    return matrix
  }

  @Test(arguments: [4, 6, 8])
  func interleavingKeepsEveryValue(bits: Int) throws {
    for (_, rows, columns, groupSize) in Self.shapes {
      let matrix = try Self.quantizedMatrix(rows: rows, columns: columns, bits: bits, groupSize: groupSize)
      let mlx = try #require(matrix.quantization)
      let interleaved = mlx.interleaved()
      #expect(interleaved.layout == .interleaved)
      #expect(interleaved.interleaved() === interleaved)
      let original = mlx.mlxLayout()
      let (codes, scales, biases) = interleaved.mlxLayout()
      #expect(codes == original.codes)
      // Scales and biases are kept in bf16 (as MLX stores them for bf16 models).
      let bf16 = { (v: Float) in Convert.float(fromBFloat16: Convert.bfloat16(from: v)) }
      #expect(scales == original.scales.map(bf16))
      #expect(biases == original.biases.map(bf16))
      var expected = [Float]()
      for r in 0..<rows {
        for k in 0..<columns {
          let bit = (r * columns + k) * bits
          // An LSB-first bit stream: a 6-bit code may straddle two bytes.
          let pair = Int(codes[bit / 8]) | (bit / 8 + 1 < codes.count ? Int(codes[bit / 8 + 1]) << 8 : 0)
          let q = (pair >> (bit % 8)) & ((1 << bits) - 1)
          let g = r * (columns / groupSize) + k / groupSize
          expected.append(Float(q) * scales[g] + biases[g])
        }
      }
      #expect(interleaved.matrix(elementType: .float32).toFloatArray() == expected)
    }
  }

  @Test(arguments: [4, 6, 8])
  func productMatchesTheSameArithmeticInDouble(bits: Int) throws {
    var generator = SystemRandomNumberGenerator()
    for (tokens, rows, columns, groupSize) in Self.shapes {
      let matrix = try Self.quantizedMatrix(rows: rows, columns: columns, bits: bits, groupSize: groupSize)
      let storage = try #require(matrix.quantization).interleaved()
      let interleaved = storage.matrix(elementType: .float32)
      let (w, biases) = (interleaved.toFloatArray(), storage.mlxLayout().biases)
      var input = (0..<(tokens * columns)).map { _ in Float.random(in: -3...3, using: &generator) }
      for i in 0..<groupSize { input[i] = 0 }  // an all-zero group (scale 0)
      input[columns - 1] = 40  // an outlier
      // Reference: x ≈ dx·round(x/dx) per group (dx = max|x|/127) multiplies scale·q; the bias multiplies the
      // exact x.
      var expected = [Double](repeating: 0, count: tokens * rows)
      var bound = [Double](repeating: 0, count: tokens * rows)
      var exact = [Double](repeating: 0, count: tokens * rows)
      for t in 0..<tokens {
        for g in 0..<(columns / groupSize) {
          let range = (t * columns + g * groupSize)..<(t * columns + (g + 1) * groupSize)
          let amax = input[range].map { abs($0) }.max() ?? 0
          let dx = amax / 127
          let q = input[range].map { amax > 0 ? ($0 * (127 / amax)).rounded(.toNearestOrEven) : 0 }
          for r in 0..<rows {
            for (j, k) in range.enumerated() {
              let wk = Double(w[r * columns + g * groupSize + j])
              let bias = Double(biases[r * (columns / groupSize) + g])
              expected[t * rows + r] += (wk - bias) * Double(q[j]) * Double(dx) + bias * Double(input[k])
              exact[t * rows + r] += wk * Double(input[k])
              bound[t * rows + r] += abs(wk - bias) * Double(dx) / 2
            }
          }
        }
      }
      for path in KernelPath.allCases {
        var output = [Float](repeating: .nan, count: tokens * rows)
        input.withUnsafeBufferPointer { x in
          output.withUnsafeMutableBufferPointer { y in
            MatMul.linear(
              x.baseAddress!, tokens: tokens, weight: interleaved, into: y.baseAddress!,
              pool: ComputePool(threadCount: 2), path: path)
          }
        }
        let label = "\(bits)-bit \(MatMul.supportedPath(path)) \(tokens)x\(rows)x\(columns)/\(groupSize)"
        // The int8 sums are exact; what remains is fp32 rounding of the per-group scaling and the bias sums.
        let worst = zip(output, expected).map { abs(Double($0) - $1) }.max() ?? .infinity
        #expect(worst < 1e-4 * Double(columns).squareRoot(), "\(label): \(worst)")
        let outside = (0..<output.count).filter { abs(Double(output[$0]) - exact[$0]) > bound[$0] + 1e-3 }
        #expect(outside.isEmpty, "\(label): \(outside.count) outputs further from the fp32 product than int8 allows")
      }
    }
  }

  /// A layer's projections of one input in one call (`MatMul.linear(_:tokens:weights:into:)`) give exactly what
  /// one call per matrix gives: interleaved matrices share the quantized input and split their blocks together
  /// (rows that are not a multiple of 16, matrices smaller than a block), and a set with another kind of matrix
  /// falls back to one product at a time.
  @Test(arguments: [1, 5, 40])
  func severalMatricesInOneCallEqualOneCallEach(tokens: Int) throws {
    var generator = SystemRandomNumberGenerator()
    let columns = 128
    let interleaved = try [(4, 70), (4, 16), (8, 9), (4, 33)].map { bits, rows in
      try #require(Self.quantizedMatrix(rows: rows, columns: columns, bits: bits, groupSize: 64).quantization)
        .interleaved().matrix(elementType: .float32)
    }
    let float = WeightMatrix.owning(
      (0..<(24 * columns)).map { _ in Float.random(in: -1...1, using: &generator) }, rows: 24, columns: columns)
    let input = (0..<(tokens * columns)).map { _ in Float.random(in: -3...3, using: &generator) }
    let pool = ComputePool(threadCount: 2)
    for set in [interleaved, [interleaved[0], float, interleaved[2]]] {
      let outputs = set.map { UnsafeMutablePointer<Float>.allocate(capacity: tokens * $0.rows) }
      defer { outputs.forEach { $0.deallocate() } }
      for (y, w) in zip(outputs, set) { y.initialize(repeating: .nan, count: tokens * w.rows) }
      input.withUnsafeBufferPointer { x in
        MatMul.linear(x.baseAddress!, tokens: tokens, weights: set, into: outputs, pool: pool)
      }
      for (y, w) in zip(outputs, set) {
        var alone = [Float](repeating: .nan, count: tokens * w.rows)
        input.withUnsafeBufferPointer { x in
          alone.withUnsafeMutableBufferPointer {
            MatMul.linear(x.baseAddress!, tokens: tokens, weight: w, into: $0.baseAddress!, pool: pool)
          }
        }
        #expect(Array(UnsafeBufferPointer(start: y, count: tokens * w.rows)) == alone, "\(w.rows) rows")
      }
    }
  }
}

/// The compute pool's spinning workers: every unit runs exactly once, whether calls come one after another (the
/// shared workers), from several threads at once (one takes the workers, the others fall back to Dispatch), or
/// nested inside a running call.
@Suite("Compute pool")
struct ComputePoolTests {
  final class Counts: @unchecked Sendable {
    let slots: UnsafeMutablePointer<Int>
    let count: Int
    init(_ count: Int) {
      self.count = count
      slots = .allocate(capacity: count)
      slots.initialize(repeating: 0, count: count)
    }
    deinit { slots.deallocate() }
    var all: [Int] { Array(UnsafeBufferPointer(start: slots, count: count)) }
  }

  @Test func everyUnitRunsOnce() {
    for threads in [1, 2, 3, 8] {
      let pool = ComputePool(threadCount: threads)
      for count in [0, 1, 2, 7, 64, 1000] {
        for granularity in [1, 4, 16] {
          let counts = Counts(count)
          pool.parallelFor(count, granularity: granularity) { range in
            for i in range { counts.slots[i] += 1 }
          }
          #expect(counts.all.allSatisfy { $0 == 1 }, "\(threads) threads, \(count) units by \(granularity)")
        }
      }
    }
  }

  /// Back-to-back runs whose part counts change (2, then 8, …) with bodies too short for the worker to wake in time:
  /// a worker arriving late for a finished run must not claim parts of the next one (it once did, ran a part twice
  /// and left the caller waiting forever for a count it had overshot).
  @Test(.timeLimit(.minutes(1))) func lateWorkersNeverJoinTheNextRun() {
    let pool = ComputePool(threadCount: 2)
    let counts = Counts(64)
    // Busy threads beside the pool's make its worker late (descheduled) now and then, as on a loaded machine.
    let stop = Counts(1)
    for _ in 0..<2 {
      Thread.detachNewThread {
        var spins = 0
        while stop.slots[0] == 0 { spins &+= 1 }
      }
    }
    defer { stop.slots[0] = 1 }
    for round in 0..<100_000 {
      let units = round % 3 == 0 ? 2 : (round % 3 == 1 ? 8 : 64)
      pool.parallelFor(units) { range in
        for i in range { counts.slots[i] += 1 }
      }
    }
    let expected = (0..<64).map { i in (i < 2 ? 33_334 : 0) + (i < 8 ? 33_333 : 0) + 33_333 }
    #expect(counts.all == expected)
  }

  @Test func concurrentAndNestedCalls() async {
    let pool = ComputePool(threadCount: 2)
    await withTaskGroup(of: Bool.self) { group in
      for _ in 0..<4 {
        group.addTask {
          var ok = true
          for _ in 0..<200 {
            let outer = Counts(8)
            let inner = Counts(8 * 32)
            pool.parallelFor(8) { range in
              for i in range {
                outer.slots[i] += 1
                pool.parallelFor(32) { r in for j in r { inner.slots[i * 32 + j] += 1 } }
              }
            }
            ok = ok && outer.all.allSatisfy { $0 == 1 } && inner.all.allSatisfy { $0 == 1 }
          }
          return ok
        }
      }
      for await ok in group { #expect(ok) }
    }
  }
}

/// The decode attention kernels: scores against strided key rows and the probability-weighted sum of strided value
/// rows, against plain loops in double precision (odd sizes: column tails, more groups than one register block).
@Suite("Attention kernels")
struct AttentionKernelTests {
  @Test func stridedScoresAndWeightedRows() {
    var generator = SystemRandomNumberGenerator()
    for (groups, count, columns, stride) in [(4, 37, 64, 128), (5, 9, 40, 80), (1, 300, 256, 512), (8, 3, 130, 130)] {
      let q = (0..<(groups * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
      let rows = (0..<(count * stride)).map { _ in Float.random(in: -1...1, using: &generator) }
      let p = (0..<(groups * count)).map { _ in Float.random(in: 0...1, using: &generator) }
      var scores = [Float](repeating: .nan, count: groups * count)
      var sums = [Float](repeating: .nan, count: groups * columns)
      MatMul.product(
        q, tokens: groups, weights: rows, rows: count, columns: columns, rowStride: stride, into: &scores, stride: count)
      MatMul.weightedRows(p, groups: groups, count: count, rows: rows, rowStride: stride, columns: columns, into: &sums)
      for g in 0..<groups {
        for s in 0..<count {
          let expected = (0..<columns).reduce(0.0) { $0 + Double(q[g * columns + $1]) * Double(rows[s * stride + $1]) }
          #expect(abs(Double(scores[g * count + s]) - expected) < 1e-4)
        }
        for c in 0..<columns {
          let expected = (0..<count).reduce(0.0) { $0 + Double(p[g * count + $1]) * Double(rows[$1 * stride + c]) }
          #expect(abs(Double(sums[g * columns + c]) - expected) < 1e-4)
        }
      }
    }
  }
}
