#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import FolioBase
import FolioInbox
import FolioStore
import Foundation
import Logging
import ServiceLifecycle

/// Files the inbox found while the queue was full (`max_queued_jobs`): they stay untouched in the inbox, held in
/// the watcher's ledger so they are not reported again, and are taken once the queue drains.
final class DeferredIntake: @unchecked Sendable {
  private let lock = NSLock()
  private var candidates: [String: InboxCandidate] = [:]
  private var order: [String] = []

  /// Whether intake is holding files back.
  var isPaused: Bool { lock.withLock { !candidates.isEmpty } }
  /// How many files wait.
  var count: Int { lock.withLock { candidates.count } }

  /// Holds a file back; returns false if it was already held.
  @discardableResult
  func add(_ candidate: InboxCandidate) -> Bool {
    lock.withLock {
      guard candidates[candidate.path] == nil else { return false }
      candidates[candidate.path] = candidate
      order.append(candidate.path)
      return true
    }
  }

  /// Every held file, oldest first, and forgets them (the caller takes or holds each again).
  func takeAll() -> [InboxCandidate] {
    lock.withLock {
      let all = order.compactMap { candidates[$0] }
      candidates = [:]
      order = []
      return all
    }
  }
}

/// Keeps the daemon's `daemon_instance` row fresh (heartbeat, model, memory, state) and unloads the model after
/// `keep_alive` without work. Stops last at shutdown and removes the row.
struct ResidencyService: Service {
  let daemon: Daemon

  func run() async throws {
    let daemon = self.daemon
    let loop = Task {
      while !Task.isCancelled {
        await daemon.residencyTick()
        // Woken early by every finished job, so `keep_alive: 0` unloads as soon as the queue drains.
        await daemon.state.wait(timeout: daemon.options.heartbeatInterval)
      }
    }
    await withTaskCancellationOrGracefulShutdownHandler {
      await loop.value
    } onCancelOrGracefulShutdown: {
      loop.cancel()
    }
    do {
      try await daemon.store.removeDaemonInstance(id: daemon.instanceID)
    } catch {
      daemon.logger.warning("cannot remove the daemon's status row", metadata: ["error": "\(error)"])
    }
  }
}

extension Daemon {
  /// One heartbeat: unload the model if it has been idle for `keep_alive` with nothing waiting, then record what
  /// this daemon has loaded, its memory and its state.
  func residencyTick() async {
    let now = options.now()
    if !options.once, let keepAlive = configuration.keepAlive, model.isLoaded, state.activeJobs == 0,
      let open = try? await store.hasOpenWork(), open.claimable == 0
    {
      let before = ProcessMemory.residentMiB()
      let idle = model.idleDuration(at: now)
      if model.unloadIfIdle(keepAlive: keepAlive, at: now) {
        let after = ProcessMemory.residentMiB()
        logger.notice(
          "model unloaded after keep_alive without work; the next job loads it again",
          metadata: [
            "model": "\(model.modelID)", "idle_s": "\(Int(idle.seconds))", "keep_alive_s": "\(Int(keepAlive.seconds))",
            "rss_mib_before": "\(before.map { String(format: "%.0f", $0) } ?? "?")",
            "rss_mib_after": "\(after.map { String(format: "%.0f", $0) } ?? "?")",
          ])
      }
    }
    do {
      try await store.recordDaemonInstance(instanceRow())
    } catch {
      logger.warning("cannot record the daemon's heartbeat", metadata: ["error": "\(error)"])
    }
  }

  /// This daemon as `folio status` shows it.
  func instanceRow() async throws -> DaemonInstance {
    let state: DaemonInstance.State =
      !model.isLoaded ? .unloaded : (self.state.activeJobs > 0 || model.requestsInFlight > 0 ? .busy : .idle)
    return DaemonInstance(
      instanceID: instanceID, pid: getpid(), host: ProcessInfo.processInfo.hostName, startedAt: startedAt,
      heartbeatAt: options.now(), modelID: model.modelID, modelPath: model.modelPath, modelOrigin: model.modelOrigin,
      rssMiB: ProcessMemory.residentMiB(), state: state, modelLoadedAt: model.lastLoadedAt,
      keepAliveSeconds: configuration.keepAlive.map(\.seconds), queuedJobs: try await store.queuedJobCount(),
      maxQueuedJobs: configuration.maxQueuedJobs, isIntakePaused: deferred.isPaused)
  }
}
