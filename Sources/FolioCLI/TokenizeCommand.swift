import ArgumentParser
import FolioModel
import FolioTokenizer
import Foundation

/// `folio tokenize`: print the token ids of a text (special tokens recognised).
struct TokenizeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tokenize", abstract: "Print the token ids of TEXT.")

  @Option(name: .long, help: "Model folder, Hugging Face cache entry, or model id.")
  var model: String

  @Flag(name: .long, help: "Print {\"ids\": [...], \"tokens\": [...]} as JSON.")
  var json = false

  @Argument(help: "The text to tokenize.")
  var text: String

  func run() throws {
    let folder = try ModelLocator().resolve(model)
    let tokenizer = try Tokenizer(folder: folder)
    let ids = tokenizer.encode(text)
    if json {
      let object: [String: Any] = ["ids": ids, "tokens": ids.map { tokenizer.token(forID: $0) ?? "" }]
      let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
      print(String(decoding: data, as: UTF8.self))
    } else {
      print(ids.map(String.init).joined(separator: " "))
    }
  }
}
