// JPEG decoding through libjpeg(-turbo); error_exit longjmps back into these functions only.
#include <setjmp.h>
#include <stdlib.h>
#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>

#include "shim_common.h"

/// libjpeg error manager extended with the jump target and our result.
typedef struct {
  struct jpeg_error_mgr base;
  jmp_buf jump;
  int truncated;
  folio_image_result *result;
} jpeg_error_state;

static void jpeg_error_exit(j_common_ptr cinfo) {
  jpeg_error_state *state = (jpeg_error_state *)cinfo->err;
  char buffer[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, buffer);
  int32_t code = state->truncated ? FOLIO_IMAGE_TRUNCATED : FOLIO_IMAGE_CORRUPT;
  switch (cinfo->err->msg_code) {
    case JERR_IMAGE_TOO_BIG:
    case JERR_WIDTH_OVERFLOW:
      code = FOLIO_IMAGE_TOO_LARGE;
      break;
    case JERR_OUT_OF_MEMORY:
      code = FOLIO_IMAGE_NO_MEMORY;
      break;
    case JERR_BAD_PRECISION:     // 12-/16-bit samples: the 8-bit libjpeg API cannot return them.
    case JERR_SOF_UNSUPPORTED:   // e.g. lossless or hierarchical JPEG.
    case JERR_NOT_COMPILED:
      code = FOLIO_IMAGE_UNSUPPORTED;
      break;
    default:
      break;
  }
  folio_fail(state->result, code, buffer);
  longjmp(state->jump, 1);
}

static void jpeg_output_message(j_common_ptr cinfo) {
  (void)cinfo;  // Warnings ("extraneous bytes before marker" ...) are ignored, as Pillow does; nothing to stderr.
}

/// Source manager over a memory buffer. Unlike jpeg_mem_src, running out of data is an error (libjpeg's default
/// inserts a fake EOI and returns a gray-filled image; Pillow reports "image file is truncated").
static void source_init(j_decompress_ptr cinfo) { (void)cinfo; }

static boolean source_fill(j_decompress_ptr cinfo) {
  jpeg_error_state *state = (jpeg_error_state *)cinfo->err;
  state->truncated = 1;
  ERREXIT(cinfo, JERR_INPUT_EOF);
  return FALSE;
}

static void source_skip(j_decompress_ptr cinfo, long count) {
  struct jpeg_source_mgr *source = cinfo->src;
  if (count <= 0) return;
  if ((size_t)count > source->bytes_in_buffer) {
    (void)source_fill(cinfo);
    return;
  }
  source->next_input_byte += count;
  source->bytes_in_buffer -= (size_t)count;
}

static void source_term(j_decompress_ptr cinfo) { (void)cinfo; }

static void jpeg_fill_header(j_decompress_ptr cinfo, folio_image_result *result) {
  result->width = cinfo->image_width;
  result->height = cinfo->image_height;
  result->color_type = cinfo->num_components;
  result->bit_depth = cinfo->data_precision;
  result->is_interlaced = jpeg_has_multiple_scans(cinfo) ? 1 : 0;
}

/// Shared body of probe and decode: `out == NULL` means probe only.
static int32_t jpeg_run(const uint8_t *data, size_t size, uint8_t *out, size_t out_size,
                        folio_image_result *result) {
  folio_result_reset(result);
  if (size < 3 || data[0] != 0xFF || data[1] != 0xD8) {
    return folio_fail(result, size < 3 ? FOLIO_IMAGE_TRUNCATED : FOLIO_IMAGE_CORRUPT, "not a JPEG signature");
  }
  struct jpeg_decompress_struct cinfo;
  jpeg_error_state error;
  struct jpeg_source_mgr source;
  memset(&cinfo, 0, sizeof(cinfo));
  cinfo.err = jpeg_std_error(&error.base);
  error.base.error_exit = jpeg_error_exit;
  error.base.output_message = jpeg_output_message;
  error.truncated = 0;
  error.result = result;
  if (setjmp(error.jump)) {
    jpeg_destroy_decompress(&cinfo);  // Frees every pool allocation (row buffers included).
    return result->code ? result->code : folio_fail(result, FOLIO_IMAGE_CORRUPT, "libjpeg error");
  }
  jpeg_create_decompress(&cinfo);
  source.next_input_byte = data;
  source.bytes_in_buffer = size;
  source.init_source = source_init;
  source.fill_input_buffer = source_fill;
  source.skip_input_data = source_skip;
  source.resync_to_restart = jpeg_resync_to_restart;
  source.term_source = source_term;
  cinfo.src = &source;

  if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
    jpeg_destroy_decompress(&cinfo);
    return folio_fail(result, FOLIO_IMAGE_CORRUPT, "JPEG has no image (tables only)");
  }
  jpeg_fill_header(&cinfo, result);
  if (!out) {
    jpeg_destroy_decompress(&cinfo);
    return FOLIO_IMAGE_OK;
  }
  size_t width = result->width, height = result->height;
  if (width == 0 || height == 0 || out_size / 3 / width != height || out_size % (3 * width) != 0) {
    jpeg_destroy_decompress(&cinfo);
    return folio_fail(result, FOLIO_IMAGE_BAD_ARGUMENT, "output buffer does not match the JPEG dimensions");
  }

  int is_cmyk = 0;
  switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
      cinfo.out_color_space = JCS_RGB;  // Gray is replicated, exactly like Pillow's L -> RGB.
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      cinfo.out_color_space = JCS_CMYK;  // libjpeg turns YCCK into (Adobe-inverted) CMYK.
      is_cmyk = 1;
      break;
    default:
      jpeg_destroy_decompress(&cinfo);
      return folio_fail(result, FOLIO_IMAGE_UNSUPPORTED, "unsupported JPEG colour space");
  }
  // Pillow leaves libjpeg's defaults (JDCT_ISLOW, fancy upsampling, block smoothing); so do we.
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_width != width || cinfo.output_height != height ||
      cinfo.output_components != (is_cmyk ? 4 : 3)) {
    jpeg_destroy_decompress(&cinfo);
    return folio_fail(result, FOLIO_IMAGE_UNSUPPORTED, "unexpected JPEG output layout");
  }
  JSAMPARRAY cmyk_row = NULL;
  if (is_cmyk) {
    cmyk_row = (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE, (JDIMENSION)(width * 4), 1);
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    uint8_t *row = out + (size_t)cinfo.output_scanline * width * 3;
    if (!is_cmyk) {
      JSAMPROW rows[1] = {row};
      (void)jpeg_read_scanlines(&cinfo, rows, 1);
      continue;
    }
    (void)jpeg_read_scanlines(&cinfo, cmyk_row, 1);
    const uint8_t *src = cmyk_row[0];
    for (size_t x = 0; x < width; x++, src += 4, row += 3) {
      // Pillow reads CMYK JPEGs as "CMYK;I" (Adobe stores inverted ink), then Convert.c cmyk2rgb:
      // nk = 255 - k; out = clip(nk - muldiv255(c, nk)). With c = 255 - raw_c and nk = raw_k.
      uint32_t nk = src[3];
      for (int ch = 0; ch < 3; ch++) {
        uint32_t t = (255u - src[ch]) * nk + 128u;
        uint32_t ink = ((t >> 8) + t) >> 8;
        row[ch] = (uint8_t)(nk >= ink ? nk - ink : 0);
      }
    }
  }
  // No jpeg_finish_decompress: every row is in, and a missing EOI after the last scan is tolerated.
  jpeg_destroy_decompress(&cinfo);
  return FOLIO_IMAGE_OK;
}

int32_t folio_jpeg_probe(const uint8_t *data, size_t size, folio_image_result *result) {
  return jpeg_run(data, size, NULL, 0, result);
}

int32_t folio_jpeg_decode_rgb(const uint8_t *data, size_t size, uint8_t *out, size_t out_size,
                              folio_image_result *result) {
  if (!out) {
    folio_result_reset(result);
    return folio_fail(result, FOLIO_IMAGE_BAD_ARGUMENT, "no output buffer");
  }
  return jpeg_run(data, size, out, out_size, result);
}
