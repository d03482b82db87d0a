// NEON kernels for arm64 (internal; not part of the module's public header): the twins of the portable kernels in
// linear.c, panels.c, affine.c, interleaved.c and softmax.c, which call them on FOLIO_PATH_NEON. Each computes what
// its portable twin computes (the same products, tails and strides), up to the order of fp32 sums.
#pragma once
#if defined(__aarch64__)
#include "CFolioKernels.h"

#include <stddef.h>
#include <stdint.h>

#define FOLIO_NEON_INTERNAL __attribute__((visibility("hidden")))

/// folio_linear_rows_strided_on: rows `row_stride` elements apart, 4 rows × up to 4 tokens per register block.
FOLIO_NEON_INTERNAL void folio_neon_linear(const float *x, size_t tokens, const void *w, int type, size_t cols,
                                           size_t row_stride, size_t row_begin, size_t row_end, float *y, size_t ldy);

/// folio_weighted_rows.
FOLIO_NEON_INTERNAL void folio_neon_weighted_rows(const float *p, size_t groups, size_t count, const float *v,
                                                  size_t row_stride, size_t cols, float *out);

/// folio_linear_bf16_panels_on.
FOLIO_NEON_INTERNAL void folio_neon_bf16_panels(const float *xeo, size_t tokens, const uint16_t *panels, size_t rows,
                                                size_t cols, size_t block_begin, size_t block_end, float *y,
                                                size_t ldy);

/// Whether folio_neon_affine takes these weights (4-, 6- or 8-bit codes, groups of a multiple of 32 columns).
FOLIO_NEON_INTERNAL int folio_neon_affine_supports(const folio_affine_weights *w);

/// folio_linear_rows_affine_on, for weights folio_neon_affine_supports.
FOLIO_NEON_INTERNAL void folio_neon_affine(const float *x, size_t tokens, const folio_affine_weights *w, size_t cols,
                                           size_t row_begin, size_t row_end, float *y, size_t ldy);

/// folio_quantize_activations.
FOLIO_NEON_INTERNAL void folio_neon_quantize_activations(const float *x, size_t tokens, size_t cols,
                                                         size_t group_size, int8_t *q, float *scales, float *sums);

/// Whether this CPU has the dot-product extension (FEAT_DotProd: SDOT/UDOT) folio_neon_int8 needs.
FOLIO_NEON_INTERNAL int folio_neon_has_dot_product(void);

/// folio_linear_int8_on's kernel with SDOT; only on a CPU where folio_neon_has_dot_product().
FOLIO_NEON_INTERNAL void folio_neon_int8(const folio_int8_activations *x, size_t tokens,
                                         const folio_interleaved_weights *w, size_t block_begin, size_t block_end,
                                         float *y, size_t ldy);

/// folio_softmax, folio_silu_multiply and folio_gelu_tanh, with softmax.c's exp polynomial in vectors.
FOLIO_NEON_INTERNAL void folio_neon_softmax(float *x, size_t n);
FOLIO_NEON_INTERNAL void folio_neon_silu_multiply(const float *a, const float *b, float *out, size_t n);
FOLIO_NEON_INTERNAL void folio_neon_gelu_tanh(float *x, size_t n);
#endif
