/* collective.c — all_reduce_sum: the sum of x over the processes of an MPI
 * job, differentiable, for BatchNormalization{synchronized = true}.
 *   all_reduce_sum(x) -> y, y = sum over processes p of x_p (every process gets y)
 * The gradient of a sum shared by every process is the sum of every process's
 * upstream gradient: dx_p = sum_q dy_q. f[0] = w_p > 0, this process's weight
 * when the optimizer will average the processes' gradients with weights
 * (klua.distribution's share of the batch): dx_p = (sum_q w_q dy_q) / w_p, so
 * that the weighted average is the gradient of the weighted loss.
 * The collective is the hook klua.distribution sets (collective.h); without
 * it (one process) the op is the identity. Every process must call the op the
 * same number of times, in the same order, with the same shape. */
#include "core.h"
#include "collective.h"
#include <string.h>

static kl_allreduce_fn allreduce;
static kl_message_fn allreduce_message;

void kl_set_allreduce(kl_allreduce_fn fn, kl_message_fn message_fn) {
  allreduce = fn;
  allreduce_message = message_fn;
}

/* A contiguous copy of x, summed over the processes (in place) and times s. */
static kl_tensor *summed(kl_tensor *x, double s, const char *what) {
  kl_tensor *y = kl_tensor_clone(x);
  if (!y) return NULL;
  if (s != 1.0) for (int64_t i = 0; i < y->count; i++) y->data[i] *= (float)s;
  if (allreduce && allreduce(y->data, y->count, 0, 0) < 0) {
    kl_tensor_release(y);
    return kl_fail("all_reduce_sum %s: %s", what, allreduce_message ? allreduce_message() : "MPI failed");
  }
  return y;
}

kl_tensor *op_all_reduce_sum_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  return summed(in[0], 1.0, "(forward)");
}

int op_all_reduce_sum_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  double w = a && a->f[0] > 0 ? a->f[0] : 1.0;
  kl_tensor *gw = w != 1.0 ? kl_mul_scalar(g, w) : (kl_tensor_retain(g), g);
  if (!gw) return -1;
  kl_attrs at;
  memset(&at, 0, sizeof at);
  at.f[0] = w;
  kl_tensor *s = kl_call(KL_OP_all_reduce_sum, gw, NULL, NULL, &at);   /* recorded: second derivatives */
  kl_release_all(1, &gw);
  if (s && w != 1.0) {
    kl_tensor *t = kl_mul_scalar(s, 1.0 / w);
    kl_tensor_release(s);
    s = t;
  }
  gin[0] = s;
  return s ? 0 : -1;
}
