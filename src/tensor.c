/* tensor.c — tensors and their storage: refcounting, views, the reuse pool,
 * memory counters, errors, creation helpers and in-place updates. */
#define _GNU_SOURCE
#include "core.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ---------------------------------------------------------- */
static __thread char err_buf[1024];

const char *kl_last_error(void) { return err_buf[0] ? err_buf : "unknown error"; }
void kl_clear_error(void) { err_buf[0] = 0; }
const char *kl_version(void) { return "klua 0.1.0"; }

static void vset_error(const char *fmt, va_list ap) { vsnprintf(err_buf, sizeof err_buf, fmt, ap); }
void *kl_fail(const char *fmt, ...) {
  va_list ap; va_start(ap, fmt); vset_error(fmt, ap); va_end(ap);
  return NULL;
}
int kl_failn(const char *fmt, ...) {
  va_list ap; va_start(ap, fmt); vset_error(fmt, ap); va_end(ap);
  return -1;
}

const char *kl_shape_str(const kl_tensor *t, char *buf, size_t n) {
  size_t k = 0;
  k += snprintf(buf + k, n - k, "(");
  for (int i = 0; i < t->nd && k < n; i++)
    k += snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)t->dims[i]);
  if (k < n) snprintf(buf + k, n - k, t->nd == 1 ? ",)" : ")"); /* NumPy spells a 1-d shape (3,) */
  return buf;
}

/* ---- storage and the reuse pool --------------------------------------
 * Training loops make the same temporaries every step. Freed storage goes
 * to a size-class pool (4 classes per power of two, so at most 25% slack)
 * and the next request of that class reuses it without calling malloc. */
struct kl_storage {
  int32_t refcount;
  int32_t size_class;
  int64_t capacity; /* floats allocated */
  int64_t size;     /* floats requested: views may reach only these */
  float *ptr;
  struct kl_storage *next_free;
};

/* The pool is bounded by bytes, not by count: between two collections a
 * training loop frees many buffers of one size class at once, and all of
 * them are wanted again in the next steps. */
enum { N_CLASSES = 4 * 48, POOL_MAX_PER_CLASS = 1 << 16 };
static const int64_t POOL_MAX_BYTES = 256ll << 20;
static kl_storage *pool_heads[N_CLASSES];
static int pool_counts[N_CLASSES];
static int64_t live_bytes, pool_bytes, alloc_count, tensor_count;
/* Bytes of tensor data asked for (sizes, not size classes: the rounding up is
 * never touched, so never resident) and the optional cap on them that
 * loaders set while a file's contents decide what gets allocated. */
static int64_t data_bytes, data_limit = -1;
static uint64_t next_id = 1;

/* Freed headers are kept for reuse too: an op makes one per output. */
enum { HEADER_CACHE = 4096 };
static kl_tensor *header_cache[HEADER_CACHE];
static int n_header_cache;

static kl_tensor *header_alloc(void) {
  if (n_header_cache) {
    kl_tensor *t = header_cache[--n_header_cache];
    memset(t, 0, sizeof *t);
    return t;
  }
  return calloc(1, sizeof(kl_tensor));
}

static void header_free(kl_tensor *t) {
  if (n_header_cache < HEADER_CACHE) header_cache[n_header_cache++] = t;
  else free(t);
}


int64_t kl_mem_live_bytes(void) { return live_bytes; }
int64_t kl_mem_pool_bytes(void) { return pool_bytes; }
int64_t kl_mem_alloc_count(void) { return alloc_count; }
int64_t kl_mem_tensor_count(void) { return tensor_count; }
int64_t kl_mem_data_bytes(void) { return data_bytes; }
int64_t kl_mem_set_limit(int64_t max_data_bytes) {
  int64_t old = data_limit;
  data_limit = max_data_bytes < 0 ? -1 : max_data_bytes;
  return old;
}

static int size_class_of(int64_t n, int64_t *capacity) {
  if (n < 16) n = 16;
  int k = 63 - __builtin_clzll((unsigned long long)n); /* 2^k <= n */
  int64_t base = 1ll << k, step = base / 4;
  int64_t j = (n - base + step - 1) / step;             /* 0..4 */
  if (j == 4) { k++; j = 0; base <<= 1; step <<= 1; }
  *capacity = base + j * step;
  return 4 * k + (int)j;
}

static kl_storage *storage_new(int64_t n) {
  if (data_limit >= 0 && n * 4 > data_limit - data_bytes)
    return kl_fail("tensor: allocating %lld floats (%lld bytes) would exceed the memory limit of %lld bytes "
                   "(%lld in use)", (long long)n, (long long)n * 4, (long long)data_limit, (long long)data_bytes);
  int64_t cap;
  int cls = size_class_of(n, &cap);
  kl_storage *s = pool_heads[cls];
  if (s) {
    pool_heads[cls] = s->next_free;
    pool_counts[cls]--;
    pool_bytes -= s->capacity * 4;
  } else {
    s = malloc(sizeof *s);
    if (!s) return kl_fail("out of memory allocating a tensor header");
    size_t bytes = ((size_t)cap * 4 + 63) & ~(size_t)63;
    s->ptr = aligned_alloc(64, bytes);
    if (!s->ptr) { free(s); return kl_fail("tensor: out of memory allocating %lld floats (%.1f GiB)", (long long)n, n * 4.0 / (1 << 30)); }
    s->capacity = cap;
    s->size_class = cls;
    alloc_count++;
  }
  s->refcount = 1;
  s->size = n;
  s->next_free = NULL;
  live_bytes += s->capacity * 4;
  data_bytes += n * 4;
  return s;
}

static void storage_release(kl_storage *s) {
  if (--s->refcount > 0) return;
  live_bytes -= s->capacity * 4;
  data_bytes -= s->size * 4;
  int cls = s->size_class;
  if (cls < N_CLASSES && pool_counts[cls] < POOL_MAX_PER_CLASS && pool_bytes + s->capacity * 4 <= POOL_MAX_BYTES) {
    s->next_free = pool_heads[cls];
    pool_heads[cls] = s;
    pool_counts[cls]++;
    pool_bytes += s->capacity * 4;
    return;
  }
  free(s->ptr);
  free(s);
}

void kl_mem_trim(void) {
  while (n_header_cache) free(header_cache[--n_header_cache]);
  for (int c = 0; c < N_CLASSES; c++) {
    while (pool_heads[c]) {
      kl_storage *s = pool_heads[c];
      pool_heads[c] = s->next_free;
      free(s->ptr);
      free(s);
    }
    pool_counts[c] = 0;
  }
  pool_bytes = 0;
}

/* ---- shapes ---------------------------------------------------------- */
/* NOTE: shapes come from files and users ({0, 1e12, 1e12} is a valid empty
 * shape), so every product of sizes here is overflow-checked: a size
 * computation that wraps is undefined behaviour and then a short buffer. */
int kl_shape_count(int nd, const int64_t *dims, int64_t *count) {
  int64_t n = 1;
  int zero = 0;
  if (nd < 0 || nd > KL_MAX_DIMS) return -1;
  for (int i = 0; i < nd; i++) {
    if (dims[i] < 0) return -1;
    if (dims[i] == 0) { zero = 1; continue; }
    if (n > KL_MAX_ELEMENTS / dims[i]) return -1;   /* the sizes other than 0 count too, as NumPy's */
    n *= dims[i];
  }
  if (count) *count = zero ? 0 : n;
  return 0;
}

int64_t kl_numel_of(int nd, const int64_t *dims) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++)
    if (dims[i] < 0 || __builtin_mul_overflow(n, dims[i], &n)) return INT64_MAX;   /* saturates: no real count matches */
  return n;
}

void kl_contig_strides(int nd, const int64_t *dims, int64_t *stride) {
  int64_t s = 1;
  for (int i = nd - 1; i >= 0; i--) {
    stride[i] = s;
    if (__builtin_mul_overflow(s, dims[i], &s)) s = INT64_MAX;   /* callers check the shape with kl_shape_count */
  }
}

static int is_contiguous(const kl_tensor *t) {
  int64_t s = 1;
  for (int i = t->nd - 1; i >= 0; i--) {
    if (t->dims[i] != 1 && t->strides[i] != s) return 0;
    s *= t->dims[i];
  }
  return 1;
}

int kl_norm_axis(int axis, int nd, const char *op) {
  int a = axis < 0 ? axis + nd : axis;
  if (a < 0 || a >= nd) return kl_failn("%s: axis %d is out of range for a tensor of rank %d", op, axis, nd);
  return a;
}

int kl_broadcast_shape(const kl_tensor *a, const kl_tensor *b, int *nd, int64_t *dims, const char *op) {
  int n = a->nd > b->nd ? a->nd : b->nd;
  for (int i = 0; i < n; i++) {
    int ia = a->nd - n + i, ib = b->nd - n + i;
    int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
    if (da != db && da != 1 && db != 1)
      return kl_failn("%s: shapes %s and %s cannot be broadcast together", op, KL_SHAPE(a), KL_SHAPE(b));
    dims[i] = da == 1 ? db : da;
  }
  *nd = n;
  return 0;
}

void kl_broadcast_strides(const kl_tensor *t, int nd, const int64_t *dims, int64_t *stride) {
  for (int i = 0; i < nd; i++) {
    int it = t->nd - nd + i;
    stride[i] = (it < 0 || t->dims[it] == 1) ? 0 : t->strides[it];
  }
}

int kl_tensor_same_shape(const kl_tensor *a, const kl_tensor *b) {
  if (a->nd != b->nd) return 0;
  for (int i = 0; i < a->nd; i++) if (a->dims[i] != b->dims[i]) return 0;
  return 1;
}

/* ---- tensors --------------------------------------------------------- */
static kl_tensor *header_new(int nd, const int64_t *dims) {
  if (nd < 0 || nd > KL_MAX_DIMS) return kl_fail("tensor: rank %d is not supported (0..%d)", nd, KL_MAX_DIMS);
  for (int i = 0; i < nd; i++)
    if (dims[i] < 0) return kl_fail("tensor: dimension %d is negative (%lld)", i + 1, (long long)dims[i]);
  int64_t n;
  if (kl_shape_count(nd, dims, &n) < 0) {
    kl_tensor shown = {.nd = nd};
    memcpy(shown.dims, dims, sizeof(int64_t) * nd);
    return kl_fail("tensor: shape %s is too large (at most 2^40 elements, counting every size but 0)", KL_SHAPE(&shown));
  }
  kl_tensor *t = header_alloc();
  if (!t) return kl_fail("out of memory allocating a tensor header");
  t->refcount = 1;
  t->nd = nd;
  if (nd) memcpy(t->dims, dims, sizeof(int64_t) * nd);
  kl_contig_strides(nd, dims, t->strides);
  t->count = n;
  t->contiguous = 1;
  t->id = next_id++;
  tensor_count++;
  return t;
}

kl_tensor *kl_tensor_empty(int nd, const int64_t *dims) {
  kl_tensor *t = header_new(nd, dims);
  if (!t) return NULL;
  t->storage = storage_new(t->count);
  if (!t->storage) { header_free(t); tensor_count--; return NULL; }
  t->data = t->storage->ptr;
  return t;
}

kl_tensor *kl_tensor_zeros(int nd, const int64_t *dims) {
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (t) memset(t->data, 0, sizeof(float) * t->count);
  return t;
}

kl_tensor *kl_tensor_full(int nd, const int64_t *dims, double v) {
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (!t) return NULL;
  float f = (float)v;
  for (int64_t i = 0; i < t->count; i++) t->data[i] = f;
  return t;
}

kl_tensor *kl_tensor_from_data(int nd, const int64_t *dims, const float *data) {
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (t && t->count) memcpy(t->data, data, sizeof(float) * t->count);
  return t;
}

kl_tensor *kl_tensor_from_doubles(int nd, const int64_t *dims, const double *data) {
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (t) for (int64_t i = 0; i < t->count; i++) t->data[i] = (float)data[i];
  return t;
}

kl_tensor *kl_tensor_from_bytes(int nd, const int64_t *dims, const uint8_t *data) {
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (t) for (int64_t i = 0; i < t->count; i++) t->data[i] = (float)data[i];
  return t;
}

kl_tensor *kl_tensor_view(kl_tensor *base, int nd, const int64_t *dims, const int64_t *stride, int64_t offset) {
  kl_tensor *t = header_new(nd, dims);
  if (!t) return NULL;
  /* A view may only reach elements of its base's storage. */
  int64_t lo = offset, hi = offset;
  for (int i = 0; i < nd; i++) {
    if (dims[i] == 0) { lo = hi = offset; break; }
    int64_t span = stride[i] * (dims[i] - 1);
    if (span < 0) lo += span; else hi += span;
  }
  int64_t start = base->data - base->storage->ptr;
  if (t->count && (start + lo < 0 || start + hi >= base->storage->size)) {
    header_free(t); tensor_count--;
    return kl_fail("view: the requested view reaches outside its tensor's storage");
  }
  memcpy(t->strides, stride, sizeof(int64_t) * nd);
  t->storage = base->storage;
  t->storage->refcount++;
  t->data = base->data + offset;
  t->contiguous = is_contiguous(t);
  return t;
}

void kl_tensor_retain(kl_tensor *t) { if (t) t->refcount++; }

void kl_tensor_release(kl_tensor *t) {
  if (!t || --t->refcount > 0) return;
  if (t->storage) storage_release(t->storage);
  tensor_count--;
  header_free(t);
}

void kl_handle_release(kl_handle *h) {
  if (h && h->p) { kl_tensor_release(h->p); h->p = NULL; }
}

void kl_release_all(int n, kl_tensor **ts) {
  for (int i = 0; i < n; i++) kl_tensor_release(ts[i]);
}

/* Visit every element of t in row-major order, calling body with a pointer. */
static void strided_copy(const kl_tensor *t, float *out) {
  int64_t idx[KL_MAX_DIMS] = {0};
  int nd = t->nd;
  if (nd == 0) { out[0] = t->data[0]; return; }
  int64_t inner = t->dims[nd - 1], s = t->strides[nd - 1];
  int64_t outer = t->count / (inner ? inner : 1);
  for (int64_t o = 0; o < outer && inner; o++) {
    int64_t off = 0;
    for (int i = 0; i < nd - 1; i++) off += idx[i] * t->strides[i];
    const float *p = t->data + off;
    if (s == 1) memcpy(out, p, sizeof(float) * inner);
    else if (s == 0) { float v = p[0]; for (int64_t j = 0; j < inner; j++) out[j] = v; }   /* a broadcast axis */
    else for (int64_t j = 0; j < inner; j++) out[j] = p[j * s];
    out += inner;
    for (int i = nd - 2; i >= 0; i--) { if (++idx[i] < t->dims[i]) break; idx[i] = 0; }
  }
}

int kl_tensor_copy_to(kl_tensor *t, float *out) {
  if (t->contiguous) memcpy(out, t->data, sizeof(float) * t->count);
  else strided_copy(t, out);
  return 0;
}

kl_tensor *kl_tensor_clone(kl_tensor *t) {
  kl_tensor *c = kl_tensor_empty(t->nd, t->dims);
  if (c) kl_tensor_copy_to(t, c->data);
  return c;
}

kl_tensor *kl_tensor_contiguous(kl_tensor *t) {
  if (t->contiguous) { t->refcount++; return t; }
  return kl_tensor_clone(t);
}

kl_tensor *kl_arange(double start, double stop, double step) {
  if (step == 0 || !isfinite(start) || !isfinite(stop) || !isfinite(step)) return kl_fail("arange: step must be non-zero and bounds finite");
  double n = ceil((stop - start) / step);
  if (n < 0) n = 0;
  if (n > 1e10) return kl_fail("arange: %.0f elements is too many", n);
  int64_t dims[1] = {(int64_t)n};
  kl_tensor *t = kl_tensor_empty(1, dims);
  if (t) for (int64_t i = 0; i < dims[0]; i++) t->data[i] = (float)(start + i * step);
  return t;
}

kl_tensor *kl_linspace(double start, double stop, int64_t num) {
  if (num < 0) return kl_fail("linspace: num must be >= 0, got %lld", (long long)num);
  kl_tensor *t = kl_tensor_empty(1, &num);
  if (!t) return NULL;
  for (int64_t i = 0; i < num; i++)
    t->data[i] = num == 1 ? (float)start : (float)(start + (stop - start) * (double)i / (double)(num - 1));
  return t;
}

kl_tensor *kl_eye(int64_t n, int64_t m) {
  if (m <= 0) m = n;
  int64_t dims[2] = {n, m};
  kl_tensor *t = kl_tensor_zeros(2, dims);
  if (t) for (int64_t i = 0; i < n && i < m; i++) t->data[i * m + i] = 1;
  return t;
}

/* ---- in-place updates ------------------------------------------------ */
int kl_assign(kl_tensor *dst, kl_tensor *src, int mode) {
  static const char *names[] = {"assign", "assign_add", "assign_sub"};
  if (mode < 0 || mode > 2) return kl_failn("assign: unknown mode %d", mode);
  if (!dst->contiguous) return kl_failn("%s: the target must be contiguous", names[mode]);
  int nd; int64_t dims[KL_MAX_DIMS];
  if (kl_broadcast_shape(dst, src, &nd, dims, names[mode]) < 0 || nd != dst->nd || kl_numel_of(nd, dims) != dst->count)
    return kl_failn("%s: value of shape %s does not fit a variable of shape %s", names[mode], KL_SHAPE(src), KL_SHAPE(dst));
  float *d = dst->data;
  if (kl_tensor_same_shape(dst, src) && src->contiguous) {
    const float *s = src->data;
    int64_t n = dst->count;
    if (mode == 0) memmove(d, s, sizeof(float) * n);
    else if (mode == 1) KL_PAR_FOR(n, i, d[i] += s[i];);
    else KL_PAR_FOR(n, i, d[i] -= s[i];);
    return 0;
  }
  kl_tensor *b = kl_tensor_empty(dst->nd, dst->dims); /* src broadcast into a scratch copy */
  if (!b) return -1;
  int64_t st[KL_MAX_DIMS];
  kl_broadcast_strides(src, nd, dims, st);
  kl_tensor view = *src;
  view.nd = nd; memcpy(view.dims, dims, sizeof dims); memcpy(view.strides, st, sizeof st); view.count = dst->count;
  strided_copy(&view, b->data);
  for (int64_t i = 0; i < dst->count; i++) d[i] = mode == 0 ? b->data[i] : mode == 1 ? d[i] + b->data[i] : d[i] - b->data[i];
  kl_tensor_release(b);
  return 0;
}

int kl_fill(kl_tensor *dst, double value) {
  if (!dst->contiguous) return kl_failn("fill: the target must be contiguous");
  float v = (float)value;
  for (int64_t i = 0; i < dst->count; i++) dst->data[i] = v;
  return 0;
}

double kl_sum_all(kl_tensor *t) {
  kl_tensor *c = kl_tensor_contiguous(t);
  if (!c) return NAN;
  double s = 0;
  for (int64_t i = 0; i < c->count; i++) s += c->data[i];
  kl_tensor_release(c);
  return s;
}

double kl_sumsq_all(kl_tensor *t) {
  kl_tensor *c = kl_tensor_contiguous(t);
  if (!c) return NAN;
  double s = 0;
  for (int64_t i = 0; i < c->count; i++) s += (double)c->data[i] * c->data[i];
  kl_tensor_release(c);
  return s;
}
