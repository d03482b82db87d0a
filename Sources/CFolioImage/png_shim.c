// PNG decoding through libpng; all setjmp/longjmp stays inside these functions.
#include <setjmp.h>
#include <stdlib.h>
#include <png.h>

#include "shim_common.h"

/// In-memory source plus the error state the callbacks fill in.
typedef struct {
  const uint8_t *data;
  size_t size;
  size_t position;
  int truncated;
  folio_image_result *result;
} png_source;

static void png_source_read(png_structp png, png_bytep out, size_t count) {
  png_source *source = (png_source *)png_get_io_ptr(png);
  if (count > source->size - source->position) {
    source->truncated = 1;
    png_error(png, "the PNG data ends early (file truncated)");
  }
  memcpy(out, source->data + source->position, count);
  source->position += count;
}

static void png_source_error(png_structp png, png_const_charp message) {
  png_source *source = (png_source *)png_get_error_ptr(png);
  folio_fail(source->result, source->truncated ? FOLIO_IMAGE_TRUNCATED : FOLIO_IMAGE_CORRUPT, message);
  png_longjmp(png, 1);
}

static void png_source_warning(png_structp png, png_const_charp message) {
  (void)png;
  (void)message;  // Warnings (bad ancillary CRCs, unknown chunks) do not stop decoding, as in Pillow.
}

/// Creates the read structs; on failure fills `result` and returns 0.
static int png_open(png_source *source, png_structp *png, png_infop *info) {
  *png = png_create_read_struct(PNG_LIBPNG_VER_STRING, source, png_source_error, png_source_warning);
  if (!*png) return folio_fail(source->result, FOLIO_IMAGE_NO_MEMORY, "libpng could not allocate a reader"), 0;
  *info = png_create_info_struct(*png);
  if (!*info) {
    png_destroy_read_struct(png, NULL, NULL);
    return folio_fail(source->result, FOLIO_IMAGE_NO_MEMORY, "libpng could not allocate an info struct"), 0;
  }
  png_set_read_fn(*png, source, png_source_read);
  // The PNG format allows 2^31-1; Folio's own max_pixels check (in Swift, after the probe) is the real limit,
  // so let libpng report the true header values instead of its 1,000,000 default.
  png_set_user_limits(*png, 0x7fffffff, 0x7fffffff);
  return 1;
}

static void png_fill_header(png_structp png, png_infop info, folio_image_result *result) {
  result->width = png_get_image_width(png, info);
  result->height = png_get_image_height(png, info);
  result->color_type = png_get_color_type(png, info);
  result->bit_depth = png_get_bit_depth(png, info);
  result->is_interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
}

int32_t folio_png_probe(const uint8_t *data, size_t size, folio_image_result *result) {
  folio_result_reset(result);
  if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
    return folio_fail(result, size < 8 ? FOLIO_IMAGE_TRUNCATED : FOLIO_IMAGE_CORRUPT, "not a PNG signature");
  }
  png_source source = {data, size, 0, 0, result};
  png_structp png = NULL;
  png_infop info = NULL;
  if (!png_open(&source, &png, &info)) return result->code;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, NULL);
    return result->code ? result->code : folio_fail(result, FOLIO_IMAGE_CORRUPT, "libpng error");
  }
  png_read_info(png, info);
  png_fill_header(png, info, result);
  png_destroy_read_struct(&png, &info, NULL);
  return FOLIO_IMAGE_OK;
}

int32_t folio_png_decode_rgb(const uint8_t *data, size_t size, uint8_t *out, size_t out_size,
                             folio_image_result *result) {
  folio_result_reset(result);
  if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
    return folio_fail(result, size < 8 ? FOLIO_IMAGE_TRUNCATED : FOLIO_IMAGE_CORRUPT, "not a PNG signature");
  }
  png_source source = {data, size, 0, 0, result};
  png_structp png = NULL;
  png_infop info = NULL;
  if (!png_open(&source, &png, &info)) return result->code;
  // Assigned after setjmp, so volatile: the error branch must see their current values to free them.
  uint8_t *volatile scratch = NULL;
  png_bytep *volatile rows = NULL;
  if (setjmp(png_jmpbuf(png))) {
    free(rows);
    free(scratch);
    png_destroy_read_struct(&png, &info, NULL);
    return result->code ? result->code : folio_fail(result, FOLIO_IMAGE_CORRUPT, "libpng error");
  }
  png_read_info(png, info);
  png_fill_header(png, info, result);
  size_t width = result->width, height = result->height;
  if (width == 0 || height == 0 || out_size / 3 / width != height || out_size % (3 * width) != 0) {
    png_destroy_read_struct(&png, &info, NULL);
    return folio_fail(result, FOLIO_IMAGE_BAD_ARGUMENT, "output buffer does not match the PNG dimensions");
  }

  // Normalise every colour type and depth to 8-bit RGB or RGBA, the way Pillow reads them: 16-bit samples keep
  // their high byte (Pillow's "RGB;16B"/"RGBA;16B"/"LA;16B" raw modes), low-depth gray scales by bit replication
  // (0x55, 0x11 multipliers, as Pillow's "L;2"/"L;4"), palettes expand, tRNS becomes an alpha channel.
  int color_type = result->color_type;
  if (result->bit_depth == 16) png_set_strip_16(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && result->bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  (void)png_set_interlace_handling(png);
  png_read_update_info(png, info);

  size_t channels = png_get_channels(png, info);
  if ((channels != 3 && channels != 4) || png_get_bit_depth(png, info) != 8 ||
      png_get_rowbytes(png, info) != width * channels) {
    png_destroy_read_struct(&png, &info, NULL);
    return folio_fail(result, FOLIO_IMAGE_UNSUPPORTED, "unexpected PNG layout after transformation");
  }
  uint8_t *target = out;
  if (channels == 4) {
    scratch = (uint8_t *)malloc(width * height * 4);
    if (!scratch) {
      png_destroy_read_struct(&png, &info, NULL);
      return folio_fail(result, FOLIO_IMAGE_NO_MEMORY, "out of memory for the RGBA scratch buffer");
    }
    target = scratch;
  }
  rows = (png_bytep *)malloc(height * sizeof(png_bytep));
  if (!rows) {
    free(scratch);
    png_destroy_read_struct(&png, &info, NULL);
    return folio_fail(result, FOLIO_IMAGE_NO_MEMORY, "out of memory for row pointers");
  }
  for (size_t y = 0; y < height; y++) rows[y] = target + y * width * channels;
  png_read_image(png, rows);  // Handles all Adam7 passes; no png_read_end, so a missing IEND is tolerated.

  if (channels == 4) {
    const uint8_t *src = scratch;
    size_t count = width * height;
    for (size_t i = 0; i < count; i++, src += 4, out += 3) {
      uint32_t alpha = src[3];
      out[0] = folio_over_white(src[0], alpha);
      out[1] = folio_over_white(src[1], alpha);
      out[2] = folio_over_white(src[2], alpha);
    }
  }
  free(rows);
  free(scratch);
  png_destroy_read_struct(&png, &info, NULL);
  return FOLIO_IMAGE_OK;
}
