import Foundation

/// A turn of a conversation: text, and for user turns, images in place.
///
/// Decodes from the Hugging Face message shape: `content` is a string or a list of `{"type": "text", "text": …}` /
/// `{"type": "image"}` items; an assistant's kept reasoning is `reasoning_content`.
public struct ChatMessage: Sendable, Equatable, Codable {
  public enum Role: String, Sendable, Codable {
    case system, user, assistant
  }

  /// One item of a message's content.
  public enum Part: Sendable, Equatable {
    case text(String)
    /// An image; its pixels travel separately, in order of appearance.
    case image
  }

  public var role: Role
  public var parts: [Part]
  /// An assistant turn's reasoning, if kept apart from the content.
  public var reasoning: String?

  public init(role: Role, content: String, reasoning: String? = nil) {
    self.init(role: role, parts: [.text(content)], reasoning: reasoning)
  }

  public init(role: Role, parts: [Part], reasoning: String? = nil) {
    self.role = role
    self.parts = parts
    self.reasoning = reasoning
  }

  /// The text of all text parts, concatenated.
  public var text: String {
    parts.map { if case .text(let t) = $0 { t } else { "" } }.joined()
  }

  /// Number of image parts.
  public var imageCount: Int { parts.filter { $0 == .image }.count }

  enum CodingKeys: String, CodingKey {
    case role, content
    case reasoning = "reasoning_content"
  }

  private struct Item: Codable {
    var type: String
    var text: String?
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    role = try c.decode(Role.self, forKey: .role)
    reasoning = try c.decodeIfPresent(String.self, forKey: .reasoning)
    if let text = try? c.decode(String.self, forKey: .content) {
      parts = [.text(text)]
    } else {
      parts = try c.decode([Item].self, forKey: .content).map { item in
        switch item.type {
        case "image", "image_url": return .image
        case "text": return .text(item.text ?? "")
        default:
          throw DecodingError.dataCorruptedError(
            forKey: .content, in: c, debugDescription: "unsupported content type '\(item.type)'")
        }
      }
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(role, forKey: .role)
    try c.encodeIfPresent(reasoning, forKey: .reasoning)
    if case .text(let t) = parts.first, parts.count == 1 {
      try c.encode(t, forKey: .content)
    } else {
      try c.encode(
        parts.map { if case .text(let t) = $0 { Item(type: "text", text: t) } else { Item(type: "image") } },
        forKey: .content)
    }
  }
}

/// Renders conversations in the Qwen3.5 chat format, byte-identical to the checkpoint's Jinja `chat_template` for the
/// message shapes Folio uses (system, user and assistant text turns; no tools).
///
/// The only per-checkpoint difference that matters for these shapes is the thinking default of the generation
/// prompt (qwen35.md §5.2): 0.8B/2B templates think only when asked, 4B and larger unless told not to. It is read
/// from the template text.
public struct ChatTemplate: Sendable, Equatable {
  /// Whether the generation prompt opens a reasoning block when the caller does not say.
  public var thinksByDefault: Bool

  public init(thinksByDefault: Bool) { self.thinksByDefault = thinksByDefault }

  /// Reads the thinking default from a checkpoint's template source (`chat_template.jinja` or the
  /// `chat_template` field of `tokenizer_config.json`); no template means Qwen3.5's large-model default (thinking).
  public init(templateSource: String?) {
    if let source = templateSource, source.contains("enable_thinking is defined and enable_thinking is true") {
      thinksByDefault = false
    } else {
      thinksByDefault = true
    }
  }

  /// Loads the template source of the model in `folder`.
  public static func load(folder: URL) -> ChatTemplate {
    let jinja = folder.appendingPathComponent("chat_template.jinja")
    if let text = try? String(contentsOf: jinja, encoding: .utf8) { return ChatTemplate(templateSource: text) }
    let config = folder.appendingPathComponent("tokenizer_config.json")
    if let data = try? Data(contentsOf: config),
      let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
      let template = object["chat_template"] as? String
    {
      return ChatTemplate(templateSource: template)
    }
    return ChatTemplate(templateSource: nil)
  }

  /// Content items concatenated without separators; an image becomes its vision placeholder.
  static func renderContent(_ parts: [ChatMessage.Part]) -> String {
    parts.map {
      switch $0 {
      case .text(let t): t
      case .image: "<|vision_start|><|image_pad|><|vision_end|>"
      }
    }.joined()
  }

  /// The prompt text for `messages`; with `addGenerationPrompt` it ends with the assistant header and the
  /// thinking preamble (`enableThinking` nil takes the template's default).
  public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true, enableThinking: Bool? = nil) -> String
  {
    var out = ""
    let lastQuery = messages.lastIndex { $0.role == .user } ?? (messages.count - 1)
    for (index, message) in messages.enumerated() {
      var content = Self.renderContent(message.parts).jinjaTrimmed
      switch message.role {
      case .system, .user:
        out += "<|im_start|>\(message.role.rawValue)\n\(content)<|im_end|>\n"
      case .assistant:
        var reasoning = ""
        if let kept = message.reasoning {
          reasoning = kept
        } else if let close = content.range(of: "</think>") {
          let before = String(content[..<close.lowerBound]).trimmingTrailing("\n")
          reasoning = before.components(separatedBy: "<think>").last.map { $0.trimmingLeading("\n") } ?? ""
          content = (content.components(separatedBy: "</think>").last ?? "").trimmingLeading("\n")
        }
        reasoning = reasoning.jinjaTrimmed
        if index > lastQuery {
          out += "<|im_start|>assistant\n<think>\n\(reasoning)\n</think>\n\n\(content)"
        } else {
          out += "<|im_start|>assistant\n\(content)"
        }
        out += "<|im_end|>\n"
      }
    }
    if addGenerationPrompt {
      out += "<|im_start|>assistant\n"
      out += (enableThinking ?? thinksByDefault) ? "<think>\n" : "<think>\n\n</think>\n\n"
    }
    return out
  }
}

extension String {
  /// Jinja's `|trim`: Python `str.strip()` (Unicode whitespace at both ends).
  var jinjaTrimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }

  /// Python's `rstrip(characters)`, scalar by scalar.
  func trimmingTrailing(_ characters: String) -> String {
    var scalars = Substring(self).unicodeScalars
    while let last = scalars.last, characters.unicodeScalars.contains(last) { scalars.removeLast() }
    return String(scalars)
  }

  /// Python's `lstrip(characters)`, scalar by scalar.
  func trimmingLeading(_ characters: String) -> String {
    var scalars = Substring(self).unicodeScalars
    while let first = scalars.first, characters.unicodeScalars.contains(first) { scalars.removeFirst() }
    return String(scalars)
  }
}
