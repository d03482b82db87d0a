// CFolioImage: a small C shim over libpng and libjpeg for FolioCodecs (issue 3).
//
// Every libpng error (setjmp/png_set_longjmp_fn) and every libjpeg error (error_exit) longjmps back into the C
// function that started the work, never across Swift frames. Each function returns a status code and fills a
// message buffer; all memory the libraries allocate is released on every path. Output pixels go into a buffer
// the caller owns.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Status codes returned by every function below.
enum {
  FOLIO_IMAGE_OK = 0,
  /// The data ended before the image did.
  FOLIO_IMAGE_TRUNCATED = 1,
  /// The library rejected the data (bad signature, CRC, Huffman table, marker, ...).
  FOLIO_IMAGE_CORRUPT = 2,
  /// Well-formed but not something the shim decodes (e.g. a JPEG colour space other than gray/YCbCr/RGB/CMYK/YCCK).
  FOLIO_IMAGE_UNSUPPORTED = 3,
  /// A temporary allocation failed.
  FOLIO_IMAGE_NO_MEMORY = 4,
  /// The caller's buffer does not match the image (size changed between probe and decode).
  FOLIO_IMAGE_BAD_ARGUMENT = 5,
  /// The library itself refuses the dimensions (libjpeg: more than 65500 pixels a side).
  FOLIO_IMAGE_TOO_LARGE = 6,
};

/// What a header says about an image, plus the outcome of a call.
typedef struct folio_image_result {
  /// One of the FOLIO_IMAGE_* codes.
  int32_t code;
  /// Stored width and height in pixels (before any EXIF orientation).
  uint32_t width;
  uint32_t height;
  /// PNG: colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA); JPEG: number of components.
  int32_t color_type;
  /// PNG: bits per sample; JPEG: 8.
  int32_t bit_depth;
  /// PNG: 1 if Adam7-interlaced; JPEG: 1 if progressive.
  int32_t is_interlaced;
  /// NUL-terminated description of the failure (empty on success).
  char message[200];
} folio_image_result;

/// Reads the PNG signature and header chunks up to the first IDAT (no pixel data is inflated).
int32_t folio_png_probe(const uint8_t *data, size_t size, folio_image_result *result);

/// Decodes a PNG into `out` as RGB8 rows (width*height*3 bytes, `out_size` must equal that exactly).
/// Alpha (including tRNS) is composited onto white with Pillow's `alpha_composite` rounding.
int32_t folio_png_decode_rgb(const uint8_t *data, size_t size, uint8_t *out, size_t out_size,
                             folio_image_result *result);

/// Reads the JPEG markers up to the first SOS (jpeg_read_header); no entropy-coded data is decoded.
int32_t folio_jpeg_probe(const uint8_t *data, size_t size, folio_image_result *result);

/// Decodes a JPEG into `out` as RGB8 rows (width*height*3 bytes, `out_size` must equal that exactly).
/// CMYK/YCCK data is read with Adobe's inverted convention and converted as Pillow's `cmyk2rgb` does.
int32_t folio_jpeg_decode_rgb(const uint8_t *data, size_t size, uint8_t *out, size_t out_size,
                              folio_image_result *result);

#ifdef __cplusplus
}
#endif
