import FolioBase
import FolioKernels
import FolioModel
import FolioTokenizer
import Foundation
import Testing

@testable import FolioEngine

/// The whole text path on the fixture models: template → tokenizer → decoder → generator, against transformers.
@Suite("Generation")
struct GenerationTests {
  struct ReferenceCase: Decodable {
    var name: String
    var promptText: String
    var messages: [ChatMessage]?
    var enableThinking: Bool?
    var promptIDs: [Int]
    var greedyIDs: [Int]
    var topLogprobs: [[TokenLogprob]]
    enum CodingKeys: String, CodingKey {
      case name, messages
      case promptText = "prompt_text", enableThinking = "enable_thinking", promptIDs = "prompt_ids"
      case greedyIDs = "greedy_ids", topLogprobs = "top_logprobs"
    }
  }
  struct ReferenceFile: Decodable { var cases: [ReferenceCase] }

  static func reference(_ model: String) throws -> [ReferenceCase] {
    try JSONDecoder().decode(
      ReferenceFile.self, from: Data(contentsOf: EngineFixtures.reference("\(model).json"))
    ).cases
  }

  @Test("prompt ids equal transformers' for raw and chat prompts", arguments: ["tiny-dense", "tiny-moe"])
  func promptIDs(model name: String) throws {
    let model = try LanguageModel(reference: EngineFixtures.model(name).path)
    for c in try Self.reference(name) {
      if let messages = c.messages {
        #expect(model.chatTemplate.render(messages, enableThinking: c.enableThinking) == c.promptText, "\(c.name)")
        #expect(model.encodeChat(messages, enableThinking: c.enableThinking) == c.promptIDs, "\(c.name)")
      } else {
        #expect(model.tokenizer.encode(c.promptText) == c.promptIDs, "\(c.name)")
      }
    }
  }

  @Test("greedy generation reproduces transformers' tokens and top log-probabilities")
  func greedyGeneration() throws {
    let model = try LanguageModel(reference: EngineFixtures.model("tiny-dense").path)
    let c = try #require(try Self.reference("tiny-dense").first { $0.name == "short" })
    var state = model.checkpoint.textModel.makeState()
    var streamed: [Int] = []
    let result = try model.generator(pool: ComputePool(threadCount: 2)).generate(
      GenerationRequest(promptTokens: c.promptIDs, maxTokens: c.greedyIDs.count, logprobCount: 5),
      state: &state
    ) { token in
      streamed.append(token.id)
      return true
    }
    #expect(result.tokens == c.greedyIDs)
    #expect(streamed == c.greedyIDs)
    #expect(result.finishReason == .length)
    for (step, (ours, theirs)) in zip(result.topLogprobs, c.topLogprobs).enumerated() {
      #expect(ours.map(\.id) == theirs.map(\.id), "step \(step)")
      for (a, b) in zip(ours, theirs) { #expect(abs(a.logprob - b.logprob) < 1e-3, "step \(step)") }
    }
  }

  @Test("generation stops at a stop token and excludes it")
  func stopsAtStopToken() throws {
    let model = try LanguageModel(reference: EngineFixtures.model("tiny-dense").path)
    let c = try #require(try Self.reference("tiny-dense").first { $0.name == "short" })
    var state = model.checkpoint.textModel.makeState()
    let stop = c.greedyIDs[5]
    let firstStop = try #require(c.greedyIDs.firstIndex(of: stop))
    let result = try model.generator(pool: ComputePool(threadCount: 1)).generate(
      GenerationRequest(promptTokens: c.promptIDs, maxTokens: 64, stopTokens: [stop]), state: &state)
    #expect(result.finishReason == .stop)
    #expect(result.tokens == Array(c.greedyIDs[..<firstStop]))
  }

  @Test("the caller can cancel between tokens")
  func cancellation() throws {
    let model = try LanguageModel(reference: EngineFixtures.model("tiny-dense").path)
    var state = model.checkpoint.textModel.makeState()
    var seen = 0
    let result = try model.generator(pool: ComputePool(threadCount: 1)).generate(
      GenerationRequest(promptTokens: [1, 2, 3], maxTokens: 50), state: &state
    ) { _ in
      seen += 1
      return seen < 3
    }
    #expect(result.finishReason == .cancelled)
    #expect(result.tokens.count == 3)
  }

  @Test("seeded sampling is reproducible through the whole model")
  func seededSampling() throws {
    let model = try LanguageModel(reference: EngineFixtures.model("tiny-moe").path)
    func run(seed: UInt64) throws -> [Int] {
      var state = model.checkpoint.textModel.makeState()
      return try model.generator(pool: ComputePool(threadCount: 2)).generate(
        GenerationRequest(
          promptTokens: model.tokenizer.encode("Hello"), maxTokens: 12,
          sampling: SamplingParameters(temperature: 1.0, topK: 50, topP: 0.95, seed: seed)),
        state: &state
      ).tokens
    }
    #expect(try run(seed: 7) == run(seed: 7))
    #expect(try run(seed: 7) != run(seed: 8))
  }

  @Test("the stop set holds <|im_end|> and the checkpoint's end tokens")
  func stopTokens() throws {
    let model = try LanguageModel(reference: EngineFixtures.model("tiny-dense").path)
    let imEnd = try #require(model.tokenizer.id(forToken: "<|im_end|>"))
    let endOfText = try #require(model.tokenizer.id(forToken: "<|endoftext|>"))
    #expect(model.stopTokens.contains(imEnd))
    #expect(model.stopTokens.contains(endOfText))
  }
}
