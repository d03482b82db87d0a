// TEMPORARY stub so this branch compiles while FolioTokenizer is written on main. Dropped at merge.
import FolioBase
import Foundation

public final class Tokenizer: Sendable {
  public convenience init(folder: URL) throws { try self.init(tokenizerJSON: folder) }
  public init(tokenizerJSON url: URL) throws { throw FolioError(.invalidTokenizer, "stub") }
  public func encode(_ text: String, parseSpecialTokens: Bool = true) -> [Int] { [] }
  public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String { "" }
  public func id(forToken token: String) -> Int? { nil }
  public func token(forID id: Int) -> String? { nil }
  public var vocabularySize: Int { 0 }
  public func isSpecial(_ id: Int) -> Bool { false }
}
public struct StreamingDetokenizer {
  public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {}
  public mutating func append(_ id: Int) -> String { "" }
  public mutating func finish() -> String { "" }
}
