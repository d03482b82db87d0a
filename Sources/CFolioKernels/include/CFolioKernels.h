#pragma once
#include <stddef.h>
#include <stdint.h>

/// Element types of stored weights.
enum folio_weight_type { FOLIO_WEIGHT_F32 = 0, FOLIO_WEIGHT_BF16 = 1, FOLIO_WEIGHT_F16 = 2 };

/// SIMD paths the kernels can take, chosen once at run time from the CPU's features. The values are names, not
/// ranks: AVX2 and AVX-512 exist only on x86-64, NEON only on arm64; the portable C path everywhere.
enum folio_kernel_path { FOLIO_PATH_PORTABLE = 0, FOLIO_PATH_AVX2 = 1, FOLIO_PATH_AVX512 = 2, FOLIO_PATH_NEON = 3 };

/// The path `folio_linear_rows` takes on this CPU: on x86-64 AVX-512F, else AVX2+FMA+F16C, else portable C; on
/// arm64 NEON (baseline there); elsewhere portable C. The environment variable FOLIO_KERNEL_PATH (portable, avx2,
/// avx512, neon) picks a lesser path the CPU also has, to measure what a smaller CPU would run.
int folio_kernel_path(void);

/// `path` if this CPU supports it, else the best path it has (folio_kernel_path()): on x86-64 FOLIO_PATH_NEON gives
/// the best x86 path, on arm64 FOLIO_PATH_AVX2 and FOLIO_PATH_AVX512 give FOLIO_PATH_NEON.
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
/// folio_softmax through `path` (folio_supported_path(path)): every path gives the same values to a few ulp.
void folio_softmax_on(int path, float *x, size_t n);

/// Affine group-quantized weights in MLX's layout: per row, codes packed LSB-first into uint32 words (`bits` 4, 6
/// or 8), and per group of `group_size` columns an fp32 scale and bias, w ≈ scale · q + bias.
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

/// Affine-quantized weights repacked for int8 dot products (see interleaved.c): blocks of 16 rows; per block and
/// group of columns, 64-byte steps where byte j holds row j/4's codes for four consecutive columns (4-bit: low
/// nibbles columns k..k+3, high nibbles k+4..k+7), then the 16 rows' scales and biases in bf16. Rows past `rows`
/// in the last block are zero.
typedef struct {
  const uint8_t *codes;
  int bits;
  size_t group_size;
  size_t rows;
  size_t cols;
} folio_interleaved_weights;

/// The interleaved layout's code width for `bits`-bit codes: 4 stays nibbles, 6 and 8 take a byte each (the `bits`
/// of a folio_interleaved_weights).
int folio_interleaved_layout_bits(int bits);

/// Bytes of a [rows, cols] matrix in the interleaved layout (rows rounded up to blocks of 16).
size_t folio_interleaved_bytes(size_t rows, size_t cols, int bits, size_t group_size);

/// Repacks blocks [block_begin, block_end) of 16 rows from MLX's layout into the interleaved one (scales and
/// biases rounded to bf16, the type MLX stores them in for bf16 models). 6-bit codes take a byte each there (the
/// interleaved `bits` is then 8).
void folio_interleave_affine(const folio_affine_weights *src, size_t rows, size_t cols, size_t block_begin,
                             size_t block_end, uint8_t *out);

/// Writes rows [row_begin, row_end) back in MLX's layout with `source_bits`-bit codes (codes [n, cols·bits/32],
/// scales/biases [n, groups]).
void folio_deinterleave_affine(const folio_interleaved_weights *w, int source_bits, size_t row_begin,
                               size_t row_end, uint32_t *codes, float *scales, float *biases);

/// Code i of a row of MLX-layout codes (an LSB-first bit stream over uint32 words; 6-bit codes straddle words).
unsigned folio_affine_code(const uint32_t *row_codes, int bits, size_t i);

/// Row `r` of interleaved weights dequantized into `out` (cols floats).
void folio_interleaved_dequantize_row(const folio_interleaved_weights *w, size_t r, float *out);

/// Activations quantized per group of columns: x[t, k] ≈ scales[t, g] · q[t, k], with sums[t, g] = Σ x over the
/// group (exact, for the bias term).
typedef struct {
  const int8_t *q;      // [tokens, cols]
  const float *scales;  // [tokens, cols / group_size]
  const float *sums;    // [tokens, cols / group_size]
} folio_int8_activations;

/// Quantizes `tokens` rows of `cols` activations symmetrically to int8 per group of `group_size` columns.
void folio_quantize_activations(const float *x, size_t tokens, size_t cols, size_t group_size, int8_t *q,
                                float *scales, float *sums);
/// As folio_quantize_activations, on an explicit path (the same codes and scales on every path).
void folio_quantize_activations_on(int path, const float *x, size_t tokens, size_t cols, size_t group_size,
                                   int8_t *q, float *scales, float *sums);

/// Whether the interleaved kernel has a SIMD path on this CPU: AVX-512 VNNI or AVX2 (`vpmaddubsw`) on x86-64, the
/// dot-product extension (FEAT_DotProd, SDOT) on arm64; 0 when FOLIO_KERNEL_PATH forces the portable path.
int folio_has_int8_dot(void);

/// y[t * ldy + r] = Σ_k x[t, k] · w[r, k] for the rows of 16-row blocks [block_begin, block_end), with int8
/// activations; `path` FOLIO_PATH_AVX512 takes the VNNI kernel when the CPU has it (else the AVX2 one),
/// FOLIO_PATH_AVX2 the AVX2 kernel, FOLIO_PATH_NEON the SDOT kernel when the CPU has it, any other the portable one.
void folio_linear_int8_on(int path, const folio_int8_activations *x, size_t tokens,
                          const folio_interleaved_weights *w, size_t block_begin, size_t block_end, float *y,
                          size_t ldy);

/// A part of a parallel run: `part` in [0, parts).
typedef void (*folio_parallel_body)(void *context, size_t part);

/// Runs body(context, part) for every part on `threads` threads (the caller and threads − 1 shared workers that
/// spin briefly between runs, then sleep) and returns 1 when all are done; returns 0 without running anything when
/// another run holds the workers, so the caller can fall back to another mechanism.
int folio_parallel_run(size_t threads, size_t parts, folio_parallel_body body, void *context);

/// out[i] = silu(a[i]) · b[i] (b may be NULL: out[i] = silu(a[i])); `out` may alias `a` or `b`.
void folio_silu_multiply(const float *a, const float *b, float *out, size_t n);

/// GELU with the tanh approximation (`gelu_pytorch_tanh`) in place, vectorised.
void folio_gelu_tanh(float *x, size_t n);

/// A zeroed buffer for repacked weights (an anonymous mapping that asks for transparent huge pages); NULL when the
/// system is out of memory. Release with folio_free_weights and the same size.
void *folio_allocate_weights(size_t bytes);
void folio_free_weights(void *p, size_t bytes);

/// As folio_linear_rows_on with rows `row_stride` elements apart (e.g. one head's rows inside a KV cache).
void folio_linear_rows_strided_on(int path, const float *x, size_t tokens, const void *w, int type, size_t cols,
                                  size_t row_stride, size_t row_begin, size_t row_end, float *y, size_t ldy);

/// out[g·cols + c] = Σ_s p[g·count + s] · v[s·row_stride + c] for every g < groups: attention's probability-weighted
/// sum of value rows (fp32).
void folio_weighted_rows(const float *p, size_t groups, size_t count, const float *v, size_t row_stride, size_t cols,
                         float *out);

/// bf16 row panels (panels.c): blocks of 16 rows, each a run of 32-column chunks holding the block's 16 rows' 32
/// values row after row, zero-padded; one sequential stream per thread for decode.
size_t folio_bf16_panel_bytes(size_t rows, size_t cols);
/// Packs blocks [block_begin, block_end) of row-major bf16 `src` [rows, cols] into `panels`.
void folio_bf16_pack_panels(const uint16_t *src, size_t rows, size_t cols, size_t block_begin, size_t block_end,
                            uint16_t *panels);
/// Row `r` of a panel-packed matrix, widened to fp32.
void folio_bf16_panel_row(const uint16_t *panels, size_t cols, size_t r, float *out);
/// Blocks [block_begin, block_end) as 16·(block_end - block_begin) row-major fp32 rows (padding rows included).
void folio_bf16_unpack_panels(const uint16_t *panels, size_t cols, size_t block_begin, size_t block_end,
                              float *out);
/// Floats per token of an even/odd split activation row (cols rounded up to 32).
size_t folio_even_odd_floats(size_t cols);
/// Each token's activations as 32-column chunks of [16 even columns, 16 odd columns], zero-padded.
void folio_split_even_odd(const float *x, size_t tokens, size_t cols, float *out);
/// y[t·ldy + r] = Σ_i x[t, i]·w[r, i] for the rows in blocks [block_begin, block_end), with `xeo` from
/// folio_split_even_odd; on `path` (or the best this CPU has when it lacks `path`).
void folio_linear_bf16_panels_on(int path, const float *xeo, size_t tokens, const uint16_t *panels, size_t rows,
                                 size_t cols, size_t block_begin, size_t block_end, float *y, size_t ldy);

/// Whether this CPU has bf16 dot products (AVX512_BF16), which folio_linear_bf16_dot_on's fast path uses.
int folio_has_bf16_dot(void);
/// Each token's activations rounded to bf16 (to nearest even) as `folio_even_odd_floats(cols)` values per token in
/// column order, zero-padded: the activations folio_linear_bf16_dot_on takes.
void folio_bf16_round_rows(const float *x, size_t tokens, size_t cols, uint16_t *out);
/// y[t·ldy + r] = Σ_i x[t, i]·w[r, i] for the rows in blocks [block_begin, block_end) of bf16 panels, with `xbf` from
/// folio_bf16_round_rows: products of bf16 values (exact in fp32), accumulated in fp32. `path` FOLIO_PATH_AVX512
/// takes the AVX512_BF16 kernel when the CPU has it, any other the portable one.
void folio_linear_bf16_dot_on(int path, const uint16_t *xbf, size_t tokens, const uint16_t *panels, size_t rows,
                              size_t cols, size_t block_begin, size_t block_end, float *y, size_t ldy);
