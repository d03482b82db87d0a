import CFolioKernels
import Dispatch

/// Splits data-parallel kernel work across a fixed number of threads (`--threads`).
///
/// Work is cut into at most `threadCount` contiguous ranges, so each thread streams its own slice of a weight
/// matrix; one barrier per call. Calls run on shared spinning workers (`folio_parallel_run`), since decode makes
/// hundreds of short calls per token; when those are busy, on Dispatch.
public struct ComputePool: Sendable {
  /// Threads used per parallel call.
  public let threadCount: Int

  /// A pool of `threadCount` threads; `nil` uses every active processor.
  public init(threadCount: Int? = nil) {
    let cores = ProcessInfoCores.active
    self.threadCount = max(1, threadCount ?? cores)
  }

  /// Parts per thread of one parallel call.
  static let partsPerThread = 4

  /// Runs `body` over `0..<count` split into contiguous chunks, each chunk a multiple of `granularity`
  /// (except the last). Small jobs run inline.
  public func parallelFor(
    _ count: Int, granularity: Int = 1, minimumPerThread: Int = 1,
    _ body: (Range<Int>) -> Void
  ) {
    guard count > 0 else { return }
    let units = (count + granularity - 1) / granularity
    let threads = min(threadCount, units, max(1, count / max(minimumPerThread, 1)))
    if threads <= 1 {
      body(0..<count)
      return
    }
    // A few contiguous parts per thread, claimed as threads come free: a thread that starts late or runs slower
    // (another tenant on its core) leaves its later parts to the others instead of holding up the barrier.
    let parts = min(threads * Self.partsPerThread, units)
    withoutActuallyEscaping(body) { body in
      var run: (Int) -> Void = { part in
        let startUnit = units * part / parts
        let endUnit = units * (part + 1) / parts
        let start = startUnit * granularity
        let end = min(count, endUnit * granularity)
        if start < end { body(start..<end) }
      }
      let ran = withUnsafeMutablePointer(to: &run) { pointer in
        folio_parallel_run(
          threadCount, parts,
          { context, part in
            context?.assumingMemoryBound(to: ((Int) -> Void).self).pointee(part)
          }, pointer)
      }
      if ran == 0 {
        // The shared workers are busy (another model or a nested call): let Dispatch spread this run instead.
        let box = UncheckedSendable(run)
        DispatchQueue.concurrentPerform(iterations: parts) { box.value($0) }
      }
    }
  }
}

/// Wraps a value that is safe to share for the duration of one parallel call.
struct UncheckedSendable<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}

enum ProcessInfoCores {
  static var active: Int {
    #if canImport(Glibc)
      return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    #else
      return 4
    #endif
  }
}

#if canImport(Glibc)
  import Glibc
#endif
