import FolioBase
import Foundation
import Testing

@testable import FolioPipelines

/// The repository's shipped `pipelines/` folder.
let shippedPipelines = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  .appendingPathComponent("pipelines")

/// A fresh temporary directory holding the given files.
func directory(with files: [String: String]) throws -> URL {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("folio-pipelines-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  for (name, text) in files {
    try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
  }
  return dir
}

func diagnostics(_ yaml: String, file: String = "p.yaml") -> [PipelineDiagnostic] {
  PipelineLoader.validate(sources: [(file, yaml)]).diagnostics
}

@Suite("Pipeline loading and validation")
struct PipelineLoaderTests {
  @Test("The shipped defaults are valid and mean what they say")
  func shippedDefaults() throws {
    let validation = PipelineLoader.validate(directory: shippedPipelines)
    #expect(validation.isValid, "\(validation.report)")
    let byName = Dictionary(uniqueKeysWithValues: validation.pipelines.map { ($0.name, $0) })
    #expect(Set(byName.keys) == ["images", "documents", "nightly-translation"])

    let images = try #require(byName["images"])
    #expect(images.steps.map(\.task) == [.caption, .ocr])
    #expect(images.applies(to: .image, set: "default", relativePath: "a.png"))
    #expect(!images.applies(to: .text, set: "default", relativePath: "a.txt"))

    let documents = try #require(byName["documents"])
    #expect(documents.steps.first?.input == .document)
    #expect(documents.applies(to: .text, set: "contracts", relativePath: "contracts/a.md"))
    #expect(documents.steps.first?.options.thinking == false)

    let nightly = try #require(byName["nightly-translation"])
    #expect(!nightly.isEnabled)
    #expect(!nightly.isInboxPipeline)
    let schedule = try #require(nightly.schedule)
    #expect(schedule.targetSet == "contracts")
    #expect(schedule.overlap == .skip)
    #expect(schedule.missed == .runOnce)
    #expect(schedule.timeZone.secondsFromGMT(for: utc("2024-07-01T00:00:00Z")) == 0)
    #expect(nightly.steps.first?.languages == ["de", "ja"])
    #expect(schedule.next(after: utc("2024-05-10T03:00:00Z")) == utc("2024-05-11T02:00:00Z"))
  }

  @Test("A minimal pipeline gets defaults and inferred kinds")
  func minimal() throws {
    let (pipeline, problems) = PipelineLoader.parse(
      yaml: """
        name: tr
        version: 3
        steps:
          - id: t
            task: translate
            to: no
        """, file: "tr.yaml")
    #expect(problems.isEmpty, "\(problems)")
    let p = try #require(pipeline)
    #expect(p.isEnabled)
    #expect(p.match.kinds == [.text])
    #expect(p.steps[0].languages == ["no"])  // Norwegian, not the YAML 1.1 boolean
    #expect(p.steps[0].options == GenerationOptions.defaults(for: .translate))
    #expect(p.steps[0].timeout == PipelineStep.defaultTimeout(for: .translate))
    #expect(p.steps[0].input == .document)
  }

  @Test("Every error in a file is reported, each with line, column and a fix")
  func everyError() throws {
    let yaml = """
      name: broken
      version: "2"
      enabeld: true
      match:
        kinds: [image, pdf]
      steps:
        - id: ocr
          task: ocr
          tempreature: 0.2
        - id: tr
          task: translate
          input: later
        - id: later
          task: summarise
          input: ocr
        - id: tr
          task: translate
          to: [de]
          timeout: soon
          max_tokens: 0
        - id: sum
          task: summarize
          input: nothing
          to: [de]
          thinking: maybe
      """
    let found = diagnostics(yaml)
    func at(_ line: Int, _ fragment: String) -> PipelineDiagnostic? {
      found.first { $0.line == line && $0.message.contains(fragment) }
    }
    #expect(at(2, "whole number")?.fix == "remove the quotes")
    #expect(at(3, "unknown key `enabeld`")?.fix == "did you mean `enabled`?")
    #expect(at(3, "unknown key `enabeld`")?.column == 1)
    #expect(at(5, "unknown document kind `pdf`") != nil)
    #expect(at(9, "unknown key `tempreature`")?.fix == "did you mean `temperature`?")
    #expect(at(11, "translate step needs `to`") != nil)
    #expect(at(12, "comes later (line 13)") != nil)
    #expect(at(14, "unknown task `summarise`")?.fix == "did you mean `summarize`?")
    #expect(at(16, "already used by the step at line 10") != nil)
    #expect(at(19, "`timeout` must be a duration") != nil)
    #expect(at(20, "`max_tokens` is 0") != nil)
    #expect(at(23, "unknown step `nothing`") != nil)
    #expect(at(24, "only used by translate steps") != nil)
    #expect(at(25, "true or false") != nil)
    #expect(found.allSatisfy { $0.file == "p.yaml" && $0.line > 0 && $0.column > 0 })
    #expect(found.count >= 13, "\(found.map(\.description).joined(separator: "\n"))")
  }

  @Test("Broken YAML syntax reports the parser's line")
  func syntax() {
    let found = diagnostics(
      """
      name: x
      version: 1
      steps:
        - id: a
          task: [caption
      """)
    #expect(found.count == 1)
    #expect(found.first?.message.contains("YAML syntax error") == true)
    #expect((found.first?.line ?? 0) >= 5)
  }

  @Test("Duplicate keys are reported at their line")
  func duplicateKeys() {
    let found = diagnostics("name: a\nversion: 1\nname: b\nsteps: []\n")
    #expect(found.first?.message.contains("duplicate key") == true)
    #expect(found.first?.line ?? 0 > 0)
  }

  @Test("Bad cron, missing target set and schedule-only keys")
  func schedules() {
    let found = diagnostics(
      """
      name: nightly
      version: 1
      schedule: "0 25 * * *"
      overlap: wait
      missed: run-all
      time_zone: Mars/Olympus
      steps:
        - {id: t, task: translate, to: [de]}
      """)
    #expect(found.contains { $0.line == 3 && $0.message.contains("hour field") })
    #expect(found.contains { $0.line == 3 && $0.message.contains("needs `target_set`") })
    #expect(found.contains { $0.line == 4 && $0.message.contains("overlap") })
    #expect(found.contains { $0.line == 5 && $0.fix == "did you mean `run_all`?" })
    #expect(found.contains { $0.line == 6 && $0.message.contains("unknown time zone") })

    let unscheduled = diagnostics(
      """
      name: x
      version: 1
      target_set: contracts
      steps: [{id: s, task: summarize}]
      """)
    #expect(unscheduled.contains { $0.line == 3 && $0.message.contains("only used by scheduled pipelines") })

    let never = diagnostics(
      """
      name: x
      version: 1
      schedule: "0 0 31 2 *"
      target_set: c
      steps: [{id: s, task: summarize}]
      """)
    #expect(never.contains { $0.message.contains("never fires") })
  }

  @Test("Kinds and inputs must agree")
  func kinds() {
    let found = diagnostics(
      """
      name: x
      version: 1
      match: {kinds: [text]}
      steps:
        - {id: cap, task: caption}
      """)
    #expect(found.contains { $0.message.contains("needs an image") })
    let imageSummary = diagnostics(
      """
      name: y
      version: 1
      steps:
        - {id: cap, task: caption}
        - {id: sum, task: summarize}
      """)
    #expect(imageSummary.contains { $0.line == 5 && $0.fix?.contains("input: ocr") == true })
    let ocrFirst = diagnostics(
      """
      name: z
      version: 1
      steps:
        - {id: tr, task: translate, to: de, input: ocr}
      """)
    #expect(ocrFirst.contains { $0.message.contains("needs an `ocr` step earlier") })
  }

  @Test("Inputs resolve to the step they read")
  func inputs() throws {
    let (pipeline, problems) = PipelineLoader.parse(
      yaml: """
        name: scans
        version: 1
        steps:
          - {id: read, task: ocr}
          - {id: de, task: translate, to: de, input: ocr}
          - {id: sum, task: summarize, input: de}
          - {id: cap, task: caption}
        """, file: "scans.yaml")
    #expect(problems.isEmpty, "\(problems)")
    let p = try #require(pipeline)
    #expect(p.match.kinds == [.image])
    #expect(p.steps.map { p.inputStepID(of: $0) } == [nil, "read", "de", nil])
  }

  @Test("Prompt placeholders are checked")
  func prompts() {
    let found = diagnostics(
      """
      name: x
      version: 1
      steps:
        - id: t
          task: translate
          to: de
          prompt: "Please translate {txt}"
      """)
    #expect(found.contains { $0.fix == "did you mean `{text}`?" })
    #expect(found.contains { $0.message.contains("must say which language") })
  }

  @Test("Keys in the wrong place say where they belong")
  func misplaced() {
    let found = diagnostics(
      """
      name: x
      version: 1
      kinds: [text]
      steps:
        - id: s
          task: summarize
          schedule: "0 2 * * *"
      """)
    #expect(found.contains { $0.line == 3 && $0.fix == "move it under `match`" })
    #expect(found.contains { $0.line == 7 && $0.fix == "move it to the top level of the pipeline" })
  }

  @Test("Duplicate pipeline names across files, and load() refuses with every problem")
  func duplicates() throws {
    let dir = try directory(with: [
      "a.yaml": "name: same\nversion: 1\nsteps: [{id: s, task: summarize}]\n",
      "b.yaml": "description: other\nname: same\nversion: 1\nsteps: [{id: s, task: summarize}]\n",
      "c.yaml": "name: c\nversion: 1\n",
      "notes.txt": "ignored",
    ])
    defer { try? FileManager.default.removeItem(at: dir) }
    let validation = PipelineLoader.validate(directory: dir)
    #expect(validation.files == ["a.yaml", "b.yaml", "c.yaml"])
    let dup = try #require(validation.diagnostics.first { $0.file == "b.yaml" })
    #expect(dup.line == 2 && dup.message.contains("already used in a.yaml:1"))
    #expect(validation.diagnostics.contains { $0.file == "c.yaml" && $0.message.contains("no `steps`") })
    #expect {
      try PipelineLoader.load(directory: dir)
    } throws: { error in
      guard let error = error as? FolioError else { return false }
      return error.code == .invalidPipeline && error.message.contains("b.yaml:2:7") && error.message.contains("c.yaml")
    }
  }

  @Test("A missing directory and an empty file are reported")
  func missing() throws {
    let nowhere = FileManager.default.temporaryDirectory.appendingPathComponent("folio-nope-\(UUID().uuidString)")
    #expect(!PipelineLoader.validate(directory: nowhere).isValid)
    #expect(diagnostics("").first?.message == "the file is empty")
    #expect(diagnostics("- a\n- b\n").first?.message.contains("must be a mapping") == true)
  }

  @Test(
    "Durations",
    arguments: [
      ("120s", Duration.seconds(120)), ("10m", .seconds(600)), ("1h30m", .seconds(5400)), ("500ms", .milliseconds(500)),
      ("90", .seconds(90)),
    ])
  func durations(text: String, expected: Duration) {
    #expect(PipelineReader.parseDuration(text) == expected)
  }

  @Test("Bad durations", arguments: ["", "0s", "ten", "10x", "s10", "-5s"])
  func badDurations(text: String) {
    #expect(PipelineReader.parseDuration(text) == nil)
  }

  @Test("Prompts render placeholders; defaults exist for every task")
  func rendering() {
    let step = PipelineStep(id: "t", task: .translate, languages: ["de"])
    let prompt = step.renderPrompt(text: "Hello {language}", language: "de")
    #expect(prompt.contains("into German (de)"))
    #expect(prompt.hasSuffix("Hello {language}"))  // user text is never treated as a template
    #expect(DefaultPrompts.render("Summarize:", text: "abc", language: nil) == "Summarize:\n\nabc")
    for task in StepTask.allCases { #expect(!DefaultPrompts.template(for: task).isEmpty) }
    #expect(DefaultPrompts.languageDisplayName("xx") == "xx")
  }
}
