/* random.c — seedable generators (PCG32) behind klua.random, dropout and
 * initialisers. A kl_generator is one stream; NULL names the process-wide
 * default stream, which the kl_random_* functions without _g use. Pure integer
 * arithmetic plus libm, so a seed gives the same numbers on every run and
 * machine. */
#include "core.h"
#include <math.h>
#include <stdlib.h>

struct kl_generator { uint64_t state, inc; };

static kl_generator default_gen = { 0x853c49e6748fea9bULL, 0xda3e39cb94b95bdbULL };

static kl_generator *gen_or_default(kl_generator *g) { return g ? g : &default_gen; }

static uint32_t next_u32(kl_generator *g) {
  uint64_t old = g->state;
  g->state = old * 6364136223846793005ULL + g->inc;
  uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
  uint32_t rot = (uint32_t)(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

/* uniform in (0, 1), never 0 (log is safe), 53 bits */
static double next_unit(kl_generator *g) {
  uint64_t hi = next_u32(g) >> 5, lo = next_u32(g) >> 6;
  return ((double)(hi * 67108864 + lo) + 0.5) / 9007199254740992.0;
}

static double next_normal(kl_generator *g) {
  /* Box-Muller, one value per draw of two uniforms: simple and reproducible. */
  double u1 = next_unit(g), u2 = next_unit(g);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Generators ---------------------------------------------------------------- */

void kl_generator_seed(kl_generator *g, uint64_t seed) {
  g = gen_or_default(g);
  g->state = 0;
  g->inc = (seed << 1u) | 1u;
  next_u32(g);
  g->state += seed ^ 0x9e3779b97f4a7c15ULL;
  next_u32(g);
}

kl_generator *kl_generator_new(uint64_t seed) {
  kl_generator *g = malloc(sizeof *g);
  if (!g) return kl_fail("random.Generator: out of memory");
  kl_generator_seed(g, seed);
  return g;
}

void kl_generator_free(kl_generator *g) { if (g != &default_gen) free(g); }

void kl_generator_get_state(const kl_generator *g, uint64_t *state2) {
  if (!g) g = &default_gen;
  state2[0] = g->state; state2[1] = g->inc;
}

/* PCG32 needs an odd increment. */
void kl_generator_set_state(kl_generator *g, const uint64_t *state2) {
  g = gen_or_default(g);
  g->state = state2[0]; g->inc = state2[1] | 1u;
}

uint32_t kl_random_u32_g(kl_generator *g) { return next_u32(gen_or_default(g)); }

/* Draws ----------------------------------------------------------------------- */

kl_tensor *kl_random_uniform_g(kl_generator *g, int nd, const int64_t *dims, double lo, double hi) {
  if (!(hi >= lo)) return kl_fail("random.uniform: maxval (%g) must be >= minval (%g)", hi, lo);
  g = gen_or_default(g);
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (t) for (int64_t i = 0; i < t->count; i++) t->data[i] = (float)(lo + (hi - lo) * next_unit(g));
  return t;
}

kl_tensor *kl_random_normal_g(kl_generator *g, int nd, const int64_t *dims, double mean, double std) {
  if (!(std >= 0)) return kl_fail("random.normal: stddev must be >= 0, got %g", std);
  g = gen_or_default(g);
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (t) for (int64_t i = 0; i < t->count; i++) t->data[i] = (float)(mean + std * next_normal(g));
  return t;
}

/* Keras/TF: values further than two standard deviations are drawn again. */
kl_tensor *kl_random_truncated_normal_g(kl_generator *g, int nd, const int64_t *dims, double mean, double std) {
  if (!(std >= 0)) return kl_fail("random.truncated_normal: stddev must be >= 0, got %g", std);
  g = gen_or_default(g);
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (!t) return NULL;
  for (int64_t i = 0; i < t->count; i++) {
    double z;
    do z = next_normal(g); while (fabs(z) > 2.0);
    t->data[i] = (float)(mean + std * z);
  }
  return t;
}

kl_tensor *kl_random_bernoulli_g(kl_generator *g, int nd, const int64_t *dims, double p) {
  g = gen_or_default(g);
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (t) for (int64_t i = 0; i < t->count; i++) t->data[i] = next_unit(g) < p ? 1.0f : 0.0f;
  return t;
}

int kl_random_permutation_g(kl_generator *g, int64_t n, int64_t *out) {
  if (n < 0) return kl_failn("random.permutation: n must be >= 0");
  g = gen_or_default(g);
  for (int64_t i = 0; i < n; i++) out[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(next_unit(g) * (double)(i + 1));
    if (j > i) j = i;
    int64_t tmp = out[i]; out[i] = out[j]; out[j] = tmp;
  }
  return 0;
}

kl_tensor *kl_random_permutation_tensor_g(kl_generator *g, int64_t n) {
  if (n < 0) return kl_fail("random.permutation: n must be >= 0");
  kl_tensor *t = kl_tensor_empty(1, &n);
  int64_t *tmp = t ? malloc(sizeof(int64_t) * (n ? n : 1)) : NULL;
  if (t && !tmp) { kl_tensor_release(t); return kl_fail("random.permutation: out of memory"); }
  if (!t) return NULL;
  kl_random_permutation_g(g, n, tmp);
  for (int64_t i = 0; i < n; i++) t->data[i] = (float)tmp[i];
  free(tmp);
  return t;
}

/* The default stream, as before generators existed ----------------------------- */

void kl_random_seed(uint64_t seed) { kl_generator_seed(NULL, seed); }
void kl_random_get_state(uint64_t *s) { kl_generator_get_state(NULL, s); }
void kl_random_set_state(const uint64_t *s) { kl_generator_set_state(NULL, s); }

kl_tensor *kl_random_uniform(int nd, const int64_t *dims, double lo, double hi) {
  return kl_random_uniform_g(NULL, nd, dims, lo, hi);
}
kl_tensor *kl_random_normal(int nd, const int64_t *dims, double mean, double std) {
  return kl_random_normal_g(NULL, nd, dims, mean, std);
}
kl_tensor *kl_random_truncated_normal(int nd, const int64_t *dims, double mean, double std) {
  return kl_random_truncated_normal_g(NULL, nd, dims, mean, std);
}
kl_tensor *kl_random_bernoulli(int nd, const int64_t *dims, double p) {
  return kl_random_bernoulli_g(NULL, nd, dims, p);
}
int kl_random_permutation(int64_t n, int64_t *out) { return kl_random_permutation_g(NULL, n, out); }
kl_tensor *kl_random_permutation_tensor(int64_t n) { return kl_random_permutation_tensor_g(NULL, n); }
