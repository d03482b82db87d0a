// Linear-layer kernels over fp32 activations and F32/BF16/F16 weights, with runtime CPU dispatch.
//
// Blocking: tokens are processed in tiles that keep their activations in L2 while the weight rows of the
// thread's range stream past once per tile; the micro-kernel computes 4 rows x 4 tokens so that every weight
// load feeds four FMAs (prefill) and decode (one token) streams 4 rows at a time.
#include "CFolioKernels.h"
#include "bf16.h"
#include "neon.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FOLIO_X86 1
#endif

enum { TOKEN_TILE = 48, ROW_BLOCK = 4, TOKEN_BLOCK = 4, TOKEN_BLOCK_AVX2 = 3 };

static inline float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1F;
  uint32_t mantissa = h & 0x3FF;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exponent = 127 - 15 + 1;
      while ((mantissa & 0x400) == 0) {
        mantissa <<= 1;
        exponent--;
      }
      bits = sign | (exponent << 23) | ((mantissa & 0x3FF) << 13);
    }
  } else if (exponent == 31) {
    bits = sign | 0x7F800000 | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static inline float weight_at(const void *w, int type, size_t index) {
  switch (type) {
    case FOLIO_WEIGHT_BF16: return bf16_to_f32(((const uint16_t *)w)[index]);
    case FOLIO_WEIGHT_F16: return f16_to_f32(((const uint16_t *)w)[index]);
    default: return ((const float *)w)[index];
  }
}

static size_t element_size(int type) { return type == FOLIO_WEIGHT_F32 ? 4 : 2; }

// ---------------------------------------------------------------------------------------------------------------
// Portable path
// ---------------------------------------------------------------------------------------------------------------

static void linear_portable(const float *x, size_t tokens, const void *w, int type, size_t cols,
                            size_t row_stride, size_t rb, size_t re, float *y, size_t ldy) {
  for (size_t r = rb; r < re; r++) {
    const char *row = (const char *)w + r * row_stride * element_size(type);
    for (size_t t = 0; t < tokens; t++) {
      const float *xt = x + t * cols;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      size_t i = 0;
      for (; i + 4 <= cols; i += 4) {
        s0 += xt[i] * weight_at(row, type, i);
        s1 += xt[i + 1] * weight_at(row, type, i + 1);
        s2 += xt[i + 2] * weight_at(row, type, i + 2);
        s3 += xt[i + 3] * weight_at(row, type, i + 3);
      }
      for (; i < cols; i++) s0 += xt[i] * weight_at(row, type, i);
      y[t * ldy + r] = (s0 + s1) + (s2 + s3);
    }
  }
}

#if FOLIO_X86
// ---------------------------------------------------------------------------------------------------------------
// AVX-512 path
// ---------------------------------------------------------------------------------------------------------------

__attribute__((target("avx512f"))) static inline __m512 load16_avx512(const void *w, int type, size_t i) {
  switch (type) {
    case FOLIO_WEIGHT_BF16: {
      __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i));
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case FOLIO_WEIGHT_F16: {
      __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i));
      return _mm512_cvtph_ps(h);
    }
    default: return _mm512_loadu_ps((const float *)w + i);
  }
}

// 4 rows x up to 4 tokens; cols must be a multiple of 16 for the vector loop (a scalar tail handles the rest).
__attribute__((target("avx512f"))) static void block_avx512(const float *x, size_t nt, const char *rows[4],
                                                             size_t nr, int type, size_t cols, float *out[4],
                                                             size_t ldy, size_t r0) {
  __m512 acc[4][4];
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) acc[a][b] = _mm512_setzero_ps();
  size_t vec = cols & ~(size_t)15;
  for (size_t i = 0; i < vec; i += 16) {
    __m512 xv[4];
    for (size_t t = 0; t < nt; t++) xv[t] = _mm512_loadu_ps(x + t * cols + i);
    for (size_t r = 0; r < nr; r++) {
      __m512 wv = load16_avx512(rows[r], type, i);
      for (size_t t = 0; t < nt; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (size_t r = 0; r < nr; r++) {
    for (size_t t = 0; t < nt; t++) {
      float s = _mm512_reduce_add_ps(acc[r][t]);
      for (size_t i = vec; i < cols; i++) s += x[t * cols + i] * weight_at(rows[r], type, i);
      out[t][r0 + r] = s;
    }
  }
  (void)ldy;
}

// Fixed-size blocks keep all accumulators in registers (runtime-sized loops would spill them to the stack).
#define FOLIO_BLOCK_AVX512(NR, NT)                                                                              \
  __attribute__((target("avx512f"))) static void block_avx512_##NR##x##NT(                                     \
      const float *x, const char *rows[4], int type, size_t cols, float *out[4], size_t r0) {                   \
    __m512 acc[NR][NT];                                                                                         \
    for (int a = 0; a < NR; a++)                                                                                \
      for (int b = 0; b < NT; b++) acc[a][b] = _mm512_setzero_ps();                                             \
    size_t vec = cols & ~(size_t)15;                                                                            \
    for (size_t i = 0; i < vec; i += 16) {                                                                      \
      __m512 xv[NT];                                                                                            \
      for (int t = 0; t < NT; t++) xv[t] = _mm512_loadu_ps(x + t * cols + i);                                   \
      for (int r = 0; r < NR; r++) {                                                                            \
        __m512 wv = load16_avx512(rows[r], type, i);                                                            \
        for (int t = 0; t < NT; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);                         \
      }                                                                                                         \
    }                                                                                                           \
    for (int r = 0; r < NR; r++) {                                                                              \
      for (int t = 0; t < NT; t++) {                                                                            \
        float s = _mm512_reduce_add_ps(acc[r][t]);                                                              \
        for (size_t i = vec; i < cols; i++) s += x[t * cols + i] * weight_at(rows[r], type, i);                 \
        out[t][r0 + r] = s;                                                                                     \
      }                                                                                                         \
    }                                                                                                           \
  }

FOLIO_BLOCK_AVX512(4, 4)
FOLIO_BLOCK_AVX512(4, 1)

__attribute__((target("avx512f"))) static void linear_avx512(const float *x, size_t tokens, const void *w,
                                                              int type, size_t cols, size_t row_stride, size_t rb,
                                                              size_t re, float *y, size_t ldy) {
  size_t stride = row_stride * element_size(type);
  for (size_t t0 = 0; t0 < tokens; t0 += TOKEN_TILE) {
    size_t tile = tokens - t0 < TOKEN_TILE ? tokens - t0 : TOKEN_TILE;
    for (size_t r = rb; r < re; r += ROW_BLOCK) {
      size_t nr = re - r < ROW_BLOCK ? re - r : ROW_BLOCK;
      const char *rows[4];
      for (size_t k = 0; k < nr; k++) rows[k] = (const char *)w + (r + k) * stride;
      for (size_t t = 0; t < tile; t += TOKEN_BLOCK) {
        size_t nt = tile - t < TOKEN_BLOCK ? tile - t : TOKEN_BLOCK;
        float *out[4];
        for (size_t k = 0; k < nt; k++) out[k] = y + (t0 + t + k) * ldy;
        if (nr == 4 && nt == 4) {
          block_avx512_4x4(x + (t0 + t) * cols, rows, type, cols, out, r);
        } else if (nr == 4 && nt == 1) {
          block_avx512_4x1(x + (t0 + t) * cols, rows, type, cols, out, r);
        } else {
          block_avx512(x + (t0 + t) * cols, nt, rows, nr, type, cols, out, ldy, r);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// AVX2 + FMA + F16C path
// ---------------------------------------------------------------------------------------------------------------

__attribute__((target("avx2,fma,f16c"))) static inline __m256 load8_avx2(const void *w, int type, size_t i) {
  switch (type) {
    case FOLIO_WEIGHT_BF16: {
      __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case FOLIO_WEIGHT_F16: {
      __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
      return _mm256_cvtph_ps(h);
    }
    default: return _mm256_loadu_ps((const float *)w + i);
  }
}

__attribute__((target("avx2,fma,f16c"))) static inline float reduce8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma,f16c"))) static void block_avx2(const float *x, size_t nt, const char *rows[4],
                                                                 size_t nr, int type, size_t cols, float *out[4],
                                                                 size_t r0) {
  __m256 acc[4][4];
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) acc[a][b] = _mm256_setzero_ps();
  size_t vec = cols & ~(size_t)7;
  for (size_t i = 0; i < vec; i += 8) {
    __m256 xv[4];
    for (size_t t = 0; t < nt; t++) xv[t] = _mm256_loadu_ps(x + t * cols + i);
    for (size_t r = 0; r < nr; r++) {
      __m256 wv = load8_avx2(rows[r], type, i);
      for (size_t t = 0; t < nt; t++) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (size_t r = 0; r < nr; r++) {
    for (size_t t = 0; t < nt; t++) {
      float s = reduce8(acc[r][t]);
      for (size_t i = vec; i < cols; i++) s += x[t * cols + i] * weight_at(rows[r], type, i);
      out[t][r0 + r] = s;
    }
  }
}

#define FOLIO_BLOCK_AVX2(NR, NT)                                                                                \
  __attribute__((target("avx2,fma,f16c"))) static void block_avx2_##NR##x##NT(                                \
      const float *x, const char *rows[4], int type, size_t cols, float *out[4], size_t r0) {                   \
    __m256 acc[NR][NT];                                                                                         \
    for (int a = 0; a < NR; a++)                                                                                \
      for (int b = 0; b < NT; b++) acc[a][b] = _mm256_setzero_ps();                                             \
    size_t vec = cols & ~(size_t)7;                                                                             \
    for (size_t i = 0; i < vec; i += 8) {                                                                       \
      __m256 xv[NT];                                                                                            \
      for (int t = 0; t < NT; t++) xv[t] = _mm256_loadu_ps(x + t * cols + i);                                   \
      for (int r = 0; r < NR; r++) {                                                                            \
        __m256 wv = load8_avx2(rows[r], type, i);                                                               \
        for (int t = 0; t < NT; t++) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);                         \
      }                                                                                                         \
    }                                                                                                           \
    for (int r = 0; r < NR; r++) {                                                                              \
      for (int t = 0; t < NT; t++) {                                                                            \
        float s = reduce8(acc[r][t]);                                                                           \
        for (size_t i = vec; i < cols; i++) s += x[t * cols + i] * weight_at(rows[r], type, i);                 \
        out[t][r0 + r] = s;                                                                                     \
      }                                                                                                         \
    }                                                                                                           \
  }

FOLIO_BLOCK_AVX2(4, 3)
FOLIO_BLOCK_AVX2(4, 1)

__attribute__((target("avx2,fma,f16c"))) static void linear_avx2(const float *x, size_t tokens, const void *w,
                                                                  int type, size_t cols, size_t row_stride,
                                                                  size_t rb, size_t re, float *y, size_t ldy) {
  size_t stride = row_stride * element_size(type);
  for (size_t t0 = 0; t0 < tokens; t0 += TOKEN_TILE) {
    size_t tile = tokens - t0 < TOKEN_TILE ? tokens - t0 : TOKEN_TILE;
    for (size_t r = rb; r < re; r += ROW_BLOCK) {
      size_t nr = re - r < ROW_BLOCK ? re - r : ROW_BLOCK;
      const char *rows[4];
      for (size_t k = 0; k < nr; k++) rows[k] = (const char *)w + (r + k) * stride;
      for (size_t t = 0; t < tile; t += TOKEN_BLOCK_AVX2) {
        size_t nt = tile - t < TOKEN_BLOCK_AVX2 ? tile - t : TOKEN_BLOCK_AVX2;
        float *out[4];
        for (size_t k = 0; k < nt; k++) out[k] = y + (t0 + t + k) * ldy;
        if (nr == 4 && nt == 3) {
          block_avx2_4x3(x + (t0 + t) * cols, rows, type, cols, out, r);
        } else if (nr == 4 && nt == 1) {
          block_avx2_4x1(x + (t0 + t) * cols, rows, type, cols, out, r);
        } else {
          block_avx2(x + (t0 + t) * cols, nt, rows, nr, type, cols, out, r);
        }
      }
    }
  }
}
#endif

// ---------------------------------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------------------------------

static int best_path(void) {
#if FOLIO_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return FOLIO_PATH_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return FOLIO_PATH_AVX2;
#elif defined(__aarch64__)
  return FOLIO_PATH_NEON;  // NEON (Advanced SIMD) is baseline on arm64
#endif
  return FOLIO_PATH_PORTABLE;
}

// The best path, or a lesser one this CPU also has named by FOLIO_KERNEL_PATH (portable, avx2, avx512, neon): to
// measure or diagnose the code a smaller CPU would run. Unknown or unavailable names are ignored.
static int detected_path(void) {
  int best = best_path();
  const char *forced = getenv("FOLIO_KERNEL_PATH");
  if (!forced) return best;
  if (strcmp(forced, "portable") == 0) return FOLIO_PATH_PORTABLE;
  if (strcmp(forced, "avx2") == 0 && (best == FOLIO_PATH_AVX2 || best == FOLIO_PATH_AVX512)) return FOLIO_PATH_AVX2;
  if (strcmp(forced, "avx512") == 0 && best == FOLIO_PATH_AVX512) return FOLIO_PATH_AVX512;
  if (strcmp(forced, "neon") == 0 && best == FOLIO_PATH_NEON) return FOLIO_PATH_NEON;
  return best;
}

static int selected_path = -1;

int folio_kernel_path(void) {
  if (selected_path < 0) selected_path = detected_path();
  return selected_path;
}

int folio_supported_path(int path) {
  int best = folio_kernel_path();
  switch (path) {
    case FOLIO_PATH_PORTABLE: return path;
    case FOLIO_PATH_AVX2: return best == FOLIO_PATH_AVX2 || best == FOLIO_PATH_AVX512 ? path : best;
    case FOLIO_PATH_AVX512:
    case FOLIO_PATH_NEON: return best == path ? path : best;
    default: return best;
  }
}

void folio_linear_rows_strided_on(int path, const float *x, size_t tokens, const void *w, int type, size_t cols,
                                  size_t row_stride, size_t row_begin, size_t row_end, float *y, size_t ldy) {
  switch (folio_supported_path(path)) {
#if FOLIO_X86
    case FOLIO_PATH_AVX512: linear_avx512(x, tokens, w, type, cols, row_stride, row_begin, row_end, y, ldy); return;
    case FOLIO_PATH_AVX2: linear_avx2(x, tokens, w, type, cols, row_stride, row_begin, row_end, y, ldy); return;
#endif
#if defined(__aarch64__)
    case FOLIO_PATH_NEON: folio_neon_linear(x, tokens, w, type, cols, row_stride, row_begin, row_end, y, ldy); return;
#endif
    default: linear_portable(x, tokens, w, type, cols, row_stride, row_begin, row_end, y, ldy); return;
  }
}

void folio_linear_rows_on(int path, const float *x, size_t tokens, const void *w, int type, size_t cols,
                          size_t row_begin, size_t row_end, float *y, size_t ldy) {
  folio_linear_rows_strided_on(path, x, tokens, w, type, cols, cols, row_begin, row_end, y, ldy);
}

void folio_linear_rows(const float *x, size_t tokens, const void *w, int type, size_t cols, size_t row_begin,
                       size_t row_end, float *y, size_t ldy) {
  folio_linear_rows_on(folio_kernel_path(), x, tokens, w, type, cols, row_begin, row_end, y, ldy);
}

// out[g * cols + c] = Σ_s p[g * count + s] · v[s * row_stride + c] for g < groups (≤ 8): the probability-weighted
// sum of value rows, with the outputs of a 64-column slice held in registers across all rows.
#if FOLIO_X86
__attribute__((target("avx512f"))) static void weighted_rows_avx512(const float *p, size_t groups, size_t count,
                                                                     const float *v, size_t row_stride, size_t cols,
                                                                     float *out) {
  size_t c = 0;
  for (; c + 64 <= cols; c += 64) {
    for (size_t g0 = 0; g0 < groups; g0 += 4) {
      size_t ng = groups - g0 < 4 ? groups - g0 : 4;
      __m512 acc[4][4];
      for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) acc[a][b] = _mm512_setzero_ps();
      for (size_t s = 0; s < count; s++) {
        const float *row = v + s * row_stride + c;
        __m512 v0 = _mm512_loadu_ps(row), v1 = _mm512_loadu_ps(row + 16), v2 = _mm512_loadu_ps(row + 32),
               v3 = _mm512_loadu_ps(row + 48);
        for (size_t g = 0; g < ng; g++) {
          __m512 weight = _mm512_set1_ps(p[(g0 + g) * count + s]);
          acc[g][0] = _mm512_fmadd_ps(weight, v0, acc[g][0]);
          acc[g][1] = _mm512_fmadd_ps(weight, v1, acc[g][1]);
          acc[g][2] = _mm512_fmadd_ps(weight, v2, acc[g][2]);
          acc[g][3] = _mm512_fmadd_ps(weight, v3, acc[g][3]);
        }
      }
      for (size_t g = 0; g < ng; g++)
        for (int b = 0; b < 4; b++) _mm512_storeu_ps(out + (g0 + g) * cols + c + 16 * b, acc[g][b]);
    }
  }
  for (; c < cols; c++) {
    for (size_t g = 0; g < groups; g++) {
      float sum = 0;
      for (size_t s = 0; s < count; s++) sum += p[g * count + s] * v[s * row_stride + c];
      out[g * cols + c] = sum;
    }
  }
}
#endif

void folio_weighted_rows(const float *p, size_t groups, size_t count, const float *v, size_t row_stride, size_t cols,
                         float *out) {
#if FOLIO_X86
  if (folio_kernel_path() == FOLIO_PATH_AVX512) {
    weighted_rows_avx512(p, groups, count, v, row_stride, cols, out);
    return;
  }
#endif
#if defined(__aarch64__)
  if (folio_kernel_path() == FOLIO_PATH_NEON) {
    folio_neon_weighted_rows(p, groups, count, v, row_stride, cols, out);
    return;
  }
#endif
  for (size_t g = 0; g < groups; g++) {
    float *o = out + g * cols;
    for (size_t c = 0; c < cols; c++) o[c] = 0;
    for (size_t s = 0; s < count; s++) {
      float weight = p[g * count + s];
      const float *row = v + s * row_stride;
      for (size_t c = 0; c < cols; c++) o[c] += weight * row[c];
    }
  }
}
