/* binary.c — elementwise ops of two (or three) tensors with NumPy
 * broadcasting. One driver walks the broadcast output row by row; each op
 * supplies only its scalar expression. Gradients may keep the broadcast
 * shape: the tape sums them back to each input's shape. */
#include "core.h"
#include <math.h>
#include <string.h>

typedef void (*row_fn)(const float *A, int64_t sa, const float *B, int64_t sb, float *O, int64_t n);

#define ROW_KERNEL(name, expr)                                                                     \
  __attribute__((target_clones("avx512f", "avx2", "default")))                                      \
  static void row_##name(const float *A, int64_t sa, const float *B, int64_t sb, float *O, int64_t n) { \
    if (sa == 1 && sb == 1) for (int64_t i = 0; i < n; i++) { float a = A[i], b = B[i]; O[i] = (expr); } \
    else if (sa == 1 && sb == 0) { float b = B[0]; for (int64_t i = 0; i < n; i++) { float a = A[i]; O[i] = (expr); } } \
    else if (sa == 0 && sb == 1) { float a = A[0]; for (int64_t i = 0; i < n; i++) { float b = B[i]; O[i] = (expr); } } \
    else for (int64_t i = 0; i < n; i++) { float a = A[i * sa], b = B[i * sb]; O[i] = (expr); }        \
  }

ROW_KERNEL(add, a + b)
ROW_KERNEL(sub, a - b)
ROW_KERNEL(mul, a * b)
ROW_KERNEL(div, a / b)
ROW_KERNEL(pow, powf(a, b))
ROW_KERNEL(maximum, a > b ? a : b)
ROW_KERNEL(minimum, a < b ? a : b)
ROW_KERNEL(mod, a - b * floorf(a / b))
ROW_KERNEL(equal, (float)(a == b))
ROW_KERNEL(not_equal, (float)(a != b))
ROW_KERNEL(less, (float)(a < b))
ROW_KERNEL(less_equal, (float)(a <= b))
ROW_KERNEL(greater, (float)(a > b))
ROW_KERNEL(greater_equal, (float)(a >= b))

/* Offsets of row r (all axes but the last) for each operand's strides. */
static void row_offsets(int64_t r, int nd, const int64_t *dims, int k, int64_t (*st)[KL_MAX_DIMS], int64_t *off) {
  for (int j = 0; j < k; j++) off[j] = 0;
  for (int i = nd - 2; i >= 0; i--) {
    int64_t idx = r % dims[i];
    r /= dims[i];
    for (int j = 0; j < k; j++) off[j] += idx * st[j][i];
  }
}

static kl_tensor *broadcast_apply(kl_tensor *a, kl_tensor *b, row_fn fn, const char *name) {
  int nd;
  int64_t dims[KL_MAX_DIMS];
  if (kl_broadcast_shape(a, b, &nd, dims, name) < 0) return NULL;
  kl_tensor *out = kl_tensor_empty(nd, dims);
  if (!out || !out->count) return out;
  if (a->contiguous && b->contiguous && (a->count == out->count || a->count == 1) && (b->count == out->count || b->count == 1)) {
    /* same shape or scalar operands: one flat loop in blocks */
    int64_t N = out->count, sa = a->count == 1 ? 0 : 1, sb = b->count == 1 ? 0 : 1, B = 4096;
    KL_PAR_FOR_W((N + B - 1) / B, N, blk,
      int64_t s = blk * B;
      fn(a->data + s * sa, sa, b->data + s * sb, sb, out->data + s, N - s < B ? N - s : B););
    return out;
  }
  int64_t st[2][KL_MAX_DIMS];
  kl_broadcast_strides(a, nd, dims, st[0]);
  kl_broadcast_strides(b, nd, dims, st[1]);
  int64_t inner = nd ? dims[nd - 1] : 1, rows = out->count / inner;
  KL_PAR_FOR_W(rows, out->count, r,
    int64_t off[2];
    row_offsets(r, nd, dims, 2, st, off);
    fn(a->data + off[0], nd ? st[0][nd - 1] : 0, b->data + off[1], nd ? st[1][nd - 1] : 0, out->data + r * inner, inner););
  return out;
}

#define BINARY_FWD(name)                                                   \
  kl_tensor *op_##name##_fwd(kl_tensor **in, int n, const kl_attrs *a) {    \
    return broadcast_apply(in[0], in[1], row_##name, #name);                \
  }
#define NO_GRAD(name)                                                                                        \
  int op_##name##_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) { \
    return 0;                                                                                                  \
  }

static kl_tensor *mul_by(kl_tensor *g, kl_tensor *f) { /* g * f, releasing f */
  if (!f) return NULL;
  kl_tensor *r = kl_call2(KL_OP_mul, g, f);
  kl_tensor_release(f);
  return r;
}

BINARY_FWD(add)
int op_add_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_tensor_retain(g); gin[0] = g;
  kl_tensor_retain(g); gin[1] = g;
  return 0;
}

BINARY_FWD(sub)
int op_sub_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_tensor_retain(g); gin[0] = g;
  if (kl_need_grad(1) && !(gin[1] = kl_call1(KL_OP_neg, g))) return -1;
  return 0;
}

BINARY_FWD(mul)
int op_mul_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  if (kl_need_grad(0) && !(gin[0] = kl_call2(KL_OP_mul, g, in[1]))) return -1;
  if (kl_need_grad(1) && !(gin[1] = kl_call2(KL_OP_mul, g, in[0]))) return -1;
  return 0;
}

BINARY_FWD(div)
int op_div_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  if (kl_need_grad(0) && !(gin[0] = kl_call2(KL_OP_div, g, in[1]))) return -1;
  if (kl_need_grad(1)) { /* d(a/b)/db = -out/b */
    kl_tensor *q = kl_call2(KL_OP_div, out, in[1]);
    kl_tensor *nq = q ? kl_call1(KL_OP_neg, q) : NULL;
    kl_tensor_release(q);
    if (!(gin[1] = mul_by(g, nq))) return -1;
  }
  return 0;
}

BINARY_FWD(pow)
int op_pow_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  if (kl_need_grad(0)) { /* b * a^(b-1) = b * out / a, written without the division so a = 0 works */
    kl_tensor *bm1 = kl_call(KL_OP_scale, in[1], NULL, NULL, &(kl_attrs){.f = {1.0, -1.0}});
    kl_tensor *p = bm1 ? kl_call2(KL_OP_pow, in[0], bm1) : NULL;
    kl_tensor *d = p ? kl_call2(KL_OP_mul, in[1], p) : NULL;
    kl_tensor_release(bm1); kl_tensor_release(p);
    if (!(gin[0] = mul_by(g, d))) return -1;
  }
  if (kl_need_grad(1)) { /* out * log(a), for a > 0 */
    kl_tensor *l = kl_call1(KL_OP_log, in[0]);
    kl_tensor *d = l ? kl_call2(KL_OP_mul, out, l) : NULL;
    kl_tensor_release(l);
    if (!(gin[1] = mul_by(g, d))) return -1;
  }
  return 0;
}

/* Ties send the gradient to the first operand, as TensorFlow does. */
static int select_bwd(kl_tensor **in, kl_tensor *g, kl_tensor **gin, int first_op, int second_op) {
  if (kl_need_grad(0) && !(gin[0] = mul_by(g, kl_call2(first_op, in[0], in[1])))) return -1;
  if (kl_need_grad(1) && !(gin[1] = mul_by(g, kl_call2(second_op, in[0], in[1])))) return -1;
  return 0;
}

BINARY_FWD(maximum)
int op_maximum_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return select_bwd(in, g, gin, KL_OP_greater_equal, KL_OP_less);
}

BINARY_FWD(minimum)
int op_minimum_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return select_bwd(in, g, gin, KL_OP_less_equal, KL_OP_greater);
}

/* a mod b = a - b floor(a/b): d/da = 1, d/db = -floor(a/b) */
BINARY_FWD(mod)
int op_mod_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_tensor_retain(g);
  gin[0] = g;
  if (kl_need_grad(1)) {
    kl_tensor *q = kl_call2(KL_OP_div, in[0], in[1]);
    kl_tensor *f = q ? kl_call1(KL_OP_floor, q) : NULL;
    kl_tensor *nf = f ? kl_call1(KL_OP_neg, f) : NULL;
    kl_tensor_release(q); kl_tensor_release(f);
    if (!(gin[1] = mul_by(g, nf))) return -1;
  }
  return 0;
}

BINARY_FWD(equal) NO_GRAD(equal)
BINARY_FWD(not_equal) NO_GRAD(not_equal)
BINARY_FWD(less) NO_GRAD(less)
BINARY_FWD(less_equal) NO_GRAD(less_equal)
BINARY_FWD(greater) NO_GRAD(greater)
BINARY_FWD(greater_equal) NO_GRAD(greater_equal)

/* where(cond, a, b): cond != 0 picks a. Three-way broadcast. */
kl_tensor *op_where_fwd(kl_tensor **in, int n, const kl_attrs *at) {
  int nd1, nd;
  int64_t d1[KL_MAX_DIMS], dims[KL_MAX_DIMS];
  if (kl_broadcast_shape(in[1], in[2], &nd1, d1, "where") < 0) return NULL;
  kl_tensor shape1 = {0};
  shape1.nd = nd1;
  memcpy(shape1.dims, d1, sizeof d1);
  if (kl_broadcast_shape(in[0], &shape1, &nd, dims, "where") < 0) return NULL;
  kl_tensor *out = kl_tensor_empty(nd, dims);
  if (!out || !out->count) return out;
  int64_t st[3][KL_MAX_DIMS];
  for (int j = 0; j < 3; j++) kl_broadcast_strides(in[j], nd, dims, st[j]);
  int64_t inner = nd ? dims[nd - 1] : 1, rows = out->count / inner;
  for (int64_t r = 0; r < rows; r++) {
    int64_t off[3];
    row_offsets(r, nd, dims, 3, st, off);
    const float *C = in[0]->data + off[0], *A = in[1]->data + off[1], *B = in[2]->data + off[2];
    int64_t sc = nd ? st[0][nd - 1] : 0, sa = nd ? st[1][nd - 1] : 0, sb = nd ? st[2][nd - 1] : 0;
    float *O = out->data + r * inner;
    for (int64_t i = 0; i < inner; i++) O[i] = C[i * sc] != 0 ? A[i * sa] : B[i * sb];
  }
  return out;
}
int op_where_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_tensor *zero = kl_scalar(0);
  if (!zero) return -1;
  if (kl_need_grad(1)) gin[1] = kl_call(KL_OP_where, in[0], g, zero, NULL);
  if (kl_need_grad(2)) gin[2] = kl_call(KL_OP_where, in[0], zero, g, NULL);
  kl_tensor_release(zero);
  return (kl_need_grad(1) && !gin[1]) || (kl_need_grad(2) && !gin[2]) ? -1 : 0;
}
