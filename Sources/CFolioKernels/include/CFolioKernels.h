#pragma once
#include <stddef.h>

/// Element types of stored weights.
enum folio_weight_type { FOLIO_WEIGHT_F32 = 0, FOLIO_WEIGHT_BF16 = 1, FOLIO_WEIGHT_F16 = 2 };

/// SIMD paths the kernels can take, chosen once at run time from the CPU's features.
enum folio_kernel_path { FOLIO_PATH_PORTABLE = 0, FOLIO_PATH_AVX2 = 1, FOLIO_PATH_AVX512 = 2 };

/// The path `folio_linear_rows` takes on this CPU (AVX-512F, else AVX2+FMA+F16C, else portable C).
int folio_kernel_path(void);

/// Forces a path (tests compare paths); returns the path actually set (never one the CPU lacks).
int folio_set_kernel_path(int path);

/// y[t * ldy + r] = Σ_i x[t * cols + i] · w[r * cols + i] for every token t < tokens and row r in [row_begin, row_end).
/// `w` points at row 0 of a row-major [rows, cols] matrix of `type`; x and y are fp32; accumulation is fp32.
void folio_linear_rows(const float *x, size_t tokens, const void *w, int type, size_t cols, size_t row_begin,
                       size_t row_end, float *y, size_t ldy);

/// In-place numerically stable softmax over n floats: exp(x - max) / Σ, with a vectorised exp accurate to a few ulp.
void folio_softmax(float *x, size_t n);
