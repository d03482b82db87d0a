// Shared helpers for the CFolioImage shim (not part of the public header).
#pragma once

#include <stdio.h>
#include <string.h>

#include "CFolioImage.h"

/// Resets a result to "OK, nothing known yet".
static inline void folio_result_reset(folio_image_result *result) {
  memset(result, 0, sizeof(*result));
}

/// Records a failure code and message; returns the code for `return folio_fail(...)`.
static inline int32_t folio_fail(folio_image_result *result, int32_t code, const char *message) {
  result->code = code;
  snprintf(result->message, sizeof(result->message), "%s", message ? message : "unknown error");
  return code;
}

/// Composites one 8-bit sample with alpha onto white exactly as Pillow's `Image.alpha_composite` with an opaque
/// white destination does (libImaging/AlphaComposite.c: coef1 = a, coef2 = 255 - a, rounded divide by 255).
/// Verified bit-exact against Pillow 13 for all 65536 (value, alpha) pairs.
static inline uint8_t folio_over_white(uint32_t value, uint32_t alpha) {
  uint32_t x = value * alpha + 255u * (255u - alpha) + 128u;
  return (uint8_t)(((x >> 8) + x) >> 8);
}
