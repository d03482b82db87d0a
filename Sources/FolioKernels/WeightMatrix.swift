import CFolioKernels

/// The element type of stored weights. Activations are always `Float`; weights stay in the checkpoint's
/// type in memory (memory-mapped) and are widened inside the kernels, accumulating in fp32.
public enum WeightElementType: Sendable, Equatable {
  case float32
  case bfloat16
  case float16

  /// Bytes per element.
  public var byteWidth: Int { self == .float32 ? 4 : 2 }
}

/// A read-only row-major matrix `[rows, columns]` of weights in a checkpoint's element type, e.g. a Hugging Face
/// linear layer's `weight` (`[out, in]`). The storage is usually a memory-mapped checkpoint kept alive by `owner`.
public struct WeightMatrix: @unchecked Sendable {
  /// First byte of row 0.
  public let base: UnsafeRawPointer
  public let rows: Int
  public let columns: Int
  public let elementType: WeightElementType
  /// Whatever keeps `base` valid (a mapped file, an owned buffer).
  public let owner: AnyObject?
  /// Affine group-quantized codes, scales and biases when the matrix is quantized (then `base` is unused by the
  /// kernels and `elementType` is the type it was quantized from).
  public let quantization: AffineQuantizedStorage?
  /// The same bf16 weights repacked into row panels for decode (then `base` is no longer read by the kernels).
  public let panels: BF16Panels?

  public init(
    base: UnsafeRawPointer, rows: Int, columns: Int, elementType: WeightElementType, owner: AnyObject?,
    quantization: AffineQuantizedStorage? = nil, panels: BF16Panels? = nil
  ) {
    self.base = base
    self.rows = rows
    self.columns = columns
    self.elementType = elementType
    self.owner = owner
    self.quantization = quantization
    self.panels = panels
  }

  /// Bytes from one row to the next.
  @inlinable public var rowStride: Int { columns * elementType.byteWidth }

  /// Widens (or dequantizes) row `r` into `destination` (which holds at least `columns` floats).
  public func copyRow(_ r: Int, into destination: UnsafeMutablePointer<Float>) {
    if let quantization {
      quantization.dequantizeRow(r, into: destination)
      return
    }
    if let panels {
      panels.copyRow(r, into: destination)
      return
    }
    Convert.widen(base + r * rowStride, elementType, count: columns, into: destination)
  }

  /// The whole matrix widened to fp32 (for small tensors: norms, biases, convolution taps).
  public func toFloatArray() -> [Float] {
    [Float](unsafeUninitializedCapacity: rows * columns) { buffer, count in
      if let p = buffer.baseAddress {
        for r in 0..<rows { copyRow(r, into: p + r * columns) }
      }
      count = rows * columns
    }
  }

  /// A bf16 matrix repacked into row panels (`self` for other types, quantized matrices, or when memory for the
  /// copy cannot be had); `releaseSource` gets each slice of the row-major source once it is copied. With
  /// `bf16Activations`, prompts multiply the panels with activations rounded to bf16 (see `BF16Panels`).
  public func packedIntoPanels(
    bf16Activations: Bool = false, releaseSource: ((UnsafeRawPointer, Int) -> Void)? = nil
  ) -> WeightMatrix {
    guard elementType == .bfloat16, quantization == nil, panels == nil,
      let packed = BF16Panels(
        source: base, rows: rows, columns: columns, bf16Activations: bf16Activations, releaseSource: releaseSource)
    else { return self }
    return WeightMatrix(
      base: base, rows: rows, columns: columns, elementType: elementType, owner: owner, panels: packed)
  }

  /// fp32 `values` (`[rows, columns]`) rounded to bf16 and packed into row panels that prompts multiply with
  /// activations rounded to bf16 (e.g. one attention head's keys); `nil` when memory for the panels cannot be had.
  public static func bf16Panels(rounding values: UnsafePointer<Float>, rows: Int, columns: Int) -> WeightMatrix? {
    let count = rows * columns
    let rounded = UnsafeMutablePointer<UInt16>.allocate(capacity: Int(folio_even_odd_floats(count)))
    defer { rounded.deallocate() }
    folio_bf16_round_rows(values, 1, count, rounded)
    guard let panels = BF16Panels(source: rounded, rows: rows, columns: columns, bf16Activations: true) else {
      return nil
    }
    return WeightMatrix(
      base: UnsafeRawPointer(panels.pointer), rows: rows, columns: columns, elementType: .bfloat16, owner: panels,
      panels: panels)
  }

  /// A matrix that owns a copy of `values` as fp32 (used for tests and for weights built at load).
  public static func owning(_ values: [Float], rows: Int, columns: Int) -> WeightMatrix {
    let box = FloatBuffer(values)
    return WeightMatrix(
      base: UnsafeRawPointer(box.pointer), rows: rows, columns: columns, elementType: .float32, owner: box)
  }
}

/// A heap buffer of floats with a stable address, for weights Folio builds itself.
public final class FloatBuffer: @unchecked Sendable {
  public let pointer: UnsafeMutablePointer<Float>
  public let count: Int
  public init(count: Int) {
    self.count = count
    pointer = .allocate(capacity: max(count, 1))
    pointer.initialize(repeating: 0, count: count)
  }
  public convenience init(_ values: [Float]) {
    self.init(count: values.count)
    values.withUnsafeBufferPointer { if let b = $0.baseAddress { pointer.update(from: b, count: values.count) } }
  }
  deinit { pointer.deallocate() }
}

/// Element-type conversions between checkpoint types and fp32.
public enum Convert {
  /// Exact bf16 → fp32 (bf16 is the top half of an fp32).
  @inlinable public static func float(fromBFloat16 bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
  }

  /// fp32 → bf16 with round-to-nearest-even, as torch does.
  @inlinable public static func bfloat16(from value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return 0x7FC0 }
    let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
  }

  /// Widens `count` elements of `type` at `source` into fp32.
  @inlinable public static func widen(
    _ source: UnsafeRawPointer, _ type: WeightElementType, count: Int, into destination: UnsafeMutablePointer<Float>
  ) {
    switch type {
    case .float32:
      destination.update(from: source.assumingMemoryBound(to: Float.self), count: count)
    case .bfloat16:
      var i = 0
      while i + 16 <= count {
        let h = source.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<UInt16>.self)
        let w = SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16
        UnsafeMutableRawPointer(destination + i).storeBytes(
          of: unsafeBitCast(w, to: SIMD16<Float>.self), as: SIMD16<Float>.self)
        i += 16
      }
      while i < count {
        destination[i] = float(fromBFloat16: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
        i += 1
      }
    case .float16:
      for i in 0..<count {
        destination[i] = Float(Float16(bitPattern: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
      }
    }
  }
}
