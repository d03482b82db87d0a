import Foundation

/// The built-in prompt for each task, in one place. A step's `prompt` replaces it.
///
/// Templates may contain `{language}` (translate: the target language, written as "German (de)") and `{text}`
/// (summarize/translate: the input text). If a summarize or translate template has no `{text}`, the text is
/// appended after a blank line. Caption and OCR prompts are sent with the image and have no placeholders.
public enum DefaultPrompts {
  /// Placeholders a template may use.
  public static let placeholders: Set<String> = ["language", "text"]

  /// The default template for a task.
  public static func template(for task: StepTask) -> String {
    switch task {
    case .caption:
      """
      Describe this image in one or two sentences: what it shows, the setting, and any prominent text or objects. \
      Be factual; do not guess at things that are not visible. Answer with the description only.
      """
    case .ocr:
      """
      Transcribe all text visible in this image exactly as written, in reading order. Keep line breaks, \
      numbers, punctuation and the original language; do not translate, correct or summarize. \
      Output only the transcribed text. If the image contains no text, output nothing.
      """
    case .summarize:
      """
      Summarize the following document in three to five sentences, in the language the document is written in. \
      Keep names, numbers, dates and amounts exactly as written, and do not add information that is not in the \
      document. Output only the summary.

      Document:
      {text}
      """
    case .translate:
      """
      Translate the following text into {language}. Preserve the meaning, tone and formatting: keep line breaks, \
      lists, numbers, names, dates and amounts as they are. Do not add notes, explanations or a preamble, and do \
      not translate text that is already in {language}. Output only the translation.

      Text:
      {text}
      """
    }
  }

  /// Fills `{text}` and `{language}` in a template. A template without `{text}` gets the text appended.
  public static func render(_ template: String, text: String?, language: String?) -> String {
    var result = template
    if let language {
      result = result.replacingOccurrences(of: "{language}", with: languageDisplayName(language))
    }
    if let text {
      if result.contains("{text}") {
        result = result.replacingOccurrences(of: "{text}", with: text)
      } else {
        result += "\n\n" + text
      }
    }
    return result
  }

  /// "German (de)" for `de`; the code itself for codes this table does not know. The model translates better to
  /// a language name than to a bare code.
  public static func languageDisplayName(_ code: String) -> String {
    let base = code.split(separator: "-").first.map { String($0).lowercased() } ?? code
    guard let name = languageNames[code.lowercased()] ?? languageNames[base] else { return code }
    return "\(name) (\(code))"
  }

  static let languageNames: [String: String] = [
    "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan", "cs": "Czech", "da": "Danish",
    "de": "German", "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian",
    "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian",
    "ms": "Malay", "nb": "Norwegian Bokmål", "nl": "Dutch", "no": "Norwegian", "pl": "Polish",
    "pt": "Portuguese", "pt-br": "Brazilian Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak",
    "sl": "Slovenian", "sr": "Serbian", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil", "th": "Thai",
    "tl": "Tagalog", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "zh": "Chinese",
    "zh-hans": "Simplified Chinese", "zh-hant": "Traditional Chinese", "zh-cn": "Simplified Chinese",
    "zh-tw": "Traditional Chinese",
  ]
}
