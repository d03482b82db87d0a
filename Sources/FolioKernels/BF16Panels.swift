import CFolioKernels

/// A bf16 matrix repacked into row panels (`panels.c`) in huge-page memory, so that a token's decode reads each
/// thread's share of the weights as one sequential stream. Row-major rows of a memory-mapped checkpoint are read as
/// several short streams on 4 KiB pages, which measured about half the memory bandwidth.
public final class BF16Panels: @unchecked Sendable {
  public let rows: Int
  public let columns: Int
  /// Whether prompts (several tokens at once) multiply with activations rounded to bf16 (`folio_linear_bf16_dot_on`)
  /// rather than widening the panels to fp32.
  public let bf16Activations: Bool
  let pointer: UnsafeMutablePointer<UInt16>
  private let bytes: Int

  /// Packs the row-major bf16 matrix at `source` (on every core), handing each slice of source rows to
  /// `releaseSource` (start, byte count) once it is copied; `nil` when no memory is left for the copy.
  public init?(
    source: UnsafeRawPointer, rows: Int, columns: Int, bf16Activations: Bool = false,
    releaseSource: ((UnsafeRawPointer, Int) -> Void)? = nil
  ) {
    bytes = folio_bf16_panel_bytes(rows, columns)
    guard rows > 0, columns > 0, let mapped = folio_allocate_weights(bytes) else { return nil }
    self.rows = rows
    self.columns = columns
    self.bf16Activations = bf16Activations
    pointer = mapped.assumingMemoryBound(to: UInt16.self)
    let blocks = (rows + 15) / 16
    let sliceBlocks = 256
    let (src, out) = (UncheckedSendable(source.assumingMemoryBound(to: UInt16.self)), UncheckedSendable(pointer))
    let pool = ComputePool()
    for first in stride(from: 0, to: blocks, by: sliceBlocks) {
      let end = min(first + sliceBlocks, blocks)
      pool.parallelFor(end - first, minimumPerThread: 16) { part in
        folio_bf16_pack_panels(
          src.value, rows, columns, first + part.lowerBound, first + part.upperBound, out.value)
      }
      let firstRow = first * 16
      let rowCount = min(end * 16, rows) - firstRow
      releaseSource?(source + firstRow * columns * 2, rowCount * columns * 2)
    }
  }

  deinit { folio_free_weights(pointer, bytes) }

  /// Row `r` widened to fp32 into `destination` (`columns` floats).
  public func copyRow(_ r: Int, into destination: UnsafeMutablePointer<Float>) {
    folio_bf16_panel_row(pointer, columns, r, destination)
  }
}
