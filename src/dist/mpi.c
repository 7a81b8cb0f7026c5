/* dist/mpi.c — collectives over MPI_COMM_WORLD for klua.distribution (see
 * dist.h). Plain buffers in, plain buffers out: nothing here knows tensors,
 * so this library links libmpi and libc only, never libklua.
 *
 * Three traps this file handles:
 * - libmpi reached through dlopen (LuaJIT's ffi.load) is RTLD_LOCAL, and Open
 *   MPI's plugins then fail to resolve its symbols: kl_mpi_init promotes it to
 *   RTLD_GLOBAL first (as mpi4py does).
 * - The exit handler below lives in this library; LuaJIT unloads a library
 *   when its handle is collected, so kl_mpi_init pins it (RTLD_NODELETE).
 * - MPI counts are int: large buffers go in chunks of 2^30 elements.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"

static char err_buf[1024];
static int inited, finalized, world_rank, world_size, local_rank, local_size = 1;
static double stat_seconds, stat_bytes, stat_calls;

enum { CHUNK = 1 << 30, MAX_REQUESTS = 4096 };
static MPI_Request requests[MAX_REQUESTS];
static double request_bytes[MAX_REQUESTS];
static int n_requests;

const char *kl_mpi_last_error(void) { return err_buf; }

static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_buf, sizeof err_buf, fmt, ap);
  va_end(ap);
  return -1;
}

static int fail_mpi(const char *what, int rc) {
  char s[MPI_MAX_ERROR_STRING];
  int n = 0;
  if (MPI_Error_string(rc, s, &n) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error %d", rc);
  return fail("%s (rank %d of %d): %s", what, world_rank, world_size, s);
}

static int need_init(const char *what) {
  if (inited && !finalized) return 0;
  return fail("%s: MPI is not initialized (run under mpirun and call klua.distribution.initialize())", what);
}

static size_t elsize(int dtype) { return dtype == KL_MPI_FLOAT ? 4 : dtype == KL_MPI_DOUBLE ? 8 : 1; }
static MPI_Datatype mpi_type(int dtype) {
  return dtype == KL_MPI_FLOAT ? MPI_FLOAT : dtype == KL_MPI_DOUBLE ? MPI_DOUBLE : MPI_BYTE;
}
static MPI_Op mpi_op(int op) { return op == KL_MPI_MAX ? MPI_MAX : op == KL_MPI_MIN ? MPI_MIN : MPI_SUM; }

static int check_args(const char *what, int64_t count, int dtype) {
  if (need_init(what)) return -1;
  if (count < 0) return fail("%s: count must be >= 0, got %lld", what, (long long)count);
  if (dtype < KL_MPI_FLOAT || dtype > KL_MPI_BYTE) return fail("%s: unknown data type %d", what, dtype);
  return 0;
}

static void account(double t0, double bytes) {
  stat_seconds += MPI_Wtime() - t0;
  stat_bytes += bytes;
  stat_calls += 1;
}

/* ---- start and end ---------------------------------------------------------- */

/* Exit status 0 finalises; any other status means this rank failed (a Lua
 * error reported by klua, os.exit(1)): say which rank, then end every rank. */
static void at_exit(int status, void *arg) {
  (void)arg;
  if (!inited || finalized) return;
  int fin = 0;
  MPI_Finalized(&fin);
  if (fin) return;
  if (n_requests > 0 && status == 0) kl_mpi_wait_all();
  if (status == 0) {
    finalized = 1;
    MPI_Finalize();
    return;
  }
  char host[MPI_MAX_PROCESSOR_NAME] = "?";
  kl_mpi_processor_name(host, sizeof host);
  fprintf(stderr, "klua: rank %d of %d (on %s) failed with exit status %d (its error is above); "
                  "aborting all %d processes\n", world_rank, world_size, host, status, world_size);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, status);
}

static void promote_global(const void *symbol) {
  Dl_info info;
  if (dladdr(symbol, &info) && info.dli_fname) dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
}

int kl_mpi_init(void) {
  if (inited) return finalized ? fail("kl_mpi_init: MPI was finalized; it cannot start again") : 0;
  promote_global((const void *)&MPI_Init_thread);                    /* libmpi, for its plugins */
  Dl_info self;
  if (dladdr((const void *)&kl_mpi_init, &self) && self.dli_fname)   /* keep at_exit mapped */
    dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE | RTLD_NOLOAD);
  int already = 0, provided = 0, rc;
  MPI_Initialized(&already);
  if (!already) {
    rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return fail("MPI_Init_thread failed (error %d)", rc);
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  MPI_Comm local;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
    MPI_Comm_rank(local, &local_rank);
    MPI_Comm_size(local, &local_size);
    MPI_Comm_free(&local);
  }
  inited = 1;
  if (!already) on_exit(at_exit, NULL);
  return 0;
}

int kl_mpi_is_initialized(void) { return inited && !finalized; }
int kl_mpi_rank(void) { return world_rank; }
int kl_mpi_size(void) { return inited ? world_size : 1; }
int kl_mpi_local_rank(void) { return local_rank; }
int kl_mpi_local_size(void) { return local_size; }

int kl_mpi_processor_name(char *out, int cap) {
  char name[MPI_MAX_PROCESSOR_NAME];
  int n = 0;
  if (!inited || MPI_Get_processor_name(name, &n) != MPI_SUCCESS) return fail("kl_mpi_processor_name: MPI is not initialized");
  snprintf(out, (size_t)cap, "%s", name);
  return 0;
}

int kl_mpi_library_version(char *out, int cap) {
  char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int n = 0;
  MPI_Get_library_version(v, &n);
  char *nl = strchr(v, '\n');
  if (nl) *nl = '\0';
  snprintf(out, (size_t)cap, "%s", v);
  return 0;
}

int kl_mpi_finalize(void) {
  if (!inited || finalized) return 0;
  if (n_requests > 0 && kl_mpi_wait_all() < 0) return -1;
  finalized = 1;
  int rc = MPI_Finalize();
  return rc == MPI_SUCCESS ? 0 : fail_mpi("MPI_Finalize", rc);
}

void kl_mpi_abort(int code) {
  if (inited && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
  exit(code);
}

/* ---- collectives -------------------------------------------------------------- */

int kl_mpi_barrier(void) {
  if (need_init("barrier")) return -1;
  double t0 = MPI_Wtime();
  int rc = MPI_Barrier(MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return fail_mpi("barrier", rc);
  account(t0, 0);
  return 0;
}

int kl_mpi_allreduce(void *buf, int64_t count, int dtype, int op) {
  if (check_args("allreduce", count, dtype)) return -1;
  size_t es = elsize(dtype);
  double t0 = MPI_Wtime();
  for (int64_t off = 0; off < count; off += CHUNK) {
    int n = (int)(count - off < CHUNK ? count - off : CHUNK);
    int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)off * es, n, mpi_type(dtype), mpi_op(op), MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return fail_mpi("allreduce", rc);
  }
  account(t0, (double)count * (double)es);
  return 0;
}

int kl_mpi_broadcast(void *buf, int64_t count, int dtype, int root) {
  if (check_args("broadcast", count, dtype)) return -1;
  if (root < 0 || root >= world_size) return fail("broadcast: root must be a rank in [0, %d), got %d", world_size, root);
  size_t es = elsize(dtype);
  double t0 = MPI_Wtime();
  for (int64_t off = 0; off < count; off += CHUNK) {
    int n = (int)(count - off < CHUNK ? count - off : CHUNK);
    int rc = MPI_Bcast((char *)buf + (size_t)off * es, n, mpi_type(dtype), root, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return fail_mpi("broadcast", rc);
  }
  account(t0, (double)count * (double)es);
  return 0;
}

int kl_mpi_allgather(const void *send, int64_t count, void *recv, int dtype) {
  if (check_args("allgather", count, dtype)) return -1;
  if (count > INT_MAX) return fail("allgather: at most %d elements per rank, got %lld", INT_MAX, (long long)count);
  double t0 = MPI_Wtime();
  int rc = MPI_Allgather(send, (int)count, mpi_type(dtype), recv, (int)count, mpi_type(dtype), MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return fail_mpi("allgather", rc);
  account(t0, (double)count * (double)elsize(dtype) * world_size);
  return 0;
}

int kl_mpi_allgatherv(const void *send, int64_t count, void *recv, const int64_t *counts, int dtype) {
  if (check_args("allgatherv", count, dtype)) return -1;
  if (counts[world_rank] != count)
    return fail("allgatherv: rank %d sends %lld elements but counts[%d] = %lld", world_rank, (long long)count,
                world_rank, (long long)counts[world_rank]);
  int *rc_counts = malloc(sizeof(int) * (size_t)world_size * 2);
  if (!rc_counts) return fail("allgatherv: out of memory");
  int *displs = rc_counts + world_size;
  int64_t total = 0;
  for (int r = 0; r < world_size; r++) {
    if (counts[r] < 0 || total + counts[r] > INT_MAX) {
      free(rc_counts);
      return fail("allgatherv: counts must be >= 0 and sum to at most %d", INT_MAX);
    }
    rc_counts[r] = (int)counts[r];
    displs[r] = (int)total;
    total += counts[r];
  }
  double t0 = MPI_Wtime();
  int rc = MPI_Allgatherv(send, (int)count, mpi_type(dtype), recv, rc_counts, displs, mpi_type(dtype), MPI_COMM_WORLD);
  free(rc_counts);
  if (rc != MPI_SUCCESS) return fail_mpi("allgatherv", rc);
  account(t0, (double)total * (double)elsize(dtype));
  return 0;
}

/* ---- non-blocking allreduce for buckets ------------------------------------------ */

int kl_mpi_iallreduce(void *buf, int64_t count, int dtype, int op) {
  if (check_args("iallreduce", count, dtype)) return -1;
  if (count > INT_MAX) return fail("iallreduce: a bucket holds at most %d elements, got %lld", INT_MAX, (long long)count);
  if (n_requests >= MAX_REQUESTS) return fail("iallreduce: more than %d pending requests; call wait_all", MAX_REQUESTS);
  double t0 = MPI_Wtime();
  int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, mpi_type(dtype), mpi_op(op), MPI_COMM_WORLD, &requests[n_requests]);
  if (rc != MPI_SUCCESS) return fail_mpi("iallreduce", rc);
  stat_seconds += MPI_Wtime() - t0;
  request_bytes[n_requests] = (double)count * (double)elsize(dtype);
  return n_requests++;
}

int kl_mpi_wait(int request) {
  if (need_init("wait")) return -1;
  if (request < 0 || request >= n_requests) return fail("wait: no pending request %d", request);
  if (requests[request] == MPI_REQUEST_NULL) return 0;
  double t0 = MPI_Wtime();
  int rc = MPI_Wait(&requests[request], MPI_STATUS_IGNORE);
  if (rc != MPI_SUCCESS) return fail_mpi("wait", rc);
  account(t0, request_bytes[request]);
  /* the slots are reused once every request has completed */
  int pending = 0;
  for (int i = 0; i < n_requests; i++) pending |= requests[i] != MPI_REQUEST_NULL;
  if (!pending) n_requests = 0;
  return 0;
}

int kl_mpi_wait_all(void) {
  if (need_init("wait_all")) return -1;
  for (int i = 0; i < n_requests; i++) {
    if (requests[i] == MPI_REQUEST_NULL) continue;
    double t0 = MPI_Wtime();
    int rc = MPI_Wait(&requests[i], MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return fail_mpi("wait_all", rc);
    account(t0, request_bytes[i]);
  }
  n_requests = 0;
  return 0;
}

void kl_mpi_copy_scaled_f32(float *dst, const float *src, int64_t n, float scale) {
  if (scale == 1.0f) {
    memcpy(dst, src, (size_t)n * sizeof(float));
    return;
  }
  for (int64_t i = 0; i < n; i++) dst[i] = src[i] * scale;
}

void kl_mpi_stats(double *seconds, double *bytes, double *calls, int reset) {
  if (seconds) *seconds = stat_seconds;
  if (bytes) *bytes = stat_bytes;
  if (calls) *calls = stat_calls;
  if (reset) stat_seconds = stat_bytes = stat_calls = 0;
}
