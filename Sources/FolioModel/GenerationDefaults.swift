import FolioBase
import Foundation

/// Sampling defaults and stop tokens from a checkpoint's `generation_config.json` (all optional).
public struct GenerationDefaults: Sendable, Equatable {
  public var eosTokenIDs: [Int] = []
  public var temperature: Double?
  public var topP: Double?
  public var topK: Int?
  public var minP: Double?
  public var doSample: Bool?
  public var repetitionPenalty: Double?

  public init() {}

  /// Reads `url`; a missing file gives empty defaults, a malformed one an error.
  public static func load(from url: URL) throws -> GenerationDefaults {
    guard FileManager.default.fileExists(atPath: url.path) else { return GenerationDefaults() }
    guard let data = try? Data(contentsOf: url),
      let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    else {
      throw FolioError(.invalidConfig, "\(url.path): not a JSON object; fix or delete generation_config.json.")
    }
    var d = GenerationDefaults()
    if let id = (o["eos_token_id"] as? NSNumber)?.intValue { d.eosTokenIDs = [id] }
    if let ids = o["eos_token_id"] as? [Any] { d.eosTokenIDs = ids.compactMap { ($0 as? NSNumber)?.intValue } }
    d.temperature = (o["temperature"] as? NSNumber)?.doubleValue
    d.topP = (o["top_p"] as? NSNumber)?.doubleValue
    d.topK = (o["top_k"] as? NSNumber)?.intValue
    d.minP = (o["min_p"] as? NSNumber)?.doubleValue
    d.doSample = o["do_sample"] as? Bool
    d.repetitionPenalty = (o["repetition_penalty"] as? NSNumber)?.doubleValue
    return d
  }
}
