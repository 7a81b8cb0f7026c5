/* conv.c — convolution kernels in Keras layouts (channels-last): conv2d,
 * conv2d_transpose and depthwise_conv2d, forward and backward side by side.
 * conv1d is conv2d over a (N,1,L,C) view (Lua). Dense convolutions are im2col
 * + cblas_sgemm over cache-sized blocks of output pixels; thin patches (a
 * first layer over 1-3 channels) use a direct loop instead. Padding amounts
 * are explicit attrs (the Lua side computes Keras's "same" split), so this
 * file never guesses a convention.
 *
 * Attrs (ints):
 *   conv2d, depthwise_conv2d: sh, sw, dh, dw, pad_top, pad_bottom, pad_left, pad_right
 *   conv2d_transpose:         sh, sw, dh, dw, pad_top, pad_left, out_h, out_w
 * Inputs: (x, kernel) or (x, kernel, bias); the bias is fused into the sgemm.
 * Backwards use raw kernels: no higher-order gradients through convolutions. */
#include "core.h"
#include "scratch.h"
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdlib.h>
#include <string.h>

/* One convolution seen from its input side: input (N,H,W,C), kernel
 * (KH,KW,C,O), output (N,OH,OW,O). A transposed convolution is described by
 * the convolution it transposes (its output is this geometry's input). */
typedef struct {
  int64_t n, h, w, c;
  int64_t kh, kw, o;
  int64_t sh, sw, dh, dw;
  int64_t pt, pl;
  int64_t oh, ow;
} conv_geom;

/* Dense convolutions run over blocks of output rows (pixels): each block's
 * im2col columns fit in a core's L2 (BLOCK_FLOATS), and each thread
 * im2cols a block then multiplies it at once, while it is still in cache.
 * Blocks are independent, so threads share no barrier; OpenBLAS runs
 * single-threaded inside. */
enum { BLOCK_FLOATS = 1 << 16,    /* 256 KiB of columns per block */
       PAR_WORK = 1 << 22 };      /* multiply-adds before threads pay off */

static int64_t block_rows(const conv_geom *g) {
  int64_t k = g->kh * g->kw * g->c, rows = BLOCK_FLOATS / k;
  return rows < 32 ? 32 : rows;
}

static int threads_for(int64_t work, int64_t blocks) {
#ifdef _OPENMP
  if (work < PAR_WORK) return 1;
  int n = omp_get_max_threads();
  return n < blocks ? n : (int)blocks;
#else
  (void)work; (void)blocks;
  return 1;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/* A 1x1 kernel with stride 1 and no padding: the input already is the column matrix. */
static int is_pointwise(const conv_geom *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 &&
         g->oh == g->h && g->ow == g->w;
}

/* col (r1-r0, KH*KW*C) <- the patches of output pixels r0..r1 (over the whole
 * batch x (N,H,W,C)); zeros where padded. */
static void im2col(const conv_geom *g, const float *x, int64_t r0, int64_t r1, float *col) {
  const int64_t K = g->kh * g->kw * g->c, P = g->oh * g->ow, C = g->c;
  for (int64_t r = r0; r < r1; r++) {
    int64_t n = r / P, p = r % P, oy = p / g->ow, ox = p % g->ow;
    const float *img = x + n * g->h * g->w * C;
    float *dst = col + (r - r0) * K;
    int64_t ix0 = ox * g->sw - g->pl;
    for (int64_t ky = 0; ky < g->kh; ky++) {
      int64_t iy = oy * g->sh - g->pt + ky * g->dh;
      if (iy < 0 || iy >= g->h) { memset(dst, 0, sizeof(float) * g->kw * C); dst += g->kw * C; continue; }
      const float *row = img + iy * g->w * C;
      if (g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->w) {   /* the whole kernel row is inside */
        memcpy(dst, row + ix0 * C, sizeof(float) * g->kw * C);
        dst += g->kw * C;
        continue;
      }
      for (int64_t kx = 0; kx < g->kw; kx++, dst += C) {
        int64_t ix = ix0 + kx * g->dw;
        if (ix < 0 || ix >= g->w) memset(dst, 0, sizeof(float) * C);
        else if (C == 1) dst[0] = row[ix];
        else memcpy(dst, row + ix * C, sizeof(float) * C);
      }
    }
  }
}

/* dx (nimg,H,W,C) += scatter of dcol (nimg*OH*OW, KH*KW*C) for whole images,
 * written as a gather over input pixels (no two writes to one element). */
static void col2im_add(const conv_geom *g, const float *dcol, int64_t nimg, float *dx) {
  const int64_t K = g->kh * g->kw * g->c, C = g->c, pix = nimg * g->h * g->w;
  for (int64_t q = 0; q < pix; q++) {
    int64_t n = q / (g->h * g->w), rem = q % (g->h * g->w), iy = rem / g->w, ix = rem % g->w;
    float *d = dx + q * C;
    for (int64_t ky = 0; ky < g->kh; ky++) {
      int64_t ty = iy + g->pt - ky * g->dh;
      if (ty < 0 || ty % g->sh) continue;
      int64_t oy = ty / g->sh;
      if (oy >= g->oh) continue;
      for (int64_t kx = 0; kx < g->kw; kx++) {
        int64_t tx = ix + g->pl - kx * g->dw;
        if (tx < 0 || tx % g->sw) continue;
        int64_t ox = tx / g->sw;
        if (ox >= g->ow) continue;
        const float *s = dcol + ((n * g->oh + oy) * g->ow + ox) * K + (ky * g->kw + kx) * C;
        for (int64_t c = 0; c < C; c++) d[c] += s[c];
      }
    }
  }
}

/* dx += the patches dcol (r1-r0, KH*KW*C) of output pixels r0..r1 put back
 * where they came from; serial (overlapping patches add to the same pixels). */
static void col2im_scatter(const conv_geom *g, const float *dcol, int64_t r0, int64_t r1, float *dx) {
  const int64_t K = g->kh * g->kw * g->c, P = g->oh * g->ow, C = g->c;
  for (int64_t r = r0; r < r1; r++) {
    int64_t n = r / P, p = r % P, oy = p / g->ow, ox = p % g->ow;
    const float *src = dcol + (r - r0) * K;
    for (int64_t ky = 0; ky < g->kh; ky++) {
      int64_t iy = oy * g->sh - g->pt + ky * g->dh;
      for (int64_t kx = 0; kx < g->kw; kx++, src += C) {
        int64_t ix = ox * g->sw - g->pl + kx * g->dw;
        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
        float *d = dx + ((n * g->h + iy) * g->w + ix) * C;
        for (int64_t c = 0; c < C; c++) d[c] += src[c];
      }
    }
  }
}

enum { DIRECT_MAX_K = 32 };
/* 8 floats, unaligned: the direct loop's accumulators (two SSE halves where AVX is missing). */
typedef float v8f __attribute__((vector_size(32), aligned(4)));

/* y = conv(x, k) + bias by direct accumulation, for thin patches (a first
 * layer: 3x3 over 1 or 3 channels) where im2col + sgemm would mostly move
 * memory: each output pixel's O outputs accumulate in one pass. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void conv_direct(const conv_geom *g, const float *x, const float *k, const float *bias, float *y) {
  const int64_t P = g->oh * g->ow, rows = g->n * P, C = g->c, O = g->o;
  KL_PAR_FOR_W(rows, rows * O * g->kh * g->kw * C, r,
    int64_t n = r / P, p = r % P, oy = p / g->ow, ox = p % g->ow;
    /* the taps inside the image: pixel offsets and kernel offsets */
    int64_t xoff[DIRECT_MAX_K], koff[DIRECT_MAX_K], nt = 0;
    for (int64_t ky = 0; ky < g->kh; ky++) {
      int64_t iy = oy * g->sh - g->pt + ky * g->dh;
      if (iy < 0 || iy >= g->h) continue;
      for (int64_t kx = 0; kx < g->kw; kx++) {
        int64_t ix = ox * g->sw - g->pl + kx * g->dw;
        if (ix < 0 || ix >= g->w) continue;
        for (int64_t c = 0; c < C; c++, nt++) {
          xoff[nt] = ((n * g->h + iy) * g->w + ix) * C + c;
          koff[nt] = ((ky * g->kw + kx) * C + c) * O;
        }
      }
    }
    float *out = y + r * O;
    int64_t o0 = 0;
    for (; o0 + 16 <= O; o0 += 16) {   /* 16 outputs in two 8-wide registers */
      v8f a0 = {0}, a1 = {0};
      if (bias) { a0 = *(const v8f *)(bias + o0); a1 = *(const v8f *)(bias + o0 + 8); }
      for (int64_t t = 0; t < nt; t++) {
        const float v = x[xoff[t]], *kr = k + koff[t] + o0;
        a0 += v * *(const v8f *)kr;
        a1 += v * *(const v8f *)(kr + 8);
      }
      *(v8f *)(out + o0) = a0;
      *(v8f *)(out + o0 + 8) = a1;
    }
    for (int64_t o = o0; o < O; o++) {
      float acc = bias ? bias[o] : 0.0f;
      for (int64_t t = 0; t < nt; t++) acc += x[xoff[t]] * k[koff[t] + o];
      out[o] = acc;
    }
  );
}

static void fill_rows(float *y, int64_t rows, int64_t o, const float *bias) {
  for (int64_t r = 0; r < rows; r++) memcpy(y + r * o, bias, sizeof(float) * o);
}

static int out_of_memory(int64_t n) {
  return kl_failn("conv: out of memory for a %lld-float scratch buffer", (long long)n);
}

/* y (N,OH,OW,O) = conv(x, k) + bias. Returns -1 when scratch memory runs out. */
static int conv_forward(const conv_geom *g, const float *x, const float *k, const float *bias, float *y) {
  const int64_t K = g->kh * g->kw * g->c, R = g->n * g->oh * g->ow, O = g->o;
  if (K <= DIRECT_MAX_K) { conv_direct(g, x, k, bias, y); return 0; }
  if (is_pointwise(g)) {   /* one sgemm over the whole batch, OpenBLAS threads */
    if (bias) fill_rows(y, R, O, bias);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)O, (int)K, 1.0f, x, (int)K, k, (int)O,
                bias ? 1.0f : 0.0f, y, (int)O);
    return 0;
  }
  const int64_t br = block_rows(g), nb = (R + br - 1) / br;
  const int nth = threads_for(R * K * O, nb);
  float *col = kl_scratch((size_t)(nth * br * K));
  if (!col) return out_of_memory(nth * br * K);
  int blas = nth > 1 ? kl_blas_single() : 1;
  #pragma omp parallel for schedule(dynamic) num_threads(nth) if (nth > 1)
  for (int64_t b = 0; b < nb; b++) {
    int64_t r0 = b * br, r1 = r0 + br < R ? r0 + br : R;
    float *c = col + thread_id() * br * K;
    im2col(g, x, r0, r1, c);
    if (bias) fill_rows(y + r0 * O, r1 - r0, O, bias);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)O, (int)K,
                1.0f, c, (int)K, k, (int)O, bias ? 1.0f : 0.0f, y + r0 * O, (int)O);
  }
  kl_blas_restore(blas);
  kl_scratch_done();
  return 0;
}

/* dx (N,H,W,C) += conv^T(dy, k): the gradient of the input, and the forward of
 * a transposed convolution. dx must be initialised by the caller. Blocks are
 * whole images here, so that col2im never crosses into another thread's block. */
static int conv_backward_data(const conv_geom *g, const float *dy, const float *k, float *dx) {
  const int64_t K = g->kh * g->kw * g->c, P = g->oh * g->ow, O = g->o, HWC = g->h * g->w * g->c;
  if (is_pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(g->n * P), (int)K, (int)O,
                1.0f, dy, (int)O, k, (int)O, 1.0f, dx, (int)K);
    return 0;
  }
  if (P * K > BLOCK_FLOATS * 64) {
    /* Large images: row blocks one after another, OpenBLAS threads the sgemms. */
    const int64_t br = block_rows(g) * 16, R = g->n * P;
    float *dcol = kl_scratch((size_t)(br * K));
    if (!dcol) return out_of_memory(br * K);
    for (int64_t r0 = 0; r0 < R; r0 += br) {
      int64_t r1 = r0 + br < R ? r0 + br : R;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0), (int)K, (int)O,
                  1.0f, dy + r0 * O, (int)O, k, (int)O, 0.0f, dcol, (int)K);
      col2im_scatter(g, dcol, r0, r1, dx);
    }
    kl_scratch_done();
    return 0;
  }
  int64_t per = BLOCK_FLOATS / (P * K);
  const int64_t imgs = per < 1 ? 1 : per, nb = (g->n + imgs - 1) / imgs;
  const int nth = threads_for(g->n * P * K * O, nb);
  float *dcol = kl_scratch((size_t)(nth * imgs * P * K));
  if (!dcol) return out_of_memory(nth * imgs * P * K);
  int blas = nth > 1 ? kl_blas_single() : 1;
  #pragma omp parallel for schedule(dynamic) num_threads(nth) if (nth > 1)
  for (int64_t b = 0; b < nb; b++) {
    int64_t n0 = b * imgs, nimg = g->n - n0 < imgs ? g->n - n0 : imgs;
    float *c = dcol + thread_id() * imgs * P * K;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(nimg * P), (int)K, (int)O,
                1.0f, dy + n0 * P * O, (int)O, k, (int)O, 0.0f, c, (int)K);
    col2im_add(g, c, nimg, dx + n0 * HWC);
  }
  kl_blas_restore(blas);
  kl_scratch_done();
  return 0;
}

/* dk (KH,KW,C,O) += im2col(x)^T dy; each thread sums its blocks into its own
 * copy of dk, added up at the end. */
static int conv_backward_kernel(const conv_geom *g, const float *x, const float *dy, float *dk) {
  const int64_t K = g->kh * g->kw * g->c, R = g->n * g->oh * g->ow, O = g->o;
  if (is_pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)O, (int)R,
                1.0f, x, (int)K, dy, (int)O, 1.0f, dk, (int)O);
    return 0;
  }
  const int64_t br = block_rows(g), nb = (R + br - 1) / br;
  const int nth = threads_for(R * K * O, nb);
  float *col = kl_scratch((size_t)(nth * (br * K + K * O)));
  if (!col) return out_of_memory(nth * (br * K + K * O));
  float *part = col + nth * br * K;
  memset(part, 0, sizeof(float) * nth * K * O);
  int blas = nth > 1 ? kl_blas_single() : 1;
  #pragma omp parallel for schedule(dynamic) num_threads(nth) if (nth > 1)
  for (int64_t b = 0; b < nb; b++) {
    int64_t r0 = b * br, r1 = r0 + br < R ? r0 + br : R;
    int id = thread_id();
    float *c = col + id * br * K;
    im2col(g, x, r0, r1, c);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)O, (int)(r1 - r0),
                1.0f, c, (int)K, dy + r0 * O, (int)O, 1.0f, part + id * K * O, (int)O);
  }
  kl_blas_restore(blas);
  for (int t = 0; t < nth; t++)
    for (int64_t i = 0; i < K * O; i++) dk[i] += part[t * K * O + i];
  kl_scratch_done();
  return 0;
}

/* db (O) = sum of dy (rows, O) over rows. */
static void bias_grad(const float *dy, int64_t rows, int64_t o, float *db) {
  memset(db, 0, sizeof(float) * o);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < o; j++) db[j] += dy[r * o + j];
}

/* ---- shared validation --------------------------------------------------- */

static int read_strides(const char *op, const kl_attrs *a, int need, int64_t *v) {
  if (!a || a->nints < need) return kl_failn("%s: expected %d integer attributes, got %d", op, need, a ? a->nints : 0);
  for (int i = 0; i < need; i++) v[i] = a->ints[i];
  if (v[0] < 1 || v[1] < 1 || v[2] < 1 || v[3] < 1)
    return kl_failn("%s: strides and dilation must be positive, got strides (%lld,%lld) dilation (%lld,%lld)", op,
                    (long long)v[0], (long long)v[1], (long long)v[2], (long long)v[3]);
  return 0;
}

/* Inputs (x, kernel[, bias]) made contiguous; *bias is NULL when absent. */
static int take_inputs(const char *op, kl_tensor **in, int n, kl_tensor **x, kl_tensor **k, kl_tensor **b) {
  *x = *k = *b = NULL;
  if (n != 2 && n != 3) return kl_failn("%s: expected 2 or 3 inputs (x, kernel[, bias]), got %d", op, n);
  if (in[0]->nd != 4) return kl_failn("%s: expected input (N,H,W,C), got %s", op, KL_SHAPE(in[0]));
  if (in[1]->nd != 4) return kl_failn("%s: expected a 4-d kernel, got %s", op, KL_SHAPE(in[1]));
  *x = kl_tensor_contiguous(in[0]);
  *k = kl_tensor_contiguous(in[1]);
  if (n == 3 && in[2]) *b = kl_tensor_contiguous(in[2]);
  if (!*x || !*k || (n == 3 && in[2] && !*b)) return -1;
  return 0;
}

static void release3(kl_tensor *a, kl_tensor *b, kl_tensor *c) {
  kl_tensor_release(a);
  if (b) kl_tensor_release(b);
  if (c) kl_tensor_release(c);
}

/* ---- conv2d ---------------------------------------------------------------- */

static int conv2d_geom(kl_tensor *x, kl_tensor *k, kl_tensor *b, const kl_attrs *a, conv_geom *g) {
  int64_t v[8];
  if (read_strides("conv2d", a, 8, v) < 0) return -1;
  if (v[4] < 0 || v[5] < 0 || v[6] < 0 || v[7] < 0) return kl_failn("conv2d: padding must be non-negative");
  *g = (conv_geom){.n = x->dims[0], .h = x->dims[1], .w = x->dims[2], .c = x->dims[3],
                   .kh = k->dims[0], .kw = k->dims[1], .o = k->dims[3],
                   .sh = v[0], .sw = v[1], .dh = v[2], .dw = v[3], .pt = v[4], .pl = v[6]};
  if (k->dims[2] != g->c)
    return kl_failn("conv2d: kernel %s expects %lld input channels, input %s has %lld",
                    KL_SHAPE(k), (long long)k->dims[2], KL_SHAPE(x), (long long)g->c);
  if (b && (b->nd != 1 || b->dims[0] != g->o))
    return kl_failn("conv2d: expected bias (%lld), got %s", (long long)g->o, KL_SHAPE(b));
  int64_t eh = (g->kh - 1) * g->dh + 1, ew = (g->kw - 1) * g->dw + 1;
  int64_t ph = g->h + v[4] + v[5], pw = g->w + v[6] + v[7];
  if (ph < eh || pw < ew)
    return kl_failn("conv2d: input %s (padded to %lldx%lld) is smaller than the kernel %s (dilated %lldx%lld)",
                    KL_SHAPE(x), (long long)ph, (long long)pw, KL_SHAPE(k), (long long)eh, (long long)ew);
  g->oh = (ph - eh) / g->sh + 1;
  g->ow = (pw - ew) / g->sw + 1;
  return 0;
}

kl_tensor *op_conv2d_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *x, *k, *b, *y = NULL;
  conv_geom g;
  if (take_inputs("conv2d", in, n, &x, &k, &b) == 0 && conv2d_geom(x, k, b, a, &g) == 0) {
    y = kl_tensor_empty(4, (int64_t[]){g.n, g.oh, g.ow, g.o});
    if (y && conv_forward(&g, x->data, k->data, b ? b->data : NULL, y->data) < 0) { kl_tensor_release(y); y = NULL; }
  }
  if (x) release3(x, k, b);
  return y;
}

int op_conv2d_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  kl_tensor *x, *k, *b, *go = NULL, *dx = NULL, *dk = NULL, *db = NULL;
  conv_geom g;
  int rc = -1;
  if (take_inputs("conv2d", in, n, &x, &k, &b) < 0 || conv2d_geom(x, k, b, a, &g) < 0) goto done;
  if (!(go = kl_tensor_contiguous(gout))) goto done;
  /* Only the gradients the tape needs (the first layer's input needs none). */
  if (kl_need_grad(0) && (!(dx = kl_tensor_zeros(4, x->dims)) || conv_backward_data(&g, go->data, k->data, dx->data) < 0)) goto done;
  if (kl_need_grad(1) && (!(dk = kl_tensor_zeros(4, k->dims)) || conv_backward_kernel(&g, x->data, go->data, dk->data) < 0)) goto done;
  if (b && kl_need_grad(2)) {
    if (!(db = kl_tensor_empty(1, b->dims))) goto done;
    bias_grad(go->data, g.n * g.oh * g.ow, g.o, db->data);
  }
  gin[0] = dx; gin[1] = dk;
  if (n == 3) gin[2] = db;
  dx = dk = db = NULL;
  rc = 0;
done:
  kl_release_all(4, (kl_tensor *[]){go, dx, dk, db});
  if (x) release3(x, k, b);
  return rc;
}

/* ---- conv2d_transpose -------------------------------------------------------
 * x (N,H,W,Cin), kernel (KH,KW,Cout,Cin) as Keras stores it, output
 * (N,out_h,out_w,Cout): the input-gradient of a conv2d from the output back to x. */

static int conv2dt_geom(kl_tensor *x, kl_tensor *k, kl_tensor *b, const kl_attrs *a, conv_geom *g) {
  int64_t v[8];
  if (read_strides("conv2d_transpose", a, 8, v) < 0) return -1;
  if (v[4] < 0 || v[5] < 0 || v[6] < 1 || v[7] < 1)
    return kl_failn("conv2d_transpose: expected non-negative padding and a positive output size, got pad (%lld,%lld) size (%lld,%lld)",
                    (long long)v[4], (long long)v[5], (long long)v[6], (long long)v[7]);
  if (k->dims[3] != x->dims[3])
    return kl_failn("conv2d_transpose: kernel %s expects %lld input channels, input %s has %lld",
                    KL_SHAPE(k), (long long)k->dims[3], KL_SHAPE(x), (long long)x->dims[3]);
  if (b && (b->nd != 1 || b->dims[0] != k->dims[2]))
    return kl_failn("conv2d_transpose: expected bias (%lld), got %s", (long long)k->dims[2], KL_SHAPE(b));
  *g = (conv_geom){.n = x->dims[0], .h = v[6], .w = v[7], .c = k->dims[2],
                   .kh = k->dims[0], .kw = k->dims[1], .o = k->dims[3],
                   .sh = v[0], .sw = v[1], .dh = v[2], .dw = v[3], .pt = v[4], .pl = v[5],
                   .oh = x->dims[1], .ow = x->dims[2]};
  /* Output pixels no input reaches (a larger out_h/out_w) receive only the bias. */
  return 0;
}

kl_tensor *op_conv2d_transpose_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *x, *k, *b, *y = NULL;
  conv_geom g;
  if (take_inputs("conv2d_transpose", in, n, &x, &k, &b) == 0 && conv2dt_geom(x, k, b, a, &g) == 0) {
    y = kl_tensor_zeros(4, (int64_t[]){g.n, g.h, g.w, g.c});
    if (y && conv_backward_data(&g, x->data, k->data, y->data) < 0) { kl_tensor_release(y); y = NULL; }
    if (y && b) {
      int64_t rows = g.n * g.h * g.w;
      for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < g.c; j++) y->data[r * g.c + j] += b->data[j];
    }
  }
  if (x) release3(x, k, b);
  return y;
}

int op_conv2d_transpose_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  kl_tensor *x, *k, *b, *go = NULL, *dx = NULL, *dk = NULL, *db = NULL;
  conv_geom g;
  int rc = -1;
  if (take_inputs("conv2d_transpose", in, n, &x, &k, &b) < 0 || conv2dt_geom(x, k, b, a, &g) < 0) goto done;
  if (!(go = kl_tensor_contiguous(gout))) goto done;
  if (kl_need_grad(0) && (!(dx = kl_tensor_empty(4, x->dims)) || conv_forward(&g, go->data, k->data, NULL, dx->data) < 0)) goto done;
  if (kl_need_grad(1) && (!(dk = kl_tensor_zeros(4, k->dims)) || conv_backward_kernel(&g, go->data, x->data, dk->data) < 0)) goto done;
  if (b && kl_need_grad(2)) {
    if (!(db = kl_tensor_empty(1, b->dims))) goto done;
    bias_grad(go->data, g.n * g.h * g.w, g.c, db->data);
  }
  gin[0] = dx; gin[1] = dk;
  if (n == 3) gin[2] = db;
  dx = dk = db = NULL;
  rc = 0;
done:
  kl_release_all(4, (kl_tensor *[]){go, dx, dk, db});
  if (x) release3(x, k, b);
  return rc;
}

/* ---- depthwise_conv2d -------------------------------------------------------
 * x (N,H,W,C), kernel (KH,KW,C,M), output (N,OH,OW,C*M) with channel c*M+m,
 * as Keras's DepthwiseConv2D. Direct loops: the per-channel work is too thin
 * for sgemm. */

static int dw_geom(kl_tensor *x, kl_tensor *k, kl_tensor *b, const kl_attrs *a, conv_geom *g) {
  int64_t v[8];
  if (read_strides("depthwise_conv2d", a, 8, v) < 0) return -1;
  if (v[4] < 0 || v[5] < 0 || v[6] < 0 || v[7] < 0) return kl_failn("depthwise_conv2d: padding must be non-negative");
  if (k->dims[2] != x->dims[3])
    return kl_failn("depthwise_conv2d: kernel %s expects %lld channels, input %s has %lld",
                    KL_SHAPE(k), (long long)k->dims[2], KL_SHAPE(x), (long long)x->dims[3]);
  *g = (conv_geom){.n = x->dims[0], .h = x->dims[1], .w = x->dims[2], .c = x->dims[3],
                   .kh = k->dims[0], .kw = k->dims[1], .o = k->dims[3],   /* o = depth multiplier */
                   .sh = v[0], .sw = v[1], .dh = v[2], .dw = v[3], .pt = v[4], .pl = v[6]};
  if (b && (b->nd != 1 || b->dims[0] != g->c * g->o))
    return kl_failn("depthwise_conv2d: expected bias (%lld), got %s", (long long)(g->c * g->o), KL_SHAPE(b));
  int64_t eh = (g->kh - 1) * g->dh + 1, ew = (g->kw - 1) * g->dw + 1;
  int64_t ph = g->h + v[4] + v[5], pw = g->w + v[6] + v[7];
  if (ph < eh || pw < ew)
    return kl_failn("depthwise_conv2d: input %s (padded to %lldx%lld) is smaller than the kernel %s",
                    KL_SHAPE(x), (long long)ph, (long long)pw, KL_SHAPE(k));
  g->oh = (ph - eh) / g->sh + 1;
  g->ow = (pw - ew) / g->sw + 1;
  return 0;
}

kl_tensor *op_depthwise_conv2d_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *x, *k, *b, *y = NULL;
  conv_geom g;
  if (take_inputs("depthwise_conv2d", in, n, &x, &k, &b) == 0 && dw_geom(x, k, b, a, &g) == 0 &&
      (y = kl_tensor_empty(4, (int64_t[]){g.n, g.oh, g.ow, g.c * g.o}))) {
    const int64_t C = g.c, M = g.o, CM = C * M, rows = g.n * g.oh * g.ow;
    const float *xd = x->data, *kd = k->data, *bd = b ? b->data : NULL;
    float *yd = y->data;
    KL_PAR_FOR_W(rows, rows * CM * g.kh * g.kw, r,
      int64_t nn = r / (g.oh * g.ow), p = r % (g.oh * g.ow), oy = p / g.ow, ox = p % g.ow;
      float *acc = yd + r * CM;
      if (bd) memcpy(acc, bd, sizeof(float) * CM); else memset(acc, 0, sizeof(float) * CM);
      for (int64_t ky = 0; ky < g.kh; ky++) {
        int64_t iy = oy * g.sh - g.pt + ky * g.dh;
        if (iy < 0 || iy >= g.h) continue;
        for (int64_t kx = 0; kx < g.kw; kx++) {
          int64_t ix = ox * g.sw - g.pl + kx * g.dw;
          if (ix < 0 || ix >= g.w) continue;
          const float *xp = xd + ((nn * g.h + iy) * g.w + ix) * C, *kp = kd + (ky * g.kw + kx) * CM;
          if (M == 1) for (int64_t c = 0; c < C; c++) acc[c] += xp[c] * kp[c];
          else for (int64_t c = 0; c < C; c++) for (int64_t m = 0; m < M; m++) acc[c * M + m] += xp[c] * kp[c * M + m];
        }
      }
    );
  }
  if (x) release3(x, k, b);
  return y;
}

int op_depthwise_conv2d_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  kl_tensor *x, *k, *b, *go = NULL, *dx = NULL, *dk = NULL, *db = NULL;
  conv_geom g;
  int rc = -1;
  if (take_inputs("depthwise_conv2d", in, n, &x, &k, &b) < 0 || dw_geom(x, k, b, a, &g) < 0) goto done;
  if (!(go = kl_tensor_contiguous(gout))) goto done;
  if ((kl_need_grad(0) && !(dx = kl_tensor_zeros(4, x->dims))) || (kl_need_grad(1) && !(dk = kl_tensor_zeros(4, k->dims))) ||
      (b && kl_need_grad(2) && !(db = kl_tensor_empty(1, b->dims))))
    goto done;
  const int64_t C = g.c, M = g.o, CM = C * M, pix = g.n * g.h * g.w, rows = g.n * g.oh * g.ow;
  const int64_t ksize = g.kh * g.kw * CM;
  const float *xd = x->data, *kd = k->data, *gd = go->data;
  float *dxd = dx ? dx->data : NULL, *dkd = dk ? dk->data : NULL;
  /* dx: a gather over input pixels (no write conflicts). */
  KL_PAR_FOR_W((dx ? pix : 0), pix * CM * g.kh * g.kw, q,
    int64_t nn = q / (g.h * g.w), rem = q % (g.h * g.w), iy = rem / g.w, ix = rem % g.w;
    float *d = dxd + q * C;
    for (int64_t ky = 0; ky < g.kh; ky++) {
      int64_t ty = iy + g.pt - ky * g.dh;
      if (ty < 0 || ty % g.sh || ty / g.sh >= g.oh) continue;
      for (int64_t kx = 0; kx < g.kw; kx++) {
        int64_t tx = ix + g.pl - kx * g.dw;
        if (tx < 0 || tx % g.sw || tx / g.sw >= g.ow) continue;
        const float *gp = gd + ((nn * g.oh + ty / g.sh) * g.ow + tx / g.sw) * CM, *kp = kd + (ky * g.kw + kx) * CM;
        for (int64_t c = 0; c < C; c++) {
          float s = 0;
          for (int64_t m = 0; m < M; m++) s += gp[c * M + m] * kp[c * M + m];
          d[c] += s;
        }
      }
    }
  );
  /* dk: each thread sums into its own copy, then the copies are added. */
  int nth = 1;
  if (!dk) goto bias;
#ifdef _OPENMP
  if (rows * ksize > KL_PAR_MIN) nth = omp_get_max_threads();
#endif
  float *part = calloc((size_t)nth * ksize, sizeof(float));
  if (!part) { kl_failn("depthwise_conv2d: out of memory"); goto done; }
  #pragma omp parallel for schedule(static) num_threads(nth) if (nth > 1)
  for (int t = 0; t < nth; t++) {
    float *acc = part + (int64_t)t * ksize;
    for (int64_t r = t; r < rows; r += nth) {
      int64_t nn = r / (g.oh * g.ow), p = r % (g.oh * g.ow), oy = p / g.ow, ox = p % g.ow;
      const float *gp = gd + r * CM;
      for (int64_t ky = 0; ky < g.kh; ky++) {
        int64_t iy = oy * g.sh - g.pt + ky * g.dh;
        if (iy < 0 || iy >= g.h) continue;
        for (int64_t kx = 0; kx < g.kw; kx++) {
          int64_t ix = ox * g.sw - g.pl + kx * g.dw;
          if (ix < 0 || ix >= g.w) continue;
          const float *xp = xd + ((nn * g.h + iy) * g.w + ix) * C;
          float *kp = acc + (ky * g.kw + kx) * CM;
          for (int64_t c = 0; c < C; c++) for (int64_t m = 0; m < M; m++) kp[c * M + m] += xp[c] * gp[c * M + m];
        }
      }
    }
  }
  for (int t = 0; t < nth; t++)
    for (int64_t i = 0; i < ksize; i++) dkd[i] += part[(int64_t)t * ksize + i];
  free(part);
bias:
  if (db) bias_grad(gd, rows, CM, db->data);
  gin[0] = dx; gin[1] = dk;
  if (n == 3) gin[2] = db;
  dx = dk = db = NULL;
  rc = 0;
done:
  kl_release_all(4, (kl_tensor *[]){go, dx, dk, db});
  if (x) release3(x, k, b);
  return rc;
}
