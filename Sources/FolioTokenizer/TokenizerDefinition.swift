import FolioBase
import Foundation

/// What Folio reads from a `tokenizer.json` (the Hugging Face `tokenizers` serialization), checked to be a
/// configuration this module reproduces exactly: a byte-level BPE model with an optional Unicode normalizer,
/// `Split` pre-tokenizers with a supported regex (see `SplitPattern.known`) ending in `ByteLevel`, and the
/// `ByteLevel` decoder. The post-processor is ignored: `Tokenizer.encode` never adds special tokens.
struct TokenizerDefinition {
  var vocabulary: [(token: String, id: Int32)] = []
  var merges: [(left: String, right: String)] = []
  var ignoresMerges = false
  var addedTokens: [AddedToken] = []
  var normalizer = Normalizer(forms: [])
  var splitPatterns: [SplitPattern] = []
  var addsPrefixSpace = false
  /// How many of `splitPatterns` come from `Split` pre-tokenizers; the rest is ByteLevel's own regex.
  var byteLevelStep = 0

  /// Parses `data`, the contents of `url` (named in error messages).
  init(data: Data, url: URL) throws(FolioError) {
    let file = url.path
    func invalid(_ message: String) -> FolioError {
      FolioError(.invalidTokenizer, "\(file): \(message)")
    }
    let root: JSONValue
    do {
      root = try data.withUnsafeBytes { raw in try JSONParser.parse(raw.bindMemory(to: UInt8.self)) }
    } catch {
      throw FolioError(.invalidTokenizer, "\(file) is not valid JSON (\(error))")
    }
    guard let object = root.object else { throw invalid("the top level is not a JSON object") }

    // Model.
    guard let model = object["model"]?.object else { throw invalid("no \"model\" object; is this a tokenizer.json?") }
    let modelType = model["type"]?.string
    guard modelType == "BPE" || (modelType == nil && model["merges"] != nil) else {
      throw invalid("model type \(modelType.map { "\"\($0)\"" } ?? "(none)") is not supported; Folio reads BPE models")
    }
    guard let vocab = model["vocab"]?.object else { throw invalid("the BPE model has no \"vocab\" object") }
    vocabulary.reserveCapacity(vocab.count)
    for (token, value) in zip(vocab.keys, vocab.values) {
      guard let id = value.int, id >= 0, id < Int(Int32.max) else {
        throw invalid("vocabulary entry \"\(token)\" has an invalid id")
      }
      vocabulary.append((token, Int32(id)))
    }
    guard let mergeList = model["merges"]?.array else { throw invalid("the BPE model has no \"merges\" array") }
    merges.reserveCapacity(mergeList.count)
    for (rank, merge) in mergeList.enumerated() {
      if let line = merge.string {
        if line.hasPrefix("#version") { continue }
        // `tokenizers` splits legacy merges on every space and wants exactly two parts.
        let utf8 = line.utf8
        guard let space = utf8.firstIndex(of: 0x20), !utf8[utf8.index(after: space)...].contains(0x20) else {
          throw invalid("merge \(rank + 1) (\"\(line)\") is not two tokens separated by a space")
        }
        merges.append((String(line[..<space]), String(line[line.index(after: space)...])))
      } else if let pair = merge.array, pair.count == 2, let left = pair[0].string, let right = pair[1].string {
        merges.append((left, right))
      } else {
        throw invalid("merge \(rank + 1) is neither \"a b\" nor [\"a\", \"b\"]")
      }
    }
    ignoresMerges = model["ignore_merges"]?.bool ?? false
    for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
      if let affix = model[key]?.string, !affix.isEmpty {
        throw invalid("\(key) \"\(affix)\" is not supported (byte-level BPE has none)")
      }
    }

    // Added tokens.
    for (index, entry) in (object["added_tokens"]?.array ?? []).enumerated() {
      guard let token = entry.object, let id = token["id"]?.int, id >= 0, id < Int(Int32.max),
        let content = token["content"]?.string
      else { throw invalid("added token \(index) lacks an id or content") }
      if content.isEmpty { continue }  // tokenizers ignores empty added tokens
      let special = token["special"]?.bool ?? false
      addedTokens.append(
        AddedToken(
          id: Int32(id), content: content, isSpecial: special,
          singleWord: token["single_word"]?.bool ?? false,
          lstrip: token["lstrip"]?.bool ?? false,
          rstrip: token["rstrip"]?.bool ?? false,
          normalized: token["normalized"]?.bool ?? !special))
    }

    // Normalizer.
    if let normalizerValue = object["normalizer"], !normalizerValue.isNull {
      normalizer = Normalizer(forms: try Self.normalizerForms(normalizerValue, invalid: invalid))
    }

    // Pre-tokenizer: [Split...] then ByteLevel.
    guard let preTokenizer = object["pre_tokenizer"]?.object else {
      throw invalid("no pre_tokenizer; Folio reads byte-level BPE tokenizers (ByteLevel pre-tokenizer)")
    }
    var steps: [JSONObject]
    if preTokenizer["type"]?.string == "Sequence" {
      steps = try (preTokenizer["pretokenizers"]?.array ?? []).map { step throws(FolioError) in
        guard let object = step.object else { throw invalid("a pre-tokenizer in the sequence is not an object") }
        return object
      }
    } else {
      steps = [preTokenizer]
    }
    guard let last = steps.popLast(), last["type"]?.string == "ByteLevel" else {
      throw invalid("the pre-tokenizer does not end with ByteLevel; only byte-level BPE tokenizers are supported")
    }
    for step in steps {
      let type = step["type"]?.string ?? "(none)"
      guard type == "Split" else { throw invalid("pre-tokenizer \(type) is not supported") }
      guard let regex = step["pattern"]?.object?["Regex"]?.string else {
        throw invalid("only Split pre-tokenizers with a \"Regex\" pattern are supported")
      }
      guard let pattern = SplitPattern.known[regex] else { throw invalid("unsupported Split regex \(regex)") }
      guard step["behavior"]?.string == "Isolated", step["invert"]?.bool != true else {
        throw invalid("only Split pre-tokenizers with behavior \"Isolated\" (not inverted) are supported")
      }
      splitPatterns.append(pattern)
    }
    addsPrefixSpace = last["add_prefix_space"]?.bool ?? false
    byteLevelStep = splitPatterns.count
    if last["use_regex"]?.bool ?? true { splitPatterns.append(.gpt2) }

    // Decoder.
    guard let decoder = object["decoder"]?.object else {
      throw invalid("no decoder; Folio reads byte-level BPE tokenizers (ByteLevel decoder)")
    }
    let decoderSteps =
      decoder["type"]?.string == "Sequence" ? (decoder["decoders"]?.array ?? []).compactMap(\.object) : [decoder]
    guard decoderSteps.count == 1, decoderSteps[0]["type"]?.string == "ByteLevel" else {
      throw invalid("decoder \(decoder["type"]?.string ?? "(none)") is not supported; expected ByteLevel")
    }
  }

  private static func normalizerForms(
    _ value: JSONValue, invalid: (String) -> FolioError
  ) throws(FolioError) -> [Normalizer.Form] {
    guard let object = value.object, let type = object["type"]?.string else {
      throw invalid("the normalizer is not an object with a type")
    }
    if type == "Sequence" {
      var forms: [Normalizer.Form] = []
      for step in object["normalizers"]?.array ?? [] { forms += try normalizerForms(step, invalid: invalid) }
      return forms
    }
    guard let form = Normalizer.Form(rawValue: type) else {
      throw invalid("normalizer \(type) is not supported (supported: NFC, NFD, NFKC, NFKD and sequences of them)")
    }
    return [form]
  }
}
