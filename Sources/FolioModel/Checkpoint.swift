import FolioBase
import FolioTensors
import Foundation

/// A loaded Qwen3.5 checkpoint: its folder, configuration, generation defaults and text decoder.
public final class Checkpoint: Sendable {
  public let folder: URL
  public let config: ModelConfiguration
  public let generationDefaults: GenerationDefaults
  public let textModel: TextModel
  /// Keeps the memory-mapped weight files open.
  public let store: TensorStore

  /// Loads the checkpoint in `folder` (already resolved by `ModelLocator`).
  public init(folder: URL) throws {
    self.folder = folder
    config = try ModelConfiguration.load(from: folder.appendingPathComponent("config.json"))
    generationDefaults = try GenerationDefaults.load(from: folder.appendingPathComponent("generation_config.json"))
    store = try TensorStore(folder: folder)
    textModel = try TextModel(store: store, config: config.text)
  }
}
