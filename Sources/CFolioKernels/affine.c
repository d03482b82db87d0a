// Kernels for affine group-quantized weights (MLX layout: LSB-first codes in uint32 words, per-group scale/bias).
// Decode dequantizes in registers (w = q·scale + bias) and multiplies; prefill widens row blocks once (see MatMul).
#include "CFolioKernels.h"
#include "neon.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FOLIO_X86 1
#endif

// Code i of a row: an LSB-first bit stream over little-endian uint32 words (6-bit codes straddle words).
static inline unsigned code_at(const uint32_t *row_codes, int bits, size_t i) {
  size_t bit = i * (size_t)bits, word = bit / 32, shift = bit % 32;
  uint64_t pair = row_codes[word];
  if (shift + (size_t)bits > 32) pair |= (uint64_t)row_codes[word + 1] << 32;
  return (unsigned)(pair >> shift) & ((1u << bits) - 1u);
}

unsigned folio_affine_code(const uint32_t *row_codes, int bits, size_t i) { return code_at(row_codes, bits, i); }

void folio_dequantize_rows(const folio_affine_weights *w, size_t cols, size_t row_begin, size_t row_end, float *out) {
  size_t words = cols * (size_t)w->bits / 32;
  size_t groups = cols / w->group_size;
  for (size_t r = row_begin; r < row_end; r++) {
    const uint32_t *codes = w->codes + r * words;
    float *dst = out + (r - row_begin) * cols;
    for (size_t g = 0; g < groups; g++) {
      float s = w->scales[r * groups + g], b = w->biases[r * groups + g];
      for (size_t i = g * w->group_size; i < (g + 1) * w->group_size; i++) dst[i] = (float)code_at(codes, w->bits, i) * s + b;
    }
  }
}

static void affine_portable(const float *x, size_t tokens, const folio_affine_weights *w, size_t cols, size_t rb,
                            size_t re, float *y, size_t ldy) {
  size_t words = cols * (size_t)w->bits / 32;
  size_t groups = cols / w->group_size;
  for (size_t r = rb; r < re; r++) {
    const uint32_t *codes = w->codes + r * words;
    for (size_t t = 0; t < tokens; t++) {
      const float *xt = x + t * cols;
      float total = 0;
      for (size_t g = 0; g < groups; g++) {
        float dot = 0, sum = 0;
        for (size_t i = g * w->group_size; i < (g + 1) * w->group_size; i++) {
          dot += xt[i] * (float)code_at(codes, w->bits, i);
          sum += xt[i];
        }
        total += w->scales[r * groups + g] * dot + w->biases[r * groups + g] * sum;
      }
      y[t * ldy + r] = total;
    }
  }
}

#if FOLIO_X86
// 16 codes starting at element i of a row, widened to floats (4-bit: 8 bytes; 8-bit: 16 bytes).
__attribute__((target("avx512f"))) static inline __m512 codes16(const uint8_t *bytes, int bits, size_t i) {
  __m128i b;
  if (bits == 8) {
    b = _mm_loadu_si128((const __m128i *)(bytes + i));
  } else {
    __m128i packed = _mm_loadl_epi64((const __m128i *)(bytes + i / 2));
    __m128i lo = _mm_and_si128(packed, _mm_set1_epi8(0x0F));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F));
    b = _mm_unpacklo_epi8(lo, hi);  // element 2k is byte k's low nibble, 2k+1 its high nibble
  }
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
}

__attribute__((target("avx512f"))) static void affine_avx512(const float *x, size_t tokens,
                                                                       const folio_affine_weights *w, size_t cols,
                                                                       size_t rb, size_t re, float *y, size_t ldy) {
  size_t row_bytes = cols * (size_t)w->bits / 8;
  size_t groups = cols / w->group_size;
  for (size_t r = rb; r < re; r++) {
    const uint8_t *bytes = (const uint8_t *)w->codes + r * row_bytes;
    for (size_t t = 0; t < tokens; t++) {
      const float *xt = x + t * cols;
      __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
      for (size_t g = 0; g < groups; g++) {
        __m512 s = _mm512_set1_ps(w->scales[r * groups + g]);
        __m512 b = _mm512_set1_ps(w->biases[r * groups + g]);
        size_t end = (g + 1) * w->group_size;
        for (size_t i = g * w->group_size; i < end; i += 32) {
          __m512 w0 = _mm512_fmadd_ps(codes16(bytes, w->bits, i), s, b);
          __m512 w1 = _mm512_fmadd_ps(codes16(bytes, w->bits, i + 16), s, b);
          acc0 = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xt + i), acc0);
          acc1 = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xt + i + 16), acc1);
        }
      }
      y[t * ldy + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    }
  }
}

// 8 codes starting at element i of a row, widened to floats (4-bit: 4 bytes; 8-bit: 8 bytes).
__attribute__((target("avx2,fma"))) static inline __m256 codes8(const uint8_t *bytes, int bits, size_t i) {
  __m128i b;
  if (bits == 8) {
    b = _mm_loadl_epi64((const __m128i *)(bytes + i));
  } else {
    uint32_t packed;
    memcpy(&packed, bytes + i / 2, 4);
    __m128i v = _mm_cvtsi32_si128((int)packed);
    __m128i lo = _mm_and_si128(v, _mm_set1_epi8(0x0F));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0F));
    b = _mm_unpacklo_epi8(lo, hi);  // element 2k is byte k's low nibble, 2k+1 its high nibble
  }
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
}

// As affine_avx512 with 8-wide vectors (CPUs without AVX-512 that are asked for float activations).
__attribute__((target("avx2,fma"))) static void affine_avx2(const float *x, size_t tokens,
                                                             const folio_affine_weights *w, size_t cols, size_t rb,
                                                             size_t re, float *y, size_t ldy) {
  size_t row_bytes = cols * (size_t)w->bits / 8;
  size_t groups = cols / w->group_size;
  for (size_t r = rb; r < re; r++) {
    const uint8_t *bytes = (const uint8_t *)w->codes + r * row_bytes;
    for (size_t t = 0; t < tokens; t++) {
      const float *xt = x + t * cols;
      __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
      for (size_t g = 0; g < groups; g++) {
        __m256 s = _mm256_set1_ps(w->scales[r * groups + g]);
        __m256 b = _mm256_set1_ps(w->biases[r * groups + g]);
        size_t end = (g + 1) * w->group_size;
        for (size_t i = g * w->group_size; i < end; i += 16) {
          __m256 w0 = _mm256_fmadd_ps(codes8(bytes, w->bits, i), s, b);
          __m256 w1 = _mm256_fmadd_ps(codes8(bytes, w->bits, i + 8), s, b);
          acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xt + i), acc0);
          acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xt + i + 8), acc1);
        }
      }
      __m256 sum = _mm256_add_ps(acc0, acc1);
      __m128 h = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
      h = _mm_add_ps(h, _mm_movehl_ps(h, h));
      h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
      y[t * ldy + r] = _mm_cvtss_f32(h);
    }
  }
}
#endif

void folio_linear_rows_affine_on(int path, const float *x, size_t tokens, const folio_affine_weights *w, size_t cols,
                                 size_t row_begin, size_t row_end, float *y, size_t ldy) {
#if FOLIO_X86
  if (folio_supported_path(path) == FOLIO_PATH_AVX512 && w->group_size % 32 == 0 && (w->bits == 4 || w->bits == 8)) {
    affine_avx512(x, tokens, w, cols, row_begin, row_end, y, ldy);
    return;
  }
  if (folio_supported_path(path) == FOLIO_PATH_AVX2 && w->group_size % 16 == 0 && (w->bits == 4 || w->bits == 8)) {
    affine_avx2(x, tokens, w, cols, row_begin, row_end, y, ldy);
    return;
  }
#endif
#if defined(__aarch64__)
  if (folio_supported_path(path) == FOLIO_PATH_NEON && folio_neon_affine_supports(w)) {
    folio_neon_affine(x, tokens, w, cols, row_begin, row_end, y, ldy);
    return;
  }
#endif
  affine_portable(x, tokens, w, cols, row_begin, row_end, y, ldy);
}

void folio_linear_rows_affine(const float *x, size_t tokens, const folio_affine_weights *w, size_t cols,
                              size_t row_begin, size_t row_end, float *y, size_t ldy) {
  folio_linear_rows_affine_on(folio_kernel_path(), x, tokens, w, cols, row_begin, row_end, y, ldy);
}
