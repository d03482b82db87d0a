import Foundation
import Testing

@testable import FolioEngine

@Suite("Sampler")
struct SamplerTests {
  let logits: [Float] = [1.0, 3.0, 2.5, -1.0, 0.0, 2.9]

  @Test func greedyIsArgmax() {
    var sampler = Sampler(SamplingParameters(temperature: 0))
    #expect(sampler.next(logits: logits, history: [], generated: []) == 1)
  }

  @Test func sameSeedSameSamples() {
    let p = SamplingParameters(temperature: 1.0, seed: 42)
    var a = Sampler(p), b = Sampler(p)
    let x = (0..<50).map { _ in a.next(logits: logits, history: [], generated: []) }
    let y = (0..<50).map { _ in b.next(logits: logits, history: [], generated: []) }
    #expect(x == y)
    #expect(Set(x).count > 1, "temperature 1 over close logits should not always pick the same token")
  }

  @Test func topKOneIsGreedy() {
    var sampler = Sampler(SamplingParameters(temperature: 5, topK: 1, seed: 1))
    for _ in 0..<20 { #expect(sampler.next(logits: logits, history: [], generated: []) == 1) }
  }

  @Test func topKLimitsTheCandidates() {
    var sampler = Sampler(SamplingParameters(temperature: 100, topK: 2, seed: 7))
    let drawn = Set((0..<200).map { _ in sampler.next(logits: logits, history: [], generated: []) })
    #expect(drawn == [1, 5])
  }

  @Test func topPKeepsTheNucleus() {
    // Probabilities at T=1: token 1 ≈ 0.37, 5 ≈ 0.33, 2 ≈ 0.22; p = 0.5 keeps {1, 5}.
    var sampler = Sampler(SamplingParameters(temperature: 1, topP: 0.5, seed: 3))
    let drawn = Set((0..<300).map { _ in sampler.next(logits: logits, history: [], generated: []) })
    #expect(drawn == [1, 5])
  }

  @Test func minPDropsUnlikelyTokens() {
    // min-p 0.8 of the top probability keeps tokens within log(0.8) ≈ −0.22 of the top logit: 1 and 5.
    var sampler = Sampler(SamplingParameters(temperature: 1, minP: 0.8, seed: 5))
    let drawn = Set((0..<300).map { _ in sampler.next(logits: logits, history: [], generated: []) })
    #expect(drawn == [1, 5])
  }

  @Test func repetitionPenaltyChangesTheGreedyChoice() {
    var sampler = Sampler(SamplingParameters(temperature: 0, repetitionPenalty: 1.5))
    // 3.0 / 1.5 = 2.0 < 2.9: token 5 wins once token 1 was seen.
    #expect(sampler.next(logits: logits, history: [1], generated: []) == 5)
  }

  @Test func presencePenaltyAppliesToGeneratedTokens() {
    var sampler = Sampler(SamplingParameters(temperature: 0, presencePenalty: 1.0))
    #expect(sampler.next(logits: logits, history: [1], generated: []) == 1)
    #expect(sampler.next(logits: logits, history: [1], generated: [1]) == 5)
  }

  @Test func topLogprobsAreSortedLogSoftmax() {
    let top = Sampler.topLogprobs(logits, count: 3)
    #expect(top.map(\.id) == [1, 5, 2])
    let normalizer = log(logits.map { exp(Double($0)) }.reduce(0, +))
    #expect(abs(top[0].logprob - (3.0 - normalizer)) < 1e-5)
    #expect(top[0].logprob > top[1].logprob && top[1].logprob > top[2].logprob)
  }

  @Test func invalidParametersAreRejected() {
    #expect(throws: (any Error).self) { try SamplingParameters(temperature: -1).validate() }
    #expect(throws: (any Error).self) { try SamplingParameters(topP: 0).validate() }
    #expect(throws: (any Error).self) { try SamplingParameters(minP: 2).validate() }
  }
}

@Suite("Top indices")
struct TopIndicesTests {
  @Test func matchesAFullSort() {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<20 {
      let values = (0..<500).map { _ in Float(Int.random(in: 0..<50, using: &generator)) }
      let expected = values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }
      for k in [1, 5, 37] { #expect(Sampler.topIndices(values, count: k) == Array(expected.prefix(k))) }
    }
  }
}
