import FolioBase
import Foundation

/// How the next token is chosen. `temperature == 0` means greedy (argmax of the raw logits).
///
/// Transforms apply in Hugging Face's order: repetition and presence penalties, temperature, top-k, top-p, min-p.
public struct SamplingParameters: Sendable, Equatable {
  public var temperature: Double = 0
  /// Keep only the k most likely tokens (0 or nil: no limit).
  public var topK: Int?
  /// Keep the smallest set of tokens whose probability reaches p.
  public var topP: Double?
  /// Drop tokens less likely than `minP ×` the top token's probability.
  public var minP: Double?
  /// Divides positive (multiplies negative) logits of tokens already seen, as in `RepetitionPenaltyLogitsProcessor`.
  public var repetitionPenalty: Double?
  /// Subtracted once from the logit of every token already generated.
  public var presencePenalty: Double?
  /// Seed of the sampler's random generator; equal seeds give equal samples.
  public var seed: UInt64?

  public init(
    temperature: Double = 0, topK: Int? = nil, topP: Double? = nil, minP: Double? = nil,
    repetitionPenalty: Double? = nil, presencePenalty: Double? = nil, seed: UInt64? = nil
  ) {
    self.temperature = temperature
    self.topK = topK
    self.topP = topP
    self.minP = minP
    self.repetitionPenalty = repetitionPenalty
    self.presencePenalty = presencePenalty
    self.seed = seed
  }

  /// True when sampling reduces to argmax.
  public var isGreedy: Bool { temperature <= 0 }

  /// Checks ranges; the message says which value is wrong.
  public func validate() throws {
    func fail(_ message: String) throws { throw FolioError(.invalidArgument, message) }
    if temperature < 0 || !temperature.isFinite {
      try fail("temperature must be ≥ 0 (0 is greedy), got \(temperature).")
    }
    if let k = topK, k < 0 { try fail("top-k must be ≥ 0, got \(k).") }
    if let p = topP, !(p > 0 && p <= 1) { try fail("top-p must be in (0, 1], got \(p).") }
    if let p = minP, !(p >= 0 && p <= 1) { try fail("min-p must be in [0, 1], got \(p).") }
    if let r = repetitionPenalty, !(r > 0) { try fail("repetition penalty must be > 0, got \(r).") }
  }
}

/// A token id with its log-probability.
public struct TokenLogprob: Sendable, Equatable, Codable {
  public var id: Int
  public var logprob: Double
  public init(id: Int, logprob: Double) {
    self.id = id
    self.logprob = logprob
  }
}

/// Chooses tokens from logits according to `SamplingParameters`.
public struct Sampler: Sendable {
  public let parameters: SamplingParameters
  private var random: Xoshiro256

  public init(_ parameters: SamplingParameters) {
    self.parameters = parameters
    random = Xoshiro256(seed: parameters.seed ?? UInt64.random(in: .min ... .max))
  }

  /// The next token given raw `logits` and the ids seen so far (`history` for repetition, `generated` for presence).
  public mutating func next(logits: [Float], history: [Int], generated: [Int]) -> Int {
    var scores = logits
    if let penalty = parameters.repetitionPenalty, penalty != 1 {
      let p = Float(penalty)
      for id in Set(history) where id < scores.count {
        scores[id] = scores[id] < 0 ? scores[id] * p : scores[id] / p
      }
    }
    if let presence = parameters.presencePenalty, presence != 0 {
      for id in Set(generated) where id < scores.count { scores[id] -= Float(presence) }
    }
    if parameters.isGreedy { return Self.argmax(scores) }
    let t = Float(parameters.temperature)
    var candidates: [(id: Int, score: Float)]
    if let k = parameters.topK, k > 0, k < scores.count {
      candidates = Self.topIndices(scores, count: k).map { ($0, scores[$0] / t) }
    } else {
      candidates = scores.indices.map { (id: $0, score: scores[$0] / t) }
      candidates.sort { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
    }
    let maximum = candidates[0].score
    var probabilities = candidates.map { Double(exp($0.score - maximum)) }
    var total = probabilities.reduce(0, +)
    if let p = parameters.topP, p < 1 {
      var cumulative = 0.0
      var keep = probabilities.count
      for (i, q) in probabilities.enumerated() {
        cumulative += q / total
        if cumulative >= p {
          keep = i + 1
          break
        }
      }
      probabilities.removeLast(probabilities.count - keep)
      total = probabilities.reduce(0, +)
    }
    if let m = parameters.minP, m > 0 {
      let threshold = m * probabilities[0]
      let keep = max(1, probabilities.prefix { $0 >= threshold }.count)
      probabilities.removeLast(probabilities.count - keep)
      total = probabilities.reduce(0, +)
    }
    var u = random.nextUnitDouble() * total
    for (i, q) in probabilities.enumerated() {
      u -= q
      if u < 0 { return candidates[i].id }
    }
    return candidates[probabilities.count - 1].id
  }

  /// Index of the largest value (first on ties, as torch.argmax).
  public static func argmax(_ values: [Float]) -> Int {
    var best = 0
    for i in values.indices where values[i] > values[best] { best = i }
    return best
  }

  /// The `count` most likely tokens under log-softmax of the raw `logits`, most likely first.
  public static func topLogprobs(_ logits: [Float], count: Int) -> [TokenLogprob] {
    guard count > 0 else { return [] }
    let maximum = logits.max() ?? 0
    var sum = 0.0
    for v in logits { sum += Double(exp(v - maximum)) }
    let logNormalizer = Double(maximum) + log(sum)
    return topIndices(logits, count: count).map { TokenLogprob(id: $0, logprob: Double(logits[$0]) - logNormalizer) }
  }

  /// Indices of the `count` largest values, largest first (lower index first on ties), in one pass.
  public static func topIndices(_ values: [Float], count: Int) -> [Int] {
    guard count > 0 else { return [] }
    var best: [Int] = []
    best.reserveCapacity(count + 1)
    for i in values.indices {
      let v = values[i]
      if best.count == count, let last = best.last, values[last] >= v { continue }
      var position = best.count
      while position > 0 && values[best[position - 1]] < v { position -= 1 }
      best.insert(i, at: position)
      if best.count > count { best.removeLast() }
    }
    return best
  }
}

/// xoshiro256** seeded through SplitMix64: small, fast and reproducible across platforms.
struct Xoshiro256: Sendable {
  private var s: (UInt64, UInt64, UInt64, UInt64)

  init(seed: UInt64) {
    var x = seed
    func splitMix() -> UInt64 {
      x &+= 0x9E37_79B9_7F4A_7C15
      var z = x
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    s = (splitMix(), splitMix(), splitMix(), splitMix())
  }

  mutating func next() -> UInt64 {
    let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
    let t = s.1 << 17
    s.2 ^= s.0
    s.3 ^= s.1
    s.1 ^= s.2
    s.0 ^= s.3
    s.2 ^= t
    s.3 = (s.3 << 45) | (s.3 >> 19)
    return result
  }

  /// Uniform in [0, 1) with 53 random bits.
  mutating func nextUnitDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
