#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Names the inbox never takes: partial downloads, editor lock files, dotfiles and Folio's own working folders
/// (lessons row 1).
///
/// Patterns are shell globs (`fnmatch`), matched case-insensitively. A pattern without `/` is matched against
/// the last path component of every file and folder (an ignored folder hides everything inside it); a pattern
/// with `/` is matched against the path relative to the inbox. `.folio*` is always ignored, whatever the
/// configuration says, because Folio's working area may live inside the inbox.
public struct IgnoreRules: Sendable, Hashable {
  /// The default patterns: `*.part`, `*.filepart`, `*.crdownload`, `*.tmp`, `~$*` and dotfiles (`.*`).
  public static let defaultPatterns = ["*.part", "*.filepart", "*.crdownload", "*.tmp", "~$*", ".*"]

  /// Patterns that apply whatever the configuration says.
  public static let builtInPatterns = [".folio*"]

  /// The configured patterns (without the built-in ones).
  public var patterns: [String]

  /// Rules from `patterns` plus the built-in `.folio*`.
  public init(patterns: [String] = IgnoreRules.defaultPatterns) {
    self.patterns = patterns
  }

  /// Whether the entry `name` at `relativePath` (relative to the inbox, `name` being its last component)
  /// is ignored.
  public func isIgnored(name: String, relativePath: String) -> Bool {
    for pattern in Self.builtInPatterns + patterns {
      if pattern.contains("/") {
        if Self.matches(pattern, relativePath, pathname: true) { return true }
      } else if Self.matches(pattern, name, pathname: false) {
        return true
      }
    }
    return false
  }

  /// Whether `relativePath` or any folder on the way to it is ignored.
  public func isIgnored(relativePath: String) -> Bool {
    let parts = PathName.components(relativePath)
    var prefix = ""
    for part in parts {
      prefix = prefix.isEmpty ? part : prefix + "/" + part
      if isIgnored(name: part, relativePath: prefix) { return true }
    }
    return false
  }

  /// GNU `FNM_CASEFOLD` (1 << 4); Glibc does not export the macro to Swift.
  private static let caseFold: Int32 = 1 << 4

  private static func matches(_ pattern: String, _ candidate: String, pathname: Bool) -> Bool {
    #if canImport(Glibc)
      let flags = caseFold | (pathname ? FNM_PATHNAME : 0)
    #else
      let flags = (pathname ? FNM_PATHNAME : 0)
    #endif
    return fnmatch(pattern, candidate, flags) == 0
  }
}
