/// An open-addressing hash table from byte strings to a pair of `Int32`s.
///
/// Lookups take a borrowed buffer and never allocate, which matters on the encoder's hot path (one lookup per
/// pre-token), and keys compare byte for byte (unlike `String`, whose equality is canonical equivalence).
/// The tables are large (Qwen3.5's vocabulary has 248k entries) and lookups land in random places, so each
/// slot holds everything a lookup needs: a key of up to 8 bytes sits in the slot itself (one cache miss per
/// lookup); longer keys live in a byte arena.
struct ByteStringTable: Sendable {
  private struct Slot {
    /// The key's bytes when it is at most 8 bytes long (little-endian), else its offset in `longKeys`.
    var key: UInt64
    /// The key's length; -1 marks an empty slot.
    var length: Int32
    var hash: UInt32
    var value: Int32
    var extra: Int32
  }

  private static let emptySlot = Slot(key: 0, length: -1, hash: 0, value: 0, extra: 0)
  private var slots: [Slot]
  private var longKeys: [UInt8] = []

  /// The number of keys.
  private(set) var count = 0

  /// Creates a table sized for about `capacity` keys.
  init(capacity: Int = 16) {
    var size = 16
    while size < capacity * 2 { size <<= 1 }
    slots = [Slot](repeating: Self.emptySlot, count: size)
  }

  /// The values stored for `key`, if any.
  func lookup(_ key: UnsafeBufferPointer<UInt8>) -> (value: Int32, extra: Int32)? {
    let hash = Self.hash(key)
    let length = Int32(truncatingIfNeeded: key.count)
    let inline = key.count <= 8 ? Self.pack(key) : 0
    return slots.withUnsafeBufferPointer { slots in
      let mask = slots.count - 1
      var index = Int(hash) & mask
      while true {
        let slot = slots[index]
        if slot.length < 0 { return nil }
        if slot.hash == hash, slot.length == length, matches(slot, key, inline) { return (slot.value, slot.extra) }
        index = (index + 1) & mask
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
    let length = Int32(truncatingIfNeeded: key.count)
    let inline = key.count <= 8 ? Self.pack(key) : 0
    let mask = slots.count - 1
    var index = Int(hash) & mask
    while slots[index].length >= 0 {
      let slot = slots[index]
      if slot.hash == hash, slot.length == length, matches(slot, key, inline) {
        slots[index].value = value
        slots[index].extra = extra
        return
      }
      index = (index + 1) & mask
    }
    var stored = inline
    if key.count > 8 {
      stored = UInt64(longKeys.count)
      longKeys.append(contentsOf: key)
    }
    slots[index] = Slot(key: stored, length: length, hash: hash, value: value, extra: extra)
    count += 1
    if count * 2 > slots.count { grow() }
  }

  /// Stores `value` and `extra` for the UTF-8 bytes of `key`.
  mutating func insert(_ key: String, value: Int32, extra: Int32 = 0) {
    var key = key
    key.withUTF8 { insert($0, value: value, extra: extra) }
  }

  /// Removes every key, keeping the allocated storage.
  mutating func removeAll() {
    count = 0
    longKeys.removeAll(keepingCapacity: true)
    slots.withUnsafeMutableBufferPointer { $0.update(repeating: Self.emptySlot) }
  }

  private mutating func grow() {
    var newSlots = [Slot](repeating: Self.emptySlot, count: slots.count * 2)
    let mask = newSlots.count - 1
    for slot in slots where slot.length >= 0 {
      var index = Int(slot.hash) & mask
      while newSlots[index].length >= 0 { index = (index + 1) & mask }
      newSlots[index] = slot
    }
    slots = newSlots
  }

  @inline(__always)
  private func matches(_ slot: Slot, _ key: UnsafeBufferPointer<UInt8>, _ inline: UInt64) -> Bool {
    if key.count <= 8 { return slot.key == inline }
    return longKeys.withUnsafeBufferPointer { arena in
      let start = Int(slot.key)
      for i in 0..<key.count where arena[start + i] != key[i] { return false }
      return true
    }
  }

  /// The bytes of a key of at most 8 bytes, little-endian in a `UInt64`.
  @inline(__always)
  private static func pack(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
    var word: UInt64 = 0
    for i in 0..<key.count { word |= UInt64(key[i]) << (8 * UInt64(i)) }
    return word
  }

  /// A fast non-cryptographic hash (64-bit multiply-xorshift over 8-byte words).
  @inline(__always)
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
