/* shape.c — reshaping and indexing: views where they are free (reshape of a
 * contiguous tensor, transpose, slice, broadcast_to), copies otherwise
 * (concatenate, stack, take, one_hot). Index values are 0-based floats. */
#include "core.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kl_attrs ints_attrs(int n, const int64_t *v) {
  kl_attrs at = {0};
  at.nints = n;
  memcpy(at.ints, v, sizeof(int64_t) * n);
  return at;
}

/* ---- reshape: ints = new shape, one entry may be -1 ------------------ */
kl_tensor *op_reshape_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *x = in[0];
  int nd = a->nints, infer = -1;
  int64_t dims[KL_MAX_DIMS] = {0}, known = 1;
  if (nd > KL_MAX_DIMS) return kl_fail("reshape: rank %d is not supported", nd);
  for (int i = 0; i < nd; i++) {
    dims[i] = a->ints[i];
    if (dims[i] == -1) { if (infer >= 0) return kl_fail("reshape: only one dimension can be -1"); infer = i; }
    else if (dims[i] < 0) return kl_fail("reshape: dimension %lld is negative", (long long)dims[i]);
    else if (__builtin_mul_overflow(known, dims[i], &known)) goto bad;
  }
  if (infer >= 0) {
    if (known == 0 || x->count % known) goto bad;
    dims[infer] = x->count / known;
  }
  int64_t count;
  if (kl_shape_count(nd, dims, &count) < 0 || count != x->count) goto bad;
  kl_tensor *xc = kl_tensor_contiguous(x);
  if (!xc) return NULL;
  int64_t st[KL_MAX_DIMS];
  kl_contig_strides(nd, dims, st);
  kl_tensor *v = kl_tensor_view(xc, nd, dims, st, 0);
  kl_tensor_release(xc);
  return v;
bad:;
  char want[96] = "(";
  for (int i = 0; i < nd; i++) snprintf(want + strlen(want), sizeof want - strlen(want), i ? ",%lld" : "%lld", (long long)a->ints[i]);
  strncat(want, ")", sizeof want - strlen(want) - 1);
  return kl_fail("reshape: cannot reshape a tensor of shape %s (%lld elements) into %s", KL_SHAPE(x), (long long)x->count, want);
}
int op_reshape_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return (gin[0] = kl_reshape_to(g, in[0]->nd, in[0]->dims)) ? 0 : -1;
}

/* ---- transpose: ints = permutation (empty: reverse) ------------------ */
kl_tensor *op_transpose_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *x = in[0];
  int perm[KL_MAX_DIMS], seen[KL_MAX_DIMS] = {0};
  if (a->nints == 0) for (int i = 0; i < x->nd; i++) perm[i] = x->nd - 1 - i;
  else if (a->nints != x->nd) return kl_fail("transpose: permutation of length %d for a tensor of shape %s", a->nints, KL_SHAPE(x));
  else for (int i = 0; i < x->nd; i++) {
    int p = (int)a->ints[i];
    if (p < 0) p += x->nd;
    if (p < 0 || p >= x->nd || seen[p]) return kl_fail("transpose: invalid permutation for a tensor of shape %s", KL_SHAPE(x));
    seen[p] = 1;
    perm[i] = p;
  }
  int64_t dims[KL_MAX_DIMS], st[KL_MAX_DIMS];
  for (int i = 0; i < x->nd; i++) { dims[i] = x->dims[perm[i]]; st[i] = x->strides[perm[i]]; }
  return kl_tensor_view(x, x->nd, dims, st, 0);
}
int op_transpose_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  int nd = in[0]->nd;
  int64_t inv[KL_MAX_DIMS];
  for (int i = 0; i < nd; i++) {
    int p = a->nints ? (int)a->ints[i] : nd - 1 - i;
    if (p < 0) p += nd;
    inv[p] = i;
  }
  kl_attrs at = ints_attrs(nd, inv);
  return (gin[0] = kl_call(KL_OP_transpose, g, NULL, NULL, &at)) ? 0 : -1;
}

/* ---- slice: ints = axis, start, stop, step (0-based, stop exclusive) -- */
static int slice_args(const kl_tensor *x, const kl_attrs *a, int *axis, int64_t *start, int64_t *len, int64_t *step) {
  if (a->nints < 3) return kl_failn("slice: expects axis, start, stop");
  int ax = kl_norm_axis((int)a->ints[0], x->nd, "slice");
  if (ax < 0) return -1;
  int64_t d = x->dims[ax], s = a->ints[1], e = a->ints[2], st = a->nints > 3 ? a->ints[3] : 1;
  if (st <= 0) return kl_failn("slice: step must be positive, got %lld", (long long)st);
  if (s < 0) s += d;
  if (e < 0) e += d;
  if (s < 0) s = 0;
  if (e > d) e = d;
  if (s > d) s = d;
  /* A step past the axis takes at most one element; clamped, the stride and
   * the length below cannot overflow (a step of 2^62 was undefined behaviour). */
  if (st > d) st = d > 0 ? d : 1;
  *axis = ax; *start = s; *step = st;
  *len = e > s ? (e - s + st - 1) / st : 0;
  return 0;
}
kl_tensor *op_slice_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *x = in[0];
  int ax = 0; int64_t s = 0, len = 0, st = 1;
  if (slice_args(x, a, &ax, &s, &len, &st) < 0) return NULL;
  int64_t dims[KL_MAX_DIMS], strides[KL_MAX_DIMS];
  memcpy(dims, x->dims, sizeof dims);
  memcpy(strides, x->strides, sizeof strides);
  dims[ax] = len;
  strides[ax] *= st;
  return kl_tensor_view(x, x->nd, dims, strides, len ? s * x->strides[ax] : 0);
}
int op_slice_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_attrs u = *a;
  kl_tensor *x = in[0];
  if (u.nints < 4) { u.ints[3] = 1; }
  u.nints = 5 + x->nd;
  u.ints[4] = x->nd;
  memcpy(u.ints + 5, x->dims, sizeof(int64_t) * x->nd);
  return (gin[0] = kl_call(KL_OP__unslice, g, NULL, NULL, &u)) ? 0 : -1;
}

/* _unslice: zeros of the original shape with g written into the slice. A
 * slice that is one block of the output (the leading axis, step 1: e.g. a
 * packed op's first part) is copied in and only the rest zeroed; otherwise
 * the whole is zeroed and g copied in row by row. */
kl_tensor *op__unslice_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  int nd = (int)a->ints[4];
  if (a->nints != 5 + nd || nd < 1 || nd > KL_MAX_DIMS) return kl_fail("_unslice: bad attributes");
  kl_tensor *out = kl_tensor_empty(nd, a->ints + 5);
  if (!out) return NULL;
  kl_tensor *view = op_slice_fwd(&out, 1, a);
  if (!view) { kl_tensor_release(out); return NULL; }
  if (!kl_tensor_same_shape(view, in[0])) {
    kl_tensor_release(view); kl_tensor_release(out);
    return kl_fail("_unslice: gradient of shape %s does not match the slice", KL_SHAPE(in[0]));
  }
  kl_tensor *gc = kl_tensor_contiguous(in[0]);
  if (!gc) { kl_tensor_release(view); kl_tensor_release(out); return NULL; }
  if (view->contiguous && view->count) {
    int64_t lo = view->data - out->data, hi = lo + view->count;
    memset(out->data, 0, sizeof(float) * lo);
    memcpy(view->data, gc->data, sizeof(float) * view->count);
    memset(out->data + hi, 0, sizeof(float) * (out->count - hi));
  } else {
    memset(out->data, 0, sizeof(float) * out->count);
    /* copy gc into the strided view, a run along the last axis at a time */
    int vnd = view->nd;
    int64_t idx[KL_MAX_DIMS] = {0}, inner = view->dims[vnd - 1], s = view->strides[vnd - 1];
    const float *src = gc->data;
    for (int64_t o = 0; inner && o < gc->count / inner; o++) {
      int64_t off = 0;
      for (int d = 0; d < vnd - 1; d++) off += idx[d] * view->strides[d];
      float *dst = view->data + off;
      for (int64_t j = 0; j < inner; j++) dst[j * s] = src[j];
      src += inner;
      for (int d = vnd - 2; d >= 0; d--) { if (++idx[d] < view->dims[d]) break; idx[d] = 0; }
    }
  }
  kl_tensor_release(gc);
  kl_tensor_release(view);
  return out;
}
int op__unslice_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_attrs s = *a;
  s.nints = 4;
  return (gin[0] = kl_call(KL_OP_slice, g, NULL, NULL, &s)) ? 0 : -1;
}

/* ---- broadcast_to: ints = target shape (a stride-0 view) ------------- */
kl_tensor *op_broadcast_to_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *x = in[0];
  int nd = a->nints;
  if (nd < x->nd || nd > KL_MAX_DIMS) goto bad;
  for (int i = 0; i < x->nd; i++) {
    int64_t want = a->ints[nd - x->nd + i];
    if (x->dims[i] != want && x->dims[i] != 1) goto bad;
  }
  int64_t st[KL_MAX_DIMS];
  kl_broadcast_strides(x, nd, a->ints, st);
  return kl_tensor_view(x, nd, a->ints, st, 0);
bad:;
  kl_tensor want = {0};
  want.nd = nd > KL_MAX_DIMS ? KL_MAX_DIMS : nd;
  for (int i = 0; i < want.nd; i++) want.dims[i] = a->ints[i];
  return kl_fail("broadcast_to: cannot broadcast a tensor of shape %s to shape %s", KL_SHAPE(x), KL_SHAPE(&want));
}
int op_broadcast_to_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_tensor_retain(g); /* the tape sums it back to the input's shape */
  gin[0] = g;
  return 0;
}

/* ---- concatenate / stack along axes[0] ------------------------------- */
static kl_tensor *join(kl_tensor **in, int n, int axis_arg, int new_axis, const char *name) {
  kl_tensor *x0 = in[0];
  int rank = x0->nd + (new_axis ? 1 : 0);
  if (rank == 0) return kl_fail("%s: cannot join scalars", name);
  /* NOTE: stacking adds an axis, so rank-8 inputs would need dims[8]. */
  if (rank > KL_MAX_DIMS)
    return kl_fail("%s: the result would have rank %d; at most %d is supported (inputs of shape %s)", name, rank,
                   KL_MAX_DIMS, KL_SHAPE(x0));
  int ax = kl_norm_axis(axis_arg, rank, name);
  if (ax < 0) return NULL;
  int64_t dims[KL_MAX_DIMS], total = 0;
  for (int i = 0; i < n; i++) {
    kl_tensor *x = in[i];
    int ok = x->nd == x0->nd;
    for (int d = 0; ok && d < x0->nd; d++) ok = (!new_axis && d == ax) || x->dims[d] == x0->dims[d];
    if (!ok) return kl_fail("%s: input %d has shape %s, expected a shape like %s", name, i + 1, KL_SHAPE(x), KL_SHAPE(x0));
    if (__builtin_add_overflow(total, new_axis ? 1 : x->dims[ax], &total))
      return kl_fail("%s: the joined axis is too long", name);
  }
  for (int d = 0, s = 0; d < rank; d++) { if (d == ax) { dims[d] = total; if (!new_axis) s++; } else dims[d] = x0->dims[s++]; }
  kl_tensor *out = kl_tensor_empty(rank, dims);
  if (!out) return NULL;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; d++) outer *= dims[d];
  for (int d = ax + 1; d < rank; d++) inner *= dims[d];
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    kl_tensor *xc = kl_tensor_contiguous(in[i]);
    if (!xc) { kl_tensor_release(out); return NULL; }
    int64_t len = new_axis ? 1 : xc->dims[ax], chunk = len * inner;
    for (int64_t o = 0; o < outer; o++)
      memcpy(out->data + (o * total + off) * inner, xc->data + o * chunk, sizeof(float) * chunk);
    off += len;
    kl_tensor_release(xc);
  }
  return out;
}
static int join_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin, int new_axis) {
  int ax = kl_norm_axis(a->naxes > 0 ? a->axes[0] : 0, out->nd, "concatenate");
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    int64_t len = new_axis ? 1 : in[i]->dims[ax];
    kl_attrs s = ints_attrs(4, (int64_t[]){ax, off, off + len, 1});
    off += len;
    if (!kl_need_grad(i)) continue;
    kl_tensor *piece = kl_call(KL_OP_slice, g, NULL, NULL, &s);
    if (!piece) return -1;
    if (new_axis) { gin[i] = kl_reshape_to(piece, in[i]->nd, in[i]->dims); kl_tensor_release(piece); }
    else gin[i] = piece;
    if (!gin[i]) return -1;
  }
  return 0;
}
kl_tensor *op_concatenate_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  return join(in, n, a->naxes > 0 ? a->axes[0] : 0, 0, "concatenate");
}
int op_concatenate_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return join_bwd(in, n, out, a, g, gin, 0);
}
kl_tensor *op_stack_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  return join(in, n, a->naxes > 0 ? a->axes[0] : 0, 1, "stack");
}
int op_stack_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  return join_bwd(in, n, out, a, g, gin, 1);
}

/* ---- take / _scatter_add along axes[0] -------------------------------- */
/* out = x.shape[:ax] + idx.shape + x.shape[ax+1:] */
static int take_shape(const kl_tensor *x, const kl_tensor *idx, int ax, int64_t dim_at_ax, int64_t *dims, int *nd, const char *name) {
  int r = x->nd - 1 + idx->nd;
  if (r > KL_MAX_DIMS) return kl_failn("%s: result rank %d is too large", name, r);
  int k = 0;
  for (int d = 0; d < ax; d++) dims[k++] = x->dims[d];
  for (int d = 0; d < idx->nd; d++) dims[k++] = idx->dims[d];
  for (int d = ax + 1; d < x->nd; d++) dims[k++] = x->dims[d];
  *nd = k;
  (void)dim_at_ax;
  return 0;
}

static int64_t *read_indices(kl_tensor *idx, int64_t limit, const char *name) {
  kl_tensor *ic = kl_tensor_contiguous(idx);
  if (!ic) return NULL;
  int64_t *v = malloc(sizeof(int64_t) * (ic->count ? ic->count : 1));
  if (!v) { kl_tensor_release(ic); return kl_fail("%s: out of memory", name); }
  for (int64_t i = 0; i < ic->count; i++) {
    float f = ic->data[i];
    /* NOTE: test before converting: (int64_t) of NaN, inf or 1e30 is undefined behaviour. */
    if (f != floorf(f)) { free(v); kl_tensor_release(ic); return kl_fail("%s: index %g is not an integer", name, f); }
    if (!(fabsf(f) <= (float)limit)) {
      free(v); kl_tensor_release(ic);
      return kl_fail("%s: index %g is out of range for an axis of size %lld", name, f, (long long)limit);
    }
    int64_t j = (int64_t)f;
    if (j < 0) j += limit;
    if (j < 0 || j >= limit) { free(v); kl_tensor_release(ic); return kl_fail("%s: index %lld is out of range for an axis of size %lld", name, (long long)(int64_t)f, (long long)limit); }
    v[i] = j;
  }
  kl_tensor_release(ic);
  return v;
}

kl_tensor *op_take_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *x = in[0], *idx = in[1];
  if (x->nd == 0) return kl_fail("take: cannot index a scalar");
  int ax = kl_norm_axis(a->naxes > 0 ? a->axes[0] : 0, x->nd, "take");
  if (ax < 0) return NULL;
  int nd = 0;
  int64_t dims[KL_MAX_DIMS + KL_MAX_DIMS];
  if (take_shape(x, idx, ax, 0, dims, &nd, "take") < 0) return NULL;
  int64_t *iv = read_indices(idx, x->dims[ax], "take");
  if (!iv) return NULL;
  kl_tensor *xc = kl_tensor_contiguous(x), *out = xc ? kl_tensor_empty(nd, dims) : NULL;
  if (out) {
    int64_t outer = 1, inner = 1, D = x->dims[ax], m = idx->count;
    for (int d = 0; d < ax; d++) outer *= x->dims[d];
    for (int d = ax + 1; d < x->nd; d++) inner *= x->dims[d];
    /* one item per copied row: a batch gathered from a big dataset (outer = 1) is
     * latency-bound on the reads of its rows, which two threads overlap */
    KL_PAR_FOR_W(outer * m, out->count, oj,
      int64_t o = oj / m, j = oj % m;
      memcpy(out->data + oj * inner, xc->data + (o * D + iv[j]) * inner, sizeof(float) * inner););
  }
  kl_tensor_release(xc);
  free(iv);
  return out;
}
int op_take_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  int ax = kl_norm_axis(a->naxes > 0 ? a->axes[0] : 0, in[0]->nd, "take");
  kl_attrs s = *a;
  s.naxes = 1; s.axes[0] = ax;
  s.nints = 1; s.ints[0] = in[0]->dims[ax];
  return (gin[0] = kl_call(KL_OP__scatter_add, g, in[1], NULL, &s)) ? 0 : -1;
}

/* g has shape x.shape[:ax] + idx.shape + rest; rows are added into zeros of
 * x's shape (ints[0] = size of axis ax). Repeated indices accumulate. */
kl_tensor *op__scatter_add_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *g = in[0], *idx = in[1];
  int ax = a->axes[0];
  int64_t D = a->ints[0];
  int nd = g->nd - idx->nd + 1;
  if (nd < 1 || ax < 0 || ax >= nd) return kl_fail("_scatter_add: bad shapes %s and %s", KL_SHAPE(g), KL_SHAPE(idx));
  int64_t dims[KL_MAX_DIMS];
  int k = 0;
  for (int d = 0; d < ax; d++) dims[k++] = g->dims[d];
  dims[k++] = D;
  for (int d = ax + idx->nd; d < g->nd; d++) dims[k++] = g->dims[d];
  int64_t *iv = read_indices(idx, D, "_scatter_add");
  if (!iv) return NULL;
  kl_tensor *gc = kl_tensor_contiguous(g), *out = gc ? kl_tensor_zeros(nd, dims) : NULL;
  if (out) {
    int64_t outer = 1, inner = 1, m = idx->count;
    for (int d = 0; d < ax; d++) outer *= dims[d];
    for (int d = ax + 1; d < nd; d++) inner *= dims[d];
    for (int64_t o = 0; o < outer; o++)
      for (int64_t j = 0; j < m; j++) {
        float *dst = out->data + (o * D + iv[j]) * inner;
        const float *src = gc->data + (o * m + j) * inner;
        for (int64_t i = 0; i < inner; i++) dst[i] += src[i];
      }
  }
  kl_tensor_release(gc);
  free(iv);
  return out;
}
int op__scatter_add_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) {
  kl_attrs s = {0};
  s.naxes = 1; s.axes[0] = a->axes[0];
  return (gin[0] = kl_call(KL_OP_take, g, in[1], NULL, &s)) ? 0 : -1;
}

/* ---- one_hot: ints[0] = depth; out-of-range indices give a zero row --- */
kl_tensor *op_one_hot_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *idx = in[0];
  int64_t depth = a->nints > 0 ? a->ints[0] : 0;
  if (depth <= 0) return kl_fail("one_hot: depth must be positive, got %lld", (long long)depth);
  if (idx->nd + 1 > KL_MAX_DIMS) return kl_fail("one_hot: rank too large");
  int64_t dims[KL_MAX_DIMS];
  memcpy(dims, idx->dims, sizeof(int64_t) * idx->nd);
  dims[idx->nd] = depth;
  kl_tensor *ic = kl_tensor_contiguous(idx), *out = ic ? kl_tensor_zeros(idx->nd + 1, dims) : NULL;
  for (int64_t i = 0; out && i < ic->count; i++) {
    float f = ic->data[i];
    if (f >= 0 && f < depth && f == floorf(f)) out->data[i * depth + (int64_t)f] = 1.0f;
  }
  kl_tensor_release(ic);
  return out;
}
int op_one_hot_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *g, kl_tensor **gin) { return 0; }
