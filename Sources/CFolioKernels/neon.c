// NEON kernels for arm64, taken on FOLIO_PATH_NEON (NEON is baseline on aarch64; the int8 kernel also needs the
// dot-product extension, checked at run time). Each is the twin of a portable kernel in another file and computes
// the same thing up to the order of fp32 sums; scripts/check_neon_kernels.sh compares them under qemu.
//
// Register budget: 32 128-bit registers. The blocks below keep 12-16 accumulators, the activations they share and
// a few temporaries in registers; fixed sizes (tokens per block, weight type, code width) are parameters of
// always-inline functions called with constants, so loops over them unroll and the accumulators are not spilled.
#include "neon.h"

#if defined(__aarch64__)
#include "bf16.h"

#include <arm_neon.h>
#include <math.h>
#include <string.h>

#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#define NEON_INLINE __attribute__((always_inline)) static inline
// SDOT is optional before Armv8.4: the int8 kernel is compiled for it and runs only where the CPU reports it.
#if defined(__ARM_FEATURE_DOTPROD)
#define DOT_TARGET
#else
#define DOT_TARGET __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

// ---------------------------------------------------------------------------------------------------------------
// Linear rows (linear.c): y[t·ldy + r] = Σ_i x[t·cols + i] · w[r·row_stride + i]
// ---------------------------------------------------------------------------------------------------------------

enum { TOKEN_TILE = 48 };

// Columns [i, i + 4) of a row of `type` as fp32 (bf16: a 16-bit shift; f16: the hardware conversion, exact).
NEON_INLINE float32x4_t load4(const void *row, const int type, size_t i) {
  if (type == FOLIO_WEIGHT_BF16) return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)row + i), 16));
  if (type == FOLIO_WEIGHT_F16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)row + i)));
  return vld1q_f32((const float *)row + i);
}

// Columns [i, i + 8) as two fp32 vectors (one 16-byte load for the 16-bit types).
NEON_INLINE void load8(const void *row, const int type, size_t i, float32x4_t *lo, float32x4_t *hi) {
  if (type == FOLIO_WEIGHT_F32) {
    *lo = vld1q_f32((const float *)row + i);
    *hi = vld1q_f32((const float *)row + i + 4);
    return;
  }
  uint16x8_t h = vld1q_u16((const uint16_t *)row + i);
  if (type == FOLIO_WEIGHT_BF16) {
    *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
    *hi = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
  } else {
    float16x8_t f = vreinterpretq_f16_u16(h);
    *lo = vcvt_f32_f16(vget_low_f16(f));
    *hi = vcvt_high_f32_f16(f);
  }
}

static inline float weight_scalar(const void *row, int type, size_t i) {
  if (type == FOLIO_WEIGHT_BF16) return bf16_to_f32(((const uint16_t *)row)[i]);
  if (type == FOLIO_WEIGHT_F16) {
    __fp16 h;
    memcpy(&h, (const uint16_t *)row + i, sizeof h);
    return (float)h;
  }
  return ((const float *)row)[i];
}

// Four rows times NT (1-4) tokens whose activations start at x, `cols` floats apart; writes y[t·ldy + r] for
// r < nr (rows[nr..3] repeat a real row and are not stored). acc[r][j] is row r's sum for token j, except that one
// token uses j for four column quarters (16 columns a step, four independent sums per row) and two tokens
// j = 2t + half (8 columns a step).
NEON_INLINE void linear_block(const float *x, size_t cols, const char *const rows[4], size_t nr, const int type,
                              float *y, size_t ldy, const int NT) {
  float32x4_t acc[4][4];
  for (int r = 0; r < 4; r++)
    for (int j = 0; j < 4; j++) acc[r][j] = vdupq_n_f32(0);
  size_t i = 0;
  if (NT == 1) {
    for (; i + 16 <= cols; i += 16) {
      float32x4_t x0 = vld1q_f32(x + i), x1 = vld1q_f32(x + i + 4), x2 = vld1q_f32(x + i + 8),
                  x3 = vld1q_f32(x + i + 12);
      for (int r = 0; r < 4; r++) {
        float32x4_t w0, w1, w2, w3;
        load8(rows[r], type, i, &w0, &w1);
        load8(rows[r], type, i + 8, &w2, &w3);
        acc[r][0] = vfmaq_f32(acc[r][0], w0, x0);
        acc[r][1] = vfmaq_f32(acc[r][1], w1, x1);
        acc[r][2] = vfmaq_f32(acc[r][2], w2, x2);
        acc[r][3] = vfmaq_f32(acc[r][3], w3, x3);
      }
    }
  } else if (NT == 2) {
    for (; i + 8 <= cols; i += 8) {
      float32x4_t xa0 = vld1q_f32(x + i), xa1 = vld1q_f32(x + i + 4);
      float32x4_t xb0 = vld1q_f32(x + cols + i), xb1 = vld1q_f32(x + cols + i + 4);
      for (int r = 0; r < 4; r++) {
        float32x4_t w0, w1;
        load8(rows[r], type, i, &w0, &w1);
        acc[r][0] = vfmaq_f32(acc[r][0], w0, xa0);
        acc[r][1] = vfmaq_f32(acc[r][1], w1, xa1);
        acc[r][2] = vfmaq_f32(acc[r][2], w0, xb0);
        acc[r][3] = vfmaq_f32(acc[r][3], w1, xb1);
      }
    }
  } else {
    for (; i + 8 <= cols; i += 8) {
      float32x4_t x0[4], x1[4];
      for (int t = 0; t < NT; t++) {
        x0[t] = vld1q_f32(x + t * cols + i);
        x1[t] = vld1q_f32(x + t * cols + i + 4);
      }
      for (int r = 0; r < 4; r++) {
        float32x4_t w0, w1;
        load8(rows[r], type, i, &w0, &w1);
        for (int t = 0; t < NT; t++) acc[r][t] = vfmaq_f32(vfmaq_f32(acc[r][t], w0, x0[t]), w1, x1[t]);
      }
    }
  }
  // Column tail: four at a time into each (row, token)'s first sum, then one at a time after the reduction.
  for (; i + 4 <= cols; i += 4) {
    for (int r = 0; r < 4; r++) {
      float32x4_t wv = load4(rows[r], type, i);
      for (int t = 0; t < NT; t++) {
        int j = NT == 2 ? 2 * t : t;
        acc[r][j] = vfmaq_f32(acc[r][j], wv, vld1q_f32(x + t * cols + i));
      }
    }
  }
  for (int r = 0; r < 4; r++) {
    if ((size_t)r >= nr) break;
    for (int t = 0; t < NT; t++) {
      float32x4_t v = NT == 1   ? vaddq_f32(vaddq_f32(acc[r][0], acc[r][1]), vaddq_f32(acc[r][2], acc[r][3]))
                      : NT == 2 ? vaddq_f32(acc[r][2 * t], acc[r][2 * t + 1])
                                : acc[r][t];
      float s = vaddvq_f32(v);
      for (size_t k = i; k < cols; k++) s += x[t * cols + k] * weight_scalar(rows[r], type, k);
      y[t * ldy + r] = s;
    }
  }
}

NEON_INLINE void linear_typed(const float *x, size_t tokens, const void *w, const int type, size_t cols,
                              size_t row_stride, size_t rb, size_t re, float *y, size_t ldy) {
  size_t stride = row_stride * (type == FOLIO_WEIGHT_F32 ? sizeof(float) : sizeof(uint16_t));
  // Token tiles keep their activations in cache while the rows stream past once per tile.
  for (size_t t0 = 0; t0 < tokens; t0 += TOKEN_TILE) {
    size_t tile = tokens - t0 < TOKEN_TILE ? tokens - t0 : TOKEN_TILE;
    for (size_t r = rb; r < re; r += 4) {
      size_t nr = re - r < 4 ? re - r : 4;
      const char *rows[4];
      for (size_t k = 0; k < 4; k++) rows[k] = (const char *)w + (r + (k < nr ? k : 0)) * stride;
      for (size_t t = 0; t < tile; t += 4) {
        const float *xt = x + (t0 + t) * cols;
        float *yt = y + (t0 + t) * ldy + r;
        switch (tile - t < 4 ? tile - t : 4) {
          case 1: linear_block(xt, cols, rows, nr, type, yt, ldy, 1); break;
          case 2: linear_block(xt, cols, rows, nr, type, yt, ldy, 2); break;
          case 3: linear_block(xt, cols, rows, nr, type, yt, ldy, 3); break;
          default: linear_block(xt, cols, rows, nr, type, yt, ldy, 4); break;
        }
      }
    }
  }
}

void folio_neon_linear(const float *x, size_t tokens, const void *w, int type, size_t cols, size_t row_stride,
                       size_t row_begin, size_t row_end, float *y, size_t ldy) {
  switch (type) {
    case FOLIO_WEIGHT_BF16:
      linear_typed(x, tokens, w, FOLIO_WEIGHT_BF16, cols, row_stride, row_begin, row_end, y, ldy);
      return;
    case FOLIO_WEIGHT_F16:
      linear_typed(x, tokens, w, FOLIO_WEIGHT_F16, cols, row_stride, row_begin, row_end, y, ldy);
      return;
    default: linear_typed(x, tokens, w, FOLIO_WEIGHT_F32, cols, row_stride, row_begin, row_end, y, ldy); return;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Weighted rows (linear.c): out[g·cols + c] = Σ_s p[g·count + s] · v[s·row_stride + c]
// ---------------------------------------------------------------------------------------------------------------

// NG (1-4) groups over column slices held in registers across all rows: 32 columns for one or two groups, 16 for
// three or four (at most 16 accumulators). Returns the first column it did not cover.
NEON_INLINE size_t weighted_slices(const float *p, size_t count, const float *v, size_t row_stride, size_t cols,
                                   float *out, const int NG) {
  const int width = NG <= 2 ? 8 : 4;  // vectors per slice
  size_t c = 0;
  for (; c + 4 * (size_t)width <= cols; c += 4 * (size_t)width) {
    float32x4_t acc[4][8];
    for (int g = 0; g < NG; g++)
      for (int b = 0; b < width; b++) acc[g][b] = vdupq_n_f32(0);
    for (size_t s = 0; s < count; s++) {
      const float *row = v + s * row_stride + c;
      float32x4_t rv[8];
      for (int b = 0; b < width; b++) rv[b] = vld1q_f32(row + 4 * b);
      for (int g = 0; g < NG; g++) {
        float weight = p[g * count + s];
        for (int b = 0; b < width; b++) acc[g][b] = vfmaq_n_f32(acc[g][b], rv[b], weight);
      }
    }
    for (int g = 0; g < NG; g++)
      for (int b = 0; b < width; b++) vst1q_f32(out + g * cols + c + 4 * b, acc[g][b]);
  }
  return c;
}

void folio_neon_weighted_rows(const float *p, size_t groups, size_t count, const float *v, size_t row_stride,
                              size_t cols, float *out) {
  for (size_t g0 = 0; g0 < groups; g0 += 4) {
    size_t ng = groups - g0 < 4 ? groups - g0 : 4;
    const float *pg = p + g0 * count;
    float *og = out + g0 * cols;
    size_t c;
    switch (ng) {
      case 1: c = weighted_slices(pg, count, v, row_stride, cols, og, 1); break;
      case 2: c = weighted_slices(pg, count, v, row_stride, cols, og, 2); break;
      case 3: c = weighted_slices(pg, count, v, row_stride, cols, og, 3); break;
      default: c = weighted_slices(pg, count, v, row_stride, cols, og, 4); break;
    }
    for (; c + 4 <= cols; c += 4) {
      for (size_t g = 0; g < ng; g++) {
        float32x4_t acc = vdupq_n_f32(0);
        for (size_t s = 0; s < count; s++) acc = vfmaq_n_f32(acc, vld1q_f32(v + s * row_stride + c), pg[g * count + s]);
        vst1q_f32(og + g * cols + c, acc);
      }
    }
    for (; c < cols; c++) {
      for (size_t g = 0; g < ng; g++) {
        float sum = 0;
        for (size_t s = 0; s < count; s++) sum += pg[g * count + s] * v[s * row_stride + c];
        og[g * cols + c] = sum;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// bf16 row panels (panels.c): 16-row blocks of 32-column chunks; a 32-bit lane holds columns 2i (low half) and
// 2i+1 (high half), multiplied by the even and odd halves of each chunk of the split activations.
// ---------------------------------------------------------------------------------------------------------------

enum { PANEL_ROWS = 16, CHUNK = 32 };

void folio_neon_bf16_panels(const float *xeo, size_t tokens, const uint16_t *panels, size_t rows, size_t cols,
                            size_t bb, size_t be, float *y, size_t ldy) {
  size_t chunks = (cols + CHUNK - 1) / CHUNK, width = chunks * CHUNK;
  const uint32x4_t high = vdupq_n_u32(0xFFFF0000u);
  for (size_t b = bb; b < be; b++) {
    const uint16_t *block = panels + b * chunks * PANEL_ROWS * CHUNK;
    for (size_t t = 0; t < tokens; t++) {
      float32x4_t acc[PANEL_ROWS];  // one per row: 16 independent sums
      for (int k = 0; k < PANEL_ROWS; k++) acc[k] = vdupq_n_f32(0);
      const float *xt = xeo + t * width;
      for (size_t c = 0; c < chunks; c++) {
        const float *xc = xt + c * CHUNK;
        float32x4_t xe0 = vld1q_f32(xc), xe1 = vld1q_f32(xc + 4), xe2 = vld1q_f32(xc + 8), xe3 = vld1q_f32(xc + 12);
        float32x4_t xo0 = vld1q_f32(xc + 16), xo1 = vld1q_f32(xc + 20), xo2 = vld1q_f32(xc + 24),
                    xo3 = vld1q_f32(xc + 28);
        const uint16_t *w = block + c * PANEL_ROWS * CHUNK;
        for (int k = 0; k < PANEL_ROWS; k++) {
          const uint16_t *wk = w + k * CHUNK;
          uint32x4_t v0 = vreinterpretq_u32_u16(vld1q_u16(wk)), v1 = vreinterpretq_u32_u16(vld1q_u16(wk + 8));
          uint32x4_t v2 = vreinterpretq_u32_u16(vld1q_u16(wk + 16)), v3 = vreinterpretq_u32_u16(vld1q_u16(wk + 24));
          float32x4_t a = acc[k];
          a = vfmaq_f32(a, vreinterpretq_f32_u32(vshlq_n_u32(v0, 16)), xe0);
          a = vfmaq_f32(a, vreinterpretq_f32_u32(vandq_u32(v0, high)), xo0);
          a = vfmaq_f32(a, vreinterpretq_f32_u32(vshlq_n_u32(v1, 16)), xe1);
          a = vfmaq_f32(a, vreinterpretq_f32_u32(vandq_u32(v1, high)), xo1);
          a = vfmaq_f32(a, vreinterpretq_f32_u32(vshlq_n_u32(v2, 16)), xe2);
          a = vfmaq_f32(a, vreinterpretq_f32_u32(vandq_u32(v2, high)), xo2);
          a = vfmaq_f32(a, vreinterpretq_f32_u32(vshlq_n_u32(v3, 16)), xe3);
          acc[k] = vfmaq_f32(a, vreinterpretq_f32_u32(vandq_u32(v3, high)), xo3);
        }
      }
      // Pairwise adds leave rows 4q..4q+3's sums in the lanes of one vector.
      float sums[PANEL_ROWS];
      for (int q = 0; q < 4; q++) {
        float32x4_t s = vpaddq_f32(vpaddq_f32(acc[4 * q], acc[4 * q + 1]), vpaddq_f32(acc[4 * q + 2], acc[4 * q + 3]));
        vst1q_f32(sums + 4 * q, s);
      }
      float *yt = y + t * ldy;
      for (size_t k = 0; k < PANEL_ROWS && b * PANEL_ROWS + k < rows; k++) yt[b * PANEL_ROWS + k] = sums[k];
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Affine-quantized weights (affine.c): per group, dot = Σ x·q and sum = Σ x, total += scale·dot + bias·sum
// ---------------------------------------------------------------------------------------------------------------

int folio_neon_affine_supports(const folio_affine_weights *w) {
  return w->group_size > 0 && w->group_size % 32 == 0 && (w->bits == 4 || w->bits == 6 || w->bits == 8);
}

// Eight codes (bytes) as two fp32 vectors.
NEON_INLINE void widen8(uint8x8_t b, float32x4_t *lo, float32x4_t *hi) {
  uint16x8_t h = vmovl_u8(b);
  *lo = vcvtq_f32_u32(vmovl_u16(vget_low_u16(h)));
  *hi = vcvtq_f32_u32(vmovl_high_u16(h));
}

// Four rows (rows[nr..3] repeat a real row) times one token, 32 columns a step. The activations of a step are
// loaded once in the order the codes unpack in: 8-bit in order, 4-bit split into even columns (low nibbles) and
// odd ones (high nibbles), 6-bit (four codes in three bytes) split by column mod 4.
NEON_INLINE void affine_block(const float *xt, const folio_affine_weights *w, size_t cols, const size_t row[4],
                              size_t nr, float *y, const int bits) {
  size_t gs = w->group_size, groups = cols / gs, row_bytes = cols * (size_t)bits / 8;
  const uint8_t *codes[4];
  for (int k = 0; k < 4; k++) codes[k] = (const uint8_t *)w->codes + row[k] * row_bytes;
  float32x4_t acc[4];
  for (int k = 0; k < 4; k++) acc[k] = vdupq_n_f32(0);
  const uint8x16_t low = vdupq_n_u8(0x0F);
  const uint8x8_t six = vdup_n_u8(0x3F), four = vdup_n_u8(0x0F), two = vdup_n_u8(0x03);
  for (size_t g = 0; g < groups; g++) {
    float32x4_t dot[4][2], sum0 = vdupq_n_f32(0), sum1 = vdupq_n_f32(0);
    for (int k = 0; k < 4; k++) dot[k][0] = dot[k][1] = vdupq_n_f32(0);
    for (size_t i = g * gs; i < (g + 1) * gs; i += 32) {
      float32x4_t xv[8];  // the step's activations, in the order its codes unpack
      if (bits == 8) {
        for (int j = 0; j < 8; j++) xv[j] = vld1q_f32(xt + i + 4 * j);
      } else if (bits == 4) {
        for (int j = 0; j < 4; j++) {
          float32x4x2_t eo = vld2q_f32(xt + i + 8 * j);
          xv[j] = eo.val[0];
          xv[4 + j] = eo.val[1];
        }
      } else {
        float32x4x4_t a = vld4q_f32(xt + i), b = vld4q_f32(xt + i + 16);
        for (int j = 0; j < 4; j++) {
          xv[2 * j] = a.val[j];
          xv[2 * j + 1] = b.val[j];
        }
      }
      sum0 = vaddq_f32(sum0, vaddq_f32(vaddq_f32(xv[0], xv[1]), vaddq_f32(xv[2], xv[3])));
      sum1 = vaddq_f32(sum1, vaddq_f32(vaddq_f32(xv[4], xv[5]), vaddq_f32(xv[6], xv[7])));
      for (int k = 0; k < 4; k++) {
        uint8x8_t part[4];  // eight codes each, in xv's order: part[j] widens to xv[2j], xv[2j + 1]
        if (bits == 8) {
          uint8x16_t b0 = vld1q_u8(codes[k] + i), b1 = vld1q_u8(codes[k] + i + 16);
          part[0] = vget_low_u8(b0);
          part[1] = vget_high_u8(b0);
          part[2] = vget_low_u8(b1);
          part[3] = vget_high_u8(b1);
        } else if (bits == 4) {
          uint8x16_t b = vld1q_u8(codes[k] + i / 2);
          uint8x16_t lo = vandq_u8(b, low), hi = vshrq_n_u8(b, 4);
          part[0] = vget_low_u8(lo);
          part[1] = vget_high_u8(lo);
          part[2] = vget_low_u8(hi);
          part[3] = vget_high_u8(hi);
        } else {
          // Bytes b0 b1 b2 hold codes 4j..4j+3 LSB-first: 6 | 2+4 | 4+2 | 6 bits.
          uint8x8x3_t b = vld3_u8(codes[k] + i / 4 * 3);
          part[0] = vand_u8(b.val[0], six);
          part[1] = vorr_u8(vshr_n_u8(b.val[0], 6), vshl_n_u8(vand_u8(b.val[1], four), 2));
          part[2] = vorr_u8(vshr_n_u8(b.val[1], 4), vshl_n_u8(vand_u8(b.val[2], two), 4));
          part[3] = vshr_n_u8(b.val[2], 2);
        }
        for (int j = 0; j < 4; j++) {
          float32x4_t c0, c1;
          widen8(part[j], &c0, &c1);
          dot[k][0] = vfmaq_f32(dot[k][0], c0, xv[2 * j]);
          dot[k][1] = vfmaq_f32(dot[k][1], c1, xv[2 * j + 1]);
        }
      }
    }
    float32x4_t sum = vaddq_f32(sum0, sum1);
    for (int k = 0; k < 4; k++) {
      acc[k] = vfmaq_n_f32(acc[k], vaddq_f32(dot[k][0], dot[k][1]), w->scales[row[k] * groups + g]);
      acc[k] = vfmaq_n_f32(acc[k], sum, w->biases[row[k] * groups + g]);
    }
  }
  for (int k = 0; k < 4; k++) {
    if ((size_t)k >= nr) break;
    y[k] = vaddvq_f32(acc[k]);
  }
}

NEON_INLINE void affine_bits(const float *x, size_t tokens, const folio_affine_weights *w, size_t cols, size_t rb,
                             size_t re, float *y, size_t ldy, const int bits) {
  for (size_t r = rb; r < re; r += 4) {
    size_t nr = re - r < 4 ? re - r : 4;
    size_t row[4];
    for (size_t k = 0; k < 4; k++) row[k] = r + (k < nr ? k : 0);
    for (size_t t = 0; t < tokens; t++) affine_block(x + t * cols, w, cols, row, nr, y + t * ldy + r, bits);
  }
}

void folio_neon_affine(const float *x, size_t tokens, const folio_affine_weights *w, size_t cols, size_t row_begin,
                       size_t row_end, float *y, size_t ldy) {
  switch (w->bits) {
    case 4: affine_bits(x, tokens, w, cols, row_begin, row_end, y, ldy, 4); return;
    case 6: affine_bits(x, tokens, w, cols, row_begin, row_end, y, ldy, 6); return;
    default: affine_bits(x, tokens, w, cols, row_begin, row_end, y, ldy, 8); return;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// int8 activations (interleaved.c): symmetric per group, q = round-to-nearest-even(x · 127 / max |x|)
// ---------------------------------------------------------------------------------------------------------------

void folio_neon_quantize_activations(const float *x, size_t tokens, size_t cols, size_t group_size, int8_t *q,
                                     float *scales, float *sums) {
  size_t groups = cols / group_size;
  for (size_t t = 0; t < tokens; t++) {
    for (size_t g = 0; g < groups; g++) {
      const float *xg = x + t * cols + g * group_size;
      int8_t *qg = q + t * cols + g * group_size;
      // maxnm ignores NaN as fmaxf does.
      float32x4_t amax0 = vdupq_n_f32(0), amax1 = vdupq_n_f32(0), sum0 = vdupq_n_f32(0), sum1 = vdupq_n_f32(0);
      size_t i = 0;
      for (; i + 8 <= group_size; i += 8) {
        float32x4_t a = vld1q_f32(xg + i), b = vld1q_f32(xg + i + 4);
        amax0 = vmaxnmq_f32(amax0, vabsq_f32(a));
        amax1 = vmaxnmq_f32(amax1, vabsq_f32(b));
        sum0 = vaddq_f32(sum0, a);
        sum1 = vaddq_f32(sum1, b);
      }
      float amax = vmaxnmvq_f32(vmaxnmq_f32(amax0, amax1)), sum = vaddvq_f32(vaddq_f32(sum0, sum1));
      for (; i < group_size; i++) {
        amax = fmaxf(amax, fabsf(xg[i]));
        sum += xg[i];
      }
      float inverse = amax > 0 ? 127.0f / amax : 0;
      float32x4_t scale = vdupq_n_f32(inverse);
      i = 0;
      for (; i + 16 <= group_size; i += 16) {
        int32x4_t n0 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(xg + i), scale));
        int32x4_t n1 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(xg + i + 4), scale));
        int32x4_t n2 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(xg + i + 8), scale));
        int32x4_t n3 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(xg + i + 12), scale));
        int16x8_t h0 = vcombine_s16(vqmovn_s32(n0), vqmovn_s32(n1)), h1 = vcombine_s16(vqmovn_s32(n2), vqmovn_s32(n3));
        vst1q_s8(qg + i, vcombine_s8(vqmovn_s16(h0), vqmovn_s16(h1)));
      }
      for (; i < group_size; i++) qg[i] = (int8_t)lrintf(xg[i] * inverse);
      scales[t * groups + g] = amax / 127.0f;
      sums[t * groups + g] = sum;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// int8 interleaved weights (interleaved.c) with SDOT
//
// A 64-byte step is four registers of 4 rows × 4 columns: register j holds rows 4j..4j+3, lane i of it row 4j+i's
// codes for four consecutive columns. `vdotq_laneq_s32(sum, codes, x16, l)` adds to each 32-bit lane the dot
// product of its four codes with activation bytes 4l..4l+3 of x16, so one 16-byte load of activations serves four
// 8-bit steps (two 4-bit steps: low nibbles lanes 0 and 2, high nibbles 1 and 3) and the 16 rows' int32 sums stay
// in four registers without horizontal reductions. SDOT is signed × signed: 4-bit codes (0..15) are int8 as they
// are; 8-bit codes (0..255) go in as c − 128 (the top bit flipped), and 128 · Σ (the group's int8 activations) is
// added back, so the int32 sums are exactly the portable kernel's.
// ---------------------------------------------------------------------------------------------------------------

enum { BLOCK_ROWS = 16, STEP_BYTES = 64, INT8_TOKENS = 4, TOKEN_CHUNK = 64 };

static int dot_product_support = -1;

int folio_neon_has_dot_product(void) {
  if (dot_product_support < 0) {
#if defined(__ARM_FEATURE_DOTPROD)
    dot_product_support = 1;
#elif defined(__linux__)
    dot_product_support = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
    int value = 0;
    size_t size = sizeof value;
    dot_product_support = sysctlbyname("hw.optional.arm.FEAT_DotProd", &value, &size, NULL, 0) == 0 && value != 0;
#else
    dot_product_support = 0;
#endif
  }
  return dot_product_support;
}

// Four registers of a step's codes, the 8-bit ones flipped to c − 128.
DOT_TARGET NEON_INLINE void load_step8(const uint8_t *c, int8x16_t s[4]) {
  const uint8x16_t flip = vdupq_n_u8(0x80);
  for (int j = 0; j < 4; j++) s[j] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(c + 16 * j), flip));
}

// A 4-bit step's low nibbles (its first four columns) and high nibbles (the next four).
DOT_TARGET NEON_INLINE void load_step4(const uint8_t *c, int8x16_t lo[4], int8x16_t hi[4]) {
  const uint8x16_t low = vdupq_n_u8(0x0F);
  for (int j = 0; j < 4; j++) {
    uint8x16_t v = vld1q_u8(c + 16 * j);
    lo[j] = vreinterpretq_s8_u8(vandq_u8(v, low));
    hi[j] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
  }
}

// d[j] += codes[j] · activation bytes 4·LANE..4·LANE+3 of X, for the four registers of a step (LANE a literal).
#define SDOT_STEP(d, codes, X, LANE)                         \
  do {                                                       \
    (d)[0] = vdotq_laneq_s32((d)[0], (codes)[0], X, LANE);   \
    (d)[1] = vdotq_laneq_s32((d)[1], (codes)[1], X, LANE);   \
    (d)[2] = vdotq_laneq_s32((d)[2], (codes)[2], X, LANE);   \
    (d)[3] = vdotq_laneq_s32((d)[3], (codes)[3], X, LANE);   \
  } while (0)

// Four activation bytes broadcast to every 32-bit lane (for the steps past the last full 16 columns).
DOT_TARGET NEON_INLINE int8x16_t broadcast4(const int8_t *p) {
  int32_t v;
  memcpy(&v, p, sizeof v);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

// One 16-row block times NT (1-4) tokens from t0. Per token, four int32 registers hold the 16 rows' sums of a
// group (one token: two sets of four, alternating between steps, so consecutive SDOTs do not wait on each other);
// after each group they are scaled into fp32 sums kept in memory (touched once per group).
DOT_TARGET NEON_INLINE void int8_block(const folio_int8_activations *x, const folio_interleaved_weights *w, size_t b,
                                       size_t t0, float *y, size_t ldy, const int NT) {
  const int bits = w->bits;
  const size_t gs = w->group_size, cols = w->cols, groups = cols / gs;
  const size_t codes_per_group = gs * (size_t)bits / 8 * BLOCK_ROWS;
  const int8x16_t ones = vdupq_n_s8(1);
  float total[INT8_TOKENS][BLOCK_ROWS];
  memset(total, 0, sizeof total);
  const uint8_t *c = w->codes + b * groups * (codes_per_group + 2 * BLOCK_ROWS * sizeof(uint16_t));
  for (size_t g = 0; g < groups; g++) {
    const int8_t *xg = x->q + t0 * cols + g * gs;
    int32x4_t dot[INT8_TOKENS][4], xsum[INT8_TOKENS];
    int32_t xsum_tail[INT8_TOKENS] = {0};
    for (int t = 0; t < INT8_TOKENS; t++) {
      xsum[t] = vdupq_n_s32(0);
      for (int j = 0; j < 4; j++) dot[t][j] = vdupq_n_s32(0);
    }
    // One token accumulates odd steps into the second set (dot[1]).
    const int odd = NT == 1 ? 1 : 0;
    size_t k = 0;
    if (bits == 4) {
      for (; k + 16 <= gs; k += 16, c += 2 * STEP_BYTES) {
        int8x16_t xv[INT8_TOKENS];
        for (int t = 0; t < NT; t++) xv[t] = vld1q_s8(xg + t * cols + k);
        int8x16_t lo[4], hi[4];
        load_step4(c, lo, hi);
        for (int t = 0; t < NT; t++) {
          SDOT_STEP(dot[t], lo, xv[t], 0);
          SDOT_STEP(dot[t + odd], hi, xv[t], 1);
        }
        load_step4(c + STEP_BYTES, lo, hi);
        for (int t = 0; t < NT; t++) {
          SDOT_STEP(dot[t], lo, xv[t], 2);
          SDOT_STEP(dot[t + odd], hi, xv[t], 3);
        }
      }
      for (; k < gs; k += 8, c += STEP_BYTES) {
        int8x16_t lo[4], hi[4];
        load_step4(c, lo, hi);
        for (int t = 0; t < NT; t++) {
          SDOT_STEP(dot[t], lo, broadcast4(xg + t * cols + k), 0);
          SDOT_STEP(dot[t + odd], hi, broadcast4(xg + t * cols + k + 4), 0);
        }
      }
    } else {
      for (; k + 16 <= gs; k += 16, c += 4 * STEP_BYTES) {
        int8x16_t xv[INT8_TOKENS];
        for (int t = 0; t < NT; t++) {
          xv[t] = vld1q_s8(xg + t * cols + k);
          xsum[t] = vdotq_s32(xsum[t], xv[t], ones);
        }
        int8x16_t s[4];
        load_step8(c, s);
        for (int t = 0; t < NT; t++) SDOT_STEP(dot[t], s, xv[t], 0);
        load_step8(c + STEP_BYTES, s);
        for (int t = 0; t < NT; t++) SDOT_STEP(dot[t + odd], s, xv[t], 1);
        load_step8(c + 2 * STEP_BYTES, s);
        for (int t = 0; t < NT; t++) SDOT_STEP(dot[t], s, xv[t], 2);
        load_step8(c + 3 * STEP_BYTES, s);
        for (int t = 0; t < NT; t++) SDOT_STEP(dot[t + odd], s, xv[t], 3);
      }
      for (; k < gs; k += 4, c += STEP_BYTES) {
        int8x16_t s[4];
        load_step8(c, s);
        for (int t = 0; t < NT; t++) {
          const int8_t *xk = xg + t * cols + k;
          SDOT_STEP(dot[t], s, broadcast4(xk), 0);
          xsum_tail[t] += xk[0] + xk[1] + xk[2] + xk[3];
        }
      }
    }
    // The group's 16 bf16 scales, then its 16 bf16 biases, follow its codes.
    uint16x8_t sc0 = vreinterpretq_u16_u8(vld1q_u8(c)), sc1 = vreinterpretq_u16_u8(vld1q_u8(c + 16));
    uint16x8_t bi0 = vreinterpretq_u16_u8(vld1q_u8(c + 32)), bi1 = vreinterpretq_u16_u8(vld1q_u8(c + 48));
    c += 2 * BLOCK_ROWS * sizeof(uint16_t);
    float32x4_t scale[4] = {vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(sc0), 16)),
                            vreinterpretq_f32_u32(vshll_high_n_u16(sc0, 16)),
                            vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(sc1), 16)),
                            vreinterpretq_f32_u32(vshll_high_n_u16(sc1, 16))};
    float32x4_t bias[4] = {vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(bi0), 16)),
                           vreinterpretq_f32_u32(vshll_high_n_u16(bi0, 16)),
                           vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(bi1), 16)),
                           vreinterpretq_f32_u32(vshll_high_n_u16(bi1, 16))};
    for (int t = 0; t < NT; t++) {
      int32x4_t shift = vdupq_n_s32(0);
      if (bits == 8) shift = vdupq_n_s32(128 * (vaddvq_s32(xsum[t]) + xsum_tail[t]));
      size_t at = (t0 + t) * groups + g;
      float dx = x->scales[at], sum = x->sums[at];
      for (int j = 0; j < 4; j++) {
        int32x4_t d = NT == 1 ? vaddq_s32(dot[0][j], dot[1][j]) : dot[t][j];
        float32x4_t a = vld1q_f32(total[t] + 4 * j);
        a = vfmaq_f32(a, vcvtq_f32_s32(vaddq_s32(d, shift)), vmulq_n_f32(scale[j], dx));
        vst1q_f32(total[t] + 4 * j, vfmaq_n_f32(a, bias[j], sum));
      }
    }
  }
  size_t first = b * BLOCK_ROWS, valid = w->rows > first ? w->rows - first : 0;
  if (valid > BLOCK_ROWS) valid = BLOCK_ROWS;
  for (int t = 0; t < NT; t++) memcpy(y + (t0 + t) * ldy + first, total[t], valid * sizeof(float));
}

DOT_TARGET void folio_neon_int8(const folio_int8_activations *x, size_t tokens, const folio_interleaved_weights *w,
                                size_t block_begin, size_t block_end, float *y, size_t ldy) {
  // Token chunks keep their activations in cache while the thread's blocks of rows stream past once per chunk.
  for (size_t c0 = 0; c0 < tokens; c0 += TOKEN_CHUNK) {
    size_t c1 = c0 + TOKEN_CHUNK < tokens ? c0 + TOKEN_CHUNK : tokens;
    for (size_t b = block_begin; b < block_end; b++) {
      size_t t = c0;
      for (; t + INT8_TOKENS <= c1; t += INT8_TOKENS) int8_block(x, w, b, t, y, ldy, INT8_TOKENS);
      switch (c1 - t) {
        case 1: int8_block(x, w, b, t, y, ldy, 1); break;
        case 2: int8_block(x, w, b, t, y, ldy, 2); break;
        case 3: int8_block(x, w, b, t, y, ldy, 3); break;
        default: break;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Softmax, SiLU and GELU (softmax.c), with softmax.c's exp: exp(x) = 2^k · e^r, |r| ≤ ln2/2, the same degree-6
// polynomial and the same operations in the same order as its scalar exp, which is 0 below −87.3.
// ---------------------------------------------------------------------------------------------------------------

static const float LOG2E = 1.44269504088896341f;
static const float LN2_HI = 0.693359375f;
static const float LN2_LO = -2.12194440e-4f;
static const float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f, P3 = 4.1665795894e-2f,
                   P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;

NEON_INLINE float32x4_t exp_neon(float32x4_t x) {
  uint32x4_t underflow = vcltq_f32(x, vdupq_n_f32(-87.3f));
  x = vmaxq_f32(x, vdupq_n_f32(-87.3f));
  float32x4_t k = vrndmq_f32(vfmaq_f32(vdupq_n_f32(0.5f), x, vdupq_n_f32(LOG2E)));
  float32x4_t r = vfmsq_f32(x, k, vdupq_n_f32(LN2_HI));
  r = vfmsq_f32(r, k, vdupq_n_f32(LN2_LO));
  float32x4_t p = vfmaq_f32(vdupq_n_f32(P1), vdupq_n_f32(P0), r);
  p = vfmaq_f32(vdupq_n_f32(P2), p, r);
  p = vfmaq_f32(vdupq_n_f32(P3), p, r);
  p = vfmaq_f32(vdupq_n_f32(P4), p, r);
  p = vfmaq_f32(vdupq_n_f32(P5), p, r);
  p = vaddq_f32(vfmaq_f32(r, vmulq_f32(p, r), r), vdupq_n_f32(1.0f));
  int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(k), vdupq_n_s32(127)), 23);
  float32x4_t result = vmulq_f32(p, vreinterpretq_f32_s32(e));
  return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(result), underflow));
}

// The last n % 4 values go through the vector code padded with `pad` (loads and stores stay inside the array).
NEON_INLINE float32x4_t load_partial(const float *p, size_t n, float pad) {
  float v[4] = {pad, pad, pad, pad};
  memcpy(v, p, n * sizeof(float));
  return vld1q_f32(v);
}

NEON_INLINE void store_partial(float *p, size_t n, float32x4_t value) {
  float v[4];
  vst1q_f32(v, value);
  memcpy(p, v, n * sizeof(float));
}

void folio_neon_softmax(float *x, size_t n) {
  // maxnm skips NaN as the portable comparison does.
  float32x4_t m0 = vdupq_n_f32(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    m0 = vmaxnmq_f32(m0, vld1q_f32(x + i));
    m1 = vmaxnmq_f32(m1, vld1q_f32(x + i + 4));
    m2 = vmaxnmq_f32(m2, vld1q_f32(x + i + 8));
    m3 = vmaxnmq_f32(m3, vld1q_f32(x + i + 12));
  }
  for (; i + 4 <= n; i += 4) m0 = vmaxnmq_f32(m0, vld1q_f32(x + i));
  float maximum = vmaxnmvq_f32(vmaxnmq_f32(vmaxnmq_f32(m0, m1), vmaxnmq_f32(m2, m3)));
  for (; i < n; i++) maximum = x[i] > maximum ? x[i] : maximum;
  float32x4_t shift = vdupq_n_f32(maximum);
  float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
  for (i = 0; i + 16 <= n; i += 16) {
    float32x4_t e0 = exp_neon(vsubq_f32(vld1q_f32(x + i), shift));
    float32x4_t e1 = exp_neon(vsubq_f32(vld1q_f32(x + i + 4), shift));
    float32x4_t e2 = exp_neon(vsubq_f32(vld1q_f32(x + i + 8), shift));
    float32x4_t e3 = exp_neon(vsubq_f32(vld1q_f32(x + i + 12), shift));
    vst1q_f32(x + i, e0);
    vst1q_f32(x + i + 4, e1);
    vst1q_f32(x + i + 8, e2);
    vst1q_f32(x + i + 12, e3);
    s0 = vaddq_f32(s0, e0);
    s1 = vaddq_f32(s1, e1);
    s2 = vaddq_f32(s2, e2);
    s3 = vaddq_f32(s3, e3);
  }
  for (; i + 4 <= n; i += 4) {
    float32x4_t e = exp_neon(vsubq_f32(vld1q_f32(x + i), shift));
    vst1q_f32(x + i, e);
    s0 = vaddq_f32(s0, e);
  }
  if (i < n) {  // padding with −∞ adds exp(−∞) = 0
    float32x4_t e = exp_neon(vsubq_f32(load_partial(x + i, n - i, -INFINITY), shift));
    store_partial(x + i, n - i, e);
    s1 = vaddq_f32(s1, e);
  }
  float sum = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
  float inverse = 1.0f / sum;
  for (i = 0; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inverse));
  for (; i < n; i++) x[i] *= inverse;
}

// silu(a) · b = a / (1 + e^{min(−a, 87)}) · b; minnm ignores NaN as fminf does.
NEON_INLINE float32x4_t silu4(float32x4_t a) {
  float32x4_t e = exp_neon(vminnmq_f32(vnegq_f32(a), vdupq_n_f32(87.0f)));
  return vdivq_f32(a, vaddq_f32(vdupq_n_f32(1.0f), e));
}

void folio_neon_silu_multiply(const float *a, const float *b, float *out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    float32x4_t s0 = silu4(vld1q_f32(a + i)), s1 = silu4(vld1q_f32(a + i + 4));
    if (b) {
      s0 = vmulq_f32(s0, vld1q_f32(b + i));
      s1 = vmulq_f32(s1, vld1q_f32(b + i + 4));
    }
    vst1q_f32(out + i, s0);
    vst1q_f32(out + i + 4, s1);
  }
  for (; i < n; i += 4) {
    size_t m = n - i < 4 ? n - i : 4;
    float32x4_t s = silu4(load_partial(a + i, m, 0));
    if (b) s = vmulq_f32(s, load_partial(b + i, m, 0));
    store_partial(out + i, m, s);
  }
}

// x · sigmoid(2u) = x / (1 + e^{−2u}), u = √(2/π)·(x + 0.044715·x³), evaluated as the portable loop does.
NEON_INLINE float32x4_t gelu4(float32x4_t v) {
  const float k = -2.0f * 0.7978845608028654f;
  float32x4_t inner = vfmaq_f32(v, vmulq_f32(vmulq_n_f32(v, 0.044715f), v), v);
  float32x4_t e = exp_neon(vminnmq_f32(vmulq_n_f32(inner, k), vdupq_n_f32(87.0f)));
  return vdivq_f32(v, vaddq_f32(vdupq_n_f32(1.0f), e));
}

void folio_neon_gelu_tanh(float *x, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    float32x4_t g0 = gelu4(vld1q_f32(x + i)), g1 = gelu4(vld1q_f32(x + i + 4));
    vst1q_f32(x + i, g0);
    vst1q_f32(x + i + 4, g1);
  }
  for (; i < n; i += 4) {
    size_t m = n - i < 4 ? n - i : 4;
    store_partial(x + i, m, gelu4(load_partial(x + i, m, 0)));
  }
}
#endif
