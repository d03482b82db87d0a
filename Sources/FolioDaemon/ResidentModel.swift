#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import FolioBase
import FolioStore
import Foundation

/// A loaded model as the daemon holds it: the runner, and what `folio status` says about it.
public struct LoadedModel: Sendable {
  /// The runner over the loaded weights.
  public var runner: any StepRunner
  /// The checkpoint folder, when the model is a local folder.
  public var path: String?
  /// Where the model came from (``ModelChoice/Origin`` raw value, or `injected` in tests).
  public var origin: String?
  /// Counts tokens as the model's tokenizer does without holding the weights (the tokenizer stays resident while
  /// the model is unloaded, so intake can still segment text without loading the model).
  public var countTokens: @Sendable (String) -> Int

  /// Describes a loaded model.
  public init(
    runner: any StepRunner, path: String? = nil, origin: String? = nil,
    countTokens: (@Sendable (String) -> Int)? = nil
  ) {
    self.runner = runner
    self.path = path
    self.origin = origin
    self.countTokens = countTokens ?? { [runner] in runner.countTokens($0) }
  }
}

/// The daemon's model door with residency: the model is loaded once and kept while there is work; after
/// `keep_alive` without work the daemon calls ``unloadIfIdle(keepAlive:at:)`` and the weights are released; the next
/// request loads them again (inbox-lessons, "Model residency").
public final class ResidentModel: StepRunner, @unchecked Sendable {
  private let lock = NSLock()
  /// Serialises loads so two workers never load the weights twice.
  private let loadLock = NSLock()
  private let loader: @Sendable () throws -> LoadedModel
  private let now: @Sendable () -> Date
  private var current: (any StepRunner)?
  private var inFlight = 0
  private var lastUsed: Date
  private var loadedAt: Date?
  private var loads = 0
  private var onReload: (@Sendable (Duration) -> Void)?
  private let tokenCounter: @Sendable (String) -> Int

  /// The model id recorded with results (the same across unloads and reloads).
  public let modelID: String
  /// The checkpoint folder, if any.
  public let modelPath: String?
  /// Where the model came from.
  public let modelOrigin: String?

  /// Wraps a model loaded at startup; `loader` loads it again after an unload.
  public init(
    initial: LoadedModel, loader: @escaping @Sendable () throws -> LoadedModel,
    now: @escaping @Sendable () -> Date = { Date() }
  ) {
    self.loader = loader
    self.now = now
    self.current = initial.runner
    self.modelID = initial.runner.modelID
    self.modelPath = initial.path
    self.modelOrigin = initial.origin
    self.tokenCounter = initial.countTokens
    let start = now()
    self.lastUsed = start
    self.loadedAt = start
    self.loads = 1
  }

  /// Whether the weights are in memory now.
  public var isLoaded: Bool { lock.withLock { current != nil } }
  /// How many times the model was loaded (1 at startup, +1 per reload).
  public var loadCount: Int { lock.withLock { loads } }
  /// When the model was last loaded (nil while unloaded).
  public var lastLoadedAt: Date? { lock.withLock { loadedAt } }
  /// Requests running now.
  public var requestsInFlight: Int { lock.withLock { inFlight } }

  /// Called after each reload with how long it took (the daemon logs it).
  func setReloadHandler(_ handler: @escaping @Sendable (Duration) -> Void) {
    lock.withLock { onReload = handler }
  }

  public func countTokens(_ text: String) -> Int { tokenCounter(text) }

  public func run(_ request: StepRequest) async throws -> StepOutput {
    let runner = try acquire()
    defer { release() }
    return try await runner.run(request)
  }

  /// The loaded runner (loading it if it was unloaded), counted as in flight until ``release()``.
  func acquire() throws -> any StepRunner {
    if let runner = lock.withLock({ () -> (any StepRunner)? in
      if let current { inFlight += 1 }
      return current
    }) {
      return runner
    }
    return try loadLock.withLock {
      if let runner = lock.withLock({ () -> (any StepRunner)? in
        if let current { inFlight += 1 }
        return current
      }) {
        return runner
      }
      let started = ContinuousClock.now
      let loaded = try loader()
      let took = started.duration(to: .now)
      let handler = lock.withLock { () -> (@Sendable (Duration) -> Void)? in
        current = loaded.runner
        inFlight += 1
        loads += 1
        loadedAt = now()
        return onReload
      }
      handler?(took)
      return loaded.runner
    }
  }

  func release() {
    let time = now()
    lock.withLock {
      inFlight -= 1
      lastUsed = time
    }
  }

  /// How long the model has had no request, at `date` (zero while a request runs).
  public func idleDuration(at date: Date) -> Duration {
    lock.withLock {
      inFlight > 0 ? .zero : .milliseconds(Int64(max(0, date.timeIntervalSince(lastUsed)) * 1000))
    }
  }

  /// Marks the model as used now (a job started), so a job that runs long between requests is never idle.
  func touch() {
    let time = now()
    lock.withLock { lastUsed = time }
  }

  /// Drops the weights if no request runs and the model has been idle for at least `keepAlive`; returns whether
  /// it unloaded. The caller checks that no job is waiting.
  @discardableResult
  public func unloadIfIdle(keepAlive: Duration, at date: Date) -> Bool {
    let keepAliveSeconds = Double(keepAlive.components.seconds) + Double(keepAlive.components.attoseconds) / 1e18
    let dropped: Bool = lock.withLock {
      guard current != nil, inFlight == 0, date.timeIntervalSince(lastUsed) >= keepAliveSeconds else { return false }
      // The daemon's last reference to the weights goes here.
      current = nil
      loadedAt = nil
      return true
    }
    guard dropped else { return false }
    // Give the freed pages back to the system (glibc keeps freed heap for reuse otherwise).
    #if os(Linux)
      _ = folioMallocTrim(0)
    #endif
    return true
  }
}

/// The process's memory as the kernel counts it.
public enum ProcessMemory {
  /// Resident set size (VmRSS from /proc/self/status) in MiB, or nil where /proc is not available.
  public static func residentMiB() -> Double? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
      let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
      if fields.count >= 2, let kib = Double(fields[1]) { return kib / 1024 }
    }
    return nil
  }
}

#if os(Linux)
  /// glibc's `malloc_trim` (not exported by Swift's Glibc module): returns freed heap pages to the kernel, so the
  /// resident memory `folio status` shows drops after an unload.
  @_silgen_name("malloc_trim")
  private func folioMallocTrim(_ pad: Int) -> Int32
#endif
