import FolioKernels
import FolioTensors
import Foundation
import Testing

@testable import FolioModel

/// `folio models quantize` writes exactly the layout mlx-lm writes (same tensor names, shapes and dtypes as the
/// folder mlx-lm converted from the same checkpoint), and the folder loads back to the same model as quantizing at load.
@Suite("MLX export")
struct MLXExportTests {
  @Test(arguments: [4, 6, 8])
  func writesMLXLayoutAndLoadsBack(bits: Int) throws {
    let output = try Fixtures.temporaryFolder().appendingPathComponent("quantized")
    try MLXExport.quantize(input: Fixtures.model("tiny-dense"), output: output, bits: bits, groupSize: 64)

    let ours = try TensorStore(folder: output)
    let theirs = try TensorStore(folder: Fixtures.model("tiny-dense-mlx-\(bits)bit"))
    let ourText = Set(ours.tensors.keys.filter { $0.hasPrefix("language_model.") })
    #expect(ourText == Set(theirs.tensors.keys))
    for name in ourText.sorted() {
      let a = try #require(ours[name])
      let b = try #require(theirs[name])
      #expect(a.shape == b.shape && a.dtype == b.dtype, "\(name): \(a.dtype)\(a.shape) vs mlx-lm \(b.dtype)\(b.shape)")
    }
    #expect(ours.tensors.keys.contains { $0.hasPrefix("vision_tower.") }, "the vision tower travels along")

    let exported = try Checkpoint(folder: output)
    #expect(exported.config.quantization?.bits == bits)
    let inMemory = try Checkpoint(folder: Fixtures.model("tiny-dense"), quantizeBits: bits)
    let reference = try ReferenceFile.load("tiny-dense")
    let pool = ComputePool(threadCount: 2)
    for c in reference.cases.prefix(2) {
      var s1 = exported.textModel.makeState()
      var s2 = inMemory.textModel.makeState()
      let a = try exported.textModel.forward(tokens: c.promptIDs, state: &s1, pool: pool)
      let b = try inMemory.textModel.forward(tokens: c.promptIDs, state: &s2, pool: pool)
      // Same codes, scales and biases; only summation order may differ (other suites switch kernel paths).
      let worst = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
      #expect(worst < 1e-4, "\(c.name): the exported folder computes what quantizing at load computes (\(worst))")
    }
  }

  @Test func refusesAnExistingOutputFolder() throws {
    let output = try Fixtures.temporaryFolder()
    #expect(throws: (any Error).self) {
      try MLXExport.quantize(input: Fixtures.model("tiny-dense"), output: output, bits: 4, groupSize: 64)
    }
  }
}
