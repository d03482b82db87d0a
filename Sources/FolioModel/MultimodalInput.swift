import FolioBase
import FolioKernels
import Foundation

/// Early fusion (qwen35.md §3.2, §4.8): image features replace `<|image_pad|>` embeddings in order, and the mixed
/// sequence gets 3-D (t, h, w) rotary positions.
public enum MultimodalPositions {
  /// Positions for `tokens`, where each maximal run of `imageTokenID` is one image whose merged grid is
  /// `grid.h/merge × grid.w/merge` (row-major), starting at text position `start`.
  /// Returns the positions and the `rope_delta` (max position + 1 − sequence length) for decoding after the prompt.
  public static func compute(
    tokens: [Int], imageTokenID: Int, grids: [PatchGrid], mergeSize: Int, start: Int = 0
  ) throws -> (positions: [PositionTriple], delta: Int) {
    var positions: [PositionTriple] = []
    positions.reserveCapacity(tokens.count)
    var current = start
    var image = 0
    var i = 0
    while i < tokens.count {
      if tokens[i] != imageTokenID {
        positions.append(PositionTriple(uniform: current))
        current += 1
        i += 1
        continue
      }
      var runEnd = i
      while runEnd < tokens.count && tokens[runEnd] == imageTokenID { runEnd += 1 }
      guard image < grids.count else {
        throw FolioError(.invalidArgument, "the prompt has more image placeholders than images.")
      }
      let g = grids[image]
      let rows = g.h / mergeSize
      let columns = g.w / mergeSize
      guard runEnd - i == g.t * rows * columns else {
        throw FolioError(
          .invalidArgument,
          "image \(image + 1) has \(runEnd - i) <|image_pad|> tokens but its grid needs \(g.t * rows * columns).")
      }
      for frame in 0..<g.t {
        for r in 0..<rows {
          for c in 0..<columns { positions.append(PositionTriple(t: current + frame, h: current + r, w: current + c)) }
        }
      }
      // The text after an image resumes at max(gh, gw)/merge past the image's start (not its token count).
      current += max(g.t, max(rows, columns))
      image += 1
      i = runEnd
    }
    guard image == grids.count else {
      throw FolioError(
        .invalidArgument, "\(grids.count) images were given but the prompt has \(image) image placeholders.")
    }
    let maximum = positions.map { max($0.t, max($0.h, $0.w)) }.max() ?? (start - 1)
    return (positions, maximum + 1 - (start + tokens.count))
  }
}

extension TextModel {
  /// Runs a prompt whose `<|image_pad|>` runs are replaced, in order, by `imageFeatures`
  /// (`[Σ merged tokens, hidden]` from `VisionEncoder.encode`). Sets the state's position delta so that decoding
  /// continues at the right rotary position. Returns the last position's logits.
  public func forward(
    tokens: [Int], imageFeatures: [Float], grids: [PatchGrid], imageTokenID: Int, mergeSize: Int,
    state: inout DecoderState, pool: ComputePool
  ) throws -> [Float] {
    let h = config.hiddenSize
    let padCount = tokens.filter { $0 == imageTokenID }.count
    guard imageFeatures.count == padCount * h else {
      throw FolioError(
        .invalidArgument,
        "\(padCount) image placeholders need \(padCount * h) feature values, got \(imageFeatures.count).")
    }
    let (positions, delta) = try MultimodalPositions.compute(
      tokens: tokens, imageTokenID: imageTokenID, grids: grids, mergeSize: mergeSize,
      start: state.tokenCount + state.positionDelta)
    var feature = 0
    let hidden = try embed(tokens) { t, row in
      guard tokens[t] == imageTokenID else { return false }
      imageFeatures.withUnsafeBufferPointer { row.update(from: $0.baseAddress! + feature * h, count: h) }
      feature += 1
      return true
    }
    state.positionDelta += delta
    return forward(embeddings: hidden, count: tokens.count, positions: positions, state: &state, pool: pool)
  }
}
