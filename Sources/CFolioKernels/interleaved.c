// Affine-quantized weights multiplied with int8 activations (VNNI dot products).
//
// At load the MLX layout (one row after another) is repacked into blocks of 16 rows: for each group of columns,
// 64-byte steps where byte j holds row j/4's codes for four consecutive columns. One `vpdpbusd` then multiplies a
// step by four int8 activations broadcast to every lane and adds into 16 per-row int32 sums, so a 16-row block is
// multiplied by a token without any horizontal reduction. 4-bit steps cover eight columns: the low nibbles hold
// columns k..k+3, the high nibbles k+4..k+7. Each group's steps are followed by the 16 rows' scales and then their
// biases in bf16 (64 bytes), so a thread reads one sequential stream. After each group the int32 sums are scaled once:
//   y[r] += scale[r,g] · dx[g] · Σ q·xq  +  bias[r,g] · Σ x      (x ≈ dx · xq per group of columns)
// Activations are quantized per group to int8 (symmetric, round to nearest) with their exact fp32 sum kept for
// the bias term, as llama.cpp does for its Q8 activations.
#include "CFolioKernels.h"
#include "bf16.h"
#include "neon.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FOLIO_X86 1
#endif

enum { BLOCK_ROWS = 16, STEP_BYTES = 64, TOKEN_TILE = 8, TOKEN_CHUNK = 64 };

static size_t row_blocks(size_t rows) { return (rows + BLOCK_ROWS - 1) / BLOCK_ROWS; }

// 4-bit codes keep nibbles; 6- and 8-bit codes take a byte each (6-bit values 0..63 run on the 8-bit kernel).
int folio_interleaved_layout_bits(int bits) { return bits == 4 ? 4 : 8; }
#define layout_bits folio_interleaved_layout_bits

// Bytes of one group of one block: its code steps, then 16 bf16 scales and 16 bf16 biases.
static size_t group_stride(int bits, size_t group_size) {
  return group_size * (size_t)bits / 8 * BLOCK_ROWS + 2 * BLOCK_ROWS * sizeof(uint16_t);
}

size_t folio_interleaved_bytes(size_t rows, size_t cols, int bits, size_t group_size) {
  return row_blocks(rows) * (cols / group_size) * group_stride(layout_bits(bits), group_size);
}

// The scale (which 0) or bias (which 1) of row i of a block's group, whose codes start at `group`.
static inline float group_value(const uint8_t *group, int bits, size_t group_size, size_t i, int which) {
  uint16_t h;
  memcpy(&h, group + group_size * (size_t)bits / 8 * BLOCK_ROWS + (which * BLOCK_ROWS + i) * 2, 2);
  return bf16_to_f32(h);
}

// Columns covered by one 64-byte step.
static size_t step_columns(int bits) { return bits == 4 ? 8 : 4; }

// Byte offset and nibble (0 low, 1 high; always 0 for 8-bit) of code (row i of its block, column k) within the
// block's codes.
static void code_position(int bits, size_t group_size, size_t i, size_t k, size_t *byte, int *nibble) {
  size_t g = k / group_size, within = k % group_size;
  size_t step = within / step_columns(bits), lane = within % step_columns(bits);
  *byte = g * group_stride(bits, group_size) + step * STEP_BYTES + i * 4 + lane % 4;
  *nibble = bits == 4 ? (int)(lane / 4) : 0;
}


void folio_interleave_affine(const folio_affine_weights *src, size_t rows, size_t cols, size_t block_begin,
                             size_t block_end, uint8_t *out) {
  int source_bits = src->bits, bits = layout_bits(source_bits);
  size_t gs = src->group_size, groups = cols / gs, words = cols * (size_t)source_bits / 32;
  size_t stride = group_stride(bits, gs), codes_per_group = gs * (size_t)bits / 8 * BLOCK_ROWS;
  for (size_t b = block_begin; b < block_end; b++) {
    uint8_t *block = out + b * groups * stride;
    memset(block, 0, groups * stride);
    for (size_t i = 0; i < BLOCK_ROWS; i++) {
      size_t r = b * BLOCK_ROWS + i;
      if (r >= rows) continue;
      for (size_t g = 0; g < groups; g++) {
        uint16_t scale = f32_to_bf16(src->scales[r * groups + g]), bias = f32_to_bf16(src->biases[r * groups + g]);
        memcpy(block + g * stride + codes_per_group + i * 2, &scale, 2);
        memcpy(block + g * stride + codes_per_group + (BLOCK_ROWS + i) * 2, &bias, 2);
      }
      const uint32_t *row_codes = src->codes + r * words;
      for (size_t k = 0; k < cols; k++) {
        size_t byte;
        int nibble;
        code_position(bits, gs, i, k, &byte, &nibble);
        block[byte] |= (uint8_t)(folio_affine_code(row_codes, source_bits, k) << (4 * nibble));
      }
    }
  }
}

void folio_deinterleave_affine(const folio_interleaved_weights *w, int source_bits, size_t row_begin,
                               size_t row_end, uint32_t *codes, float *scales, float *biases) {
  int bits = w->bits;
  size_t gs = w->group_size, cols = w->cols, groups = cols / gs, words = cols * (size_t)source_bits / 32;
  size_t stride = group_stride(bits, gs);
  for (size_t r = row_begin; r < row_end; r++) {
    size_t b = r / BLOCK_ROWS, i = r % BLOCK_ROWS;
    const uint8_t *block = w->codes + b * groups * stride;
    uint32_t *out = codes + (r - row_begin) * words;
    memset(out, 0, words * sizeof *out);
    for (size_t k = 0; k < cols; k++) {
      size_t byte;
      int nibble;
      code_position(bits, gs, i, k, &byte, &nibble);
      uint64_t q = (block[byte] >> (4 * nibble)) & ((1u << bits) - 1u);
      size_t bit = k * (size_t)source_bits;
      out[bit / 32] |= (uint32_t)(q << (bit % 32));
      if (bit % 32 + (size_t)source_bits > 32) out[bit / 32 + 1] |= (uint32_t)(q >> (32 - bit % 32));
    }
    for (size_t g = 0; g < groups; g++) {
      scales[(r - row_begin) * groups + g] = group_value(block + g * stride, bits, gs, i, 0);
      biases[(r - row_begin) * groups + g] = group_value(block + g * stride, bits, gs, i, 1);
    }
  }
}

void folio_interleaved_dequantize_row(const folio_interleaved_weights *w, size_t r, float *out) {
  int bits = w->bits;
  size_t gs = w->group_size, cols = w->cols, groups = cols / gs, stride = group_stride(bits, gs);
  size_t b = r / BLOCK_ROWS, i = r % BLOCK_ROWS;
  const uint8_t *block = w->codes + b * groups * stride;
  for (size_t k = 0; k < cols; k++) {
    size_t byte;
    int nibble;
    code_position(bits, gs, i, k, &byte, &nibble);
    unsigned q = (block[byte] >> (4 * nibble)) & ((1u << bits) - 1u);
    const uint8_t *group = block + (k / gs) * stride;
    out[k] = (float)q * group_value(group, bits, gs, i, 0) + group_value(group, bits, gs, i, 1);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Activations
// ---------------------------------------------------------------------------------------------------------------

#if FOLIO_X86
// Groups of a multiple of 16 columns: max |x| and Σ x in registers, then round-to-nearest-even conversions.
__attribute__((target("avx512f,avx512bw"))) static void quantize_activations_avx512(const float *x, size_t tokens,
                                                                                     size_t cols, size_t group_size,
                                                                                     int8_t *q, float *scales,
                                                                                     float *sums) {
  size_t groups = cols / group_size;
  for (size_t t = 0; t < tokens; t++) {
    for (size_t g = 0; g < groups; g++) {
      const float *xg = x + t * cols + g * group_size;
      int8_t *qg = q + t * cols + g * group_size;
      __m512 amax = _mm512_setzero_ps(), sum = _mm512_setzero_ps();
      for (size_t i = 0; i < group_size; i += 16) {
        __m512 v = _mm512_loadu_ps(xg + i);
        amax = _mm512_max_ps(amax, _mm512_abs_ps(v));
        sum = _mm512_add_ps(sum, v);
      }
      float m = _mm512_reduce_max_ps(amax);
      __m512 inverse = _mm512_set1_ps(m > 0 ? 127.0f / m : 0);
      for (size_t i = 0; i < group_size; i += 16) {
        __m512i n = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xg + i), inverse));
        _mm_storeu_si128((__m128i *)(qg + i), _mm512_cvtsepi32_epi8(n));
      }
      scales[t * groups + g] = m / 127.0f;
      sums[t * groups + g] = _mm512_reduce_add_ps(sum);
    }
  }
}

__attribute__((target("avx2,fma"))) static float reduce_avx2(__m256 v, int maximum) {
  __m128 s = maximum ? _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))
                     : _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 high = _mm_movehl_ps(s, s);
  s = maximum ? _mm_max_ps(s, high) : _mm_add_ps(s, high);
  high = _mm_shuffle_ps(s, s, 1);
  s = maximum ? _mm_max_ss(s, high) : _mm_add_ss(s, high);
  return _mm_cvtss_f32(s);
}

// As the AVX-512 version, eight columns at a time (groups of a multiple of 8 columns).
__attribute__((target("avx2,fma"))) static void quantize_activations_avx2(const float *x, size_t tokens, size_t cols,
                                                                           size_t group_size, int8_t *q,
                                                                           float *scales, float *sums) {
  size_t groups = cols / group_size;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (size_t t = 0; t < tokens; t++) {
    for (size_t g = 0; g < groups; g++) {
      const float *xg = x + t * cols + g * group_size;
      int8_t *qg = q + t * cols + g * group_size;
      __m256 amax = _mm256_setzero_ps(), sum = _mm256_setzero_ps();
      for (size_t i = 0; i < group_size; i += 8) {
        __m256 v = _mm256_loadu_ps(xg + i);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v));
        sum = _mm256_add_ps(sum, v);
      }
      float m = reduce_avx2(amax, 1);
      __m256 inverse = _mm256_set1_ps(m > 0 ? 127.0f / m : 0);
      for (size_t i = 0; i < group_size; i += 8) {
        __m256i n = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xg + i), inverse));
        __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(n), _mm256_extracti128_si256(n, 1));
        _mm_storel_epi64((__m128i *)(qg + i), _mm_packs_epi16(words, words));
      }
      scales[t * groups + g] = m / 127.0f;
      sums[t * groups + g] = reduce_avx2(sum, 0);
    }
  }
}
#endif

void folio_quantize_activations(const float *x, size_t tokens, size_t cols, size_t group_size, int8_t *q,
                                float *scales, float *sums) {
  folio_quantize_activations_on(folio_kernel_path(), x, tokens, cols, group_size, q, scales, sums);
}

void folio_quantize_activations_on(int path, const float *x, size_t tokens, size_t cols, size_t group_size,
                                   int8_t *q, float *scales, float *sums) {
  path = folio_supported_path(path);
#if FOLIO_X86
  if (path == FOLIO_PATH_AVX512 && group_size % 16 == 0 && __builtin_cpu_supports("avx512bw")) {
    quantize_activations_avx512(x, tokens, cols, group_size, q, scales, sums);
    return;
  }
  if ((path == FOLIO_PATH_AVX512 || path == FOLIO_PATH_AVX2) && group_size % 8 == 0) {
    quantize_activations_avx2(x, tokens, cols, group_size, q, scales, sums);
    return;
  }
#endif
#if defined(__aarch64__)
  if (path == FOLIO_PATH_NEON) {
    folio_neon_quantize_activations(x, tokens, cols, group_size, q, scales, sums);
    return;
  }
#endif
  size_t groups = cols / group_size;
  for (size_t t = 0; t < tokens; t++) {
    for (size_t g = 0; g < groups; g++) {
      const float *xg = x + t * cols + g * group_size;
      int8_t *qg = q + t * cols + g * group_size;
      float amax = 0, sum = 0;
      for (size_t i = 0; i < group_size; i++) {
        amax = fmaxf(amax, fabsf(xg[i]));
        sum += xg[i];
      }
      float scale = amax / 127.0f, inverse = amax > 0 ? 127.0f / amax : 0;
      for (size_t i = 0; i < group_size; i++) qg[i] = (int8_t)lrintf(xg[i] * inverse);
      scales[t * groups + g] = scale;
      sums[t * groups + g] = sum;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Portable path (also the reference the SIMD path is tested against)
// ---------------------------------------------------------------------------------------------------------------

static void int8_portable(const folio_int8_activations *x, size_t tokens, const folio_interleaved_weights *w,
                          size_t block_begin, size_t block_end, float *y, size_t ldy) {
  int bits = w->bits;
  size_t gs = w->group_size, cols = w->cols, groups = cols / gs;
  size_t stride = group_stride(bits, gs), steps = gs / step_columns(bits);
  for (size_t b = block_begin; b < block_end; b++) {
    for (size_t t = 0; t < tokens; t++) {
      float acc[BLOCK_ROWS] = {0};
      for (size_t g = 0; g < groups; g++) {
        const uint8_t *c = w->codes + (b * groups + g) * stride;
        const int8_t *xg = x->q + t * cols + g * gs;
        int32_t dot[BLOCK_ROWS] = {0};
        for (size_t s = 0; s < steps; s++) {
          for (size_t j = 0; j < STEP_BYTES; j++) {
            unsigned byte = c[s * STEP_BYTES + j];
            if (bits == 4) {
              dot[j / 4] += (int32_t)(byte & 15) * xg[8 * s + j % 4] + (int32_t)(byte >> 4) * xg[8 * s + 4 + j % 4];
            } else {
              dot[j / 4] += (int32_t)byte * xg[4 * s + j % 4];
            }
          }
        }
        float dx = x->scales[t * groups + g], sum = x->sums[t * groups + g];
        for (size_t i = 0; i < BLOCK_ROWS; i++)
          acc[i] += (float)dot[i] * (group_value(c, bits, gs, i, 0) * dx) + group_value(c, bits, gs, i, 1) * sum;
      }
      for (size_t i = 0; i < BLOCK_ROWS && b * BLOCK_ROWS + i < w->rows; i++) y[t * ldy + b * BLOCK_ROWS + i] = acc[i];
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// AVX-512 VNNI path
// ---------------------------------------------------------------------------------------------------------------

#if FOLIO_X86
#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))

static inline int32_t load4(const int8_t *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

// One 16-row block times NT tokens (NT a compile-time constant after inlining, so the sums stay in registers).
VNNI_TARGET __attribute__((always_inline)) static inline void block_vnni(const folio_int8_activations *x,
                                                                         const folio_interleaved_weights *w, size_t b,
                                                                         size_t t0, float *y, size_t ldy,
                                                                         const int NT) {
  const int bits = w->bits;
  const size_t gs = w->group_size, cols = w->cols, groups = cols / gs;
  const __m512i low_mask = _mm512_set1_epi8(0x0F);
  __m512 acc[TOKEN_TILE];
  for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
  const uint8_t *c = w->codes + b * groups * group_stride(bits, gs);
  for (size_t g = 0; g < groups; g++) {
    __m512i dot[TOKEN_TILE];
    for (int t = 0; t < NT; t++) dot[t] = _mm512_setzero_si512();
    const int8_t *xg = x->q + t0 * cols + g * gs;
    if (bits == 4 && NT == 1) {
      // One token: four independent sums so the dot products are not one long dependency chain.
      __m512i d1 = _mm512_setzero_si512(), d2 = _mm512_setzero_si512(), d3 = _mm512_setzero_si512();
      size_t k = 0;
      for (; k + 16 <= gs; k += 16, c += 2 * STEP_BYTES) {
        __m512i p0 = _mm512_loadu_si512((const void *)c), p1 = _mm512_loadu_si512((const void *)(c + STEP_BYTES));
        dot[0] = _mm512_dpbusd_epi32(dot[0], _mm512_and_si512(p0, low_mask), _mm512_set1_epi32(load4(xg + k)));
        d1 = _mm512_dpbusd_epi32(d1, _mm512_and_si512(_mm512_srli_epi16(p0, 4), low_mask),
                                 _mm512_set1_epi32(load4(xg + k + 4)));
        d2 = _mm512_dpbusd_epi32(d2, _mm512_and_si512(p1, low_mask), _mm512_set1_epi32(load4(xg + k + 8)));
        d3 = _mm512_dpbusd_epi32(d3, _mm512_and_si512(_mm512_srli_epi16(p1, 4), low_mask),
                                 _mm512_set1_epi32(load4(xg + k + 12)));
      }
      for (; k < gs; k += 8, c += STEP_BYTES) {
        __m512i p0 = _mm512_loadu_si512((const void *)c);
        dot[0] = _mm512_dpbusd_epi32(dot[0], _mm512_and_si512(p0, low_mask), _mm512_set1_epi32(load4(xg + k)));
        d1 = _mm512_dpbusd_epi32(d1, _mm512_and_si512(_mm512_srli_epi16(p0, 4), low_mask),
                                 _mm512_set1_epi32(load4(xg + k + 4)));
      }
      dot[0] = _mm512_add_epi32(_mm512_add_epi32(dot[0], d1), _mm512_add_epi32(d2, d3));
    } else if (bits == 8 && NT == 1) {
      __m512i d1 = _mm512_setzero_si512();
      size_t k = 0;
      for (; k + 8 <= gs; k += 8, c += 2 * STEP_BYTES) {
        dot[0] = _mm512_dpbusd_epi32(dot[0], _mm512_loadu_si512((const void *)c), _mm512_set1_epi32(load4(xg + k)));
        d1 = _mm512_dpbusd_epi32(d1, _mm512_loadu_si512((const void *)(c + STEP_BYTES)),
                                 _mm512_set1_epi32(load4(xg + k + 4)));
      }
      for (; k < gs; k += 4, c += STEP_BYTES)
        dot[0] = _mm512_dpbusd_epi32(dot[0], _mm512_loadu_si512((const void *)c), _mm512_set1_epi32(load4(xg + k)));
      dot[0] = _mm512_add_epi32(dot[0], d1);
    } else if (bits == 4) {
      for (size_t k = 0; k < gs; k += 8, c += STEP_BYTES) {
        __m512i packed = _mm512_loadu_si512((const void *)c);
        __m512i lo = _mm512_and_si512(packed, low_mask);
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_mask);
        for (int t = 0; t < NT; t++) {
          dot[t] = _mm512_dpbusd_epi32(dot[t], lo, _mm512_set1_epi32(load4(xg + t * cols + k)));
          dot[t] = _mm512_dpbusd_epi32(dot[t], hi, _mm512_set1_epi32(load4(xg + t * cols + k + 4)));
        }
      }
    } else {
      for (size_t k = 0; k < gs; k += 4, c += STEP_BYTES) {
        __m512i codes = _mm512_loadu_si512((const void *)c);
        for (int t = 0; t < NT; t++)
          dot[t] = _mm512_dpbusd_epi32(dot[t], codes, _mm512_set1_epi32(load4(xg + t * cols + k)));
      }
    }
    // The group's bf16 scales and biases follow its codes.
    __m512i scales_biases = _mm512_loadu_si512((const void *)c);
    c += 2 * BLOCK_ROWS * sizeof(uint16_t);
    __m512 scale =
        _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(scales_biases)), 16));
    __m512 bias =
        _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(scales_biases, 1)), 16));
    for (int t = 0; t < NT; t++) {
      size_t at = (t0 + t) * groups + g;
      __m512 scaled = _mm512_mul_ps(scale, _mm512_set1_ps(x->scales[at]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[t]), scaled, acc[t]);
      acc[t] = _mm512_fmadd_ps(bias, _mm512_set1_ps(x->sums[at]), acc[t]);
    }
  }
  size_t valid = w->rows - b * BLOCK_ROWS;
  __mmask16 mask = valid >= BLOCK_ROWS ? (__mmask16)0xFFFF : (__mmask16)((1u << valid) - 1u);
  for (int t = 0; t < NT; t++) _mm512_mask_storeu_ps(y + (t0 + t) * ldy + b * BLOCK_ROWS, mask, acc[t]);
}

VNNI_TARGET static void int8_vnni(const folio_int8_activations *x, size_t tokens,
                                  const folio_interleaved_weights *w, size_t block_begin, size_t block_end, float *y,
                                  size_t ldy) {
  // Token chunks keep their activations in L2 while the thread's blocks of rows stream past once per chunk.
  for (size_t c0 = 0; c0 < tokens; c0 += TOKEN_CHUNK) {
    size_t c1 = c0 + TOKEN_CHUNK < tokens ? c0 + TOKEN_CHUNK : tokens;
    for (size_t b = block_begin; b < block_end; b++) {
      size_t t = c0;
      for (; t + TOKEN_TILE <= c1; t += TOKEN_TILE) block_vnni(x, w, b, t, y, ldy, TOKEN_TILE);
      switch (c1 - t) {
        case 1: block_vnni(x, w, b, t, y, ldy, 1); break;
        case 2: block_vnni(x, w, b, t, y, ldy, 2); break;
        case 3: block_vnni(x, w, b, t, y, ldy, 3); break;
        case 4: block_vnni(x, w, b, t, y, ldy, 4); break;
        case 5: block_vnni(x, w, b, t, y, ldy, 5); break;
        case 6: block_vnni(x, w, b, t, y, ldy, 6); break;
        case 7: block_vnni(x, w, b, t, y, ldy, 7); break;
        default: break;
      }
    }
  }
}
#endif

// ---------------------------------------------------------------------------------------------------------------
// AVX2 path (x86-64 without AVX-512 VNNI: most laptops)
// ---------------------------------------------------------------------------------------------------------------

#if FOLIO_X86
#define AVX2_TARGET __attribute__((target("avx2,fma")))

static int has_vnni(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni");
}

// Per row of eight, Σ c·a over four columns: `vpmaddubsw` multiplies the unsigned codes by the signed activations
// and adds neighbours into int16 (|c0·a0 + c1·a1| ≤ 2·15·127, so 4-bit codes never saturate), `vpmaddwd` adds the
// two int16 halves of each row into int32.
AVX2_TARGET __attribute__((always_inline)) static inline __m256i dot4_avx2(__m256i codes, __m256i activations) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(codes, activations), _mm256_set1_epi16(1));
}

// One 16-row block (two halves of eight rows: bytes 0-31 and 32-63 of each step) times NT tokens. 8-bit codes are
// split into nibbles (c = 16·high + low) so that no int16 sum can saturate.
AVX2_TARGET __attribute__((always_inline)) static inline void block_avx2(const folio_int8_activations *x,
                                                                         const folio_interleaved_weights *w, size_t b,
                                                                         size_t t0, float *y, size_t ldy,
                                                                         const int NT) {
  const int bits = w->bits;
  const size_t gs = w->group_size, cols = w->cols, groups = cols / gs;
  const __m256i low_mask = _mm256_set1_epi8(0x0F);
  __m256 acc[2][4];
  for (int h = 0; h < 2; h++)
    for (int t = 0; t < NT; t++) acc[h][t] = _mm256_setzero_ps();
  const uint8_t *c = w->codes + b * groups * group_stride(bits, gs);
  for (size_t g = 0; g < groups; g++) {
    __m256i dot[2][4];
    for (int h = 0; h < 2; h++)
      for (int t = 0; t < NT; t++) dot[h][t] = _mm256_setzero_si256();
    const int8_t *xg = x->q + t0 * cols + g * gs;
    for (size_t k = 0; k < gs; k += step_columns(bits), c += STEP_BYTES) {
      for (int h = 0; h < 2; h++) {
        __m256i packed = _mm256_loadu_si256((const __m256i *)(c + 32 * h));
        __m256i lo = _mm256_and_si256(packed, low_mask);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_mask);
        for (int t = 0; t < NT; t++) {
          const int8_t *xt = xg + t * cols + k;
          if (bits == 4) {
            dot[h][t] = _mm256_add_epi32(dot[h][t], dot4_avx2(lo, _mm256_set1_epi32(load4(xt))));
            dot[h][t] = _mm256_add_epi32(dot[h][t], dot4_avx2(hi, _mm256_set1_epi32(load4(xt + 4))));
          } else {
            __m256i a = _mm256_set1_epi32(load4(xt));
            dot[h][t] = _mm256_add_epi32(dot[h][t], dot4_avx2(lo, a));
            dot[h][t] = _mm256_add_epi32(dot[h][t], _mm256_slli_epi32(dot4_avx2(hi, a), 4));
          }
        }
      }
    }
    // The group's 16 bf16 scales, then its 16 bf16 biases.
    for (int h = 0; h < 2; h++) {
      __m256 scale = _mm256_castsi256_ps(
          _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(c + 16 * h))), 16));
      __m256 bias = _mm256_castsi256_ps(
          _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(c + 32 + 16 * h))), 16));
      for (int t = 0; t < NT; t++) {
        size_t at = (t0 + t) * groups + g;
        __m256 scaled = _mm256_mul_ps(scale, _mm256_set1_ps(x->scales[at]));
        acc[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[h][t]), scaled, acc[h][t]);
        acc[h][t] = _mm256_fmadd_ps(bias, _mm256_set1_ps(x->sums[at]), acc[h][t]);
      }
    }
    c += 2 * BLOCK_ROWS * sizeof(uint16_t);
  }
  size_t valid = w->rows - b * BLOCK_ROWS;
  for (int t = 0; t < NT; t++) {
    float *out = y + (t0 + t) * ldy + b * BLOCK_ROWS;
    for (int h = 0; h < 2; h++) {
      if (valid >= (size_t)(8 * h + 8)) {
        _mm256_storeu_ps(out + 8 * h, acc[h][t]);
      } else {
        float lanes[8];
        _mm256_storeu_ps(lanes, acc[h][t]);
        for (size_t i = 8 * (size_t)h; i < valid && i < (size_t)(8 * h + 8); i++) out[i] = lanes[i - 8 * (size_t)h];
      }
    }
  }
}

AVX2_TARGET static void int8_avx2(const folio_int8_activations *x, size_t tokens, const folio_interleaved_weights *w,
                                  size_t block_begin, size_t block_end, float *y, size_t ldy) {
  for (size_t c0 = 0; c0 < tokens; c0 += TOKEN_CHUNK) {
    size_t c1 = c0 + TOKEN_CHUNK < tokens ? c0 + TOKEN_CHUNK : tokens;
    for (size_t b = block_begin; b < block_end; b++) {
      size_t t = c0;
      for (; t + 4 <= c1; t += 4) block_avx2(x, w, b, t, y, ldy, 4);
      switch (c1 - t) {
        case 1: block_avx2(x, w, b, t, y, ldy, 1); break;
        case 2: block_avx2(x, w, b, t, y, ldy, 2); break;
        case 3: block_avx2(x, w, b, t, y, ldy, 3); break;
        default: break;
      }
    }
  }
}
#endif

int folio_has_int8_dot(void) {
#if FOLIO_X86
  // VNNI or the AVX2 kernel's vpmaddubsw (every AVX-512 CPU has AVX2), unless a portable path is forced.
  int path = folio_kernel_path();
  return path == FOLIO_PATH_AVX2 || path == FOLIO_PATH_AVX512;
#elif defined(__aarch64__)
  return folio_neon_has_dot_product();
#else
  return 0;
#endif
}

void folio_linear_int8_on(int path, const folio_int8_activations *x, size_t tokens,
                          const folio_interleaved_weights *w, size_t block_begin, size_t block_end, float *y,
                          size_t ldy) {
#if FOLIO_X86
  int supported = folio_supported_path(path);
  if (supported == FOLIO_PATH_AVX512 && has_vnni() && w->group_size % 8 == 0) {
    int8_vnni(x, tokens, w, block_begin, block_end, y, ldy);
    return;
  }
  if ((supported == FOLIO_PATH_AVX512 || supported == FOLIO_PATH_AVX2) && w->group_size % 8 == 0) {
    int8_avx2(x, tokens, w, block_begin, block_end, y, ldy);
    return;
  }
#endif
#if defined(__aarch64__)
  if (path == FOLIO_PATH_NEON && folio_has_int8_dot()) {
    folio_neon_int8(x, tokens, w, block_begin, block_end, y, ldy);
    return;
  }
#endif
  (void)path;
  int8_portable(x, tokens, w, block_begin, block_end, y, ldy);
}
