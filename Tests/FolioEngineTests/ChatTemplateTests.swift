import Foundation
import Testing

@testable import FolioEngine

/// The Swift chat formatter against strings rendered by transformers' `apply_chat_template` with the real Qwen3.5
/// templates (small: non-thinking default; large: thinking default), recorded by `scripts/make_fixtures.py`.
@Suite("Chat template")
struct ChatTemplateTests {
  struct Case: Decodable {
    var template: String
    var name: String
    var messages: [ChatMessage]
    var addGenerationPrompt: Bool
    var enableThinking: Bool?
    var rendered: String
    var ids: [Int]
    enum CodingKeys: String, CodingKey {
      case template, name, messages, rendered, ids
      case addGenerationPrompt = "add_generation_prompt", enableThinking = "enable_thinking"
    }
  }

  struct File: Decodable {
    var cases: [Case]
  }

  /// The small (0.8B/2B) template ships with tiny-dense, the large (4B+) one with tiny-moe.
  static func templateSource(_ name: String) throws -> String {
    let model = name == "small" ? "tiny-dense" : "tiny-moe"
    return try String(
      contentsOf: EngineFixtures.model(model).appendingPathComponent("chat_template.jinja"), encoding: .utf8)
  }

  static func load() throws -> File {
    let data = try Data(contentsOf: EngineFixtures.reference("chat_template_cases.json"))
    return try JSONDecoder().decode(File.self, from: data)
  }

  @Test func rendersByteIdenticalToTransformers() throws {
    let file = try Self.load()
    #expect(file.cases.count >= 30)
    for c in file.cases {
      let template = ChatTemplate(templateSource: try Self.templateSource(c.template))
      let rendered = template.render(
        c.messages, addGenerationPrompt: c.addGenerationPrompt, enableThinking: c.enableThinking)
      #expect(rendered == c.rendered, "\(c.template)/\(c.name)")
    }
  }

  @Test func thinkingDefaultComesFromTheTemplate() throws {
    #expect(ChatTemplate(templateSource: try Self.templateSource("small")).thinksByDefault == false)
    #expect(ChatTemplate(templateSource: try Self.templateSource("large")).thinksByDefault == true)
  }
}

enum EngineFixtures {
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
}
