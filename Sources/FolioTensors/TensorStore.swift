import FolioBase
import Foundation

/// All tensors of a checkpoint folder, from `model.safetensors`, a sharded set listed in
/// `model.safetensors.index.json`, or (failing both) every `*.safetensors` file in the folder.
public final class TensorStore: @unchecked Sendable {
  /// The folder the checkpoint was read from.
  public let folder: URL
  /// The tensors by name.
  public let tensors: [String: TensorView]

  /// Opens every weight file of `folder`.
  public init(folder: URL) throws {
    self.folder = folder
    let fm = FileManager.default
    let index = folder.appendingPathComponent("model.safetensors.index.json")
    let single = folder.appendingPathComponent("model.safetensors")
    var files: [URL]
    if fm.fileExists(atPath: index.path) {
      files = try Self.shards(fromIndex: index)
    } else if fm.fileExists(atPath: single.path) {
      files = [single]
    } else {
      let names = (try? fm.contentsOfDirectory(atPath: folder.path)) ?? []
      files = names.filter { $0.hasSuffix(".safetensors") }.sorted().map { folder.appendingPathComponent($0) }
    }
    guard !files.isEmpty else {
      throw FolioError(
        .fileNotFound,
        "\(folder.path): no model.safetensors, model.safetensors.index.json or *.safetensors file; point --model at a Hugging Face model folder."
      )
    }
    var all: [String: TensorView] = [:]
    for url in files {
      guard fm.fileExists(atPath: url.path) else {
        throw FolioError(
          .fileNotFound, "\(url.path): listed in model.safetensors.index.json but missing (incomplete download?).")
      }
      let file = try SafetensorsFile(url: url)
      all.merge(file.tensors) { first, _ in first }
    }
    tensors = all
  }

  /// A tensor by name, or `nil`.
  public subscript(name: String) -> TensorView? { tensors[name] }

  private static func shards(fromIndex index: URL) throws -> [URL] {
    let data: Data
    do { data = try Data(contentsOf: index) } catch {
      throw FolioError(.fileUnreadable, "\(index.path): cannot read.", cause: error)
    }
    guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let map = json["weight_map"] as? [String: String]
    else {
      throw FolioError(.corruptCheckpoint, "\(index.path): not a safetensors index (no \"weight_map\" object).")
    }
    for file in Set(map.values) where file.contains("/") || file.contains("..") {
      throw FolioError(.corruptCheckpoint, "\(index.path): shard name '\(file)' is not a plain file name.")
    }
    return Set(map.values).sorted().map { index.deletingLastPathComponent().appendingPathComponent($0) }
  }
}
