import FolioModel
import Foundation

/// Decoder states (recurrent, convolution and KV) saved after prompt prefixes that jobs share, so that a job
/// continues from the saved state instead of prefilling the prefix again. Two kinds of prefix are saved:
///
/// - the text a prompt shares with a recent prompt (the same system prompt and instructions before each
///   document or segment), found by comparing token ids with the last few prompts: the second job of a kind saves
///   the state after the shared text, every later one starts there;
/// - a prompt up to the end of its last image, so that the next step on the same image (the caption and the OCR
///   step of one page) skips the vision encoder and the image's prefill.
///
/// Keys are the exact token prefix plus a fingerprint of each image's pixel values (image placeholders alone are
/// identical for any two images of one size). A few entries are kept, least recently used first out. Continuing
/// from a saved state computes what one prefill of the whole prompt computes (only the summation order of the
/// blocked delta rule differs).
public final class PrefixStateCache: @unchecked Sendable {
  struct Entry {
    var tokens: [Int]
    var imageFingerprints: [UInt64]
    var state: DecoderState
  }

  private let lock = NSLock()
  private var entries: [Entry] = []
  /// Token ids of the last prompts, to find the prefix the next prompt shares with them.
  private var recentPrompts: [[Int]] = []
  /// Entries kept (each holds a copy of the KV cache and recurrent state).
  public let capacity: Int
  /// Lookups that found a usable prefix (for status and tests).
  public private(set) var hits = 0
  /// Shared text shorter than this is prefilled again rather than saved: a saved state costs a copy of the
  /// recurrent state (megabytes), which outweighs prefilling a few tokens.
  public static let minimumSharedTokens = 16
  /// Prompts remembered for finding shared prefixes (jobs of several pipeline steps interleave).
  static let recentPromptLimit = 8

  public init(capacity: Int = 4) { self.capacity = max(0, capacity) }

  /// The length of the longest prefix `tokens` shares with a recent prompt, then remembers `tokens`.
  func sharedPrefixLength(remembering tokens: [Int]) -> Int {
    lock.lock()
    defer { lock.unlock() }
    let shared = recentPrompts.map { recent in
      zip(recent, tokens).prefix { $0 == $1 }.count
    }.max() ?? 0
    recentPrompts.removeAll { $0 == tokens }
    recentPrompts.append(tokens)
    if recentPrompts.count > Self.recentPromptLimit { recentPrompts.removeFirst() }
    return shared
  }

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
