// Softmax with a vectorised exp (Cephes-style: exp(x) = 2^k · e^r, |r| ≤ ln2/2, degree-6 polynomial for e^r;
// relative error a few ulp over the range softmax needs, x ≤ 0).
#include "CFolioKernels.h"
#include "neon.h"

#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FOLIO_X86 1
#endif

static const float LOG2E = 1.44269504088896341f;
static const float LN2_HI = 0.693359375f;
static const float LN2_LO = -2.12194440e-4f;
static const float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f, P3 = 4.1665795894e-2f,
                   P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;

static inline float exp_scalar(float x) {
  if (x < -87.3f) return 0.0f;
  float k = floorf(x * LOG2E + 0.5f);
  float r = x - k * LN2_HI - k * LN2_LO;
  float p = ((((P0 * r + P1) * r + P2) * r + P3) * r + P4) * r + P5;
  p = p * r * r + r + 1.0f;
  return ldexpf(p, (int)k);
}

#if FOLIO_X86
__attribute__((target("avx2,fma"))) static inline __m256 exp_avx2(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  __m256 k = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(LOG2E), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(LN2_HI), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(LN2_LO), r);
  __m256 p = _mm256_set1_ps(P0);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P5));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

__attribute__((target("avx2,fma"))) static void softmax_avx2(float *x, size_t n) {
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  float m[8];
  _mm256_storeu_ps(m, vmax);
  float maximum = -INFINITY;
  for (int j = 0; j < 8; j++) maximum = m[j] > maximum ? m[j] : maximum;
  for (size_t j = i; j < n; j++) maximum = x[j] > maximum ? x[j] : maximum;
  __m256 shift = _mm256_set1_ps(maximum);
  __m256 vsum = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), shift));
    _mm256_storeu_ps(x + i, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  float s[8];
  _mm256_storeu_ps(s, vsum);
  float sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (size_t j = i; j < n; j++) {
    x[j] = exp_scalar(x[j] - maximum);
    sum += x[j];
  }
  __m256 inverse = _mm256_set1_ps(1.0f / sum);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inverse));
  for (size_t j = i; j < n; j++) x[j] *= 1.0f / sum;
}

// 16 wide, with the same polynomial and the same rounding as exp_avx2 (scalef multiplies by 2^k exactly), so both
// paths give the same exponentials. Vision attention runs one softmax per query over all of a page's ~9000 patches.
__attribute__((target("avx512f"))) static inline __m512 exp_avx512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  __m512 k = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(LOG2E), _mm512_set1_ps(0.5f)),
                                  _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(LN2_HI), x);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(LN2_LO), r);
  __m512 p = _mm512_set1_ps(P0);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P5));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, k);
}

__attribute__((target("avx512f"))) static void softmax_avx512(float *x, size_t n) {
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + i));
  if (i < n) {
    __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
    vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail, x + i));
  }
  __m512 shift = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (i = 0; i + 16 <= n; i += 16) {
    __m512 e = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i), shift));
    _mm512_storeu_ps(x + i, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  if (i < n) {
    __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
    __m512 e = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + i), shift));
    e = _mm512_maskz_mov_ps(tail, e);
    _mm512_mask_storeu_ps(x + i, tail, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  __m512 inverse = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
  for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inverse));
  if (i < n) {
    __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(x + i, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, x + i), inverse));
  }
}
#endif

static void softmax_portable(float *x, size_t n) {
  float maximum = -INFINITY;
  for (size_t i = 0; i < n; i++) maximum = x[i] > maximum ? x[i] : maximum;
  float sum = 0;
  for (size_t i = 0; i < n; i++) {
    x[i] = exp_scalar(x[i] - maximum);
    sum += x[i];
  }
  float inverse = 1.0f / sum;
  for (size_t i = 0; i < n; i++) x[i] *= inverse;
}

void folio_softmax(float *x, size_t n) { folio_softmax_on(folio_kernel_path(), x, n); }

void folio_softmax_on(int path, float *x, size_t n) {
  if (n == 0) return;
  path = folio_supported_path(path);
#if FOLIO_X86
  if (path == FOLIO_PATH_AVX512) {
    softmax_avx512(x, n);
    return;
  }
  if (path == FOLIO_PATH_AVX2) {
    softmax_avx2(x, n);
    return;
  }
#endif
#if defined(__aarch64__)
  if (path == FOLIO_PATH_NEON) {
    folio_neon_softmax(x, n);
    return;
  }
#endif
  softmax_portable(x, n);
}

// SiLU with the same vectorised exp: silu(a) = a / (1 + e^{−a}); the exponent is clamped to ±87 so e^{−a} stays
// finite (beyond that silu is 0 or a to fp32 precision).
#if FOLIO_X86
__attribute__((target("avx2,fma"))) static void silu_multiply_avx2(const float *a, const float *b, float *out,
                                                                   size_t n) {
  size_t i = 0;
  const __m256 one = _mm256_set1_ps(1.0f), limit = _mm256_set1_ps(87.0f);
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_loadu_ps(a + i);
    __m256 e = exp_avx2(_mm256_min_ps(_mm256_sub_ps(_mm256_setzero_ps(), x), limit));
    __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, e));
    if (b) s = _mm256_mul_ps(s, _mm256_loadu_ps(b + i));
    _mm256_storeu_ps(out + i, s);
  }
  for (; i < n; i++) {
    float x = a[i], s = x / (1.0f + exp_scalar(fminf(-x, 87.0f)));
    out[i] = b ? s * b[i] : s;
  }
}
#endif

void folio_silu_multiply(const float *a, const float *b, float *out, size_t n) {
#if FOLIO_X86
  if (folio_kernel_path() != FOLIO_PATH_PORTABLE) {
    silu_multiply_avx2(a, b, out, n);
    return;
  }
#endif
#if defined(__aarch64__)
  if (folio_kernel_path() == FOLIO_PATH_NEON) {
    folio_neon_silu_multiply(a, b, out, n);
    return;
  }
#endif
  for (size_t i = 0; i < n; i++) {
    float x = a[i], s = x / (1.0f + exp_scalar(fminf(-x, 87.0f)));
    out[i] = b ? s * b[i] : s;
  }
}

// GELU (tanh approximation) as x · sigmoid(2u), u = √(2/π)·(x + 0.044715·x³): the same exp as SiLU.
#if FOLIO_X86
__attribute__((target("avx2,fma"))) static void gelu_tanh_avx2(float *x, size_t n) {
  size_t i = 0;
  const __m256 one = _mm256_set1_ps(1.0f), limit = _mm256_set1_ps(87.0f), c = _mm256_set1_ps(0.044715f),
               k = _mm256_set1_ps(-2.0f * 0.7978845608028654f);
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(c, v), _mm256_mul_ps(v, v), v);
    __m256 e = exp_avx2(_mm256_min_ps(_mm256_mul_ps(k, inner), limit));
    _mm256_storeu_ps(x + i, _mm256_div_ps(v, _mm256_add_ps(one, e)));
  }
  for (; i < n; i++) {
    float v = x[i], inner = v + 0.044715f * v * v * v;
    x[i] = v / (1.0f + exp_scalar(fminf(-2.0f * 0.7978845608028654f * inner, 87.0f)));
  }
}
#endif

void folio_gelu_tanh(float *x, size_t n) {
#if FOLIO_X86
  if (folio_kernel_path() != FOLIO_PATH_PORTABLE) {
    gelu_tanh_avx2(x, n);
    return;
  }
#endif
#if defined(__aarch64__)
  if (folio_kernel_path() == FOLIO_PATH_NEON) {
    folio_neon_gelu_tanh(x, n);
    return;
  }
#endif
  for (size_t i = 0; i < n; i++) {
    float v = x[i], inner = v + 0.044715f * v * v * v;
    x[i] = v / (1.0f + exp_scalar(fminf(-2.0f * 0.7978845608028654f * inner, 87.0f)));
  }
}
