/* orthogonal.c — Q of a thin QR factorisation, for the Orthogonal initializer.
 * a: (m, n), m >= n  ->  q: (m, n) with orthonormal columns.
 * Modified Gram-Schmidt, run twice per column ("twice is enough") in double:
 * it yields the Q whose R has a positive diagonal, which is the Householder Q
 * times sign(diag(R)) that Keras computes. */
#include "core.h"
#include "kernels/orthogonal.h"
#include <math.h>
#include <stdlib.h>

kl_tensor *kl_orthonormal(kl_tensor *a) {
  if (!a || a->nd != 2 || a->dims[0] < a->dims[1])
    return kl_fail("orthogonal: expected a (m, n) matrix with m >= n, got %s", a ? KL_SHAPE(a) : "NULL");
  int64_t m = a->dims[0], n = a->dims[1];
  kl_tensor *ac = kl_tensor_contiguous(a);
  if (!ac) return NULL;
  double *q = malloc(sizeof(double) * (size_t)(m * n + 1));   /* column-major: q[j*m + i] */
  if (!q) { kl_tensor_release(ac); return kl_fail("orthogonal: out of memory for %s", KL_SHAPE(a)); }
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) q[j * m + i] = ac->data[i * n + j];
  kl_tensor_release(ac);
  for (int64_t j = 0; j < n; j++) {
    double *v = q + j * m;
    for (int pass = 0; pass < 2; pass++)
      for (int64_t k = 0; k < j; k++) {
        const double *u = q + k * m;
        double d = 0;
        for (int64_t i = 0; i < m; i++) d += u[i] * v[i];
        for (int64_t i = 0; i < m; i++) v[i] -= d * u[i];
      }
    double norm = 0;
    for (int64_t i = 0; i < m; i++) norm += v[i] * v[i];
    norm = sqrt(norm);
    if (norm < 1e-300) { free(q); return kl_fail("orthogonal: the random matrix is rank deficient"); }
    for (int64_t i = 0; i < m; i++) v[i] /= norm;
  }
  kl_tensor *out = kl_tensor_empty(2, (int64_t[]){m, n});
  if (out)
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) out->data[i * n + j] = (float)q[j * m + i];
  free(q);
  return out;
}
