/* scratch.c — the reused per-thread scratch buffer of the layer kernels, and
 * the OpenBLAS threading switch. */
#include "scratch.h"
#include <cblas.h>
#include <stdlib.h>

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

int kl_blas_single(void) {
  int saved = openblas_get_num_threads();
  if (saved > 1) openblas_set_num_threads(1);
  return saved;
}

void kl_blas_restore(int saved) {
  if (saved > 1) openblas_set_num_threads(saved);
}
