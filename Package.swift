// swift-tools-version: 6.1
import PackageDescription

/// Folio: a local document-processing daemon running Qwen3.5 on the CPU.
///
/// Targets point one way: FolioBase → FolioTensors/FolioKernels/FolioTokenizer → FolioModel → FolioEngine → FolioCLI → folio.
let package = Package(
  name: "Folio",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "folio", targets: ["folio"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
  ],
  targets: [
    .target(name: "FolioBase"),
    .target(name: "FolioTensors", dependencies: ["FolioBase"]),
    .target(
      name: "FolioKernels", dependencies: ["FolioBase"],
      swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
    .target(name: "FolioTokenizer", dependencies: ["FolioBase"]),
    .target(
      name: "FolioModel", dependencies: ["FolioBase", "FolioTensors", "FolioKernels"],
      swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
    .target(
      name: "FolioEngine",
      dependencies: [
        "FolioBase", "FolioTensors", "FolioKernels", "FolioTokenizer", "FolioModel",
        .product(name: "Logging", package: "swift-log"),
      ]),
    .target(
      name: "FolioCLI",
      dependencies: [
        "FolioBase", "FolioEngine", "FolioTokenizer", "FolioModel",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]),
    .executableTarget(name: "folio", dependencies: ["FolioCLI"]),
    .testTarget(name: "FolioTokenizerTests", dependencies: ["FolioTokenizer"]),
    .testTarget(name: "FolioModelTests", dependencies: ["FolioModel", "FolioTensors", "FolioKernels"]),
    .testTarget(name: "FolioEngineTests", dependencies: ["FolioEngine", "FolioModel", "FolioTokenizer"]),
    .testTarget(name: "FolioCLITests", dependencies: ["FolioCLI"]),
  ]
)
