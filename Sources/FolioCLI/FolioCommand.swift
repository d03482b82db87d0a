import ArgumentParser

/// The `folio` command line. The executable only calls `FolioCommand.main()`; every command lives here.
///
/// Exit codes: 0 success; 1 a runtime error (printed as `Error: [code] message`); 64 bad usage.
public struct FolioCommand: AsyncParsableCommand {
  public static let configuration = CommandConfiguration(
    commandName: "folio",
    abstract: "Local document processing with Qwen3.5 on the CPU.",
    version: "0.1.0",
    subcommands: [
      DaemonCommand.self, StatusCommand.self, ResultsCommand.self, JobsCommand.self, ReprocessCommand.self,
      TranslateCommand.self, SetsCommand.self, AddCommand.self, PipelinesCommand.self, DoctorCommand.self,
      GenerateCommand.self, TokenizeCommand.self, BenchCommand.self, ModelsCommand.self,
    ])

  public init() {}
}
