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

/* ---- norms for clipping -------------------------------------------------- */

/* Partial sums over fixed chunks, added in chunk order: the result does not
 * depend on how many threads ran. */
double kl_optim_sumsq(kl_tensor *t) {
  if (!t) return NAN;
  kl_tensor *c = kl_tensor_contiguous(t);
  if (!c) return NAN;
  enum { CHUNK = 8192, STACK_CHUNKS = 256 };
  const float *x = c->data;
  int64_t n = c->count, nch = (n + CHUNK - 1) / CHUNK;
  double stack_part[STACK_CHUNKS], *part = nch <= STACK_CHUNKS ? stack_part : malloc(sizeof(double) * nch);
  double total = 0;
  if (!part) { kl_tensor_release(c); kl_fail("clip: out of memory"); return NAN; }
  KL_PAR_FOR(nch, k, int64_t lo = k * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
    double acc = 0;
    for (int64_t i = lo; i < hi; i++) acc += (double)x[i] * x[i];
    part[k] = acc;);
  for (int64_t k = 0; k < nch; k++) total += part[k];
  if (part != stack_part) free(part);
  kl_tensor_release(c);
  return total;
}

double kl_global_norm(int n, kl_tensor **ts) {
  double total = 0;
  for (int i = 0; i < n; i++)
    if (ts[i]) total += kl_optim_sumsq(ts[i]);
  return sqrt(total);
}
