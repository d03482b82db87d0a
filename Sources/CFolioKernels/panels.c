// bf16 weights in row panels, for decode at memory speed.
//
// A token's decode reads every weight once, so it runs at the speed memory delivers them. Row-major bf16 rows are
// read four at a time as four short streams (2 KiB per row of a 1024-wide matrix, each page split between rows),
// which the hardware prefetchers follow poorly: measured ~8 GB/s per core against ~18 GB/s for one sequential
// stream. Panels make each thread's weights one stream: blocks of 16 rows, each a run of 32-column chunks, a chunk
// holding its 16 rows' 32 values row after row (16 × 64 bytes). Rows past the matrix and columns past its width
// are zero.
//
// Widening is two bit operations per 32 values: a 32-bit lane holds columns 2i (low half) and 2i+1 (high half), so
// `lane << 16` is column 2i as fp32 and `lane & 0xFFFF0000` column 2i+1; the activations are split into even and
// odd columns once per call to match (folio_split_even_odd).
#include "CFolioKernels.h"
#include "bf16.h"
#include "neon.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FOLIO_X86 1
#endif

enum { PANEL_ROWS = 16, CHUNK = 32 };

static size_t chunks_of(size_t cols) { return (cols + CHUNK - 1) / CHUNK; }

size_t folio_bf16_panel_bytes(size_t rows, size_t cols) {
  return (rows + PANEL_ROWS - 1) / PANEL_ROWS * chunks_of(cols) * PANEL_ROWS * CHUNK * sizeof(uint16_t);
}

void folio_bf16_pack_panels(const uint16_t *src, size_t rows, size_t cols, size_t block_begin, size_t block_end,
                            uint16_t *panels) {
  size_t chunks = chunks_of(cols);
  for (size_t b = block_begin; b < block_end; b++) {
    uint16_t *block = panels + b * chunks * PANEL_ROWS * CHUNK;
    for (size_t k = 0; k < PANEL_ROWS; k++) {
      size_t r = b * PANEL_ROWS + k;
      for (size_t c = 0; c < chunks; c++) {
        uint16_t *out = block + (c * PANEL_ROWS + k) * CHUNK;
        size_t first = c * CHUNK;
        size_t n = r < rows ? (cols - first < CHUNK ? cols - first : CHUNK) : 0;
        if (n) memcpy(out, src + r * cols + first, n * sizeof(uint16_t));
        if (n < CHUNK) memset(out + n, 0, (CHUNK - n) * sizeof(uint16_t));
      }
    }
  }
}

void folio_bf16_panel_row(const uint16_t *panels, size_t cols, size_t r, float *out) {
  size_t chunks = chunks_of(cols);
  const uint16_t *block = panels + r / PANEL_ROWS * chunks * PANEL_ROWS * CHUNK;
  for (size_t i = 0; i < cols; i++) {
    out[i] = bf16_to_f32(block[(i / CHUNK * PANEL_ROWS + r % PANEL_ROWS) * CHUNK + i % CHUNK]);
  }
}

void folio_bf16_unpack_panels(const uint16_t *panels, size_t cols, size_t block_begin, size_t block_end,
                              float *out) {
  size_t chunks = chunks_of(cols);
  for (size_t b = block_begin; b < block_end; b++) {
    const uint16_t *block = panels + b * chunks * PANEL_ROWS * CHUNK;
    for (size_t k = 0; k < PANEL_ROWS; k++) {
      float *row = out + ((b - block_begin) * PANEL_ROWS + k) * cols;
      for (size_t c = 0; c < chunks; c++) {
        const uint16_t *in = block + (c * PANEL_ROWS + k) * CHUNK;
        size_t n = cols - c * CHUNK < CHUNK ? cols - c * CHUNK : CHUNK;
        for (size_t i = 0; i < n; i++) row[c * CHUNK + i] = bf16_to_f32(in[i]);
      }
    }
  }
}

size_t folio_even_odd_floats(size_t cols) { return chunks_of(cols) * CHUNK; }

void folio_split_even_odd(const float *x, size_t tokens, size_t cols, float *out) {
  size_t chunks = chunks_of(cols), width = chunks * CHUNK;
  for (size_t t = 0; t < tokens; t++) {
    const float *xt = x + t * cols;
    float *o = out + t * width;
    for (size_t c = 0; c < chunks; c++) {
      for (size_t i = 0; i < CHUNK / 2; i++) {
        size_t even = c * CHUNK + 2 * i, odd = even + 1;
        o[c * CHUNK + i] = even < cols ? xt[even] : 0;
        o[c * CHUNK + CHUNK / 2 + i] = odd < cols ? xt[odd] : 0;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Kernels: y[t·ldy + r] = Σ_i x[t, i]·w[r, i] for the rows of blocks [block_begin, block_end), x split even/odd.
// ---------------------------------------------------------------------------------------------------------------

static void store_rows(const float *sums, size_t first_row, size_t rows, float *y) {
  for (size_t k = 0; k < PANEL_ROWS && first_row + k < rows; k++) y[first_row + k] = sums[k];
}

static void panels_portable(const float *xeo, size_t tokens, const uint16_t *panels, size_t rows, size_t cols,
                            size_t bb, size_t be, float *y, size_t ldy) {
  size_t chunks = chunks_of(cols), width = chunks * CHUNK;
  for (size_t b = bb; b < be; b++) {
    const uint16_t *block = panels + b * chunks * PANEL_ROWS * CHUNK;
    for (size_t t = 0; t < tokens; t++) {
      float sums[PANEL_ROWS] = {0};
      for (size_t c = 0; c < chunks; c++) {
        const float *xe = xeo + t * width + c * CHUNK, *xo = xe + CHUNK / 2;
        for (size_t k = 0; k < PANEL_ROWS; k++) {
          const uint16_t *w = block + (c * PANEL_ROWS + k) * CHUNK;
          float s = 0;
          for (size_t i = 0; i < CHUNK / 2; i++) s += bf16_to_f32(w[2 * i]) * xe[i] + bf16_to_f32(w[2 * i + 1]) * xo[i];
          sums[k] += s;
        }
      }
      store_rows(sums, b * PANEL_ROWS, rows, y + t * ldy);
    }
  }
}

#if FOLIO_X86
__attribute__((target("avx512f"))) static void panels_avx512(const float *xeo, size_t tokens,
                                                              const uint16_t *panels, size_t rows, size_t cols,
                                                              size_t bb, size_t be, float *y, size_t ldy) {
  size_t chunks = chunks_of(cols), width = chunks * CHUNK;
  const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u);
  for (size_t b = bb; b < be; b++) {
    const uint16_t *block = panels + b * chunks * PANEL_ROWS * CHUNK;
    for (size_t t = 0; t < tokens; t++) {
      __m512 acc[PANEL_ROWS];
      for (int k = 0; k < PANEL_ROWS; k++) acc[k] = _mm512_setzero_ps();
      const float *xt = xeo + t * width;
      for (size_t c = 0; c < chunks; c++) {
        __m512 xe = _mm512_loadu_ps(xt + c * CHUNK), xo = _mm512_loadu_ps(xt + c * CHUNK + 16);
        const uint16_t *w = block + c * PANEL_ROWS * CHUNK;
        for (int k = 0; k < PANEL_ROWS; k++) {
          __m512i v = _mm512_loadu_si512((const void *)(w + k * CHUNK));
          acc[k] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), xe, acc[k]);
          acc[k] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, high)), xo, acc[k]);
        }
      }
      float sums[PANEL_ROWS];
      for (int k = 0; k < PANEL_ROWS; k++) sums[k] = _mm512_reduce_add_ps(acc[k]);
      store_rows(sums, b * PANEL_ROWS, rows, y + t * ldy);
    }
  }
}

// Eight rows at a time (sixteen 256-bit accumulators would not leave registers for the activations).
__attribute__((target("avx2,fma"))) static void panels_avx2(const float *xeo, size_t tokens, const uint16_t *panels,
                                                             size_t rows, size_t cols, size_t bb, size_t be,
                                                             float *y, size_t ldy) {
  size_t chunks = chunks_of(cols), width = chunks * CHUNK;
  const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
  for (size_t b = bb; b < be; b++) {
    const uint16_t *block = panels + b * chunks * PANEL_ROWS * CHUNK;
    for (size_t t = 0; t < tokens; t++) {
      float sums[PANEL_ROWS];
      const float *xt = xeo + t * width;
      for (int half = 0; half < 2; half++) {
        __m256 acc[8];
        for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();
        for (size_t c = 0; c < chunks; c++) {
          // Lanes of the first 16 columns pair with even/odd activations 0-7, the next 16 with 8-15.
          __m256 xe0 = _mm256_loadu_ps(xt + c * CHUNK), xe1 = _mm256_loadu_ps(xt + c * CHUNK + 8);
          __m256 xo0 = _mm256_loadu_ps(xt + c * CHUNK + 16), xo1 = _mm256_loadu_ps(xt + c * CHUNK + 24);
          const uint16_t *w = block + (c * PANEL_ROWS + half * 8) * CHUNK;
          for (int k = 0; k < 8; k++) {
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(w + k * CHUNK));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)(w + k * CHUNK + 16));
            acc[k] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)), xe0, acc[k]);
            acc[k] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v0, high)), xo0, acc[k]);
            acc[k] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)), xe1, acc[k]);
            acc[k] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v1, high)), xo1, acc[k]);
          }
        }
        for (int k = 0; k < 8; k++) {
          __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc[k]), _mm256_extractf128_ps(acc[k], 1));
          s = _mm_add_ps(s, _mm_movehl_ps(s, s));
          s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
          sums[half * 8 + k] = _mm_cvtss_f32(s);
        }
      }
      store_rows(sums, b * PANEL_ROWS, rows, y + t * ldy);
    }
  }
}
#endif

void folio_linear_bf16_panels_on(int path, const float *xeo, size_t tokens, const uint16_t *panels, size_t rows,
                                 size_t cols, size_t block_begin, size_t block_end, float *y, size_t ldy) {
  switch (folio_supported_path(path)) {
#if FOLIO_X86
    case FOLIO_PATH_AVX512:
      panels_avx512(xeo, tokens, panels, rows, cols, block_begin, block_end, y, ldy);
      return;
    case FOLIO_PATH_AVX2:
      panels_avx2(xeo, tokens, panels, rows, cols, block_begin, block_end, y, ldy);
      return;
#endif
#if defined(__aarch64__)
    case FOLIO_PATH_NEON:
      folio_neon_bf16_panels(xeo, tokens, panels, rows, cols, block_begin, block_end, y, ldy);
      return;
#endif
    default: panels_portable(xeo, tokens, panels, rows, cols, block_begin, block_end, y, ldy);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// bf16 dot products: a prompt's activations rounded to bf16 once per call, multiplied with the panels by
// AVX512_BF16's `vdpbf16ps` (32 products per instruction, twice the fp32 FMA rate; products of two bf16 values are
// exact in fp32 and accumulate in fp32). A chunk row of a panel holds 32 consecutive columns in order, so it pairs
// lane by lane with the same 32 columns of a token's bf16 row; 4 rows × 4 tokens of sums stay in registers.
// ---------------------------------------------------------------------------------------------------------------

enum { BF16_TOKEN_TILE = 64, BF16_ROWS = 4, BF16_TOKENS = 4 };

int folio_has_bf16_dot(void) {
#if FOLIO_X86
  __builtin_cpu_init();
  return folio_kernel_path() == FOLIO_PATH_AVX512 && __builtin_cpu_supports("avx512bf16");
#else
  return 0;
#endif
}

static void round_rows_portable(const float *x, size_t tokens, size_t cols, uint16_t *out) {
  size_t width = chunks_of(cols) * CHUNK;
  for (size_t t = 0; t < tokens; t++) {
    for (size_t i = 0; i < cols; i++) out[t * width + i] = f32_to_bf16(x[t * cols + i]);
    for (size_t i = cols; i < width; i++) out[t * width + i] = 0;
  }
}

#if FOLIO_X86
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

BF16_TARGET static void round_rows_avx512(const float *x, size_t tokens, size_t cols, uint16_t *out) {
  size_t width = chunks_of(cols) * CHUNK;
  for (size_t t = 0; t < tokens; t++) {
    const float *row = x + t * cols;
    uint16_t *o = out + t * width;
    size_t i = 0;
    for (; i + 16 <= cols; i += 16) {
      __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(row + i));
      _mm256_storeu_si256((__m256i *)(o + i), (__m256i)h);
    }
    for (; i < cols; i++) o[i] = f32_to_bf16(row[i]);
    for (; i < width; i++) o[i] = 0;
  }
}

// BF16_ROWS rows of one block × NT tokens over every chunk; NT is a constant after inlining (sums in registers).
BF16_TARGET __attribute__((always_inline)) static inline void tile_bf16(const uint16_t *xbf, size_t width,
                                                                         const uint16_t *block, size_t chunks,
                                                                         size_t r0, size_t rows, size_t first_row,
                                                                         size_t t, float *y, size_t ldy,
                                                                         const int NT) {
  __m512 acc[BF16_ROWS][BF16_TOKENS];
  for (int k = 0; k < BF16_ROWS; k++)
    for (int j = 0; j < NT; j++) acc[k][j] = _mm512_setzero_ps();
  for (size_t c = 0; c < chunks; c++) {
    const uint16_t *w = block + (c * PANEL_ROWS + r0) * CHUNK;
    __m512bh x[BF16_TOKENS];
    for (int j = 0; j < NT; j++) x[j] = (__m512bh)_mm512_loadu_si512((const void *)(xbf + (t + j) * width + c * CHUNK));
    for (int k = 0; k < BF16_ROWS; k++) {
      __m512bh wk = (__m512bh)_mm512_loadu_si512((const void *)(w + k * CHUNK));
      for (int j = 0; j < NT; j++) acc[k][j] = _mm512_dpbf16_ps(acc[k][j], wk, x[j]);
    }
  }
  for (int k = 0; k < BF16_ROWS; k++) {
    size_t r = first_row + r0 + (size_t)k;
    if (r >= rows) break;
    for (int j = 0; j < NT; j++) y[(t + j) * ldy + r] = _mm512_reduce_add_ps(acc[k][j]);
  }
}

BF16_TARGET static void bf16_dot_avx512(const uint16_t *xbf, size_t tokens, const uint16_t *panels, size_t rows,
                                        size_t cols, size_t bb, size_t be, float *y, size_t ldy) {
  size_t chunks = chunks_of(cols), width = chunks * CHUNK;
  // Token tiles keep their bf16 rows in L2 while the thread's blocks (a few KiB each) are reused from L1/L2.
  for (size_t t0 = 0; t0 < tokens; t0 += BF16_TOKEN_TILE) {
    size_t t1 = t0 + BF16_TOKEN_TILE < tokens ? t0 + BF16_TOKEN_TILE : tokens;
    for (size_t b = bb; b < be; b++) {
      const uint16_t *block = panels + b * chunks * PANEL_ROWS * CHUNK;
      for (size_t r0 = 0; r0 < PANEL_ROWS && b * PANEL_ROWS + r0 < rows; r0 += BF16_ROWS) {
        size_t t = t0;
        for (; t + BF16_TOKENS <= t1; t += BF16_TOKENS)
          tile_bf16(xbf, width, block, chunks, r0, rows, b * PANEL_ROWS, t, y, ldy, BF16_TOKENS);
        switch (t1 - t) {
          case 1: tile_bf16(xbf, width, block, chunks, r0, rows, b * PANEL_ROWS, t, y, ldy, 1); break;
          case 2: tile_bf16(xbf, width, block, chunks, r0, rows, b * PANEL_ROWS, t, y, ldy, 2); break;
          case 3: tile_bf16(xbf, width, block, chunks, r0, rows, b * PANEL_ROWS, t, y, ldy, 3); break;
          default: break;
        }
      }
    }
  }
}
#endif

void folio_bf16_round_rows(const float *x, size_t tokens, size_t cols, uint16_t *out) {
#if FOLIO_X86
  if (folio_has_bf16_dot()) {
    round_rows_avx512(x, tokens, cols, out);
    return;
  }
#endif
  round_rows_portable(x, tokens, cols, out);
}

// Portable: the same products (exact in fp32), summed in fp32 per chunk row.
static void bf16_dot_portable(const uint16_t *xbf, size_t tokens, const uint16_t *panels, size_t rows, size_t cols,
                              size_t bb, size_t be, float *y, size_t ldy) {
  size_t chunks = chunks_of(cols), width = chunks * CHUNK;
  for (size_t b = bb; b < be; b++) {
    const uint16_t *block = panels + b * chunks * PANEL_ROWS * CHUNK;
    for (size_t t = 0; t < tokens; t++) {
      float sums[PANEL_ROWS] = {0};
      for (size_t c = 0; c < chunks; c++) {
        const uint16_t *x = xbf + t * width + c * CHUNK;
        for (size_t k = 0; k < PANEL_ROWS; k++) {
          const uint16_t *w = block + (c * PANEL_ROWS + k) * CHUNK;
          float s = 0;
          for (size_t i = 0; i < CHUNK; i++) s += bf16_to_f32(w[i]) * bf16_to_f32(x[i]);
          sums[k] += s;
        }
      }
      store_rows(sums, b * PANEL_ROWS, rows, y + t * ldy);
    }
  }
}

void folio_linear_bf16_dot_on(int path, const uint16_t *xbf, size_t tokens, const uint16_t *panels, size_t rows,
                              size_t cols, size_t block_begin, size_t block_end, float *y, size_t ldy) {
#if FOLIO_X86
  if (folio_supported_path(path) == FOLIO_PATH_AVX512 && folio_has_bf16_dot()) {
    bf16_dot_avx512(xbf, tokens, panels, rows, cols, block_begin, block_end, y, ldy);
    return;
  }
#endif
  (void)path;
  bf16_dot_portable(xbf, tokens, panels, rows, cols, block_begin, block_end, y, ldy);
}
