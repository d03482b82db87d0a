import ArgumentParser
import FolioModel
import Foundation

/// `folio models`: work on checkpoint folders.
struct ModelsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "models", abstract: "Work on model folders.", subcommands: [Quantize.self])

  /// `folio models quantize`: write an MLX quantized folder from a Hugging Face one.
  struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Write an MLX-layout quantized copy (affine 4-, 6- or 8-bit) of a Hugging Face Qwen3.5 folder.",
      discussion: "The output loads in Folio (and in MLX tools) as it is: folio generate --model OUT.")

    @Option(name: .long, help: "Bits per weight: 4, 6 or 8.")
    var bits: Int

    @Option(name: .long, help: "Columns sharing one scale and bias (a multiple of 32).")
    var groupSize: Int = 64

    @Argument(help: "The Hugging Face model folder (or cache entry, or model id).")
    var input: String

    @Argument(help: "The folder to create.")
    var output: String

    func run() throws {
      let source = try ModelLocator().resolve(input)
      let target = URL(fileURLWithPath: output)
      try MLXExport.quantize(input: source, output: target, bits: bits, groupSize: groupSize)
      print("wrote \(bits)-bit MLX folder \(target.path) (from \(source.path))")
    }
  }
}
