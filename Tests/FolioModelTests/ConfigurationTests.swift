import FolioBase
import Testing

@testable import FolioModel

@Suite("Configuration")
struct ConfigurationTests {
  func base() -> [String: Any] {
    [
      "model_type": "qwen3_5",
      "text_config": [
        "vocab_size": 100, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 8,
        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8,
      ] as [String: Any],
    ]
  }

  @Test func intervalRuleWithoutLayerTypes() throws {
    let c = try ModelConfiguration.parse(base(), source: "config.json")
    #expect(c.text.layerKinds.map { $0 == .fullAttention } == [false, false, false, true, false, false, false, true])
    #expect(c.text.rope.theta == 10_000_000)
    #expect(c.text.rotaryDimension == 2)
  }

  @Test func layerTypesMustMatchLayerCount() throws {
    var root = base()
    var text = root["text_config"] as! [String: Any]
    text["layer_types"] = ["linear_attention", "full_attention"]
    root["text_config"] = text
    #expect(throws: FolioError.self) { try ModelConfiguration.parse(root, source: "config.json") }
  }

  @Test func missingFieldIsNamed() throws {
    var root = base()
    var text = root["text_config"] as! [String: Any]
    text.removeValue(forKey: "hidden_size")
    root["text_config"] = text
    do {
      _ = try ModelConfiguration.parse(root, source: "config.json")
      Issue.record("expected an error")
    } catch let e as FolioError {
      #expect(e.code == .invalidConfig)
      #expect(e.message.contains("text_config.hidden_size"))
    }
  }
}

extension ConfigurationTests {
  @Test func zeroSizedLinearHeadsAreRejected() throws {
    var root = base()
    var text = root["text_config"] as! [String: Any]
    text["linear_value_head_dim"] = 0
    root["text_config"] = text
    #expect(throws: FolioError.self) { try ModelConfiguration.parse(root, source: "config.json") }
  }
}
