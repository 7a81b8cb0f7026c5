/* test_core.c — tests of the C core used without Lua: ownership, the reuse
 * pool, error reporting, views staying inside their storage, determinism of
 * the generators and a gradient through the C API. */
#include "klua.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;
#define CHECK(cond, what)                                               \
  do {                                                                  \
    if (cond) passed++;                                                 \
    else { failed++; printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, what); } \
  } while (0)

static int op(const char *name) { return kl_op_lookup(name); }

static void test_ownership_and_pool(void) {
  int64_t dims[2] = {256, 256};
  int64_t tensors0 = kl_mem_tensor_count();
  kl_tensor *a = kl_tensor_zeros(2, dims);
  kl_tensor_release(a);
  int64_t allocs = kl_mem_alloc_count();
  for (int i = 0; i < 100; i++) {
    kl_tensor *t = kl_tensor_full(2, dims, i);
    kl_tensor *u = kl_op(op("exp"), t, NULL, NULL, NULL);
    kl_tensor_release(t);
    kl_tensor_release(u);
  }
  CHECK(kl_mem_alloc_count() - allocs <= 1, "steady-state temporaries reuse pooled storage");
  CHECK(kl_mem_tensor_count() == tensors0, "every tensor header is freed");
  CHECK(kl_mem_live_bytes() == 0, "no storage is live after releasing everything");
  kl_mem_trim();
  CHECK(kl_mem_pool_bytes() == 0, "trim empties the pool");
}

static void test_errors(void) {
  int64_t d1[2] = {2, 3}, d2[2] = {4, 5};
  kl_tensor *a = kl_tensor_zeros(2, d1), *b = kl_tensor_zeros(2, d2);
  kl_tensor *c = kl_op(op("matmul"), a, b, NULL, NULL);
  CHECK(c == NULL, "matmul of incompatible shapes fails");
  CHECK(strcmp(kl_last_error(), "matmul: shapes (2,3) and (4,5) are incompatible") == 0, "the message names the op and shapes");
  CHECK(kl_op(op("add"), a, b, NULL, NULL) == NULL && strstr(kl_last_error(), "cannot be broadcast"), "add of unbroadcastable shapes fails");
  CHECK(kl_op(op("add"), a, NULL, NULL, NULL) == NULL && strstr(kl_last_error(), "missing"), "a missing input is an error, not a crash");
  CHECK(kl_op(9999, a, NULL, NULL, NULL) == NULL, "an unknown op id is an error");
  int64_t neg[1] = {-3};
  CHECK(kl_tensor_zeros(1, neg) == NULL && strstr(kl_last_error(), "negative"), "negative dimensions are refused");
  int64_t huge[3] = {1 << 20, 1 << 20, 1 << 20};
  CHECK(kl_tensor_zeros(3, huge) == NULL, "absurd sizes are refused before allocating");
  int64_t st[2] = {3, 1}, big[2] = {5, 3};
  CHECK(kl_tensor_view(a, 2, big, st, 0) == NULL, "a view cannot reach outside its storage");
  kl_tensor_release(a);
  kl_tensor_release(b);
}

static void test_random(void) {
  int64_t d[1] = {1000};
  kl_random_seed(42);
  kl_tensor *a = kl_random_normal(1, d, 0, 1);
  kl_random_seed(42);
  kl_tensor *b = kl_random_normal(1, d, 0, 1);
  CHECK(memcmp(a->data, b->data, 4000) == 0, "the same seed gives the same numbers");
  double m = 0, v = 0;
  for (int i = 0; i < 1000; i++) m += a->data[i];
  m /= 1000;
  for (int i = 0; i < 1000; i++) v += (a->data[i] - m) * (a->data[i] - m);
  v /= 999;
  CHECK(fabs(m) < 0.1 && fabs(v - 1) < 0.15, "normal samples have mean 0 and variance 1");
  kl_tensor_release(a);
  kl_tensor_release(b);
}

static void test_generators(void) {
  int64_t d[1] = {100};
  kl_random_seed(7);
  kl_tensor *want = kl_random_uniform(1, d, 0, 1);
  kl_random_seed(1);
  uint64_t global[2], after[2];
  kl_random_get_state(global);
  kl_generator *g = kl_generator_new(7);
  kl_tensor *got = kl_random_uniform_g(g, 1, d, 0, 1);
  CHECK(memcmp(want->data, got->data, 400) == 0, "a generator seeded with n draws what the default stream seeded with n draws");
  kl_random_get_state(after);
  CHECK(global[0] == after[0] && global[1] == after[1], "drawing from a generator leaves the default stream alone");
  uint64_t st[2];
  kl_generator_get_state(g, st);
  kl_tensor *next = kl_random_normal_g(g, 1, d, 0, 1);
  kl_generator *h = kl_generator_new(0);
  kl_generator_set_state(h, st);
  kl_tensor *again = kl_random_normal_g(h, 1, d, 0, 1);
  CHECK(memcmp(next->data, again->data, 400) == 0, "a copied state reproduces the draws that follow");
  CHECK(kl_random_uniform_g(g, 1, d, 1, 0) == NULL && strstr(kl_last_error(), "maxval"), "bad bounds are an error, not an abort");
  kl_generator_free(g);
  kl_generator_free(h);
  kl_tensor_release(want); kl_tensor_release(got); kl_tensor_release(next); kl_tensor_release(again);
}

static void test_gradient(void) {
  float xs[3] = {1, 2, 3};
  int64_t d[1] = {3};
  kl_tensor *x = kl_tensor_from_data(1, d, xs);
  kl_tape *tape = kl_tape_new(0);
  kl_tape_start(tape);
  kl_tape_watch(tape, x);
  kl_tensor *sq = kl_op(op("square"), x, NULL, NULL, NULL);
  kl_attrs all = {0};
  all.naxes = -1;
  kl_tensor *y = kl_op(op("sum"), sq, NULL, NULL, &all);
  kl_tape_stop(tape);
  kl_tensor *dx = NULL;
  int rc = kl_tape_gradient(tape, y, NULL, 1, &x, &dx);
  CHECK(rc == 0 && dx && dx->data[0] == 2 && dx->data[1] == 4 && dx->data[2] == 6, "d/dx sum(x^2) = 2x");
  kl_tensor *again = NULL;
  CHECK(kl_tape_gradient(tape, y, NULL, 1, &x, &again) < 0, "a non-persistent tape refuses a second gradient");
  kl_tensor_release(dx);
  kl_tensor_release(y);
  kl_tensor_release(sq);
  kl_tensor_release(x);
  kl_tape_free(tape);
}

/* Hostile sizes and values (issue "Hostile files and long runs"): each of
 * these was undefined behaviour or a stack overflow before; ASan/UBSan (make
 * asan) turn any regression into a crash here. */
static void test_hostile_sizes(void) {
  int64_t empty_huge[3] = {0, 1000000000000LL, 1000000000000LL};
  CHECK(kl_tensor_zeros(3, empty_huge) == NULL && strstr(kl_last_error(), "too large"),
        "a shape with a 0 and sizes whose product overflows is refused, not given overflowed strides");
  int64_t empty_ok[3] = {0, 1000000, 1000000};
  kl_tensor *e = kl_tensor_zeros(3, empty_ok);
  CHECK(e && e->count == 0 && e->strides[0] == 1000000000000LL, "an empty tensor with large sizes has exact strides");
  kl_tensor_release(e);

  int64_t r8[8] = {1, 1, 1, 1, 1, 1, 1, 2};
  kl_tensor *a = kl_tensor_zeros(8, r8), *ins[2] = {a, a};
  kl_attrs ax = {0};
  ax.naxes = 1;
  CHECK(kl_op_n(op("stack"), 2, ins, &ax) == NULL && strstr(kl_last_error(), "rank 9"),
        "stacking rank-8 tensors is an error, not a write past the shape array");
  kl_tensor *cat = kl_op_n(op("concatenate"), 2, ins, &ax);
  CHECK(cat && cat->nd == 8 && cat->dims[0] == 2, "concatenating rank-8 tensors still works");
  kl_tensor_release(cat);

  int64_t one[1] = {3};
  float vals[3] = {NAN, INFINITY, -INFINITY};
  kl_tensor *x = kl_tensor_from_data(1, one, vals);
  kl_tensor *y = kl_op(op("exp"), x, NULL, NULL, NULL);
  CHECK(y && isnan(y->data[0]) && y->data[1] > 3e38f && y->data[2] >= 0 && y->data[2] < 1e-37f,
        "exp keeps NaN as NaN (no float-to-int conversion of a NaN) and clamps the infinities");
  kl_tensor_release(y);

  float big[1] = {1e30f};
  kl_tensor *idx = kl_tensor_from_data(1, (int64_t[]){1}, big);
  kl_attrs take_ax = {0};
  take_ax.naxes = 1;
  CHECK(kl_op(op("take"), x, idx, NULL, &take_ax) == NULL && strstr(kl_last_error(), "out of range"),
        "an index of 1e30 is out of range, not converted to an integer first");
  kl_tensor_release(idx);

  kl_attrs sh = {0};
  sh.nints = 3;
  sh.ints[0] = 0; sh.ints[1] = (int64_t)1 << 40; sh.ints[2] = (int64_t)1 << 40;
  int64_t z[1] = {0};
  kl_tensor *none = kl_tensor_zeros(1, z);
  CHECK(kl_op(op("reshape"), none, NULL, NULL, &sh) == NULL, "reshaping to sizes whose product overflows is refused");
  kl_tensor_release(none);

  kl_attrs sl = {0};
  sl.nints = 4;
  sl.ints[0] = 0; sl.ints[1] = 1; sl.ints[2] = 3; sl.ints[3] = INT64_C(1) << 62;
  kl_tensor *every = kl_op(op("slice"), x, NULL, NULL, &sl);
  CHECK(every && every->count == 1 && isinf(every->data[0]), "a slice step of 2^62 takes one element, no overflowed stride");
  kl_tensor_release(every);

  int64_t before = kl_mem_data_bytes();
  int64_t prev = kl_mem_set_limit(before + 4000);
  kl_tensor *fits = kl_tensor_empty(1, (int64_t[]){1000});
  kl_tensor *over = kl_tensor_empty(1, (int64_t[]){1000});
  CHECK(fits && !over && strstr(kl_last_error(), "memory limit"), "a memory limit refuses the allocation past it");
  kl_mem_set_limit(prev);
  kl_tensor_release(fits);
  CHECK(kl_mem_data_bytes() == before, "the data counter returns to where it was");
  kl_tensor_release(x);
  kl_tensor_release(a);
}

int main(void) {
  test_ownership_and_pool();
  test_errors();
  test_random();
  test_generators();
  test_gradient();
  test_hostile_sizes();
  printf("core: %d passed, %d failed\n", passed, failed);
  return failed != 0;
}
