/* optim.c — fused optimizer updates: one pass over a variable updates its
 * slots and the variable itself, in float32 like Keras, with the per-step
 * scalars (bias corrections, momentum caches) computed once in double.
 * The formulas follow keras/src/optimizers/<name>.py line by line; the order
 * of operations inside each loop mirrors Keras's so results agree to float
 * rounding. Nothing here allocates except a contiguous copy of a strided
 * gradient. */
#include "core.h"
#include "kernels/optim.h"
#include <math.h>
#include <stdlib.h>

/* ---- shared checks and the gradient transform --------------------------- */

static int check_slot(const char *op, const char *slot, const kl_tensor *var, const kl_tensor *t) {
  if (!t) return kl_failn("%s: the %s slot is missing", op, slot);
  if (!kl_tensor_same_shape(var, t))
    return kl_failn("%s: %s slot of shape %s does not match variable of shape %s", op, slot, KL_SHAPE(t), KL_SHAPE(var));
  if (!t->contiguous) return kl_failn("%s: the %s slot must be contiguous", op, slot);
  return 0;
}

/* Checks var and grad; returns a contiguous reference to grad (release it). */
static kl_tensor *begin(const char *op, kl_tensor *var, kl_tensor *grad, const kl_optim_step *s) {
  if (!var || !grad || !s) return kl_fail("%s: variable, gradient and step arguments are required", op);
  if (!kl_tensor_same_shape(var, grad))
    return kl_fail("%s: gradient of shape %s does not match variable of shape %s", op, KL_SHAPE(grad), KL_SHAPE(var));
  if (!var->contiguous) return kl_fail("%s: the variable of shape %s must be contiguous", op, KL_SHAPE(var));
  return kl_tensor_contiguous(grad);
}

/* g as the update sees it: scaled (clipnorm), clipped (clipvalue). Written
 * without branches so every update loop vectorizes: a scale of 1, a clip of
 * +inf and a decay of 0 leave finite values exactly as they were, and NaN
 * gradients pass the clip unchanged, as in Keras. */
typedef struct gprep { float scale, clip, decay; } gprep;

static gprep gprep_of(const kl_optim_step *s) {
  gprep p;
  p.scale = (float)s->grad_scale;
  p.clip = s->clipvalue > 0 ? (float)s->clipvalue : INFINITY;
  p.decay = (float)s->decay;
  return p;
}

static inline float gval(gprep p, float g) {
  g *= p.scale;
  return g < -p.clip ? -p.clip : (g > p.clip ? p.clip : g);
}

/* Keras: variable.assign(variable - variable * weight_decay * lr), before the step. */
static inline float decayed(gprep p, float w) { return w - w * p.decay; }


/* ---- SGD: keras/src/optimizers/sgd.py ------------------------------------ */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void sgd_block(float *w, float *mm, const float *gr, int64_t n, gprep p, float lr, float mu, int nesterov) {
  if (mm && nesterov) {
    for (int64_t i = 0; i < n; i++) {
      float g = gval(p, gr[i]), wi = decayed(p, w[i]);
      mm[i] = mm[i] * mu - g * lr;
      w[i] = wi + (mm[i] * mu - g * lr);
    }
  } else if (mm) {
    for (int64_t i = 0; i < n; i++) {
      float g = gval(p, gr[i]), wi = decayed(p, w[i]);
      mm[i] = mm[i] * mu - g * lr;
      w[i] = wi + mm[i];
    }
  } else {
    for (int64_t i = 0; i < n; i++) w[i] = decayed(p, w[i]) - gval(p, gr[i]) * lr;
  }
}

int kl_sgd_update(kl_tensor *var, kl_tensor *grad, kl_tensor *m, const kl_optim_step *s,
                  double momentum, int nesterov) {
  kl_tensor *gc = begin("SGD", var, grad, s);
  if (!gc) return -1;
  if (momentum != 0 && check_slot("SGD", "momentum", var, m) < 0) { kl_tensor_release(gc); return -1; }
  gprep p = gprep_of(s);
  int64_t n = var->count;
  float *w = var->data; const float *gr = gc->data;
  float lr = (float)s->lr, mu = (float)momentum;
  float *mm = momentum != 0 ? m->data : NULL;
  enum { B = 8192 };
  KL_PAR_FOR_W((n + B - 1) / B, n, blk,
    int64_t lo = blk * B, len = n - lo < B ? n - lo : B;
    sgd_block(w + lo, mm ? mm + lo : NULL, gr + lo, len, p, lr, mu, nesterov););
  kl_tensor_release(gc);
  return 0;
}

/* ---- Adam / AdamW: keras/src/optimizers/adam.py -------------------------- */
/* One block of the update, compiled for AVX-512 / AVX2 / baseline. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void adam_block(float *w, float *mm, float *vv, float *vh, const float *gr, int64_t n, gprep p,
                       float alpha, float c1, float c2, float eps) {
  if (vh) {
    for (int64_t i = 0; i < n; i++) {
      float g = gval(p, gr[i]), wi = decayed(p, w[i]);
      mm[i] += (g - mm[i]) * c1;
      vv[i] += (g * g - vv[i]) * c2;
      vh[i] = vh[i] > vv[i] ? vh[i] : vv[i];
      w[i] = wi - (mm[i] * alpha) / (sqrtf(vh[i]) + eps);
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      float g = gval(p, gr[i]), wi = decayed(p, w[i]);
      mm[i] += (g - mm[i]) * c1;
      vv[i] += (g * g - vv[i]) * c2;
      w[i] = wi - (mm[i] * alpha) / (sqrtf(vv[i]) + eps);
    }
  }
}

int kl_adam_update(kl_tensor *var, kl_tensor *grad, kl_tensor *m, kl_tensor *v, kl_tensor *vhat,
                   const kl_optim_step *s, double beta1, double beta2, double epsilon) {
  kl_tensor *gc = begin("Adam", var, grad, s);
  if (!gc) return -1;
  if (check_slot("Adam", "momentum", var, m) < 0 || check_slot("Adam", "velocity", var, v) < 0 ||
      (vhat && check_slot("Adam", "velocity_hat", var, vhat) < 0)) { kl_tensor_release(gc); return -1; }
  gprep p = gprep_of(s);
  double t = (double)s->step;
  /* the bias correction is folded into the learning rate, as Keras does */
  float alpha = (float)(s->lr * sqrt(1 - pow(beta2, t)) / (1 - pow(beta1, t)));
  float c1 = (float)(1 - beta1), c2 = (float)(1 - beta2), eps = (float)epsilon;
  int64_t n = var->count;
  float *w = var->data, *mm = m->data, *vv = v->data, *vh = vhat ? vhat->data : NULL;
  const float *gr = gc->data;
  enum { B = 8192 };
  KL_PAR_FOR_W((n + B - 1) / B, n, blk,
    int64_t lo = blk * B, len = n - lo < B ? n - lo : B;
    adam_block(w + lo, mm + lo, vv + lo, vh ? vh + lo : NULL, gr + lo, len, p, alpha, c1, c2, eps););
  kl_tensor_release(gc);
  return 0;
}

/* ---- RMSprop: keras/src/optimizers/rmsprop.py ---------------------------- */
int kl_rmsprop_update(kl_tensor *var, kl_tensor *grad, kl_tensor *velocity, kl_tensor *mom, kl_tensor *mg,
                      const kl_optim_step *s, double rho, double momentum, double epsilon) {
  kl_tensor *gc = begin("RMSprop", var, grad, s);
  if (!gc) return -1;
  if (check_slot("RMSprop", "velocity", var, velocity) < 0 ||
      (momentum > 0 && check_slot("RMSprop", "momentum", var, mom) < 0) ||
      (mg && check_slot("RMSprop", "average_gradient", var, mg) < 0)) { kl_tensor_release(gc); return -1; }
  gprep p = gprep_of(s);
  float r = (float)rho, r1 = (float)(1 - rho), lr = (float)s->lr, mu = (float)momentum, eps = (float)epsilon;
  int64_t n = var->count;
  float *w = var->data, *vv = velocity->data, *mo = momentum > 0 ? mom->data : NULL, *ag = mg ? mg->data : NULL;
  const float *gr = gc->data;
  /* one loop per variant, so each is branch-free and vectorizes */
#define RMSPROP_LOOP(CENTERED, MOMENTUM)                                 \
  KL_PAR_FOR(n, i,                                                     \
    float g = gval(p, gr[i]), wi = decayed(p, w[i]);                    \
    vv[i] = r * vv[i] + r1 * (g * g);                                   \
    float denom;                                                         \
    if (CENTERED) { ag[i] = r * ag[i] + r1 * g; denom = vv[i] - ag[i] * ag[i] + eps; } \
    else denom = vv[i] + eps;                                            \
    float inc = (lr * g) / sqrtf(denom);                                 \
    if (MOMENTUM) { mo[i] = mu * mo[i] + inc; w[i] = wi - mo[i]; }       \
    else w[i] = wi - inc;)
  if (ag && mo) RMSPROP_LOOP(1, 1);
  else if (ag) RMSPROP_LOOP(1, 0);
  else if (mo) RMSPROP_LOOP(0, 1);
  else RMSPROP_LOOP(0, 0);
#undef RMSPROP_LOOP
  kl_tensor_release(gc);
  return 0;
}

/* ---- Adagrad: keras/src/optimizers/adagrad.py ---------------------------- */
int kl_adagrad_update(kl_tensor *var, kl_tensor *grad, kl_tensor *acc, const kl_optim_step *s, double epsilon) {
  kl_tensor *gc = begin("Adagrad", var, grad, s);
  if (!gc) return -1;
  if (check_slot("Adagrad", "accumulator", var, acc) < 0) { kl_tensor_release(gc); return -1; }
  gprep p = gprep_of(s);
  float lr = (float)s->lr, eps = (float)epsilon;
  int64_t n = var->count;
  float *w = var->data, *a = acc->data;
  const float *gr = gc->data;
  KL_PAR_FOR(n, i, float g = gval(p, gr[i]), wi = decayed(p, w[i]);
    a[i] += g * g;
    w[i] = wi - (lr * g) / sqrtf(a[i] + eps););
  kl_tensor_release(gc);
  return 0;
}

/* ---- Adadelta: keras/src/optimizers/adadelta.py -------------------------- */
int kl_adadelta_update(kl_tensor *var, kl_tensor *grad, kl_tensor *acc_grad, kl_tensor *acc_delta,
                       const kl_optim_step *s, double rho, double epsilon) {
  kl_tensor *gc = begin("Adadelta", var, grad, s);
  if (!gc) return -1;
  if (check_slot("Adadelta", "accumulated_grad", var, acc_grad) < 0 ||
      check_slot("Adadelta", "accumulated_delta_var", var, acc_delta) < 0) { kl_tensor_release(gc); return -1; }
  gprep p = gprep_of(s);
  float r = (float)rho, r1 = (float)(1 - rho), lr = (float)s->lr, eps = (float)epsilon;
  int64_t n = var->count;
  float *w = var->data, *ag = acc_grad->data, *ad = acc_delta->data;
  const float *gr = gc->data;
  KL_PAR_FOR(n, i, float g = gval(p, gr[i]), wi = decayed(p, w[i]);
    ag[i] = r * ag[i] + r1 * (g * g);
    float delta = -((sqrtf(ad[i] + eps) * g) / sqrtf(ag[i] + eps));
    ad[i] = r * ad[i] + r1 * (delta * delta);
    w[i] = wi + lr * delta;);
  kl_tensor_release(gc);
  return 0;
}

/* ---- Adamax: keras/src/optimizers/adamax.py ------------------------------ */
int kl_adamax_update(kl_tensor *var, kl_tensor *grad, kl_tensor *m, kl_tensor *u, const kl_optim_step *s,
                     double beta1, double beta2, double epsilon) {
  kl_tensor *gc = begin("Adamax", var, grad, s);
  if (!gc) return -1;
  if (check_slot("Adamax", "momentum", var, m) < 0 || check_slot("Adamax", "norm", var, u) < 0) {
    kl_tensor_release(gc); return -1;
  }
  gprep p = gprep_of(s);
  float lr = (float)s->lr, c1 = (float)(1 - beta1), b2 = (float)beta2, eps = (float)epsilon;
  float bc = (float)(1 - pow(beta1, (double)s->step));
  int64_t n = var->count;
  float *w = var->data, *mm = m->data, *uu = u->data;
  const float *gr = gc->data;
  KL_PAR_FOR(n, i, float g = gval(p, gr[i]), wi = decayed(p, w[i]);
    mm[i] += (g - mm[i]) * c1;
    float bu = b2 * uu[i], ag = fabsf(g);
    uu[i] = bu > ag ? bu : ag;
    w[i] = wi - (lr * mm[i]) / (bc * (uu[i] + eps)););
  kl_tensor_release(gc);
  return 0;
}

/* ---- Nadam: keras/src/optimizers/nadam.py -------------------------------- */
int kl_nadam_update(kl_tensor *var, kl_tensor *grad, kl_tensor *m, kl_tensor *v, const kl_optim_step *s,
                    double beta1, double beta2, double epsilon, double u_product) {
  kl_tensor *gc = begin("Nadam", var, grad, s);
  if (!gc) return -1;
  if (check_slot("Nadam", "momentum", var, m) < 0 || check_slot("Nadam", "velocity", var, v) < 0) {
    kl_tensor_release(gc); return -1;
  }
  gprep p = gprep_of(s);
  double t = (double)s->step;
  double u_t = beta1 * (1.0 - 0.5 * pow(0.96, t));
  double u_t1 = beta1 * (1.0 - 0.5 * pow(0.96, t + 1));
  double up_t1 = u_product * u_t1;
  float cm = (float)(u_t1 / (1 - up_t1)), cg = (float)((1 - u_t) / (1 - u_product));
  float bc2 = (float)(1 - pow(beta2, t));
  float c1 = (float)(1 - beta1), c2 = (float)(1 - beta2), lr = (float)s->lr, eps = (float)epsilon;
  int64_t n = var->count;
  float *w = var->data, *mm = m->data, *vv = v->data;
  const float *gr = gc->data;
  KL_PAR_FOR(n, i, float g = gval(p, gr[i]), wi = decayed(p, w[i]);
    mm[i] += (g - mm[i]) * c1;
    vv[i] += (g * g - vv[i]) * c2;
    float m_hat = cm * mm[i] + cg * g;
    float v_hat = vv[i] / bc2;
    w[i] = wi - (m_hat * lr) / (sqrtf(v_hat) + eps););
  kl_tensor_release(gc);
  return 0;
}

/* ---- Lion: keras/src/optimizers/lion.py ---------------------------------- */
int kl_lion_update(kl_tensor *var, kl_tensor *grad, kl_tensor *m, const kl_optim_step *s,
                   double beta1, double beta2) {
  kl_tensor *gc = begin("Lion", var, grad, s);
  if (!gc) return -1;
  if (check_slot("Lion", "momentum", var, m) < 0) { kl_tensor_release(gc); return -1; }
  gprep p = gprep_of(s);
  float lr = (float)s->lr, b1 = (float)beta1, b1c = (float)(1 - beta1), b2 = (float)beta2, b2c = (float)(1 - beta2);
  int64_t n = var->count;
  float *w = var->data, *mm = m->data;
  const float *gr = gc->data;
  KL_PAR_FOR(n, i, float g = gval(p, gr[i]), wi = decayed(p, w[i]);
    float c = mm[i] * b1 + g * b1c;
    float sg = (float)((c > 0) - (c < 0));
    w[i] = wi - lr * sg;
    mm[i] = mm[i] * b2 + g * b2c;);
  kl_tensor_release(gc);
  return 0;
}

/* ---- whole-tensor sums in a fixed order ---------------------------------- */

/* Partial sums over fixed chunks, added in chunk order: a result never
 * depends on how many threads ran. */
enum { CHUNK = 8192, STACK_CHUNKS = 256 };
typedef struct partials { double stack[STACK_CHUNKS]; double *part; int64_t nch; } partials;

static int partials_init(partials *ps, int64_t n, const char *op) {
  ps->nch = (n + CHUNK - 1) / CHUNK;
  ps->part = ps->nch <= STACK_CHUNKS ? ps->stack : malloc(sizeof(double) * (size_t)ps->nch);
  if (!ps->part) return kl_failn("%s: out of memory", op);
  return 0;
}

static double partials_total(partials *ps) {
  double total = 0;
  for (int64_t k = 0; k < ps->nch; k++) total += ps->part[k];
  if (ps->part != ps->stack) free(ps->part);
  return total;
}

/* Sum of squares of x[0..n), after w = decayed(w) when decay is on. */
static int sumsq_decayed(const char *op, float *w, int64_t n, gprep p, double *out) {
  partials ps;
  if (partials_init(&ps, n, op) < 0) return -1;
  double *part = ps.part;
  KL_PAR_FOR_W(ps.nch, n, k, int64_t lo = k * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
    double acc = 0;
    for (int64_t i = lo; i < hi; i++) { w[i] = decayed(p, w[i]); acc += (double)w[i] * w[i]; }
    part[k] = acc;);
  *out = partials_total(&ps);
  return 0;
}

/* ---- FTRL: keras/src/optimizers/ftrl.py ---------------------------------- */
int kl_ftrl_update(kl_tensor *var, kl_tensor *grad, kl_tensor *accum, kl_tensor *linear, const kl_optim_step *s,
                   double lr_power, double l1, double l2, double l2_shrinkage, double beta) {
  kl_tensor *gc = begin("Ftrl", var, grad, s);
  if (!gc) return -1;
  if (check_slot("Ftrl", "accumulator", var, accum) < 0 || check_slot("Ftrl", "linear", var, linear) < 0) {
    kl_tensor_release(gc); return -1;
  }
  gprep p = gprep_of(s);
  float lr = (float)s->lr, pw = (float)-lr_power, l1f = (float)l1, shrink2 = (float)(2 * l2_shrinkage);
  float l2x2 = (float)(2 * (l2 + beta / (2.0 * s->lr)));
  int sq = pw == 0.5f;   /* the default power: sqrtf, exact and fast */
  int64_t n = var->count;
  float *w = var->data, *a = accum->data, *lin = linear->data;
  const float *gr = gc->data;
  KL_PAR_FOR(n, i, float g = gval(p, gr[i]), wi = decayed(p, w[i]);
    float gs = g + shrink2 * wi;
    float na = a[i] + g * g;
    float pn = sq ? sqrtf(na) : powf(na, pw), po = sq ? sqrtf(a[i]) : powf(a[i], pw);
    lin[i] += gs - ((pn - po) / lr) * wi;
    float quadratic = pn / lr + l2x2;
    float lc = lin[i] < -l1f ? -l1f : (lin[i] > l1f ? l1f : lin[i]);
    w[i] = (lc - lin[i]) / quadratic;
    a[i] = na;);
  kl_tensor_release(gc);
  return 0;
}

/* ---- Lamb: keras/src/optimizers/lamb.py ---------------------------------- */
int kl_lamb_update(kl_tensor *var, kl_tensor *grad, kl_tensor *m, kl_tensor *v, const kl_optim_step *s,
                   double beta1, double beta2, double epsilon) {
  kl_tensor *gc = begin("Lamb", var, grad, s);
  if (!gc) return -1;
  if (check_slot("Lamb", "momentum", var, m) < 0 || check_slot("Lamb", "velocity", var, v) < 0) {
    kl_tensor_release(gc); return -1;
  }
  gprep p = gprep_of(s);
  double t = (double)s->step;
  float bc1 = (float)(1 - pow(beta1, t)), bc2 = (float)(1 - pow(beta2, t));
  float c1 = (float)(1 - beta1), c2 = (float)(1 - beta2), eps = (float)epsilon;
  int64_t n = var->count;
  float *w = var->data, *mm = m->data, *vv = v->data;
  const float *gr = gc->data;
  double wsq, usq;
  partials ps;
  if (sumsq_decayed("Lamb", w, n, p, &wsq) < 0 || partials_init(&ps, n, "Lamb") < 0) {
    kl_tensor_release(gc); return -1;
  }
  double *part = ps.part;
  KL_PAR_FOR_W(ps.nch, n, k, int64_t lo = k * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
    double acc = 0;
    for (int64_t i = lo; i < hi; i++) {
      float g = gval(p, gr[i]);
      mm[i] += (g - mm[i]) * c1;
      vv[i] += (g * g - vv[i]) * c2;
      float u = (mm[i] / bc1) / (sqrtf(vv[i] / bc2) + eps);
      acc += (double)u * u;
    }
    part[k] = acc;);
  usq = partials_total(&ps);
  double w_norm = sqrt(wsq), u_norm = sqrt(usq);
  /* Keras: ratio = w_norm / g_norm when both are > 0, else 1 */
  float ratio = (w_norm > 0 && u_norm > 0) ? (float)w_norm / (float)u_norm : 1.0f;
  float step = ratio * (float)s->lr;
  KL_PAR_FOR(n, i, float u = (mm[i] / bc1) / (sqrtf(vv[i] / bc2) + eps);
    w[i] -= step * u;);
  kl_tensor_release(gc);
  return 0;
}

/* ---- Adafactor: keras/src/optimizers/adafactor.py ------------------------ */
/* Rank >= 2 is seen as B matrices of R x K (the last two axes): r is (B, R),
 * c is (B, K), and v = (r / mean(r)) outer c, per matrix. */
int kl_adafactor_update(kl_tensor *var, kl_tensor *grad, kl_tensor *r, kl_tensor *c, kl_tensor *v,
                        const kl_optim_step *s, double beta_2_decay, double epsilon_1, double epsilon_2,
                        double clip_threshold) {
  kl_tensor *gc = begin("Adafactor", var, grad, s);
  if (!gc) return -1;
  if (check_slot("Adafactor", "velocity", var, v) < 0) { kl_tensor_release(gc); return -1; }
  int64_t n = var->count, R = 1, K = 1, B = 1;
  int factored = var->nd >= 2;
  if (factored) {
    R = var->dims[var->nd - 2]; K = var->dims[var->nd - 1]; B = R * K > 0 ? n / (R * K) : 0;
    if (!r || !c || r->count != B * R || c->count != B * K || !r->contiguous || !c->contiguous) {
      kl_tensor_release(gc);
      return kl_failn("Adafactor: the factored slots r and c of a variable of shape %s must hold %lld and %lld values",
                      KL_SHAPE(var), (long long)(B * R), (long long)(B * K));
    }
  }
  gprep p = gprep_of(s);
  double t = (double)s->step;
  float *w = var->data, *vv = v->data;
  const float *gr = gc->data;
  float e1 = (float)epsilon_1;
  double wsq;
  if (n == 0) { kl_tensor_release(gc); return 0; }
  if (sumsq_decayed("Adafactor", w, n, p, &wsq) < 0) { kl_tensor_release(gc); return -1; }
  double rho = fmin(s->lr, 1 / sqrt(t));
  float alpha = (float)(fmax(epsilon_2, sqrt(wsq / (double)n)) * rho);
  float beta = (float)(1 - pow(t, beta_2_decay)), beta1 = 1 - beta;
  if (factored) {
    float *rr = r->data, *cc = c->data;
    KL_PAR_FOR_W(B, n, b,
      const float *gb = gr + b * R * K;
      for (int64_t i = 0; i < R; i++) {        /* r: mean over the last axis */
        double acc = 0;
        for (int64_t j = 0; j < K; j++) { float g = gval(p, gb[i * K + j]); acc += g * g + e1; }
        rr[b * R + i] = beta * rr[b * R + i] + beta1 * (float)(acc / (double)K);
      }
      for (int64_t j = 0; j < K; j++) {        /* c: mean over the second-to-last axis */
        double acc = 0;
        for (int64_t i = 0; i < R; i++) { float g = gval(p, gb[i * K + j]); acc += g * g + e1; }
        cc[b * K + j] = beta * cc[b * K + j] + beta1 * (float)(acc / (double)R);
      }
      double rsum = 0;
      for (int64_t i = 0; i < R; i++) rsum += rr[b * R + i];
      float rmean = (float)(rsum / (double)R);
      for (int64_t i = 0; i < R; i++) {
        float ri = rr[b * R + i] / rmean;
        for (int64_t j = 0; j < K; j++) vv[b * R * K + i * K + j] = ri * cc[b * K + j];
      });
  } else {
    KL_PAR_FOR(n, i, float g = gval(p, gr[i]); vv[i] = beta * vv[i] + beta1 * (g * g + e1););
  }
  /* u = g / sqrt(v), scaled down when its RMS exceeds clip_threshold */
  partials ps;
  if (partials_init(&ps, n, "Adafactor") < 0) { kl_tensor_release(gc); return -1; }
  double *part = ps.part;
  KL_PAR_FOR_W(ps.nch, n, k, int64_t lo = k * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
    double acc = 0;
    for (int64_t i = lo; i < hi; i++) { float u = gval(p, gr[i]) / sqrtf(vv[i]); acc += (double)u * u; }
    part[k] = acc;);
  double u_rms = sqrt(partials_total(&ps) / (double)n);
  float denom = (float)fmax(1.0, u_rms / clip_threshold);
  KL_PAR_FOR(n, i, float u = gval(p, gr[i]) / sqrtf(vv[i]);
    w[i] -= alpha * (u / denom););
  kl_tensor_release(gc);
  return 0;
}

/* ---- Muon: keras/src/optimizers/muon.py (the elementwise half) ----------- */
int kl_muon_momentum(kl_tensor *var, kl_tensor *grad, kl_tensor *m, kl_tensor *out, const kl_optim_step *s,
                     double momentum, int nesterov) {
  kl_tensor *gc = begin("Muon", var, grad, s);
  if (!gc) return -1;
  if (check_slot("Muon", "momentum", var, m) < 0 || check_slot("Muon", "output", var, out) < 0) {
    kl_tensor_release(gc); return -1;
  }
  gprep p = gprep_of(s);
  float mu = (float)momentum, mu1 = (float)(momentum - 1);
  int64_t n = var->count;
  float *w = var->data, *mm = m->data, *o = out->data;
  const float *gr = gc->data;
  if (nesterov) {
    KL_PAR_FOR(n, i, float g = gval(p, gr[i]); w[i] = decayed(p, w[i]);
      mm[i] += g + mm[i] * mu1;
      o[i] = g + mu * mm[i];);
  } else {
    KL_PAR_FOR(n, i, float g = gval(p, gr[i]); w[i] = decayed(p, w[i]);
      mm[i] += g + mm[i] * mu1;
      o[i] = mm[i];);
  }
  kl_tensor_release(gc);
  return 0;
}

/* ---- EMA of the weights and gradient accumulation (base_optimizer.py) ---- */
int kl_optim_ema(kl_tensor *avg, kl_tensor *var, double momentum) {
  if (!avg || !var) return kl_failn("use_ema: the variable and its average are required");
  if (check_slot("use_ema", "average", var, avg) < 0) return -1;
  if (!var->contiguous) return kl_failn("use_ema: the variable of shape %s must be contiguous", KL_SHAPE(var));
  float mo = (float)momentum, m1 = 1.0f - mo;
  int64_t n = var->count;
  float *a = avg->data;
  const float *w = var->data;
  KL_PAR_FOR(n, i, a[i] = mo * a[i] + m1 * w[i];);
  return 0;
}

int kl_optim_accumulate(kl_tensor *acc, kl_tensor *grad, double grad_scale, double divisor) {
  if (!acc || !grad) return kl_failn("gradient_accumulation_steps: the accumulator and the gradient are required");
  if (!kl_tensor_same_shape(acc, grad))
    return kl_failn("gradient_accumulation_steps: gradient of shape %s does not match accumulator of shape %s",
                    KL_SHAPE(grad), KL_SHAPE(acc));
  if (!acc->contiguous) return kl_failn("gradient_accumulation_steps: the accumulator must be contiguous");
  kl_tensor *gc = kl_tensor_contiguous(grad);
  if (!gc) return -1;
  float sc = (float)grad_scale, d = (float)divisor;
  int64_t n = acc->count;
  float *a = acc->data;
  const float *g = gc->data;
  KL_PAR_FOR(n, i, a[i] = (g[i] * sc + a[i]) / d;);
  kl_tensor_release(gc);
  return 0;
}

/* ---- norms for clipping -------------------------------------------------- */

double kl_optim_sumsq(kl_tensor *t) {
  if (!t) return NAN;
  kl_tensor *c = kl_tensor_contiguous(t);
  if (!c) return NAN;
  const float *x = c->data;
  int64_t n = c->count;
  partials ps;
  if (partials_init(&ps, n, "clip") < 0) { kl_tensor_release(c); return NAN; }
  double *part = ps.part;
  KL_PAR_FOR_W(ps.nch, n, k, int64_t lo = k * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
    double acc = 0;
    for (int64_t i = lo; i < hi; i++) acc += (double)x[i] * x[i];
    part[k] = acc;);
  double total = partials_total(&ps);
  kl_tensor_release(c);
  return total;
}

double kl_global_norm(int n, kl_tensor **ts) {
  double total = 0;
  for (int i = 0; i < n; i++)
    if (ts[i]) total += kl_optim_sumsq(ts[i]);
  return sqrt(total);
}
