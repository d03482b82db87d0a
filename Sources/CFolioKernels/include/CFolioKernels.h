#pragma once
#include <stddef.h>
#include <stdint.h>

/// Element types of stored weights.
enum folio_weight_type { FOLIO_WEIGHT_F32 = 0, FOLIO_WEIGHT_BF16 = 1, FOLIO_WEIGHT_F16 = 2 };

/// SIMD paths the kernels can take, chosen once at run time from the CPU's features.
enum folio_kernel_path { FOLIO_PATH_PORTABLE = 0, FOLIO_PATH_AVX2 = 1, FOLIO_PATH_AVX512 = 2 };

/// The path `folio_linear_rows` takes on this CPU (AVX-512F, else AVX2+FMA+F16C, else portable C).
int folio_kernel_path(void);

/// `path` if this CPU supports it, else the best path it has.
int folio_supported_path(int path);

/// y[t * ldy + r] = Σ_i x[t * cols + i] · w[r * cols + i] for every token t < tokens and row r in [row_begin, row_end).
/// `w` points at row 0 of a row-major [rows, cols] matrix of `type`; x and y are fp32; accumulation is fp32.
void folio_linear_rows(const float *x, size_t tokens, const void *w, int type, size_t cols, size_t row_begin,
                       size_t row_end, float *y, size_t ldy);

/// As folio_linear_rows, on an explicit path (see folio_supported_path); tests compare paths with it.
void folio_linear_rows_on(int path, const float *x, size_t tokens, const void *w, int type, size_t cols,
                          size_t row_begin, size_t row_end, float *y, size_t ldy);

/// In-place numerically stable softmax over n floats: exp(x - max) / Σ, with a vectorised exp accurate to a few ulp.
void folio_softmax(float *x, size_t n);

/// Affine group-quantized weights in MLX's layout: per row, codes packed LSB-first into uint32 words (`bits` 4 or
/// 8), and per group of `group_size` columns an fp32 scale and bias, w ≈ scale · q + bias.
typedef struct {
  const uint32_t *codes;  // [rows, cols * bits / 32]
  const float *scales;    // [rows, cols / group_size]
  const float *biases;    // [rows, cols / group_size]
  int bits;
  size_t group_size;
} folio_affine_weights;

/// As folio_linear_rows, for affine-quantized weights (cols a multiple of group_size, group_size of 32).
void folio_linear_rows_affine(const float *x, size_t tokens, const folio_affine_weights *w, size_t cols,
                              size_t row_begin, size_t row_end, float *y, size_t ldy);

/// As folio_linear_rows_affine, on an explicit path.
void folio_linear_rows_affine_on(int path, const float *x, size_t tokens, const folio_affine_weights *w, size_t cols,
                                 size_t row_begin, size_t row_end, float *y, size_t ldy);

/// Widens rows [row_begin, row_end) of affine-quantized weights into `out` ([rows, cols] fp32, row_begin first).
void folio_dequantize_rows(const folio_affine_weights *w, size_t cols, size_t row_begin, size_t row_end, float *out);
