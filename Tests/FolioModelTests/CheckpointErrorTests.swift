import FolioBase
import FolioTensors
import Foundation
import Testing

@testable import FolioModel

/// Bad checkpoints fail with a typed error that names the file and tensor, never a crash.
@Suite("Checkpoint errors")
struct CheckpointErrorTests {
  /// A copy of the tiny dense fixture in a temp folder, for damaging.
  func copyOfDenseModel() throws -> URL {
    let folder = try Fixtures.temporaryFolder().appendingPathComponent("model")
    try FileManager.default.copyItem(at: Fixtures.model("tiny-dense"), to: folder)
    return folder
  }

  func error(loading folder: URL) -> FolioError? {
    do {
      _ = try Checkpoint(folder: folder)
      return nil
    } catch let error as FolioError {
      return error
    } catch {
      Issue.record("unexpected error type: \(error)")
      return nil
    }
  }

  @Test func missingConfig() throws {
    let folder = try copyOfDenseModel()
    try FileManager.default.removeItem(at: folder.appendingPathComponent("config.json"))
    let e = try #require(error(loading: folder))
    #expect(e.code == .fileNotFound)
    #expect(e.message.contains("config.json"))
  }

  @Test func missingWeights() throws {
    let folder = try copyOfDenseModel()
    try FileManager.default.removeItem(at: folder.appendingPathComponent("model.safetensors"))
    let e = try #require(error(loading: folder))
    #expect(e.code == .fileNotFound)
    #expect(e.message.contains("safetensors"))
  }

  @Test func otherModelType() throws {
    let folder = try copyOfDenseModel()
    let url = folder.appendingPathComponent("config.json")
    let text = try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: "\"qwen3_5\"", with: "\"llama\"")
    try text.write(to: url, atomically: true, encoding: .utf8)
    let e = try #require(error(loading: folder))
    #expect(e.code == .unsupportedModel)
    #expect(e.message.contains("llama"))
  }

  @Test func malformedConfig() throws {
    let folder = try copyOfDenseModel()
    try "{ not json".write(to: folder.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
    let e = try #require(error(loading: folder))
    #expect(e.code == .invalidConfig)
  }

  @Test func truncatedWeights() throws {
    let folder = try copyOfDenseModel()
    let url = folder.appendingPathComponent("model.safetensors")
    let data = try Data(contentsOf: url)
    try data.prefix(data.count / 2).write(to: url)
    let e = try #require(error(loading: folder))
    #expect(e.code == .corruptCheckpoint)
    #expect(e.message.contains("model.safetensors"))
    #expect(e.message.contains("truncated"))
  }

  @Test func headerClaimsMoreBytesThanTheFileHas() throws {
    let folder = try Fixtures.temporaryFolder()
    let url = folder.appendingPathComponent("model.safetensors")
    var data = SafetensorsWriter.bytes([.init(name: "w", shape: [2], values: [1, 2])])
    data.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Data($0) })
    try data.write(to: url)
    #expect(throws: FolioError.self) { try SafetensorsFile(url: url) }
    do { _ = try SafetensorsFile(url: url) } catch let e as FolioError {
      #expect(e.code == .corruptCheckpoint)
      #expect(e.message.contains("header claims"))
    }
  }

  @Test func tensorOffsetsBeyondTheData() throws {
    let folder = try Fixtures.temporaryFolder()
    let url = folder.appendingPathComponent("x.safetensors")
    let header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}"
    try SafetensorsWriter.bytes([.init(name: "w", shape: [1], values: [1])], headerOverride: header).write(to: url)
    do {
      _ = try SafetensorsFile(url: url)
      Issue.record("expected an error")
    } catch let e as FolioError {
      #expect(e.code == .corruptCheckpoint)
      #expect(e.message.contains("'w'"))
    }
  }

  @Test func zeroByteAndGarbageFiles() throws {
    let folder = try Fixtures.temporaryFolder()
    let empty = folder.appendingPathComponent("empty.safetensors")
    try Data().write(to: empty)
    #expect(throws: FolioError.self) { try SafetensorsFile(url: empty) }
    let garbage = folder.appendingPathComponent("garbage.safetensors")
    var bytes = withUnsafeBytes(of: UInt64(12).littleEndian) { Data($0) }
    bytes.append(contentsOf: Array("not json at all!".utf8))
    try bytes.write(to: garbage)
    #expect(throws: FolioError.self) { try SafetensorsFile(url: garbage) }
  }

  @Test func wrongTensorShape() throws {
    let folder = try copyOfDenseModel()
    let url = folder.appendingPathComponent("config.json")
    var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    var text = try #require(config["text_config"] as? [String: Any])
    text["intermediate_size"] = ((text["intermediate_size"] as? Int) ?? 0) + 1
    config["text_config"] = text
    try JSONSerialization.data(withJSONObject: config).write(to: url)
    let e = try #require(error(loading: folder))
    #expect(e.code == .tensorShapeMismatch)
    #expect(e.message.contains("mlp.gate_proj.weight"))
    #expect(e.message.contains("expected"))
  }

  @Test func missingTensor() throws {
    let folder = try Fixtures.temporaryFolder()
    try FileManager.default.copyItem(
      at: Fixtures.model("tiny-dense").appendingPathComponent("config.json"),
      to: folder.appendingPathComponent("config.json"))
    try SafetensorsWriter.bytes([.init(name: "model.language_model.embed_tokens.weight", shape: [1], values: [0])])
      .write(to: folder.appendingPathComponent("model.safetensors"))
    let e = try #require(error(loading: folder))
    #expect(e.code == .tensorShapeMismatch || e.code == .missingTensor)
    #expect(e.message.contains("embed_tokens"))
  }
}

/// `--model` accepts folders, Hugging Face cache entries and model ids.
@Suite("Model locator")
struct ModelLocatorTests {
  /// A cache with `models--Qwen--Tiny/snapshots/<rev>` holding the dense fixture, and `refs/main`.
  func makeCache() throws -> (cache: URL, snapshot: URL) {
    let cache = try Fixtures.temporaryFolder().appendingPathComponent("hub")
    let entry = cache.appendingPathComponent("models--Qwen--Tiny")
    let snapshot = entry.appendingPathComponent("snapshots/0123abcd")
    try FileManager.default.createDirectory(
      at: snapshot.deletingLastPathComponent(), withIntermediateDirectories: true)
    try FileManager.default.copyItem(at: Fixtures.model("tiny-dense"), to: snapshot)
    try FileManager.default.createDirectory(at: entry.appendingPathComponent("refs"), withIntermediateDirectories: true)
    try "0123abcd".write(to: entry.appendingPathComponent("refs/main"), atomically: true, encoding: .utf8)
    return (cache, snapshot)
  }

  @Test func folderPath() throws {
    let url = try ModelLocator(environment: [:]).resolve(Fixtures.model("tiny-dense").path)
    #expect(url.lastPathComponent == "tiny-dense")
  }

  @Test func cacheEntryFolder() throws {
    let (cache, snapshot) = try makeCache()
    let url = try ModelLocator(environment: [:]).resolve(cache.appendingPathComponent("models--Qwen--Tiny").path)
    #expect(url.standardizedFileURL.path == snapshot.standardizedFileURL.path)
  }

  @Test func modelIDThroughHFHome() throws {
    let (cache, snapshot) = try makeCache()
    let locator = ModelLocator(environment: ["HF_HOME": cache.deletingLastPathComponent().path, "HOME": "/nonexistent"])
    let url = try locator.resolve("Qwen/Tiny")
    #expect(url.standardizedFileURL.path == snapshot.standardizedFileURL.path)
    _ = try Checkpoint(folder: url)
  }

  @Test func unknownModelID() throws {
    let locator = ModelLocator(environment: ["HF_HOME": "/nonexistent", "HOME": "/nonexistent"])
    do {
      _ = try locator.resolve("Qwen/Missing")
      Issue.record("expected an error")
    } catch let e as FolioError {
      #expect(e.code == .modelNotFound)
      #expect(e.message.contains("huggingface-cli download Qwen/Missing"))
    }
  }
}
