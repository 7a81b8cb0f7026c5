/* scratch.c — the reused per-thread scratch buffer of the layer kernels, and
 * the OpenBLAS threading switch. */
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

int kl_blas_single(void) {
  int saved = openblas_get_num_threads();
  if (saved > 1) openblas_set_num_threads(1);
  return saved;
}

void kl_blas_restore(int saved) {
  if (saved > 1) openblas_set_num_threads(saved);
}
