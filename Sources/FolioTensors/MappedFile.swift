import FolioBase
import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A read-only memory mapping of a whole file. Weights are read in place: nothing is copied at load,
/// and the kernel pages data in as it is used.
public final class MappedFile: @unchecked Sendable {
  /// The mapped file.
  public let url: URL
  /// First byte of the mapping.
  public let bytes: UnsafeRawPointer
  /// Size of the file in bytes.
  public let count: Int

  /// Maps `url` read-only.
  public init(url: URL) throws {
    self.url = url
    let fd = open(url.path, O_RDONLY)
    guard fd >= 0 else {
      let reason = String(cString: strerror(errno))
      if errno == ENOENT {
        throw FolioError(.fileNotFound, "\(url.path): no such file.")
      }
      throw FolioError(.fileUnreadable, "\(url.path): cannot open (\(reason)); check the file's permissions.")
    }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else {
      throw FolioError(.fileUnreadable, "\(url.path): cannot stat (\(String(cString: strerror(errno)))).")
    }
    let size = Int(info.st_size)
    count = size
    if size == 0 {
      bytes = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 16))
      isMapped = false
      return
    }
    guard let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapping != MAP_FAILED else {
      throw FolioError(.fileUnreadable, "\(url.path): cannot map into memory (\(String(cString: strerror(errno)))).")
    }
    bytes = UnsafeRawPointer(mapping)
    isMapped = true
  }

  private let isMapped: Bool

  /// Tells the kernel that `count` bytes at `start` (inside this mapping) will not be read again, so their pages
  /// can leave memory (e.g. bf16 weights after they were quantized). Only whole pages inside the range are dropped;
  /// reading them later still works (they are paged in from the file again).
  public func discard(_ start: UnsafeRawPointer, count: Int) {
    guard isMapped, count > 0, start >= bytes, start + count <= bytes + self.count else { return }
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let first = (Int(bitPattern: start) + page - 1) / page * page
    let end = (Int(bitPattern: start) + count) / page * page
    guard end > first, let pointer = UnsafeMutableRawPointer(bitPattern: first) else { return }
    madvise(pointer, end - first, MADV_DONTNEED)
  }

  deinit {
    if isMapped {
      munmap(UnsafeMutableRawPointer(mutating: bytes), count)
    } else {
      UnsafeMutableRawPointer(mutating: bytes).deallocate()
    }
  }
}
