// swift-tools-version: 6.1
import PackageDescription

/// Folio: a local document-processing daemon running Qwen3.5 on the CPU.
///
/// Targets point one way: C shims → codecs / kernels → model → engine → pipelines → store → daemon → CLI → folio.
/// Only FolioStore imports GRDB; only FolioCodecs imports the C image libraries.
let package = Package(
  name: "Folio",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "folio", targets: ["folio"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
  ],
  targets: [
    .target(name: "FolioBase"),
    .target(name: "FolioTensors", dependencies: ["FolioBase"]),
    .target(name: "CFolioKernels", cSettings: [.unsafeFlags(["-O3"])]),
    .target(
      name: "FolioKernels", dependencies: ["FolioBase", "CFolioKernels"],
      swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
    .target(name: "FolioTokenizer", dependencies: ["FolioBase"]),
    // Image decoding (issue 3): libpng/libjpeg through pkg-config, a C shim that owns setjmp/error_exit.
    .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
    .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
    .target(name: "CFolioImage", dependencies: ["CPNG", "CJPEG"]),
    .target(name: "FolioCodecs", dependencies: ["FolioBase", "CFolioImage"]),
    // The daemon (issue 4).
    .target(name: "FolioPipelines", dependencies: ["FolioBase", .product(name: "Yams", package: "Yams")]),
    .target(name: "FolioStore", dependencies: ["FolioBase", .product(name: "GRDB", package: "GRDB.swift")]),
    .target(
      name: "FolioInbox", dependencies: ["FolioBase", .product(name: "Crypto", package: "swift-crypto")]),
    .target(
      name: "FolioModel", dependencies: ["FolioBase", "FolioTensors", "FolioKernels"],
      swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
    .target(
      name: "FolioEngine",
      dependencies: [
        "FolioBase", "FolioTensors", "FolioKernels", "FolioTokenizer", "FolioModel", "FolioCodecs",
        .product(name: "Logging", package: "swift-log"),
      ]),
    // The daemon (issue 4): configuration, intake → jobs → engine → results, scheduler, commands' logic.
    .target(
      name: "FolioDaemon",
      dependencies: [
        "FolioBase", "FolioPipelines", "FolioStore", "FolioInbox", "FolioEngine", "FolioModel", "FolioKernels",
        "FolioCodecs", .product(name: "Yams", package: "Yams"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ]),
    .target(
      name: "FolioCLI",
      dependencies: [
        "FolioBase", "FolioEngine", "FolioTokenizer", "FolioModel", "FolioCodecs", "FolioDaemon", "FolioPipelines",
        "FolioStore", "FolioInbox",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]),
    .executableTarget(name: "folio", dependencies: ["FolioCLI"]),
    .testTarget(name: "FolioTokenizerTests", dependencies: ["FolioTokenizer"]),
    .testTarget(name: "FolioModelTests", dependencies: ["FolioModel", "FolioTensors", "FolioKernels"]),
    .testTarget(
      name: "FolioEngineTests", dependencies: ["FolioEngine", "FolioModel", "FolioTokenizer", "FolioCodecs"]),
    .testTarget(name: "FolioCLITests", dependencies: ["FolioCLI"]),
    .testTarget(name: "FolioCodecsTests", dependencies: ["FolioCodecs"]),
    .testTarget(name: "FolioPipelinesTests", dependencies: ["FolioPipelines"]),
    .testTarget(name: "FolioStoreTests", dependencies: ["FolioStore"]),
    .testTarget(name: "FolioInboxTests", dependencies: ["FolioInbox"]),
    .testTarget(
      name: "FolioDaemonTests",
      dependencies: ["FolioDaemon", "FolioStore", "FolioPipelines", "FolioInbox", "FolioEngine", "FolioBase"]),
  ]
)
