/* klua.h — the public C API of the klua core: float32 tensors, a reverse-mode
 * tape, the op registry and the kernels behind layers, losses and optimizers.
 *
 *   kl_tensor *x = kl_random_normal(2, (int64_t[]){4, 3}, 0.0, 1.0);
 *   kl_tape *tape = kl_tape_new(0);
 *   kl_tape_start(tape); kl_tape_watch(tape, x);
 *   kl_tensor *y = kl_op(kl_op_lookup("sum"), kl_op(kl_op_lookup("square"), x, NULL, NULL, NULL), NULL, NULL, &all_axes);
 *   kl_tape_stop(tape);
 *   kl_tensor *dx; kl_tape_gradient(tape, y, NULL, 1, &x, &dx);   // dx = 2x
 *
 * Conventions: every function that can fail returns NULL (or a negative int)
 * and leaves a message in kl_last_error(); nothing aborts on bad input.
 * Returned tensors are owned by the caller (release with kl_tensor_release).
 * Axes are 0-based here; negative axes count from the end.
 *
 * NOTE: the block between KL_CDEF_BEGIN and KL_CDEF_END is handed verbatim to
 * LuaJIT's ffi.cdef, so it holds plain declarations only: no macros, no
 * #include, no inline code. It is the only copy of these prototypes.
 */
#ifndef KLUA_H
#define KLUA_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* KL_CDEF_BEGIN */
enum { KL_MAX_DIMS = 8 };

enum {
  KL_FLAG_VARIABLE  = 1,   /* owned by a Variable: assign* allowed */
  KL_FLAG_TRAINABLE = 2,   /* watched automatically by every recording tape */
};

typedef struct kl_storage kl_storage;

/* Field names avoid the Lua method names (t:shape(), t:numel()): in LuaJIT a
 * struct field shadows a metatype method of the same name. */
typedef struct kl_tensor {
  int32_t refcount;
  int32_t nd;
  int64_t dims[8];
  int64_t strides[8];     /* in elements */
  int64_t count;          /* number of elements */
  float *data;            /* first element (storage base + offset) */
  kl_storage *storage;
  uint64_t id;            /* unique for the process; the tape keys on it */
  uint32_t flags;
  int32_t contiguous;
} kl_tensor;

/* What Lua holds: LuaJIT does pointer arithmetic on pointer cdata (p - 1),
 * so tensors reach Lua inside this one-field struct, whose metatype gives
 * them operators. kl_handle_release is its finalizer. */
typedef struct kl_handle { kl_tensor *p; } kl_handle;
void kl_handle_release(kl_handle *h);

/* Attributes of an op call: axes, integer and float parameters. Copied into
 * the tape, so the caller may reuse one instance for every call. */
typedef struct kl_attrs {
  int32_t axes[8];
  int32_t naxes;          /* naxes == -1 means "all axes" for reductions */
  int32_t keepdims;
  int64_t ints[16];
  int32_t nints;
  double f[4];
} kl_attrs;

/* errors, memory, threads */
const char *kl_last_error(void);
void kl_clear_error(void);
const char *kl_version(void);
const char *kl_cdef(void);
int64_t kl_mem_live_bytes(void);     /* bytes held by live tensor storage */
int64_t kl_mem_pool_bytes(void);     /* bytes cached for reuse */
int64_t kl_mem_alloc_count(void);    /* storage allocations that reached malloc */
int64_t kl_mem_tensor_count(void);   /* live kl_tensor headers */
void kl_mem_trim(void);              /* give the reuse pool back to the system */
/* Loaders bound what a file can make the core allocate: while a limit is set,
 * an allocation that would take the bytes of live tensor data (sizes asked
 * for, kl_mem_data_bytes) above it fails with an error instead. < 0: no
 * limit (the default). Returns the previous limit. */
int64_t kl_mem_data_bytes(void);
int64_t kl_mem_set_limit(int64_t max_data_bytes);
/* Threads of the core and OpenBLAS (src/threads.c): n >= 1 fixes the count;
 * n < 1 (the default) adapts it to the cores other processes leave free. */
void kl_set_num_threads(int n);
int kl_get_num_threads(void);        /* threads in use now */
int kl_threads_adaptive(void);       /* 1 while the count adapts to the load */
double kl_threads_others_load(void); /* cores other processes kept busy lately (smoothed; < 0: not measured) */
/* Floating-point operations done by the core's sgemm/sgemv calls since start. */
int64_t kl_blas_flops(void);
/* With timing on, the wall seconds spent in those calls since start (for the bench; off by default). */
void kl_blas_timing(int on);
double kl_blas_seconds(void);

/* tensors */
kl_tensor *kl_tensor_empty(int ndim, const int64_t *shape);
kl_tensor *kl_tensor_zeros(int ndim, const int64_t *shape);
kl_tensor *kl_tensor_full(int ndim, const int64_t *shape, double value);
kl_tensor *kl_tensor_from_data(int ndim, const int64_t *shape, const float *data);
kl_tensor *kl_tensor_from_doubles(int ndim, const int64_t *shape, const double *data);
kl_tensor *kl_tensor_from_bytes(int ndim, const int64_t *shape, const uint8_t *data);
kl_tensor *kl_tensor_view(kl_tensor *base, int ndim, const int64_t *shape, const int64_t *stride, int64_t offset);
kl_tensor *kl_tensor_contiguous(kl_tensor *t);   /* new reference; a copy only when needed */
kl_tensor *kl_tensor_clone(kl_tensor *t);        /* always a fresh contiguous copy */
void kl_tensor_retain(kl_tensor *t);
void kl_tensor_release(kl_tensor *t);
int kl_tensor_copy_to(kl_tensor *t, float *out);  /* contiguous row-major copy out */
int kl_tensor_same_shape(const kl_tensor *a, const kl_tensor *b);
kl_tensor *kl_arange(double start, double stop, double step);
kl_tensor *kl_linspace(double start, double stop, int64_t num);
kl_tensor *kl_eye(int64_t n, int64_t m);

/* in place (Variables, optimizers): dst op= broadcast(src); mode 0 set, 1 add, 2 sub */
int kl_assign(kl_tensor *dst, kl_tensor *src, int mode);
int kl_fill(kl_tensor *dst, double value);

/* random: seedable generators (PCG32), identical streams on every machine.
 * A kl_generator is one stream; g == NULL names the process-wide default
 * stream, which the functions without _g draw from. A state is {state, inc}. */
typedef struct kl_generator kl_generator;
kl_generator *kl_generator_new(uint64_t seed);          /* NULL when out of memory */
void kl_generator_free(kl_generator *g);
void kl_generator_seed(kl_generator *g, uint64_t seed);  /* the stream of kl_generator_new(seed) */
void kl_generator_get_state(const kl_generator *g, uint64_t *state2);
void kl_generator_set_state(kl_generator *g, const uint64_t *state2);
uint32_t kl_random_u32_g(kl_generator *g);
kl_tensor *kl_random_uniform_g(kl_generator *g, int ndim, const int64_t *shape, double lo, double hi);
kl_tensor *kl_random_normal_g(kl_generator *g, int ndim, const int64_t *shape, double mean, double std);
kl_tensor *kl_random_truncated_normal_g(kl_generator *g, int ndim, const int64_t *shape, double mean, double std);
kl_tensor *kl_random_bernoulli_g(kl_generator *g, int ndim, const int64_t *shape, double p);
int kl_random_permutation_g(kl_generator *g, int64_t n, int64_t *out);
kl_tensor *kl_random_permutation_tensor_g(kl_generator *g, int64_t n);   /* 0-based, as floats */

void kl_random_seed(uint64_t seed);
void kl_random_get_state(uint64_t *state2);
void kl_random_set_state(const uint64_t *state2);
kl_tensor *kl_random_uniform(int ndim, const int64_t *shape, double lo, double hi);
kl_tensor *kl_random_normal(int ndim, const int64_t *shape, double mean, double std);
kl_tensor *kl_random_truncated_normal(int ndim, const int64_t *shape, double mean, double std);
kl_tensor *kl_random_bernoulli(int ndim, const int64_t *shape, double p);
int kl_random_permutation(int64_t n, int64_t *out);
kl_tensor *kl_random_permutation_tensor(int64_t n);   /* 0-based, as floats */

/* the op registry (src/ops.def) */
int kl_op_count(void);
int kl_op_lookup(const char *name);               /* -1 if unknown */
const char *kl_op_name(int op);
/* The op profiler (klua.profile): self time and calls per op, forward (backward = 0)
 * and backward (1), while enabled; off by default. */
void kl_profile_enable(int on);
void kl_profile_reset(void);
int kl_profile_get(int op, int backward, double *seconds, int64_t *calls);
int kl_op_arity(int op);                          /* -1: variadic (kl_op_n) */
int kl_op_differentiable(int op);
kl_tensor *kl_op(int op, kl_tensor *a, kl_tensor *b, kl_tensor *c, const kl_attrs *attrs);
kl_tensor *kl_op_n(int op, int n, kl_tensor **inputs, const kl_attrs *attrs);

/* the tape */
typedef struct kl_tape kl_tape;
kl_tape *kl_tape_new(int persistent);
void kl_tape_free(kl_tape *tape);
int kl_tape_start(kl_tape *tape);
int kl_tape_stop(kl_tape *tape);
int kl_tape_watch(kl_tape *tape, kl_tensor *t);
int kl_tape_recording(kl_tape *tape);
int64_t kl_tape_size(kl_tape *tape);
void kl_tape_reset(kl_tape *tape);
/* grads_out[i] is NULL where the target does not depend on sources[i]. */
int kl_tape_gradient(kl_tape *tape, kl_tensor *target, kl_tensor *output_gradient,
                     int n, kl_tensor **sources, kl_tensor **grads_out);
/* Recording is paused inside this scope (stop_gradient, optimizer updates). */
int kl_grad_pause(void);
void kl_grad_resume(int token);

/* reductions over whole tensors, without a tape (metrics, clipping) */
double kl_sum_all(kl_tensor *t);
double kl_sumsq_all(kl_tensor *t);
/* KL_CDEF_END */

#ifdef __cplusplus
}
#endif
#endif
