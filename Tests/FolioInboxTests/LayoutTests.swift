import FolioBase
import Foundation
import Testing

@testable import FolioInbox

#if canImport(Glibc)
  import Glibc
#endif

@Suite("Layout and permissions")
struct LayoutTests {
  func overlapMessage(_ layout: InboxLayout) -> String? {
    do {
      try layout.validate()
      return nil
    } catch {
      #expect(error.code == .layoutOverlap)
      return error.message
    }
  }

  @Test("The conventional layout is valid")
  func conventional() throws {
    let dir = try TempDir()
    let layout = try makeLayout(dir)
    #expect(overlapMessage(layout) == nil)
    #expect(layout.work == layout.inbox + "/.folio-work")
  }

  @Test("Output folders inside the inbox, or the inbox inside one, are refused with a fix")
  func outputsInsideInbox() throws {
    let dir = try TempDir()
    var layout = InboxLayout.conventional(root: dir.path)
    layout.processed = layout.inbox + "/done"
    let message = try #require(overlapMessage(layout))
    #expect(message.contains("processed") && message.contains("inside the inbox") && message.contains("Fix"))

    var nested = InboxLayout.conventional(root: dir.path)
    nested.inbox = nested.store + "/incoming"
    nested.work = nested.inbox + "/.folio-work"
    #expect(overlapMessage(nested)?.contains("inside the store folder") == true)

    var same = InboxLayout.conventional(root: dir.path)
    same.failed = same.inbox
    #expect(overlapMessage(same) != nil)
  }

  @Test("The database and pipelines must not sit in the inbox")
  func databaseAndPipelines() throws {
    let dir = try TempDir()
    var layout = InboxLayout.conventional(root: dir.path)
    layout.database = layout.inbox + "/folio.db"
    layout.pipelines = layout.inbox + "/pipelines"
    let message = try #require(overlapMessage(layout))
    #expect(message.contains("database") && message.contains("WAL"))
    #expect(message.contains("pipelines folder"))
  }

  @Test("A work area inside the inbox must be an ignored folder; one outside is fine on the same file system")
  func workArea() throws {
    let dir = try TempDir()
    var visible = InboxLayout.conventional(root: dir.path)
    visible.work = visible.inbox + "/work"
    #expect(overlapMessage(visible)?.contains("not in an ignored folder") == true)

    var outside = InboxLayout.conventional(root: dir.path)
    outside.work = dir.sub("work")
    #expect(overlapMessage(outside) == nil)

    var isInbox = InboxLayout.conventional(root: dir.path)
    isInbox.work = isInbox.inbox
    #expect(overlapMessage(isInbox) != nil)
  }

  @Test("Another spelling of the inbox (.., a symlink) is caught")
  func spellings() throws {
    let dir = try TempDir()
    var layout = try makeLayout(dir)
    layout.processed = dir.path + "/store/../inbox/out"
    #expect(overlapMessage(layout) != nil)
    #expect(symlink(layout.inbox, dir.sub("alias")) == 0)
    layout.processed = dir.sub("alias/out")
    #expect(overlapMessage(layout)?.contains("inside the inbox") == true)
  }

  @Test("Permission checks report path, mode, owner, uid and a fix")
  func permissions() throws {
    let dir = try TempDir()
    var layout = try makeLayout(dir)
    #expect(layout.checkPermissions().isEmpty)
    // A file where a folder belongs is always a finding, whoever runs the test.
    try write(dir.sub("not-a-folder"), "x")
    layout.failed = dir.sub("not-a-folder")
    let findings = layout.checkPermissions()
    #expect(findings.count == 1)
    let finding = try #require(findings.first)
    #expect(finding.role == "failed")
    #expect(finding.runningUID == getuid())
    #expect(finding.description.contains("mode 0"))
    #expect(finding.description.contains("owner uid"))
    #expect(finding.description.contains("Folio runs as uid"))
    #expect(finding.error.code == .permissionDenied)
    // A missing folder that can be created is fine.
    layout.failed = dir.sub("later/failed")
    #expect(layout.checkPermissions().isEmpty)
  }
}

@Suite("Ignore rules")
struct IgnoreRulesTests {
  @Test(
    "Temporary, hidden and Folio's own names are ignored",
    arguments: [
      "a.part", "b.filepart", "c.crdownload", "d.tmp", "D.TMP", "~$report.docx", ".hidden", ".folio-work",
      ".folio-anything",
    ])
  func ignored(name: String) {
    #expect(IgnoreRules().isIgnored(name: name, relativePath: name))
  }

  @Test("Ordinary names are not", arguments: ["a.txt", "part.txt", "tmp.md", "photo.jpeg", "a~b.txt"])
  func notIgnored(name: String) {
    #expect(!IgnoreRules().isIgnored(name: name, relativePath: name))
  }

  @Test("An ignored folder hides its contents; globs are configurable and .folio* always applies")
  func configurable() {
    let rules = IgnoreRules(patterns: ["*.bak", "drafts/*"])
    #expect(rules.isIgnored(relativePath: "x.bak"))
    #expect(rules.isIgnored(relativePath: "drafts/a.txt"))
    #expect(!rules.isIgnored(relativePath: "final/a.txt"))
    #expect(!rules.isIgnored(relativePath: ".hidden"))  // dotfiles no longer in the list
    #expect(rules.isIgnored(relativePath: ".folio-work/x/a.txt"))
    #expect(IgnoreRules().isIgnored(relativePath: "set/.git/config"))
  }
}
