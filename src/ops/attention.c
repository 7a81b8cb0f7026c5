/* attention.c — scaled dot-product attention over every (batch, head) in one
 * op, on the layout the query/key/value projections produce (no transposes):
 *   q (B,Tq,H,K), k (B,Tv,H,K), v (B,Tv,H,V)[, mask], f[0] = scale (0 means 1/sqrt(K))
 * The mask (1 = attend) broadcasts as Keras's attention_mask: rank 4 to
 * (B,H,Tq,Tv), a lower rank to (B,Tq,Tv), the same for every head.
 * Per (b, h): S = scale Q Kᵀ + (1 - mask) * -1e9 (Keras's masked softmax, so a
 * fully masked row comes out uniform), P = softmax(S) along Tv (max-subtracted),
 * O = P V. Each product is one sgemm on the strided heads (leading dimension
 * H*K or H*V); threads take (b, h) pairs with OpenBLAS single-threaded inside.
 *
 * An op returns one tensor, so P, which the backward needs, is packed after
 * the context (as the recurrent kernels pack their states, rnn.c) in one
 * storage [ctx (B,Tq,H,V) | probs (B,H,Tq,Tv)]. What the op returns:
 *   ints[0] = 0: all of it, flat; nn.attention returns both parts as views,
 *                both differentiable (the gradient has the packed size too);
 *   ints[0] = 1: the context only, (B,Tq,H,V), over the first part of the
 *                same storage (nn.attention_context). The tape keeps the
 *                output tensor, so the backward still finds P behind it, and
 *                the gradient it gets is the context's alone: no zeros for P.
 *   dV = Pᵀ dO, dP = dO Vᵀ + g_probs, dS = P ⊙ (dP − rowsum(dP ⊙ P)),
 *   dQ = scale dS K, dK = scale dSᵀ Q.
 * P is the only attention-sized buffer the op keeps; the backward works in
 * one Tq×Tv scratch block per thread. The mask gets no gradient. */
#include "core.h"
#include "ops/scratch.h"
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { PAR_WORK = 1 << 18 };   /* multiply-adds before threads pay off */

typedef struct {
  int64_t b, tq, tv, h, k, v;
  float scale;
  kl_tensor *q, *kk, *vv, *mask;   /* q, k, v: contiguous references; mask as given */
  int64_t ms[4];                   /* mask strides broadcast to (B,H,Tq,Tv) */
} att_args;

static void att_release(att_args *a) { kl_release_all(3, (kl_tensor *[]){a->q, a->kk, a->vv}); }

static int att_setup(kl_tensor **in, int n, const kl_attrs *at, att_args *a) {
  memset(a, 0, sizeof *a);
  if (n != 3 && n != 4) return kl_failn("attention: expected inputs (query, key, value[, mask]), got %d inputs", n);
  kl_tensor *q = in[0], *k = in[1], *v = in[2], *m = n == 4 ? in[3] : NULL;
  if (q->nd != 4 || k->nd != 4 || v->nd != 4)
    return kl_failn("attention: expected query (batch,Tq,heads,key_dim), key (batch,Tv,heads,key_dim) and "
                    "value (batch,Tv,heads,value_dim), got %s, %s and %s", KL_SHAPE(q), KL_SHAPE(k), KL_SHAPE(v));
  a->b = q->dims[0]; a->tq = q->dims[1]; a->h = q->dims[2]; a->k = q->dims[3];
  a->tv = k->dims[1]; a->v = v->dims[3];
  if (k->dims[0] != a->b || k->dims[2] != a->h || k->dims[3] != a->k ||
      v->dims[0] != a->b || v->dims[1] != a->tv || v->dims[2] != a->h)
    return kl_failn("attention: query %s, key %s and value %s do not match: expected (batch,Tq,heads,key_dim), "
                    "(batch,Tv,heads,key_dim) and (batch,Tv,heads,value_dim)", KL_SHAPE(q), KL_SHAPE(k), KL_SHAPE(v));
  if (a->tq > INT_MAX || a->tv > INT_MAX || a->h * a->k > INT_MAX || a->h * a->v > INT_MAX)
    return kl_failn("attention: query %s, key %s and value %s are too large for one product", KL_SHAPE(q), KL_SHAPE(k), KL_SHAPE(v));
  if (m) {
    /* (B,H,Tq,Tv) for rank 4, else (B,Tq,Tv) with the heads axis added */
    const int64_t want4[4] = {a->b, a->h, a->tq, a->tv}, want3[3] = {a->b, a->tq, a->tv};
    const int64_t *want = m->nd == 4 ? want4 : want3;
    int wn = m->nd == 4 ? 4 : 3, ok = m->nd <= 4;
    for (int i = 0; ok && i < m->nd; i++) ok = m->dims[i] == want[wn - m->nd + i] || m->dims[i] == 1;
    if (!ok)
      return kl_failn("attention: mask of shape %s cannot be broadcast to (batch,Tq,Tv) = (%lld,%lld,%lld) "
                      "or (batch,heads,Tq,Tv) = (%lld,%lld,%lld,%lld)", KL_SHAPE(m), (long long)a->b, (long long)a->tq,
                      (long long)a->tv, (long long)a->b, (long long)a->h, (long long)a->tq, (long long)a->tv);
    if (wn == 4) kl_broadcast_strides(m, 4, want4, a->ms);
    else {
      int64_t s3[3];
      kl_broadcast_strides(m, 3, want3, s3);
      a->ms[0] = s3[0]; a->ms[1] = 0; a->ms[2] = s3[1]; a->ms[3] = s3[2];
    }
    a->mask = m;
  }
  a->scale = at->f[0] != 0 ? (float)at->f[0] : (float)(1.0 / sqrt((double)(a->k > 0 ? a->k : 1)));
  if (!(a->q = kl_tensor_contiguous(q)) || !(a->kk = kl_tensor_contiguous(k)) || !(a->vv = kl_tensor_contiguous(v))) {
    att_release(a);
    return -1;
  }
  return 0;
}

/* C (m,n) = alpha op(A) op(B) + beta C, row-major; nothing for an empty C, and
 * C scaled by beta when the inner size is 0 (sgemm would reject a 0 leading dimension). */
static void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) C[i * ldc + j] = beta == 0 ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  kl_sgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/* One row of scores to probabilities, in place: the mask bias, then a
 * max-subtracted softmax. m: the row's mask (stride ms) or NULL. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void softmax_row(float *s, const float *m, int64_t ms, int64_t n) {
  if (m) for (int64_t j = 0; j < n; j++) s[j] += (1.0f - m[j * ms]) * -1e9f;
  float mx = -INFINITY, sum = 0;
  /* NOTE: without `omp simd` the reductions stay scalar (float addition is not associative) */
  #pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
  /* below kl_exp's clamp the true value underflows to 0, as Keras's masked
   * entries do; written as `x < ...` so that a NaN stays NaN */
  #pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; j++) { float x = s[j] - mx; s[j] = x < -87.3f ? 0.0f : kl_exp(x); sum += s[j]; }
  float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; j++) s[j] *= inv;
}

/* dS = P ⊙ (dP − rowsum(dP ⊙ P)), in place over dP, row by row. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void softmax_grad(const float *p, float *d, int64_t rows, int64_t n) {
  for (int64_t i = 0; i < rows; i++, p += n, d += n) {
    float dot = 0;
    #pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < n; j++) dot += d[j] * p[j];
    for (int64_t j = 0; j < n; j++) d[j] = p[j] * (d[j] - dot);
  }
}

static int threads_for(const att_args *a) {
  return kl_threads_for(a->b * a->h * a->tq * a->tv * (a->k + a->v), a->b * a->h, PAR_WORK);
}

kl_tensor *op_attention_fwd(kl_tensor **in, int n, const kl_attrs *at) {
  att_args a;
  if (att_setup(in, n, at, &a) < 0) return NULL;
  const int64_t B = a.b, Tq = a.tq, Tv = a.tv, H = a.h, K = a.k, V = a.v;
  int64_t nctx = kl_numel_of(4, (int64_t[]){B, Tq, H, V}), nprob = kl_numel_of(4, (int64_t[]){B, H, Tq, Tv}), total;
  if (nctx == INT64_MAX || nprob == INT64_MAX || __builtin_add_overflow(nctx, nprob, &total) || total > KL_MAX_ELEMENTS) {
    att_release(&a);
    return kl_fail("attention: the output for query %s, key %s and value %s is too large", KL_SHAPE(in[0]), KL_SHAPE(in[1]), KL_SHAPE(in[2]));
  }
  kl_tensor *out = kl_tensor_empty(1, &total);
  if (!out) { att_release(&a); return NULL; }
  const float *Q = a.q->data, *Kd = a.kk->data, *Vd = a.vv->data, *M = a.mask ? a.mask->data : NULL;
  float *ctx = out->data, *probs = out->data + nctx;
  if (at->ints[0]) {   /* the context only: a view of the packed storage, which it keeps alive */
    kl_tensor *packed = out;
    out = kl_tensor_view(packed, 4, (int64_t[]){B, Tq, H, V}, (int64_t[]){Tq * H * V, H * V, V, 1}, 0);
    kl_tensor_release(packed);
    if (!out) { att_release(&a); return NULL; }
  }
  const float scale = a.scale;
  const int nth = threads_for(&a);
  int blas = nth > 1 ? kl_blas_single() : 1;
  #pragma omp parallel for schedule(static) num_threads(nth) if (nth > 1)
  for (int64_t bh = 0; bh < B * H; bh++) {
    const int64_t b = bh / H, h = bh % H;
    float *P = probs + bh * Tq * Tv;
    gemm(CblasNoTrans, CblasTrans, Tq, Tv, K, scale, Q + b * Tq * H * K + h * K, H * K,
         Kd + b * Tv * H * K + h * K, H * K, 0.0f, P, Tv);
    for (int64_t i = 0; i < Tq && Tv > 0; i++)
      softmax_row(P + i * Tv, M ? M + b * a.ms[0] + h * a.ms[1] + i * a.ms[2] : NULL, a.ms[3], Tv);
    gemm(CblasNoTrans, CblasNoTrans, Tq, V, Tv, 1.0f, P, Tv, Vd + b * Tv * H * V + h * V, H * V,
         0.0f, ctx + b * Tq * H * V + h * V, H * V);
  }
  kl_blas_restore(blas);
  att_release(&a);
  return out;
}

int op_attention_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *at, kl_tensor *g, kl_tensor **gin) {
  att_args a;
  if (att_setup(in, n, at, &a) < 0) return -1;
  const int64_t B = a.b, Tq = a.tq, Tv = a.tv, H = a.h, K = a.k, V = a.v, nctx = B * Tq * H * V;
  const int need_q = kl_need_grad(0), need_k = kl_need_grad(1), need_v = kl_need_grad(2);
  const int nth = threads_for(&a);
  kl_tensor *gc = kl_tensor_contiguous(g), *dq = NULL, *dk = NULL, *dv = NULL;
  float *scratch = NULL;
  int rc = -1;
  if (!gc) goto done;
  if (gc->count != out->count) { kl_failn("attention: gradient of shape %s for an output of shape %s", KL_SHAPE(g), KL_SHAPE(out)); goto done; }
  if ((need_q && !(dq = kl_tensor_empty(4, in[0]->dims))) || (need_k && !(dk = kl_tensor_empty(4, in[1]->dims))) ||
      (need_v && !(dv = kl_tensor_empty(4, in[2]->dims))))
    goto done;
  if (!(scratch = kl_scratch(B * H > 0 ? (size_t)(nth * Tq * Tv) : 1))) { kl_failn("attention: out of memory for %d x %lld x %lld floats of scratch", nth, (long long)Tq, (long long)Tv); goto done; }
  /* out->data starts the packed storage in both forms */
  const float *Q = a.q->data, *Kd = a.kk->data, *Vd = a.vv->data, *probs = out->data + nctx;
  const float *G = gc->data, *Gp = at->ints[0] ? NULL : gc->data + nctx;
  const float scale = a.scale;
  int blas = nth > 1 ? kl_blas_single() : 1;
  #pragma omp parallel for schedule(static) num_threads(nth) if (nth > 1)
  for (int64_t bh = 0; bh < B * H; bh++) {
    const int64_t b = bh / H, h = bh % H, qo = b * Tq * H * K + h * K, ko = b * Tv * H * K + h * K;
    const int64_t vo = b * Tv * H * V + h * V, oo = b * Tq * H * V + h * V;
    const float *P = probs + bh * Tq * Tv;
    float *dS = scratch + kl_thread_id() * Tq * Tv;
    if (need_v) gemm(CblasTrans, CblasNoTrans, Tv, V, Tq, 1.0f, P, Tv, G + oo, H * V, 0.0f, dv->data + vo, H * V);
    if (need_q || need_k) {
      if (Gp) memcpy(dS, Gp + bh * Tq * Tv, sizeof(float) * Tq * Tv);
      gemm(CblasNoTrans, CblasTrans, Tq, Tv, V, 1.0f, G + oo, H * V, Vd + vo, H * V, Gp ? 1.0f : 0.0f, dS, Tv);
      softmax_grad(P, dS, Tq, Tv);
      if (need_q) gemm(CblasNoTrans, CblasNoTrans, Tq, K, Tv, scale, dS, Tv, Kd + ko, H * K, 0.0f, dq->data + qo, H * K);
      if (need_k) gemm(CblasTrans, CblasNoTrans, Tv, K, Tq, scale, dS, Tv, Q + qo, H * K, 0.0f, dk->data + ko, H * K);
    }
  }
  kl_blas_restore(blas);
  kl_scratch_done();
  gin[0] = dq; gin[1] = dk; gin[2] = dv;
  dq = dk = dv = NULL;
  rc = 0;
done:
  kl_release_all(4, (kl_tensor *[]){gc, dq, dk, dv});
  att_release(&a);
  return rc;
}
