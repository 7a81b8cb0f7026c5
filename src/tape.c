/* tape.c — the op registry's dispatcher and the reverse-mode tape.
 *
 * Every op call goes through kl_op: the forward runs, then each recording
 * tape that tracks one of the inputs appends a node (op, inputs, output,
 * attrs). tape_gradient walks the nodes backwards, calling each op's backward
 * and summing broadcast gradients back to their input's shape in one place.
 * Node arrays are kept between steps (kl_tape_reset keeps capacity). */
#include "core.h"
#include "debug.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const kl_opdef registry[KL_OP_COUNT] = {
#define KL_OP(name, arity, diff) {#name, arity, diff, op_##name##_fwd, op_##name##_bwd},
#include "ops.def"
#undef KL_OP
};

int kl_op_count(void) { return KL_OP_COUNT; }
const char *kl_op_name(int op) { return op >= 0 && op < KL_OP_COUNT ? registry[op].name : NULL; }
int kl_op_arity(int op) { return op >= 0 && op < KL_OP_COUNT ? registry[op].arity : 0; }
int kl_op_differentiable(int op) { return op >= 0 && op < KL_OP_COUNT ? registry[op].differentiable : 0; }
int kl_op_lookup(const char *name) {
  for (int i = 0; i < KL_OP_COUNT; i++)
    if (strcmp(registry[i].name, name) == 0) return i;
  return -1;
}

/* ---- tapes ----------------------------------------------------------- */
typedef struct node {
  int op, n;
  kl_tensor *in_small[3];
  kl_tensor **in;
  kl_tensor *out;
  kl_attrs attrs;
} node;

typedef struct idset { uint64_t *keys; int64_t cap, n; } idset;

struct kl_tape {
  int persistent, recording, spent;
  node *nodes;
  int64_t n, cap;
  idset tracked;
};

enum { MAX_ACTIVE = 64 };
static kl_tape *active[MAX_ACTIVE];
static int n_active, pause_depth;

static uint64_t mix(uint64_t x) { x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; return x; }

static int idset_has(const idset *s, uint64_t id) {
  if (!s->cap) return 0;
  for (int64_t i = mix(id) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
    if (s->keys[i] == id) return 1;
    if (!s->keys[i]) return 0;
  }
}

static int idset_add(idset *s, uint64_t id) {
  if ((s->n + 1) * 2 > s->cap) {
    int64_t cap = s->cap ? s->cap * 2 : 64;
    uint64_t *keys = calloc(cap, sizeof *keys);
    if (!keys) return kl_failn("tape: out of memory");
    for (int64_t i = 0; i < s->cap; i++) {
      if (!s->keys[i]) continue;
      int64_t j = mix(s->keys[i]) & (cap - 1);
      while (keys[j]) j = (j + 1) & (cap - 1);
      keys[j] = s->keys[i];
    }
    free(s->keys);
    s->keys = keys;
    s->cap = cap;
  }
  int64_t i = mix(id) & (s->cap - 1);
  while (s->keys[i] && s->keys[i] != id) i = (i + 1) & (s->cap - 1);
  if (!s->keys[i]) { s->keys[i] = id; s->n++; }
  return 0;
}

static void idset_clear(idset *s) { if (s->cap) memset(s->keys, 0, sizeof(uint64_t) * s->cap); s->n = 0; }

kl_tape *kl_tape_new(int persistent) {
  kl_tape *t = calloc(1, sizeof *t);
  if (!t) return kl_fail("GradientTape: out of memory");
  t->persistent = persistent;
  return t;
}

static void clear_nodes(kl_tape *t) {
  for (int64_t i = 0; i < t->n; i++) {
    node *nd = &t->nodes[i];
    kl_release_all(nd->n, nd->in);
    if (nd->in != nd->in_small) free(nd->in);
    kl_tensor_release(nd->out);
  }
  t->n = 0;
}

void kl_tape_reset(kl_tape *t) { clear_nodes(t); idset_clear(&t->tracked); t->spent = 0; }

int kl_tape_stop(kl_tape *t) {
  for (int i = 0; i < n_active; i++)
    if (active[i] == t) { memmove(active + i, active + i + 1, sizeof(kl_tape *) * (n_active - i - 1)); n_active--; break; }
  t->recording = 0;
  return 0;
}

void kl_tape_free(kl_tape *t) {
  if (!t) return;
  kl_tape_stop(t);
  clear_nodes(t);
  free(t->nodes);
  free(t->tracked.keys);
  free(t);
}

int kl_tape_start(kl_tape *t) {
  if (t->recording) return kl_failn("GradientTape: already recording");
  if (n_active == MAX_ACTIVE) return kl_failn("GradientTape: more than %d nested tapes", MAX_ACTIVE);
  if (t->spent) kl_tape_reset(t);
  active[n_active++] = t;
  t->recording = 1;
  return 0;
}

int kl_tape_recording(kl_tape *t) { return t->recording; }
int64_t kl_tape_size(kl_tape *t) { return t->n; }
int kl_tape_watch(kl_tape *t, kl_tensor *x) { return idset_add(&t->tracked, x->id); }

int kl_grad_pause(void) { return pause_depth++; }
void kl_grad_resume(int token) { pause_depth = token; }

static int tracks(kl_tape *t, kl_tensor *x) {
  return (x->flags & KL_FLAG_TRAINABLE) || idset_has(&t->tracked, x->id);
}

static void record(int op, int n, kl_tensor **in, kl_tensor *out, const kl_attrs *attrs) {
  if (pause_depth || !n_active || !registry[op].differentiable) return;
  for (int k = 0; k < n_active; k++) {
    kl_tape *t = active[k];
    if (!t->recording) continue;
    int hit = 0;
    for (int i = 0; i < n && !hit; i++) hit = tracks(t, in[i]);
    if (!hit) continue;
    if (t->n == t->cap) {
      int64_t cap = t->cap ? t->cap * 2 : 256;
      node *nodes = realloc(t->nodes, sizeof(node) * cap);
      if (!nodes) continue; /* out of memory: the gradient will be missing, not wrong */
      t->nodes = nodes;
      t->cap = cap;
    }
    node *nd = &t->nodes[t->n];
    nd->in = n <= 3 ? nd->in_small : malloc(sizeof(kl_tensor *) * n);
    if (!nd->in) continue;
    t->n++;
    nd->op = op;
    nd->n = n;
    for (int i = 0; i < n; i++) { nd->in[i] = in[i]; kl_tensor_retain(in[i]); }
    nd->out = out;
    kl_tensor_retain(out);
    nd->attrs = *attrs;
    idset_add(&t->tracked, out->id);
  }
}

/* ---- the op profiler: self time per op, forward and backward ------------
 * Off by default (one predictable branch per op). An op's backward calls
 * other ops: each call's time goes to the innermost op running, so the
 * times add up to the time spent in ops, with nothing counted twice. */
static int prof_on;
static double prof_self[KL_OP_COUNT][2], prof_children;
static int64_t prof_calls[KL_OP_COUNT][2];

static double prof_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

void kl_profile_enable(int on) { prof_on = on != 0; }

void kl_profile_reset(void) {
  memset(prof_self, 0, sizeof prof_self);
  memset(prof_calls, 0, sizeof prof_calls);
}

int kl_profile_get(int op, int backward, double *seconds, int64_t *calls) {
  if (op < 0 || op >= KL_OP_COUNT || backward < 0 || backward > 1) return kl_failn("profile: no op %d", op);
  *seconds = prof_self[op][backward];
  *calls = prof_calls[op][backward];
  return 0;
}

/* Starts a profiled call; returns what prof_end needs. */
static double prof_begin(double *outer_children) {
  *outer_children = prof_children;
  prof_children = 0;
  return prof_now();
}

static void prof_end(int op, int backward, double t0, double outer_children) {
  double dt = prof_now() - t0;
  prof_self[op][backward] += dt - prof_children;
  prof_calls[op][backward]++;
  prof_children = outer_children + dt;
}

static kl_tensor *dispatch(int op, int n, kl_tensor **in, const kl_attrs *attrs) {
  static const kl_attrs none = {0};
  if (op < 0 || op >= KL_OP_COUNT) return kl_fail("op: unknown op id %d", op);
  const kl_opdef *d = &registry[op];
  if (d->arity >= 0 && n != d->arity) return kl_fail("%s: expected %d inputs, got %d", d->name, d->arity, n);
  if (d->arity < 0 && n < 1) return kl_fail("%s: expected at least one input", d->name);
  for (int i = 0; i < n; i++)
    if (!in[i]) return kl_fail("%s: input %d is missing", d->name, i + 1);
  if (!attrs) attrs = &none;
  kl_threads_tick();
  kl_tensor *out;
  if (__builtin_expect(prof_on, 0)) {
    double outer, t0 = prof_begin(&outer);
    out = d->forward(in, n, attrs);
    prof_end(op, 0, t0, outer);
  } else {
    out = d->forward(in, n, attrs);
  }
  if (out) record(op, n, in, out, attrs);
  return out;
}

kl_tensor *kl_op(int op, kl_tensor *a, kl_tensor *b, kl_tensor *c, const kl_attrs *attrs) {
  kl_tensor *in[3] = {a, b, c};
  int n = op >= 0 && op < KL_OP_COUNT && registry[op].arity > 0 ? registry[op].arity : (c ? 3 : b ? 2 : 1);
  return dispatch(op, n, in, attrs);
}

kl_tensor *kl_op_n(int op, int n, kl_tensor **inputs, const kl_attrs *attrs) {
  if (n < 0 || n > 4096) return kl_fail("op: %d inputs is out of range", n);
  return dispatch(op, n, inputs, attrs);
}

/* ---- helpers for backward rules ------------------------------------- */
kl_tensor *kl_call(int op, kl_tensor *a, kl_tensor *b, kl_tensor *c, const kl_attrs *at) { return kl_op(op, a, b, c, at); }
kl_tensor *kl_call1(int op, kl_tensor *a) { return kl_op(op, a, NULL, NULL, NULL); }
kl_tensor *kl_call2(int op, kl_tensor *a, kl_tensor *b) { return kl_op(op, a, b, NULL, NULL); }

kl_tensor *kl_scalar(double v) { return kl_tensor_full(0, NULL, v); }

kl_tensor *kl_mul_scalar(kl_tensor *a, double s) {
  kl_attrs at = {0};
  at.f[0] = s;
  return kl_call(KL_OP_scale, a, NULL, NULL, &at);
}

kl_attrs kl_attrs_axes(int naxes, const int *axes, int keepdims) {
  kl_attrs at = {0};
  at.naxes = naxes;
  for (int i = 0; i < naxes && i < KL_MAX_DIMS; i++) at.axes[i] = axes[i];
  at.keepdims = keepdims;
  return at;
}

kl_tensor *kl_reshape_to(kl_tensor *t, int nd, const int64_t *dims) {
  kl_attrs at = {0};
  at.nints = nd;
  memcpy(at.ints, dims, sizeof(int64_t) * nd);
  return kl_call(KL_OP_reshape, t, NULL, NULL, &at);
}

kl_tensor *kl_sum_to_shape(kl_tensor *g, int nd, const int64_t *dims) {
  if (g->nd == nd && !memcmp(g->dims, dims, sizeof(int64_t) * nd)) { kl_tensor_retain(g); return g; }
  int axes[KL_MAX_DIMS], na = 0, lead = g->nd - nd;
  for (int i = 0; i < g->nd; i++)
    if (i < lead || (dims[i - lead] == 1 && g->dims[i] != 1)) axes[na++] = i;
  kl_tensor *s;
  if (na) {
    kl_attrs at = kl_attrs_axes(na, axes, 1);
    s = kl_call(KL_OP_sum, g, NULL, NULL, &at);
  } else { s = g; kl_tensor_retain(g); }
  if (!s) return NULL;
  kl_tensor *r = kl_reshape_to(s, nd, dims);
  kl_tensor_release(s);
  return r;
}

/* ---- gradient -------------------------------------------------------- */
typedef struct gradmap { uint64_t *keys; kl_tensor **vals; int64_t cap; } gradmap;

static int64_t gm_slot(gradmap *m, uint64_t id) {
  int64_t i = mix(id) & (m->cap - 1);
  while (m->keys[i] && m->keys[i] != id) i = (i + 1) & (m->cap - 1);
  return i;
}

/* The mutation switch of src/debug.h: one op's backward made wrong on purpose. */
static int mutate_op = -1;
static double mutate_factor = 1.0;
void kl_debug_mutate_backward(int op_id, double factor) {
  mutate_op = op_id >= 0 && op_id < KL_OP_COUNT ? op_id : -1;
  mutate_factor = factor;
}

static kl_tensor *mutated(kl_tensor *g) {
  kl_tensor *s = kl_mul_scalar(g, mutate_factor);
  kl_tensor_release(g);
  return s;
}

static __thread const unsigned char *need_mask;
int kl_need_grad(int i) { return need_mask ? need_mask[i] : 1; }

int kl_tape_gradient(kl_tape *t, kl_tensor *target, kl_tensor *seed, int n, kl_tensor **sources, kl_tensor **grads) {
  for (int i = 0; i < n; i++) grads[i] = NULL;
  if (t->spent) return kl_failn("GradientTape.gradient: a non-persistent tape can only be used once; pass {persistent=true} to compute several gradients");
  if (seed && !kl_tensor_same_shape(seed, target))
    return kl_failn("GradientTape.gradient: output_gradients of shape %s do not match the target's shape %s", KL_SHAPE(seed), KL_SHAPE(target));
  int was_recording = t->recording;
  t->recording = 0; /* this tape must not record its own backward pass */

  /* Which node outputs depend on a source: only those need a backward. */
  idset relevant = {0};
  unsigned char *needed = calloc(t->n + 1, 1);
  int rc = needed ? 0 : kl_failn("GradientTape.gradient: out of memory");
  /* Only watched sources get gradients (Keras: an unwatched one gives None). */
  for (int i = 0; i < n && !rc; i++)
    if (tracks(t, sources[i])) rc = idset_add(&relevant, sources[i]->id);
  for (int64_t k = 0; k < t->n && !rc; k++) {
    node *nd = &t->nodes[k];
    for (int i = 0; i < nd->n; i++)
      if (idset_has(&relevant, nd->in[i]->id)) { needed[k] = 1; rc = idset_add(&relevant, nd->out->id); break; }
  }

  gradmap m = {0};
  m.cap = 64;
  while (m.cap < 2 * (t->n + n + 1)) m.cap *= 2;
  m.keys = calloc(m.cap, sizeof *m.keys);
  m.vals = calloc(m.cap, sizeof *m.vals);
  if (!rc && (!m.keys || !m.vals)) rc = kl_failn("GradientTape.gradient: out of memory");
  if (!rc) {
    int64_t s = gm_slot(&m, target->id);
    m.keys[s] = target->id;
    m.vals[s] = seed ? (kl_tensor_retain(seed), seed) : kl_tensor_full(target->nd, target->dims, 1.0);
    if (!m.vals[s]) rc = -1;
  }
  for (int64_t k = t->n - 1; k >= 0 && !rc; k--) {
    node *nd = &t->nodes[k];
    if (!needed[k]) continue;
    int64_t s = gm_slot(&m, nd->out->id);
    kl_tensor *g = m.keys[s] ? m.vals[s] : NULL;
    if (!g) continue;
    unsigned char mask[4096];
    kl_tensor *small[8], **gin = nd->n <= 8 ? small : calloc(nd->n, sizeof *gin);
    if (!gin || nd->n > 4096) { rc = kl_failn("GradientTape.gradient: out of memory"); break; }
    for (int i = 0; i < nd->n; i++) { gin[i] = NULL; mask[i] = (unsigned char)idset_has(&relevant, nd->in[i]->id); }
    need_mask = mask;
    if (__builtin_expect(prof_on, 0)) {
      double outer, t0 = prof_begin(&outer);
      rc = registry[nd->op].backward(nd->in, nd->n, nd->out, &nd->attrs, g, gin);
      prof_end(nd->op, 1, t0, outer);
    } else {
      rc = registry[nd->op].backward(nd->in, nd->n, nd->out, &nd->attrs, g, gin);
    }
    need_mask = NULL;
    for (int i = 0; i < nd->n && !rc; i++) {
      if (!gin[i] || !mask[i]) continue;
      kl_tensor *x = nd->in[i], *gi = kl_sum_to_shape(gin[i], x->nd, x->dims);
      if (gi && nd->op == mutate_op) gi = mutated(gi);
      if (!gi) { rc = -1; break; }
      int64_t si = gm_slot(&m, x->id);
      if (m.keys[si] && m.vals[si]) {
        kl_tensor *acc = kl_call2(KL_OP_add, m.vals[si], gi);
        kl_tensor_release(gi);
        if (!acc) { rc = -1; break; }
        kl_tensor_release(m.vals[si]);
        m.vals[si] = acc;
      } else { m.keys[si] = x->id; m.vals[si] = gi; }
    }
    kl_release_all(nd->n, gin);
    if (gin != small) free(gin);
    /* An intermediate's gradient is final once its producer ran: free it early. */
    int is_source = 0;
    for (int i = 0; i < n; i++) is_source |= sources[i]->id == nd->out->id;
    if (!is_source) { kl_tensor_release(m.vals[s]); m.vals[s] = NULL; }
  }
  for (int i = 0; i < n && !rc; i++) {
    if (!idset_has(&relevant, sources[i]->id)) continue;
    int64_t s = gm_slot(&m, sources[i]->id);
    if (m.keys[s] && m.vals[s]) { grads[i] = m.vals[s]; kl_tensor_retain(grads[i]); }
  }
  if (rc) for (int i = 0; i < n; i++) { kl_tensor_release(grads[i]); grads[i] = NULL; }
  for (int64_t i = 0; i < m.cap && m.vals; i++) kl_tensor_release(m.vals[i]);
  free(m.keys); free(m.vals); free(needed); free(relevant.keys);
  t->recording = was_recording;
  if (!t->persistent && !rc) { clear_nodes(t); t->spent = 1; }
  return rc;
}
