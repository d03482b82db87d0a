import CFolioKernels
import FolioBase
import Foundation

/// Weights quantized group-wise with a scale and bias per group, in MLX's affine layout (qwen35.md §6.2):
/// per row, `bits`-bit codes packed LSB-first into `UInt32` words, and for each `groupSize` columns
/// `w ≈ scale · q + bias` with `q ∈ [0, 2^bits − 1]`.
///
/// `interleaved()` repacks the same codes into blocks of 16 rows for the int8-activation kernels (VNNI dot
/// products), with each group's scales and biases next to its codes in bf16 (as MLX stores them for bf16 models).
public final class AffineQuantizedStorage: @unchecked Sendable {
  /// How the codes, scales and biases are ordered in memory.
  public enum Layout: Sendable {
    /// MLX's: row after row (codes `[rows, columns·bits/32]` words, scales and biases `[rows, groups]`).
    case mlx
    /// Blocks of 16 rows for int8 dot products (`folio_interleaved_weights` in CFolioKernels.h).
    case interleaved
  }

  public let bits: Int
  public let groupSize: Int
  public let rows: Int
  public let columns: Int
  public var layout: Layout { scales == nil ? .interleaved : .mlx }
  let codes: UnsafeMutableRawPointer
  /// MLX layout only (the interleaved layout keeps them with the codes).
  let scales: UnsafeMutablePointer<Float>?
  let biases: UnsafeMutablePointer<Float>?
  /// Keeps external codes (a mapped checkpoint) alive; `nil` when this object allocated them.
  private let codesOwner: AnyObject?
  /// Size of the huge-page mapping holding interleaved codes (`folio_allocate_weights`), if they live in one.
  private let mappedBytes: Int?

  /// Wraps codes already in MLX's layout (e.g. memory-mapped from an MLX folder) with their scales and biases.
  public init(
    codes external: UnsafeRawPointer, codesOwner: AnyObject, scales: [Float], biases: [Float], bits: Int,
    groupSize: Int, rows: Int, columns: Int
  ) {
    self.bits = bits
    self.groupSize = groupSize
    self.rows = rows
    self.columns = columns
    self.codesOwner = codesOwner
    mappedBytes = nil
    codes = UnsafeMutableRawPointer(mutating: external)
    let groups = rows * (columns / groupSize)
    let scaleCopy = UnsafeMutablePointer<Float>.allocate(capacity: max(groups, 1))
    let biasCopy = UnsafeMutablePointer<Float>.allocate(capacity: max(groups, 1))
    scales.withUnsafeBufferPointer { if let b = $0.baseAddress { scaleCopy.update(from: b, count: groups) } }
    biases.withUnsafeBufferPointer { if let b = $0.baseAddress { biasCopy.update(from: b, count: groups) } }
    self.scales = scaleCopy
    self.biases = biasCopy
  }

  /// Quantizes `rows × columns` weights, one row at a time, as `mlx.core.quantize` does: per group, the scale
  /// spreads [min, max] over the code range and the bias is the minimum; codes are rounded to nearest.
  /// `releaseSource` is called with each finished slice of the source rows (first byte, byte count), so a loader can
  /// hand the pages of a memory-mapped source back while the rest is still being quantized.
  init(
    quantizing source: WeightMatrix, bits: Int, groupSize: Int,
    releaseSource: (@Sendable (UnsafeRawPointer, Int) -> Void)? = nil
  ) {
    self.bits = bits
    self.groupSize = groupSize
    rows = source.rows
    columns = source.columns
    codesOwner = nil
    mappedBytes = nil
    let words = columns * bits / 32
    let groups = columns / groupSize
    let codeWords = UnsafeMutablePointer<UInt32>.allocate(capacity: max(rows * words, 1))
    codeWords.initialize(repeating: 0, count: rows * words)
    codes = UnsafeMutableRawPointer(codeWords)
    let scaleValues = UnsafeMutablePointer<Float>.allocate(capacity: max(rows * groups, 1))
    let biasValues = UnsafeMutablePointer<Float>.allocate(capacity: max(rows * groups, 1))
    scales = scaleValues
    biases = biasValues
    let levels = Float((1 << bits) - 1)
    let (codes, scales, biases) = (
      UncheckedSendable(codeWords), UncheckedSendable(scaleValues), UncheckedSendable(biasValues)
    )
    let columns = columns
    // Rows are independent (each starts on a word boundary): quantize them on every core.
    ComputePool().parallelFor(rows, minimumPerThread: 16) { range in
      let row = UnsafeMutablePointer<Float>.allocate(capacity: columns)
      defer { row.deallocate() }
      let releaseEvery = 256
      for r in range {
        if let releaseSource, (r - range.lowerBound) % releaseEvery == 0, r > range.lowerBound {
          releaseSource(source.base + (r - releaseEvery) * source.rowStride, releaseEvery * source.rowStride)
        }
        source.copyRow(r, into: row)
        for g in 0..<groups {
          let start = g * groupSize
          var low = row[start]
          var high = row[start]
          for i in start..<(start + groupSize) {
            low = min(low, row[i])
            high = max(high, row[i])
          }
          let scale = high > low ? (high - low) / levels : 1
          scales.value[r * groups + g] = scale
          biases.value[r * groups + g] = low
          for i in start..<(start + groupSize) {
            let q = UInt64(min(max(((row[i] - low) / scale).rounded(), 0), levels))
            let bit = i * bits
            // An LSB-first bit stream: a 6-bit code may straddle two words.
            let shifted = q << UInt64(bit % 32)
            codes.value[r * words + bit / 32] |= UInt32(truncatingIfNeeded: shifted)
            if bit % 32 + bits > 32 {
              codes.value[r * words + bit / 32 + 1] |= UInt32(truncatingIfNeeded: shifted >> 32)
            }
          }
        }
      }
    }
  }

  /// Repacks MLX-layout storage into the interleaved layout (on every core).
  private init(interleaving source: AffineQuantizedStorage, _ descriptor: folio_affine_weights) {
    bits = source.bits
    groupSize = source.groupSize
    rows = source.rows
    columns = source.columns
    codesOwner = nil
    let bytes = folio_interleaved_bytes(rows, columns, Int32(bits), groupSize)
    if let mapped = folio_allocate_weights(bytes) {
      codes = mapped
      mappedBytes = bytes
    } else {
      codes = .allocate(byteCount: max(bytes, 1), alignment: 64)
      mappedBytes = nil
    }
    scales = nil
    biases = nil
    let out = UncheckedSendable(codes.assumingMemoryBound(to: UInt8.self))
    let (rows, columns) = (rows, columns)
    ComputePool().parallelFor((rows + 15) / 16, minimumPerThread: 8) { blocks in
      var source = descriptor
      folio_interleave_affine(&source, rows, columns, blocks.lowerBound, blocks.upperBound, out.value)
    }
  }

  deinit {
    if let mappedBytes {
      folio_free_weights(codes, mappedBytes)
    } else if codesOwner == nil {
      codes.deallocate()
    }
    scales?.deallocate()
    biases?.deallocate()
  }

  /// This storage repacked for the int8-activation kernels (`self` when it already is).
  public func interleaved() -> AffineQuantizedStorage {
    guard let descriptor else { return self }
    return AffineQuantizedStorage(interleaving: self, descriptor)
  }

  /// The C kernels' view of MLX-layout storage (`nil` for the interleaved layout).
  var descriptor: folio_affine_weights? {
    guard let scales, let biases else { return nil }
    return folio_affine_weights(
      codes: codes.assumingMemoryBound(to: UInt32.self), scales: scales, biases: biases, bits: Int32(bits),
      group_size: groupSize)
  }

  /// The C kernels' view of interleaved storage.
  var interleavedDescriptor: folio_interleaved_weights {
    folio_interleaved_weights(
      codes: codes.assumingMemoryBound(to: UInt8.self), bits: folio_interleaved_layout_bits(Int32(bits)),
      group_size: groupSize, rows: rows, cols: columns)
  }

  /// Row `r` dequantized into `destination` (`columns` floats).
  func dequantizeRow(_ r: Int, into destination: UnsafeMutablePointer<Float>) {
    if var d = descriptor {
      folio_dequantize_rows(&d, columns, r, r + 1, destination)
    } else {
      var d = interleavedDescriptor
      folio_interleaved_dequantize_row(&d, r, destination)
    }
  }

  /// Whether a matrix of `columns` can be quantized with these settings.
  public static func canQuantize(columns: Int, bits: Int, groupSize: Int) -> Bool {
    (bits == 4 || bits == 6 || bits == 8) && groupSize % 32 == 0 && columns % groupSize == 0
  }

  /// Codes (`[rows, columns·bits/32]` little-endian `UInt32` words, as bytes), scales and biases (`[rows,
  /// columns/groupSize]`) in MLX's layout, copied back out of the interleaved layout if need be.
  public func mlxLayout() -> (codes: Data, scales: [Float], biases: [Float]) {
    let groups = rows * (columns / groupSize)
    if let scales, let biases {
      return (
        Data(bytes: codes, count: rows * columns * bits / 8),
        Array(UnsafeBufferPointer(start: scales, count: groups)),
        Array(UnsafeBufferPointer(start: biases, count: groups))
      )
    }
    var words = [UInt32](repeating: 0, count: rows * columns * bits / 32)
    var s = [Float](repeating: 0, count: groups)
    var b = [Float](repeating: 0, count: groups)
    var d = interleavedDescriptor
    folio_deinterleave_affine(&d, Int32(bits), 0, rows, &words, &s, &b)
    return (words.withUnsafeBytes { Data($0) }, s, b)
  }

  /// A weight matrix over this storage (`elementType` names the type the scales were stored in).
  public func matrix(elementType: WeightElementType) -> WeightMatrix {
    WeightMatrix(
      base: UnsafeRawPointer(codes), rows: rows, columns: columns, elementType: elementType, owner: self,
      quantization: self)
  }
}

/// How matrices with quantized weights multiply their fp32 activations.
public enum QuantizedActivations: Sendable, Equatable {
  /// Activations quantized to int8 per group and multiplied with int8 dot products (weights interleaved at load).
  case int8
  /// Weights dequantized in registers and multiplied with fp32 activations, as MLX's runtime does.
  case float32
  /// `.int8` for quantized layers (where the CPU has int8 dot products), and a bf16 checkpoint's prompts (from 8
  /// tokens) and vision linear layers multiplied with activations rounded to bf16 (AVX512_BF16 dot products, twice
  /// the fp32 rate), as transformers computes a bf16 model; decode stays fp32 (it is bound by memory, not arithmetic).
  case bfloat16

  /// `.int8` on CPUs with int8 dot products (AVX-512 VNNI), else `.float32`. Never `.bfloat16`: unquantized weights
  /// keep fp32 arithmetic, which matches the reference implementation, unless asked otherwise.
  public static var fastest: QuantizedActivations { folio_has_int8_dot() != 0 ? .int8 : .float32 }

  /// Whether quantized layers are repacked for int8 dot products.
  public var int8Quantized: Bool { self == .int8 || (self == .bfloat16 && folio_has_int8_dot() != 0) }

  /// Whether bf16 weights multiply prompts with bf16 activations (only where the CPU has bf16 dot products).
  public var bf16Prompts: Bool { self == .bfloat16 && folio_has_bf16_dot() != 0 }
}

extension WeightMatrix {
  /// This matrix quantized to `bits` (4, 6 or 8) with `groupSize` columns per scale/bias; `self` when the shape does
  /// not allow it (the matrix then stays in its stored type).
  /// `releaseSource` receives finished slices of this matrix's storage (see `AffineQuantizedStorage`).
  public func quantized(
    bits: Int, groupSize: Int = 64, releaseSource: (@Sendable (UnsafeRawPointer, Int) -> Void)? = nil
  ) -> WeightMatrix {
    guard quantization == nil, AffineQuantizedStorage.canQuantize(columns: columns, bits: bits, groupSize: groupSize)
    else { return self }
    return AffineQuantizedStorage(quantizing: self, bits: bits, groupSize: groupSize, releaseSource: releaseSource)
      .matrix(elementType: elementType)
  }
}
