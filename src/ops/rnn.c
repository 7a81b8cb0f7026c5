/* rnn.c — fused recurrent sequence kernels in Keras's weight layouts: lstm,
 * gru (both of Keras's forms: reset_after true and false) and simple_rnn.
 * Each op runs the whole sequence in C: one sgemm projects the inputs of every
 * timestep, then each step does one recurrent sgemm (two for gru with
 * reset_after=false) and the fused gate math; the backward runs the whole
 * backpropagation through time and finishes with one sgemm per weight.
 * Nothing is allocated per timestep (one scratch buffer per call, reused).
 *
 * An op returns one tensor, so the state the backward needs is packed into it.
 * Rows are in processing order: step s reads input timestep t = s, or T-1-s
 * with go_backwards (Keras returns that reversed sequence).
 *   lstm        (x, kernel (D,4U), recurrent (U,4U), bias (4U), h0 (N,U), c0 (N,U)[, mask (N,T)])
 *               -> (N,T,6U): [h | c | i f g o] per step; gates in Keras order i,f,c,o
 *   gru         (x, kernel (D,3U), recurrent (U,3U), bias (2,3U), h0 (N,U)[, mask])
 *               -> (N,T,5U): [h | z | r | hh | h_prev·R_h + b_rh]; gates z,r,h
 *               with ints[3] = 0 (reset_after=false): bias (3U), and the last
 *               column block holds r * h_prev, the input of the candidate's product
 *   simple_rnn  (x, kernel (D,U), recurrent (U,U), bias (U), h0 (N,U)[, mask]) -> (N,T,U): h
 * The user-facing slices are out[:, :, 0:U] (the h sequence; the last row is
 * the final h) and, for lstm, out[:, T-1, U:2U] (the final c). Gradients flow
 * from the h and c columns only; the cached gate columns are not differentiable.
 * Where mask[n,t] == 0 the state is carried over unchanged (Keras semantics).
 * ints: [0] go_backwards, [1] activation, [2] recurrent activation (codes below),
 * [3] gru only: reset_after (1 when absent). */
#include "core.h"
#include "scratch.h"
#include <cblas.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { ACT_TANH = 0, ACT_SIGMOID = 1, ACT_RELU = 2, ACT_LINEAR = 3, ACT_HARD_SIGMOID = 4, ACT_COUNT };

/* no-trapping-math (here only) lets the clamps below become vector blends. */
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")

/* exp(x) for the gate nonlinearities: Cody-Waite range reduction and Cephes's
 * degree-6 polynomial (about 2 ulp), written without calls so that loops over
 * it vectorise; libm's expf does not. x is clamped to [-87, 88]. */
static inline float gate_exp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  /* round(x / ln 2) by the 1.5 * 2^23 trick: branch-free, so it vectorises */
  float fk = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - fk * 0.693359375f + fk * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int bits = ((int)fk + 127) << 23;      /* 2^k */
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/* v = act(v), in place; tanh(x) = 1 - 2 / (exp(2x) + 1). AVX2 where the CPU
 * has it (runtime dispatch). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void act_apply(int code, float *v, int64_t n) {
  switch (code) {
  case ACT_TANH:    for (int64_t i = 0; i < n; i++) v[i] = 1.0f - 2.0f / (gate_exp(2.0f * v[i]) + 1.0f); break;
  case ACT_SIGMOID: for (int64_t i = 0; i < n; i++) v[i] = 1.0f / (1.0f + gate_exp(-v[i])); break;
  case ACT_RELU:    for (int64_t i = 0; i < n; i++) v[i] = v[i] > 0 ? v[i] : 0; break;
  case ACT_HARD_SIGMOID:   /* Keras 3: relu6(x + 3) / 6 */
    for (int64_t i = 0; i < n; i++) { float y = v[i] / 6.0f + 0.5f; v[i] = y < 0 ? 0 : y > 1 ? 1 : y; }
    break;
  default: break;   /* linear */
  }
}

#pragma GCC pop_options

/* d *= act'(x) expressed through y = act(x). */
static void act_grad_mul(int code, const float *y, float *d, int64_t n) {
  switch (code) {
  case ACT_TANH:    for (int64_t i = 0; i < n; i++) d[i] *= 1.0f - y[i] * y[i]; break;
  case ACT_SIGMOID: for (int64_t i = 0; i < n; i++) d[i] *= y[i] * (1.0f - y[i]); break;
  case ACT_RELU:    for (int64_t i = 0; i < n; i++) d[i] = y[i] > 0 ? d[i] : 0; break;
  case ACT_HARD_SIGMOID: for (int64_t i = 0; i < n; i++) d[i] = (y[i] > 0 && y[i] < 1) ? d[i] / 6.0f : 0; break;
  default: break;
  }
}

/* ---- threading ---------------------------------------------------------------
 * The rows of a batch are independent sequences, so each thread runs the whole
 * time loop over its own rows: no barrier per timestep. Inside, OpenBLAS runs
 * single-threaded (its own threads would fight ours, and a per-step sgemm is
 * too small to split anyway). */
typedef void (*rows_fn)(void *ctx, int64_t b0, int64_t b1);

/* work: multiply-adds of the whole recurrence; step: of one step's sgemm. */
static void run_rows(int64_t n, int64_t work, int64_t step, rows_fn fn, void *ctx) {
  int nth = 1;
#ifdef _OPENMP
  if (work >= (1 << 20)) {
    nth = omp_get_max_threads();
    if (nth > n / 8) nth = (int)(n / 8);   /* at least 8 rows each */
    if (nth < 1) nth = 1;
  }
#endif
  int blas = openblas_get_num_threads();
  int single = blas > 1 && (nth > 1 || step < (1 << 22));
  if (single) openblas_set_num_threads(1);
  if (nth > 1) {
    #pragma omp parallel num_threads(nth)
    {
#ifdef _OPENMP
      int id = omp_get_thread_num(), k = omp_get_num_threads();
      fn(ctx, n * id / k, n * (id + 1) / k);
#endif
    }
  } else {
    fn(ctx, 0, n);
  }
  if (single) openblas_set_num_threads(blas);
}

/* ---- shared setup ---------------------------------------------------------- */

typedef struct {
  const char *op;
  int64_t n, t, d, u, g;          /* batch, time, input dim, units, gate width (4U, 3U, U) */
  int rev, act, ract, reset_after;
  kl_tensor *x, *w, *r, *b, *h0, *c0, *mask;   /* contiguous references */
} rnn_args;

static void rnn_release(rnn_args *a) {
  kl_release_all(7, (kl_tensor *[]){a->x, a->w, a->r, a->b, a->h0, a->c0, a->mask});
}

static int want_shape(const char *op, const char *what, kl_tensor *t, int nd, int64_t d0, int64_t d1) {
  if (t->nd != nd || t->dims[0] != d0 || (nd > 1 && t->dims[1] != d1)) {
    char want[64];
    if (nd == 1) snprintf(want, sizeof want, "(%lld)", (long long)d0);
    else snprintf(want, sizeof want, "(%lld,%lld)", (long long)d0, (long long)d1);
    return kl_failn("%s: expected %s %s, got %s", op, what, want, KL_SHAPE(t));
  }
  return 0;
}

/* Validates (x, kernel, recurrent, bias, h0[, c0][, mask]); gates = G/U. */
static int rnn_setup(const char *op, kl_tensor **in, int n, const kl_attrs *at, int gates, int has_c, rnn_args *a) {
  memset(a, 0, sizeof *a);
  a->op = op;
  int base = has_c ? 6 : 5;
  if (n != base && n != base + 1)
    return kl_failn("%s: expected %d or %d inputs (x, kernel, recurrent_kernel, bias, h0%s[, mask]), got %d",
                    op, base, base + 1, has_c ? ", c0" : "", n);
  kl_tensor *x = in[0], *w = in[1], *r = in[2], *b = in[3];
  if (x->nd != 3) return kl_failn("%s: expected input (batch, timesteps, features), got %s", op, KL_SHAPE(x));
  a->n = x->dims[0]; a->t = x->dims[1]; a->d = x->dims[2];
  if (r->nd != 2 || r->dims[1] != gates * r->dims[0])
    return kl_failn("%s: expected recurrent_kernel (units,%d*units), got %s", op, gates, KL_SHAPE(r));
  a->u = r->dims[0]; a->g = gates * a->u;
  if (a->t < 1) return kl_failn("%s: expected at least one timestep, got input %s", op, KL_SHAPE(x));
  if (want_shape(op, "kernel", w, 2, a->d, a->g) < 0) return -1;
  a->reset_after = gates == 3 && !(at && at->nints > 3 && at->ints[3] == 0);
  if (a->reset_after) { if (want_shape(op, "bias", b, 2, 2, a->g) < 0) return -1; }
  else if (want_shape(op, "bias", b, 1, a->g, 0) < 0) return -1;
  if (want_shape(op, "initial state", in[4], 2, a->n, a->u) < 0) return -1;
  if (has_c && want_shape(op, "initial carry state", in[5], 2, a->n, a->u) < 0) return -1;
  kl_tensor *mask = n == base + 1 ? in[base] : NULL;
  if (mask && want_shape(op, "mask", mask, 2, a->n, a->t) < 0) return -1;
  a->rev = at && at->nints > 0 ? (int)at->ints[0] != 0 : 0;
  a->act = at && at->nints > 1 ? (int)at->ints[1] : ACT_TANH;
  a->ract = at && at->nints > 2 ? (int)at->ints[2] : ACT_SIGMOID;
  if (a->act < 0 || a->act >= ACT_COUNT || a->ract < 0 || a->ract >= ACT_COUNT)
    return kl_failn("%s: unknown activation code %d / %d", op, a->act, a->ract);
  kl_tensor **dst[7] = {&a->x, &a->w, &a->r, &a->b, &a->h0, &a->c0, &a->mask};
  kl_tensor *src[7] = {x, w, r, b, in[4], has_c ? in[5] : NULL, mask};
  for (int i = 0; i < 7; i++)
    if (src[i] && !(*dst[i] = kl_tensor_contiguous(src[i]))) { rnn_release(a); return -1; }
  return 0;
}

static inline int64_t step_time(const rnn_args *a, int64_t s) { return a->rev ? a->t - 1 - s : s; }
static inline int valid(const rnn_args *a, int64_t n, int64_t t) { return !a->mask || a->mask->data[n * a->t + t] > 0.5f; }

/* xw (N*T, G) = x (N*T, D) @ kernel (D, G). */
static void project_inputs(const rnn_args *a, float *xw) {
  kl_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(a->n * a->t), (int)a->g, (int)a->d,
              1.0f, a->x->data, (int)a->d, a->w->data, (int)a->g, 0.0f, xw, (int)a->g);
}

/* State before step s for row n: the packed output of step s-1, or the initial state. */
static inline const float *prev_slot(const rnn_args *a, const float *out, int64_t width, int64_t s, int64_t n,
                                     int64_t off, const float *init) {
  return s == 0 ? init + n * a->u : out + (n * a->t + s - 1) * width + off;
}

/* The weight gradients shared by every cell, from the per-timestep gate
 * gradients dz (N*T, G), in input-time order:
 *   dx = dz @ kernel^T, dkernel = x^T @ dz, drec = hprev^T @ dzh, dbias = sum(dz). */
static int finish_grads(const rnn_args *a, const float *dz, const float *dzh, const float *hp,
                        kl_tensor **dx, kl_tensor **dw, kl_tensor **dr) {
  const int NT = (int)(a->n * a->t), D = (int)a->d, G = (int)a->g, U = (int)a->u;
  if (kl_need_grad(0)) {   /* the first layer's input needs no gradient: skip the largest sgemm */
    if (!(*dx = kl_tensor_empty(3, a->x->dims))) return -1;
    kl_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, NT, D, G, 1.0f, dz, G, a->w->data, G, 0.0f, (*dx)->data, D);
  }
  if (kl_need_grad(1)) {
    if (!(*dw = kl_tensor_empty(2, a->w->dims))) return -1;
    kl_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, G, NT, 1.0f, a->x->data, D, dz, G, 0.0f, (*dw)->data, G);
  }
  if (kl_need_grad(2)) {
    if (!(*dr = kl_tensor_empty(2, a->r->dims))) return -1;
    kl_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, U, G, NT, 1.0f, hp, U, dzh, G, 0.0f, (*dr)->data, G);
  }
  return 0;
}

static void column_sums(const float *m, int64_t rows, int64_t cols, float *out) {
  memset(out, 0, sizeof(float) * cols);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < cols; j++) out[j] += m[r * cols + j];
}

/* hp (N*T, U) in input-time order: the state each timestep started from. */
static void gather_prev_states(const rnn_args *a, const float *out, int64_t width, float *hp) {
  for (int64_t n = 0; n < a->n; n++)
    for (int64_t s = 0; s < a->t; s++)
      memcpy(hp + (n * a->t + step_time(a, s)) * a->u, prev_slot(a, out, width, s, n, 0, a->h0->data),
             sizeof(float) * a->u);
}

/* The per-call context the row workers share; each writes only its rows. */
typedef struct {
  const rnn_args *a;
  const float *xw;     /* forward: projected inputs (N*T, G) */
  float *rec;          /* forward: recurrent projections (N, G) */
  float *out;          /* packed output (N, T, W) */
  const float *gout;   /* backward: gradient of the packed output */
  float *dz, *dzh;     /* backward: gate gradients (N*T, G), input and recurrent side */
  float *dh, *dc;      /* backward: carried state gradients (N, U) */
  float *tmp;          /* backward: per-row scratch (N, U) */
} rnn_ctx;

/* rec rows b0..b1, columns 0..cols = h_{s-1} @ R[:, 0..cols]; h_{s-1} rows
 * are strided inside the output. */
static void recurrent_step(const rnn_ctx *c, int64_t s, int64_t width, int64_t b0, int64_t b1, int64_t cols) {
  const rnn_args *a = c->a;
  const float *hprev = s == 0 ? a->h0->data + b0 * a->u : c->out + (b0 * a->t + s - 1) * width;
  kl_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(b1 - b0), (int)cols, (int)a->u, 1.0f, hprev,
              (int)(s == 0 ? a->u : a->t * width), a->r->data, (int)a->g, 0.0f, c->rec + b0 * a->g, (int)a->g);
}

/* dh rows b0..b1 += dz_t[:, 0..cols] @ R[:, 0..cols]^T, dz_t rows strided in (N*T, G). */
static void recurrent_grad(const rnn_ctx *c, const float *dz, int64_t t, int64_t b0, int64_t b1, int64_t cols) {
  const rnn_args *a = c->a;
  kl_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(b1 - b0), (int)a->u, (int)cols, 1.0f,
              dz + (b0 * a->t + t) * a->g, (int)(a->t * a->g), a->r->data, (int)a->g, 1.0f, c->dh + b0 * a->u, (int)a->u);
}

/* Allocates the packed output and the forward scratch, projects the inputs. */
static kl_tensor *forward_begin(rnn_args *a, int64_t width, rnn_ctx *c) {
  const int64_t N = a->n, T = a->t, G = a->g;
  kl_tensor *out = kl_tensor_empty(3, (int64_t[]){N, T, width});
  float *xw = out ? kl_scratch((size_t)(N * T * G + N * G)) : NULL;
  if (!xw) {
    if (out) { kl_tensor_release(out); kl_failn("%s: out of memory", a->op); }
    return NULL;
  }
  *c = (rnn_ctx){.a = a, .xw = xw, .rec = xw + N * T * G, .out = out->data};
  project_inputs(a, xw);
  return out;
}

static int64_t step_work(const rnn_args *a) { return a->n * a->g * a->u; }

/* ---- lstm ------------------------------------------------------------------ */

static void lstm_fwd_rows(void *p, int64_t b0, int64_t b1) {
  const rnn_ctx *c = p;
  const rnn_args *a = c->a;
  const int64_t T = a->t, U = a->u, G = a->g, W = 6 * U;
  const float *bias = a->b->data;
  float *o = c->out;
  for (int64_t s = 0; s < T; s++) {
    const int64_t t = step_time(a, s);
    recurrent_step(c, s, W, b0, b1, G);
    for (int64_t b = b0; b < b1; b++) {
      float *row = o + (b * T + s) * W, *h = row, *cs = row + U, *gt = row + 2 * U;
      const float *hp = prev_slot(a, o, W, s, b, 0, a->h0->data);
      const float *cp = prev_slot(a, o, W, s, b, U, a->c0->data);
      if (!valid(a, b, t)) {
        memcpy(h, hp, sizeof(float) * U);
        memcpy(cs, cp, sizeof(float) * U);
        memset(gt, 0, sizeof(float) * G);
        continue;
      }
      const float *xr = c->xw + (b * T + t) * G, *rr = c->rec + b * G;
      for (int64_t j = 0; j < G; j++) gt[j] = xr[j] + rr[j] + bias[j];
      act_apply(a->ract, gt, 2 * U);             /* i, f */
      act_apply(a->act, gt + 2 * U, U);          /* g (Keras's "c" gate) */
      act_apply(a->ract, gt + 3 * U, U);         /* o */
      const float *ig = gt, *fg = gt + U, *gg = gt + 2 * U, *og = gt + 3 * U;
      for (int64_t j = 0; j < U; j++) cs[j] = fg[j] * cp[j] + ig[j] * gg[j];
      memcpy(h, cs, sizeof(float) * U);
      act_apply(a->act, h, U);
      for (int64_t j = 0; j < U; j++) h[j] *= og[j];
    }
  }
}

kl_tensor *op_lstm_fwd(kl_tensor **in, int n, const kl_attrs *at) {
  rnn_args a;
  rnn_ctx c;
  if (rnn_setup("lstm", in, n, at, 4, 1, &a) < 0) return NULL;
  kl_tensor *out = forward_begin(&a, 6 * a.u, &c);
  if (out) run_rows(a.n, a.t * step_work(&a), step_work(&a), lstm_fwd_rows, &c);
  kl_scratch_done();
  rnn_release(&a);
  return out;
}

static void lstm_bwd_rows(void *p, int64_t b0, int64_t b1) {
  const rnn_ctx *c = p;
  const rnn_args *a = c->a;
  const int64_t T = a->t, U = a->u, G = a->g, W = 6 * U;
  for (int64_t s = T - 1; s >= 0; s--) {
    const int64_t t = step_time(a, s);
    for (int64_t b = b0; b < b1; b++) {
      const float *row = c->out + (b * T + s) * W, *grow = c->gout + (b * T + s) * W;
      const float *cs = row + U, *ig = row + 2 * U, *fg = row + 3 * U, *gg = row + 4 * U, *og = row + 5 * U;
      const float *cp = prev_slot(a, c->out, W, s, b, U, a->c0->data);
      float *dhb = c->dh + b * U, *dcb = c->dc + b * U, *z = c->dz + (b * T + t) * G, *th = c->tmp + b * U;
      float *di = z, *df = z + U, *dg = z + 2 * U, *dO = z + 3 * U;
      for (int64_t j = 0; j < U; j++) { dhb[j] += grow[j]; dcb[j] += grow[U + j]; }
      if (!valid(a, b, t)) { memset(z, 0, sizeof(float) * G); continue; }   /* dh, dc pass through */
      memcpy(th, cs, sizeof(float) * U);
      act_apply(a->act, th, U);                                     /* th = act(c) */
      for (int64_t j = 0; j < U; j++) { dO[j] = dhb[j] * th[j]; di[j] = dhb[j] * og[j]; }
      act_grad_mul(a->act, th, di, U);                              /* di = dh * o * act'(c) */
      for (int64_t j = 0; j < U; j++) {
        float dcj = dcb[j] + di[j];
        di[j] = dcj * gg[j]; dg[j] = dcj * ig[j]; df[j] = dcj * cp[j];
        dcb[j] = dcj * fg[j];
        dhb[j] = 0;                      /* refilled below: dz_t @ R^T */
      }
      act_grad_mul(a->ract, ig, di, U);
      act_grad_mul(a->ract, fg, df, U);
      act_grad_mul(a->act, gg, dg, U);
      act_grad_mul(a->ract, og, dO, U);
    }
    recurrent_grad(c, c->dz, t, b0, b1, a->g);
  }
}

int op_lstm_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *at, kl_tensor *gout, kl_tensor **gin) {
  rnn_args a;
  if (rnn_setup("lstm", in, n, at, 4, 1, &a) < 0) return -1;
  const int64_t N = a.n, T = a.t, U = a.u, G = a.g;
  kl_tensor *go = kl_tensor_contiguous(gout), *o = kl_tensor_contiguous(out);
  kl_tensor *dx = NULL, *dw = NULL, *dr = NULL, *db = NULL, *dh0 = NULL, *dc0 = NULL;
  int rc = -1;
  /* scratch: dz (N*T,G) | hp (N*T,U) | dc (N,U) | act(c) (N,U) */
  float *dz = go && o ? kl_scratch((size_t)(N * T * G + N * T * U + 2 * N * U)) : NULL;
  if (go && o && !dz) { kl_failn("lstm: out of memory"); goto done; }
  dh0 = kl_tensor_zeros(2, a.h0->dims);      /* the carried dL/dh ends as the h0 gradient */
  dc0 = kl_tensor_zeros(2, a.c0->dims);      /* and dL/dc as the c0 gradient */
  db = kl_tensor_empty(1, a.b->dims);
  if (!dz || !dh0 || !dc0 || !db) goto done;
  float *hp = dz + N * T * G;
  rnn_ctx c = {.a = &a, .out = o->data, .gout = go->data, .dz = dz, .dh = dh0->data, .dc = dc0->data,
               .tmp = hp + N * T * U};
  run_rows(N, T * step_work(&a), step_work(&a), lstm_bwd_rows, &c);
  gather_prev_states(&a, o->data, 6 * U, hp);
  if (finish_grads(&a, dz, dz, hp, &dx, &dw, &dr) < 0) goto done;
  column_sums(dz, N * T, G, db->data);
  gin[0] = dx; gin[1] = dw; gin[2] = dr; gin[3] = db; gin[4] = dh0; gin[5] = dc0;
  dx = dw = dr = db = dh0 = dc0 = NULL;
  rc = 0;
done:
  kl_scratch_done();
  kl_release_all(8, (kl_tensor *[]){go, o, dx, dw, dr, db, dh0, dc0});
  rnn_release(&a);
  return rc;
}

/* ---- gru (reset_after=true) ------------------------------------------------
 *   z = ract(x Wz + bz + h Rz + rbz),  r = ract(x Wr + br + h Rr + rbr)
 *   hh = act(x Wh + bh + r * (h Rh + rbh)),  h' = z * h + (1 - z) * hh */

static void gru_fwd_rows(void *p, int64_t b0, int64_t b1) {
  const rnn_ctx *c = p;
  const rnn_args *a = c->a;
  const int64_t T = a->t, U = a->u, G = a->g, W = 5 * U;
  const float *bin = a->b->data, *brec = a->b->data + G;
  float *o = c->out;
  for (int64_t s = 0; s < T; s++) {
    const int64_t t = step_time(a, s);
    recurrent_step(c, s, W, b0, b1, G);
    for (int64_t b = b0; b < b1; b++) {
      float *row = o + (b * T + s) * W, *h = row, *z = row + U, *r = row + 2 * U, *hh = row + 3 * U, *hr = row + 4 * U;
      const float *hp = prev_slot(a, o, W, s, b, 0, a->h0->data);
      if (!valid(a, b, t)) {
        memcpy(h, hp, sizeof(float) * U);
        memset(z, 0, sizeof(float) * 4 * U);
        continue;
      }
      const float *xr = c->xw + (b * T + t) * G, *rr = c->rec + b * G;
      for (int64_t j = 0; j < 2 * U; j++) z[j] = xr[j] + bin[j] + rr[j] + brec[j];   /* z and r side by side */
      act_apply(a->ract, z, 2 * U);
      for (int64_t j = 0; j < U; j++) {
        hr[j] = rr[2 * U + j] + brec[2 * U + j];
        hh[j] = xr[2 * U + j] + bin[2 * U + j] + r[j] * hr[j];
      }
      act_apply(a->act, hh, U);
      for (int64_t j = 0; j < U; j++) h[j] = z[j] * hp[j] + (1.0f - z[j]) * hh[j];
    }
  }
}

/* ---- gru (reset_after=false, Keras's other form) ---------------------------
 *   z = ract(x Wz + bz + h Rz),  r = ract(x Wr + br + h Rr)
 *   hh = act(x Wh + bh + (r * h) Rh),  h' = z * h + (1 - z) * hh
 * Two recurrent products per step: h @ R[:, z r], then (r * h) @ R[:, h]. */

static void gru_rb_fwd_rows(void *p, int64_t b0, int64_t b1) {
  const rnn_ctx *c = p;
  const rnn_args *a = c->a;
  const int64_t T = a->t, U = a->u, G = a->g, W = 5 * U;
  const float *bias = a->b->data;
  float *o = c->out;
  for (int64_t s = 0; s < T; s++) {
    const int64_t t = step_time(a, s);
    recurrent_step(c, s, W, b0, b1, 2 * U);
    for (int64_t b = b0; b < b1; b++) {
      float *row = o + (b * T + s) * W, *z = row + U, *r = row + 2 * U, *rh = row + 4 * U;
      const float *hp = prev_slot(a, o, W, s, b, 0, a->h0->data);
      if (!valid(a, b, t)) { memset(z, 0, sizeof(float) * 4 * U); continue; }   /* rh = 0 feeds the product below */
      const float *xr = c->xw + (b * T + t) * G, *rr = c->rec + b * G;
      for (int64_t j = 0; j < 2 * U; j++) z[j] = xr[j] + bias[j] + rr[j];
      act_apply(a->ract, z, 2 * U);
      for (int64_t j = 0; j < U; j++) rh[j] = r[j] * hp[j];
    }
    /* rec[:, 2U:3U] = (r * h) @ R[:, 2U:3U], the rh rows strided in the output */
    kl_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(b1 - b0), (int)U, (int)U, 1.0f,
                o + (b0 * T + s) * W + 4 * U, (int)(T * W), a->r->data + 2 * U, (int)G, 0.0f,
                c->rec + b0 * G + 2 * U, (int)G);
    for (int64_t b = b0; b < b1; b++) {
      float *row = o + (b * T + s) * W, *h = row, *z = row + U, *hh = row + 3 * U;
      const float *hp = prev_slot(a, o, W, s, b, 0, a->h0->data);
      if (!valid(a, b, t)) { memcpy(h, hp, sizeof(float) * U); continue; }
      const float *xr = c->xw + (b * T + t) * G, *rr = c->rec + b * G;
      for (int64_t j = 0; j < U; j++) hh[j] = xr[2 * U + j] + bias[2 * U + j] + rr[2 * U + j];
      act_apply(a->act, hh, U);
      for (int64_t j = 0; j < U; j++) h[j] = z[j] * hp[j] + (1.0f - z[j]) * hh[j];
    }
  }
}

kl_tensor *op_gru_fwd(kl_tensor **in, int n, const kl_attrs *at) {
  rnn_args a;
  rnn_ctx c;
  if (rnn_setup("gru", in, n, at, 3, 0, &a) < 0) return NULL;
  kl_tensor *out = forward_begin(&a, 5 * a.u, &c);
  if (out) run_rows(a.n, a.t * step_work(&a), step_work(&a), a.reset_after ? gru_fwd_rows : gru_rb_fwd_rows, &c);
  kl_scratch_done();
  rnn_release(&a);
  return out;
}

static void gru_bwd_rows(void *p, int64_t b0, int64_t b1) {
  const rnn_ctx *c = p;
  const rnn_args *a = c->a;
  const int64_t T = a->t, U = a->u, G = a->g, W = 5 * U;
  for (int64_t s = T - 1; s >= 0; s--) {
    const int64_t t = step_time(a, s);
    for (int64_t b = b0; b < b1; b++) {
      const float *row = c->out + (b * T + s) * W, *grow = c->gout + (b * T + s) * W;
      const float *z = row + U, *r = row + 2 * U, *hh = row + 3 * U, *hr = row + 4 * U;
      const float *hpv = prev_slot(a, c->out, W, s, b, 0, a->h0->data);
      float *dhb = c->dh + b * U, *zx = c->dz + (b * T + t) * G, *zh = c->dzh + (b * T + t) * G;
      for (int64_t j = 0; j < U; j++) dhb[j] += grow[j];
      if (!valid(a, b, t)) { memset(zx, 0, sizeof(float) * G); memset(zh, 0, sizeof(float) * G); continue; }
      float *dpz = zx, *dpr = zx + U, *dph = zx + 2 * U;
      for (int64_t j = 0; j < U; j++) { dpz[j] = dhb[j] * (hpv[j] - hh[j]); dph[j] = dhb[j] * (1.0f - z[j]); }
      act_grad_mul(a->act, hh, dph, U);
      for (int64_t j = 0; j < U; j++) {
        dpr[j] = dph[j] * hr[j];
        zh[2 * U + j] = dph[j] * r[j];
        dhb[j] *= z[j];                  /* the direct path; dz_t @ R^T is added below */
      }
      act_grad_mul(a->ract, z, dpz, U);
      act_grad_mul(a->ract, r, dpr, U);
      memcpy(zh, zx, sizeof(float) * 2 * U);
    }
    recurrent_grad(c, c->dzh, t, b0, b1, G);
  }
}

/* Backward of the reset_after=false form; per step, with dh the carried dL/dh':
 *   dph = dh (1 - z) act'(hh),  dpz = dh (h - hh) ract'(z)
 *   drh = dph @ Rh^T,  dpr = drh * h * ract'(r)
 *   dh_prev = dh z + drh r + [dpz dpr] @ Rzr^T.  c->tmp holds drh (N,U). */
static void gru_rb_bwd_rows(void *p, int64_t b0, int64_t b1) {
  const rnn_ctx *c = p;
  const rnn_args *a = c->a;
  const int64_t T = a->t, U = a->u, G = a->g, W = 5 * U;
  for (int64_t s = T - 1; s >= 0; s--) {
    const int64_t t = step_time(a, s);
    for (int64_t b = b0; b < b1; b++) {
      const float *row = c->out + (b * T + s) * W, *grow = c->gout + (b * T + s) * W;
      const float *z = row + U, *hh = row + 3 * U;
      const float *hpv = prev_slot(a, c->out, W, s, b, 0, a->h0->data);
      float *dhb = c->dh + b * U, *zx = c->dz + (b * T + t) * G;
      for (int64_t j = 0; j < U; j++) dhb[j] += grow[j];
      if (!valid(a, b, t)) { memset(zx, 0, sizeof(float) * G); continue; }   /* dph = 0: drh = 0 below */
      float *dpz = zx, *dph = zx + 2 * U;
      for (int64_t j = 0; j < U; j++) {
        dpz[j] = dhb[j] * (hpv[j] - hh[j]);
        dph[j] = dhb[j] * (1.0f - z[j]);
        dhb[j] *= z[j];
      }
      act_grad_mul(a->act, hh, dph, U);
      act_grad_mul(a->ract, z, dpz, U);
    }
    /* drh rows = dph rows @ Rh^T */
    kl_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(b1 - b0), (int)U, (int)U, 1.0f,
                c->dz + (b0 * T + t) * G + 2 * U, (int)(T * G), a->r->data + 2 * U, (int)G, 0.0f,
                c->tmp + b0 * U, (int)U);
    for (int64_t b = b0; b < b1; b++) {
      if (!valid(a, b, t)) continue;
      const float *r = c->out + (b * T + s) * W + 2 * U, *drh = c->tmp + b * U;
      const float *hpv = prev_slot(a, c->out, W, s, b, 0, a->h0->data);
      float *dhb = c->dh + b * U, *dpr = c->dz + (b * T + t) * G + U;
      for (int64_t j = 0; j < U; j++) { dpr[j] = drh[j] * hpv[j]; dhb[j] += drh[j] * r[j]; }
      act_grad_mul(a->ract, r, dpr, U);
    }
    recurrent_grad(c, c->dz, t, b0, b1, 2 * U);
  }
}

/* rows (N*T, U) in input-time order from the packed column block at `off`. */
static void gather_column(const rnn_args *a, const float *out, int64_t width, int64_t off, float *dst) {
  for (int64_t n = 0; n < a->n; n++)
    for (int64_t s = 0; s < a->t; s++)
      memcpy(dst + (n * a->t + step_time(a, s)) * a->u, out + (n * a->t + s) * width + off, sizeof(float) * a->u);
}

static int gru_rb_bwd(rnn_args *a, kl_tensor *out, kl_tensor *gout, kl_tensor **gin) {
  const int64_t N = a->n, T = a->t, U = a->u, G = a->g;
  kl_tensor *go = kl_tensor_contiguous(gout), *o = kl_tensor_contiguous(out);
  kl_tensor *dx = NULL, *dw = NULL, *dr = NULL, *db = NULL, *dh0 = NULL;
  int rc = -1;
  /* scratch: dz (N*T,G) | hp (N*T,U) | rh (N*T,U) | drh (N,U) */
  float *dz = go && o ? kl_scratch((size_t)(N * T * G + 2 * N * T * U + N * U)) : NULL;
  if (go && o && !dz) { kl_failn("gru: out of memory"); goto done; }
  dh0 = kl_tensor_zeros(2, a->h0->dims);
  db = kl_tensor_empty(1, a->b->dims);
  if (!dz || !dh0 || !db) goto done;
  float *hp = dz + N * T * G, *rh = hp + N * T * U;
  rnn_ctx c = {.a = a, .out = o->data, .gout = go->data, .dz = dz, .dh = dh0->data, .tmp = rh + N * T * U};
  run_rows(N, 2 * T * step_work(a), step_work(a), gru_rb_bwd_rows, &c);
  gather_prev_states(a, o->data, 5 * U, hp);
  if (finish_grads(a, dz, dz, hp, &dx, &dw, &dr) < 0) goto done;
  if (dr) {   /* the candidate's block multiplied r * h, not h */
    gather_column(a, o->data, 5 * U, 4 * U, rh);
    kl_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)U, (int)U, (int)(N * T), 1.0f, rh, (int)U,
                dz + 2 * U, (int)G, 0.0f, dr->data + 2 * U, (int)G);
  }
  column_sums(dz, N * T, G, db->data);
  gin[0] = dx; gin[1] = dw; gin[2] = dr; gin[3] = db; gin[4] = dh0;
  dx = dw = dr = db = dh0 = NULL;
  rc = 0;
done:
  kl_scratch_done();
  kl_release_all(7, (kl_tensor *[]){go, o, dx, dw, dr, db, dh0});
  return rc;
}

int op_gru_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *at, kl_tensor *gout, kl_tensor **gin) {
  rnn_args a;
  if (rnn_setup("gru", in, n, at, 3, 0, &a) < 0) return -1;
  if (!a.reset_after) {
    int rc = gru_rb_bwd(&a, out, gout, gin);
    rnn_release(&a);
    return rc;
  }
  const int64_t N = a.n, T = a.t, U = a.u, G = a.g;
  kl_tensor *go = kl_tensor_contiguous(gout), *o = kl_tensor_contiguous(out);
  kl_tensor *dx = NULL, *dw = NULL, *dr = NULL, *db = NULL, *dh0 = NULL;
  int rc = -1;
  /* scratch: dzx (N*T,G) input-side gate gradients | dzh (N*T,G) recurrent side | hp (N*T,U) */
  float *dzx = go && o ? kl_scratch((size_t)(2 * N * T * G + N * T * U)) : NULL;
  if (go && o && !dzx) { kl_failn("gru: out of memory"); goto done; }
  dh0 = kl_tensor_zeros(2, a.h0->dims);
  db = kl_tensor_empty(2, a.b->dims);
  if (!dzx || !dh0 || !db) goto done;
  float *dzh = dzx + N * T * G, *hp = dzh + N * T * G;
  rnn_ctx c = {.a = &a, .out = o->data, .gout = go->data, .dz = dzx, .dzh = dzh, .dh = dh0->data};
  run_rows(N, T * step_work(&a), step_work(&a), gru_bwd_rows, &c);
  gather_prev_states(&a, o->data, 5 * U, hp);
  if (finish_grads(&a, dzx, dzh, hp, &dx, &dw, &dr) < 0) goto done;
  column_sums(dzx, N * T, G, db->data);
  column_sums(dzh, N * T, G, db->data + G);
  gin[0] = dx; gin[1] = dw; gin[2] = dr; gin[3] = db; gin[4] = dh0;
  dx = dw = dr = db = dh0 = NULL;
  rc = 0;
done:
  kl_scratch_done();
  kl_release_all(7, (kl_tensor *[]){go, o, dx, dw, dr, db, dh0});
  rnn_release(&a);
  return rc;
}

/* ---- simple_rnn: h' = act(x W + h R + b) ------------------------------------ */

static void simple_fwd_rows(void *p, int64_t b0, int64_t b1) {
  const rnn_ctx *c = p;
  const rnn_args *a = c->a;
  const int64_t T = a->t, U = a->u;
  const float *bias = a->b->data;
  float *o = c->out;
  for (int64_t s = 0; s < T; s++) {
    const int64_t t = step_time(a, s);
    recurrent_step(c, s, U, b0, b1, U);
    for (int64_t b = b0; b < b1; b++) {
      float *h = o + (b * T + s) * U;
      if (!valid(a, b, t)) { memcpy(h, prev_slot(a, o, U, s, b, 0, a->h0->data), sizeof(float) * U); continue; }
      const float *xr = c->xw + (b * T + t) * U, *rr = c->rec + b * U;
      for (int64_t j = 0; j < U; j++) h[j] = xr[j] + rr[j] + bias[j];
      act_apply(a->act, h, U);
    }
  }
}

kl_tensor *op_simple_rnn_fwd(kl_tensor **in, int n, const kl_attrs *at) {
  rnn_args a;
  rnn_ctx c;
  if (rnn_setup("simple_rnn", in, n, at, 1, 0, &a) < 0) return NULL;
  kl_tensor *out = forward_begin(&a, a.u, &c);
  if (out) run_rows(a.n, a.t * step_work(&a), step_work(&a), simple_fwd_rows, &c);
  kl_scratch_done();
  rnn_release(&a);
  return out;
}

static void simple_bwd_rows(void *p, int64_t b0, int64_t b1) {
  const rnn_ctx *c = p;
  const rnn_args *a = c->a;
  const int64_t T = a->t, U = a->u;
  for (int64_t s = T - 1; s >= 0; s--) {
    const int64_t t = step_time(a, s);
    for (int64_t b = b0; b < b1; b++) {
      const float *h = c->out + (b * T + s) * U, *g = c->gout + (b * T + s) * U;
      float *dhb = c->dh + b * U, *z = c->dz + (b * T + t) * U;
      for (int64_t j = 0; j < U; j++) dhb[j] += g[j];
      if (!valid(a, b, t)) { memset(z, 0, sizeof(float) * U); continue; }
      memcpy(z, dhb, sizeof(float) * U);
      act_grad_mul(a->act, h, z, U);
      memset(dhb, 0, sizeof(float) * U);
    }
    recurrent_grad(c, c->dz, t, b0, b1, a->g);
  }
}

int op_simple_rnn_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *at, kl_tensor *gout, kl_tensor **gin) {
  rnn_args a;
  if (rnn_setup("simple_rnn", in, n, at, 1, 0, &a) < 0) return -1;
  const int64_t N = a.n, T = a.t, U = a.u;
  kl_tensor *go = kl_tensor_contiguous(gout), *o = kl_tensor_contiguous(out);
  kl_tensor *dx = NULL, *dw = NULL, *dr = NULL, *db = NULL, *dh0 = NULL;
  int rc = -1;
  float *dz = go && o ? kl_scratch((size_t)(2 * N * T * U)) : NULL;   /* dz (N*T,U) | hp (N*T,U) */
  if (go && o && !dz) { kl_failn("simple_rnn: out of memory"); goto done; }
  dh0 = kl_tensor_zeros(2, a.h0->dims);
  db = kl_tensor_empty(1, a.b->dims);
  if (!dz || !dh0 || !db) goto done;
  float *hp = dz + N * T * U;
  rnn_ctx c = {.a = &a, .out = o->data, .gout = go->data, .dz = dz, .dh = dh0->data};
  run_rows(N, T * step_work(&a), step_work(&a), simple_bwd_rows, &c);
  gather_prev_states(&a, o->data, U, hp);
  if (finish_grads(&a, dz, dz, hp, &dx, &dw, &dr) < 0) goto done;
  column_sums(dz, N * T, U, db->data);
  gin[0] = dx; gin[1] = dw; gin[2] = dr; gin[3] = db; gin[4] = dh0;
  dx = dw = dr = db = dh0 = NULL;
  rc = 0;
done:
  kl_scratch_done();
  kl_release_all(7, (kl_tensor *[]){go, o, dx, dw, dr, db, dh0});
  rnn_release(&a);
  return rc;
}
