/// The merges of a BPE model: pair of token ids → (rank, id of the merged token), in an open-addressing table
/// whose slots hold key and value together (one cache line per probe; the table for Qwen3.5 is 8 MB).
struct MergeTable: Sendable {
  private struct Slot {
    var key: UInt64
    var value: UInt64
  }

  private var slots: [Slot]
  private let mask: Int
  private static let empty = UInt64.max

  /// Creates a table sized for `capacity` merges.
  init(capacity: Int) {
    var size = 16
    while size < capacity * 2 { size <<= 1 }
    slots = [Slot](repeating: Slot(key: Self.empty, value: 0), count: size)
    mask = size - 1
  }

  @inline(__always) private static func slot(_ key: UInt64, _ mask: Int) -> Int {
    Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
  }

  /// Records a merge; a pair listed twice keeps its later rank, as `tokenizers` does.
  mutating func insert(left: Int32, right: Int32, rank: Int32, merged: Int32) {
    let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    var index = Self.slot(key, mask)
    while slots[index].key != Self.empty, slots[index].key != key { index = (index + 1) & mask }
    slots[index] = Slot(key: key, value: UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: merged)))
  }

  /// The rank and merged id for a pair, packed as `rank << 32 | merged`, or `UInt64.max` when they do not merge.
  @inline(__always) func lookup(_ left: Int32, _ right: Int32) -> UInt64 {
    let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    return slots.withUnsafeBufferPointer { slots in
      var index = Self.slot(key, mask)
      while true {
        let slot = slots[index]
        if slot.key == key { return slot.value }
        if slot.key == Self.empty { return UInt64.max }
        index = (index + 1) & mask
      }
    }
  }
}

/// Byte-level BPE over raw bytes: the model part of `tokenizers`' `BPE` for vocabularies spelled with the
/// ByteLevel alphabet (no unknown token, no byte fallback, no subword prefix or suffix).
///
/// Merging follows `tokenizers`' `Word::merge_all`: repeatedly merge the adjacent pair with the lowest merge rank,
/// the leftmost one on ties, until no adjacent pair has a merge.
struct BytePairEncoder: Sendable {
  /// Token id of each single byte, or -1 when the vocabulary lacks it (such bytes are dropped, as `tokenizers`
  /// does when there is no unknown token).
  let byteIDs: [Int32]
  let merges: MergeTable
  /// Raw bytes → token id for the whole vocabulary (used by `ignoresMerges`).
  let vocabulary: ByteStringTable
  /// When true, a pre-token that is itself in the vocabulary becomes that one token without merging
  /// (`ignore_merges`, tiktoken's behaviour).
  let ignoresMerges: Bool

  /// Words longer than this many symbols use the heap-based merge loop, which is O(n log n) instead of O(n²).
  private static let linearLimit = 64

  /// Appends the ids for one pre-token.
  func encode(_ word: UnsafeBufferPointer<UInt8>, into output: inout [Int32]) {
    if word.isEmpty { return }
    if word.count == 1 {
      let id = byteIDs[Int(word[0])]
      if id >= 0 { output.append(id) }
      return
    }
    if ignoresMerges, let hit = vocabulary.lookup(word) {
      output.append(hit.value)
      return
    }
    withUnsafeTemporaryAllocation(of: Int32.self, capacity: word.count) { symbols in
      var count = 0
      for byte in word {
        let id = byteIDs[Int(byte)]
        if id >= 0 {
          symbols[count] = id
          count += 1
        }
      }
      if count <= Self.linearLimit {
        mergeLinear(symbols, count: count, into: &output)
      } else {
        mergeWithHeap(symbols, count: count, into: &output)
      }
    }
  }

  /// Quadratic merge loop over a compact array; fastest for ordinary words.
  private func mergeLinear(
    _ symbols: UnsafeMutableBufferPointer<Int32>, count initialCount: Int, into output: inout [Int32]
  ) {
    var count = initialCount
    if count < 2 {
      if count == 1 { output.append(symbols[0]) }
      return
    }
    withUnsafeTemporaryAllocation(of: UInt64.self, capacity: count) { pairs in
      // pairs[i]: packed (rank, merged) for symbols[i], symbols[i + 1].
      for i in 0..<(count - 1) { pairs[i] = merges.lookup(symbols[i], symbols[i + 1]) }
      while count > 1 {
        var best = UInt64.max
        var bestIndex = -1
        for i in 0..<(count - 1) where pairs[i] < best {
          best = pairs[i]
          bestIndex = i
        }
        if bestIndex < 0 { break }
        symbols[bestIndex] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
        // Remove symbol bestIndex + 1 and pair bestIndex + 1 (now stale), shifting the tails left.
        var j = bestIndex + 1
        while j < count - 1 {
          symbols[j] = symbols[j + 1]
          j += 1
        }
        j = bestIndex + 1
        while j < count - 2 {
          pairs[j] = pairs[j + 1]
          j += 1
        }
        count -= 1
        if bestIndex > 0 { pairs[bestIndex - 1] = merges.lookup(symbols[bestIndex - 1], symbols[bestIndex]) }
        if bestIndex < count - 1 { pairs[bestIndex] = merges.lookup(symbols[bestIndex], symbols[bestIndex + 1]) }
      }
      output.append(contentsOf: UnsafeBufferPointer(rebasing: symbols[0..<count]))
    }
  }

  /// `Word::merge_all` with a binary heap of candidate merges ordered by (rank, position); stale entries are
  /// skipped when popped.
  private func mergeWithHeap(_ symbols: UnsafeMutableBufferPointer<Int32>, count: Int, into output: inout [Int32]) {
    if count < 2 {
      if count == 1 { output.append(symbols[0]) }
      return
    }
    var next = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
      for i in 0..<count { buffer[i] = i + 1 < count ? Int32(i + 1) : -1 }
      initialized = count
    }
    var previous = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
      for i in 0..<count { buffer[i] = Int32(i - 1) }
      initialized = count
    }
    var alive = [Bool](repeating: true, count: count)
    var heap = MergeHeap()
    for i in 0..<(count - 1) {
      let packed = merges.lookup(symbols[i], symbols[i + 1])
      if packed != UInt64.max { heap.push(rank: UInt32(packed >> 32), position: Int32(i)) }
    }
    while let (rank, position) = heap.pop() {
      let p = Int(position)
      guard alive[p], next[p] >= 0 else { continue }
      let right = Int(next[p])
      let packed = merges.lookup(symbols[p], symbols[right])
      guard packed != UInt64.max, UInt32(packed >> 32) == rank else { continue }  // stale entry
      symbols[p] = Int32(truncatingIfNeeded: packed & 0xFFFF_FFFF)
      alive[right] = false
      next[p] = next[right]
      if next[right] >= 0 { previous[Int(next[right])] = Int32(p) }
      if previous[p] >= 0 {
        let left = Int(previous[p])
        let candidate = merges.lookup(symbols[left], symbols[p])
        if candidate != UInt64.max { heap.push(rank: UInt32(candidate >> 32), position: Int32(left)) }
      }
      if next[p] >= 0 {
        let candidate = merges.lookup(symbols[p], symbols[Int(next[p])])
        if candidate != UInt64.max { heap.push(rank: UInt32(candidate >> 32), position: Int32(p)) }
      }
    }
    var i = 0
    while i >= 0 {
      output.append(symbols[i])
      i = Int(next[i])
    }
  }
}

/// A binary min-heap of (rank, position) pairs, packed so that integer order is (rank, position) order.
private struct MergeHeap {
  private var items: [UInt64] = []

  mutating func push(rank: UInt32, position: Int32) {
    items.append(UInt64(rank) << 32 | UInt64(UInt32(bitPattern: position)))
    var child = items.count - 1
    while child > 0 {
      let parent = (child - 1) / 2
      if items[parent] <= items[child] { break }
      items.swapAt(parent, child)
      child = parent
    }
  }

  mutating func pop() -> (rank: UInt32, position: Int32)? {
    guard let top = items.first else { return nil }
    let last = items.removeLast()
    if !items.isEmpty {
      items[0] = last
      var parent = 0
      while true {
        let left = 2 * parent + 1
        if left >= items.count { break }
        var smallest = left
        if left + 1 < items.count, items[left + 1] < items[left] { smallest = left + 1 }
        if items[parent] <= items[smallest] { break }
        items.swapAt(parent, smallest)
        parent = smallest
      }
    }
    return (UInt32(top >> 32), Int32(bitPattern: UInt32(truncatingIfNeeded: top)))
  }
}

/// Recently encoded words (raw bytes → ids), shared by all `encode` calls of one tokenizer behind a lock.
/// It is emptied when it grows past `maximumEntries`, which bounds its memory to a few megabytes.
struct WordCache: Sendable {
  /// Longer words are rare enough to repeat that caching them is not worth their memory.
  static let maximumWordLength = 64
  static let maximumEntries = 262_144

  private var table = ByteStringTable(capacity: 4096)
  private var ids: [Int32] = []

  /// Appends the cached ids for `word` and returns true, or returns false if it is not cached.
  func append(_ word: UnsafeBufferPointer<UInt8>, into output: inout [Int32]) -> Bool {
    guard let (start, count) = table.lookup(word) else { return false }
    output.append(contentsOf: ids[Int(start)..<Int(start + count)])
    return true
  }

  /// Caches the ids of `word`.
  mutating func insert(_ word: UnsafeBufferPointer<UInt8>, ids wordIDs: UnsafeBufferPointer<Int32>) {
    if table.count >= Self.maximumEntries {
      table.removeAll()
      ids.removeAll(keepingCapacity: true)
    }
    table.insert(word, value: Int32(ids.count), extra: Int32(wordIDs.count))
    ids.append(contentsOf: wordIDs)
  }
}
