/* random.c — seedable generators (PCG32) behind klua.random, dropout and
 * initialisers. A kl_generator is one stream; NULL names the process-wide
 * default stream, which the kl_random_* functions without _g use. Pure integer
 * arithmetic plus libm, so a seed gives the same numbers on every run and
 * machine.
 *
 * Tensors are drawn in blocks, fast but with exactly the values of the plain
 * loop (one PCG step at a time, libm's log and cos per normal): the stream's
 * outputs come from LANES copies of the generator run side by side, and
 * normals come from polynomials, except the few whose float could differ
 * from libm's, which are recomputed with libm (normals_block). */
#include "core.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define PCG_MUL 6364136223846793005ULL

struct kl_generator { uint64_t state, inc; };

static kl_generator default_gen = { 0x853c49e6748fea9bULL, 0xda3e39cb94b95bdbULL };

static kl_generator *gen_or_default(kl_generator *g) { return g ? g : &default_gen; }

static inline uint32_t pcg_output(uint64_t old) {
  uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
  uint32_t rot = (uint32_t)(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

static uint32_t next_u32(kl_generator *g) {
  uint64_t old = g->state;
  g->state = old * PCG_MUL + g->inc;
  return pcg_output(old);
}

/* k steps of the state at once, s -> s*mul + add (mod 2^64), by squaring the
 * one-step map (Brown 1994, as PCG's pcg_advance). */
typedef struct { uint64_t mul, add; } pcg_jump;

static pcg_jump jump_of(uint64_t inc, uint64_t k) {
  pcg_jump acc = { 1, 0 };
  for (uint64_t m = PCG_MUL, a = inc; k; k >>= 1) {
    if (k & 1) { acc.mul *= m; acc.add = acc.add * m + a; }
    a *= m + 1;
    m *= m;
  }
  return acc;
}

static void advance(kl_generator *g, uint64_t k) {
  pcg_jump j = jump_of(g->inc, k);
  g->state = g->state * j.mul + j.add;
}

/* out[0..n) = the stream's next n outputs; g moves past them. Copy k of the
 * generator starts k steps ahead and all move LANES steps at a time: the same
 * outputs in the same order, from LANES independent multiply chains instead
 * of one serial one. */
enum { LANES = 32 };   /* 8 vectors of 4 on AVX2, 4 of 8 on AVX-512 */

KL_CLONES static void fill_u32(kl_generator *g, uint32_t *out, int64_t n) {
  pcg_jump j = jump_of(g->inc, LANES);
  uint64_t s[LANES];
  s[0] = g->state;
  for (int k = 1; k < LANES; k++) s[k] = s[k - 1] * PCG_MUL + g->inc;
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
#pragma omp simd
    for (int k = 0; k < LANES; k++) { out[i + k] = pcg_output(s[k]); s[k] = s[k] * j.mul + j.add; }
  g->state = s[0];
  for (; i < n; i++) out[i] = next_u32(g);
}

/* uniform in (0, 1), never 0 (log is safe), 53 bits: hi's top 27, lo's top 26.
 * The product and the sum are exact; only + 0.5 rounds. */
static inline double unit(uint32_t hi, uint32_t lo) {
  return ((double)(int32_t)(hi >> 5) * 67108864.0 + (double)(int32_t)(lo >> 6) + 0.5) / 9007199254740992.0;
}

static double next_unit(kl_generator *g) {
  uint32_t hi = next_u32(g);
  return unit(hi, next_u32(g));
}

/* Box-Muller, one value from two uniforms (the outputs w[0..3]): the
 * definition of klua's normals, with libm's log and cos. */
static double exact_normal(const uint32_t *w) {
  double u1 = unit(w[0], w[1]), u2 = unit(w[2], w[3]);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* log x for x in (0, 1]: x = 2^e m, m in [sqrt(1/2), sqrt(2)), and
 * log m = 2 atanh(s), s = (m - 1)/(m + 1), |s| < 0.172, whose series to s^17
 * is within 1e-15 relative. The bits go through memcpy and the exponent
 * becomes a double by the 2^52 trick (AVX2 has no int64 -> double), so the
 * loop that calls it vectorises. */
static const double ATANH2[] = { 2.0, 2.0 / 3, 2.0 / 5, 2.0 / 7, 2.0 / 9, 2.0 / 11, 2.0 / 13, 2.0 / 15, 2.0 / 17 };

static inline double log_01(double x) {
  uint64_t b, eb, mb;
  double e, m;
  memcpy(&b, &x, 8);
  eb = (b >> 52) | 0x4330000000000000ULL;                  /* 2^52 + biased exponent */
  mb = (b & 0xfffffffffffffULL) | 0x3ff0000000000000ULL;   /* mantissa in [1, 2) */
  memcpy(&e, &eb, 8);
  memcpy(&m, &mb, 8);
  e -= 4503599627370496.0 + 1023.0;
  if (m > 1.4142135623730951) { m *= 0.5; e += 1.0; }
  double s = (m - 1.0) / (m + 1.0), s2 = s * s, p = ATANH2[8];
  for (int k = 7; k >= 0; k--) p = p * s2 + ATANH2[k];
  return e * 0.6931471805599453 + s * p;
}

/* cos(2 pi u) for u in [0, 1] is sin(2 pi (u + 1/4)) = (-1)^n sin(2 pi t),
 * n = round(2u + 1/2), t = (u - n/2) + 1/4 in [-1/4, 1/4] (exact near t = 0,
 * Sterbenz), and sin's Taylor series to x^21 is within 2e-18 for |x| <= pi/2. */
static const double SIN_T[] = { 1.0, -1.0 / 6, 1.0 / 120, -1.0 / 5040, 1.0 / 362880, -1.0 / 39916800,
  1.0 / 6227020800, -1.0 / 1307674368000, 1.0 / 355687428096000, -1.0 / 121645100408832000,
  1.0 / 51090942171709440000.0 };

static inline double cos_2pi(double u) {
  double n = (2.0 * u + 0.5 + 0x1.8p52) - 0x1.8p52;   /* round() without roundpd */
  double x = 6.283185307179586 * ((u - 0.5 * n) + 0.25), x2 = x * x, s = SIN_T[10];
  for (int k = 9; k >= 0; k--) s = s * x2 + SIN_T[k];
  return n == 1.0 ? -x * s : x * s;
}

/* The fast z of a normal is within ~1e-15 r of libm's (r = sqrt(-2 log u1),
 * which bounds |z|), so y = mean + std z rounds to libm's float whenever
 * every double within GUARD (|mean| + std r) of y rounds to one float of one
 * sign; GUARD = 2^-40 leaves a margin of 1000. About 1 in 10^4 fails this
 * test and is recomputed with libm; NaN and infinities always fail it. */
#define GUARD 0x1p-40

static inline int same_float(double y, double d) {
  return (float)(y - d) == (float)(y + d) && (y - d) * (y + d) > 0;
}

/* Normals from raw[4i..4i+3]: out[i] = (float)(mean + std z), z[i] and r[i]
 * as above, ok[i] = 0 where out[i] must be recomputed; returns how many.
 * (int flags, not bytes: a byte array would make the loop's vectors 4x wider.) */
KL_CLONES static int fast_normals(const uint32_t *restrict raw, int n, double mean, double std, float *restrict out,
                                  double *restrict z, double *restrict r, int *restrict ok) {
  int bad = 0;
  for (int i = 0; i < n; i++) {
    const uint32_t *w = raw + 4 * i;
    r[i] = sqrt(-2.0 * log_01(unit(w[0], w[1])));
    z[i] = r[i] * cos_2pi(unit(w[2], w[3]));
    double y = mean + std * z[i];
    out[i] = (float)y;
    ok[i] = same_float(y, GUARD * (fabs(mean) + std * r[i]));
    bad += !ok[i];
  }
  return bad;
}

enum { BLOCK = 256 };   /* values per block */

/* n <= BLOCK normals from raw into out, each libm's exactly; z, r as above */
static void normals_block(const uint32_t *raw, int n, double mean, double std, float *out, double *z, double *r) {
  int ok[BLOCK];
  if (fast_normals(raw, n, mean, std, out, z, r, ok))
    for (int i = 0; i < n; i++)
      if (!ok[i]) { z[i] = exact_normal(raw + 4 * i); out[i] = (float)(mean + std * z[i]); }
}

/* No fused multiply-add here (the AVX-512 clone would fuse lo + span u): it
 * rounds once where the scalar loop rounded twice, and a float can differ. */
__attribute__((optimize("fp-contract=off")))
KL_CLONES static void uniforms_block(const uint32_t *raw, int n, double lo, double span, float *out) {
  for (int i = 0; i < n; i++) out[i] = (float)(lo + span * unit(raw[2 * i], raw[2 * i + 1]));
}

KL_CLONES static void bernoulli_block(const uint32_t *raw, int n, double p, float *out) {
  for (int i = 0; i < n; i++) out[i] = unit(raw[2 * i], raw[2 * i + 1]) < p ? 1.0f : 0.0f;
}

typedef enum { UNIFORM, NORMAL, BERNOULLI } draw_kind;

/* count values of `kind` (parameters a, b) into out, block by block; g moves
 * past them. Spans of SPAN values start at known offsets of the stream
 * (advance), so a large draw splits over threads with the same values. */
enum { SPAN = 64 * BLOCK };

static void draw(kl_generator *g, draw_kind kind, int64_t count, double a, double b, float *out) {
  int per = kind == NORMAL ? 4 : 2;   /* outputs per value */
  kl_threads_tick();                  /* KLUA_NUM_THREADS, the load: as every op */
  KL_PAR_FOR_W((count + SPAN - 1) / SPAN, count, s, {
    kl_generator gs = *g;
    uint32_t raw[4 * BLOCK];
    double z[BLOCK], r[BLOCK];
    advance(&gs, (uint64_t)(s * SPAN * per));
    for (int64_t i = s * SPAN; i < count && i < (s + 1) * SPAN; i += BLOCK) {
      int n = count - i < BLOCK ? (int)(count - i) : BLOCK;
      fill_u32(&gs, raw, n * per);
      if (kind == NORMAL) normals_block(raw, n, a, b, out + i, z, r);
      else if (kind == UNIFORM) uniforms_block(raw, n, a, b - a, out + i);
      else bernoulli_block(raw, n, a, out + i);
    }
  });
  advance(g, (uint64_t)count * per);
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
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (t) draw(gen_or_default(g), UNIFORM, t->count, lo, hi, t->data);
  return t;
}

kl_tensor *kl_random_normal_g(kl_generator *g, int nd, const int64_t *dims, double mean, double std) {
  if (!(std >= 0)) return kl_fail("random.normal: stddev must be >= 0, got %g", std);
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (t) draw(gen_or_default(g), NORMAL, t->count, mean, std, t->data);
  return t;
}

/* Keras/TF: values further than two standard deviations are drawn again.
 * Serial: which normals are kept depends on the ones before. A block of
 * candidates is drawn, and g then set just past the last one used. */
kl_tensor *kl_random_truncated_normal_g(kl_generator *g, int nd, const int64_t *dims, double mean, double std) {
  if (!(std >= 0)) return kl_fail("random.truncated_normal: stddev must be >= 0, got %g", std);
  g = gen_or_default(g);
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (!t) return NULL;
  uint32_t raw[4 * BLOCK];
  double z[BLOCK], r[BLOCK];
  float y[BLOCK];
  for (int64_t i = 0; i < t->count;) {
    uint64_t left = (uint64_t)(t->count - i), start = g->state;
    int n = left + left / 16 + 2 < BLOCK ? (int)(left + left / 16 + 2) : BLOCK;   /* 95% are kept */
    fill_u32(g, raw, 4 * n);
    normals_block(raw, n, mean, std, y, z, r);
    for (int k = 0; k < n && i < t->count; k++) {
      /* within GUARD r of the cut, the fast z may fall on the other side of it */
      double zk = fabs(fabs(z[k]) - 2.0) <= GUARD * r[k] ? exact_normal(raw + 4 * k) : z[k];
      if (fabs(zk) > 2.0) continue;
      t->data[i++] = y[k];
      if (i == t->count) { g->state = start; advance(g, 4 * (uint64_t)(k + 1)); }
    }
  }
  return t;
}

kl_tensor *kl_random_bernoulli_g(kl_generator *g, int nd, const int64_t *dims, double p) {
  kl_tensor *t = kl_tensor_empty(nd, dims);
  if (t) draw(gen_or_default(g), BERNOULLI, t->count, p, 0, t->data);
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
