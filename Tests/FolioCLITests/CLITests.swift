import Foundation
import Testing

/// The `folio` executable run as a real process, as scripts run it.
@Suite("folio CLI")
struct CLITests {
  static let root: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
      url.deleteLastPathComponent()
      if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { break }
    }
    return url
  }()
  static let denseModel = root.appendingPathComponent("Tests/Fixtures/models/tiny-dense").path

  /// The `folio` binary built next to the test bundle.
  static var executable: URL {
    get throws {
      let bundleFolder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
      for candidate in [
        bundleFolder.appendingPathComponent("folio"),
        bundleFolder.deletingLastPathComponent().appendingPathComponent("folio"),
        root.appendingPathComponent(".build/debug/folio"),
      ] where FileManager.default.isExecutableFile(atPath: candidate.path) {
        return candidate
      }
      throw CocoaError(.fileNoSuchFile)
    }
  }

  struct Output {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Output {
    let process = Process()
    process.executableURL = try executable
    process.arguments = arguments
    if !environment.isEmpty {
      process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Output(
      status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
      stderr: String(decoding: stderr, as: UTF8.self))
  }

  struct Reference: Decodable {
    struct Case: Decodable {
      var name: String
      var prompt_text: String
      var prompt_ids: [Int]
      var greedy_ids: [Int]
    }
    var cases: [Case]
  }

  static func shortCase() throws -> Reference.Case {
    let url = root.appendingPathComponent("Tests/Fixtures/reference/tiny-dense.json")
    let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    return try #require(reference.cases.first { $0.name == "short" })
  }

  @Test func generateJSONContract() throws {
    let c = try Self.shortCase()
    let result = try Self.run([
      "generate", "--model", Self.denseModel, "--raw", "--prompt", c.prompt_text, "--max-tokens", "8",
      "--temperature", "0", "--json", "--logprobs", "3", "--threads", "2",
    ])
    #expect(result.status == 0, "\(result.stderr)")
    let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    #expect(object["prompt_tokens"] as? [Int] == c.prompt_ids)
    // Greedy tokens up to the first stop token (<|im_end|> or <|endoftext|>), which ends generation unreported.
    let stops = try Self.stopTokenIDs()
    let firstEight = Array(c.greedy_ids.prefix(8))
    let expected = Array(firstEight.prefix { !stops.contains($0) })
    #expect(object["tokens"] as? [Int] == expected)
    #expect(object["finish_reason"] as? String == (expected.count < 8 ? "stop" : "length"))
    #expect(object["model"] as? String != nil)
    #expect(object["text"] is String)
    let logprobs = try #require(object["logprobs"] as? [[[String: Any]]])
    #expect(logprobs.count == expected.count)
    for (step, top) in logprobs.enumerated() {
      #expect(top.count == 3)
      #expect(top.first?["id"] as? Int == c.greedy_ids[step])
      let values = top.compactMap { ($0["logprob"] as? NSNumber)?.doubleValue }
      #expect(values == values.sorted(by: >))
    }
    let timings = try #require(object["timings"] as? [String: Any])
    for key in ["load_s", "prefill_s", "decode_s", "prefill_tokens_per_s", "decode_tokens_per_s"] {
      #expect(timings[key] is NSNumber, "timings.\(key)")
    }
  }

  /// `<|im_end|>` and `<|endoftext|>` ids of the fixture tokenizer.
  static func stopTokenIDs() throws -> Set<Int> {
    var ids: Set<Int> = []
    for token in ["<|im_end|>", "<|endoftext|>"] {
      let result = try run(["tokenize", "--model", denseModel, token])
      if let id = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) { ids.insert(id) }
    }
    #expect(ids.count == 2)
    return ids
  }

  @Test func streamedTextEqualsJSONText() throws {
    let c = try Self.shortCase()
    let arguments = [
      "generate", "--model", Self.denseModel, "--raw", "--prompt", c.prompt_text, "--max-tokens", "12",
      "--temperature", "0",
    ]
    let streamed = try Self.run(arguments)
    let json = try Self.run(arguments + ["--json"])
    #expect(streamed.status == 0 && json.status == 0)
    let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
    #expect(streamed.stdout == (object["text"] as? String ?? "") + "\n")
  }

  @Test func tokenize() throws {
    let c = try Self.shortCase()
    let plain = try Self.run(["tokenize", "--model", Self.denseModel, c.prompt_text])
    #expect(plain.status == 0)
    #expect(plain.stdout == c.prompt_ids.map(String.init).joined(separator: " ") + "\n")
    let json = try Self.run(["tokenize", "--model", Self.denseModel, "--json", "<|im_start|>user"])
    let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
    #expect((object["tokens"] as? [String])?.first == "<|im_start|>")
  }

  @Test func missingModelIsAClearError() throws {
    let result = try Self.run(["generate", "--model", "/nonexistent/model", "--prompt", "hi"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("model_not_found"))
  }

  @Test func usageErrorsExit64() throws {
    let result = try Self.run(["generate", "--model", Self.denseModel])
    #expect(result.status == 64)
    #expect(result.stderr.contains("--prompt"))
  }
}

extension CLITests {
  @Test func benchReportsEveryFigure() throws {
    let result = try Self.run([
      "bench", "--model", Self.denseModel, "--prompt-tokens", "40", "--gen-tokens", "4", "--image", "64x48", "--json",
    ])
    #expect(result.status == 0, "\(result.stderr)")
    let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    for key in ["load_s", "prefill_tokens_per_s", "decode_tokens_per_s", "vision_s", "ttft_s", "peak_rss_mib"] {
      #expect((object[key] as? NSNumber)?.doubleValue ?? 0 > 0, "\(key)")
    }
    #expect(object["generated_tokens"] as? Int == 4)
    #expect((object["prompt_tokens"] as? Int ?? 0) > 40, "the image's tokens are part of the prompt")
  }

  /// `--shared-prefix` times jobs whose prompts share their first tokens: the third starts from the state the
  /// second saved and prefills only its own tokens.
  @Test func benchSharedPrefix() throws {
    let result = try Self.run([
      "bench", "--model", Self.denseModel, "--prompt-tokens", "60", "--shared-prefix", "40", "--gen-tokens", "2",
      "--json",
    ])
    #expect(result.status == 0, "\(result.stderr)")
    let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    #expect(object["shared_prefix_tokens"] as? Int == 40)
    #expect(object["reused_prompt_tokens"] as? Int == 40)
    for key in ["first_job_ttft_s", "reused_job_ttft_s"] {
      #expect((object[key] as? NSNumber)?.doubleValue ?? 0 > 0, "\(key)")
    }
    let wrong = try Self.run(["bench", "--model", Self.denseModel, "--prompt-tokens", "40", "--shared-prefix", "40"])
    #expect(wrong.status != 0)
    #expect(wrong.stderr.contains("--shared-prefix"), "\(wrong.stderr)")
  }

  /// FOLIO_KERNEL_PATH runs the code a smaller CPU would: AVX2 keeps int8 activations for a quantized model (the
  /// AVX2 int8 kernel), the portable path falls back to float; `folio bench` reports what it ran.
  @Test func kernelPathOverride() throws {
    let native = try Self.run([
      "bench", "--model", Self.denseModel, "--prompt-tokens", "16", "--gen-tokens", "2", "--json",
    ])
    let nativeReport = try #require(try JSONSerialization.jsonObject(with: Data(native.stdout.utf8)) as? [String: Any])
    #if arch(x86_64)
      for (path, activations) in [("avx2", "int8"), ("portable", "float")] {
        let result = try Self.run(
          [
            "bench", "--model", Self.denseModel, "--quantize", "8", "--prompt-tokens", "16", "--gen-tokens", "2",
            "--json",
          ],
          environment: ["FOLIO_KERNEL_PATH": path])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let avx2Capable = ["avx2", "avx512"].contains(nativeReport["kernels"] as? String ?? "")
        if path == "portable" || avx2Capable {
          #expect(report["kernels"] as? String == path)
          #expect(report["activations"] as? String == activations)
        }
      }
    #endif
    #expect(nativeReport["activations"] as? String == "float", "an unquantized f32 model multiplies in fp32")
  }

  /// `--activations bf16` runs a bf16 checkpoint (tiny-gqa) through prompts and the vision tower; an unknown value
  /// is a usage error that lists the choices.
  @Test func activationsChoice() throws {
    let gqa = Self.root.appendingPathComponent("Tests/Fixtures/models/tiny-gqa").path
    let result = try Self.run([
      "bench", "--model", gqa, "--activations", "bf16", "--prompt-tokens", "40", "--gen-tokens", "2", "--image",
      "64x48", "--json",
    ])
    #expect(result.status == 0, "\(result.stderr)")
    let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    #expect(object["generated_tokens"] as? Int == 2)
    let wrong = try Self.run(["bench", "--model", gqa, "--activations", "bf8"])
    #expect(wrong.status == 64)
    #expect(wrong.stderr.contains("bf16") && wrong.stderr.contains("int8"), "\(wrong.stderr)")
  }

  @Test func generateWithImagesReportsThem() throws {
    let image = Self.root.appendingPathComponent("Tests/Fixtures/images/jpeg_baseline420_21x13.jpg").path
    let result = try Self.run([
      "generate", "--model", Self.denseModel, "--image", image, "--image", image, "--prompt", "Compare.",
      "--max-tokens", "2", "--temperature", "0", "--json",
    ])
    #expect(result.status == 0, "\(result.stderr)")
    let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    let images = try #require(object["images"] as? [[String: Any]])
    #expect(images.count == 2)
    #expect(images.first?["width"] as? Int == 21)
    #expect(images.first?["height"] as? Int == 13)
    let tokens = try #require(images.first?["tokens"] as? Int)
    let prompt = try #require(object["prompt_tokens"] as? [Int])
    #expect(prompt.count > 2 * tokens)
  }

  @Test func corruptImageIsATypedError() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("folio-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let file = folder.appendingPathComponent("broken.png")
    try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3]).write(to: file)
    let result = try Self.run(["generate", "--model", Self.denseModel, "--image", file.path, "--prompt", "x"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("image_"))
  }
}

extension CLITests {
  struct ChatCase: Decodable {
    struct Message: Decodable {
      var role: String
      var content: String
    }
    var name: String
    var messages: [Message]?
    var enable_thinking: Bool?
    var prompt_ids: [Int]
  }

  /// A prompt read from a file and wrapped in the chat template with thinking turned on gives transformers' ids.
  @Test func promptFileInChatModeWithThinking() throws {
    struct File: Decodable { var cases: [ChatCase] }
    let url = Self.root.appendingPathComponent("Tests/Fixtures/reference/tiny-dense.json")
    let c = try #require(
      try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases.first { $0.name == "chat_think" })
    let message = try #require(c.messages?.first)
    #expect(c.messages?.count == 1 && message.role == "user" && c.enable_thinking == true)
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("folio-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let promptFile = folder.appendingPathComponent("prompt.txt")
    try message.content.write(to: promptFile, atomically: true, encoding: .utf8)
    let result = try Self.run([
      "generate", "--model", Self.denseModel, "--prompt-file", promptFile.path, "--think", "--max-tokens", "1",
      "--temperature", "0", "--json",
    ])
    #expect(result.status == 0, "\(result.stderr)")
    let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    #expect(object["prompt_tokens"] as? [Int] == c.prompt_ids)
  }
}
