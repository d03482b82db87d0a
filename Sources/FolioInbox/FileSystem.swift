#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import FolioBase

/// What `lstat` says about one path: enough to tell whether a file changed and whether it is safe to take.
///
/// Symbolic links are never followed: a link is reported as `.symlink`, whatever it points to.
public struct FileSnapshot: Sendable, Hashable, CustomStringConvertible {
  /// The kind of directory entry, as `lstat` reports it.
  public enum EntryKind: Sendable, Hashable {
    /// A regular file.
    case regular
    /// A directory.
    case directory
    /// A symbolic link (never followed).
    case symlink
    /// A FIFO, socket, block or character device.
    case other
  }

  /// The kind of entry.
  public var kind: EntryKind
  /// Size in bytes.
  public var size: Int64
  /// Modification time in nanoseconds since the epoch.
  public var modificationTimeNanoseconds: Int64
  /// Device id; together with `inode` it identifies the file.
  public var device: UInt64
  /// Inode number.
  public var inode: UInt64
  /// Permission bits (`st_mode & 0o7777`).
  public var mode: UInt32
  /// Owner's user id.
  public var owner: UInt32

  /// A snapshot from its parts (for tests and for records read back from a database).
  public init(
    kind: EntryKind, size: Int64, modificationTimeNanoseconds: Int64, device: UInt64, inode: UInt64, mode: UInt32,
    owner: UInt32
  ) {
    self.kind = kind
    self.size = size
    self.modificationTimeNanoseconds = modificationTimeNanoseconds
    self.device = device
    self.inode = inode
    self.mode = mode
    self.owner = owner
  }

  /// Reads the snapshot of `path` without following a final symbolic link; `nil` when nothing is there.
  ///
  /// - Throws: `FolioError` with `.permissionDenied` when a parent folder cannot be searched.
  public static func read(_ path: String) throws(FolioError) -> FileSnapshot? {
    var st = stat()
    if lstat(path, &st) != 0 {
      let code = errno
      if code == ENOENT || code == ENOTDIR { return nil }
      throw POSIXFailure.error(code, operation: "lstat", path: path)
    }
    return FileSnapshot(st)
  }

  init(_ st: stat) {
    let format = st.st_mode & S_IFMT
    switch format {
    case S_IFREG: kind = .regular
    case S_IFDIR: kind = .directory
    case S_IFLNK: kind = .symlink
    default: kind = .other
    }
    size = Int64(st.st_size)
    modificationTimeNanoseconds = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    device = UInt64(st.st_dev)
    inode = UInt64(st.st_ino)
    mode = UInt32(st.st_mode) & 0o7777
    owner = UInt32(st.st_uid)
  }

  /// Whether `other` has the same size and modification time: the stability test of lessons row 1.
  public func hasSameContentSignature(as other: FileSnapshot) -> Bool {
    kind == other.kind && size == other.size && modificationTimeNanoseconds == other.modificationTimeNanoseconds
  }

  /// Whether `other` is the same file (device and inode) with the same size and modification time.
  public func isUnchanged(comparedTo other: FileSnapshot) -> Bool {
    hasSameContentSignature(as: other) && device == other.device && inode == other.inode
  }

  public var description: String {
    "\(kind) size=\(size) mtime_ns=\(modificationTimeNanoseconds) mode=\(String(mode, radix: 8)) uid=\(owner)"
  }
}

/// Turns `errno` values into `FolioError`s with a message that names the path and says what to do.
enum POSIXFailure {
  static func message(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
  }

  static func error(_ code: Int32, operation: String, path: String, fix: String? = nil) -> FolioError {
    let reason = message(code)
    switch code {
    case EACCES, EPERM:
      return FolioError(
        .permissionDenied,
        "\(operation) \(quoted(path)) was refused: \(reason). \(permissionHint(path))" + (fix.map { " \($0)" } ?? ""))
    case ENOENT:
      return FolioError(.fileVanished, "\(quoted(path)) no longer exists (\(operation): \(reason)).")
    case ELOOP:
      return FolioError(.symlinkRefused, "\(quoted(path)) is or passes through a symbolic link; Folio does not follow links.")
    default:
      return FolioError(
        .moveFailed, "\(operation) \(quoted(path)) failed: \(reason) (errno \(code))." + (fix.map { " \($0)" } ?? ""))
    }
  }

  /// "mode 0755, owner uid 0 (root); Folio runs as uid 1000 (folio)" for the path or its nearest existing parent.
  static func permissionHint(_ path: String) -> String {
    var probe = path
    while true {
      var st = stat()
      if lstat(probe, &st) == 0 {
        let mode = String(UInt32(st.st_mode) & 0o7777, radix: 8)
        return "\(quoted(probe)) has mode 0\(mode), owner \(userDescription(UInt32(st.st_uid))); "
          + "Folio runs as \(userDescription(getuid())). Fix: `chown \(getuid()) \(shellQuoted(probe))` or "
          + "`chmod u+rwX \(shellQuoted(probe))`, or run Folio as the owner."
      }
      let parent = PathName.parent(of: probe)
      if parent == probe { return "Folio runs as \(userDescription(getuid()))." }
      probe = parent
    }
  }

  static func userDescription(_ uid: UInt32) -> String {
    if let entry = getpwuid(uid), let name = entry.pointee.pw_name {
      return "uid \(uid) (\(String(cString: name)))"
    }
    return "uid \(uid)"
  }

  static func quoted(_ path: String) -> String {
    // Names may hold newlines; show them escaped so a log line stays one line.
    var out = "\""
    for scalar in path.unicodeScalars {
      switch scalar {
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out + "\""
  }

  static func shellQuoted(_ path: String) -> String {
    "'" + path.replacingAll("'", with: "'\\''") + "'"
  }
}

/// Pure string operations on POSIX paths. Paths are kept as `String`s exactly as given (spaces, Unicode and
/// newlines included); nothing here touches the disk except `canonical`.
enum PathName {
  /// Joins `base` and a relative `component` with exactly one slash.
  static func join(_ base: String, _ component: String) -> String {
    if base.hasSuffix("/") { return base + component }
    return base + "/" + component
  }

  /// The components of an absolute or relative path, without empty and `.` components.
  static func components(_ path: String) -> [String] {
    path.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
  }

  /// Removes `.`, empty components and resolves `..` lexically; relative paths are made absolute against the
  /// current directory.
  static func standardized(_ path: String) -> String {
    var full = path
    if !full.hasPrefix("/") {
      var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
      if getcwd(&buffer, buffer.count) != nil {
        let bytes = buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
        full = join(String(decoding: bytes, as: UTF8.self), path)
      }
    }
    var stack: [String] = []
    for part in components(full) {
      if part == ".." {
        if !stack.isEmpty { stack.removeLast() }
      } else {
        stack.append(part)
      }
    }
    return "/" + stack.joined(separator: "/")
  }

  /// The standardized path with symbolic links resolved in its longest existing prefix (`realpath`), so that two
  /// spellings of the same folder compare equal even before the folder exists.
  static func canonical(_ path: String) -> String {
    let standard = standardized(path)
    var existing = standard
    var rest: [String] = []
    while true {
      if let resolved = realpath(existing, nil) {
        defer { free(resolved) }
        var result = String(cString: resolved)
        for part in rest.reversed() { result = join(result, part) }
        return result
      }
      let parent = self.parent(of: existing)
      if parent == existing { return standard }
      rest.append(lastComponent(existing))
      existing = parent
    }
  }

  static func parent(of path: String) -> String {
    var parts = components(path)
    if parts.isEmpty { return "/" }
    parts.removeLast()
    return (path.hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
  }

  static func lastComponent(_ path: String) -> String {
    components(path).last ?? path
  }

  /// Whether `path` equals `ancestor` or lies below it (both standardized or canonical).
  static func isSameOrInside(_ path: String, _ ancestor: String) -> Bool {
    if path == ancestor { return true }
    let prefix = ancestor.hasSuffix("/") ? ancestor : ancestor + "/"
    return path.hasPrefix(prefix)
  }

  /// `path` relative to `ancestor`, or `nil` if it is not below it.
  static func relative(_ path: String, to ancestor: String) -> String? {
    let prefix = ancestor.hasSuffix("/") ? ancestor : ancestor + "/"
    guard path.hasPrefix(prefix) else { return nil }
    let rest = String(path.dropFirst(prefix.count))
    return rest.isEmpty ? nil : rest
  }

  /// Splits `name` into stem and extension (with the dot): `a.tar.gz` → (`a.tar`, `.gz`); dotfiles have no extension.
  static func splitExtension(_ name: String) -> (stem: String, ext: String) {
    guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return (name, "") }
    return (String(name[..<dot]), String(name[dot...]))
  }
}

enum Directory {
  /// The names in `path`, without `.` and `..`.
  static func list(_ path: String) throws(FolioError) -> [String] {
    guard let dir = opendir(path) else {
      throw POSIXFailure.error(errno, operation: "opendir", path: path)
    }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
      }
      if name == "." || name == ".." { continue }
      names.append(name)
    }
    return names.sorted()
  }

  /// Creates `path` and its missing parents with `mode`.
  static func create(_ path: String, mode: mode_t = 0o755) throws(FolioError) {
    var current = path.hasPrefix("/") ? "" : "."
    for part in PathName.components(path) {
      current += "/" + part
      if mkdir(current, mode) != 0 {
        let code = errno
        if code == EEXIST {
          var st = stat()
          if stat(current, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { continue }
          throw FolioError(.moveFailed, "\(POSIXFailure.quoted(current)) exists and is not a folder.")
        }
        throw POSIXFailure.error(code, operation: "mkdir", path: current)
      }
    }
  }
}

extension String {
  func replacingAll(_ target: String, with replacement: String) -> String {
    split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
  }
}
