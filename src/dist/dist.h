/* dist.h — the MPI side of klua.distribution: collectives over plain float
 * and double buffers, built into libklua_mpi.so (never into libklua) only when
 * an MPI implementation is found, and loaded at run time by
 * lua/klua/distribution/mpi.lua, so klua builds and runs without MPI.
 *
 *   kl_mpi_init();                                   // MPI_Init_thread, once
 *   float g[4] = {1, 2, 3, 4};
 *   kl_mpi_allreduce(g, 4, KL_MPI_FLOAT, KL_MPI_SUM); // in place, on every rank
 *
 * Conventions as in klua.h: a negative return is an error whose message is in
 * kl_mpi_last_error(); nothing aborts on bad input. Counts are elements.
 * Only the thread that called kl_mpi_init calls in here (MPI_THREAD_FUNNELED).
 *
 * NOTE: once initialised, the process's exit status decides how MPI ends
 * (glibc on_exit): 0 finalises; anything else (a Lua error, os.exit(1)) prints
 * the rank and calls MPI_Abort, so the other ranks never wait forever in a
 * collective for a process that is gone.
 */
#ifndef KL_DIST_H
#define KL_DIST_H
#include <stdint.h>

/* KL_CDEF_BEGIN */
enum { KL_MPI_FLOAT = 0, KL_MPI_DOUBLE = 1, KL_MPI_BYTE = 2 };
enum { KL_MPI_SUM = 0, KL_MPI_MAX = 1, KL_MPI_MIN = 2 };

const char *kl_mpi_last_error(void);
int kl_mpi_init(void);                 /* 0, or -1; a second call is a no-op */
int kl_mpi_is_initialized(void);       /* 1 once kl_mpi_init succeeded, until finalised */
int kl_mpi_rank(void);
int kl_mpi_size(void);
int kl_mpi_local_rank(void);           /* among the processes of this machine */
int kl_mpi_local_size(void);
int kl_mpi_processor_name(char *out, int cap);
int kl_mpi_library_version(char *out, int cap);

int kl_mpi_barrier(void);
int kl_mpi_allreduce(void *buf, int64_t count, int dtype, int op);          /* in place */
int kl_mpi_broadcast(void *buf, int64_t count, int dtype, int root);
/* recv holds size * count elements, rank r's at r * count */
int kl_mpi_allgather(const void *send, int64_t count, void *recv, int dtype);
/* recv holds sum(counts) elements, rank r's after those of ranks < r */
int kl_mpi_allgatherv(const void *send, int64_t count, void *recv, const int64_t *counts, int dtype);

/* Non-blocking allreduce (in place) for fused gradient buckets: returns a
 * request number >= 0 to pass to kl_mpi_wait; buf must stay alive and
 * untouched until then. kl_mpi_wait_all completes every pending request. */
int kl_mpi_iallreduce(void *buf, int64_t count, int dtype, int op);
int kl_mpi_wait(int request);
int kl_mpi_wait_all(void);

/* dst[i] = src[i] * scale: packs a gradient into a bucket (and out again). */
void kl_mpi_copy_scaled_f32(float *dst, const float *src, int64_t n, float scale);

/* Time spent in collectives (seconds), bytes they reduced or moved, and
 * calls, since the last reset (reset != 0 zeroes them after reading). */
void kl_mpi_stats(double *seconds, double *bytes, double *calls, int reset);

int kl_mpi_finalize(void);
void kl_mpi_abort(int code);
/* KL_CDEF_END */

#endif
