import Testing

@testable import FolioInbox

@Suite("Text segmentation")
struct SegmenterTests {
  static let words: @Sendable (String) -> Int = { $0.split(whereSeparator: \.isWhitespace).count }
  static let characters: @Sendable (String) -> Int = { $0.count }

  static let document = """
    # Service agreement

    This agreement is made between the parties. It starts today! Does it end? Only when terminated.

    第一条。本契約は当事者間で締結される。第二条。期間は一年とする。

    Line one of a list
    Line two of a list
    Line three, which is a little longer than the others and keeps going for a while

    A final paragraph with an emoji family 👨‍👩‍👧‍👦 and e\u{301} combining marks.
    """

  @Test("Segments concatenate to the input, respect the budget and are deterministic", arguments: [3, 5, 8, 13, 40, 1000])
  func properties(budget: Int) {
    let segmenter = TextSegmenter(budget: budget, count: Self.characters)
    let segments = segmenter.segments(of: Self.document)
    #expect(segments.joined() == Self.document)
    for segment in segments {
      #expect(segment.count <= budget, "segment \(segment.debugDescription) over \(budget)")
      #expect(!segment.isEmpty)
    }
    #expect(segmenter.segments(of: Self.document) == segments)
  }

  @Test("Random texts keep the properties", arguments: 0..<20)
  func randomTexts(seed: Int) {
    var generator = SplitMix(seed: UInt64(seed))
    let alphabet: [String] = ["a", "b", "é", "中", "👍🏽", " ", " ", "\n", "\n\n", ". ", "! ", "。", "e\u{301}", "\r\n"]
    var text = ""
    for _ in 0..<Int(generator.next() % 400) { text += alphabet[Int(generator.next() % UInt64(alphabet.count))] }
    let budget = Int(generator.next() % 20) + 1
    let segmenter = TextSegmenter(budget: budget, count: Self.characters)
    let segments = segmenter.segments(of: text)
    #expect(segments.joined() == text)
    #expect(segments.allSatisfy { $0.count <= budget && !$0.isEmpty })
    #expect(segmenter.segments(of: text) == segments)
  }

  @Test("Paragraph boundaries are preferred; editing one paragraph leaves the others' segments unchanged")
  func paragraphsPreferred() {
    let paragraphs = ["One two three four.\n\n", "Five six seven.\n\n", "Eight nine ten eleven twelve."]
    let segmenter = TextSegmenter(budget: 6, count: Self.words)
    let segments = segmenter.segments(of: paragraphs.joined())
    #expect(segments == paragraphs)
    let edited = segmenter.segments(of: paragraphs[0] + "Five six seven, now edited.\n\n" + paragraphs[2])
    #expect(edited.first == paragraphs[0])
    #expect(edited.last == paragraphs[2])
    // Packing, when asked for, joins whole paragraphs that fit together.
    let packed = TextSegmenter(budget: 8, mergesParagraphs: true, count: Self.words).segments(of: paragraphs.joined())
    #expect(packed == [paragraphs[0] + paragraphs[1], paragraphs[2]])
  }

  @Test("An over-budget paragraph splits at sentence ends before whitespace")
  func sentencesThenWords() {
    let text = "Alpha beta gamma. Delta epsilon! Zeta eta theta iota kappa lambda mu."
    let segments = TextSegmenter(budget: 5, count: Self.words).segments(of: text)
    #expect(segments.joined() == text)
    #expect(segments[0] == "Alpha beta gamma. Delta epsilon! ")
    #expect(segments[1] == "Zeta eta theta iota kappa ")
    #expect(segments[2] == "lambda mu.")
  }

  @Test("Graphemes are never split, even when one alone is over budget")
  func graphemes() {
    let family = "👨‍👩‍👧‍👦"
    let text = "ab" + family + "e\u{301}"
    let scalars: @Sendable (String) -> Int = { $0.unicodeScalars.count }
    let segments = TextSegmenter(budget: 2, count: scalars).segments(of: text)
    #expect(segments.joined() == text)
    #expect(segments.contains(family))
    #expect(segments.contains("e\u{301}"))
    for segment in segments where segment != family { #expect(scalars(segment) <= 2) }
  }

  @Test("CJK sentences split at full stops without spaces")
  func cjk() {
    let text = "第一条。本契約は締結される。第二条。"
    let segments = TextSegmenter(budget: 8, count: Self.characters).segments(of: text)
    #expect(segments.joined() == text)
    #expect(segments.last == "第二条。")
    #expect(segments.allSatisfy { $0.count <= 8 })
    #expect(segments.first == "第一条。")
  }

  @Test("Empty text has no segments")
  func empty() {
    #expect(TextSegmenter(budget: 10, count: Self.characters).segments(of: "").isEmpty)
  }
}

/// A small seeded generator so random tests are reproducible.
struct SplitMix: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
