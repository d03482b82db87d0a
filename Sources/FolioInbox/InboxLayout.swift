#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import FolioBase

/// Where the inbox and everything Folio writes next to it live.
///
/// `validate()` refuses layouts in which Folio's output would feed back into the inbox (inbox-lessons,
/// "Paths and safety"); `checkPermissions()` reports every folder the running user cannot use, with its mode,
/// owner and a fix (lessons row 8, for `folio doctor` and daemon startup).
public struct InboxLayout: Sendable, Hashable {
  /// The watched folder users drop files into.
  public var inbox: String
  /// Where claimed files wait while they are processed. Must be on the inbox's file system (claiming is a
  /// `rename`); inside the inbox it must sit in an ignored folder (the default `<inbox>/.folio-work`).
  public var work: String
  /// Where originals go after success when the disposition is `move`.
  public var processed: String
  /// Where originals go after failure when the disposition is `move`, each with a `<name>.error.json` sidecar.
  public var failed: String
  /// Folio's managed store for the `keep` disposition: `store/<first two hex digits of the SHA-256>/<sha256>/<name>`.
  public var store: String
  /// The SQLite database file, if the caller wants it checked against the inbox.
  public var database: String?
  /// The `pipelines/` folder, if the caller wants it checked against the inbox.
  public var pipelines: String?

  /// A layout from explicit locations; `work` defaults to `<inbox>/.folio-work`.
  public init(
    inbox: String, work: String? = nil, processed: String, failed: String, store: String,
    database: String? = nil, pipelines: String? = nil
  ) {
    self.inbox = inbox
    self.work = work ?? PathName.join(inbox, ".folio-work")
    self.processed = processed
    self.failed = failed
    self.store = store
    self.database = database
    self.pipelines = pipelines
  }

  /// The conventional layout under one folder: `inbox/` (with `inbox/.folio-work/`), `processed/`, `failed/`,
  /// `store/`, `folio.db` and `pipelines/`.
  public static func conventional(root: String) -> InboxLayout {
    InboxLayout(
      inbox: PathName.join(root, "inbox"), processed: PathName.join(root, "processed"),
      failed: PathName.join(root, "failed"), store: PathName.join(root, "store"),
      database: PathName.join(root, "folio.db"), pipelines: PathName.join(root, "pipelines"))
  }

  /// Refuses a layout in which Folio's output or state would land in the inbox (and be taken as new documents),
  /// the inbox would sit inside an output folder, or the work area could not be reached by an atomic rename.
  ///
  /// Paths are compared after resolving `.`/`..` and symbolic links in their existing parts, so two spellings of
  /// one folder are caught.
  /// - Throws: `FolioError` `.layoutOverlap` listing every problem, each with a fix.
  public func validate(ignoreRules: IgnoreRules = IgnoreRules()) throws(FolioError) {
    let inboxPath = PathName.canonical(inbox)
    let workPath = PathName.canonical(work)
    var problems: [String] = []
    let q = POSIXFailure.quoted

    if inboxPath == "/" {
      problems.append("The inbox is the root folder; choose a dedicated folder such as ~/Folio/inbox.")
    }
    let outputs = [("processed", processed), ("failed", failed), ("store", store)]
    for (role, raw) in outputs {
      let path = PathName.canonical(raw)
      if PathName.isSameOrInside(path, inboxPath) {
        problems.append(
          "The \(role) folder \(q(raw)) is inside the inbox \(q(inbox)): Folio would take its own output as new "
            + "documents. Fix: move it next to the inbox, e.g. \(q(PathName.join(PathName.parent(of: inboxPath), role)))."
        )
      } else if PathName.isSameOrInside(inboxPath, path) {
        problems.append(
          "The inbox \(q(inbox)) is inside the \(role) folder \(q(raw)): files moved there would reappear in the "
            + "inbox. Fix: give the inbox and the \(role) folder separate parents.")
      }
      if PathName.isSameOrInside(path, workPath) || PathName.isSameOrInside(workPath, path) {
        problems.append(
          "The work area \(q(work)) and the \(role) folder \(q(raw)) overlap: claimed files and finished files "
            + "would mix. Fix: use separate folders.")
      }
    }

    if let relative = PathName.relative(workPath, to: inboxPath) {
      if !ignoreRules.isIgnored(relativePath: relative) {
        problems.append(
          "The work area \(q(work)) is inside the inbox but not in an ignored folder: claimed files would be "
            + "taken again. Fix: name it like `.folio-work` (ignored), or put it outside the inbox.")
      }
    } else if PathName.isSameOrInside(inboxPath, workPath) {
      problems.append(
        "The work area \(q(work)) is the inbox or contains it. Fix: use `<inbox>/.folio-work` (the default).")
    }
    if let inboxDevice = Self.deviceOfNearestExisting(inboxPath),
      let workDevice = Self.deviceOfNearestExisting(workPath), inboxDevice != workDevice
    {
      problems.append(
        "The work area \(q(work)) is on another file system than the inbox \(q(inbox)): claiming must be an "
          + "atomic rename. Fix: put the work area on the inbox's file system (the default `<inbox>/.folio-work`).")
    }

    if let database {
      let path = PathName.canonical(database)
      if PathName.isSameOrInside(path, inboxPath) {
        problems.append(
          "The database \(q(database)) is inside the inbox \(q(inbox)): its journal and WAL files would be taken as "
            + "documents. Fix: keep the database next to the inbox, e.g. "
            + "\(q(PathName.join(PathName.parent(of: inboxPath), "folio.db"))).")
      } else if PathName.isSameOrInside(path, workPath) {
        problems.append("The database \(q(database)) is inside the work area \(q(work)). Fix: move it out.")
      }
    }
    if let pipelines {
      let path = PathName.canonical(pipelines)
      if PathName.isSameOrInside(path, inboxPath) {
        problems.append(
          "The pipelines folder \(q(pipelines)) is inside the inbox \(q(inbox)): its YAML files would be taken as "
            + "documents. Fix: move it next to the inbox.")
      } else if PathName.isSameOrInside(inboxPath, path) {
        problems.append(
          "The inbox \(q(inbox)) is inside the pipelines folder \(q(pipelines)). Fix: give them separate parents.")
      }
    }

    if !problems.isEmpty {
      throw FolioError(
        .layoutOverlap,
        "Folio will not start with this folder layout:\n- " + problems.joined(separator: "\n- "))
    }
  }

  /// Creates the inbox, work, processed, failed and store folders that do not exist yet (mode 0755, work 0700).
  ///
  /// - Throws: `FolioError` (`.permissionDenied` with mode, owner and uid) when a folder cannot be created.
  public func createMissingFolders() throws(FolioError) {
    for path in [inbox, processed, failed, store] { try Directory.create(path) }
    try Directory.create(work, mode: 0o700)
  }

  /// Every location the running user cannot use as Folio needs it; an empty array means all is well.
  ///
  /// Folders must exist (or be creatable in their nearest existing parent) and be readable, writable and
  /// searchable; the database and its folder must be writable; `pipelines/` must be readable.
  public func checkPermissions() -> [PermissionFinding] {
    var findings: [PermissionFinding] = []
    let rwx = R_OK | W_OK | X_OK
    for (role, path) in [
      ("inbox", inbox), ("work", work), ("processed", processed), ("failed", failed), ("store", store),
    ] {
      if let finding = Self.check(role: role, path: path, access: rwx, expectDirectory: true) {
        findings.append(finding)
      }
    }
    if let database {
      if let finding = Self.check(role: "database", path: database, access: R_OK | W_OK, expectDirectory: false) {
        findings.append(finding)
      }
      let folder = PathName.parent(of: PathName.standardized(database))
      if let finding = Self.check(role: "database folder", path: folder, access: rwx, expectDirectory: true) {
        findings.append(finding)
      }
    }
    if let pipelines,
      let finding = Self.check(role: "pipelines", path: pipelines, access: R_OK | X_OK, expectDirectory: true)
    {
      findings.append(finding)
    }
    return findings
  }

  static func deviceOfNearestExisting(_ path: String) -> UInt64? {
    var probe = path
    while true {
      var st = stat()
      if stat(probe, &st) == 0 { return UInt64(st.st_dev) }
      let parent = PathName.parent(of: probe)
      if parent == probe { return nil }
      probe = parent
    }
  }

  static func check(role: String, path: String, access mode: Int32, expectDirectory: Bool) -> PermissionFinding? {
    let uid = getuid()
    let shell = POSIXFailure.shellQuoted(path)
    var st = stat()
    if stat(path, &st) != 0 {
      // Missing: fine if Folio can create it in the nearest existing parent.
      var parent = PathName.parent(of: PathName.standardized(path))
      while stat(parent, &st) != 0 {
        let next = PathName.parent(of: parent)
        if next == parent { break }
        parent = next
      }
      if access(parent, W_OK | X_OK) == 0 { return nil }
      return PermissionFinding(
        role: role, path: path, problem: "does not exist and its parent \(parent) is not writable", mode: UInt32(st.st_mode) & 0o7777,
        owner: UInt32(st.st_uid), runningUID: uid,
        fix: "create it as its owner: `mkdir -p \(shell) && chown \(uid) \(shell)`")
    }
    let isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
    if expectDirectory != isDirectory {
      return PermissionFinding(
        role: role, path: path, problem: expectDirectory ? "is not a folder" : "is a folder, not a file",
        mode: UInt32(st.st_mode) & 0o7777, owner: UInt32(st.st_uid), runningUID: uid,
        fix: "point the \(role) setting at a \(expectDirectory ? "folder" : "file path")")
    }
    if access(path, mode) == 0 { return nil }
    let needed =
      (mode & R_OK != 0 ? "r" : "") + (mode & W_OK != 0 ? "w" : "") + (mode & X_OK != 0 ? (isDirectory ? "X" : "") : "")
    let fix =
      UInt32(st.st_uid) == uid
      ? "`chmod u+\(needed) \(shell)`"
      : "`sudo chown -R \(uid) \(shell)` (or run Folio as \(POSIXFailure.userDescription(UInt32(st.st_uid))))"
    return PermissionFinding(
      role: role, path: path, problem: "is not \(needed == "rw" ? "readable and writable" : "readable, writable and searchable") by Folio",
      mode: UInt32(st.st_mode) & 0o7777, owner: UInt32(st.st_uid), runningUID: uid, fix: fix)
  }
}

/// A location the running user cannot use, with what `folio doctor` prints about it.
public struct PermissionFinding: Sendable, Hashable, CustomStringConvertible {
  /// Which location: `inbox`, `work`, `processed`, `failed`, `store`, `database`, `database folder`, `pipelines`.
  public var role: String
  /// The path as configured.
  public var path: String
  /// What is wrong, in words.
  public var problem: String
  /// The permission bits of the path (or of its nearest existing parent when it is missing).
  public var mode: UInt32
  /// The owner's uid.
  public var owner: UInt32
  /// The uid Folio runs as.
  public var runningUID: UInt32
  /// A command or change that fixes it.
  public var fix: String

  /// One line: role, path, problem, mode, owner, running uid and the fix.
  public var description: String {
    "\(role) \(POSIXFailure.quoted(path)) \(problem) (mode 0\(String(mode, radix: 8)), owner "
      + "\(POSIXFailure.userDescription(owner)), Folio runs as \(POSIXFailure.userDescription(runningUID))). Fix: \(fix)"
  }

  /// The finding as a `FolioError` with code `.permissionDenied`.
  public var error: FolioError { FolioError(.permissionDenied, description) }
}
