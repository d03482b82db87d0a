/// A shell-style glob: `*` matches within one path segment, `**` across segments, `?` one character,
/// `[abc]`, `[a-z]` and `[!abc]` a character class, `{txt,md}` alternatives, `\` escapes the next character.
/// Matching is case-sensitive.
public struct Glob: Sendable, Hashable, CustomStringConvertible {
  /// The pattern as written.
  public let pattern: String
  private let alternatives: [[Token]]

  private enum Token: Sendable, Hashable {
    case literal(Character)
    case any  // ?
    case star  // *
    case globstar  // **
    case globstarSlash  // **/ : zero or more whole segments
    case set([ClassItem], negated: Bool)
  }

  private enum ClassItem: Sendable, Hashable {
    case char(Character)
    case range(Character, Character)
  }

  /// Parses a pattern; throws for an unterminated `[` class or a trailing `\`.
  public init(_ pattern: String) throws(GlobError) {
    self.pattern = pattern
    var alternatives: [[Token]] = []
    for expanded in try Self.expandBraces(pattern, original: pattern) {
      alternatives.append(try Self.tokenize(expanded, original: pattern))
    }
    self.alternatives = alternatives
  }

  /// Expands the first `{a,b}` group (recursively), honouring `\` escapes.
  private static func expandBraces(_ pattern: String, original: String) throws(GlobError) -> [String] {
    let chars = Array(pattern)
    var i = 0
    while i < chars.count {
      if chars[i] == "\\" {
        i += 2
        continue
      }
      if chars[i] == "{" {
        var depth = 0
        var j = i
        var parts: [String] = []
        var current = ""
        while j < chars.count {
          let c = chars[j]
          if c == "\\" && j + 1 < chars.count {
            current.append(c)
            current.append(chars[j + 1])
            j += 2
            continue
          }
          if c == "{" {
            depth += 1
            if depth > 1 { current.append(c) }
          } else if c == "}" {
            depth -= 1
            if depth == 0 { break }
            current.append(c)
          } else if c == "," && depth == 1 {
            parts.append(current)
            current = ""
          } else {
            current.append(c)
          }
          j += 1
        }
        guard j < chars.count else { throw GlobError(pattern: original, reason: "has a `{` without a closing `}`") }
        parts.append(current)
        let prefix = String(chars[..<i])
        let suffix = String(chars[(j + 1)...])
        var result: [String] = []
        for part in parts {
          result += try expandBraces(prefix + part + suffix, original: original)
        }
        return result
      }
      i += 1
    }
    return [pattern]
  }

  private static func tokenize(_ pattern: String, original: String) throws(GlobError) -> [Token] {
    var tokens: [Token] = []
    let chars = Array(pattern)
    var i = 0
    while i < chars.count {
      let c = chars[i]
      switch c {
      case "*":
        if i + 1 < chars.count && chars[i + 1] == "*" {
          i += 2
          // `**/` matches zero or more whole directories, so `a/**/b` matches `a/b` and `a/x/y/b`, not `a/xb`.
          if i < chars.count && chars[i] == "/" {
            tokens.append(.globstarSlash)
            i += 1
          } else {
            tokens.append(.globstar)
          }
          continue
        }
        tokens.append(.star)
      case "?":
        tokens.append(.any)
      case "\\":
        guard i + 1 < chars.count else { throw GlobError(pattern: original, reason: "ends with a lone `\\`") }
        i += 1
        tokens.append(.literal(chars[i]))
      case "[":
        var j = i + 1
        var negated = false
        if j < chars.count && (chars[j] == "!" || chars[j] == "^") {
          negated = true
          j += 1
        }
        var items: [ClassItem] = []
        var first = true
        while j < chars.count && (chars[j] != "]" || first) {
          first = false
          if j + 2 < chars.count && chars[j + 1] == "-" && chars[j + 2] != "]" {
            items.append(.range(chars[j], chars[j + 2]))
            j += 3
          } else {
            items.append(.char(chars[j]))
            j += 1
          }
        }
        guard j < chars.count else { throw GlobError(pattern: original, reason: "has a `[` without a closing `]`") }
        tokens.append(.set(items, negated: negated))
        i = j
      default:
        tokens.append(.literal(c))
      }
      i += 1
    }
    return tokens
  }

  /// The pattern as written.
  public var description: String { pattern }

  /// Whether `path` (segments separated by `/`) matches the whole pattern.
  public func matches(_ path: String) -> Bool {
    alternatives.contains { Self.matches(tokens: $0, path) }
  }

  private static func matches(tokens: [Token], _ path: String) -> Bool {
    let text = Array(path)
    // Memoised backtracking over (token index, text index): linear in tokens × characters.
    var memo = [Int: Bool]()
    func match(_ t: Int, _ s: Int) -> Bool {
      let key = t * (text.count + 1) + s
      if let known = memo[key] { return known }
      let result: Bool
      if t == tokens.count {
        result = s == text.count
      } else {
        switch tokens[t] {
        case .literal(let c):
          result = s < text.count && text[s] == c && match(t + 1, s + 1)
        case .any:
          result = s < text.count && text[s] != "/" && match(t + 1, s + 1)
        case .set(let items, let negated):
          if s < text.count && text[s] != "/" {
            let c = text[s]
            let inSet = items.contains { item in
              switch item {
              case .char(let x): x == c
              case .range(let lo, let hi): lo <= c && c <= hi
              }
            }
            result = inSet != negated && match(t + 1, s + 1)
          } else {
            result = false
          }
        case .star:
          var k = s
          var found = match(t + 1, k)
          while !found && k < text.count && text[k] != "/" {
            k += 1
            found = match(t + 1, k)
          }
          result = found
        case .globstar:
          var k = s
          var found = match(t + 1, k)
          while !found && k < text.count {
            k += 1
            found = match(t + 1, k)
          }
          result = found
        case .globstarSlash:
          var found = match(t + 1, s)
          var k = s
          while !found && k < text.count {
            k += 1
            if text[k - 1] == "/" { found = match(t + 1, k) }
          }
          result = found
        }
      }
      memo[key] = result
      return result
    }
    return match(0, 0)
  }
}

/// A glob pattern that cannot be parsed.
public struct GlobError: Error, Sendable, Hashable, CustomStringConvertible {
  /// The pattern.
  public var pattern: String
  /// What is wrong with it.
  public var reason: String
  /// A sentence for people.
  public var description: String { "glob `\(pattern)` \(reason)" }
}
