import FolioBase
import Foundation
import Synchronization
import Testing

@testable import FolioStore

/// A clock tests move by hand; the store reads it through its injected `now`.
final class TestClock: Sendable {
  private let current: Mutex<Date>
  init(_ start: Date = Date(timeIntervalSince1970: 1_715_306_400)) { current = Mutex(start) }  // 2024-05-10 02:00 UTC
  var now: Date { current.withLock { $0 } }
  func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
  var closure: @Sendable () -> Date { { [self] in self.now } }
}

/// A fresh directory under the system temporary directory.
func temporaryDirectory() throws -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent("folio-store-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

/// A fake but well-formed SHA-256 for document `n`.
func sha(_ n: Int) -> String {
  let hex = String(n, radix: 16)
  return String(repeating: "0", count: 64 - hex.count) + hex
}

func newDocument(_ n: Int, set: String = "default", kind: Document.Kind = .text) -> NewDocument {
  NewDocument(
    sha256: sha(n), originalPath: "/inbox/\(set)/doc\(n).txt", relativePath: "\(set)/doc\(n).txt", sizeBytes: 100,
    kind: kind, setName: set)
}

/// Records a document and queues one summarize step for it.
@discardableResult
func documentWithJob(_ store: Store, _ n: Int, set: String = "default") async throws -> (Document, Job) {
  let doc = try await store.insertDocument(newDocument(n, set: set), policy: .reject).document
  let jobs = try await store.enqueue(
    documentID: doc.id!, pipelineName: "documents", pipelineVersion: 1,
    steps: [JobPlan(stepID: "summary", task: "summarize")], trigger: .inbox)
  return (doc, jobs[0])
}

func output(_ text: String, model: String = "qwen3.5-0.8b") -> JobOutput {
  JobOutput(
    text: text, modelID: model, parameters: ["temperature": 0.3, "max_tokens": 512, "thinking": false],
    promptTokens: 100, completionTokens: 20, promptDuration: .milliseconds(300), generationDuration: .seconds(2),
    totalDuration: .milliseconds(2400))
}

/// Expects `body` to throw a ``FolioError`` with `code`.
func expectError<T>(
  _ code: FolioError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T
) async {
  do {
    _ = try await body()
    Issue.record("expected a \(code) error, nothing was thrown", sourceLocation: sourceLocation)
  } catch let error as FolioError {
    #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
  } catch {
    Issue.record("expected a \(code) error, got \(error)", sourceLocation: sourceLocation)
  }
}
