/* scratch.c — the reused per-thread scratch buffer of the layer kernels, the
 * OpenBLAS threading switch, the row-split sgemm and the fused activations. */
#include "core.h"
#include "scratch.h"
#include <cblas.h>
#include <stdlib.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { SCRATCH_KEEP = 1 << 24 };   /* floats kept between calls (64 MiB) */

static _Thread_local float *buf;
static _Thread_local size_t cap;

float *kl_scratch(size_t n) {
  if (n == 0) n = 1;   /* an empty batch still gets a valid pointer */
  if (n > cap) {
    free(buf);
    buf = malloc(n * sizeof(float));
    cap = buf ? n : 0;
  }
  return buf;
}

void kl_scratch_done(void) {
  if (cap > SCRATCH_KEEP) { free(buf); buf = NULL; cap = 0; }
}

int64_t kl_blas_flop_count;
int64_t kl_blas_flops(void) { return __atomic_load_n(&kl_blas_flop_count, __ATOMIC_RELAXED); }

int kl_blas_timing_on;
static int64_t blas_ns;

void kl_blas_timing(int on) { kl_blas_timing_on = on != 0; }

double kl_blas_seconds(void) { return 1e-9 * (double)__atomic_load_n(&blas_ns, __ATOMIC_RELAXED); }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

double kl_blas_clock_start(void) { return now_s(); }

void kl_blas_clock_stop(double t0) {
  double dt = now_s() - t0;
#ifdef _OPENMP
  if (omp_in_parallel()) dt /= omp_get_num_threads();
#endif
  __atomic_fetch_add(&blas_ns, (int64_t)(dt * 1e9), __ATOMIC_RELAXED);
}

/* OpenBLAS's own threads serve small and skinny products poorly: on the
 * shapes of a Dense, a convolution's im2col product or an attention
 * projection (M up to a few thousand rows, N and K 10-800), two
 * single-threaded sgemms over the two halves of the rows ran 1.0-2.3x faster
 * than one two-threaded call (2-core EPYC, OpenBLAS 0.3.21; the shapes and
 * rates are in README's Performance notes), and never slower. Each
 * thread then packs B itself, which only pays while B is small next to the
 * work, so big products stay with OpenBLAS's threads. Inside a parallel
 * region (attention's per-head products) OpenBLAS runs single-threaded by
 * itself and so does this. */
enum { SPLIT_MIN_ROWS = 16, SPLIT_MAX_MACS = 1 << 25, SPLIT_MIN_MACS = 1 << 14 };

void kl_sgemm_rows(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc) {
  int64_t macs = (int64_t)m * n * k;
  int nth = 1;
#ifdef _OPENMP
  if (m >= 2 * SPLIT_MIN_ROWS && macs >= SPLIT_MIN_MACS && macs <= SPLIT_MAX_MACS && !omp_in_parallel()) {
    nth = omp_get_max_threads();
    if (nth > m / SPLIT_MIN_ROWS) nth = m / SPLIT_MIN_ROWS;
  }
#endif
  if (nth < 2) {
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  /* blocks of rows, multiples of 16 (whole register tiles) but for the last */
  int per = ((m + nth - 1) / nth + 15) & ~15;
  #pragma omp parallel num_threads(nth)
  {
    int r0 = omp_get_thread_num() * per, r1 = r0 + per < m ? r0 + per : m;
    if (r1 > r0) {
      const float *ar = ta == CblasNoTrans ? a + (int64_t)r0 * lda : a + r0;
      cblas_sgemm(CblasRowMajor, ta, tb, r1 - r0, n, k, alpha, ar, lda, b, ldb, beta, c + (int64_t)r0 * ldc, ldc);
    }
  }
}

/* static: clang emits the clones of an exported target_clones function under other names */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void activate(float *y, int64_t n, int act) {
  if (act == KL_ACT_RELU) for (int64_t i = 0; i < n; i++) y[i] = y[i] > 0 ? y[i] : 0.0f;
  else if (act == KL_ACT_SIGMOID) for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + kl_exp(-y[i]));
}

void kl_activate(float *y, int64_t n, int act) { activate(y, n, act); }

void kl_activate_all(float *y, int64_t n, int act) {
  if (act == KL_ACT_LINEAR) return;
  enum { B = 8192 };
  KL_PAR_FOR_W((n + B - 1) / B, n, blk,
    int64_t lo = blk * B; activate(y + lo, n - lo < B ? n - lo : B, act););
}

kl_tensor *kl_activation_grad(kl_tensor *g, kl_tensor *y, int act) {
  if (act == KL_ACT_RELU) return kl_call2(KL_OP__relu_grad, g, y);
  if (act == KL_ACT_SIGMOID) return kl_call2(KL_OP__sigmoid_grad, g, y);
  kl_tensor_retain(g);
  return g;
}

int kl_blas_single(void) {
  int saved = openblas_get_num_threads();
  if (saved > 1) openblas_set_num_threads(1);
  return saved;
}

void kl_blas_restore(int saved) {
  if (saved > 1) openblas_set_num_threads(saved);
}
