/// An open-addressing hash table from byte strings to a pair of `Int32`s, with all keys in one byte arena.
///
/// Lookups take a borrowed buffer and never allocate, which matters on the encoder's hot path (one lookup per
/// pre-token). Keys compare byte for byte (unlike `String`, whose equality is canonical equivalence).
struct ByteStringTable: Sendable {
  private struct Entry {
    var keyStart: Int32
    var keyLength: Int32
    var hash: UInt32
    var value: Int32
    var extra: Int32
  }

  private var keyBytes: [UInt8] = []
  private var entries: [Entry] = []
  /// Entry index + 1 per slot; 0 is empty. The slot count is a power of two, at most half full.
  private var slots: [Int32]

  /// Creates a table sized for about `capacity` keys.
  init(capacity: Int = 16) {
    var size = 16
    while size < capacity * 2 { size <<= 1 }
    slots = [Int32](repeating: 0, count: size)
    entries.reserveCapacity(capacity)
  }

  /// The number of keys.
  var count: Int { entries.count }

  /// The number of key bytes stored.
  var keyByteCount: Int { keyBytes.count }

  /// The values stored for `key`, if any.
  func lookup(_ key: UnsafeBufferPointer<UInt8>) -> (value: Int32, extra: Int32)? {
    let hash = Self.hash(key)
    let mask = slots.count - 1
    var slot = Int(hash) & mask
    return keyBytes.withUnsafeBufferPointer { arena in
      entries.withUnsafeBufferPointer { entries in
        slots.withUnsafeBufferPointer { slots in
          while true {
            let index = Int(slots[slot]) - 1
            if index < 0 { return nil }
            let entry = entries[index]
            if entry.hash == hash, Int(entry.keyLength) == key.count,
              Self.equal(arena.baseAddress! + Int(entry.keyStart), key)
            {
              return (entry.value, entry.extra)
            }
            slot = (slot + 1) & mask
          }
        }
      }
    }
  }

  /// The values stored for the UTF-8 bytes of `key`, if any.
  func lookup(_ key: String) -> (value: Int32, extra: Int32)? {
    var key = key
    return key.withUTF8 { lookup($0) }
  }

  /// Stores `value` and `extra` for `key`, replacing what was there.
  mutating func insert(_ key: UnsafeBufferPointer<UInt8>, value: Int32, extra: Int32 = 0) {
    let hash = Self.hash(key)
    let mask = slots.count - 1
    var slot = Int(hash) & mask
    while slots[slot] != 0 {
      let index = Int(slots[slot]) - 1
      let entry = entries[index]
      if entry.hash == hash, Int(entry.keyLength) == key.count,
        keyBytes.withUnsafeBufferPointer({ Self.equal($0.baseAddress! + Int(entry.keyStart), key) })
      {
        entries[index].value = value
        entries[index].extra = extra
        return
      }
      slot = (slot + 1) & mask
    }
    entries.append(Entry(keyStart: Int32(keyBytes.count), keyLength: Int32(key.count), hash: hash, value: value, extra: extra))
    keyBytes.append(contentsOf: key)
    if entries.count * 2 > slots.count {
      grow()
    } else {
      slots[slot] = Int32(entries.count)
    }
  }

  /// Stores `value` and `extra` for the UTF-8 bytes of `key`.
  mutating func insert(_ key: String, value: Int32, extra: Int32 = 0) {
    var key = key
    key.withUTF8 { insert($0, value: value, extra: extra) }
  }

  /// Removes every key, keeping the allocated storage.
  mutating func removeAll() {
    keyBytes.removeAll(keepingCapacity: true)
    entries.removeAll(keepingCapacity: true)
    for i in slots.indices { slots[i] = 0 }
  }

  private mutating func grow() {
    let size = slots.count * 2
    let mask = size - 1
    var newSlots = [Int32](repeating: 0, count: size)
    for (index, entry) in entries.enumerated() {
      var slot = Int(entry.hash) & mask
      while newSlots[slot] != 0 { slot = (slot + 1) & mask }
      newSlots[slot] = Int32(index + 1)
    }
    slots = newSlots
  }

  private static func equal(_ a: UnsafePointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
    guard let base = b.baseAddress else { return true }
    for i in 0..<b.count where a[i] != base[i] { return false }
    return true
  }

  /// A fast non-cryptographic hash (64-bit multiply-xorshift over 8-byte words).
  static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt32 {
    var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: key.count)
    guard let base = key.baseAddress else { return UInt32(truncatingIfNeeded: h) }
    let raw = UnsafeRawPointer(base)
    var i = 0
    while i + 8 <= key.count {
      let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
      h = (h ^ word) &* 0xBF58_476D_1CE4_E5B9
      h ^= h >> 29
      i += 8
    }
    if i < key.count {
      var word: UInt64 = 0
      var shift: UInt64 = 0
      while i < key.count {
        word |= UInt64(base[i]) << shift
        shift += 8
        i += 1
      }
      h = (h ^ word) &* 0x94D0_49BB_1331_11EB
    }
    h ^= h >> 32
    h = h &* 0xD6E8_FEB8_6659_FD93
    h ^= h >> 32
    return UInt32(truncatingIfNeeded: h)
  }
}
