import FolioKernels
import Foundation
import Testing

@testable import FolioEngine

/// Jobs that share a prompt prefix continue from the saved state after it and answer exactly as a fresh model does:
/// a second question about the same image (after the image), and documents sent with the same instructions (after
/// the shared text, from the third job on). A different image of the same size does not hit.
@Suite("Prefix state reuse")
struct PrefixCacheTests {
  static let image = EngineFixtures.root.appendingPathComponent("images-model/gradient_97x61.png")

  func ask(_ model: LanguageModel, _ question: String, image: URL = image) throws -> Response {
    try model.respond(
      to: [ChatMessage(role: .user, parts: [.image, .text(question)])], images: [image],
      options: ResponseOptions(maxTokens: 12), pool: ComputePool(threadCount: 2))
  }

  @Test func secondQuestionReusesTheImagePrefix() throws {
    let cached = try LanguageModel(reference: EngineFixtures.model("tiny-dense").path)
    _ = try ask(cached, "Describe this picture.")
    #expect(cached.prefixCache.hits == 0)
    let reused = try ask(cached, "What text is written in it?")
    #expect(cached.prefixCache.hits == 1)

    let fresh = try LanguageModel(reference: EngineFixtures.model("tiny-dense").path)
    let expected = try ask(fresh, "What text is written in it?")
    #expect(reused.text == expected.text)
    #expect(reused.completionTokenCount == expected.completionTokenCount)
    #expect(reused.promptTokenCount == expected.promptTokenCount)
  }

  @Test func keysIncludeImageContentNotJustPlaceholders() throws {
    let model = try LanguageModel(reference: EngineFixtures.model("tiny-dense").path)
    let cache = PrefixStateCache(capacity: 2)
    let state = model.checkpoint.textModel.makeState()
    let pads = [1, 2, 9, 9, 9, 3]
    cache.store(tokens: pads, imageFingerprints: [42], state: state)
    #expect(cache.lookup(tokens: pads + [5, 6], imageFingerprints: [43]) == nil, "same placeholders, other pixels")
    #expect(cache.lookup(tokens: pads, imageFingerprints: [42]) == nil, "a prefix must leave a token to run")
    #expect(cache.lookup(tokens: pads + [5, 6], imageFingerprints: [42]) != nil)
    #expect(PrefixStateCache.fingerprint([1, 2, 3]) != PrefixStateCache.fingerprint([1, 2, 4]))
    cache.store(tokens: [7, 8], imageFingerprints: [1], state: state)
    cache.store(tokens: [7, 9], imageFingerprints: [1], state: state)
    #expect(cache.lookup(tokens: pads + [5], imageFingerprints: [42]) == nil, "least recently used entry evicted")
  }

  static let instructions = """
    Translate the following text into German (de). Preserve the meaning, tone and formatting: keep line breaks, \
    lists, numbers, names, dates and amounts as they are. Output only the translation.

    Text:

    """
  static let documents = [
    "The invoice is due on 3 March.", "Our office moves to Berlin next year.",
    "Please sign both copies and return one.", "Zahlungen bitte bis Freitag.",
  ]

  func translate(_ model: LanguageModel, _ document: String) throws -> Response {
    try model.respond(
      to: [ChatMessage(role: .user, content: Self.instructions + document)], options: ResponseOptions(maxTokens: 12),
      pool: ComputePool(threadCount: 2))
  }

  func sharedLength(_ a: [Int], _ b: [Int]) -> Int { zip(a, b).prefix { $0 == $1 }.count }

  @Test func documentsWithTheSameInstructionsSkipTheSharedPrefill() throws {
    let cached = try LanguageModel(reference: EngineFixtures.model("tiny-dense").path)
    let fresh = try LanguageModel(reference: EngineFixtures.model("tiny-dense").path)
    let ids = Self.documents.map {
      cached.encodeChat([ChatMessage(role: .user, content: Self.instructions + $0)], enableThinking: false)
    }
    let shared = sharedLength(ids[2], ids[1])
    #expect(shared >= 30, "the instructions are most of the prompt")
    #expect(sharedLength(ids[3], ids[0]) == shared, "every document starts after the same instruction tokens")

    #expect(try translate(cached, Self.documents[0]).reusedPromptTokenCount == 0)
    #expect(try translate(cached, Self.documents[1]).reusedPromptTokenCount == 0, "this job saves the shared state")
    for document in Self.documents[2...] {
      let reused = try translate(cached, document)
      let expected = try translate(fresh, document)
      #expect(reused.reusedPromptTokenCount == shared)
      #expect(reused.text == expected.text)
      #expect(reused.completionTokenCount == expected.completionTokenCount)
      #expect(reused.promptTokenCount == expected.promptTokenCount)
    }
    #expect(cached.prefixCache.hits == 2)
    #expect(fresh.prefixCache.hits == 0, "the reference never reused anything")
  }

  @Test func aSharedSystemPromptIsReusedBeforeDifferentImages() throws {
    let system = ChatMessage(
      role: .system,
      content: "You read scanned pages for an archive. Describe what is on each page plainly, in one sentence.")
    func describe(_ model: LanguageModel, _ image: String) throws -> Response {
      try model.respond(
        to: [system, ChatMessage(role: .user, parts: [.image, .text("What is on this page?")])],
        images: [EngineFixtures.root.appendingPathComponent("images-model/\(image)")],
        options: ResponseOptions(maxTokens: 8), pool: ComputePool(threadCount: 2))
    }
    let cached = try LanguageModel(reference: EngineFixtures.model("tiny-dense").path)
    let fresh = try LanguageModel(reference: EngineFixtures.model("tiny-dense").path)
    let textBeforeImage = try #require(
      cached.encodeChat([system, ChatMessage(role: .user, parts: [.image])], enableThinking: false).firstIndex(
        of: cached.checkpoint.config.visionStartTokenID))
    #expect(textBeforeImage >= PrefixStateCache.minimumSharedTokens, "long enough to be saved")

    _ = try describe(cached, "gradient_97x61.png")
    _ = try describe(cached, "alpha_45x70.png")
    for image in ["tall_gray_64x200.png", "wide_palette_290x70.png"] {
      let reused = try describe(cached, image)
      let expected = try describe(fresh, image)
      #expect(reused.reusedPromptTokenCount == textBeforeImage, "the system prompt, not another page's image")
      #expect(reused.text == expected.text)
      #expect(reused.promptTokenCount == expected.promptTokenCount)
    }
  }

  @Test func sharedPrefixesAreFoundAmongRecentPrompts() {
    let cache = PrefixStateCache()
    #expect(cache.sharedPrefixLength(remembering: [1, 2, 3, 4]) == 0)
    #expect(cache.sharedPrefixLength(remembering: [1, 2, 9]) == 2)
    #expect(cache.sharedPrefixLength(remembering: [1, 2, 3, 7]) == 3, "the longest match among recent prompts")
    for filler in 0..<PrefixStateCache.recentPromptLimit { _ = cache.sharedPrefixLength(remembering: [100 + filler]) }
    #expect(cache.sharedPrefixLength(remembering: [1, 2, 3]) == 0, "older prompts are forgotten")
  }
}
