/* unary.c — elementwise ops of one tensor, each forward beside its backward.
 * Forwards are one loop over contiguous data (OpenMP above KL_PAR_MIN). */
#include "core.h"
#include <math.h>

/* The loop body is its own function, compiled for AVX-512, AVX2 and the
 * baseline and picked at load time, so it vectorises wide on any x86-64. */
#define KL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
enum { BLOCK = 4096 };

#define UNARY_FWD(name, expr)                                                        \
  KL_CLONES static void name##_block(const float *X, float *Y, int64_t N, const kl_attrs *a) { \
    for (int64_t i = 0; i < N; i++) { float x = X[i]; Y[i] = (expr); }               \
  }                                                                                   \
  kl_tensor *op_##name##_fwd(kl_tensor **in, int n, const kl_attrs *a) {              \
    kl_tensor *xc = kl_tensor_contiguous(in[0]);                                      \
    if (!xc) return NULL;                                                             \
    kl_tensor *out = kl_tensor_empty(xc->nd, xc->dims);                               \
    if (out) {                                                                        \
      const float *X = xc->data;                                                      \
      float *Y = out->data;                                                           \
      int64_t N = out->count;                                                         \
      KL_PAR_FOR_W((N + BLOCK - 1) / BLOCK, N, b,                                     \
        int64_t s = b * BLOCK; name##_block(X + s, Y + s, N - s < BLOCK ? N - s : BLOCK, a););\
    }                                                                                 \
    kl_tensor_release(xc);                                                            \
    return out;                                                                       \
  }

/* (g, t) -> expr, for fused gradient helpers; both have the output's shape */
#define GRAD_FWD(name, expr)                                                          \
  KL_CLONES static void name##_block(const float *G, const float *T, float *Y, int64_t N) { \
    for (int64_t i = 0; i < N; i++) { float g = G[i], t = T[i]; Y[i] = (expr); }      \
  }                                                                                   \
  kl_tensor *op_##name##_fwd(kl_tensor **in, int n, const kl_attrs *a) {              \
    if (!kl_tensor_same_shape(in[0], in[1]))                                          \
      return kl_fail(#name ": shapes %s and %s differ", KL_SHAPE(in[0]), KL_SHAPE(in[1])); \
    kl_tensor *gc = kl_tensor_contiguous(in[0]), *tc = kl_tensor_contiguous(in[1]);   \
    kl_tensor *out = gc && tc ? kl_tensor_empty(gc->nd, gc->dims) : NULL;             \
    if (out) {                                                                        \
      const float *G = gc->data, *T = tc->data;                                       \
      float *Y = out->data;                                                           \
      int64_t N = out->count;                                                         \
      KL_PAR_FOR_W((N + BLOCK - 1) / BLOCK, N, b,                                     \
        int64_t s = b * BLOCK; name##_block(G + s, T + s, Y + s, N - s < BLOCK ? N - s : BLOCK););\
    }                                                                                 \
    kl_tensor_release(gc);                                                            \
    kl_tensor_release(tc);                                                            \
    return out;                                                                       \
  }

/* gin[0] = gout * f, where f is built from ops and released here */
static int times(kl_tensor *gout, kl_tensor *f, kl_tensor **gin) {
  if (!f) return -1;
  gin[0] = kl_call2(KL_OP_mul, gout, f);
  kl_tensor_release(f);
  return gin[0] ? 0 : -1;
}

UNARY_FWD(neg, -x)
int op_neg_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return (gin[0] = kl_call1(KL_OP_neg, g)) ? 0 : -1;
}

UNARY_FWD(exp, kl_exp(x))
int op_exp_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return (gin[0] = kl_call2(KL_OP_mul, g, out)) ? 0 : -1;
}

UNARY_FWD(log, logf(x))
int op_log_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return (gin[0] = kl_call2(KL_OP_div, g, in[0])) ? 0 : -1;
}

UNARY_FWD(sqrt, sqrtf(x))
int op_sqrt_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_tensor *h = kl_mul_scalar(g, 0.5);
  if (!h) return -1;
  gin[0] = kl_call2(KL_OP_div, h, out);
  kl_tensor_release(h);
  return gin[0] ? 0 : -1;
}

UNARY_FWD(square, x * x)
int op_square_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return times(g, kl_mul_scalar(in[0], 2.0), gin);
}

UNARY_FWD(abs, fabsf(x))
int op_abs_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return times(g, kl_call1(KL_OP_sign, in[0]), gin);
}

UNARY_FWD(sign, (float)((x > 0) - (x < 0)))
int op_sign_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return (gin[0] = kl_tensor_zeros(in[0]->nd, in[0]->dims)) ? 0 : -1; /* zero almost everywhere */
}

UNARY_FWD(sin, sinf(x))
int op_sin_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return times(g, kl_call1(KL_OP_cos, in[0]), gin);
}

UNARY_FWD(cos, cosf(x))
int op_cos_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_tensor *s = kl_call1(KL_OP_sin, in[0]);
  int rc = times(g, s ? kl_call1(KL_OP_neg, s) : NULL, gin);
  kl_tensor_release(s);
  return rc;
}

UNARY_FWD(tanh, tanhf(x))
int op_tanh_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return (gin[0] = kl_call2(KL_OP__tanh_grad, g, out)) ? 0 : -1;
}

/* NOTE: 1/(1+exp(-x)) with libm's expf overflows for x < -88; kl_exp clamps,
 * so the form is safe (and vectorises). */
UNARY_FWD(sigmoid, 1.0f / (1.0f + kl_exp(-x)))
int op_sigmoid_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return (gin[0] = kl_call2(KL_OP__sigmoid_grad, g, out)) ? 0 : -1;
}

UNARY_FWD(relu, x > 0 ? x : 0.0f)
int op_relu_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return (gin[0] = kl_call2(KL_OP__relu_grad, g, in[0])) ? 0 : -1;
}

/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): stable for large |x| */
UNARY_FWD(softplus, (x > 0 ? x : 0.0f) + log1pf(expf(-fabsf(x))))
int op_softplus_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return times(g, kl_call1(KL_OP_sigmoid, in[0]), gin);
}

UNARY_FWD(clip, x < (float)a->f[0] ? (float)a->f[0] : x > (float)a->f[1] ? (float)a->f[1] : x)
int op_clip_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_tensor *lo = kl_scalar(a->f[0]), *hi = kl_scalar(a->f[1]);
  kl_tensor *m1 = lo ? kl_call2(KL_OP_greater_equal, in[0], lo) : NULL;
  kl_tensor *m2 = hi ? kl_call2(KL_OP_less_equal, in[0], hi) : NULL;
  kl_tensor *m = m1 && m2 ? kl_call2(KL_OP_mul, m1, m2) : NULL;
  kl_tensor *tmp[4] = {lo, hi, m1, m2};
  kl_release_all(4, tmp);
  return times(g, m, gin);
}

UNARY_FWD(scale, (float)a->f[0] * x + (float)a->f[1])
int op_scale_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return (gin[0] = kl_mul_scalar(g, a->f[0])) ? 0 : -1;
}

UNARY_FWD(pow_scalar, powf(x, (float)a->f[0]))
int op_pow_scalar_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_attrs p = {0};
  p.f[0] = a->f[0] - 1.0;
  kl_tensor *d = kl_call(KL_OP_pow_scalar, in[0], NULL, NULL, &p);
  kl_tensor *ds = d ? kl_mul_scalar(d, a->f[0]) : NULL;
  kl_tensor_release(d);
  return times(g, ds, gin);
}

UNARY_FWD(copy, x)
int op_copy_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_tensor_retain(g);
  gin[0] = g;
  return 0;
}

static int zero_grad(kl_tensor *x, kl_tensor **gin) {
  return (gin[0] = kl_tensor_zeros(x->nd, x->dims)) ? 0 : -1;
}
UNARY_FWD(floor, floorf(x))
int op_floor_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) { return zero_grad(in[0], gin); }
UNARY_FWD(ceil, ceilf(x))
int op_ceil_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) { return zero_grad(in[0], gin); }
UNARY_FWD(round, nearbyintf(x))
int op_round_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) { return zero_grad(in[0], gin); }

GRAD_FWD(_relu_grad, t > 0 ? g : 0.0f)
int op__relu_grad_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  gin[0] = kl_call2(KL_OP__relu_grad, g, in[1]);
  return gin[0] ? 0 : -1; /* d/dx is zero almost everywhere */
}

GRAD_FWD(_sigmoid_grad, g * t * (1.0f - t))
int op__sigmoid_grad_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  /* out = G*Y*(1-Y): d/dG = Y(1-Y), d/dY = G(1-2Y) */
  gin[0] = kl_call2(KL_OP__sigmoid_grad, g, in[1]);
  kl_tensor *one_minus_2y = kl_call(KL_OP_scale, in[1], NULL, NULL, &(kl_attrs){.f = {-2.0, 1.0}});
  kl_tensor *t = one_minus_2y ? kl_call2(KL_OP_mul, in[0], one_minus_2y) : NULL;
  kl_tensor_release(one_minus_2y);
  gin[1] = t ? kl_call2(KL_OP_mul, g, t) : NULL;
  kl_tensor_release(t);
  return gin[0] && gin[1] ? 0 : -1;
}

GRAD_FWD(_tanh_grad, g * (1.0f - t * t))
int op__tanh_grad_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  /* out = G*(1-Y^2): d/dG = 1-Y^2, d/dY = -2GY */
  gin[0] = kl_call2(KL_OP__tanh_grad, g, in[1]);
  kl_tensor *gy = kl_call2(KL_OP_mul, in[0], in[1]);
  kl_tensor *m = gy ? kl_mul_scalar(gy, -2.0) : NULL;
  kl_tensor_release(gy);
  gin[1] = m ? kl_call2(KL_OP_mul, g, m) : NULL;
  kl_tensor_release(m);
  return gin[0] && gin[1] ? 0 : -1;
}
