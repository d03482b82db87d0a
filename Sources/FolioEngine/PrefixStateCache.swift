import FolioModel
import Foundation

/// Decoder states saved after a prompt's image part, so that the next job on the same image (the caption and the
/// OCR step of one page, say) skips the vision encoder and the image's prefill and continues from the saved state.
///
/// Keys are the exact token prefix plus a fingerprint of each image's pixel values (image placeholders alone are
/// identical for any two images of one size). A few entries are kept, least recently used first out; a hit is
/// bit-for-bit the state a fresh prefill would reach, since continuing from a state equals prefilling in one piece.
public final class PrefixStateCache: @unchecked Sendable {
  struct Entry {
    var tokens: [Int]
    var imageFingerprints: [UInt64]
    var state: DecoderState
  }

  private let lock = NSLock()
  private var entries: [Entry] = []
  /// Entries kept (each holds a copy of the KV cache and recurrent state).
  public let capacity: Int
  /// Lookups that found a usable prefix (for status and tests).
  public private(set) var hits = 0

  public init(capacity: Int = 4) { self.capacity = max(0, capacity) }

  /// The saved state whose token prefix is the longest one of `tokens` (and shorter than it), with matching images.
  func lookup(tokens: [Int], imageFingerprints: [UInt64]) -> Entry? {
    lock.lock()
    defer { lock.unlock() }
    var best: Int?
    for (i, entry) in entries.enumerated()
    where entry.tokens.count < tokens.count && tokens.starts(with: entry.tokens)
      && imageFingerprints.starts(with: entry.imageFingerprints)
    {
      if best.map({ entries[$0].tokens.count < entry.tokens.count }) ?? true { best = i }
    }
    guard let best else { return nil }
    let entry = entries.remove(at: best)
    entries.append(entry)
    hits += 1
    return entry
  }

  /// Saves `state`, reached after `tokens` with these images.
  func store(tokens: [Int], imageFingerprints: [UInt64], state: DecoderState) {
    guard capacity > 0 else { return }
    lock.lock()
    defer { lock.unlock() }
    entries.removeAll { $0.tokens == tokens && $0.imageFingerprints == imageFingerprints }
    entries.append(Entry(tokens: tokens, imageFingerprints: imageFingerprints, state: state))
    if entries.count > capacity { entries.removeFirst(entries.count - capacity) }
  }

  /// FNV-1a over the bit patterns of an image's pixel values.
  static func fingerprint(_ values: [Float]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for v in values {
      hash = (hash ^ UInt64(v.bitPattern)) &* 0x0000_0100_0000_01B3
    }
    return hash
  }
}
