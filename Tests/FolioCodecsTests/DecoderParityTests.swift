import FolioBase
import FolioCodecs
import Foundation
import Testing

/// Decoded pixels against Pillow (`Image.open` → `ImageOps.exif_transpose` → transformers' `convert_to_rgb`).
///
/// Tolerances:
/// - PNG: exact (CRC-32 of the RGB bytes). Both sides run zlib and the same integer unpacking; alpha uses Pillow's
///   own `alpha_composite` integer formula. One documented deviation: 16-bit grayscale, where Pillow's I;16 → RGB
///   clips every value above 255 (whitening the image); Folio keeps the high byte, the rule Pillow itself applies
///   to 16-bit RGB, RGBA and gray+alpha. Its manifest entry records the high-byte expectation.
/// - JPEG: within `jpegMaxLevel` levels everywhere and at most `jpegMaxFraction` of the bytes different. Pillow's
///   wheel bundles libjpeg-turbo 3.x, Folio links the system libjpeg-turbo (2.1.5 on Debian 12); both use the
///   same ISLOW IDCT and fancy upsampling, so they are expected to agree, but libjpeg versions are allowed to
///   change SIMD upsampling/colour-conversion rounding, and a decoder of a lossy format is not specified to the
///   bit. Measured: see `jpegDecodesLikePillow`.
@Suite("Decoding matches Pillow")
struct DecoderParityTests {
  static let jpegMaxLevel = 2
  static let jpegMaxFraction = 0.01

  @Test("the manifest is present and complete")
  func manifestLoads() throws {
    let manifest = try #require(ImageFixtures.manifest)
    #expect(manifest.images.count >= 40)
    #expect(manifest.images.contains { $0.format == "png" })
    #expect(manifest.images.contains { $0.format == "jpeg" })
  }

  @Test("PNG decodes to Pillow's exact RGB", arguments: ImageFixtures.images.filter { $0.format == "png" })
  func pngDecodesExactly(_ fixture: FixtureImage) throws {
    let data = try ImageFixtures.data(fixture.file)
    let info = try ImageDecoder.probe(data: data)
    #expect(info.format == .png)
    #expect(info.storedWidth == fixture.storedWidth && info.storedHeight == fixture.storedHeight)
    let image = try ImageDecoder.decode(data: data)
    #expect(image.width == fixture.width && image.height == fixture.height)
    #expect(CRC32.checksum(image.pixels) == fixture.decodedCRC32, "\(fixture.description)")
  }

  @Test("JPEG decodes within the stated tolerance", arguments: ImageFixtures.images.filter { $0.format == "jpeg" })
  func jpegDecodesLikePillow(_ fixture: FixtureImage) throws {
    let data = try ImageFixtures.data(fixture.file)
    let info = try ImageDecoder.probe(data: data)
    #expect(info.format == .jpeg)
    #expect(info.storedWidth == fixture.storedWidth && info.storedHeight == fixture.storedHeight)
    let image = try ImageDecoder.decode(data: data)
    #expect(image.width == fixture.width && image.height == fixture.height)
    let reference = try ImageFixtures.png(try #require(fixture.decodedPNG))
    #expect(CRC32.checksum(reference.pixels) == fixture.decodedCRC32)
    let difference = PixelDifference(image.pixels, reference.pixels)
    print(
      "[jpeg-parity] \(fixture.name): max |Δ| = \(difference.maxAbs), differing = \(difference.differing)/\(difference.total)"
    )
    #expect(difference.maxAbs <= Self.jpegMaxLevel, "\(fixture.description)")
    #expect(difference.fraction <= Self.jpegMaxFraction, "\(fixture.description)")
  }

  @Test("EXIF orientation is read from JPEG APP1 (both byte orders) and PNG eXIf")
  func orientationProbe() throws {
    for orientation in 1...8 {
      let info = try ImageDecoder.probe(data: ImageFixtures.data("jpeg_exif\(orientation)_97x61.jpg"))
      #expect(info.orientation.rawValue == orientation)
      #expect(info.width == (orientation >= 5 ? 61 : 97))
    }
    let png = try ImageDecoder.probe(data: ImageFixtures.data("png_rgb8_exif6_97x61.png"))
    #expect(png.orientation == .right)
    #expect(png.width == 61 && png.height == 97)
  }

  @Test("probe reports interlacing and progressive scans")
  func probeDetails() throws {
    #expect(try ImageDecoder.probe(data: ImageFixtures.data("png_rgb8_interlaced_97x61.png")).isInterlaced)
    #expect(try !ImageDecoder.probe(data: ImageFixtures.data("png_rgb8_97x61.png")).isInterlaced)
    #expect(try ImageDecoder.probe(data: ImageFixtures.data("jpeg_progressive_97x61.jpg")).isInterlaced)
    let palette = try ImageDecoder.probe(data: ImageFixtures.data("png_palette4_trns_97x61.png"))
    #expect(palette.colorType == 3 && palette.bitDepth == 4)
    #expect(try ImageDecoder.probe(data: ImageFixtures.data("jpeg_cmyk_97x61.jpg")).colorType == 4)
  }
}
