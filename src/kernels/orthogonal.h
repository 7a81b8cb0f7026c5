/* orthogonal.h — the QR step of the Orthogonal initializer. */
#ifndef KL_ORTHOGONAL_H
#define KL_ORTHOGONAL_H
#include "klua.h"

/* KL_CDEF_BEGIN */
/* Q of the QR factorisation of a (m, n) matrix with m >= n, signed so that R's
 * diagonal is positive (Keras's Orthogonal initializer). New tensor or NULL. */
kl_tensor *kl_orthonormal(kl_tensor *a);
/* KL_CDEF_END */

#endif
