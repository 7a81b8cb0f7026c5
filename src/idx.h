/* idx.h — IDX files, the format MNIST and Fashion-MNIST ship in (src/idx.c).
 *
 *   kl_tensor *x = kl_idx_read("train-images-idx3-ubyte.gz", 0);   // (N,28,28)
 */
#ifndef KL_IDX_H
#define KL_IDX_H
#include "klua.h"

/* KL_CDEF_BEGIN */
/* IDX files (the MNIST format), plain or gzip-compressed: magic 0x0000 08 nd,
 * nd big-endian uint32 sizes, then the bytes. Only dtype 0x08 (ubyte) is
 * supported; the result is a float tensor of the byte values. The sizes must
 * account for the file exactly. A file whose tensor would take more than
 * max_bytes (4 per element) fails before anything is inflated or allocated;
 * max_bytes <= 0 means the default, 1 GiB. */
kl_tensor *kl_idx_read(const char *path, int64_t max_bytes);
/* Writes t (integer values 0..255) as a ubyte IDX file; gzip != 0 compresses.
 * Atomic like kl_png_write. */
int kl_idx_write(const char *path, kl_tensor *t, int gzip);
/* KL_CDEF_END */

#define KL_IDX_DEFAULT_MAX_BYTES ((int64_t)1 << 30)

#endif
