/* normalization.c — fused kernels for BatchNormalization and
 * LayerNormalization, each forward beside its backward. The features are the
 * last axis; x (..., C) is read as a (M, C) matrix.
 *   moments(x)                           -> (2, C): mean and biased variance over the M rows
 *   batch_norm(x, mean, var, gamma, beta) -> (x - mean) / sqrt(var + eps) * gamma + beta; f[0] = eps
 *   layer_norm(x, gamma, beta)           -> per row: (x - mean_row) / sqrt(var_row + eps) * gamma + beta
 * Training BatchNormalization chains moments and batch_norm, so the gradient
 * through the batch statistics comes from the chain rule (moments' backward).
 * NOTE: backwards are raw kernels, not recorded: second derivatives through
 * these ops are not available. */
#include "core.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Column sums over the M rows of a (M, C) layout: ACC (NACC * C doubles,
 * zeroed by the caller) += the body's `loc[...]` updates for each row i.
 * Large inputs split the rows over threads, each with private sums that are
 * added up afterwards (serially, in thread order: deterministic). */
#define COL_SUMS(M, C, NACC, ACC, i, ...)                                            \
  do {                                                                              \
    int64_t m_ = (M), w_ = (int64_t)(NACC) * (C);                                   \
    int nt_ = m_ * (C) > KL_PAR_MIN && m_ > 1 ? omp_get_max_threads() : 1;          \
    double *all_ = nt_ > 1 ? calloc((size_t)(nt_ * w_ + 1), sizeof(double)) : NULL; \
    if (all_) {                                                                     \
      _Pragma("omp parallel num_threads(nt_)") {                                    \
        double *loc = all_ + (int64_t)omp_get_thread_num() * w_;                    \
        _Pragma("omp for schedule(static)")                                         \
        for (int64_t i = 0; i < m_; i++) { __VA_ARGS__ }                            \
      }                                                                             \
      for (int t_ = 0; t_ < nt_; t_++)                                              \
        for (int64_t j_ = 0; j_ < w_; j_++) (ACC)[j_] += all_[t_ * w_ + j_];        \
      free(all_);                                                                   \
    } else {                                                                        \
      double *loc = (ACC);                                                          \
      for (int64_t i = 0; i < m_; i++) { __VA_ARGS__ }                              \
    }                                                                               \
  } while (0)

/* The per-feature sums of BatchNormalization over the M rows of (M, C), in
 * one pass over memory: blocks of ROWS rows are summed in float vectors
 * (compiled per ISA), f1 = sum d, f2 = sum d * b, d = a - shift, b = d when B
 * is NULL, else B; the blocks go into doubles. The blocks are fixed, so the
 * thread count only decides which of them a thread adds up. */
enum { ROWS = 64 };

__attribute__((target_clones("avx512f", "avx2", "default")))
static void col_block(const float *A, const float *B, const float *shift, int64_t rows, int64_t C, float *f1, float *f2) {
  for (int64_t j = 0; j < C; j++) { f1[j] = 0; f2[j] = 0; }
  for (int64_t i = 0; i < rows; i++) {
    const float *a = A + i * C, *b = B ? B + i * C : NULL;
    if (b) for (int64_t j = 0; j < C; j++) { f1[j] += b[j]; f2[j] += b[j] * (a[j] - shift[j]); }
    else for (int64_t j = 0; j < C; j++) { float d = a[j] - shift[j]; f1[j] += d; f2[j] += d * d; }
  }
}

/* A block's column means into mb (a first pass over rows that are then in cache). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void col_block_mean(const float *A, int64_t rows, int64_t C, float *mb) {
  for (int64_t j = 0; j < C; j++) mb[j] = 0;
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < C; j++) mb[j] += A[i * C + j];
  for (int64_t j = 0; j < C; j++) mb[j] /= (float)rows;
}

/* B == NULL: mean and M2 = sum (x - mean)^2 of A's columns: each block's are
 * computed two-pass while it is in cache, and the blocks merge by Chan's
 * formula, as precise as a two-pass sum over all rows. B given: s1 = sum B,
 * s2 = sum B * (A - shift). Returns -1 when out of memory. */
static int col_sums2(int64_t M, int64_t C, const float *A, const float *B, const float *shift, double *s1, double *s2) {
  const int64_t nb = (M + ROWS - 1) / ROWS;
  int nt = M * C > KL_PAR_MIN && nb > 1 ? omp_get_max_threads() : 1;
  if (nt > nb) nt = (int)nb;
  double *acc = calloc((size_t)(2 * nt * C + 1), sizeof(double));
  int64_t *count = calloc((size_t)nt, sizeof(int64_t));
  float *fb = malloc(sizeof(float) * (size_t)(3 * nt * C + 1));
  if (!acc || !fb || !count) { free(acc); free(fb); free(count); return -1; }
  #pragma omp parallel num_threads(nt) if (nt > 1)
  {
    int t = omp_get_thread_num();
    double *d1 = acc + 2 * t * C, *d2 = d1 + C;
    float *f1 = fb + 3 * t * C, *f2 = f1 + C, *k = f2 + C;
    #pragma omp for schedule(static)
    for (int64_t b = 0; b < nb; b++) {
      int64_t r0 = b * ROWS, rows = M - r0 < ROWS ? M - r0 : ROWS;
      if (B) {
        col_block(A + r0 * C, B + r0 * C, shift, rows, C, f1, f2);
        for (int64_t j = 0; j < C; j++) { d1[j] += f1[j]; d2[j] += f2[j]; }
        continue;
      }
      col_block_mean(A + r0 * C, rows, C, k);
      col_block(A + r0 * C, NULL, k, rows, C, f1, f2);
      double n = (double)count[t], nbk = (double)rows, tot = n + nbk;
      for (int64_t j = 0; j < C; j++) {   /* merge (rows, mean_b, m2_b) into (n, d1, d2) */
        double mb = k[j] + f1[j] / nbk, m2b = f2[j] - (double)f1[j] * f1[j] / nbk, delta = mb - d1[j];
        d1[j] += delta * nbk / tot;
        d2[j] += m2b + delta * delta * n * nbk / tot;
      }
      count[t] += rows;
    }
  }
  for (int64_t j = 0; j < C; j++) { s1[j] = acc[j]; s2[j] = acc[C + j]; }
  double n = (double)count[0];
  for (int t = 1; t < nt; t++) {
    const double *d1 = acc + 2 * t * C, *d2 = d1 + C, nbk = (double)count[t], tot = n + nbk;
    for (int64_t j = 0; j < C; j++) {
      if (B) { s1[j] += d1[j]; s2[j] += d2[j]; continue; }
      double delta = d1[j] - s1[j];
      s1[j] += delta * nbk / tot;
      s2[j] += d2[j] + delta * delta * n * nbk / tot;
    }
    n = tot;
  }
  free(acc);
  free(fb);
  free(count);
  return 0;
}

static int is_vector_of(const kl_tensor *t, int64_t c) { return t->count == c && (t->nd == 1 || t->nd == 0 || t->nd == 2); }

/* A contiguous float copy of a small per-feature tensor as doubles. */
static double *doubles_of(kl_tensor *t, int64_t c) {
  kl_tensor *tc = kl_tensor_contiguous(t);
  if (!tc) return NULL;
  double *d = malloc(sizeof(double) * (size_t)(c + 1));
  if (d) for (int64_t j = 0; j < c; j++) d[j] = tc->data[j];
  kl_tensor_release(tc);
  if (!d) kl_fail("normalization: out of memory");
  return d;
}

static int64_t features_of(const kl_tensor *x) { return x->nd ? x->dims[x->nd - 1] : 1; }

kl_tensor *op_moments_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *x = in[0];
  if (x->nd < 1) return kl_fail("moments: expected a tensor of rank >= 1 (features last), got %s", KL_SHAPE(x));
  int64_t C = features_of(x), M = C ? x->count / C : 0;
  if (M == 0) return kl_fail("moments: no rows to average in %s", KL_SHAPE(x));
  kl_tensor *xc = kl_tensor_contiguous(x);
  if (!xc) return NULL;
  kl_tensor *out = kl_tensor_zeros(2, (int64_t[]){2, C});
  double *acc = calloc((size_t)(2 * C + 1), sizeof(double));
  if (!out || !acc) { kl_tensor_release(xc); kl_tensor_release(out); free(acc); return kl_fail("moments: out of memory"); }
  double *mean = acc, *m2 = acc + C;
  if (col_sums2(M, C, xc->data, NULL, NULL, mean, m2) < 0) {
    kl_tensor_release(xc); kl_tensor_release(out); free(acc);
    return kl_fail("moments: out of memory");
  }
  for (int64_t j = 0; j < C; j++) { out->data[j] = (float)mean[j]; out->data[C + j] = (float)(m2[j] / (double)M); }
  free(acc);
  kl_tensor_release(xc);
  return out;
}

int op_moments_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  /* dx_ij = (dmean_j + 2 * dvar_j * (x_ij - mean_j)) / M */
  kl_tensor *x = in[0];
  int64_t C = features_of(x), M = x->count / C;
  kl_tensor *xc = kl_tensor_contiguous(x), *gc = kl_tensor_contiguous(g);
  kl_tensor *dx = xc && gc ? kl_tensor_empty(x->nd, x->dims) : NULL;
  if (dx) {
    const float *X = xc->data, *mean = out->data, *G = gc->data;
    float *D = dx->data;
    float inv = 1.0f / (float)M;
    KL_PAR_FOR_W(M, x->count, i,
      for (int64_t j = 0; j < C; j++) D[i * C + j] = (G[j] + 2.0f * G[C + j] * (X[i * C + j] - mean[j])) * inv;);
  }
  kl_tensor_release(xc);
  kl_tensor_release(gc);
  gin[0] = dx;
  return dx ? 0 : -1;
}

/* inputs: x, mean, var, gamma, beta — checked once for forward and backward */
static int check_bn(kl_tensor **in, int n, int64_t *C) {
  if (n != 5) return kl_failn("batch_norm: expected (x, mean, variance, gamma, beta), got %d inputs", n);
  kl_tensor *x = in[0];
  if (x->nd < 1) return kl_failn("batch_norm: expected a tensor of rank >= 1 (features last), got %s", KL_SHAPE(x));
  *C = features_of(x);
  static const char *names[] = {"x", "mean", "variance", "gamma", "beta"};
  for (int i = 1; i < 5; i++)
    if (!is_vector_of(in[i], *C))
      return kl_failn("batch_norm: %s has shape %s, expected (%lld) for input %s", names[i], KL_SHAPE(in[i]), (long long)*C, KL_SHAPE(x));
  return 0;
}

kl_tensor *op_batch_norm_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  int64_t C;
  if (check_bn(in, n, &C) < 0) return NULL;
  kl_tensor *x = in[0];
  double eps = a->f[0];
  double *mean = doubles_of(in[1], C), *var = doubles_of(in[2], C), *gam = doubles_of(in[3], C), *bet = doubles_of(in[4], C);
  kl_tensor *xc = mean && var && gam && bet ? kl_tensor_contiguous(x) : NULL;
  kl_tensor *out = xc ? kl_tensor_empty(x->nd, x->dims) : NULL;
  if (out) {
    float *sc = malloc(sizeof(float) * (size_t)(2 * C + 1));
    if (!sc) { kl_tensor_release(out); out = kl_fail("batch_norm: out of memory"); }
    else {
      float *sh = sc + C;   /* y = x * sc + sh */
      for (int64_t j = 0; j < C; j++) {
        double r = 1.0 / sqrt(var[j] + eps);
        sc[j] = (float)(gam[j] * r);
        sh[j] = (float)(bet[j] - mean[j] * gam[j] * r);
      }
      int64_t M = x->count / (C ? C : 1);
      const float *X = xc->data;
      float *Y = out->data;
      KL_PAR_FOR_W(M, x->count, i,
        for (int64_t j = 0; j < C; j++) Y[i * C + j] = X[i * C + j] * sc[j] + sh[j];);
      free(sc);
    }
  }
  free(mean); free(var); free(gam); free(bet);
  kl_tensor_release(xc);
  return out;
}

int op_batch_norm_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  int64_t C;
  if (check_bn(in, n, &C) < 0) return -1;
  kl_tensor *x = in[0];
  int64_t M = x->count / (C ? C : 1);
  double eps = a->f[0];
  double *mean = doubles_of(in[1], C), *var = doubles_of(in[2], C), *gam = doubles_of(in[3], C);
  double *acc = calloc((size_t)(2 * C + 1), sizeof(double));   /* sum(dy), sum(dy * (x - mean)) */
  kl_tensor *xc = kl_tensor_contiguous(x), *gc = kl_tensor_contiguous(g);
  int rc = -1;
  if (!mean || !var || !gam || !acc || !xc || !gc) { if (!acc) kl_failn("batch_norm: out of memory"); goto done; }
  const float *X = xc->data, *G = gc->data;
  double *sdy = acc, *sdyx = acc + C;
  float *meanf = malloc(sizeof(float) * (size_t)(C + 1));
  if (!meanf) { kl_failn("batch_norm: out of memory"); goto done; }
  for (int64_t j = 0; j < C; j++) meanf[j] = (float)mean[j];
  int sums = col_sums2(M, C, X, G, meanf, sdy, sdyx);
  free(meanf);
  if (sums < 0) { kl_failn("batch_norm: out of memory"); goto done; }
  int64_t cshape[1] = {C};
  kl_tensor *dx = kl_tensor_empty(x->nd, x->dims);
  kl_tensor *dm = kl_tensor_empty(1, cshape), *dv = kl_tensor_empty(1, cshape);
  kl_tensor *dg = kl_tensor_empty(1, cshape), *db = kl_tensor_empty(1, cshape);
  if (!dx || !dm || !dv || !dg || !db) {
    kl_tensor *t[5] = {dx, dm, dv, dg, db};
    kl_release_all(5, t);
    goto done;
  }
  float *sc = dg->data;   /* reuse as scratch: gamma * rstd, overwritten below */
  for (int64_t j = 0; j < C; j++) sc[j] = (float)(gam[j] / sqrt(var[j] + eps));
  float *D = dx->data;
  KL_PAR_FOR_W(M, x->count, i,
    for (int64_t j = 0; j < C; j++) D[i * C + j] = G[i * C + j] * sc[j];);
  for (int64_t j = 0; j < C; j++) {
    double r = 1.0 / sqrt(var[j] + eps);
    dm->data[j] = (float)(-sdy[j] * gam[j] * r);
    dv->data[j] = (float)(-0.5 * sdyx[j] * gam[j] * r * r * r);
    dg->data[j] = (float)(sdyx[j] * r);
    db->data[j] = (float)sdy[j];
  }
  /* per-feature gradients take their input's shape ((C) or (1, C)) */
  kl_tensor *small[4] = {dm, dv, dg, db};
  for (int i = 0; i < 4; i++) {
    kl_tensor *s = small[i];
    if (in[i + 1]->nd != 1) {
      kl_tensor *r = kl_reshape_to(s, in[i + 1]->nd, in[i + 1]->dims);
      kl_tensor_release(s);
      s = r;
    }
    gin[i + 1] = s;
  }
  gin[0] = dx;
  rc = 0;
  for (int i = 1; i < 5; i++) if (!gin[i]) rc = -1;
done:
  free(mean); free(var); free(gam); free(acc);
  kl_tensor_release(xc);
  kl_tensor_release(gc);
  return rc;
}

static int check_ln(kl_tensor **in, int64_t *N) {
  kl_tensor *x = in[0];
  if (x->nd < 1) return kl_failn("layer_norm: expected a tensor of rank >= 1, got %s", KL_SHAPE(x));
  *N = features_of(x);
  if (in[1]->count != *N || in[2]->count != *N)
    return kl_failn("layer_norm: gamma %s and beta %s must have %lld elements for input %s", KL_SHAPE(in[1]),
                    KL_SHAPE(in[2]), (long long)*N, KL_SHAPE(x));
  return 0;
}

/* Per-row sums in 8-float vectors (two SSE halves where AVX is missing) with
 * one horizontal add per row: a row of LayerNormalization is short (64
 * features), where `omp simd` reductions spend most of their time in a
 * scalar epilogue. Several partial sums are no less accurate than one
 * running sum; Keras computes the moments in float32 too. */
#define KL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
typedef float v8f __attribute__((vector_size(32), aligned(4)));
/* macros, not functions: a vector argument or result changes the ABI of the baseline clone */
#define load8(p) (*(const v8f *)(p))
#define hsum8(v) ({ v8f h_ = (v); ((h_[0] + h_[4]) + (h_[1] + h_[5])) + ((h_[2] + h_[6]) + (h_[3] + h_[7])); })

/* One row's mean and 1/sqrt(var + eps), in two passes (the variance of the
 * centred values: no cancellation). */
static inline void row_stats(const float *x, int64_t N, float eps, float *mean, float *rstd) {
  v8f a = {0}, b = {0};
  int64_t j = 0;
  for (; j + 16 <= N; j += 16) { a += load8(x + j); b += load8(x + j + 8); }
  float s = hsum8(a + b);
  for (; j < N; j++) s += x[j];
  float mu = s / (float)N;
  a = b = (v8f){0};
  for (j = 0; j + 16 <= N; j += 16) {
    v8f d0 = load8(x + j) - mu, d1 = load8(x + j + 8) - mu;
    a += d0 * d0; b += d1 * d1;
  }
  float v = hsum8(a + b);
  for (; j < N; j++) { float d = x[j] - mu; v += d * d; }
  *mean = mu;
  *rstd = 1.0f / sqrtf(v / (float)N + eps);
}

KL_CLONES static void ln_rows_fwd(const float *X, const float *GA, const float *BE, float *Y, int64_t lo, int64_t hi,
                                  int64_t N, float eps) {
  for (int64_t i = lo; i < hi; i++) {
    const float *x = X + i * N;
    float *y = Y + i * N, mu, r;
    row_stats(x, N, eps, &mu, &r);
    #pragma omp simd
    for (int64_t j = 0; j < N; j++) y[j] = (x[j] - mu) * r * GA[j] + BE[j];
  }
}

/* One row of the backward: dx, and the row's terms of the gamma and beta
 * gradients added to the column sums dg, db (doubles: summed over all rows). */
KL_CLONES static void ln_row_bwd(const float *x, const float *dy, const float *GA, float *dx, int64_t N, float eps,
                                 double *dg, double *db) {
  float mu, r;
  row_stats(x, N, eps, &mu, &r);
  v8f a = {0}, b = {0};
  int64_t j = 0;
  for (; j + 8 <= N; j += 8) {
    v8f dxh = load8(dy + j) * load8(GA + j);
    a += dxh; b += dxh * ((load8(x + j) - mu) * r);
  }
  float s1 = hsum8(a), s2 = hsum8(b);
  for (; j < N; j++) { float dxh = dy[j] * GA[j]; s1 += dxh; s2 += dxh * ((x[j] - mu) * r); }
  s1 /= (float)N; s2 /= (float)N;
  #pragma omp simd
  for (j = 0; j < N; j++) {
    float xh = (x[j] - mu) * r;
    dx[j] = r * (dy[j] * GA[j] - s1 - xh * s2);
    dg[j] += (double)(dy[j] * xh);
    db[j] += (double)dy[j];
  }
}

kl_tensor *op_layer_norm_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  int64_t N;
  if (check_ln(in, &N) < 0) return NULL;
  kl_tensor *x = in[0];
  if (N == 0) return kl_tensor_empty(x->nd, x->dims);
  int64_t M = x->count / N;
  kl_tensor *xc = kl_tensor_contiguous(x), *gc = kl_tensor_contiguous(in[1]), *bc = kl_tensor_contiguous(in[2]);
  kl_tensor *out = xc && gc && bc ? kl_tensor_empty(x->nd, x->dims) : NULL;
  if (out) {
    const float *X = xc->data, *GA = gc->data, *BE = bc->data;
    float *Y = out->data, eps = (float)a->f[0];
    int64_t B = (8192 + N - 1) / N;   /* rows per block */
    KL_PAR_FOR_W((M + B - 1) / B, x->count, blk,
      int64_t lo = blk * B; ln_rows_fwd(X, GA, BE, Y, lo, M - lo < B ? M : lo + B, N, eps););
  }
  kl_tensor_release(xc); kl_tensor_release(gc); kl_tensor_release(bc);
  return out;
}

int op_layer_norm_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  /* xhat = (x - mu) r; dxhat = dy * gamma;
   * dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
  int64_t N;
  if (check_ln(in, &N) < 0) return -1;
  kl_tensor *x = in[0];
  int64_t M = N ? x->count / N : 0;
  float eps = (float)a->f[0];
  kl_tensor *xc = kl_tensor_contiguous(x), *gc = kl_tensor_contiguous(in[1]), *dc = kl_tensor_contiguous(g);
  kl_tensor *dx = xc && gc && dc ? kl_tensor_empty(x->nd, x->dims) : NULL;
  kl_tensor *dga = dx ? kl_tensor_empty(in[1]->nd, in[1]->dims) : NULL;
  kl_tensor *dbe = dga ? kl_tensor_empty(in[2]->nd, in[2]->dims) : NULL;
  double *acc = dbe ? calloc((size_t)(2 * N + 1), sizeof(double)) : NULL;
  int rc = -1;
  if (!acc) {
    if (dbe) kl_failn("layer_norm: out of memory");
    kl_tensor_release(dx); kl_tensor_release(dga); kl_tensor_release(dbe);
    goto done;
  }
  const float *X = xc->data, *GA = gc->data, *DY = dc->data;
  float *DX = dx->data;
  COL_SUMS(M, N, 2, acc, i, ln_row_bwd(X + i * N, DY + i * N, GA, DX + i * N, N, eps, loc, loc + N););
  for (int64_t j = 0; j < N; j++) { dga->data[j] = (float)acc[j]; dbe->data[j] = (float)acc[N + j]; }
  gin[0] = dx; gin[1] = dga; gin[2] = dbe;
  rc = 0;
done:
  free(acc);
  kl_tensor_release(xc); kl_tensor_release(gc); kl_tensor_release(dc);
  return rc;
}
