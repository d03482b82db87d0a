// The NEON kernels against the portable ones, on random inputs of awkward sizes (run by
// scripts/check_neon_kernels.sh, cross-compiled for arm64 and run under qemu-aarch64).
//
// Kernels with a path argument run on FOLIO_PATH_NEON and FOLIO_PATH_PORTABLE. Softmax, SiLU, GELU, the weighted
// rows and the activation quantizer choose their path themselves, so their portable twins come from a second build
// of softmax.c, linear.c and interleaved.c without __aarch64__, whose symbols the script prefixes with `portable_`.
//
// Errors: fp32 products relative to Σ|terms| of a double-precision reference (the scale of their rounding error);
// int8 products relative to the portable kernel (their int32 sums are exact, so only fp32 scaling and summation
// order differ); softmax, SiLU and GELU elementwise relative to the portable result; quantized codes and scales
// must be identical. Prints one line per kernel with its largest error; exits 1 on any mismatch.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "CFolioKernels.h"

#if !defined(__aarch64__)
#error "build for aarch64: this checks the NEON kernels"
#endif

void portable_folio_softmax(float *x, size_t n);
void portable_folio_silu_multiply(const float *a, const float *b, float *out, size_t n);
void portable_folio_gelu_tanh(float *x, size_t n);
void portable_folio_weighted_rows(const float *p, size_t groups, size_t count, const float *v, size_t row_stride,
                                  size_t cols, float *out);
void portable_folio_quantize_activations(const float *x, size_t tokens, size_t cols, size_t group_size, int8_t *q,
                                         float *scales, float *sums);

// ---------------------------------------------------------------------------------------------------------------
// Random numbers, buffers, reports
// ---------------------------------------------------------------------------------------------------------------

static uint64_t rng_state = 0x5EED0F0110ULL;

static uint64_t next_random(void) {  // splitmix64
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)((next_random() >> 40) * 0x1p-24); }

static void *allocate(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  return p;
}

static const float SENTINEL = 1234567.0f;  // outputs a kernel must not write

static float *sentinels(size_t n) {
  float *p = allocate(n * sizeof(float));
  for (size_t i = 0; i < n; i++) p[i] = SENTINEL;
  return p;
}

typedef struct {
  const char *name;
  double tolerance;
  double worst;           // NEON
  double worst_portable;  // the portable twin against the same reference (fp32 kernels), or -1
  long cases;
  long failures;
} report;

static int failed;

static void fail(report *r, const char *what, double error) {
  r->failures++;
  failed = 1;
  if (r->failures <= 5) printf("FAIL %s: %s (error %.3g)\n", r->name, what, error);
}

// |got − expected| / scale, with a matching pair of infinities or NaNs as no error.
static double relative(double got, double expected, double scale) {
  if (got == expected) return 0;
  if (isnan(got) && isnan(expected)) return 0;
  if (!(scale > 0)) return INFINITY;
  double e = fabs(got - expected) / scale;
  return isnan(e) ? INFINITY : e;
}

// Records an error; `what` describes the case.
static void record(report *r, double error, const char *what) {
  if (error > r->worst || isnan(error)) r->worst = isnan(error) ? INFINITY : error;
  if (!(error <= r->tolerance)) fail(r, what, error);
}

static void record_portable(report *r, double error) {
  if (error > r->worst_portable) r->worst_portable = error;
}

static void print_report(const report *r) {
  printf("%-30s max error %9.3g", r->name, r->worst);
  if (r->worst_portable >= 0) printf("  (portable %9.3g)", r->worst_portable);
  printf("  tolerance %.0e  %5ld cases  %s\n", r->tolerance, r->cases, r->failures ? "FAIL" : "ok");
}

// ---------------------------------------------------------------------------------------------------------------
// Weight encodings
// ---------------------------------------------------------------------------------------------------------------

static uint16_t to_bf16(float f) {
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  return (uint16_t)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

static float from_bf16(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static uint16_t to_f16(float f) {
  __fp16 h = (__fp16)f;
  uint16_t bits;
  memcpy(&bits, &h, sizeof bits);
  return bits;
}

static float from_f16(uint16_t bits) {
  __fp16 h;
  memcpy(&h, &bits, sizeof h);
  return (float)h;
}

// ---------------------------------------------------------------------------------------------------------------
// Linear rows: folio_linear_rows_strided_on and folio_linear_rows_on, fp32/bf16/f16 weights
// ---------------------------------------------------------------------------------------------------------------

static const char *type_name(int type) {
  return type == FOLIO_WEIGHT_BF16 ? "bf16" : type == FOLIO_WEIGHT_F16 ? "f16" : "f32";
}

static void check_linear(report *strided_report, report *rows_report) {
  static const size_t token_counts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 50};
  static const size_t row_counts[] = {1, 3, 4, 5, 7, 13};
  static const size_t col_counts[] = {1, 3, 4, 7, 8, 15, 16, 17, 31, 33, 64, 100, 259};
  for (int type = 0; type < 3; type++) {
    for (int strided = 0; strided < 2; strided++) {
      report *rep = strided ? strided_report : rows_report;
      for (size_t a = 0; a < sizeof token_counts / sizeof *token_counts; a++) {
        for (size_t b = 0; b < sizeof row_counts / sizeof *row_counts; b++) {
          for (size_t c = 0; c < sizeof col_counts / sizeof *col_counts; c++) {
            size_t tokens = token_counts[a], n = row_counts[b], cols = col_counts[c];
            size_t row_begin = strided ? 2 : 0, row_end = row_begin + n, stride = strided ? cols + 3 : cols;
            size_t ldy = row_end + 2, elements = row_end * stride;
            float *x = allocate(tokens * cols * sizeof(float));
            float *w = allocate(elements * sizeof(float));  // the weights as the kernel sees them
            void *raw = allocate(elements * (type == FOLIO_WEIGHT_F32 ? 4 : 2));
            for (size_t i = 0; i < tokens * cols; i++) x[i] = uniform(-1, 1);
            for (size_t i = 0; i < elements; i++) {
              float v = uniform(-1, 1);
              if (type == FOLIO_WEIGHT_BF16) {
                ((uint16_t *)raw)[i] = to_bf16(v);
                w[i] = from_bf16(((uint16_t *)raw)[i]);
              } else if (type == FOLIO_WEIGHT_F16) {
                ((uint16_t *)raw)[i] = to_f16(v);
                w[i] = from_f16(((uint16_t *)raw)[i]);
              } else {
                ((float *)raw)[i] = v;
                w[i] = v;
              }
            }
            float *y[2] = {sentinels(tokens * ldy), sentinels(tokens * ldy)};
            int paths[2] = {FOLIO_PATH_NEON, FOLIO_PATH_PORTABLE};
            for (int p = 0; p < 2; p++) {
              if (strided) {
                folio_linear_rows_strided_on(paths[p], x, tokens, raw, type, cols, stride, row_begin, row_end, y[p],
                                             ldy);
              } else {
                folio_linear_rows_on(paths[p], x, tokens, raw, type, cols, row_begin, row_end, y[p], ldy);
              }
            }
            char what[160];
            snprintf(what, sizeof what, "%s tokens %zu rows [%zu, %zu) cols %zu stride %zu ldy %zu", type_name(type),
                     tokens, row_begin, row_end, cols, stride, ldy);
            for (size_t t = 0; t < tokens; t++) {
              for (size_t r = 0; r < ldy; r++) {
                float got = y[0][t * ldy + r], portable = y[1][t * ldy + r];
                if (r < row_begin || r >= row_end) {
                  if (got != SENTINEL) fail(rep, what, INFINITY);  // wrote outside its rows
                  continue;
                }
                double sum = 0, scale = 0;
                for (size_t i = 0; i < cols; i++) {
                  double term = (double)x[t * cols + i] * w[r * stride + i];
                  sum += term;
                  scale += fabs(term);
                }
                record(rep, relative(got, sum, scale), what);
                record_portable(rep, relative(portable, sum, scale));
              }
            }
            rep->cases++;
            free(x);
            free(w);
            free(raw);
            free(y[0]);
            free(y[1]);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Weighted rows: folio_weighted_rows (attention's Σ p · v over strided value rows)
// ---------------------------------------------------------------------------------------------------------------

static void check_weighted_rows(report *rep) {
  static const size_t counts[] = {1, 2, 5, 37};
  static const size_t col_counts[] = {1, 3, 4, 5, 15, 16, 17, 31, 32, 33, 64, 100, 130};
  for (size_t groups = 1; groups <= 9; groups++) {
    for (size_t a = 0; a < sizeof counts / sizeof *counts; a++) {
      for (size_t c = 0; c < sizeof col_counts / sizeof *col_counts; c++) {
        for (int strided = 0; strided < 2; strided++) {
          size_t count = counts[a], cols = col_counts[c], stride = strided ? cols + 7 : cols;
          float *p = allocate(groups * count * sizeof(float)), *v = allocate(count * stride * sizeof(float));
          for (size_t i = 0; i < groups * count; i++) p[i] = uniform(0, 1);
          for (size_t i = 0; i < count * stride; i++) v[i] = uniform(-1, 1);
          float *out = sentinels(groups * cols), *portable = sentinels(groups * cols);
          folio_weighted_rows(p, groups, count, v, stride, cols, out);
          portable_folio_weighted_rows(p, groups, count, v, stride, cols, portable);
          char what[120];
          snprintf(what, sizeof what, "groups %zu count %zu cols %zu stride %zu", groups, count, cols, stride);
          for (size_t g = 0; g < groups; g++) {
            for (size_t col = 0; col < cols; col++) {
              double sum = 0, scale = 0;
              for (size_t s = 0; s < count; s++) {
                double term = (double)p[g * count + s] * v[s * stride + col];
                sum += term;
                scale += fabs(term);
              }
              record(rep, relative(out[g * cols + col], sum, scale), what);
              record_portable(rep, relative(portable[g * cols + col], sum, scale));
            }
          }
          rep->cases++;
          free(p);
          free(v);
          free(out);
          free(portable);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// bf16 row panels: folio_linear_bf16_panels_on
// ---------------------------------------------------------------------------------------------------------------

static void check_panels(report *rep) {
  static const size_t row_counts[] = {1, 7, 16, 17, 33};
  static const size_t col_counts[] = {1, 5, 31, 32, 33, 64, 100, 130};
  for (size_t tokens = 1; tokens <= 9; tokens++) {
    for (size_t b = 0; b < sizeof row_counts / sizeof *row_counts; b++) {
      for (size_t c = 0; c < sizeof col_counts / sizeof *col_counts; c++) {
        size_t rows = row_counts[b], cols = col_counts[c], blocks = (rows + 15) / 16;
        size_t block_begin = blocks > 1 ? 1 : 0, ldy = rows + 3, width = folio_even_odd_floats(cols);
        uint16_t *src = allocate(rows * cols * sizeof(uint16_t));
        for (size_t i = 0; i < rows * cols; i++) src[i] = to_bf16(uniform(-1, 1));
        uint16_t *panels = allocate(folio_bf16_panel_bytes(rows, cols));
        folio_bf16_pack_panels(src, rows, cols, 0, blocks, panels);
        float *x = allocate(tokens * cols * sizeof(float)), *xeo = allocate(tokens * width * sizeof(float));
        for (size_t i = 0; i < tokens * cols; i++) x[i] = uniform(-1, 1);
        folio_split_even_odd(x, tokens, cols, xeo);
        float *y[2] = {sentinels(tokens * ldy), sentinels(tokens * ldy)};
        folio_linear_bf16_panels_on(FOLIO_PATH_NEON, xeo, tokens, panels, rows, cols, block_begin, blocks, y[0], ldy);
        folio_linear_bf16_panels_on(FOLIO_PATH_PORTABLE, xeo, tokens, panels, rows, cols, block_begin, blocks, y[1],
                                    ldy);
        char what[120];
        snprintf(what, sizeof what, "tokens %zu rows %zu cols %zu blocks [%zu, %zu)", tokens, rows, cols, block_begin,
                 blocks);
        for (size_t t = 0; t < tokens; t++) {
          for (size_t r = 0; r < ldy; r++) {
            float got = y[0][t * ldy + r];
            if (r < block_begin * 16 || r >= rows) {
              if (got != SENTINEL) fail(rep, what, INFINITY);
              continue;
            }
            double sum = 0, scale = 0;
            for (size_t i = 0; i < cols; i++) {
              double term = (double)x[t * cols + i] * from_bf16(src[r * cols + i]);
              sum += term;
              scale += fabs(term);
            }
            record(rep, relative(got, sum, scale), what);
            record_portable(rep, relative(y[1][t * ldy + r], sum, scale));
          }
        }
        rep->cases++;
        free(src);
        free(panels);
        free(x);
        free(xeo);
        free(y[0]);
        free(y[1]);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Affine weights with fp32 activations: folio_linear_rows_affine_on
// ---------------------------------------------------------------------------------------------------------------

static void check_affine(report *rep) {
  static const int bit_widths[] = {4, 6, 8};
  static const size_t group_sizes[] = {32, 64, 128, 16};  // 16: not a NEON size (the portable kernel runs)
  static const size_t group_counts[] = {1, 3};
  static const size_t row_counts[] = {1, 3, 4, 5, 9};
  static const size_t token_counts[] = {1, 2, 3, 5};
  for (size_t bw = 0; bw < 3; bw++) {
    for (size_t gi = 0; gi < 4; gi++) {
      for (size_t gc = 0; gc < 2; gc++) {
        for (size_t ri = 0; ri < 5; ri++) {
          for (size_t ti = 0; ti < 4; ti++) {
            int bits = bit_widths[bw];
            size_t gs = group_sizes[gi], groups = group_counts[gc], cols = gs * groups, rows = row_counts[ri];
            size_t tokens = token_counts[ti], words = cols * (size_t)bits / 32;
            size_t row_begin = rows > 1 ? 1 : 0, ldy = rows + 2;
            uint32_t *codes = allocate(rows * words * sizeof(uint32_t));
            float *scales = allocate(rows * groups * sizeof(float)), *biases = allocate(rows * groups * sizeof(float));
            for (size_t i = 0; i < rows * words; i++) codes[i] = (uint32_t)next_random();
            for (size_t i = 0; i < rows * groups; i++) {
              scales[i] = uniform(0.001f, 0.02f);
              biases[i] = uniform(-0.1f, 0.1f);
            }
            folio_affine_weights w = {codes, scales, biases, bits, gs};
            float *x = allocate(tokens * cols * sizeof(float));
            for (size_t i = 0; i < tokens * cols; i++) x[i] = uniform(-1, 1);
            float *y[2] = {sentinels(tokens * ldy), sentinels(tokens * ldy)};
            folio_linear_rows_affine_on(FOLIO_PATH_NEON, x, tokens, &w, cols, row_begin, rows, y[0], ldy);
            folio_linear_rows_affine_on(FOLIO_PATH_PORTABLE, x, tokens, &w, cols, row_begin, rows, y[1], ldy);
            char what[120];
            snprintf(what, sizeof what, "%d-bit group %zu cols %zu tokens %zu rows [%zu, %zu)", bits, gs, cols, tokens,
                     row_begin, rows);
            for (size_t t = 0; t < tokens; t++) {
              for (size_t r = 0; r < ldy; r++) {
                float got = y[0][t * ldy + r];
                if (r < row_begin || r >= rows) {
                  if (got != SENTINEL) fail(rep, what, INFINITY);
                  continue;
                }
                double sum = 0, scale = 0;
                for (size_t i = 0; i < cols; i++) {
                  double s = scales[r * groups + i / gs], b = biases[r * groups + i / gs];
                  double q = folio_affine_code(codes + r * words, bits, i), xi = x[t * cols + i];
                  sum += xi * (s * q + b);
                  scale += fabs(xi) * (fabs(s) * q + fabs(b));
                }
                record(rep, relative(got, sum, scale), what);
                record_portable(rep, relative(y[1][t * ldy + r], sum, scale));
              }
            }
            rep->cases++;
            free(codes);
            free(scales);
            free(biases);
            free(x);
            free(y[0]);
            free(y[1]);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// int8 activations: folio_quantize_activations
// ---------------------------------------------------------------------------------------------------------------

static void check_quantize(report *rep) {
  static const size_t group_sizes[] = {4, 20, 32, 36, 64, 128};
  for (size_t tokens = 1; tokens <= 3; tokens++) {
    for (size_t gi = 0; gi < sizeof group_sizes / sizeof *group_sizes; gi++) {
      for (size_t groups = 1; groups <= 3; groups++) {
        size_t gs = group_sizes[gi], cols = gs * groups;
        float *x = allocate(tokens * cols * sizeof(float));
        for (size_t i = 0; i < tokens * cols; i++) x[i] = uniform(-2, 2);
        if (groups > 1)
          for (size_t i = 0; i < gs; i++) x[i] = 0;  // an all-zero group: scale 0, codes 0
        int8_t *q[2] = {allocate(tokens * cols), allocate(tokens * cols)};
        float *scales[2] = {allocate(tokens * groups * sizeof(float)), allocate(tokens * groups * sizeof(float))};
        float *sums[2] = {allocate(tokens * groups * sizeof(float)), allocate(tokens * groups * sizeof(float))};
        folio_quantize_activations(x, tokens, cols, gs, q[0], scales[0], sums[0]);
        portable_folio_quantize_activations(x, tokens, cols, gs, q[1], scales[1], sums[1]);
        char what[120];
        snprintf(what, sizeof what, "tokens %zu group %zu cols %zu", tokens, gs, cols);
        for (size_t i = 0; i < tokens * cols; i++) {
          if (q[0][i] != q[1][i]) {
            char detail[200];
            snprintf(detail, sizeof detail, "%s: code %zu is %d, portable %d", what, i, q[0][i], q[1][i]);
            record(rep, INFINITY, detail);
          }
        }
        for (size_t g = 0; g < tokens * groups; g++) {
          if (scales[0][g] != scales[1][g]) record(rep, INFINITY, what);
          double magnitude = 0;
          for (size_t i = 0; i < gs; i++) magnitude += fabs(x[g * gs + i]);
          record(rep, relative(sums[0][g], sums[1][g], magnitude), what);
        }
        rep->cases++;
        free(x);
        for (int p = 0; p < 2; p++) {
          free(q[p]);
          free(scales[p]);
          free(sums[p]);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// int8 × interleaved weights: folio_linear_int8_on
// ---------------------------------------------------------------------------------------------------------------

// Codes: 0 random, 1 the 8-bit codes all ≥ 128 with every activation negative.
static void int8_case(report *rep, int bits, size_t gs, size_t cols, size_t rows, size_t tokens, int high) {
  size_t groups = cols / gs, words = cols * (size_t)bits / 32, blocks = (rows + 15) / 16;
  uint32_t *codes = allocate(rows * words * sizeof(uint32_t));
  float *scales = allocate(rows * groups * sizeof(float)), *biases = allocate(rows * groups * sizeof(float));
  if (high) {
    memset(codes, 0, rows * words * sizeof(uint32_t));
    for (size_t r = 0; r < rows; r++) {
      for (size_t i = 0; i < cols; i++) {
        uint32_t code = 128 + (uint32_t)(next_random() % 128);
        codes[r * words + i / 4] |= code << (8 * (i % 4));
      }
    }
  } else {
    for (size_t i = 0; i < rows * words; i++) codes[i] = (uint32_t)next_random();
  }
  for (size_t i = 0; i < rows * groups; i++) {
    scales[i] = uniform(0.001f, 0.02f);
    biases[i] = uniform(-0.1f, 0.1f);
  }
  folio_affine_weights source = {codes, scales, biases, bits, gs};
  int layout = folio_interleaved_layout_bits(bits);
  uint8_t *packed = allocate(folio_interleaved_bytes(rows, cols, bits, gs));
  folio_interleave_affine(&source, rows, cols, 0, blocks, packed);
  folio_interleaved_weights w = {packed, layout, gs, rows, cols};

  float *x = allocate(tokens * cols * sizeof(float));
  for (size_t i = 0; i < tokens * cols; i++) x[i] = high ? uniform(-1, -0.01f) : uniform(-1, 1);
  int8_t *q = allocate(tokens * cols);
  float *dx = allocate(tokens * groups * sizeof(float)), *sums = allocate(tokens * groups * sizeof(float));
  folio_quantize_activations(x, tokens, cols, gs, q, dx, sums);
  folio_int8_activations activations = {q, dx, sums};

  size_t block_begin = blocks > 1 ? 1 : 0, ldy = rows + 5;
  float *y[2] = {sentinels(tokens * ldy), sentinels(tokens * ldy)};
  folio_linear_int8_on(FOLIO_PATH_NEON, &activations, tokens, &w, block_begin, blocks, y[0], ldy);
  folio_linear_int8_on(FOLIO_PATH_PORTABLE, &activations, tokens, &w, block_begin, blocks, y[1], ldy);

  char what[160];
  snprintf(what, sizeof what, "%d-bit%s group %zu cols %zu rows %zu tokens %zu blocks [%zu, %zu)", bits,
           high ? " (codes >= 128, activations < 0)" : "", gs, cols, rows, tokens, block_begin, blocks);
  // The scale of the fp32 rounding: Σ over groups of |scale · dx| · Σ|q · xq| + |bias · Σx| (bf16 scales and
  // biases as stored).
  uint32_t *row_codes = allocate(words * sizeof(uint32_t));
  float *row_scales = allocate(groups * sizeof(float)), *row_biases = allocate(groups * sizeof(float));
  for (size_t r = 0; r < ldy; r++) {
    if (r < block_begin * 16 || r >= rows) {
      for (size_t t = 0; t < tokens; t++)
        if (y[0][t * ldy + r] != SENTINEL) fail(rep, what, INFINITY);
      continue;
    }
    folio_deinterleave_affine(&w, bits, r, r + 1, row_codes, row_scales, row_biases);
    for (size_t t = 0; t < tokens; t++) {
      double scale = 0;
      for (size_t g = 0; g < groups; g++) {
        double dot = 0;
        for (size_t k = g * gs; k < (g + 1) * gs; k++)
          dot += (double)folio_affine_code(row_codes, bits, k) * abs(q[t * cols + k]);
        scale += fabs(row_scales[g] * dx[t * groups + g]) * dot + fabs(row_biases[g] * sums[t * groups + g]);
      }
      record(rep, relative(y[0][t * ldy + r], y[1][t * ldy + r], scale), what);
    }
  }
  rep->cases++;
  free(row_codes);
  free(row_scales);
  free(row_biases);
  free(codes);
  free(scales);
  free(biases);
  free(packed);
  free(x);
  free(q);
  free(dx);
  free(sums);
  free(y[0]);
  free(y[1]);
}

static void check_int8(report *rep) {
  static const int bit_widths[] = {4, 6, 8};
  // 40 and 36: a last part of a group shorter than 16 columns (4-bit: one 8-column step; 8-bit: one or two steps).
  static const size_t group_sizes[] = {32, 64, 128, 40, 36};
  static const size_t row_counts[] = {1, 15, 16, 17, 40};
  static const size_t token_counts[] = {1, 2, 3, 4, 5, 7, 9};
  for (size_t bw = 0; bw < 3; bw++) {
    for (size_t gi = 0; gi < sizeof group_sizes / sizeof *group_sizes; gi++) {
      int bits = bit_widths[bw];
      size_t gs = group_sizes[gi];
      if (gs % (bits == 4 ? 8 : 4) != 0) continue;  // a group is whole 64-byte steps
      for (size_t groups = 1; groups <= 4; groups++) {
        size_t cols = gs * groups;
        if (cols * (size_t)bits % 32 != 0) continue;  // whole uint32 words per row in MLX's layout
        for (size_t ri = 0; ri < sizeof row_counts / sizeof *row_counts; ri++)
          for (size_t ti = 0; ti < sizeof token_counts / sizeof *token_counts; ti++)
            int8_case(rep, bits, gs, cols, row_counts[ri], token_counts[ti], 0);
      }
    }
  }
  int8_case(rep, 8, 64, 128, 33, 70, 0);  // more tokens than a 64-token chunk
  for (size_t tokens = 1; tokens <= 5; tokens++) {
    int8_case(rep, 8, 32, 96, 17, tokens, 1);
    int8_case(rep, 8, 64, 128, 16, tokens, 1);
    int8_case(rep, 8, 128, 256, 20, tokens, 1);
    int8_case(rep, 8, 36, 144, 20, tokens, 1);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Softmax, SiLU, GELU: elementwise against the portable twins
// ---------------------------------------------------------------------------------------------------------------

static const size_t lengths[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 257, 1000, 3072};

static void compare_elementwise(report *rep, const float *got, const float *portable, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++) record(rep, relative(got[i], portable[i], fabs((double)portable[i])), what);
  rep->cases++;
}

static void check_softmax(report *rep) {
  for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
    for (int kind = 0; kind < 3; kind++) {
      size_t n = lengths[li];
      float range = kind == 0 ? 30 : 3;
      float *x = allocate(n * sizeof(float)), *portable = allocate(n * sizeof(float));
      for (size_t i = 0; i < n; i++) x[i] = uniform(-range, range);
      if (kind == 2)  // masked: −∞ scores (every third), as causal attention writes them
        for (size_t i = 1; i < n; i += 3) x[i] = -INFINITY;
      memcpy(portable, x, n * sizeof(float));
      folio_softmax(x, n);
      portable_folio_softmax(portable, n);
      char what[80];
      snprintf(what, sizeof what, "n %zu range %g%s", n, range, kind == 2 ? " masked" : "");
      compare_elementwise(rep, x, portable, n, what);
      free(x);
      free(portable);
    }
  }
}

static void check_silu(report *rep) {
  for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
    for (int kind = 0; kind < 4; kind++) {
      size_t n = lengths[li];
      float range = kind & 1 ? 100 : 5;
      int gated = kind >= 2;
      float *a = allocate(n * sizeof(float)), *b = allocate(n * sizeof(float));
      float *out = allocate(n * sizeof(float)), *portable = allocate(n * sizeof(float));
      for (size_t i = 0; i < n; i++) {
        a[i] = uniform(-range, range);
        b[i] = uniform(-2, 2);
      }
      portable_folio_silu_multiply(a, gated ? b : NULL, portable, n);
      folio_silu_multiply(a, gated ? b : NULL, out, n);
      char what[80];
      snprintf(what, sizeof what, "n %zu range %g%s", n, range, gated ? " times b" : "");
      compare_elementwise(rep, out, portable, n, what);
      folio_silu_multiply(a, gated ? b : NULL, a, n);  // in place, as the feed-forward calls it
      compare_elementwise(rep, a, portable, n, what);
      free(a);
      free(b);
      free(out);
      free(portable);
    }
  }
}

static void check_gelu(report *rep) {
  for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
    for (int kind = 0; kind < 2; kind++) {
      size_t n = lengths[li];
      float range = kind ? 12 : 3;
      float *x = allocate(n * sizeof(float)), *portable = allocate(n * sizeof(float));
      for (size_t i = 0; i < n; i++) x[i] = uniform(-range, range);
      memcpy(portable, x, n * sizeof(float));
      folio_gelu_tanh(x, n);
      portable_folio_gelu_tanh(portable, n);
      char what[80];
      snprintf(what, sizeof what, "n %zu range %g", n, range);
      compare_elementwise(rep, x, portable, n, what);
      free(x);
      free(portable);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------

int main(void) {
  int path = folio_kernel_path(), dot = folio_has_int8_dot();
  printf("kernel path %d (neon %d), int8 dot products %d\n", path, FOLIO_PATH_NEON, dot);
  if (path != FOLIO_PATH_NEON) {
    printf("FAIL folio_kernel_path() is %d, not FOLIO_PATH_NEON\n", path);
    failed = 1;
  }
  if (dot != 1) {
    printf("FAIL folio_has_int8_dot() is %d: the SDOT kernel would not run\n", dot);
    failed = 1;
  }
  static const int asked[] = {FOLIO_PATH_PORTABLE, FOLIO_PATH_AVX2, FOLIO_PATH_AVX512, FOLIO_PATH_NEON, -1, 7};
  static const int expected[] = {FOLIO_PATH_PORTABLE, FOLIO_PATH_NEON, FOLIO_PATH_NEON, FOLIO_PATH_NEON,
                                 FOLIO_PATH_NEON,     FOLIO_PATH_NEON};
  for (int i = 0; i < 6; i++) {
    if (folio_supported_path(asked[i]) != expected[i]) {
      printf("FAIL folio_supported_path(%d) is %d, not %d\n", asked[i], folio_supported_path(asked[i]), expected[i]);
      failed = 1;
    }
  }

  report reports[] = {
      {"folio_linear_rows_strided_on", 1e-5, 0, 0, 0, 0}, {"folio_linear_rows_on", 1e-5, 0, 0, 0, 0},
      {"folio_weighted_rows", 1e-5, 0, 0, 0, 0},          {"folio_linear_bf16_panels_on", 1e-5, 0, 0, 0, 0},
      {"folio_linear_rows_affine_on", 1e-5, 0, 0, 0, 0},  {"folio_quantize_activations", 1e-5, 0, -1, 0, 0},
      {"folio_linear_int8_on", 1e-5, 0, -1, 0, 0},        {"folio_softmax", 1e-6, 0, -1, 0, 0},
      {"folio_silu_multiply", 1e-6, 0, -1, 0, 0},         {"folio_gelu_tanh", 1e-6, 0, -1, 0, 0},
  };
  check_linear(&reports[0], &reports[1]);
  check_weighted_rows(&reports[2]);
  check_panels(&reports[3]);
  check_affine(&reports[4]);
  check_quantize(&reports[5]);
  check_int8(&reports[6]);
  check_softmax(&reports[7]);
  check_silu(&reports[8]);
  check_gelu(&reports[9]);
  for (size_t i = 0; i < sizeof reports / sizeof *reports; i++) print_report(&reports[i]);
  printf(failed ? "NEON kernels: FAILED\n" : "NEON kernels: all match the portable ones\n");
  return failed;
}
