/* linear.c — the fused dense layer: y = act(x @ w + b) in one op.
 * x: (M, K) contiguous rows, w: (K, N), b: (N); ints[0] = activation
 * (0 linear, 1 relu, 2 sigmoid). The bias is written into the output and the
 * product added onto it by sgemm (beta = 1), the activation applied in place:
 * one pass over the output instead of three. The backward forms
 * gz = g * act'(y) once and derives dx, dw and db from it. */
#include "core.h"
#include "ops/scratch.h"
#include <cblas.h>
#include <string.h>

kl_tensor *op_linear_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *x = in[0], *w = in[1], *b = in[2];
  int act = a->nints > 0 ? (int)a->ints[0] : KL_ACT_LINEAR;
  if (act < KL_ACT_LINEAR || act > KL_ACT_SIGMOID) return kl_fail("linear: unknown activation code %d", act);
  if (x->nd != 2 || w->nd != 2 || b->nd != 1)
    return kl_fail("linear: expected x (M,K), w (K,N), b (N), got %s, %s, %s", KL_SHAPE(x), KL_SHAPE(w), KL_SHAPE(b));
  int64_t M = x->dims[0], K = x->dims[1], N = w->dims[1];
  if (w->dims[0] != K || b->dims[0] != N)
    return kl_fail("linear: shapes %s, %s and %s are incompatible", KL_SHAPE(x), KL_SHAPE(w), KL_SHAPE(b));
  kl_tensor *xc = kl_tensor_contiguous(x), *wc = kl_tensor_contiguous(w), *bc = kl_tensor_contiguous(b);
  kl_tensor *out = xc && wc && bc ? kl_tensor_empty(2, (int64_t[]){M, N}) : NULL;
  if (out && out->count) {
    for (int64_t r = 0; r < M; r++) memcpy(out->data + r * N, bc->data, sizeof(float) * N);
    if (K > 0) {
      if (M == 1) { /* a matrix-vector product; single-threaded for small weights */
        int saved = K * N >= 9216 && K * N < (2 << 20) ? kl_blas_single() : -1;
        kl_sgemv(CblasRowMajor, CblasTrans, (int)K, (int)N, 1.0f, wc->data, (int)N, xc->data, 1, 1.0f, out->data, 1);
        if (saved >= 0) kl_blas_restore(saved);
      } else {
        kl_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, xc->data, (int)K,
                    wc->data, (int)N, 1.0f, out->data, (int)N);
      }
    }
    kl_activate_all(out->data, out->count, act);
  }
  kl_tensor_release(xc); kl_tensor_release(wc); kl_tensor_release(bc);
  return out;
}

int op_linear_bwd(kl_tensor **in, int n, kl_tensor *y, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_tensor *gz = kl_activation_grad(g, y, a->nints > 0 ? (int)a->ints[0] : KL_ACT_LINEAR);
  if (!gz) return -1;
  kl_attrs tr = {0};
  tr.nints = 2;
  int rc = 0;
  if (kl_need_grad(2)) {   /* first, while gz is still in cache */
    kl_attrs s = {0};
    s.naxes = 1; s.axes[0] = 0;
    rc |= !(gin[2] = kl_call(KL_OP_sum, gz, NULL, NULL, &s));
  }
  if (!rc && kl_need_grad(0)) { tr.ints[0] = 0; tr.ints[1] = 1; rc |= !(gin[0] = kl_call(KL_OP_matmul, gz, in[1], NULL, &tr)); }
  if (!rc && kl_need_grad(1)) { tr.ints[0] = 1; tr.ints[1] = 0; rc |= !(gin[1] = kl_call(KL_OP_matmul, in[0], gz, NULL, &tr)); }
  kl_tensor_release(gz);
  return rc ? -1 : 0;
}
