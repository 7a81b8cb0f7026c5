/* matmul.c — (batched) matrix products through cblas_sgemm.
 * a: (..., m, k) or, with ints[0], (..., k, m) used transposed;
 * b: (..., k, n) or, with ints[1], (..., n, k); batch axes broadcast.
 * A transposed view is passed to BLAS as a transpose flag, never copied. */
#include "core.h"
#include "ops/scratch.h"
#include <cblas.h>
#include <string.h>

typedef struct mat { const float *p; int64_t rows, cols, ld; int trans; } mat;

/* Describe the last two axes of t (optionally transposed) for BLAS, or fail
 * if they are not a plain row- or column-major block. */
static int as_blas(const kl_tensor *t, int transpose, mat *m) {
  int nd = t->nd;
  int64_t r = t->dims[nd - 2], c = t->dims[nd - 1], sr = t->strides[nd - 2], sc = t->strides[nd - 1];
  if ((sc == 1 || c == 1) && sr >= (c > 1 ? c : 1)) { m->ld = sr > 0 ? sr : 1; m->trans = 0; }
  else if ((sr == 1 || r == 1) && sc >= (r > 1 ? r : 1)) { m->ld = sc > 0 ? sc : 1; m->trans = 1; }
  else return 0;
  if (m->trans == 0 && m->ld < c) m->ld = c;
  if (m->trans == 1 && m->ld < r) m->ld = r;
  m->rows = transpose ? c : r;
  m->cols = transpose ? r : c;
  m->trans ^= transpose;
  return 1;
}

kl_tensor *op_matmul_fwd(kl_tensor **in, int n, const kl_attrs *at) {
  kl_tensor *a = in[0], *b = in[1];
  int ta = at->nints > 0 && at->ints[0], tb = at->nints > 1 && at->ints[1];
  if (a->nd < 2 || b->nd < 2) return kl_fail("matmul: expects tensors of rank >= 2, got %s and %s", KL_SHAPE(a), KL_SHAPE(b));
  int64_t m = a->dims[a->nd - (ta ? 1 : 2)], k = a->dims[a->nd - (ta ? 2 : 1)];
  int64_t kb = b->dims[b->nd - (tb ? 1 : 2)], nn = b->dims[b->nd - (tb ? 2 : 1)];
  if (k != kb) return kl_fail("matmul: shapes %s and %s are incompatible", KL_SHAPE(a), KL_SHAPE(b));
  /* broadcast batch axes */
  kl_tensor ba = *a, bb = *b;
  ba.nd = a->nd - 2; bb.nd = b->nd - 2;
  int bnd = 0;
  int64_t bdims[KL_MAX_DIMS + 2];
  if (kl_broadcast_shape(&ba, &bb, &bnd, bdims, "matmul") < 0)
    return kl_fail("matmul: batch axes of %s and %s cannot be broadcast together", KL_SHAPE(a), KL_SHAPE(b));
  bdims[bnd] = m; bdims[bnd + 1] = nn;
  kl_tensor *out = kl_tensor_empty(bnd + 2, bdims);
  if (!out) return NULL;
  if (!out->count) return out;
  kl_tensor *ac = NULL, *bc = NULL;
  mat A, B;
  if (!as_blas(a, ta, &A)) { ac = kl_tensor_clone(a); if (!ac) goto fail; as_blas(ac, ta, &A); a = ac; }
  if (!as_blas(b, tb, &B)) { bc = kl_tensor_clone(b); if (!bc) goto fail; as_blas(bc, tb, &B); b = bc; }
  int64_t batch = kl_numel_of(bnd, bdims);
  if (k == 0) { memset(out->data, 0, sizeof(float) * out->count); goto done; }
  if (m == 1 && batch == 1) {
    /* one row: a matrix-vector product, single-threaded below ~2M weights
     * (waking a second thread costs more than it saves there) */
    int saved = k * nn >= 9216 && k * nn < (2 << 20) ? kl_blas_single() : -1;
    int incx = A.trans ? (int)A.ld : 1;
    if (B.trans) kl_sgemv(CblasRowMajor, CblasNoTrans, (int)nn, (int)k, 1.0f, b->data, (int)B.ld, a->data, incx, 0.0f, out->data, 1);
    else kl_sgemv(CblasRowMajor, CblasTrans, (int)k, (int)nn, 1.0f, b->data, (int)B.ld, a->data, incx, 0.0f, out->data, 1);
    if (saved >= 0) kl_blas_restore(saved);
    goto done;
  }
  int64_t b_batch = kl_numel_of(b->nd - 2, b->dims);
  if (b_batch == 1 && !A.trans && a->contiguous && batch == kl_numel_of(a->nd - 2, a->dims)) {
    /* (batch*m, k) @ (k, n): one product for all batches */
    kl_sgemm(CblasRowMajor, CblasNoTrans, B.trans ? CblasTrans : CblasNoTrans, (int)(batch * m), (int)nn, (int)k, 1.0f,
                a->data, (int)A.ld, b->data, (int)B.ld, 0.0f, out->data, (int)nn);
    goto done;
  }
  int64_t sa[KL_MAX_DIMS], sb[KL_MAX_DIMS];
  {
    kl_tensor ha = *a, hb = *b;
    ha.nd = a->nd - 2; hb.nd = b->nd - 2;
    kl_broadcast_strides(&ha, bnd, bdims, sa);
    kl_broadcast_strides(&hb, bnd, bdims, sb);
  }
  for (int64_t i = 0; i < batch; i++) {
    int64_t r = i, oa = 0, ob = 0;
    for (int d = bnd - 1; d >= 0; d--) { int64_t idx = r % bdims[d]; r /= bdims[d]; oa += idx * sa[d]; ob += idx * sb[d]; }
    kl_sgemm(CblasRowMajor, A.trans ? CblasTrans : CblasNoTrans, B.trans ? CblasTrans : CblasNoTrans, (int)m, (int)nn, (int)k,
                1.0f, a->data + oa, (int)A.ld, b->data + ob, (int)B.ld, 0.0f, out->data + i * m * nn, (int)nn);
  }
done:
  kl_tensor_release(ac);
  kl_tensor_release(bc);
  return out;
fail:
  kl_tensor_release(out);
  kl_tensor_release(ac);
  kl_tensor_release(bc);
  return NULL;
}

static kl_tensor *mm(kl_tensor *x, kl_tensor *y, int tx, int ty) {
  kl_attrs at = {0};
  at.nints = 2; at.ints[0] = tx; at.ints[1] = ty;
  return kl_call(KL_OP_matmul, x, y, NULL, &at);
}

/* C = op(A) op(B):  dA = g op(B)^T (transposed back if A was), dB likewise. */
int op_matmul_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *at, kl_tensor *g, kl_tensor **gin) {
  kl_tensor *a = in[0], *b = in[1];
  int ta = at->nints > 0 && at->ints[0], tb = at->nints > 1 && at->ints[1];
  if (kl_need_grad(0)) {
    gin[0] = ta ? (tb ? mm(b, g, 1, 1) : mm(b, g, 0, 1)) : (tb ? mm(g, b, 0, 0) : mm(g, b, 0, 1));
    if (!gin[0]) return -1;
  }
  if (kl_need_grad(1)) {
    kl_tensor *a2 = a, *g2 = g;
    if (b->nd == 2 && a->nd > 2 && !ta) {
      /* a weight shared over batches: fold batches into rows, one product */
      int64_t k = a->dims[a->nd - 1], nn = g->dims[g->nd - 1];
      a2 = kl_reshape_to(a, 2, (int64_t[]){a->count / (k ? k : 1), k});
      g2 = kl_reshape_to(g, 2, (int64_t[]){g->count / (nn ? nn : 1), nn});
      if (!a2 || !g2) { kl_tensor_release(a2); kl_tensor_release(g2); return -1; }
    }
    gin[1] = ta ? (tb ? mm(g2, a2, 1, 1) : mm(a2, g2, 0, 0)) : (tb ? mm(g2, a2, 1, 0) : mm(a2, g2, 1, 0));
    if (a2 != a) { kl_tensor_release(a2); kl_tensor_release(g2); }
    if (!gin[1]) return -1;
  }
  return 0;
}
