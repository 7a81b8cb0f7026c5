/* scratch.h — shared helpers of the layer kernels (conv, pool, rnn): one
 * per-thread float buffer reused across calls, so hot loops never allocate,
 * and a switch that keeps OpenBLAS single-threaded while our own threads run
 * sgemms side by side. Internal, not installed. */
#ifndef KL_SCRATCH_H
#define KL_SCRATCH_H
#include <stddef.h>

/* A buffer of at least n floats, valid until the next kl_scratch call on this
 * thread; NULL when out of memory. Contents are undefined. */
float *kl_scratch(size_t n);
/* Called after a kernel: frees the buffer if it grew past the kept size. */
void kl_scratch_done(void);

/* Before an OpenMP region whose threads call sgemm: OpenBLAS to one thread
 * (its own pool would fight ours). Returns what kl_blas_restore needs. */
int kl_blas_single(void);
void kl_blas_restore(int saved);

#endif
