import FolioKernels
import Foundation
import Testing

@testable import FolioEngine

/// A second question about the same image continues from the saved state after the image and answers exactly as a
/// fresh model does; a different image of the same size does not hit.
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
}
