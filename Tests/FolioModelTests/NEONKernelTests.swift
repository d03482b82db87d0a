import Foundation
import Testing

/// The arm64 NEON kernels, checked from an x86-64 host: `scripts/check_neon_kernels.sh` cross-compiles the C kernels
/// for arm64 and runs every NEON kernel against its portable twin under qemu-aarch64. Enabled where the cross compiler
/// and qemu are on PATH (CI installs gcc-aarch64-linux-gnu and qemu-user); an arm64 host needs no emulation, since
/// the other kernel tests run the NEON path there natively.
@Suite("NEON kernels under emulation")
struct NEONKernelTests {
  /// Every kernel the check prints a line for.
  static let kernels = [
    "folio_linear_rows_strided_on", "folio_linear_rows_on", "folio_weighted_rows", "folio_linear_bf16_panels_on",
    "folio_linear_rows_affine_on", "folio_quantize_activations", "folio_linear_int8_on", "folio_softmax",
    "folio_silu_multiply", "folio_gelu_tanh",
  ]

  static let repositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
      url.deleteLastPathComponent()
      if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { break }
    }
    return url
  }()

  /// Whether an executable named `tool` is in a directory of PATH.
  static func isOnPath(_ tool: String) -> Bool {
    let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
    return directories.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
  }

  /// Not on arm64 (nothing to emulate there); elsewhere when the cross compiler and qemu are installed.
  static var canEmulate: Bool {
    #if arch(arm64)
      return false
    #else
      return isOnPath("aarch64-linux-gnu-gcc") && isOnPath("qemu-aarch64")
    #endif
  }

  @Test(
    .enabled(
      if: NEONKernelTests.canEmulate, "needs aarch64-linux-gnu-gcc and qemu-aarch64 on PATH, on a non-arm64 host"))
  func everyNEONKernelMatchesItsPortableTwin() throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = [Self.repositoryRoot.appendingPathComponent("scripts/check_neon_kernels.sh").path]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "check_neon_kernels.sh failed:\n\(output)")
    let lines = output.split(separator: "\n")
    for kernel in Self.kernels {
      #expect(lines.contains { $0.hasPrefix("\(kernel) ") && $0.hasSuffix(" ok") }, "no passing line for \(kernel)")
    }
  }
}
