/* scratch.h — shared helpers of the layer kernels (conv, pool, rnn): one
 * per-thread float buffer reused across calls, so hot loops never allocate,
 * and a switch that keeps OpenBLAS single-threaded while our own threads run
 * sgemms side by side. Internal, not installed. */
#ifndef KL_SCRATCH_H
#define KL_SCRATCH_H
#include <cblas.h>
#include <stddef.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Activations fused into an op's output (linear, conv2d, conv3d; the op's
 * `act` integer attribute): applied in place while the output is in cache,
 * and their backward forms g * act'(y) from the output y. */
enum { KL_ACT_LINEAR, KL_ACT_RELU, KL_ACT_SIGMOID };
/* y[0..n) = act(y), compiled per ISA (scratch.c); _all splits a large y over the pool. */
void kl_activate(float *y, int64_t n, int act);
void kl_activate_all(float *y, int64_t n, int act);
/* The gradient before the activation: g * act'(y) as a new tensor, or g retained for none. */
struct kl_tensor *kl_activation_grad(struct kl_tensor *g, struct kl_tensor *y, int act);

/* A buffer of at least n floats, valid until the next kl_scratch call on this
 * thread; NULL when out of memory. Contents are undefined. */
float *kl_scratch(size_t n);
/* Called after a kernel: frees the buffer if it grew past the kept size. */
void kl_scratch_done(void);

/* Before an OpenMP region whose threads call sgemm: OpenBLAS to one thread
 * (its own pool would fight ours). Returns what kl_blas_restore needs. */
int kl_blas_single(void);
void kl_blas_restore(int saved);

/* Threads for a kernel that splits `blocks` independent blocks: one below
 * min_work multiply-adds (waking the pool costs more than it saves), else the
 * pool's size (which follows the machine's load, src/threads.c) up to blocks. */
static inline int kl_threads_for(int64_t work, int64_t blocks, int64_t min_work) {
#ifdef _OPENMP
  if (work < min_work || blocks < 2) return 1;
  int n = omp_get_max_threads();
  return n < blocks ? n : (int)blocks;
#else
  (void)work; (void)blocks; (void)min_work;
  return 1;
#endif
}
/* This thread's index in the running team (its slice of a per-thread buffer). */
static inline int kl_thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/* Every sgemm/sgemv of the core goes through these: cblas plus a count of the
 * floating-point operations done, so `make bench` can print how far a step is
 * from the time of its own matrix products at the sgemm rate (kl_blas_flops;
 * conv.c's direct path adds its products too). With kl_blas_timing(1) they
 * also add up the wall time spent in the calls (a call inside a parallel
 * region counts its share: time / threads), so the bench can tell products
 * that run below the sgemm rate at their shapes from work outside them. */
extern int64_t kl_blas_flop_count;
extern int kl_blas_timing_on;
double kl_blas_clock_start(void);
void kl_blas_clock_stop(double t0);
#define KL_BLAS_TIMED(flops, call)                                              \
  do {                                                                          \
    __atomic_fetch_add(&kl_blas_flop_count, (flops), __ATOMIC_RELAXED);         \
    if (__builtin_expect(kl_blas_timing_on, 0)) {                               \
      double kl_t0_ = kl_blas_clock_start();                                    \
      call;                                                                     \
      kl_blas_clock_stop(kl_t0_);                                               \
    } else {                                                                    \
      call;                                                                     \
    }                                                                           \
  } while (0)
/* Row-major sgemm; products up to a few hundred microseconds run as one
 * single-threaded sgemm per thread over blocks of rows (scratch.c). */
void kl_sgemm_rows(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc);
static inline void kl_sgemm(CBLAS_ORDER o, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha,
                            const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  if (o == CblasRowMajor)
    KL_BLAS_TIMED(2 * (int64_t)m * n * k, kl_sgemm_rows(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
  else
    KL_BLAS_TIMED(2 * (int64_t)m * n * k, cblas_sgemm(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
}
static inline void kl_sgemv(CBLAS_ORDER o, CBLAS_TRANSPOSE t, int m, int n, float alpha, const float *a, int lda,
                            const float *x, int incx, float beta, float *y, int incy) {
  KL_BLAS_TIMED(2 * (int64_t)m * n, cblas_sgemv(o, t, m, n, alpha, a, lda, x, incx, beta, y, incy));
}

#endif
