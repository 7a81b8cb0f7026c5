/* loss.c — the losses as fused ops: each forward computes Keras's per-sample
 * loss in one pass (reducing the last axis, as keras.losses.<name> does) and
 * its backward writes dL/dy_pred (and dL/dy_true when asked) in one more.
 * Sample weights and the batch reduction are cheap ops composed in
 * lua/klua/losses.lua. Math is done in double per element and stored as
 * float32 (mean squared error's gradient, in float32: see mse_row).
 *
 * NOTE: Keras clips probabilities to [epsilon, 1 - epsilon] with
 * epsilon = 1e-7 in float32, where 1 - epsilon rounds to 0.99999988. The
 * bounds below are those float32 values, so a probability of exactly 0 or 1
 * gives Keras's loss (15.942385 for -log(1 - 0.99999988)). Clipping passes
 * the gradient inside the closed range and stops it outside. */
#include "core.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS_F 1e-7f
static const double EPS = (double)EPS_F;
static const double ONE_M_EPS = (double)(1.0f - EPS_F);
static const double LOG2 = 0.69314718055994530942;


static inline double sgn(double x) { return (double)((x > 0) - (x < 0)); }
static inline double clampd(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }
static inline double softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }
static inline double sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + exp(-z));
  double e = exp(z);
  return e / (1.0 + e);
}

/* ---- shapes -------------------------------------------------------------- */

/* y_true and y_pred of the same shape, as contiguous references. */
static int take_pair(const char *name, kl_tensor **in, kl_tensor **t, kl_tensor **p) {
  if (!kl_tensor_same_shape(in[0], in[1])) {
    /* y_true one axis short of y_pred: class indices given to a one-hot loss */
    int indices = in[0]->nd + 1 == in[1]->nd || (in[0]->nd == in[1]->nd && in[0]->nd > 0 && in[0]->dims[in[0]->nd - 1] == 1 &&
                                                  in[1]->dims[in[1]->nd - 1] > 1);
    return kl_failn("%s: y_true %s and y_pred %s must have the same shape%s", name, KL_SHAPE(in[0]), KL_SHAPE(in[1]),
                    indices ? " (y_true looks like class indices: use the sparse_ form of the loss, or one-hot encode"
                              " them with klua.ops.one_hot(y, num_classes))" : "");
  }
  *t = kl_tensor_contiguous(in[0]);
  *p = kl_tensor_contiguous(in[1]);
  if (!*t || !*p) { kl_tensor_release(*t); kl_tensor_release(*p); return -1; }
  return 0;
}

static int64_t row_len(const kl_tensor *x) { return x->nd ? x->dims[x->nd - 1] : 1; }
/* The per-sample output: x's shape without its last axis. */
static kl_tensor *row_output(const kl_tensor *x) { return kl_tensor_empty(x->nd ? x->nd - 1 : 0, x->dims); }

/* ---- elementwise losses reduced over the last axis ------------------------ */

enum { PW_MSE, PW_MAE, PW_MAPE, PW_MSLE, PW_HUBER, PW_LOGCOSH, PW_POISSON, PW_KLD, PW_HINGE, PW_SQHINGE, PW_FOCAL };

typedef struct pw {
  int kind;
  double delta;            /* huber */
  int hinge01;             /* hinge: labels are 0/1, used as 2y - 1 */
  int from_logits, balance;
  double alpha, gamma;     /* focal */
} pw;

/* Labels given as 0/1 are converted to -1/1 (Keras converts when every label is 0 or 1). */
static int all_binary(const kl_tensor *t) {
  for (int64_t i = 0; i < t->count; i++)
    if (t->data[i] != 0.0f && t->data[i] != 1.0f) return 0;
  return 1;
}

static pw pw_of(int kind, const kl_attrs *a, const kl_tensor *t) {
  pw k;
  memset(&k, 0, sizeof k);
  k.kind = kind;
  k.delta = a->f[0] > 0 ? a->f[0] : 1.0;
  if (kind == PW_HINGE || kind == PW_SQHINGE) k.hinge01 = all_binary(t);
  if (kind == PW_FOCAL) {
    k.from_logits = a->nints > 0 && a->ints[0];
    k.balance = a->nints > 1 && a->ints[1];
    k.alpha = a->f[0];
    k.gamma = a->f[1];
  }
  return k;
}

/* The loss of one element and, when dt is given, its derivatives. */
static inline double pw_eval(const pw *k, double t, double p, double *dt, double *dp) {
  double v = 0, gt = 0, gp = 0;
  switch (k->kind) {
  case PW_MSE: { double d = p - t; v = d * d; gp = 2 * d; gt = -gp; break; }
  case PW_MAE: { double d = p - t; v = fabs(d); gp = sgn(d); gt = -gp; break; }
  case PW_MAPE: { /* 100 * |t - p| / max(|t|, eps) */
    double at = fabs(t), m = at > EPS ? at : EPS, d = t - p;
    v = 100.0 * fabs(d) / m;
    gp = -100.0 * sgn(d) / m;
    gt = 100.0 * sgn(d) / m - (at > EPS ? 100.0 * fabs(d) * sgn(t) / (m * m) : 0);
    break;
  }
  case PW_MSLE: {
    double pp = p > EPS ? p : EPS, tt = t > EPS ? t : EPS;
    double d = log(pp + 1) - log(tt + 1);
    v = d * d;
    gp = p > EPS ? 2 * d / (pp + 1) : 0;
    gt = t > EPS ? -2 * d / (tt + 1) : 0;
    break;
  }
  case PW_HUBER: {
    double e = p - t, ae = fabs(e), dl = k->delta;
    if (ae <= dl) { v = 0.5 * e * e; gp = e; }
    else { v = dl * ae - 0.5 * dl * dl; gp = dl * sgn(e); }
    gt = -gp;
    break;
  }
  case PW_LOGCOSH: { /* x + softplus(-2x) - log 2: exact for large |x| */
    double x = p - t;
    v = x + softplus(-2 * x) - LOG2;
    gp = tanh(x); gt = -gp;
    break;
  }
  case PW_POISSON: {
    double lp = log(p + EPS);
    v = p - t * lp;
    gp = 1 - t / (p + EPS); gt = -lp;
    break;
  }
  case PW_KLD: {
    double tc = clampd(t, EPS, 1), pc = clampd(p, EPS, 1), l = log(tc / pc);
    v = tc * l;
    gp = (p >= EPS && p <= 1) ? -tc / pc : 0;
    gt = (t >= EPS && t <= 1) ? l + 1 : 0;
    break;
  }
  case PW_HINGE: case PW_SQHINGE: {
    double y = k->hinge01 ? 2 * t - 1 : t, f = k->hinge01 ? 2 : 1;
    double h = 1 - y * p;
    if (h <= 0) break;
    if (k->kind == PW_HINGE) { v = h; gp = -y; gt = -p * f; }
    else { v = h * h; gp = -2 * h * y; gt = -2 * h * p * f; }
    break;
  }
  case PW_FOCAL: { /* keras.losses.binary_focal_crossentropy, before the mean */
    double q = k->from_logits ? sigmoid(p) : p;
    double pc = clampd(q, EPS, ONE_M_EPS), lp = log(pc), l1p = log(1 - pc);
    double bce = -(t * lp + (1 - t) * l1p);
    double base = q + t - 2 * t * q; /* 1 - p_t */
    double focal = k->gamma != 0 ? pow(base, k->gamma) : 1;
    double w = k->balance ? t * k->alpha + (1 - t) * (1 - k->alpha) : 1;
    v = w * focal * bce;
    if (!dt) break;
    double dfb = k->gamma != 0 ? k->gamma * pow(base, k->gamma - 1) : 0; /* d focal / d base */
    double dbce_dq = (q >= EPS && q <= ONE_M_EPS) ? -t / pc + (1 - t) / (1 - pc) : 0;
    gp = w * (dfb * (1 - 2 * t) * bce + focal * dbce_dq);
    if (k->from_logits) gp *= q * (1 - q);
    double dw = k->balance ? 2 * k->alpha - 1 : 0;
    gt = dw * focal * bce + w * (dfb * (1 - 2 * q) * bce - focal * (lp - l1p));
    break;
  }
  }
  if (dt) { *dt = gt; *dp = gp; }
  return v;
}

/* Mean squared error, the most used of them, in loops that vectorise (the
 * generic ones above evaluate a switch per element): the row's sum of squares
 * in double, and the gradient 2 (p - t) g / cols in float. */
#define KL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
KL_CLONES static double mse_row(const float *t, const float *p, int64_t cols) {
  double acc = 0;
  #pragma omp simd reduction(+ : acc)
  for (int64_t j = 0; j < cols; j++) { float d = p[j] - t[j]; acc += (double)(d * d); }
  return acc;
}

KL_CLONES static void mse_row_grad(const float *t, const float *p, int64_t cols, float gp, float *dt, float *dp) {
  if (dp) {
    #pragma omp simd
    for (int64_t j = 0; j < cols; j++) dp[j] = gp * (p[j] - t[j]);
  }
  if (dt) {
    #pragma omp simd
    for (int64_t j = 0; j < cols; j++) dt[j] = -gp * (p[j] - t[j]);
  }
}

static kl_tensor *pw_forward(kl_tensor **in, const kl_attrs *a, int kind, const char *name) {
  kl_tensor *t, *p;
  if (take_pair(name, in, &t, &p) < 0) return NULL;
  kl_tensor *out = row_output(p);
  if (out) {
    pw k = pw_of(kind, a, t);
    int64_t cols = row_len(p), rows = out->count, total = p->count;
    double scale = kind == PW_KLD ? 1.0 : 1.0 / (double)cols;
    const float *td = t->data, *pd = p->data;
    float *od = out->data;
    if (kind == PW_MSE) KL_PAR_FOR_W(rows, total, r, od[r] = (float)(mse_row(td + r * cols, pd + r * cols, cols) * scale););
    else KL_PAR_FOR_W(rows, total, r, double acc = 0;
      for (int64_t j = 0; j < cols; j++) acc += pw_eval(&k, td[r * cols + j], pd[r * cols + j], NULL, NULL);
      od[r] = (float)(acc * scale););
  }
  kl_tensor_release(t);
  kl_tensor_release(p);
  return out;
}

static int pw_backward(kl_tensor **in, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin, int kind, const char *name) {
  kl_tensor *t, *p;
  if (take_pair(name, in, &t, &p) < 0) return -1;
  kl_tensor *g = kl_tensor_contiguous(gout);
  kl_tensor *dt = kl_need_grad(0) ? kl_tensor_empty(t->nd, t->dims) : NULL;
  kl_tensor *dp = kl_need_grad(1) ? kl_tensor_empty(p->nd, p->dims) : NULL;
  int rc = 0;
  if (!g || (kl_need_grad(0) && !dt) || (kl_need_grad(1) && !dp)) rc = -1;
  else {
    pw k = pw_of(kind, a, t);
    int64_t cols = row_len(p), rows = g->count, total = p->count;
    double scale = kind == PW_KLD ? 1.0 : 1.0 / (double)cols;
    const float *td = t->data, *pd = p->data, *gd = g->data;
    float *dtd = dt ? dt->data : NULL, *dpd = dp ? dp->data : NULL;
    if (kind == PW_MSE)
      KL_PAR_FOR_W(rows, total, r, mse_row_grad(td + r * cols, pd + r * cols, cols, (float)(2 * gd[r] * scale),
                                                 dtd ? dtd + r * cols : NULL, dpd ? dpd + r * cols : NULL););
    else KL_PAR_FOR_W(rows, total, r, double gr = gd[r] * scale;
      for (int64_t j = 0; j < cols; j++) {
        int64_t i = r * cols + j;
        double vt, vp;
        pw_eval(&k, td[i], pd[i], &vt, &vp);
        if (dtd) dtd[i] = (float)(gr * vt);
        if (dpd) dpd[i] = (float)(gr * vp);
      });
  }
  kl_tensor_release(t); kl_tensor_release(p); kl_tensor_release(g);
  if (rc) { kl_tensor_release(dt); kl_tensor_release(dp); return -1; }
  gin[0] = dt;
  gin[1] = dp;
  return 0;
}

#define POINTWISE_LOSS(op, kind)                                                          \
  kl_tensor *op_##op##_fwd(kl_tensor **in, int n, const kl_attrs *a) {                  \
    return pw_forward(in, a, kind, #op);                                                 \
  }                                                                                      \
  int op_##op##_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, \
                    kl_tensor **gin) {                                                   \
    return pw_backward(in, a, gout, gin, kind, #op);                                     \
  }

POINTWISE_LOSS(mean_squared_error, PW_MSE)
POINTWISE_LOSS(mean_absolute_error, PW_MAE)
POINTWISE_LOSS(mean_absolute_percentage_error, PW_MAPE)
POINTWISE_LOSS(mean_squared_logarithmic_error, PW_MSLE)
POINTWISE_LOSS(huber, PW_HUBER)
POINTWISE_LOSS(log_cosh, PW_LOGCOSH)
POINTWISE_LOSS(poisson, PW_POISSON)
POINTWISE_LOSS(kl_divergence, PW_KLD)
POINTWISE_LOSS(hinge, PW_HINGE)
POINTWISE_LOSS(squared_hinge, PW_SQHINGE)
POINTWISE_LOSS(binary_focal_crossentropy, PW_FOCAL)

/* ---- binary crossentropy, elementwise (keras.ops.binary_crossentropy) ---- */

/* From logits: max(x,0) - x*t + log(1 + exp(-|x|)), exact for any |x|. */
static inline double bce_eval(int from_logits, double t, double x, double *dt, double *dx) {
  if (from_logits) {
    double v = (x > 0 ? x : 0) - x * t + log1p(exp(-fabs(x)));
    if (dt) { *dx = sigmoid(x) - t; *dt = -x; }
    return v;
  }
  double pc = clampd(x, EPS, ONE_M_EPS), lp = log(pc), l1p = log(1 - pc);
  if (dt) {
    *dx = (x >= EPS && x <= ONE_M_EPS) ? -t / pc + (1 - t) / (1 - pc) : 0;
    *dt = -(lp - l1p);
  }
  return -(t * lp + (1 - t) * l1p);
}

kl_tensor *op_binary_crossentropy_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *t, *p;
  if (take_pair("binary_crossentropy", in, &t, &p) < 0) return NULL;
  kl_tensor *out = kl_tensor_empty(p->nd, p->dims);
  if (out) {
    int fl = a->nints > 0 && a->ints[0];
    int64_t total = p->count;
    const float *td = t->data, *pd = p->data;
    float *od = out->data;
    KL_PAR_FOR_W(total, total, i, od[i] = (float)bce_eval(fl, td[i], pd[i], NULL, NULL););
  }
  kl_tensor_release(t); kl_tensor_release(p);
  return out;
}

int op_binary_crossentropy_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  kl_tensor *t, *p;
  if (take_pair("binary_crossentropy", in, &t, &p) < 0) return -1;
  kl_tensor *g = kl_tensor_contiguous(gout);
  kl_tensor *dt = kl_need_grad(0) ? kl_tensor_empty(t->nd, t->dims) : NULL;
  kl_tensor *dp = kl_need_grad(1) ? kl_tensor_empty(p->nd, p->dims) : NULL;
  int rc = (!g || (kl_need_grad(0) && !dt) || (kl_need_grad(1) && !dp)) ? -1 : 0;
  if (!rc) {
    int fl = a->nints > 0 && a->ints[0];
    int64_t total = p->count;
    const float *td = t->data, *pd = p->data, *gd = g->data;
    float *dtd = dt ? dt->data : NULL, *dpd = dp ? dp->data : NULL;
    KL_PAR_FOR_W(total, total, i, double vt, vp;
      bce_eval(fl, td[i], pd[i], &vt, &vp);
      if (dtd) dtd[i] = (float)(gd[i] * vt);
      if (dpd) dpd[i] = (float)(gd[i] * vp););
  }
  kl_tensor_release(t); kl_tensor_release(p); kl_tensor_release(g);
  if (rc) { kl_tensor_release(dt); kl_tensor_release(dp); return -1; }
  gin[0] = dt;
  gin[1] = dp;
  return 0;
}

/* ---- categorical crossentropy over the last axis ------------------------- */

/* One row: returns the loss; fills dp/dt (may be NULL) scaled by g.
 * Logits: log_softmax. Probabilities: Keras first renormalises the row to sum
 * to 1, then clips, then takes the log; the gradient goes through both. */
static double cce_row(int from_logits, const float *t, const float *p, int64_t c, double g, float *dt, float *dp) {
  double loss = 0;
  if (from_logits) {
    double mx = -INFINITY, s = 0, tsum = 0;
    for (int64_t j = 0; j < c; j++) if (p[j] > mx) mx = p[j];
    for (int64_t j = 0; j < c; j++) s += exp(p[j] - mx);
    double lse = mx + log(s);
    for (int64_t j = 0; j < c; j++) { loss -= t[j] * (p[j] - lse); tsum += t[j]; }
    if (dp) for (int64_t j = 0; j < c; j++) dp[j] = (float)(g * (exp(p[j] - lse) * tsum - t[j]));
    if (dt) for (int64_t j = 0; j < c; j++) dt[j] = (float)(-g * (p[j] - lse));
    return loss;
  }
  double s = 0, dot = 0;
  for (int64_t j = 0; j < c; j++) s += p[j];
  for (int64_t j = 0; j < c; j++) {
    double q = p[j] / s, qc = clampd(q, EPS, ONE_M_EPS);
    loss -= t[j] * log(qc);
    if (dt) dt[j] = (float)(-g * log(qc));
    if (dp) { double gq = (q >= EPS && q <= ONE_M_EPS) ? -t[j] / qc : 0; dp[j] = (float)gq; dot += gq * q; }
  }
  if (dp) for (int64_t j = 0; j < c; j++) dp[j] = (float)(g * (dp[j] - dot) / s);
  return loss;
}

kl_tensor *op_categorical_crossentropy_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *t, *p;
  if (take_pair("categorical_crossentropy", in, &t, &p) < 0) return NULL;
  kl_tensor *out = NULL;
  if (!p->nd) kl_fail("categorical_crossentropy: y_pred must have a class axis, got shape %s", KL_SHAPE(p));
  else out = row_output(p);
  if (out) {
    int fl = a->nints > 0 && a->ints[0];
    int64_t cols = row_len(p), rows = out->count, total = p->count;
    const float *td = t->data, *pd = p->data;
    float *od = out->data;
    KL_PAR_FOR_W(rows, total, r, od[r] = (float)cce_row(fl, td + r * cols, pd + r * cols, cols, 0, NULL, NULL););
  }
  kl_tensor_release(t); kl_tensor_release(p);
  return out;
}

int op_categorical_crossentropy_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  kl_tensor *t, *p;
  if (take_pair("categorical_crossentropy", in, &t, &p) < 0) return -1;
  kl_tensor *g = kl_tensor_contiguous(gout);
  kl_tensor *dt = kl_need_grad(0) ? kl_tensor_empty(t->nd, t->dims) : NULL;
  kl_tensor *dp = kl_need_grad(1) ? kl_tensor_empty(p->nd, p->dims) : NULL;
  int rc = (!g || (kl_need_grad(0) && !dt) || (kl_need_grad(1) && !dp)) ? -1 : 0;
  if (!rc) {
    int fl = a->nints > 0 && a->ints[0];
    int64_t cols = row_len(p), rows = g->count, total = p->count;
    const float *td = t->data, *pd = p->data, *gd = g->data;
    KL_PAR_FOR_W(rows, total, r, cce_row(fl, td + r * cols, pd + r * cols, cols, gd[r], dt ? dt->data + r * cols : NULL, dp ? dp->data + r * cols : NULL););
  }
  kl_tensor_release(t); kl_tensor_release(p); kl_tensor_release(g);
  if (rc) { kl_tensor_release(dt); kl_tensor_release(dp); return -1; }
  gin[0] = dt;
  gin[1] = dp;
  return 0;
}

/* ---- sparse categorical crossentropy: integer labels --------------------- */

/* Labels shaped like y_pred without its class axis, or with a trailing 1. */
static int check_labels(const kl_tensor *lab, const kl_tensor *p) {
  const char *name = "sparse_categorical_crossentropy";
  if (p->nd < 1) return kl_failn("%s: y_pred must have a class axis, got shape %s", name, KL_SHAPE(p));
  int lnd = lab->nd;
  if (lnd == p->nd && lnd > 0 && lab->dims[lnd - 1] == 1) lnd--;
  int ok = lnd == p->nd - 1;
  for (int i = 0; ok && i < lnd; i++) ok = lab->dims[i] == p->dims[i];
  if (!ok) return kl_failn("%s: labels %s do not match y_pred %s (expected the shape of y_pred without its last axis)",
                           name, KL_SHAPE(lab), KL_SHAPE(p));
  return 0;
}

typedef struct scce { int from_logits, has_ignore; double ignore; } scce;

static scce scce_of(const kl_attrs *a) {
  scce s;
  s.from_logits = a->nints > 0 && a->ints[0];
  s.has_ignore = a->nints > 1 && a->ints[1];
  s.ignore = a->nints > 2 ? (double)a->ints[2] : 0;
  return s;
}

/* One row. Labels are checked by check_label_values; an ignored (or, in a
 * backward after the labels changed, invalid) label gives 0 and no gradient. */
static double scce_row(const scce *s, double y, const float *p, int64_t c, double g, float *dp) {
  if ((s->has_ignore && y == s->ignore) || !(y >= 0 && y < (double)c)) {
    if (dp) memset(dp, 0, sizeof(float) * c);
    return 0;
  }
  int64_t k = (int64_t)y;
  if (s->from_logits) {
    enum { KEEP = 512 };   /* up to this many classes, the exponentials are kept for the gradient */
    double mx = -INFINITY, sum = 0, e[KEEP];
    for (int64_t j = 0; j < c; j++) if (p[j] > mx) mx = p[j];
    if (dp && c <= KEEP) {
      for (int64_t j = 0; j < c; j++) sum += e[j] = exp(p[j] - mx);
      for (int64_t j = 0; j < c; j++) dp[j] = (float)(g * (e[j] / sum - (j == k)));
      return mx + log(sum) - p[k];
    }
    for (int64_t j = 0; j < c; j++) sum += exp(p[j] - mx);
    double lse = mx + log(sum);
    if (dp) for (int64_t j = 0; j < c; j++) dp[j] = (float)(g * (exp(p[j] - lse) - (j == k)));
    return lse - p[k];
  }
  double sum = 0;
  for (int64_t j = 0; j < c; j++) sum += p[j];
  double q = p[k] / sum, qc = clampd(q, EPS, ONE_M_EPS);
  if (dp) {
    double gq = (q >= EPS && q <= ONE_M_EPS) ? -1.0 / qc : 0;
    for (int64_t j = 0; j < c; j++) dp[j] = (float)(g * (gq * (j == k) - gq * q) / sum);
  }
  return -log(qc);
}

/* Every label must be a class index (or the ignored class). */
static int check_label_values(const scce *s, const float *lab, int64_t rows, int64_t c) {
  for (int64_t r = 0; r < rows; r++) {
    double y = lab[r];
    if (s->has_ignore && y == s->ignore) continue;
    if (!(y >= 0 && y < (double)c && y == floor(y)))
      return kl_failn("sparse_categorical_crossentropy: label %g (sample %lld) is not a class index in [0, %lld)%s",
                      y, (long long)r + 1, (long long)c,
                      y == (double)c ? " (class indices are 0-based: labels 1..n need y - 1)" : "");
  }
  return 0;
}

kl_tensor *op_sparse_categorical_crossentropy_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  if (check_labels(in[0], in[1]) < 0) return NULL;
  kl_tensor *lab = kl_tensor_contiguous(in[0]), *p = kl_tensor_contiguous(in[1]), *out = NULL;
  scce s = scce_of(a);
  if (lab && p && check_label_values(&s, lab->data, lab->count, row_len(p)) == 0) out = row_output(p);
  if (out) {
    int64_t cols = row_len(p), rows = out->count, total = p->count;
    const float *ld = lab->data, *pd = p->data;
    float *od = out->data;
    KL_PAR_FOR_W(rows, total, r, od[r] = (float)scce_row(&s, ld[r], pd + r * cols, cols, 0, NULL););
  }
  kl_tensor_release(lab); kl_tensor_release(p);
  return out;
}

int op_sparse_categorical_crossentropy_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  if (!kl_need_grad(1)) return 0; /* labels have no gradient */
  kl_tensor *lab = kl_tensor_contiguous(in[0]), *p = kl_tensor_contiguous(in[1]), *g = kl_tensor_contiguous(gout);
  kl_tensor *dp = p ? kl_tensor_empty(p->nd, p->dims) : NULL;
  int rc = (!lab || !p || !g || !dp) ? -1 : 0;
  if (!rc) {
    scce s = scce_of(a);
    int64_t cols = row_len(p), rows = g->count, total = p->count;
    const float *ld = lab->data, *pd = p->data, *gd = g->data;
    float *dpd = dp->data;
    KL_PAR_FOR_W(rows, total, r, scce_row(&s, ld[r], pd + r * cols, cols, gd[r], dpd + r * cols););
  }
  kl_tensor_release(lab); kl_tensor_release(p); kl_tensor_release(g);
  if (rc) { kl_tensor_release(dp); return -1; }
  gin[1] = dp;
  return 0;
}

/* ---- categorical hinge: max(max((1 - t) * p) - sum(t * p) + 1, 0) -------- */

static double chinge_row(const float *t, const float *p, int64_t c, double g, float *dt, float *dp) {
  double pos = 0, neg = -INFINITY;
  int64_t jn = 0;
  for (int64_t j = 0; j < c; j++) {
    pos += (double)t[j] * p[j];
    double v = (1.0 - t[j]) * p[j];
    if (v > neg) { neg = v; jn = j; }
  }
  double l = neg - pos + 1;
  int on = l > 0;
  if (dp) for (int64_t j = 0; j < c; j++) dp[j] = on ? (float)(g * ((j == jn) * (1.0 - t[j]) - t[j])) : 0.0f;
  if (dt) for (int64_t j = 0; j < c; j++) dt[j] = on ? (float)(g * (-(double)(j == jn) * p[jn] - p[j])) : 0.0f;
  return on ? l : 0;
}

/* ---- cosine similarity: -sum(normalize(t) * normalize(p)) ----------------
 * Keras's normalize is x * min(1 / ||x||, 1 / epsilon). */
static double cosine_row(const float *t, const float *p, int64_t c, double g, float *dt, float *dp) {
  double tt = 0, pp = 0, tp = 0;
  for (int64_t j = 0; j < c; j++) { tt += (double)t[j] * t[j]; pp += (double)p[j] * p[j]; tp += (double)t[j] * p[j]; }
  double nt = sqrt(tt), np = sqrt(pp), lim = 1.0 / EPS;
  double it = nt > EPS ? 1.0 / nt : lim, ip = np > EPS ? 1.0 / np : lim;
  if (dp) for (int64_t j = 0; j < c; j++)
    dp[j] = (float)(-g * it * (np > EPS ? ip * (t[j] - tp * p[j] * ip * ip) : lim * t[j]));
  if (dt) for (int64_t j = 0; j < c; j++)
    dt[j] = (float)(-g * ip * (nt > EPS ? it * (p[j] - tp * t[j] * it * it) : lim * p[j]));
  return -tp * it * ip;
}

typedef double (*row_fn)(const float *t, const float *p, int64_t c, double g, float *dt, float *dp);

static kl_tensor *rows_forward(kl_tensor **in, row_fn f, const char *name) {
  kl_tensor *t, *p;
  if (take_pair(name, in, &t, &p) < 0) return NULL;
  kl_tensor *out = row_output(p);
  if (out) {
    int64_t cols = row_len(p), rows = out->count, total = p->count;
    const float *td = t->data, *pd = p->data;
    float *od = out->data;
    KL_PAR_FOR_W(rows, total, r, od[r] = (float)f(td + r * cols, pd + r * cols, cols, 0, NULL, NULL););
  }
  kl_tensor_release(t); kl_tensor_release(p);
  return out;
}

static int rows_backward(kl_tensor **in, kl_tensor *gout, kl_tensor **gin, row_fn f, const char *name) {
  kl_tensor *t, *p;
  if (take_pair(name, in, &t, &p) < 0) return -1;
  kl_tensor *g = kl_tensor_contiguous(gout);
  kl_tensor *dt = kl_need_grad(0) ? kl_tensor_empty(t->nd, t->dims) : NULL;
  kl_tensor *dp = kl_need_grad(1) ? kl_tensor_empty(p->nd, p->dims) : NULL;
  int rc = (!g || (kl_need_grad(0) && !dt) || (kl_need_grad(1) && !dp)) ? -1 : 0;
  if (!rc) {
    int64_t cols = row_len(p), rows = g->count, total = p->count;
    const float *td = t->data, *pd = p->data, *gd = g->data;
    KL_PAR_FOR_W(rows, total, r, f(td + r * cols, pd + r * cols, cols, gd[r], dt ? dt->data + r * cols : NULL, dp ? dp->data + r * cols : NULL););
  }
  kl_tensor_release(t); kl_tensor_release(p); kl_tensor_release(g);
  if (rc) { kl_tensor_release(dt); kl_tensor_release(dp); return -1; }
  gin[0] = dt;
  gin[1] = dp;
  return 0;
}

kl_tensor *op_categorical_hinge_fwd(kl_tensor **in, int n, const kl_attrs *a) { return rows_forward(in, chinge_row, "categorical_hinge"); }
int op_categorical_hinge_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  return rows_backward(in, gout, gin, chinge_row, "categorical_hinge");
}
kl_tensor *op_cosine_similarity_fwd(kl_tensor **in, int n, const kl_attrs *a) { return rows_forward(in, cosine_row, "cosine_similarity"); }
int op_cosine_similarity_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  return rows_backward(in, gout, gin, cosine_row, "cosine_similarity");
}

/* ---- CTC (keras.ops.ctc_loss, keras.losses.ctc) ----------------------------
 * (labels (B,S), logits (B,T,C)[, label_length (B)[, logit_length (B)]]) ->
 * (B): -log p(labels | logits) per sample; ints[0] = the blank class (Keras's
 * mask_index). A sample's labels are the first label_length entries of its
 * row, taken as they are (a blank among them is one more class, as in Keras);
 * without label_length it is the number of entries that are not the blank
 * (keras.losses.ctc's 0-padding), without logit_length all T steps count.
 * Forward-backward over the 2L+1 states blank, l1, blank, l2, ..., blank in
 * log space, in double. The backward is softmax - state occupancy at each
 * step (zero past the sample's logit length). An alignment that cannot fit
 * (T too short for the labels and the blanks between repeats) has
 * probability 0: loss +inf and a zero gradient (as tf.nn.ctc_loss). */

typedef struct ctc_dims { int64_t B, S, T, C; int64_t blank; } ctc_dims;

static inline double lse2(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

/* Shapes, the blank, every sample's lengths (into lab_len / in_len) and labels. */
static int ctc_check(kl_tensor **in, int n, const kl_attrs *a, const float *lab, const float *ll, const float *tl,
                     ctc_dims *d, int64_t *lab_len, int64_t *in_len) {
  const char *name = "ctc_loss";
  kl_tensor *L = in[0], *X = in[1];
  if (X->nd != 3) return kl_failn("%s: logits must be (batch, time, classes), got shape %s", name, KL_SHAPE(X));
  if (L->nd != 2 || L->dims[0] != X->dims[0])
    return kl_failn("%s: labels must be (batch, max_label_length) with the batch of logits %s, got shape %s",
                    name, KL_SHAPE(X), KL_SHAPE(L));
  d->B = X->dims[0]; d->T = X->dims[1]; d->C = X->dims[2]; d->S = L->dims[1];
  d->blank = a->nints > 0 ? a->ints[0] : 0;
  if (d->blank < 0 || d->blank >= d->C)
    return kl_failn("%s: mask_index %lld is not a class index in [0, %lld)", name, (long long)d->blank, (long long)d->C);
  for (int i = 2; i < n; i++)
    if (in[i]->nd != 1 || in[i]->dims[0] != d->B)
      return kl_failn("%s: %s must be (batch,) = (%lld,), got shape %s", name, i == 2 ? "label_length" : "logit_length",
                      (long long)d->B, KL_SHAPE(in[i]));
  for (int64_t b = 0; b < d->B; b++) {
    const float *row = lab + b * d->S;
    int64_t nl = 0;
    if (ll) {
      double v = ll[b];
      if (!(v >= 0 && v <= (double)d->S && v == floor(v)))
        return kl_failn("%s: label_length %g (sample %lld) is not in [0, %lld]", name, v, (long long)b + 1, (long long)d->S);
      nl = (int64_t)v;
    } else {
      for (int64_t s = 0; s < d->S; s++) nl += row[s] != (float)d->blank;
    }
    int64_t nt = d->T;
    if (tl) {
      double v = tl[b];
      if (!(v >= 0 && v <= (double)d->T && v == floor(v)))
        return kl_failn("%s: logit_length %g (sample %lld) is not in [0, %lld]", name, v, (long long)b + 1, (long long)d->T);
      nt = (int64_t)v;
    }
    for (int64_t s = 0; s < nl; s++) {
      double y = row[s];
      if (!(y >= 0 && y < (double)d->C && y == floor(y)))
        return kl_failn("%s: label %g (sample %lld, position %lld) is not a class index in [0, %lld)",
                        name, y, (long long)b + 1, (long long)s + 1, (long long)d->C);
    }
    lab_len[b] = nl;
    in_len[b] = nt;
  }
  return 0;
}

/* One sample: x (T,C) logits, lab its L labels, Tn steps used. ws holds
 * Tn*C + Tn*(2L+1) (+ Tn*(2L+1) + C with dx) doubles. Returns -log p; with
 * dx, writes g * d(-log p)/dx into the (T,C) rows. */
static double ctc_sample(const float *x, const float *lab, int64_t L, int64_t Tn, int64_t T, int64_t C, int64_t blank,
                         double *ws, double g, float *dx) {
  const int64_t N = 2 * L + 1;
  double *lp = ws, *alpha = lp + Tn * C;
#define CTC_CLASS(s) ((s) & 1 ? (int64_t)lab[(s) >> 1] : blank)
  /* a skip from s - 2 into the label state s: not across a repeated label */
#define CTC_SKIP(s) ((s) & 1 && (s) >= 3 && lab[(s) >> 1] != lab[((s) >> 1) - 1])
  for (int64_t t = 0; t < Tn; t++) {
    const float *r = x + t * C;
    double mx = -INFINITY, sum = 0;
    for (int64_t k = 0; k < C; k++) if (r[k] > mx) mx = r[k];
    for (int64_t k = 0; k < C; k++) sum += exp(r[k] - mx);
    double lse = mx + log(sum);
    for (int64_t k = 0; k < C; k++) lp[t * C + k] = r[k] - lse;
  }
  double logp;
  if (Tn == 0) logp = L == 0 ? 0 : -INFINITY;
  else {
    for (int64_t s = 0; s < N; s++) alpha[s] = -INFINITY;
    alpha[0] = lp[blank];
    if (L > 0) alpha[1] = lp[CTC_CLASS(1)];
    for (int64_t t = 1; t < Tn; t++) {
      const double *pa = alpha + (t - 1) * N;
      double *na = alpha + t * N;
      for (int64_t s = 0; s < N; s++) {
        double v = pa[s];
        if (s >= 1) v = lse2(v, pa[s - 1]);
        if (CTC_SKIP(s)) v = lse2(v, pa[s - 2]);
        na[s] = v == -INFINITY ? v : v + lp[t * C + CTC_CLASS(s)];
      }
    }
    const double *last = alpha + (Tn - 1) * N;
    logp = lse2(last[N - 1], L > 0 ? last[N - 2] : -INFINITY);
  }
  if (!dx) return -logp;
  memset(dx, 0, sizeof(float) * (size_t)(T * C));
  if (logp == -INFINITY || Tn == 0) return -logp;
  double *beta = alpha + Tn * N, *occ = beta + Tn * N;
  double *lb = beta + (Tn - 1) * N;
  for (int64_t s = 0; s < N; s++) lb[s] = -INFINITY;
  lb[N - 1] = lp[(Tn - 1) * C + blank];
  if (L > 0) lb[N - 2] = lp[(Tn - 1) * C + CTC_CLASS(N - 2)];
  for (int64_t t = Tn - 2; t >= 0; t--) {
    const double *nb = beta + (t + 1) * N;
    double *cb = beta + t * N;
    for (int64_t s = 0; s < N; s++) {
      double v = nb[s];
      if (s + 1 < N) v = lse2(v, nb[s + 1]);
      if (s + 2 < N && CTC_SKIP(s + 2)) v = lse2(v, nb[s + 2]);
      cb[s] = v == -INFINITY ? v : v + lp[t * C + CTC_CLASS(s)];
    }
  }
  for (int64_t t = 0; t < Tn; t++) {
    const double *a = alpha + t * N, *bt = beta + t * N, *l = lp + t * C;
    for (int64_t k = 0; k < C; k++) occ[k] = 0;
    for (int64_t s = 0; s < N; s++) {
      int64_t k = CTC_CLASS(s);
      if (a[s] != -INFINITY && bt[s] != -INFINITY) occ[k] += exp(a[s] + bt[s] - l[k] - logp);
    }
    for (int64_t k = 0; k < C; k++) dx[t * C + k] = (float)(g * (exp(l[k]) - occ[k]));
  }
#undef CTC_CLASS
#undef CTC_SKIP
  return -logp;
}

/* Runs every sample; out (B) and/or dx (B,T,C), g the upstream gradient (B). */
static int ctc_run(kl_tensor **in, int n, const kl_attrs *a, float *out, const float *g, float *dx) {
  if (n < 2 || n > 4)
    return kl_failn("ctc_loss: expected (labels, logits[, label_length[, logit_length]]), got %d inputs", n);
  kl_tensor *c[4] = {NULL, NULL, NULL, NULL};
  int64_t *len = NULL;
  double *ws = NULL;
  int rc = -1;
  for (int i = 0; i < n; i++) if (!(c[i] = kl_tensor_contiguous(in[i]))) goto done;
  ctc_dims d;
  int64_t B = in[1]->nd == 3 ? in[1]->dims[0] : 0;
  len = malloc(sizeof(int64_t) * (size_t)(3 * B + 1));
  if (!len) { kl_failn("ctc_loss: out of memory"); goto done; }
  int64_t *in_len = len + B, *off_ = in_len + B;
  if (ctc_check(c, n, a, c[0]->data, n > 2 ? c[2]->data : NULL, n > 3 ? c[3]->data : NULL, &d, len, in_len) < 0) goto done;
  int64_t total = 0;
  for (int64_t b = 0; b < d.B; b++) {
    off_[b] = total;
    int64_t N = 2 * len[b] + 1;
    total += in_len[b] * d.C + in_len[b] * N + (dx ? in_len[b] * N + d.C : 0);
  }
  ws = malloc(sizeof(double) * (size_t)(total + 1));
  if (!ws) { kl_failn("ctc_loss: out of memory for the forward-backward tables (%lld doubles)", (long long)total); goto done; }
  const float *lab = c[0]->data, *x = c[1]->data;
  KL_PAR_FOR_W(d.B, total, b, {
    double v = ctc_sample(x + b * d.T * d.C, lab + b * d.S, len[b], in_len[b], d.T, d.C, d.blank, ws + off_[b],
                          g ? g[b] : 0, dx ? dx + b * d.T * d.C : NULL);
    if (out) out[b] = (float)v;
  });
  rc = 0;
done:
  for (int i = 0; i < n; i++) kl_tensor_release(c[i]);
  free(len); free(ws);
  return rc;
}

kl_tensor *op_ctc_loss_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  if (n < 2) return kl_fail("ctc_loss: expected (labels, logits[, label_length[, logit_length]]), got %d inputs", n);
  kl_tensor *out = in[1]->nd == 3 ? kl_tensor_empty(1, in[1]->dims) : NULL;
  if (in[1]->nd == 3 && !out) return NULL;
  if (ctc_run(in, n, a, out ? out->data : NULL, NULL, NULL) < 0) { kl_tensor_release(out); return NULL; }
  return out;
}

int op_ctc_loss_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  if (!kl_need_grad(1)) return 0; /* labels and lengths have no gradient */
  kl_tensor *g = kl_tensor_contiguous(gout);
  kl_tensor *dx = g ? kl_tensor_empty(in[1]->nd, in[1]->dims) : NULL;
  if (!dx || ctc_run(in, n, a, NULL, g->data, dx->data) < 0) {
    kl_tensor_release(g); kl_tensor_release(dx);
    return -1;
  }
  kl_tensor_release(g);
  gin[1] = dx;
  return 0;
}
