import Foundation

/// Paths of the committed reference fixtures (made by `scripts/make_fixtures.py`).
enum Fixtures {
  static let root: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
      url.deleteLastPathComponent()
      if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { break }
    }
    return url.appendingPathComponent("Tests/Fixtures")
  }()

  static func model(_ name: String) -> URL { root.appendingPathComponent("models/\(name)") }
  static func reference(_ name: String) -> URL { root.appendingPathComponent("reference/\(name)") }

  /// A fresh temporary folder, removed by the caller.
  static func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("folio-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }
}

/// One recorded transformers run (see scripts/make_fixtures.py).
struct ReferenceCase: Decodable {
  var name: String
  var promptIDs: [Int]
  var greedyIDs: [Int]
  var topLogprobs: [[ReferenceLogprob]]?
  enum CodingKeys: String, CodingKey {
    case name, promptIDs = "prompt_ids", greedyIDs = "greedy_ids", topLogprobs = "top_logprobs"
  }
}

struct ReferenceLogprob: Decodable {
  var id: Int
  var logprob: Double
}

struct ReferenceFile: Decodable {
  var model: String
  var cases: [ReferenceCase]

  static func load(_ model: String) throws -> ReferenceFile {
    let data = try Data(contentsOf: Fixtures.reference("\(model).json"))
    return try JSONDecoder().decode(ReferenceFile.self, from: data)
  }
}
