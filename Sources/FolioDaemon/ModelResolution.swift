import FolioBase
import FolioModel
import Foundation

/// Which model the daemon runs and where it came from, so the log and `folio doctor` can say it plainly.
public struct ModelChoice: Sendable, Hashable {
  /// How the model was found.
  public enum Origin: String, Sendable, Hashable {
    /// The configured folder, cache entry or model id.
    case configured
    /// `auto`: the smallest Qwen3.5 found in the local Hugging Face cache.
    case huggingFaceCache = "huggingface_cache"
    /// The random-weight test model bundled with the sources (explicitly allowed).
    case bundledTestModel = "bundled_test_model"
  }

  /// The reference handed to the engine (a folder path, cache entry or model id).
  public var reference: String
  /// How it was found.
  public var origin: Origin
  /// A sentence for the log: which model, from where, and what that means.
  public var explanation: String

  /// Whether this is the bundled random-weight model (its output is gibberish).
  public var isTestModel: Bool { origin == .bundledTestModel }
}

/// Resolves the `model` setting (issue 4, "The README's main command": a local model path or Hugging Face cache
/// entry, otherwise the small model bundled for tests, saying so plainly). Folio never downloads anything.
public enum ModelResolver {
  /// The Qwen3.5 checkpoints `auto` looks for in the Hugging Face cache, smallest (fastest on a CPU) first.
  public static let autoCandidates = [
    "Qwen/Qwen3.5-0.8B", "Qwen/Qwen3.5-2B", "Qwen/Qwen3.5-4B", "Qwen/Qwen3.5-9B", "Qwen/Qwen3.5-35B-A3B",
  ]

  /// Where the bundled test model lives relative to the package root.
  public static let bundledTestModelPath = "Tests/Fixtures/models/tiny-dense"

  /// Resolves `setting` (`auto` or a reference).
  ///
  /// - Throws: ``FolioError/Code/modelNotFound`` with the places searched and how to fix it.
  public static func resolve(
    _ setting: String, allowTestModel: Bool, locator: ModelLocator = ModelLocator(),
    currentDirectory: String = FileManager.default.currentDirectoryPath,
    executablePath: String = CommandLine.arguments.first ?? ""
  ) throws(FolioError) -> ModelChoice {
    if setting.lowercased() != "auto" {
      do {
        let folder = try locator.resolve(setting)
        return ModelChoice(
          reference: folder.path, origin: .configured,
          explanation: "model \(setting) (\(folder.path))")
      } catch let error as FolioError {
        throw error
      } catch {
        throw FolioError(.modelNotFound, "cannot resolve the model \(setting)", cause: error)
      }
    }
    for id in autoCandidates {
      if let folder = try? locator.resolve(id) {
        return ModelChoice(
          reference: folder.path, origin: .huggingFaceCache,
          explanation: "model \(id) from the local Hugging Face cache (\(folder.path))")
      }
    }
    let searched = locator.cacheFolders.map(\.path).joined(separator: ", ")
    guard allowTestModel else {
      throw FolioError(
        .modelNotFound,
        "no model configured and no Qwen3.5 checkpoint in the Hugging Face cache (searched \(searched)). Fix: set "
          + "`model:` in folio.yaml or pass --model with a Qwen3.5 folder or id (e.g. after "
          + "`huggingface-cli download Qwen/Qwen3.5-0.8B`), or pass --allow-test-model to try Folio with its "
          + "bundled random-weight test model")
    }
    guard let bundled = bundledTestModel(currentDirectory: currentDirectory, executablePath: executablePath) else {
      throw FolioError(
        .modelNotFound,
        "no Qwen3.5 checkpoint in the Hugging Face cache (searched \(searched)), and the bundled test model "
          + "\(bundledTestModelPath) was not found next to the current folder or the executable. Fix: run from the "
          + "Folio source folder, or pass --model")
    }
    return ModelChoice(
      reference: bundled, origin: .bundledTestModel,
      explanation: "NO MODEL FOUND (searched \(searched)): falling back to the bundled TEST model \(bundled). It has "
        + "random weights, so every result is gibberish; it only shows that the pipeline works. Pass --model with a "
        + "Qwen3.5 checkpoint for real results")
  }

  /// The bundled test model: under the current folder, or under an ancestor of the executable (`.build/…/folio`).
  public static func bundledTestModel(currentDirectory: String, executablePath: String) -> String? {
    var roots = [currentDirectory]
    var folder = URL(fileURLWithPath: executablePath).resolvingSymlinksInPath().deletingLastPathComponent()
    while folder.path != "/" && !folder.path.isEmpty {
      roots.append(folder.path)
      folder.deleteLastPathComponent()
    }
    for root in roots {
      let candidate = (root as NSString).appendingPathComponent(bundledTestModelPath)
      if FileManager.default.fileExists(atPath: (candidate as NSString).appendingPathComponent("config.json")) {
        return (candidate as NSString).standardizingPath
      }
    }
    return nil
  }
}
