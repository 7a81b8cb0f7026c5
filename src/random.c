/* random.c — the one seedable generator (PCG32) behind klua.random, dropout and
 * initialisers. Pure integer arithmetic plus libm, so a seed gives the same
 * numbers on every run and machine. */
#include "core.h"
#include <math.h>
#include <stdlib.h>

static uint64_t rng_state = 0x853c49e6748fea9bULL, rng_inc = 0xda3e39cb94b95bdbULL;

static uint32_t next_u32(void) {
  uint64_t old = rng_state;
  rng_state = old * 6364136223846793005ULL + rng_inc;
  uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
  uint32_t rot = (uint32_t)(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

/* uniform in (0, 1), never 0 (log is safe), 53 bits */
static double next_unit(void) {
  uint64_t hi = next_u32() >> 5, lo = next_u32() >> 6;
  return ((double)(hi * 67108864 + lo) + 0.5) / 9007199254740992.0;
}

void kl_random_seed(uint64_t seed) {
  rng_state = 0;
  rng_inc = (seed << 1u) | 1u;
  next_u32();
  rng_state += seed ^ 0x9e3779b97f4a7c15ULL;
  next_u32();
}

void kl_random_get_state(uint64_t *s) { s[0] = rng_state; s[1] = rng_inc; }
void kl_random_set_state(const uint64_t *s) { rng_state = s[0]; rng_inc = s[1] | 1u; }

static double next_normal(void) {
  /* Box-Muller, one value per draw of two uniforms: simple and reproducible. */
  double u1 = next_unit(), u2 = next_unit();
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

kl_tensor *kl_random_uniform(int nd, const int64_t *dims, double lo, double hi) {
  if (!(hi >= lo)) return kl_fail("random.uniform: maxval (%g) must be >= minval (%g)", hi, lo);
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (t) for (int64_t i = 0; i < t->count; i++) t->data[i] = (float)(lo + (hi - lo) * next_unit());
  return t;
}

kl_tensor *kl_random_normal(int nd, const int64_t *dims, double mean, double std) {
  if (!(std >= 0)) return kl_fail("random.normal: stddev must be >= 0, got %g", std);
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (t) for (int64_t i = 0; i < t->count; i++) t->data[i] = (float)(mean + std * next_normal());
  return t;
}

/* Keras/TF: values further than two standard deviations are drawn again. */
kl_tensor *kl_random_truncated_normal(int nd, const int64_t *dims, double mean, double std) {
  if (!(std >= 0)) return kl_fail("random.truncated_normal: stddev must be >= 0, got %g", std);
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (!t) return NULL;
  for (int64_t i = 0; i < t->count; i++) {
    double z;
    do z = next_normal(); while (fabs(z) > 2.0);
    t->data[i] = (float)(mean + std * z);
  }
  return t;
}

kl_tensor *kl_random_bernoulli(int nd, const int64_t *dims, double p) {
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (t) for (int64_t i = 0; i < t->count; i++) t->data[i] = next_unit() < p ? 1.0f : 0.0f;
  return t;
}

int kl_random_permutation(int64_t n, int64_t *out) {
  if (n < 0) return kl_failn("random.permutation: n must be >= 0");
  for (int64_t i = 0; i < n; i++) out[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(next_unit() * (double)(i + 1));
    if (j > i) j = i;
    int64_t tmp = out[i]; out[i] = out[j]; out[j] = tmp;
  }
  return 0;
}

kl_tensor *kl_random_permutation_tensor(int64_t n) {
  if (n < 0) return kl_fail("random.permutation: n must be >= 0");
  kl_tensor *t = kl_tensor_empty(1, &n);
  int64_t *tmp = t ? malloc(sizeof(int64_t) * (n ? n : 1)) : NULL;
  if (t && !tmp) { kl_tensor_release(t); return kl_fail("random.permutation: out of memory"); }
  if (!t) return NULL;
  kl_random_permutation(n, tmp);
  for (int64_t i = 0; i < n; i++) t->data[i] = (float)tmp[i];
  free(tmp);
  return t;
}
