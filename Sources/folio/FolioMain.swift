import FolioCLI

/// The executable only hands control to `FolioCLI`.
@main
enum FolioMain {
  static func main() async {
    await FolioCommand.main()
  }
}
