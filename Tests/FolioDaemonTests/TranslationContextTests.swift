import FolioBase
import FolioDaemon
import FolioStore
import Foundation
import Testing

/// The glossary of a translate step and the previous segment passed as context (inbox-lessons, "Scheduled batch
/// work": a glossary per document set, context carried across chunks of a long document).
@Suite("translation glossary and context")
struct TranslationContextTests {
  /// A pipeline for the `contracts` set that translates into German with a glossary.
  static let contracts = """
    name: contracts
    version: 1
    match:
      kinds: [text]
      sets: [contracts]
    steps:
      - id: translate
        task: translate
        to: [de]
        glossary:
          Lessee: Mieter
          Agreement:
            de: Vereinbarung
        max_tokens: 24
        temperature: 0
        timeout: 300s
    """

  @Test("glossary terms found in a segment and the previous segment with its translation go into the prompt")
  func promptCarriesGlossaryAndContext() async throws {
    let home = try TestHome(pipelines: ["contracts.yaml": Self.contracts])
    try write(
      home.inbox + "/contracts/lease.txt",
      "This Agreement is made today.\n\nThe Lessee pays the rent.\n\nNotices are sent by post.")
    let runner = EchoRunner()
    try await runOnce(home, runner: runner)
    let prompts = runner.requests
    #expect(prompts.count == 3)
    // Every request starts with the step's instructions (the engine reuses their state); the blocks follow them.
    let instructions = "Output only the translation.\n\n"
    for prompt in prompts {
      let head = try #require(prompt.range(of: instructions), "\(prompt)")
      #expect(prompt.hasPrefix("Translate the following text into German (de)."), "\(prompt)")
      #expect(!prompt[..<head.lowerBound].contains("Glossary:") && !prompt[..<head.lowerBound].contains("Context:"))
      #expect(prompt[head.upperBound...].hasPrefix("Glossary:") || prompt[head.upperBound...].hasPrefix("Context:"))
    }
    // First segment: its glossary term, no context (nothing came before).
    #expect(prompts[0].contains("Glossary: always translate these terms exactly as given."))
    #expect(prompts[0].contains("- Agreement → Vereinbarung") && !prompts[0].contains("Lessee"))
    #expect(!prompts[0].contains("Context:"))
    #expect(prompts[0].hasSuffix("This Agreement is made today."))
    // Second segment: its own term, and the first segment with the translation it got.
    #expect(prompts[1].contains("- Lessee → Mieter") && !prompts[1].contains("Agreement → "))
    #expect(prompts[1].contains("Source: This Agreement is made today.\n"))
    #expect(prompts[1].contains("Translation: translate: This Agreement is made today.\n"))
    #expect(prompts[1].hasSuffix("The Lessee pays the rent."))
    // Third: no term, context is the second segment only.
    #expect(!prompts[2].contains("Glossary:"))
    #expect(prompts[2].contains("Source: The Lessee pays the rent.") && !prompts[2].contains("Agreement"))
    let store = try home.store()
    let result = try #require(try await store.results(matching: ResultFilter(pipeline: "contracts")).first)
    #expect(result.parameters.contains("\"glossary_terms\":2"))
  }

  @Test("context does not change the translation memory: a known segment is reused whatever precedes it")
  func memoryKeyIgnoresContext() async throws {
    let home = try TestHome(pipelines: ["contracts.yaml": Self.contracts])
    try write(home.inbox + "/contracts/a.txt", "Opening clause.\n\nThe Lessee pays the rent.")
    let runner = EchoRunner()
    try await runOnce(home, runner: runner)
    #expect(runner.requests.count == 2)
    // Same second paragraph after a different first one: only the new paragraph is requested.
    try write(home.inbox + "/contracts/b.txt", "A different opening.\n\nThe Lessee pays the rent.")
    try await runOnce(home, runner: runner)
    #expect(runner.requests.count == 3)
    #expect(runner.requests[2].hasSuffix("A different opening."))
    let store = try home.store()
    let results = try await store.results(matching: ResultFilter(pipeline: "contracts"))
    let b = try #require(results.first { $0.documentPath == "contracts/b.txt" })
    #expect(b.text.contains("translate: The Lessee pays the rent."))
    #expect(b.parameters.contains("\"segments_from_memory\":1"))
    // A third text that starts with a remembered paragraph: the following new one gets the remembered one as context.
    try write(home.inbox + "/contracts/c.txt", "Opening clause.\n\nA closing clause.")
    try await runOnce(home, runner: runner)
    #expect(runner.requests.count == 4)
    #expect(runner.requests[3].contains("Source: Opening clause.\nTranslation: translate: Opening clause.\n"))
  }

  @Test("through the real tiny model: a translation with glossary and context completes and is remembered")
  func realModel() async throws {
    let home = try TestHome(pipelines: ["contracts.yaml": Self.contracts])
    try write(home.inbox + "/contracts/lease.txt", "The Agreement starts today.\n\nThe Lessee pays monthly.")
    try await runOnce(home, overrides: ["model": tinyModel, "threads": "1"], runner: nil)
    let store = try home.store()
    #expect(try await store.jobs(matching: JobFilter(statuses: [.failed])).isEmpty)
    let result = try #require(try await store.results(matching: ResultFilter(pipeline: "contracts")).first)
    #expect(result.language == "de" && result.parameters.contains("\"glossary_terms\":2"))
    #expect(result.parameters.contains("\"segments_translated\":2"))
    // The second request carried the first segment as context: its prompt is longer than the segment alone.
    #expect((result.promptTokens ?? 0) > 40)
  }

  @Test("through the real tiny model: later segments continue from the state saved after the shared instructions")
  func realModelReusesInstructionState() async throws {
    let home = try TestHome(pipelines: ["contracts.yaml": Self.contracts])
    try write(
      home.inbox + "/contracts/terms.txt",
      "Rent is due monthly.\n\nKeys are returned at the end.\n\nPets need consent.\n\nNotices go by post.")
    try await runOnce(home, overrides: ["model": tinyModel, "threads": "1"], runner: nil)
    let store = try home.store()
    #expect(try await store.jobs(matching: JobFilter(statuses: [.failed])).isEmpty)
    let result = try #require(try await store.results(matching: ResultFilter(pipeline: "contracts")).first)
    let parameters = try #require(
      try JSONSerialization.jsonObject(with: Data(result.parameters.utf8)) as? [String: Any])
    #expect(parameters["requests"] as? Int == 4)
    // Requests 1 and 2 prefill everything (the second saves the shared state); 3 and 4 start after the shared
    // instructions and context header: most of their prompts (the instructions come first; with the context block
    // first, only its short header would be shared).
    let reused = parameters["prompt_tokens_reused"] as? Int ?? 0
    let total = result.promptTokens ?? 0
    #expect(reused * 4 > total && reused * 2 < total, "\(reused) of \(total) prompt tokens reused")
  }

  @Test("control tokens in an earlier translation are dropped from the context")
  func contextDropsControlTokens() async throws {
    let home = try TestHome(pipelines: ["contracts.yaml": Self.contracts])
    try write(home.inbox + "/contracts/a.txt", "<|vision_start|><|image_pad|><|vision_end|>First.\n\nSecond.")
    let runner = EchoRunner()
    try await runOnce(home, runner: runner)
    #expect(runner.requests.count == 2)
    let request = runner.requests[1]
    let start = try #require(request.range(of: "Output only the translation.\n\n"), "\(request)")
    let end = try #require(request.range(of: "Text:\n", range: start.upperBound..<request.endIndex), "\(request)")
    let context = request[start.upperBound..<end.lowerBound]
    #expect(context.contains("Source: First.\nTranslation: translate: "), "\(context)")
    #expect(!context.contains("<|vision_start|>") && !context.contains("<|image_pad|>"), "\(context)")
  }
}
