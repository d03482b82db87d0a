import FolioBase
import Foundation

/// Turns what a user typed for `--model` into a model folder: a folder path, a Hugging Face cache entry
/// (`models--Org--Name`, resolved through `refs/main` to `snapshots/<rev>/`), or a model id (`Org/Name`)
/// looked up in the Hugging Face cache (`$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`).
public struct ModelLocator: Sendable {
  /// Environment consulted for cache locations (injected for tests).
  public var environment: [String: String]

  public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
    self.environment = environment
  }

  /// Hub cache folders searched for model ids, most specific first.
  public var cacheFolders: [URL] {
    var folders: [URL] = []
    if let hub = environment["HF_HUB_CACHE"], !hub.isEmpty { folders.append(URL(fileURLWithPath: hub)) }
    if let home = environment["HF_HOME"], !home.isEmpty {
      folders.append(URL(fileURLWithPath: home).appendingPathComponent("hub"))
    }
    let userHome =
      environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
    folders.append(userHome.appendingPathComponent(".cache/huggingface/hub"))
    return folders
  }

  /// Resolves `reference` to a folder that holds `config.json`.
  public func resolve(_ reference: String) throws -> URL {
    let fm = FileManager.default
    let expanded = (reference as NSString).expandingTildeInPath
    var isDirectory: ObjCBool = false
    if fm.fileExists(atPath: expanded, isDirectory: &isDirectory) {
      let url = URL(fileURLWithPath: expanded).standardizedFileURL
      guard isDirectory.boolValue else {
        throw FolioError(
          .modelNotFound, "\(url.path) is a file; --model takes a model folder (with config.json) or a model id.")
      }
      if fm.fileExists(atPath: url.appendingPathComponent("config.json").path) { return url }
      if let snapshot = try snapshot(inCacheEntry: url) { return snapshot }
      throw FolioError(
        .modelNotFound, "\(url.path) has no config.json; point --model at a Hugging Face model folder.")
    }
    let parts = reference.split(separator: "/")
    guard parts.count == 2, !reference.hasPrefix("."), !reference.hasPrefix("/") else {
      throw FolioError(.modelNotFound, "\(reference): no such folder, and not a model id of the form Org/Name.")
    }
    let entryName = "models--\(parts[0])--\(parts[1])"
    for cache in cacheFolders {
      let entry = cache.appendingPathComponent(entryName)
      if fm.fileExists(atPath: entry.path), let snapshot = try snapshot(inCacheEntry: entry) { return snapshot }
    }
    let searched = cacheFolders.map(\.path).joined(separator: ", ")
    throw FolioError(
      .modelNotFound,
      "model '\(reference)' is not in the Hugging Face cache (searched \(searched)); download it with `huggingface-cli download \(reference)` or pass a folder path."
    )
  }

  /// The snapshot folder of a cache entry: the revision named by `refs/main`, else the only (or newest) snapshot.
  func snapshot(inCacheEntry entry: URL) throws -> URL? {
    let fm = FileManager.default
    let snapshots = entry.appendingPathComponent("snapshots")
    guard fm.fileExists(atPath: snapshots.path) else { return nil }
    if let ref = try? String(contentsOf: entry.appendingPathComponent("refs/main"), encoding: .utf8) {
      let revision = ref.trimmingCharacters(in: .whitespacesAndNewlines)
      let folder = snapshots.appendingPathComponent(revision)
      if !revision.isEmpty, !revision.contains("/"),
        fm.fileExists(atPath: folder.appendingPathComponent("config.json").path)
      {
        return folder
      }
    }
    let candidates = ((try? fm.contentsOfDirectory(atPath: snapshots.path)) ?? [])
      .map { snapshots.appendingPathComponent($0) }
      .filter { fm.fileExists(atPath: $0.appendingPathComponent("config.json").path) }
    let dated = candidates.map { url -> (URL, Date) in
      let date = (try? fm.attributesOfItem(atPath: url.path)[.modificationDate] as? Date) ?? .distantPast
      return (url, date)
    }
    return dated.max { $0.1 < $1.1 }?.0
  }
}
