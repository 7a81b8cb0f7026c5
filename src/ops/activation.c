/* activation.c — activations that are not a cheap composition of other ops
 * (gelu, elu, selu, leaky_relu, silu), and the layer helpers layer_norm and
 * batch_norm, each forward beside its backward.
 * Gradients go through two helper ops so that they are themselves recorded:
 *   _act_grad(g, x)  = g * f'(x)     (differentiable: its own gradient uses f'')
 *   _act_grad2(g, x) = g * f''(x)    (not differentiable: third derivatives are 0)
 * ints[0] of the helpers says which activation, f[0] its parameter. */
#include "core.h"
#include <math.h>
#include <string.h>

enum { ACT_GELU = 1, ACT_GELU_TANH, ACT_ELU, ACT_SELU, ACT_LEAKY, ACT_SILU };

static const double SELU_ALPHA = 1.6732632423543772848170429916717;
static const double SELU_SCALE = 1.0507009873554804934193349852946;
static const double INV_SQRT2 = 0.70710678118654752440;
static const double INV_SQRT_2PI = 0.39894228040143267794;
static const double GELU_C = 0.79788456080286535588;   /* sqrt(2/pi) */
static const double GELU_K = 0.044715;

static inline double sigm(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

static inline double act_f(int kind, double p, double x) {
  switch (kind) {
  case ACT_GELU: return 0.5 * x * (1.0 + erf(x * INV_SQRT2));
  case ACT_GELU_TANH: return 0.5 * x * (1.0 + tanh(GELU_C * (x + GELU_K * x * x * x)));
  case ACT_ELU: return x > 0 ? x : p * expm1(x);
  case ACT_SELU: return SELU_SCALE * (x > 0 ? x : SELU_ALPHA * expm1(x));
  case ACT_LEAKY: return x >= 0 ? x : p * x;
  case ACT_SILU: return x * sigm(x);
  }
  return 0;
}

static inline double act_d1(int kind, double p, double x) {
  switch (kind) {
  case ACT_GELU: return 0.5 * (1.0 + erf(x * INV_SQRT2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
  case ACT_GELU_TANH: {
    double t = tanh(GELU_C * (x + GELU_K * x * x * x)), du = GELU_C * (1.0 + 3.0 * GELU_K * x * x);
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
  }
  case ACT_ELU: return x > 0 ? 1.0 : p * exp(x);
  case ACT_SELU: return SELU_SCALE * (x > 0 ? 1.0 : SELU_ALPHA * exp(x));
  case ACT_LEAKY: return x >= 0 ? 1.0 : p;
  case ACT_SILU: { double s = sigm(x); return s * (1.0 + x * (1.0 - s)); }
  }
  return 0;
}

static inline double act_d2(int kind, double p, double x) {
  switch (kind) {
  case ACT_GELU: return INV_SQRT_2PI * exp(-0.5 * x * x) * (2.0 - x * x);
  case ACT_GELU_TANH: {
    double t = tanh(GELU_C * (x + GELU_K * x * x * x)), s = 1.0 - t * t;
    double du = GELU_C * (1.0 + 3.0 * GELU_K * x * x), ddu = 6.0 * GELU_C * GELU_K * x;
    return s * du + 0.5 * x * s * (ddu - 2.0 * t * du * du);
  }
  case ACT_ELU: return x > 0 ? 0.0 : p * exp(x);
  case ACT_SELU: return x > 0 ? 0.0 : SELU_SCALE * SELU_ALPHA * exp(x);
  case ACT_LEAKY: return 0.0;
  case ACT_SILU: { double s = sigm(x); return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s)); }
  }
  return 0;
}

/* y = f(x) elementwise */
static kl_tensor *act_forward(kl_tensor *x, int kind, double p) {
  kl_tensor *xc = kl_tensor_contiguous(x);
  if (!xc) return NULL;
  kl_tensor *out = kl_tensor_empty(xc->nd, xc->dims);
  if (out) {
    const float *X = xc->data;
    float *Y = out->data;
    int64_t N = out->count;
    KL_PAR_FOR(N, i, Y[i] = (float)act_f(kind, p, X[i]););
  }
  kl_tensor_release(xc);
  return out;
}

/* y = g * f'(x) (order 1) or g * f''(x) (order 2) */
static kl_tensor *act_grad_apply(kl_tensor *g, kl_tensor *x, int kind, double p, int order, const char *name) {
  if (!kl_tensor_same_shape(g, x)) return kl_fail("%s: shapes %s and %s differ", name, KL_SHAPE(g), KL_SHAPE(x));
  if (kind < ACT_GELU || kind > ACT_SILU) return kl_fail("%s: unknown activation code %d", name, kind);
  kl_tensor *gc = kl_tensor_contiguous(g), *xc = kl_tensor_contiguous(x);
  kl_tensor *out = gc && xc ? kl_tensor_empty(xc->nd, xc->dims) : NULL;
  if (out) {
    const float *G = gc->data, *X = xc->data;
    float *Y = out->data;
    int64_t N = out->count;
    KL_PAR_FOR(N, i, Y[i] = (float)(G[i] * (order == 1 ? act_d1(kind, p, X[i]) : act_d2(kind, p, X[i]))););
  }
  kl_tensor_release(gc);
  kl_tensor_release(xc);
  return out;
}

/* gin[0] = _act_grad(gout, x) with the activation's code */
static int act_backward(kl_tensor *x, kl_tensor *g, int kind, double p, kl_tensor **gin) {
  kl_attrs at = {0};
  at.ints[0] = kind;
  at.nints = 1;
  at.f[0] = p;
  gin[0] = kl_call(KL_OP__act_grad, g, x, NULL, &at);
  return gin[0] ? 0 : -1;
}

/* gelu: x * Phi(x); ints[0] = 1 for Keras's tanh approximation */
kl_tensor *op_gelu_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  return act_forward(in[0], a->nints > 0 && a->ints[0] ? ACT_GELU_TANH : ACT_GELU, 0);
}
int op_gelu_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return act_backward(in[0], g, a->nints > 0 && a->ints[0] ? ACT_GELU_TANH : ACT_GELU, 0, gin);
}

/* elu: x > 0 ? x : alpha * (e^x - 1); f[0] = alpha */
kl_tensor *op_elu_fwd(kl_tensor **in, int n, const kl_attrs *a) { return act_forward(in[0], ACT_ELU, a->f[0]); }
int op_elu_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return act_backward(in[0], g, ACT_ELU, a->f[0], gin);
}

/* selu: scale * elu(x, alpha) with Klambauer et al.'s constants */
kl_tensor *op_selu_fwd(kl_tensor **in, int n, const kl_attrs *a) { return act_forward(in[0], ACT_SELU, 0); }
int op_selu_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return act_backward(in[0], g, ACT_SELU, 0, gin);
}

/* leaky_relu: x >= 0 ? x : slope * x; f[0] = negative slope */
kl_tensor *op_leaky_relu_fwd(kl_tensor **in, int n, const kl_attrs *a) { return act_forward(in[0], ACT_LEAKY, a->f[0]); }
int op_leaky_relu_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return act_backward(in[0], g, ACT_LEAKY, a->f[0], gin);
}

/* silu (swish): x * sigmoid(x) */
kl_tensor *op_silu_fwd(kl_tensor **in, int n, const kl_attrs *a) { return act_forward(in[0], ACT_SILU, 0); }
int op_silu_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return act_backward(in[0], g, ACT_SILU, 0, gin);
}

kl_tensor *op__act_grad_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  return act_grad_apply(in[0], in[1], (int)a->ints[0], a->f[0], 1, "_act_grad");
}
int op__act_grad_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gg, kl_tensor **gin) {
  /* out = G * f'(X): d/dG = f'(X), d/dX = G * f''(X) */
  gin[0] = kl_call(KL_OP__act_grad, gg, in[1], NULL, a);
  kl_tensor *t = kl_call2(KL_OP_mul, gg, in[0]);
  gin[1] = t ? kl_call(KL_OP__act_grad2, t, in[1], NULL, a) : NULL;
  kl_tensor_release(t);
  return gin[0] && gin[1] ? 0 : -1;
}

kl_tensor *op__act_grad2_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  return act_grad_apply(in[0], in[1], (int)a->ints[0], a->f[0], 2, "_act_grad2");
}
int op__act_grad2_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return 0;
}
