/* reduce.c — reductions over axes (sum, mean, max, min, logsumexp, argmax,
 * argmin) and softmax / log_softmax along one axis.
 * Every reduction is seen as (outer, R, inner): the reduced axes, when they
 * are adjacent, are the middle block; other axis sets are moved there first
 * by a transposed copy. Accumulation is in double. */
#include "core.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { R_SUM, R_MAX, R_MIN, R_LSE, R_ARGMAX, R_ARGMIN };

typedef struct plan {
  int nd;
  int64_t outer, R, inner;
  int keep[KL_MAX_DIMS];           /* 1 if axis is reduced */
  int64_t out_dims[KL_MAX_DIMS], kd_dims[KL_MAX_DIMS];
  int out_nd;
} plan;

/* Resolve axes; naxes <= 0 means all axes. */
static int make_plan(const kl_tensor *x, const kl_attrs *a, const char *name, plan *p) {
  memset(p, 0, sizeof *p);
  p->nd = x->nd;
  if (a->naxes <= 0) for (int i = 0; i < x->nd; i++) p->keep[i] = 1;
  for (int i = 0; i < a->naxes; i++) {
    int ax = kl_norm_axis(a->axes[i], x->nd, name);
    if (ax < 0) return -1;
    if (p->keep[ax]) return kl_failn("%s: axis %d is repeated", name, a->axes[i]);
    p->keep[ax] = 1;
  }
  for (int i = 0; i < x->nd; i++) {
    p->kd_dims[i] = p->keep[i] ? 1 : x->dims[i];
    if (!p->keep[i] || a->keepdims) p->out_dims[p->out_nd++] = p->kd_dims[i];
  }
  return 0;
}

/* A contiguous tensor whose reduced axes form one middle block, and the
 * (outer, R, inner) sizes. Returns a new reference. */
static kl_tensor *arrange(kl_tensor *x, plan *p) {
  int first = -1, last = -1, adjacent = 1;
  for (int i = 0; i < x->nd; i++)
    if (p->keep[i]) { if (first < 0) first = i; else if (last != i - 1) adjacent = 0; last = i; }
  p->outer = p->R = p->inner = 1;
  if (first < 0) { p->outer = x->count; return kl_tensor_contiguous(x); }
  if (adjacent) {
    for (int i = 0; i < x->nd; i++) {
      if (i < first) p->outer *= x->dims[i];
      else if (i <= last) p->R *= x->dims[i];
      else p->inner *= x->dims[i];
    }
    return kl_tensor_contiguous(x);
  }
  /* kept axes first, reduced axes last, in a transposed copy */
  int64_t dims[KL_MAX_DIMS], st[KL_MAX_DIMS];
  int k = 0;
  for (int i = 0; i < x->nd; i++) if (!p->keep[i]) { dims[k] = x->dims[i]; st[k++] = x->strides[i]; p->outer *= x->dims[i]; }
  for (int i = 0; i < x->nd; i++) if (p->keep[i]) { dims[k] = x->dims[i]; st[k++] = x->strides[i]; p->R *= x->dims[i]; }
  kl_tensor *v = kl_tensor_view(x, x->nd, dims, st, 0);
  if (!v) return NULL;
  kl_tensor *c = kl_tensor_clone(v);
  kl_tensor_release(v);
  return c;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void sum_row(double *acc, const float *row, int64_t n) {
  for (int64_t i = 0; i < n; i++) acc[i] += row[i];
}

/* The sum of a contiguous run in double, vectorised (several partial sums). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static double sum_run(const float *x, int64_t n) {
  double s = 0;
  #pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; i++) s += x[i];
  return s;
}

/* Columns [c0, c0 + n) of the sum over the R rows (stride `inner`) of x into
 * out: whole runs of a row are added at once, which vectorises, in double per
 * column and in row order (the same sums as one column at a time). */
enum { SUM_COLS = 512, SUM_ROWS = 256 };
static void sum_cols(float *out, const float *x, int64_t R, int64_t inner, int64_t n) {
  double acc[SUM_COLS] = {0};
  for (int64_t r = 0; r < R; r++) sum_row(acc, x + r * inner, n);
  for (int64_t i = 0; i < n; i++) out[i] = (float)acc[i];
}

static kl_tensor *reduce(kl_tensor *x, const kl_attrs *a, int kind, const char *name) {
  plan p;
  if (make_plan(x, a, name, &p) < 0) return NULL;
  if ((kind != R_SUM) && x->count == 0) return kl_fail("%s: cannot reduce an empty tensor", name);
  kl_tensor *xc = arrange(x, &p);
  if (!xc) return NULL;
  kl_tensor *out = kl_tensor_empty(p.out_nd, p.out_dims);
  if (!out) { kl_tensor_release(xc); return NULL; }
  const float *X = xc->data;
  float *O = out->data;
  int64_t R = p.R, inner = p.inner, total = p.outer * inner;
  if (kind == R_SUM && inner >= 16 && p.outer == 1 && inner <= SUM_COLS && R >= 4 * SUM_ROWS && R * inner > KL_PAR_MIN) {
    /* one long column sum (a bias gradient over a big batch): chunks of rows
     * in parallel, each in double, added in chunk order (the chunks do not
     * depend on the thread count, so neither does the result) */
    int64_t chunks = (R + SUM_ROWS - 1) / SUM_ROWS;
    double *part = calloc((size_t)(chunks * inner), sizeof(double));
    if (!part) { kl_tensor_release(xc); kl_tensor_release(out); return kl_fail("%s: out of memory", name); }
    KL_PAR_FOR_W(chunks, x->count, ch,
      int64_t r0 = ch * SUM_ROWS, rows = R - r0 < SUM_ROWS ? R - r0 : SUM_ROWS;
      for (int64_t r = 0; r < rows; r++) sum_row(part + ch * inner, X + (r0 + r) * inner, inner););
    for (int64_t i = 0; i < inner; i++) {
      double acc = 0;
      for (int64_t ch = 0; ch < chunks; ch++) acc += part[ch * inner + i];
      O[i] = (float)acc;
    }
    free(part);
    kl_tensor_release(xc);
    return out;
  }
  if (kind == R_SUM && inner >= 16) {
    /* a sum over rows (a bias gradient, a mean over time steps): add whole
     * rows, which is contiguous and vectorises; tasks of (outer, column block) */
    int64_t blocks = (inner + SUM_COLS - 1) / SUM_COLS;
    KL_PAR_FOR_W(p.outer * blocks, x->count, t,
      int64_t o = t / blocks, c0 = t % blocks * SUM_COLS;
      sum_cols(O + o * inner + c0, X + o * R * inner + c0, R, inner, inner - c0 < SUM_COLS ? inner - c0 : SUM_COLS););
    kl_tensor_release(xc);
    return out;
  }
  KL_PAR_FOR_W(total, x->count, oi,
    int64_t o = oi / inner, i = oi % inner;
    const float *base = X + o * R * inner + i;
    if (kind == R_SUM && inner == 1) {
      O[oi] = (float)sum_run(base, R);
    } else if (kind == R_SUM) {
      double s = 0;
      for (int64_t r = 0; r < R; r++) s += base[r * inner];
      O[oi] = (float)s;
    } else if (kind == R_MAX || kind == R_MIN || kind == R_ARGMAX || kind == R_ARGMIN) {
      int want_max = kind == R_MAX || kind == R_ARGMAX;
      float best = base[0];
      int64_t arg = 0;
      for (int64_t r = 1; r < R; r++) {
        float v = base[r * inner];
        if (want_max ? v > best : v < best) { best = v; arg = r; }
        else if (isnan(v) && !isnan(best)) { best = v; arg = r; } /* NaN propagates, as in NumPy */
      }
      O[oi] = kind == R_ARGMAX || kind == R_ARGMIN ? (float)arg : best;
    } else { /* logsumexp */
      float m = -INFINITY;
      for (int64_t r = 0; r < R; r++) if (base[r * inner] > m) m = base[r * inner];
      if (isinf(m)) { O[oi] = m; } else {
      double s = 0;
      for (int64_t r = 0; r < R; r++) s += exp((double)base[r * inner] - m);
      O[oi] = (float)(m + log(s)); }
    });
  kl_tensor_release(xc);
  return out;
}

/* g (reduced shape) -> a broadcast view of the input's shape */
static kl_tensor *expand_back(kl_tensor *g, kl_tensor *x, const kl_attrs *a, const char *name) {
  plan p;
  if (make_plan(x, a, name, &p) < 0) return NULL;
  kl_tensor *r = kl_reshape_to(g, x->nd, p.kd_dims);
  if (!r) return NULL;
  kl_attrs bt = {0};
  bt.nints = x->nd;
  memcpy(bt.ints, x->dims, sizeof(int64_t) * x->nd);
  kl_tensor *b = kl_call(KL_OP_broadcast_to, r, NULL, NULL, &bt);
  kl_tensor_release(r);
  return b;
}

static kl_tensor *keepdims_of(kl_tensor *t, kl_tensor *x, const kl_attrs *a, const char *name) {
  plan p;
  if (make_plan(x, a, name, &p) < 0) return NULL;
  return kl_reshape_to(t, x->nd, p.kd_dims);
}

kl_tensor *op_sum_fwd(kl_tensor **in, int n, const kl_attrs *a) { return reduce(in[0], a, R_SUM, "sum"); }
int op_sum_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return (gin[0] = expand_back(g, in[0], a, "sum")) ? 0 : -1;
}

kl_tensor *op_mean_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *s = reduce(in[0], a, R_SUM, "mean");
  if (!s) return NULL;
  double count = s->count ? (double)in[0]->count / (double)s->count : 0;
  if (count == 0) return kl_fail("mean: cannot average over an empty axis");
  float inv = (float)(1.0 / count);
  for (int64_t i = 0; i < s->count; i++) s->data[i] *= inv;
  return s;
}
int op_mean_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_tensor *s = kl_mul_scalar(g, (double)out->count / (double)in[0]->count);
  if (!s) return -1;
  gin[0] = expand_back(s, in[0], a, "mean");
  kl_tensor_release(s);
  return gin[0] ? 0 : -1;
}

/* Ties share the gradient equally, as TensorFlow does. */
static int extreme_bwd(kl_tensor **in, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin, const char *name) {
  kl_tensor *okd = keepdims_of(out, in[0], a, name), *gkd = keepdims_of(g, in[0], a, name);
  kl_tensor *mask = okd ? kl_call2(KL_OP_equal, in[0], okd) : NULL;
  kl_attrs sa = *a;
  sa.keepdims = 1;
  kl_tensor *cnt = mask ? kl_call(KL_OP_sum, mask, NULL, NULL, &sa) : NULL;
  kl_tensor *share = cnt && gkd ? kl_call2(KL_OP_div, gkd, cnt) : NULL;
  gin[0] = share ? kl_call2(KL_OP_mul, mask, share) : NULL;
  kl_tensor *tmp[5] = {okd, gkd, mask, cnt, share};
  kl_release_all(5, tmp);
  return gin[0] ? 0 : -1;
}

kl_tensor *op_max_fwd(kl_tensor **in, int n, const kl_attrs *a) { return reduce(in[0], a, R_MAX, "max"); }
int op_max_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return extreme_bwd(in, out, a, g, gin, "max");
}
kl_tensor *op_min_fwd(kl_tensor **in, int n, const kl_attrs *a) { return reduce(in[0], a, R_MIN, "min"); }
int op_min_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return extreme_bwd(in, out, a, g, gin, "min");
}

kl_tensor *op_logsumexp_fwd(kl_tensor **in, int n, const kl_attrs *a) { return reduce(in[0], a, R_LSE, "logsumexp"); }
int op_logsumexp_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_tensor *okd = keepdims_of(out, in[0], a, "logsumexp"), *gkd = keepdims_of(g, in[0], a, "logsumexp");
  kl_tensor *d = okd ? kl_call2(KL_OP_sub, in[0], okd) : NULL;
  kl_tensor *e = d ? kl_call1(KL_OP_exp, d) : NULL;
  gin[0] = e && gkd ? kl_call2(KL_OP_mul, e, gkd) : NULL;
  kl_tensor *tmp[4] = {okd, gkd, d, e};
  kl_release_all(4, tmp);
  return gin[0] ? 0 : -1;
}

static kl_tensor *arg_fwd(kl_tensor *x, const kl_attrs *a, int kind, const char *name) {
  if (a->naxes > 1) return kl_fail("%s: takes one axis, got %d", name, a->naxes);
  return reduce(x, a, kind, name);
}
kl_tensor *op_argmax_fwd(kl_tensor **in, int n, const kl_attrs *a) { return arg_fwd(in[0], a, R_ARGMAX, "argmax"); }
int op_argmax_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) { return 0; }
kl_tensor *op_argmin_fwd(kl_tensor **in, int n, const kl_attrs *a) { return arg_fwd(in[0], a, R_ARGMIN, "argmin"); }
int op_argmin_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) { return 0; }

/* ---- softmax along one axis (default last) --------------------------- */
static kl_tensor *softmax_like(kl_tensor *x, const kl_attrs *a, int log_form, const char *name) {
  if (x->nd == 0) return kl_fail("%s: needs at least one axis", name);
  int ax = kl_norm_axis(a->naxes > 0 ? a->axes[0] : -1, x->nd, name);
  if (ax < 0) return NULL;
  kl_tensor *xc = kl_tensor_contiguous(x);
  if (!xc) return NULL;
  kl_tensor *out = kl_tensor_empty(x->nd, x->dims);
  if (!out) { kl_tensor_release(xc); return NULL; }
  int64_t R = x->dims[ax], inner = 1, outer = 1;
  for (int i = 0; i < ax; i++) outer *= x->dims[i];
  for (int i = ax + 1; i < x->nd; i++) inner *= x->dims[i];
  const float *X = xc->data;
  float *Y = out->data;
  KL_PAR_FOR_W(outer * inner, x->count, oi,
    int64_t o = oi / inner, i = oi % inner;
    const float *xb = X + o * R * inner + i;
    float *yb = Y + o * R * inner + i;
    float m = -INFINITY;
    for (int64_t r = 0; r < R; r++) if (xb[r * inner] > m) m = xb[r * inner];
    double s = 0;
    for (int64_t r = 0; r < R; r++) s += exp((double)xb[r * inner] - m);
    if (log_form) { float lse = (float)(m + log(s)); for (int64_t r = 0; r < R; r++) yb[r * inner] = xb[r * inner] - lse; }
    else { double inv = 1.0 / s; for (int64_t r = 0; r < R; r++) yb[r * inner] = (float)(exp((double)xb[r * inner] - m) * inv); });
  kl_tensor_release(xc);
  return out;
}

static kl_attrs one_axis_keep(const kl_attrs *a) {
  kl_attrs s = {0};
  s.naxes = 1;
  s.axes[0] = a->naxes > 0 ? a->axes[0] : -1;
  s.keepdims = 1;
  return s;
}

kl_tensor *op_softmax_fwd(kl_tensor **in, int n, const kl_attrs *a) { return softmax_like(in[0], a, 0, "softmax"); }
int op_softmax_bwd(kl_tensor **in, int n, kl_tensor *y, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_attrs s = one_axis_keep(a); /* y * (g - sum(g*y)) */
  kl_tensor *gy = kl_call2(KL_OP_mul, g, y);
  kl_tensor *sm = gy ? kl_call(KL_OP_sum, gy, NULL, NULL, &s) : NULL;
  kl_tensor *d = sm ? kl_call2(KL_OP_sub, g, sm) : NULL;
  gin[0] = d ? kl_call2(KL_OP_mul, y, d) : NULL;
  kl_tensor *tmp[3] = {gy, sm, d};
  kl_release_all(3, tmp);
  return gin[0] ? 0 : -1;
}

kl_tensor *op_log_softmax_fwd(kl_tensor **in, int n, const kl_attrs *a) { return softmax_like(in[0], a, 1, "log_softmax"); }
int op_log_softmax_bwd(kl_tensor **in, int n, kl_tensor *y, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_attrs s = one_axis_keep(a); /* g - exp(y) * sum(g) */
  kl_tensor *sm = kl_call(KL_OP_sum, g, NULL, NULL, &s);
  kl_tensor *e = kl_call1(KL_OP_exp, y);
  kl_tensor *p = sm && e ? kl_call2(KL_OP_mul, e, sm) : NULL;
  gin[0] = p ? kl_call2(KL_OP_sub, g, p) : NULL;
  kl_tensor *tmp[3] = {sm, e, p};
  kl_release_all(3, tmp);
  return gin[0] ? 0 : -1;
}
