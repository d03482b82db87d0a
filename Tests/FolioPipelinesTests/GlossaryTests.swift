import FolioPipelines
import Foundation
import Testing

/// A translate step's `glossary:` (README "Translation").
@Suite("translate step glossary")
struct GlossaryTests {
  @Test("a glossary maps terms to one rendering or to renderings by language")
  func parsesBothForms() throws {
    let yaml = """
      name: contracts
      version: 1
      match:
        sets: [contracts]
      steps:
        - id: translate
          task: translate
          to: [de, ja]
          glossary:
            Folio: Folio
            Lessee: {de: Mieter, ja: 賃借人}
      """
    let (pipeline, found) = PipelineLoader.parse(yaml: yaml, file: "p.yaml")
    #expect(found.isEmpty, "\(found)")
    let step = try #require(pipeline?.steps.first)
    #expect(step.glossary.count == 2)
    let lessee = try #require(step.glossary.first { $0.source == "Lessee" })
    #expect(lessee.rendering(for: "de") == "Mieter" && lessee.rendering(for: "ja") == "賃借人")
    #expect(step.glossary.first { $0.source == "Folio" }?.rendering(for: "ja") == "Folio")
  }

  @Test("errors: a glossary on a step that does not translate, a language the step does not translate into")
  func reportsErrors() {
    let wrongTask = diagnostics(
      """
      name: a
      version: 1
      steps:
        - id: s
          task: summarize
          glossary: {Lessee: Mieter}
      """)
    #expect(wrongTask.contains { $0.message.contains("`glossary` is only used by translate steps") && $0.line == 6 })
    let wrongLanguage = diagnostics(
      """
      name: a
      version: 1
      steps:
        - id: t
          task: translate
          to: [de]
          glossary:
            Lessee: {fr: Locataire}
      """)
    #expect(wrongLanguage.contains { $0.message.contains("`fr`, which this step does not translate into") })
    let notMapping = diagnostics(
      """
      name: a
      version: 1
      steps:
        - id: t
          task: translate
          to: [de]
          glossary: [Lessee]
      """)
    #expect(notMapping.contains { $0.message.contains("`glossary` must be a mapping") })
  }
}
