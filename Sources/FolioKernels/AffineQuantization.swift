import CFolioKernels
import FolioBase
import Foundation

/// Weights quantized group-wise with a scale and bias per group, in MLX's affine layout (qwen35.md §6.2):
/// per row, `bits`-bit codes packed LSB-first into `UInt32` words, and for each `groupSize` columns
/// `w ≈ scale · q + bias` with `q ∈ [0, 2^bits − 1]`.
public final class AffineQuantizedStorage: @unchecked Sendable {
  public let bits: Int
  public let groupSize: Int
  public let rows: Int
  public let columns: Int
  let codes: UnsafeMutablePointer<UInt32>
  let scales: UnsafeMutablePointer<Float>
  let biases: UnsafeMutablePointer<Float>
  /// Keeps external codes (a mapped checkpoint) alive; `nil` when this object allocated them.
  private let codesOwner: AnyObject?

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
    codes = UnsafeMutablePointer(mutating: external.assumingMemoryBound(to: UInt32.self))
    let groups = rows * (columns / groupSize)
    self.scales = .allocate(capacity: max(groups, 1))
    self.biases = .allocate(capacity: max(groups, 1))
    scales.withUnsafeBufferPointer { if let b = $0.baseAddress { self.scales.update(from: b, count: groups) } }
    biases.withUnsafeBufferPointer { if let b = $0.baseAddress { self.biases.update(from: b, count: groups) } }
  }

  /// Quantizes `rows × columns` weights, one row at a time, as `mlx.core.quantize` does: per group, the scale
  /// spreads [min, max] over the code range and the bias is the minimum; codes are rounded to nearest.
  init(quantizing source: WeightMatrix, bits: Int, groupSize: Int) {
    self.bits = bits
    self.groupSize = groupSize
    rows = source.rows
    columns = source.columns
    codesOwner = nil
    let words = columns * bits / 32
    let groups = columns / groupSize
    codes = .allocate(capacity: max(rows * words, 1))
    codes.initialize(repeating: 0, count: rows * words)
    scales = .allocate(capacity: max(rows * groups, 1))
    biases = .allocate(capacity: max(rows * groups, 1))
    let levels = Float((1 << bits) - 1)
    let (codes, scales, biases) = (UncheckedSendable(codes), UncheckedSendable(scales), UncheckedSendable(biases))
    let columns = columns
    // Rows are independent (each starts on a word boundary): quantize them on every core.
    ComputePool().parallelFor(rows, minimumPerThread: 16) { range in
      let row = UnsafeMutablePointer<Float>.allocate(capacity: columns)
      defer { row.deallocate() }
      for r in range {
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
            let q = UInt32(min(max(((row[i] - low) / scale).rounded(), 0), levels))
            let bit = i * bits
            codes.value[r * words + bit / 32] |= q << UInt32(bit % 32)
          }
        }
      }
    }
  }

  deinit {
    if codesOwner == nil { codes.deallocate() }
    scales.deallocate()
    biases.deallocate()
  }

  /// The C kernels' view of this storage.
  var descriptor: folio_affine_weights {
    folio_affine_weights(
      codes: codes, scales: scales, biases: biases, bits: Int32(bits), group_size: groupSize)
  }

  /// Whether a matrix of `columns` can be quantized with these settings.
  public static func canQuantize(columns: Int, bits: Int, groupSize: Int) -> Bool {
    (bits == 4 || bits == 8) && groupSize % 32 == 0 && columns % groupSize == 0
  }

  /// The packed codes, `[rows, columns·bits/32]` little-endian `UInt32` words, as bytes.
  public var codeBytes: Data { Data(bytes: codes, count: rows * columns * bits / 8) }
  /// Per-group scales, `[rows, columns/groupSize]`.
  public var scaleValues: [Float] { Array(UnsafeBufferPointer(start: scales, count: rows * (columns / groupSize))) }
  /// Per-group biases, `[rows, columns/groupSize]`.
  public var biasValues: [Float] { Array(UnsafeBufferPointer(start: biases, count: rows * (columns / groupSize))) }

  /// A weight matrix over this storage (`elementType` names the type the scales were stored in).
  public func matrix(elementType: WeightElementType) -> WeightMatrix {
    WeightMatrix(
      base: UnsafeRawPointer(codes), rows: rows, columns: columns, elementType: elementType, owner: self,
      quantization: self)
  }
}

extension WeightMatrix {
  /// This matrix quantized to `bits` (4 or 8) with `groupSize` columns per scale/bias; `self` when the shape does
  /// not allow it (the matrix then stays in its stored type).
  public func quantized(bits: Int, groupSize: Int = 64) -> WeightMatrix {
    guard quantization == nil, AffineQuantizedStorage.canQuantize(columns: columns, bits: bits, groupSize: groupSize)
    else { return self }
    return AffineQuantizedStorage(quantizing: self, bits: bits, groupSize: groupSize).matrix(elementType: elementType)
  }
}
