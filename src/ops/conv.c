/* conv.c — convolution kernels in Keras layouts (channels-last): conv2d,
 * conv3d (with groups), conv2d_transpose, conv3d_transpose and
 * depthwise_conv2d, forward and backward side by side. conv1d is conv2d over
 * a (N,1,L,C) view (Lua); a 2-D convolution is the 3-D code with one depth
 * slice. Dense convolutions are im2col + cblas_sgemm over cache-sized blocks
 * of output pixels, one sgemm per group; thin patches (a first layer over 1-3
 * channels) use a direct loop instead. Padding amounts are explicit attrs (the
 * Lua side computes Keras's "same" split), so this file never guesses a
 * convention.
 *
 * Attrs (ints):
 *   conv2d, depthwise_conv2d: sh, sw, dh, dw, pad_top, pad_bottom, pad_left, pad_right[, groups]
 *   conv3d:                   sd, sh, sw, dd, dh, dw, pad_front, pad_back, pad_top, pad_bottom,
 *                             pad_left, pad_right[, groups]
 *   conv2d_transpose:         sh, sw, dh, dw, pad_top, pad_left, out_h, out_w
 *   conv3d_transpose:         sd, sh, sw, dd, dh, dw, pad_front, pad_top, pad_left, out_d, out_h, out_w
 * Grouped kernels are (..., C/groups, O): group g reads channels
 * [g*C/groups, (g+1)*C/groups) and writes outputs [g*O/groups, (g+1)*O/groups),
 * as Keras's `groups`. depthwise_conv2d takes no groups.
 * conv2d and conv3d take one more int after groups: an activation applied to
 * the output in place (KL_ACT_*: 0 none, 1 relu, 2 sigmoid; scratch.h).
 * Inputs: (x, kernel) or (x, kernel, bias); the bias is fused into the sgemm.
 * Backwards use raw kernels: no higher-order gradients through convolutions. */
#include "core.h"
#include "scratch.h"
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One convolution seen from its input side: input (N,D,H,W,C), kernel
 * (KD,KH,KW,C/groups,O), output (N,OD,OH,OW,O); 2-D has D = KD = OD = 1. A
 * transposed convolution is described by the convolution it transposes (its
 * output is this geometry's input). */
typedef struct {
  int64_t n, d, h, w, c;
  int64_t kd, kh, kw, o;
  int64_t sd, sh, sw, dd, dh, dw;
  int64_t pf, pt, pl;
  int64_t od, oh, ow;
  int64_t groups, cg, og;   /* channels and outputs per group */
  int act;                  /* activation fused into the output (conv2d, conv3d: KL_ACT_*) */
} conv_geom;

/* Columns of one group's patch: KD*KH*KW*C/groups. */
static int64_t patch_len(const conv_geom *g) { return g->kd * g->kh * g->kw * g->cg; }
static int64_t out_pixels(const conv_geom *g) { return g->od * g->oh * g->ow; }

/* Dense convolutions run over blocks of output rows (pixels): each block's
 * im2col columns fit in a core's L2 (BLOCK_FLOATS), and each thread
 * im2cols a block then multiplies it at once, while it is still in cache.
 * Blocks are independent, so threads share no barrier; OpenBLAS runs
 * single-threaded inside. */
enum { BLOCK_FLOATS = 1 << 16,    /* 256 KiB of columns per block */
       PAR_WORK = 1 << 22 };      /* multiply-adds before threads pay off */

static int64_t block_rows(const conv_geom *g) {
  int64_t rows = BLOCK_FLOATS / patch_len(g);
  return rows < 32 ? 32 : rows;
}

/* A 1x1(x1) kernel with stride 1 and no padding: the input already is the column matrix. */
static int is_pointwise(const conv_geom *g) {
  return g->kd == 1 && g->kh == 1 && g->kw == 1 && g->sd == 1 && g->sh == 1 && g->sw == 1 &&
         g->pf == 0 && g->pt == 0 && g->pl == 0 && g->od == g->d && g->oh == g->h && g->ow == g->w;
}

/* Output row r (a pixel over the whole batch) -> n, oz, oy, ox. */
static inline void out_pos(const conv_geom *g, int64_t r, int64_t *n, int64_t *oz, int64_t *oy, int64_t *ox) {
  int64_t P = out_pixels(g), p = r % P, hw = g->oh * g->ow;
  *n = r / P; *oz = p / hw; *oy = (p % hw) / g->ow; *ox = p % g->ow;
}

/* The output pixel after (n, oz, oy, ox), without divisions. */
static inline void next_pos(const conv_geom *g, int64_t *n, int64_t *oz, int64_t *oy, int64_t *ox) {
  if (++*ox < g->ow) return;
  *ox = 0;
  if (++*oy < g->oh) return;
  *oy = 0;
  if (++*oz < g->od) return;
  *oz = 0;
  ++*n;
}

/* col (r1-r0, KD*KH*KW*Cg) <- group grp's patches of output pixels r0..r1
 * (over the whole batch x (N,D,H,W,C)); zeros where padded. */
static void im2col(const conv_geom *g, const float *x, int64_t grp, int64_t r0, int64_t r1, float *col) {
  const conv_geom G = *g;   /* a local copy the compiler keeps in registers (stores cannot alias it) */
  const int64_t K = patch_len(&G), C = G.c, cg = G.cg, rowk = G.kw * cg;
  int64_t n, oz, oy, ox;
  out_pos(&G, r0, &n, &oz, &oy, &ox);
  for (int64_t r = r0; r < r1; r++, next_pos(&G, &n, &oz, &oy, &ox)) {
    const float *img = x + n * G.d * G.h * G.w * C + grp * cg;
    float *dst = col + (r - r0) * K;
    int64_t ix0 = ox * G.sw - G.pl;
    for (int64_t kz = 0; kz < G.kd; kz++) {
      int64_t iz = oz * G.sd - G.pf + kz * G.dd;
      if (iz < 0 || iz >= G.d) { memset(dst, 0, sizeof(float) * G.kh * rowk); dst += G.kh * rowk; continue; }
      for (int64_t ky = 0; ky < G.kh; ky++) {
        int64_t iy = oy * G.sh - G.pt + ky * G.dh;
        if (iy < 0 || iy >= G.h) { memset(dst, 0, sizeof(float) * rowk); dst += rowk; continue; }
        const float *row = img + (iz * G.h + iy) * G.w * C;
        if (cg == C && G.dw == 1 && ix0 >= 0 && ix0 + G.kw <= G.w) {   /* the whole kernel row is inside */
          memcpy(dst, row + ix0 * C, sizeof(float) * rowk);
          dst += rowk;
          continue;
        }
        for (int64_t kx = 0; kx < G.kw; kx++, dst += cg) {
          int64_t ix = ix0 + kx * G.dw;
          if (ix < 0 || ix >= G.w) memset(dst, 0, sizeof(float) * cg);
          else if (cg == 1) dst[0] = row[ix * C];
          else memcpy(dst, row + ix * C, sizeof(float) * cg);
        }
      }
    }
  }
}

/* The output position that kernel tap k of input position i feeds along one
 * axis, or -1 when none does. */
static inline int64_t tap_out(int64_t i, int64_t pad, int64_t k, int64_t dil, int64_t stride, int64_t n_out) {
  int64_t t = i + pad - k * dil;
  if (t < 0 || t % stride) return -1;
  t /= stride;
  return t < n_out ? t : -1;
}

/* dx (nimg,D,H,W,C) += group grp's scatter of dcol (nimg*OD*OH*OW, KD*KH*KW*Cg)
 * for whole images, written as a gather over input pixels (no two writes to
 * one element). */
static void col2im_add(const conv_geom *g, const float *dcol, int64_t grp, int64_t nimg, float *dx) {
  const conv_geom G = *g;   /* a local copy the compiler keeps in registers (stores cannot alias it) */
  const int64_t K = patch_len(&G), C = G.c, cg = G.cg, vol = G.d * G.h * G.w, pix = nimg * vol;
  for (int64_t q = 0; q < pix; q++) {
    int64_t n = q / vol, rem = q % vol, iz = rem / (G.h * G.w), iy = (rem / G.w) % G.h, ix = rem % G.w;
    float *d = dx + q * C + grp * cg;
    for (int64_t kz = 0; kz < G.kd; kz++) {
      int64_t oz = tap_out(iz, G.pf, kz, G.dd, G.sd, G.od);
      if (oz < 0) continue;
      for (int64_t ky = 0; ky < G.kh; ky++) {
        int64_t oy = tap_out(iy, G.pt, ky, G.dh, G.sh, G.oh);
        if (oy < 0) continue;
        for (int64_t kx = 0; kx < G.kw; kx++) {
          int64_t ox = tap_out(ix, G.pl, kx, G.dw, G.sw, G.ow);
          if (ox < 0) continue;
          const float *s = dcol + (((n * G.od + oz) * G.oh + oy) * G.ow + ox) * K + ((kz * G.kh + ky) * G.kw + kx) * cg;
          for (int64_t c = 0; c < cg; c++) d[c] += s[c];
        }
      }
    }
  }
}

/* dx += group grp's patches dcol (r1-r0, KD*KH*KW*Cg) of output pixels r0..r1
 * put back where they came from; serial (overlapping patches add to the same pixels). */
static void col2im_scatter(const conv_geom *g, const float *dcol, int64_t grp, int64_t r0, int64_t r1, float *dx) {
  const conv_geom G = *g;   /* a local copy the compiler keeps in registers (stores cannot alias it) */
  const int64_t K = patch_len(&G), C = G.c, cg = G.cg;
  int64_t n, oz, oy, ox;
  out_pos(&G, r0, &n, &oz, &oy, &ox);
  for (int64_t r = r0; r < r1; r++, next_pos(&G, &n, &oz, &oy, &ox)) {
    const float *src = dcol + (r - r0) * K;
    for (int64_t kz = 0; kz < G.kd; kz++) {
      int64_t iz = oz * G.sd - G.pf + kz * G.dd;
      for (int64_t ky = 0; ky < G.kh; ky++) {
        int64_t iy = oy * G.sh - G.pt + ky * G.dh;
        for (int64_t kx = 0; kx < G.kw; kx++, src += cg) {
          int64_t ix = ox * G.sw - G.pl + kx * G.dw;
          if (iz < 0 || iz >= G.d || iy < 0 || iy >= G.h || ix < 0 || ix >= G.w) continue;
          float *d = dx + (((n * G.d + iz) * G.h + iy) * G.w + ix) * C + grp * cg;
          for (int64_t c = 0; c < cg; c++) d[c] += src[c];
        }
      }
    }
  }
}

enum { DIRECT_MAX_K = 32 };
/* 8 floats, unaligned: the direct loop's accumulators (two SSE halves where AVX is missing). */
typedef float v8f __attribute__((vector_size(32), aligned(4)));

/* y = conv(x, k) + bias by direct accumulation, for thin patches (a first
 * layer: 3x3 over 1 or 3 channels) where im2col + sgemm would mostly move
 * memory: each output pixel's outputs accumulate in one pass per group. */
/* One output pixel (r, at (n, oz, oy, ox)) of the direct loop. */
static inline void direct_pixel(const conv_geom *g, const float *x, const float *k, const float *bias, float *y,
                                int64_t r, int64_t n, int64_t oz, int64_t oy, int64_t ox) {
  const int64_t C = g->c, cg = g->cg, og = g->og, O = g->o;
  const float *img = x + n * g->d * g->h * g->w * C;
  for (int64_t grp = 0; grp < g->groups; grp++) {
    /* the taps inside the image: pixel offsets and kernel offsets */
    int64_t xoff[DIRECT_MAX_K], koff[DIRECT_MAX_K], nt = 0;
    for (int64_t kz = 0; kz < g->kd; kz++) {
      int64_t iz = oz * g->sd - g->pf + kz * g->dd;
      if (iz < 0 || iz >= g->d) continue;
      for (int64_t ky = 0; ky < g->kh; ky++) {
        int64_t iy = oy * g->sh - g->pt + ky * g->dh;
        if (iy < 0 || iy >= g->h) continue;
        for (int64_t kx = 0; kx < g->kw; kx++) {
          int64_t ix = ox * g->sw - g->pl + kx * g->dw;
          if (ix < 0 || ix >= g->w) continue;
          const int64_t xb = ((iz * g->h + iy) * g->w + ix) * C + grp * cg, kb = ((kz * g->kh + ky) * g->kw + kx) * cg;
          for (int64_t c = 0; c < cg; c++, nt++) {
            xoff[nt] = xb + c;
            koff[nt] = (kb + c) * O + grp * og;
          }
        }
      }
    }
    float *out = y + r * O + grp * og;
    const float *b = bias ? bias + grp * og : NULL;
    int64_t o0 = 0;
    for (; o0 + 16 <= og; o0 += 16) {   /* 16 outputs in two 8-wide registers */
      v8f a0 = {0}, a1 = {0};
      if (b) { a0 = *(const v8f *)(b + o0); a1 = *(const v8f *)(b + o0 + 8); }
      for (int64_t t = 0; t < nt; t++) {
        const float v = img[xoff[t]], *kr = k + koff[t] + o0;
        a0 += v * *(const v8f *)kr;
        a1 += v * *(const v8f *)(kr + 8);
      }
      *(v8f *)(out + o0) = a0;
      *(v8f *)(out + o0 + 8) = a1;
    }
    for (int64_t o = o0; o < og; o++) {
      float acc = b ? b[o] : 0.0f;
      for (int64_t t = 0; t < nt; t++) acc += img[xoff[t]] * k[koff[t] + o];
      out[o] = acc;
    }
  }
}

/* y = conv(x, k) + bias by direct accumulation, for thin patches (a first
 * layer: 3x3 over 1 or 3 channels) where im2col + sgemm would mostly move
 * memory: each output pixel's outputs accumulate in one pass per group.
 * Tasks are output lines (n, oz, oy): the position is decoded once per line,
 * not with four divisions per pixel. */
/* PIX pixels of one line whose taps all lie inside the image (one group, O a
 * multiple of 16): the line's tap list is built once, each kernel row is
 * loaded once for the PIX pixels, and each pixel adds its own x offset. */
enum { PIX = 4 };
static inline void direct_pixels(const conv_geom *g, const float *img, const float *k, const float *bias, float *out,
                                 const int64_t *xoff, const int64_t *koff, int64_t nt, int64_t ox) {
  const int64_t O = g->o, step = g->sw * g->c;
  for (int64_t o0 = 0; o0 < O; o0 += 16) {
    v8f a[PIX][2];
    for (int p = 0; p < PIX; p++) {
      if (bias) { a[p][0] = *(const v8f *)(bias + o0); a[p][1] = *(const v8f *)(bias + o0 + 8); }
      else { a[p][0] = (v8f){0}; a[p][1] = (v8f){0}; }
    }
    for (int64_t t = 0; t < nt; t++) {
      const float *kr = k + koff[t] + o0, *xr = img + xoff[t] + ox * step;
      const v8f k0 = *(const v8f *)kr, k1 = *(const v8f *)(kr + 8);
      for (int p = 0; p < PIX; p++) {
        const float v = xr[p * step];
        a[p][0] += v * k0;
        a[p][1] += v * k1;
      }
    }
    for (int p = 0; p < PIX; p++) {
      *(v8f *)(out + p * O + o0) = a[p][0];
      *(v8f *)(out + p * O + o0 + 8) = a[p][1];
    }
  }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void conv_direct(const conv_geom *g, const float *x, const float *k, const float *bias, float *y) {
  const int64_t lines = g->n * g->od * g->oh, O = g->o;
  KL_PAR_FOR_W(lines, lines * g->ow * O * patch_len(g), l,
    const conv_geom G = *g;   /* locals: the stores below cannot alias them */
    const int64_t n = l / (G.od * G.oh), oz = (l / G.oh) % G.od, oy = l % G.oh;
    /* columns whose taps are all inside the image: ox in [x0, x1) */
    int64_t x0 = 0, x1 = 0;
    if (G.groups == 1 && O % 16 == 0) {
      x0 = (G.pl + G.sw - 1) / G.sw;
      int64_t last = G.w - 1 + G.pl - (G.kw - 1) * G.dw;   /* ox * sw <= last */
      x1 = last < 0 ? 0 : last / G.sw + 1;
      if (x1 > G.ow) x1 = G.ow;
      if (x0 > x1) x0 = x1;
    }
    int64_t xoff[DIRECT_MAX_K], koff[DIRECT_MAX_K], nt = 0;
    if (x1 - x0 >= PIX) {   /* the line's taps, relative to ox = 0 */
      for (int64_t kz = 0; kz < G.kd; kz++) {
        int64_t iz = oz * G.sd - G.pf + kz * G.dd;
        if (iz < 0 || iz >= G.d) continue;
        for (int64_t ky = 0; ky < G.kh; ky++) {
          int64_t iy = oy * G.sh - G.pt + ky * G.dh;
          if (iy < 0 || iy >= G.h) continue;
          for (int64_t kx = 0; kx < G.kw; kx++)
            for (int64_t c = 0; c < G.c; c++, nt++) {
              xoff[nt] = ((iz * G.h + iy) * G.w + kx * G.dw - G.pl) * G.c + c;
              koff[nt] = (((kz * G.kh + ky) * G.kw + kx) * G.c + c) * O;
            }
        }
      }
    }
    const float *img = x + n * G.d * G.h * G.w * G.c;
    int64_t ox = 0;
    for (; ox < G.ow; ox++) {
      if (ox >= x0 && ox + PIX <= x1) {
        direct_pixels(&G, img, k, bias, y + (l * G.ow + ox) * O, xoff, koff, nt, ox);
        ox += PIX - 1;
      } else {
        direct_pixel(&G, x, k, bias, y, l * G.ow + ox, n, oz, oy, ox);
      }
    }
    /* the line's outputs are in cache: the fused activation now */
    if (G.act != KL_ACT_LINEAR) kl_activate(y + l * G.ow * O, G.ow * O, G.act);
  );
}

static void fill_rows(float *y, int64_t rows, int64_t o, const float *bias) {
  for (int64_t r = 0; r < rows; r++) memcpy(y + r * o, bias, sizeof(float) * o);
}

static int out_of_memory(int64_t n) {
  return kl_failn("conv: out of memory for a %lld-float scratch buffer", (long long)n);
}

/* y (N,OD,OH,OW,O) = conv(x, k) + bias. Returns -1 when scratch memory runs out. */
static int conv_forward(const conv_geom *g, const float *x, const float *k, const float *bias, float *y) {
  const int64_t K = patch_len(g), R = g->n * out_pixels(g), O = g->o, C = g->c, cg = g->cg, og = g->og;
  if (K <= DIRECT_MAX_K) {
    /* products too, done without sgemm: counted and timed with them (kl_blas_flops) */
    KL_BLAS_TIMED(2 * R * og * K * g->groups, conv_direct(g, x, k, bias, y));
    return 0;
  }
  if (is_pointwise(g)) {   /* one sgemm per group over the whole batch, OpenBLAS threads */
    if (bias) fill_rows(y, R, O, bias);
    for (int64_t grp = 0; grp < g->groups; grp++)
      kl_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)og, (int)cg, 1.0f, x + grp * cg, (int)C,
                  k + grp * og, (int)O, bias ? 1.0f : 0.0f, y + grp * og, (int)O);
    kl_activate_all(y, R * O, g->act);
    return 0;
  }
  const int64_t br = block_rows(g), nb = (R + br - 1) / br;
  const int nth = kl_threads_for(R * K * O, nb, PAR_WORK);
  float *col = kl_scratch((size_t)(nth * br * K));
  if (!col) return out_of_memory(nth * br * K);
  int blas = nth > 1 ? kl_blas_single() : 1;
  #pragma omp parallel for schedule(dynamic) num_threads(nth) if (nth > 1)
  for (int64_t b = 0; b < nb; b++) {
    int64_t r0 = b * br, r1 = r0 + br < R ? r0 + br : R;
    float *c = col + kl_thread_id() * br * K;
    if (bias) fill_rows(y + r0 * O, r1 - r0, O, bias);
    for (int64_t grp = 0; grp < g->groups; grp++) {
      im2col(g, x, grp, r0, r1, c);
      kl_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)og, (int)K,
                  1.0f, c, (int)K, k + grp * og, (int)O, bias ? 1.0f : 0.0f, y + r0 * O + grp * og, (int)O);
    }
    if (g->act != KL_ACT_LINEAR) kl_activate(y + r0 * O, (r1 - r0) * O, g->act);   /* the block is in cache */
  }
  kl_blas_restore(blas);
  kl_scratch_done();
  return 0;
}

/* dx (N,D,H,W,C) += conv^T(dy, k): the gradient of the input, and the forward
 * of a transposed convolution. dx must be initialised by the caller. Blocks
 * are whole images here, so that col2im never crosses into another thread's block. */
static int conv_backward_data(const conv_geom *g, const float *dy, const float *k, float *dx) {
  const int64_t K = patch_len(g), P = out_pixels(g), O = g->o, C = g->c, cg = g->cg, og = g->og;
  const int64_t vol = g->d * g->h * g->w * C;
  if (is_pointwise(g)) {
    for (int64_t grp = 0; grp < g->groups; grp++)
      kl_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(g->n * P), (int)cg, (int)og,
                  1.0f, dy + grp * og, (int)O, k + grp * og, (int)O, 1.0f, dx + grp * cg, (int)C);
    return 0;
  }
  if (P * K > BLOCK_FLOATS * 64) {
    /* Large images: row blocks one after another, OpenBLAS threads the sgemms. */
    const int64_t br = block_rows(g) * 16, R = g->n * P;
    float *dcol = kl_scratch((size_t)(br * K));
    if (!dcol) return out_of_memory(br * K);
    for (int64_t r0 = 0; r0 < R; r0 += br) {
      int64_t r1 = r0 + br < R ? r0 + br : R;
      for (int64_t grp = 0; grp < g->groups; grp++) {
        kl_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0), (int)K, (int)og,
                    1.0f, dy + r0 * O + grp * og, (int)O, k + grp * og, (int)O, 0.0f, dcol, (int)K);
        col2im_scatter(g, dcol, grp, r0, r1, dx);
      }
    }
    kl_scratch_done();
    return 0;
  }
  int64_t per = BLOCK_FLOATS / (P * K);
  const int64_t imgs = per < 1 ? 1 : per, nb = (g->n + imgs - 1) / imgs;
  const int nth = kl_threads_for(g->n * P * K * O, nb, PAR_WORK);
  float *dcol = kl_scratch((size_t)(nth * imgs * P * K));
  if (!dcol) return out_of_memory(nth * imgs * P * K);
  int blas = nth > 1 ? kl_blas_single() : 1;
  #pragma omp parallel for schedule(dynamic) num_threads(nth) if (nth > 1)
  for (int64_t b = 0; b < nb; b++) {
    int64_t n0 = b * imgs, nimg = g->n - n0 < imgs ? g->n - n0 : imgs;
    float *c = dcol + kl_thread_id() * imgs * P * K;
    for (int64_t grp = 0; grp < g->groups; grp++) {
      kl_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(nimg * P), (int)K, (int)og,
                  1.0f, dy + n0 * P * O + grp * og, (int)O, k + grp * og, (int)O, 0.0f, c, (int)K);
      col2im_add(g, c, grp, nimg, dx + n0 * vol);
    }
  }
  kl_blas_restore(blas);
  kl_scratch_done();
  return 0;
}

/* dk (KD,KH,KW,Cg,O) += im2col(x)^T dy, group by group; each thread sums its
 * blocks into its own copy of dk, added up at the end. */
static int conv_backward_kernel(const conv_geom *g, const float *x, const float *dy, float *dk) {
  const int64_t K = patch_len(g), R = g->n * out_pixels(g), O = g->o, C = g->c, cg = g->cg, og = g->og;
  if (is_pointwise(g)) {
    for (int64_t grp = 0; grp < g->groups; grp++)
      kl_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)cg, (int)og, (int)R,
                  1.0f, x + grp * cg, (int)C, dy + grp * og, (int)O, 1.0f, dk + grp * og, (int)O);
    return 0;
  }
  const int64_t br = block_rows(g), nb = (R + br - 1) / br;
  const int nth = kl_threads_for(R * K * O, nb, PAR_WORK);
  float *col = kl_scratch((size_t)(nth * (br * K + K * O)));
  if (!col) return out_of_memory(nth * (br * K + K * O));
  float *part = col + nth * br * K;
  memset(part, 0, sizeof(float) * nth * K * O);
  int blas = nth > 1 ? kl_blas_single() : 1;
  #pragma omp parallel for schedule(dynamic) num_threads(nth) if (nth > 1)
  for (int64_t b = 0; b < nb; b++) {
    int64_t r0 = b * br, r1 = r0 + br < R ? r0 + br : R;
    int id = kl_thread_id();
    float *c = col + id * br * K;
    for (int64_t grp = 0; grp < g->groups; grp++) {
      im2col(g, x, grp, r0, r1, c);
      kl_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)og, (int)(r1 - r0),
                  1.0f, c, (int)K, dy + r0 * O + grp * og, (int)O, 1.0f, part + id * K * O + grp * og, (int)O);
    }
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

/* "(a,b)" / "(a,b,c)" */
static const char *tuple_str(const int64_t *v, int n, char *buf, size_t len) {
  size_t at = 0;
  at += (size_t)snprintf(buf + at, len - at, "(");
  for (int i = 0; i < n && at < len; i++) at += (size_t)snprintf(buf + at, len - at, i ? ",%lld" : "%lld", (long long)v[i]);
  if (at < len) snprintf(buf + at, len - at, ")");
  return buf;
}
#define TUPLE(v, n) tuple_str((v), (n), (char[96]){0}, 96)

/* "5x6" / "4x5x6" */
static const char *size_str(const int64_t *v, int n, char *buf, size_t len) {
  size_t at = 0;
  for (int i = 0; i < n && at < len; i++) at += (size_t)snprintf(buf + at, len - at, i ? "x%lld" : "%lld", (long long)v[i]);
  return buf;
}
#define SIZES(v, n) size_str((v), (n), (char[96]){0}, 96)

static int read_strides(const char *op, const kl_attrs *a, int need, int64_t *v) {
  if (!a || a->nints < need) return kl_failn("%s: expected %d integer attributes, got %d", op, need, a ? a->nints : 0);
  for (int i = 0; i < need; i++) v[i] = a->ints[i];
  if (v[0] < 1 || v[1] < 1 || v[2] < 1 || v[3] < 1)
    return kl_failn("%s: strides and dilation must be positive, got strides (%lld,%lld) dilation (%lld,%lld)", op,
                    (long long)v[0], (long long)v[1], (long long)v[2], (long long)v[3]);
  return 0;
}

/* Inputs (x, kernel[, bias]) made contiguous; *bias is NULL when absent.
 * rank: the spatial rank (2 or 3). */
static int take_inputs(const char *op, int rank, kl_tensor **in, int n, kl_tensor **x, kl_tensor **k, kl_tensor **b) {
  *x = *k = *b = NULL;
  if (n != 2 && n != 3) return kl_failn("%s: expected 2 or 3 inputs (x, kernel[, bias]), got %d", op, n);
  if (in[0]->nd != rank + 2)
    return kl_failn("%s: expected input %s, got %s", op, rank == 3 ? "(N,D,H,W,C)" : "(N,H,W,C)", KL_SHAPE(in[0]));
  if (in[1]->nd != rank + 2) return kl_failn("%s: expected a %d-d kernel, got %s", op, rank + 2, KL_SHAPE(in[1]));
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

/* Per-axis attributes of a rank-2 or rank-3 op, laid out as 3-D (depth 1 for 2-D). */
typedef struct { int64_t s[3], dl[3], before[3], after[3], size[3]; } axis_args;

/* `rank` values into the last `rank` of dst's three axes. */
static void spread(const int64_t *v, int rank, int64_t *dst) {
  for (int i = 0; i < rank; i++) dst[3 - rank + i] = v[i];
}

/* ---- conv2d, conv3d ---------------------------------------------------------
 * x (N,[D,]H,W,C), kernel ([KD,]KH,KW,C/groups,O), output (N,[OD,]OH,OW,O). */

static int conv_geom_of(const char *op, int rank, kl_tensor *x, kl_tensor *k, kl_tensor *b, const kl_attrs *a, conv_geom *g) {
  const int need = 4 * rank;
  if (!a || a->nints < need) return kl_failn("%s: expected %d integer attributes, got %d", op, need, a ? a->nints : 0);
  const int64_t *v = a->ints;
  axis_args ax = {{1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, {1, 1, 1}};
  int64_t ks[3] = {1, 1, 1};
  spread(v, rank, ax.s);
  spread(v + rank, rank, ax.dl);
  for (int i = 0; i < rank; i++) {
    ax.before[3 - rank + i] = v[2 * rank + 2 * i];
    ax.after[3 - rank + i] = v[2 * rank + 2 * i + 1];
    ax.size[3 - rank + i] = x->dims[1 + i];
    ks[3 - rank + i] = k->dims[i];
  }
  for (int i = 0; i < 3; i++)
    if (ax.s[i] < 1 || ax.dl[i] < 1)
      return kl_failn("%s: strides and dilation must be positive, got strides %s dilation %s", op,
                      TUPLE(v, rank), TUPLE(v + rank, rank));
  for (int i = 0; i < 3; i++)
    if (ax.before[i] < 0 || ax.after[i] < 0) return kl_failn("%s: padding must be non-negative", op);
  const int64_t groups = a->nints > need ? v[need] : 1, act = a->nints > need + 1 ? v[need + 1] : KL_ACT_LINEAR;
  const int64_t C = x->dims[rank + 1], kc = k->dims[rank], O = k->dims[rank + 1];
  if (groups < 1) return kl_failn("%s: groups must be a positive integer, got %lld", op, (long long)groups);
  if (act < KL_ACT_LINEAR || act > KL_ACT_SIGMOID) return kl_failn("%s: unknown activation code %lld", op, (long long)act);
  if (kc * groups != C) {
    if (groups == 1)
      return kl_failn("%s: kernel %s expects %lld input channels, input %s has %lld",
                      op, KL_SHAPE(k), (long long)kc, KL_SHAPE(x), (long long)C);
    return kl_failn("%s: kernel %s with %lld groups expects %lld input channels (%lld per group), input %s has %lld",
                    op, KL_SHAPE(k), (long long)groups, (long long)(kc * groups), (long long)kc, KL_SHAPE(x), (long long)C);
  }
  if (O % groups)
    return kl_failn("%s: kernel %s has %lld filters, which %lld groups do not divide", op, KL_SHAPE(k),
                    (long long)O, (long long)groups);
  if (b && (b->nd != 1 || b->dims[0] != O))
    return kl_failn("%s: expected bias (%lld), got %s", op, (long long)O, KL_SHAPE(b));
  int64_t eff[3], padded[3], out[3];
  for (int i = 0; i < 3; i++) {
    eff[i] = (ks[i] - 1) * ax.dl[i] + 1;
    padded[i] = ax.size[i] + ax.before[i] + ax.after[i];
  }
  for (int i = 0; i < 3; i++)
    if (padded[i] < eff[i])
      return kl_failn("%s: input %s (padded to %s) is smaller than the kernel %s (dilated %s)", op, KL_SHAPE(x),
                      SIZES(padded + 3 - rank, rank), KL_SHAPE(k), SIZES(eff + 3 - rank, rank));
  for (int i = 0; i < 3; i++) out[i] = (padded[i] - eff[i]) / ax.s[i] + 1;
  *g = (conv_geom){.n = x->dims[0], .d = ax.size[0], .h = ax.size[1], .w = ax.size[2], .c = C,
                   .kd = ks[0], .kh = ks[1], .kw = ks[2], .o = O,
                   .sd = ax.s[0], .sh = ax.s[1], .sw = ax.s[2], .dd = ax.dl[0], .dh = ax.dl[1], .dw = ax.dl[2],
                   .pf = ax.before[0], .pt = ax.before[1], .pl = ax.before[2],
                   .od = out[0], .oh = out[1], .ow = out[2],
                   .groups = groups, .cg = C / groups, .og = O / groups, .act = (int)act};
  return 0;
}

/* The output's shape (N,[OD,]OH,OW,O). */
static kl_tensor *conv_output(const conv_geom *g, int rank, int zeros) {
  int64_t dims[5] = {g->n, g->od, g->oh, g->ow, g->o};
  if (rank == 2) { dims[1] = g->oh; dims[2] = g->ow; dims[3] = g->o; }
  return zeros ? kl_tensor_zeros(rank + 2, dims) : kl_tensor_empty(rank + 2, dims);
}

static kl_tensor *conv_fwd(const char *op, int rank, kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *x, *k, *b, *y = NULL;
  conv_geom g;
  if (take_inputs(op, rank, in, n, &x, &k, &b) == 0 && conv_geom_of(op, rank, x, k, b, a, &g) == 0) {
    y = conv_output(&g, rank, 0);
    if (y && conv_forward(&g, x->data, k->data, b ? b->data : NULL, y->data) < 0) { kl_tensor_release(y); y = NULL; }
  }
  if (x) release3(x, k, b);
  return y;
}

static int conv_bwd(const char *op, int rank, kl_tensor **in, int n, const kl_attrs *a, kl_tensor *out, kl_tensor *gout,
                    kl_tensor **gin) {
  kl_tensor *x, *k, *b, *go = NULL, *gz = NULL, *dx = NULL, *dk = NULL, *db = NULL;
  conv_geom g;
  int rc = -1;
  if (take_inputs(op, rank, in, n, &x, &k, &b) < 0 || conv_geom_of(op, rank, x, k, b, a, &g) < 0) goto done;
  /* through the fused activation first: g * act'(y), from the output y */
  if (!(gz = kl_activation_grad(gout, out, g.act)) || !(go = kl_tensor_contiguous(gz))) goto done;
  /* Only the gradients the tape needs (the first layer's input needs none). */
  if (kl_need_grad(0) && (!(dx = kl_tensor_zeros(x->nd, x->dims)) || conv_backward_data(&g, go->data, k->data, dx->data) < 0)) goto done;
  if (kl_need_grad(1) && (!(dk = kl_tensor_zeros(k->nd, k->dims)) || conv_backward_kernel(&g, x->data, go->data, dk->data) < 0)) goto done;
  if (b && kl_need_grad(2)) {
    if (!(db = kl_tensor_empty(1, b->dims))) goto done;
    bias_grad(go->data, g.n * out_pixels(&g), g.o, db->data);
  }
  gin[0] = dx; gin[1] = dk;
  if (n == 3) gin[2] = db;
  dx = dk = db = NULL;
  rc = 0;
done:
  kl_release_all(5, (kl_tensor *[]){gz, go, dx, dk, db});
  if (x) release3(x, k, b);
  return rc;
}

kl_tensor *op_conv2d_fwd(kl_tensor **in, int n, const kl_attrs *a) { return conv_fwd("conv2d", 2, in, n, a); }
int op_conv2d_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  return conv_bwd("conv2d", 2, in, n, a, out, gout, gin);
}

kl_tensor *op_conv3d_fwd(kl_tensor **in, int n, const kl_attrs *a) { return conv_fwd("conv3d", 3, in, n, a); }
int op_conv3d_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  return conv_bwd("conv3d", 3, in, n, a, out, gout, gin);
}

/* ---- conv2d_transpose, conv3d_transpose --------------------------------------
 * x (N,[D,]H,W,Cin), kernel ([KD,]KH,KW,Cout,Cin) as Keras stores it, output
 * (N,[out_d,]out_h,out_w,Cout): the input-gradient of a convolution from the
 * output back to x. */

static int convt_geom_of(const char *op, int rank, kl_tensor *x, kl_tensor *k, kl_tensor *b, const kl_attrs *a, conv_geom *g) {
  const int need = 4 * rank;
  if (!a || a->nints < need) return kl_failn("%s: expected %d integer attributes, got %d", op, need, a ? a->nints : 0);
  const int64_t *v = a->ints;
  axis_args ax = {{1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, {1, 1, 1}};
  int64_t ks[3] = {1, 1, 1}, xs[3] = {1, 1, 1};
  spread(v, rank, ax.s);
  spread(v + rank, rank, ax.dl);
  spread(v + 2 * rank, rank, ax.before);
  spread(v + 3 * rank, rank, ax.size);
  for (int i = 0; i < rank; i++) { ks[3 - rank + i] = k->dims[i]; xs[3 - rank + i] = x->dims[1 + i]; }
  for (int i = 0; i < 3; i++)
    if (ax.s[i] < 1 || ax.dl[i] < 1)
      return kl_failn("%s: strides and dilation must be positive, got strides %s dilation %s", op,
                      TUPLE(v, rank), TUPLE(v + rank, rank));
  for (int i = 0; i < 3; i++)
    if (ax.before[i] < 0 || ax.size[i] < 1)
      return kl_failn("%s: expected non-negative padding and a positive output size, got pad %s size %s", op,
                      TUPLE(v + 2 * rank, rank), TUPLE(v + 3 * rank, rank));
  if (k->dims[rank + 1] != x->dims[rank + 1])
    return kl_failn("%s: kernel %s expects %lld input channels, input %s has %lld",
                    op, KL_SHAPE(k), (long long)k->dims[rank + 1], KL_SHAPE(x), (long long)x->dims[rank + 1]);
  if (b && (b->nd != 1 || b->dims[0] != k->dims[rank]))
    return kl_failn("%s: expected bias (%lld), got %s", op, (long long)k->dims[rank], KL_SHAPE(b));
  *g = (conv_geom){.n = x->dims[0], .d = ax.size[0], .h = ax.size[1], .w = ax.size[2], .c = k->dims[rank],
                   .kd = ks[0], .kh = ks[1], .kw = ks[2], .o = k->dims[rank + 1],
                   .sd = ax.s[0], .sh = ax.s[1], .sw = ax.s[2], .dd = ax.dl[0], .dh = ax.dl[1], .dw = ax.dl[2],
                   .pf = ax.before[0], .pt = ax.before[1], .pl = ax.before[2],
                   .od = xs[0], .oh = xs[1], .ow = xs[2], .groups = 1};
  g->cg = g->c;
  g->og = g->o;
  /* Output pixels no input reaches (a larger output size) receive only the bias. */
  return 0;
}

static kl_tensor *convt_fwd(const char *op, int rank, kl_tensor **in, int n, const kl_attrs *a) {
  kl_tensor *x, *k, *b, *y = NULL;
  conv_geom g;
  if (take_inputs(op, rank, in, n, &x, &k, &b) == 0 && convt_geom_of(op, rank, x, k, b, a, &g) == 0) {
    int64_t dims[5] = {g.n, g.d, g.h, g.w, g.c};
    if (rank == 2) { dims[1] = g.h; dims[2] = g.w; dims[3] = g.c; }
    y = kl_tensor_zeros(rank + 2, dims);
    if (y && conv_backward_data(&g, x->data, k->data, y->data) < 0) { kl_tensor_release(y); y = NULL; }
    if (y && b) {
      int64_t rows = g.n * g.d * g.h * g.w;
      for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < g.c; j++) y->data[r * g.c + j] += b->data[j];
    }
  }
  if (x) release3(x, k, b);
  return y;
}

static int convt_bwd(const char *op, int rank, kl_tensor **in, int n, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  kl_tensor *x, *k, *b, *go = NULL, *dx = NULL, *dk = NULL, *db = NULL;
  conv_geom g;
  int rc = -1;
  if (take_inputs(op, rank, in, n, &x, &k, &b) < 0 || convt_geom_of(op, rank, x, k, b, a, &g) < 0) goto done;
  if (!(go = kl_tensor_contiguous(gout))) goto done;
  if (kl_need_grad(0) && (!(dx = kl_tensor_empty(x->nd, x->dims)) || conv_forward(&g, go->data, k->data, NULL, dx->data) < 0)) goto done;
  if (kl_need_grad(1) && (!(dk = kl_tensor_zeros(k->nd, k->dims)) || conv_backward_kernel(&g, go->data, x->data, dk->data) < 0)) goto done;
  if (b && kl_need_grad(2)) {
    if (!(db = kl_tensor_empty(1, b->dims))) goto done;
    bias_grad(go->data, g.n * g.d * g.h * g.w, g.c, db->data);
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

kl_tensor *op_conv2d_transpose_fwd(kl_tensor **in, int n, const kl_attrs *a) { return convt_fwd("conv2d_transpose", 2, in, n, a); }
int op_conv2d_transpose_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  return convt_bwd("conv2d_transpose", 2, in, n, a, gout, gin);
}

kl_tensor *op_conv3d_transpose_fwd(kl_tensor **in, int n, const kl_attrs *a) { return convt_fwd("conv3d_transpose", 3, in, n, a); }
int op_conv3d_transpose_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  return convt_bwd("conv3d_transpose", 3, in, n, a, gout, gin);
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
  *g = (conv_geom){.n = x->dims[0], .d = 1, .h = x->dims[1], .w = x->dims[2], .c = x->dims[3],
                   .kd = 1, .kh = k->dims[0], .kw = k->dims[1], .o = k->dims[3],   /* o = depth multiplier */
                   .sd = 1, .sh = v[0], .sw = v[1], .dd = 1, .dh = v[2], .dw = v[3], .pt = v[4], .pl = v[6],
                   .od = 1, .groups = 1};
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
  if (take_inputs("depthwise_conv2d", 2, in, n, &x, &k, &b) == 0 && dw_geom(x, k, b, a, &g) == 0 &&
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
  if (take_inputs("depthwise_conv2d", 2, in, n, &x, &k, &b) < 0 || dw_geom(x, k, b, a, &g) < 0) goto done;
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
