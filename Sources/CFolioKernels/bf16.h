// bf16 conversions shared by the kernels (internal; not part of the module's public header).
#pragma once
#include <stdint.h>
#include <string.h>

/// Exact bf16 → fp32 (bf16 is the top half of an fp32).
static inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/// fp32 → bf16, rounding to nearest even as torch does (NaN stays NaN).
static inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7FFFFFFF) > 0x7F800000) return 0x7FC0;
  return (uint16_t)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}
