/* core.h — internal to the C core: the tensor helpers every op file uses, the
 * op definition record, and the error helper. Not installed. */
#ifndef KL_CORE_H
#define KL_CORE_H
#include "klua.h"
#include <stdarg.h>
#include <stdbool.h>

/* Errors: set the message, return NULL / -1. Messages name the op and shapes. */
void *kl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int kl_failn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "(2,3)" into buf; returns buf. */
const char *kl_shape_str(const kl_tensor *t, char *buf, size_t n);
#define KL_SHAPE(t) kl_shape_str((t), (char[96]){0}, 96)

/* Forward: build and return the output (new reference) or NULL with an error.
 * Backward: gin[i] = gradient for input i (new reference, or NULL for none).
 * A gradient may have the broadcast output's shape: the tape sums it back to
 * the input's shape, once, centrally. Backwards are written with kl_op calls,
 * so an enclosing tape records them (higher-order gradients). */
typedef kl_tensor *(*kl_forward_fn)(kl_tensor **in, int n, const kl_attrs *a);
typedef int (*kl_backward_fn)(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a,
                              kl_tensor *gout, kl_tensor **gin);
typedef struct kl_opdef {
  const char *name;
  int arity;             /* -1: variadic */
  int differentiable;    /* 0: no gradient flows (comparisons, argmax) */
  kl_forward_fn forward;
  kl_backward_fn backward;
} kl_opdef;

enum {
#define KL_OP(name, arity, diff) KL_OP_##name,
#include "ops.def"
#undef KL_OP
  KL_OP_COUNT
};
#define KL_OP(name, arity, diff)                                         \
  kl_tensor *op_##name##_fwd(kl_tensor **in, int n, const kl_attrs *a); \
  int op_##name##_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin);
#include "ops.def"
#undef KL_OP

/* Calling ops from C (backward rules, composite kernels). */
kl_tensor *kl_call(int op, kl_tensor *a, kl_tensor *b, kl_tensor *c, const kl_attrs *at);
kl_tensor *kl_call1(int op, kl_tensor *a);
kl_tensor *kl_call2(int op, kl_tensor *a, kl_tensor *b);
kl_tensor *kl_scalar(double v);                 /* 0-d tensor */
kl_tensor *kl_mul_scalar(kl_tensor *a, double s);
kl_tensor *kl_reshape_to(kl_tensor *t, int ndim, const int64_t *shape);  /* op, recorded */
kl_tensor *kl_sum_to_shape(kl_tensor *g, int ndim, const int64_t *shape);/* op, recorded */
kl_attrs kl_attrs_axes(int naxes, const int *axes, int keepdims);
/* Inside a backward: does input i need a gradient? (skip costly unneeded ones) */
int kl_need_grad(int i);
/* Release a list of tensors (NULLs allowed). */
void kl_release_all(int n, kl_tensor **ts);
/* Called by the op dispatcher: re-sizes the thread pool to the load now and
 * then (src/threads.c); a clock read otherwise. */
void kl_threads_tick(void);

/* Shapes */
int kl_norm_axis(int axis, int ndim, const char *op);   /* -1 + error if out of range */
int kl_broadcast_shape(const kl_tensor *a, const kl_tensor *b, int *ndim, int64_t *shape, const char *op);
/* The most elements a tensor may have (4 TiB of floats): far above any real
 * tensor, far below a product that overflows. */
#define KL_MAX_ELEMENTS (INT64_C(1) << 40)
/* 0 and *count = the number of elements, or -1 when a size is negative or the
 * sizes other than 0 multiply past KL_MAX_ELEMENTS (no message is set). */
int kl_shape_count(int ndim, const int64_t *shape, int64_t *count);
int64_t kl_numel_of(int ndim, const int64_t *shape);   /* INT64_MAX on overflow */
void kl_contig_strides(int ndim, const int64_t *shape, int64_t *stride);
/* A view of t with t's data laid out for a broadcast to (ndim, shape): stride 0 on expanded axes. */
void kl_broadcast_strides(const kl_tensor *t, int ndim, const int64_t *shape, int64_t *stride);

/* exp(x) for float32 in branch-free arithmetic, so loops that use it
 * vectorise (libm's expf is a call per element). Cody-Waite range reduction
 * and a degree-6 polynomial: relative error below 3e-7 over the whole range;
 * x is clamped to [-87.3, 88.7] (results 1.2e-38 .. 3.4e38); NaN stays NaN.
 * NOTE: the clamp is written so that it also catches NaN (a comparison with
 * NaN is false), since (int32_t)n of a NaN is undefined behaviour; the NaN
 * is put back at the end. Both are min/max/blend instructions, so loops still
 * vectorise. */
static inline float kl_exp(float x0) {
  float x = x0 > -87.3f ? x0 : -87.3f;
  x = x < 88.7f ? x : 88.7f;
  /* n = round(x / ln2) with the 1.5*2^23 trick (no roundps needed) */
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.16666666666666666f + r * (0.041666666666666664f +
            r * (0.008333333333333333f + r * 0.001388888888888889f)))));
  union { int32_t i; float f; } u = { ((int32_t)n + 127) << 23 };
  return x0 != x0 ? x0 : p * u.f;
}

/* Threads: parallelise loops above this many elements. Below it the loop
 * runs without entering OpenMP at all: even `parallel for if(0)` costs
 * microseconds (team set-up, futexes), more than a small op itself. */
#define KL_PAR_MIN 32768
#define KL_PAR_FOR(n, i, ...)                                                  \
  do {                                                                          \
    int64_t kl_n_ = (n);                                                        \
    if (kl_n_ > KL_PAR_MIN) {                                                   \
      _Pragma("omp parallel for schedule(static)")                              \
      for (int64_t i = 0; i < kl_n_; i++) { __VA_ARGS__ }                       \
    } else {                                                                    \
      for (int64_t i = 0; i < kl_n_; i++) { __VA_ARGS__ }                       \
    }                                                                           \
  } while (0)
/* The same, for loops whose cost per iteration is `work` elements. */
#define KL_PAR_FOR_W(n, work, i, ...)                                          \
  do {                                                                          \
    int64_t kl_n_ = (n);                                                        \
    if ((int64_t)(work) > KL_PAR_MIN && kl_n_ > 1) {                            \
      _Pragma("omp parallel for schedule(static)")                              \
      for (int64_t i = 0; i < kl_n_; i++) { __VA_ARGS__ }                       \
    } else {                                                                    \
      for (int64_t i = 0; i < kl_n_; i++) { __VA_ARGS__ }                       \
    }                                                                           \
  } while (0)

#endif
