/* pool.c — pooling and resizing kernels, channels-last (N,[D,]H,W,C) like
 * Keras: max_pool2d, avg_pool2d, max_pool3d, avg_pool3d, upsampling2d
 * (nearest), zero_padding2d, forward and backward side by side. 1-D pooling
 * is the 2-D kernel over a (N,1,L,C) view and 2-D pooling the 3-D code with
 * one depth slice; global pooling is a reduction (ops.mean / ops.max), not a
 * kernel here.
 *
 * Attrs (ints):
 *   max_pool2d, avg_pool2d: pool_h, pool_w, sh, sw, pad_top, pad_bottom, pad_left, pad_right
 *   max_pool3d, avg_pool3d: pool_d, pool_h, pool_w, sd, sh, sw, pad_front, pad_back,
 *                           pad_top, pad_bottom, pad_left, pad_right
 *     Padded positions never take part: max ignores them, the average divides
 *     by the number of real elements in the window (Keras/TF "same").
 *   upsampling2d:   size_h, size_w
 *   zero_padding2d: top, bottom, left, right */
#include "core.h"
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Input (N,D,H,W,C), windows (PD,PH,PW), output (N,OD,OH,OW,C); 2-D has D = PD = OD = 1. */
typedef struct {
  int64_t n, d, h, w, c, pd, ph, pw, sd, sh, sw, pf, pt, pl, od, oh, ow;
} pool_geom;

/* rank 2 or 3: the attrs and x (N,[D,]H,W,C) as a 3-D geometry. */
static int pool_setup(const char *op, int rank, kl_tensor *x, const kl_attrs *a, pool_geom *g) {
  if (x->nd != rank + 2) return kl_failn("%s: expected input %s, got %s", op, rank == 3 ? "(N,D,H,W,C)" : "(N,H,W,C)", KL_SHAPE(x));
  const int need = 4 * rank;
  if (!a || a->nints < need) return kl_failn("%s: expected %d integer attributes, got %d", op, need, a ? a->nints : 0);
  const int64_t *v = a->ints;
  int64_t p[3] = {1, 1, 1}, s[3] = {1, 1, 1}, before[3] = {0, 0, 0}, after[3] = {0, 0, 0}, size[3] = {1, 1, 1}, out[3];
  for (int i = 0, j = 3 - rank; i < rank; i++, j++) {
    p[j] = v[i]; s[j] = v[rank + i]; before[j] = v[2 * rank + 2 * i]; after[j] = v[2 * rank + 2 * i + 1];
    size[j] = x->dims[1 + i];
  }
  char ps[64] = "(", ss[64] = "(";
  for (int i = 0; i < rank; i++) {
    snprintf(ps + strlen(ps), sizeof ps - strlen(ps), i ? ",%lld" : "%lld", (long long)v[i]);
    snprintf(ss + strlen(ss), sizeof ss - strlen(ss), i ? ",%lld" : "%lld", (long long)v[rank + i]);
  }
  strcat(ps, ")");
  strcat(ss, ")");
  for (int j = 0; j < 3; j++)
    if (p[j] < 1 || s[j] < 1) return kl_failn("%s: pool size and strides must be positive, got pool %s strides %s", op, ps, ss);
  for (int j = 0; j < 3; j++)
    if (before[j] < 0 || after[j] < 0 || before[j] >= p[j] || after[j] >= p[j])
      return kl_failn("%s: padding must be non-negative and smaller than the pool size", op);
  for (int j = 0; j < 3; j++) {
    int64_t padded = size[j] + before[j] + after[j];
    if (padded < p[j]) return kl_failn("%s: input %s is smaller than the pool size %s", op, KL_SHAPE(x), ps);
    out[j] = (padded - p[j]) / s[j] + 1;
  }
  *g = (pool_geom){.n = x->dims[0], .d = size[0], .h = size[1], .w = size[2], .c = x->dims[rank + 1],
                   .pd = p[0], .ph = p[1], .pw = p[2], .sd = s[0], .sh = s[1], .sw = s[2],
                   .pf = before[0], .pt = before[1], .pl = before[2], .od = out[0], .oh = out[1], .ow = out[2]};
  return 0;
}

/* The window of an output pixel, clipped to the real input: [lo, hi) per axis. */
typedef struct { int64_t z0, z1, y0, y1, x0, x1; } pool_window;

/* [lo, hi) of output position o along an axis: window p, stride s, padding before, size n. */
static inline void clip_window(int64_t o, int64_t p, int64_t s, int64_t before, int64_t n, int64_t *lo, int64_t *hi) {
  *lo = o * s - before;
  *hi = *lo + p;
  if (*lo < 0) *lo = 0;
  if (*hi > n) *hi = n;
}

/* Output lines (n, oz, oy) over the whole batch: line l's image, and the
 * depth and row extent of its windows (the columns are set per pixel). */
static inline pool_window line_window(const pool_geom *g, int64_t l, int64_t *n) {
  pool_window w;
  *n = l / (g->od * g->oh);
  clip_window((l / g->oh) % g->od, g->pd, g->sd, g->pf, g->d, &w.z0, &w.z1);
  clip_window(l % g->oh, g->ph, g->sh, g->pt, g->h, &w.y0, &w.y1);
  return w;
}

static kl_tensor *pool_output(const pool_geom *g, int rank) {
  int64_t dims[5] = {g->n, g->od, g->oh, g->ow, g->c};
  if (rank == 2) { dims[1] = g->oh; dims[2] = g->ow; dims[3] = g->c; }
  return kl_tensor_empty(rank + 2, dims);
}

/* ---- max_pool2d, max_pool3d ------------------------------------------------- */

static kl_tensor *max_pool_fwd(const char *op, int rank, kl_tensor **in, const kl_attrs *a) {
  pool_geom g;
  if (pool_setup(op, rank, in[0], a, &g) < 0) return NULL;
  kl_tensor *x = kl_tensor_contiguous(in[0]);
  if (!x) return NULL;
  kl_tensor *y = pool_output(&g, rank);
  if (y) {
    const float *xd = x->data;
    float *yd = y->data;
    const int64_t lines = g.n * g.od * g.oh, C = g.c;
    KL_PAR_FOR_W(lines, lines * g.ow * C * g.pd * g.ph * g.pw, l,
      int64_t nn;
      pool_window w = line_window(&g, l, &nn);
      const float *img = xd + nn * g.d * g.h * g.w * C;
      for (int64_t ox = 0; ox < g.ow; ox++) {
        clip_window(ox, g.pw, g.sw, g.pl, g.w, &w.x0, &w.x1);
        float *o = yd + (l * g.ow + ox) * C;
        for (int64_t c = 0; c < C; c++) o[c] = -FLT_MAX;
        for (int64_t iz = w.z0; iz < w.z1; iz++)
          for (int64_t iy = w.y0; iy < w.y1; iy++)
            for (int64_t ix = w.x0; ix < w.x1; ix++) {
              const float *s = img + ((iz * g.h + iy) * g.w + ix) * C;
              for (int64_t c = 0; c < C; c++) o[c] = s[c] > o[c] ? s[c] : o[c];
            }
      }
    );
  }
  kl_tensor_release(x);
  return y;
}

/* One image of the max-pool backward: for every window, each channel's first
 * maximum (bv: its value, bi: its spatial index) gets the gradient. The channel
 * loop uses branch-free selects so that it vectorizes (random data would
 * mispredict half the branches); compiled per ISA with the scan inlined. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void max_pool_bwd_image(const pool_geom *g, int64_t nn, const float *img, const float *gd, float *dimg,
                               float *bv, int32_t *bi, int tiled) {
  const int64_t C = g->c, lines = g->od * g->oh;
  for (int64_t l = 0; l < lines; l++) {   /* window rows first: no division per pixel */
    int64_t unused;
    pool_window w = line_window(g, nn * lines + l, &unused);
    for (int64_t ox = 0; ox < g->ow; ox++) {
      clip_window(ox, g->pw, g->sw, g->pl, g->w, &w.x0, &w.x1);
      const float *o = gd + ((nn * lines + l) * g->ow + ox) * C;
      int32_t first = (int32_t)((w.z0 * g->h + w.y0) * g->w + w.x0);
      for (int64_t c = 0; c < C; c++) { bv[c] = img[first * C + c]; bi[c] = first; }
      for (int64_t iz = w.z0; iz < w.z1; iz++)
        for (int64_t iy = w.y0; iy < w.y1; iy++)
          for (int64_t ix = w.x0; ix < w.x1; ix++) {
            int32_t at = (int32_t)((iz * g->h + iy) * g->w + ix);
            const float *s = img + (int64_t)at * C;
            for (int64_t c = 0; c < C; c++) {
              int gt = s[c] > bv[c];
              bv[c] = gt ? s[c] : bv[c];
              bi[c] = gt ? at : bi[c];
            }
          }
      if (!tiled) {
        for (int64_t c = 0; c < C; c++) dimg[(int64_t)bi[c] * C + c] += o[c];
        continue;
      }
      /* windows tile the image: each element is written once, its gradient or 0 */
      for (int64_t iz = w.z0; iz < w.z1; iz++)
        for (int64_t iy = w.y0; iy < w.y1; iy++)
          for (int64_t ix = w.x0; ix < w.x1; ix++) {
            int32_t at = (int32_t)((iz * g->h + iy) * g->w + ix);
            float *d = dimg + (int64_t)at * C;
            for (int64_t c = 0; c < C; c++) d[c] = bi[c] == at ? o[c] : 0.0f;
          }
    }
  }
  if (tiled) {   /* what no window covers: the last rows, columns or slices of an uneven size */
    for (int64_t iz = 0; iz < g->d; iz++)
      for (int64_t iy = 0; iy < g->h; iy++) {
        float *row = dimg + (iz * g->h + iy) * g->w * C;
        if (iz >= g->od * g->pd || iy >= g->oh * g->ph) memset(row, 0, sizeof(float) * g->w * C);
        else if (g->ow * g->pw < g->w) memset(row + g->ow * g->pw * C, 0, sizeof(float) * (g->w - g->ow * g->pw) * C);
      }
  }
}

/* The gradient goes to the first maximum of each window (recomputed here, so
 * the forward stores nothing); overlapping windows add up. */
static int max_pool_bwd(const char *op, int rank, kl_tensor **in, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  pool_geom g;
  if (pool_setup(op, rank, in[0], a, &g) < 0) return -1;
  const int64_t C = g.c, P = g.od * g.oh * g.ow, positions = g.d * g.h * g.w, vol = positions * C;
  /* the argmax is kept as a 32-bit spatial index so that it vectorizes with the float compare */
  if (positions > INT32_MAX) return kl_failn("%s: images of more than 2^31 positions are not supported, got %s", op, KL_SHAPE(in[0]));
  /* Windows that tile the image (stride = pool, no padding) write every element
   * they cover once, so dx needs no zeroing pass first (a memset as long as the
   * scan itself). */
  const int tiled = g.sd == g.pd && g.sh == g.ph && g.sw == g.pw && g.pf == 0 && g.pt == 0 && g.pl == 0;
  kl_tensor *x = kl_tensor_contiguous(in[0]), *go = kl_tensor_contiguous(gout);
  kl_tensor *dx = x && go ? (tiled ? kl_tensor_empty(x->nd, x->dims) : kl_tensor_zeros(x->nd, x->dims)) : NULL;
  float *scratch = dx ? malloc((sizeof(float) + sizeof(int32_t)) * g.c * g.n) : NULL;
  if (!scratch) {
    kl_release_all(3, (kl_tensor *[]){x, go, dx});
    return dx ? kl_failn("%s: out of memory", op) : -1;
  }
  const float *xd = x->data, *gd = go->data;
  float *dxd = dx->data;
  /* Images are independent: one thread per image, no write conflicts. */
  KL_PAR_FOR_W(g.n, g.n * P * C * g.pd * g.ph * g.pw, nn,
    max_pool_bwd_image(&g, nn, xd + nn * vol, gd, dxd + nn * vol, scratch + nn * C, (int32_t *)(scratch + g.n * C) + nn * C, tiled););
  free(scratch);
  kl_tensor_release(x);
  kl_tensor_release(go);
  gin[0] = dx;
  return 0;
}

kl_tensor *op_max_pool2d_fwd(kl_tensor **in, int n, const kl_attrs *a) { return max_pool_fwd("max_pool2d", 2, in, a); }
int op_max_pool2d_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  return max_pool_bwd("max_pool2d", 2, in, a, gout, gin);
}
kl_tensor *op_max_pool3d_fwd(kl_tensor **in, int n, const kl_attrs *a) { return max_pool_fwd("max_pool3d", 3, in, a); }
int op_max_pool3d_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  return max_pool_bwd("max_pool3d", 3, in, a, gout, gin);
}

/* ---- avg_pool2d, avg_pool3d ------------------------------------------------- */

static inline float window_inv(const pool_window *w) {
  return 1.0f / (float)((w->z1 - w->z0) * (w->y1 - w->y0) * (w->x1 - w->x0));
}

static kl_tensor *avg_pool_fwd(const char *op, int rank, kl_tensor **in, const kl_attrs *a) {
  pool_geom g;
  if (pool_setup(op, rank, in[0], a, &g) < 0) return NULL;
  kl_tensor *x = kl_tensor_contiguous(in[0]);
  if (!x) return NULL;
  kl_tensor *y = pool_output(&g, rank);
  if (y) {
    const float *xd = x->data;
    float *yd = y->data;
    const int64_t lines = g.n * g.od * g.oh, C = g.c;
    KL_PAR_FOR_W(lines, lines * g.ow * C * g.pd * g.ph * g.pw, l,
      int64_t nn;
      pool_window w = line_window(&g, l, &nn);
      const float *img = xd + nn * g.d * g.h * g.w * C;
      for (int64_t ox = 0; ox < g.ow; ox++) {
        clip_window(ox, g.pw, g.sw, g.pl, g.w, &w.x0, &w.x1);
        float *o = yd + (l * g.ow + ox) * C;
        memset(o, 0, sizeof(float) * C);
        for (int64_t iz = w.z0; iz < w.z1; iz++)
          for (int64_t iy = w.y0; iy < w.y1; iy++)
            for (int64_t ix = w.x0; ix < w.x1; ix++) {
              const float *s = img + ((iz * g.h + iy) * g.w + ix) * C;
              for (int64_t c = 0; c < C; c++) o[c] += s[c];
            }
        float inv = window_inv(&w);
        for (int64_t c = 0; c < C; c++) o[c] *= inv;
      }
    );
  }
  kl_tensor_release(x);
  return y;
}

static int avg_pool_bwd(const char *op, int rank, kl_tensor **in, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  pool_geom g;
  if (pool_setup(op, rank, in[0], a, &g) < 0) return -1;
  kl_tensor *go = kl_tensor_contiguous(gout);
  kl_tensor *dx = go ? kl_tensor_zeros(in[0]->nd, in[0]->dims) : NULL;
  if (!dx) { if (go) kl_tensor_release(go); return -1; }
  const float *gd = go->data;
  float *dxd = dx->data;
  const int64_t C = g.c, P = g.od * g.oh * g.ow;
  KL_PAR_FOR_W(g.n, g.n * P * C * g.pd * g.ph * g.pw, nn,
    for (int64_t p = 0; p < P; p++) {
      int64_t unused;
      pool_window w = line_window(&g, (nn * P + p) / g.ow, &unused);
      clip_window(p % g.ow, g.pw, g.sw, g.pl, g.w, &w.x0, &w.x1);
      const float *o = gd + (nn * P + p) * C;
      float inv = window_inv(&w);
      for (int64_t iz = w.z0; iz < w.z1; iz++)
        for (int64_t iy = w.y0; iy < w.y1; iy++)
          for (int64_t ix = w.x0; ix < w.x1; ix++) {
            float *d = dxd + (((nn * g.d + iz) * g.h + iy) * g.w + ix) * C;
            for (int64_t c = 0; c < C; c++) d[c] += o[c] * inv;
          }
    });
  kl_tensor_release(go);
  gin[0] = dx;
  return 0;
}

kl_tensor *op_avg_pool2d_fwd(kl_tensor **in, int n, const kl_attrs *a) { return avg_pool_fwd("avg_pool2d", 2, in, a); }
int op_avg_pool2d_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  return avg_pool_bwd("avg_pool2d", 2, in, a, gout, gin);
}
kl_tensor *op_avg_pool3d_fwd(kl_tensor **in, int n, const kl_attrs *a) { return avg_pool_fwd("avg_pool3d", 3, in, a); }
int op_avg_pool3d_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  return avg_pool_bwd("avg_pool3d", 3, in, a, gout, gin);
}

/* ---- upsampling2d (nearest) ------------------------------------------------ */

static int resize_check(const char *op, kl_tensor *x, const kl_attrs *a, int need) {
  if (x->nd != 4) return kl_failn("%s: expected input (N,H,W,C), got %s", op, KL_SHAPE(x));
  if (!a || a->nints < need) return kl_failn("%s: expected %d integer attributes, got %d", op, need, a ? a->nints : 0);
  return 0;
}

kl_tensor *op_upsampling2d_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  if (resize_check("upsampling2d", in[0], a, 2) < 0) return NULL;
  int64_t fh = a->ints[0], fw = a->ints[1];
  if (fh < 1 || fw < 1) return kl_fail("upsampling2d: size must be positive, got (%lld,%lld)", (long long)fh, (long long)fw);
  kl_tensor *x = kl_tensor_contiguous(in[0]);
  if (!x) return NULL;
  const int64_t N = x->dims[0], H = x->dims[1], W = x->dims[2], C = x->dims[3];
  kl_tensor *y = kl_tensor_empty(4, (int64_t[]){N, H * fh, W * fw, C});
  if (y) {
    const float *xd = x->data;
    float *yd = y->data;
    const int64_t rows = N * H * fh;
    KL_PAR_FOR_W(rows, y->count, r,
      int64_t nn = r / (H * fh), oy = r % (H * fh);
      const float *src = xd + (nn * H + oy / fh) * W * C;
      float *dst = yd + r * W * fw * C;
      for (int64_t ix = 0; ix < W; ix++)
        for (int64_t k = 0; k < fw; k++, dst += C) memcpy(dst, src + ix * C, sizeof(float) * C);
    );
  }
  kl_tensor_release(x);
  return y;
}

int op_upsampling2d_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  int64_t fh = a->ints[0], fw = a->ints[1];
  kl_tensor *go = kl_tensor_contiguous(gout);
  kl_tensor *dx = go ? kl_tensor_zeros(4, in[0]->dims) : NULL;
  if (!dx) { if (go) kl_tensor_release(go); return -1; }
  const int64_t N = dx->dims[0], H = dx->dims[1], W = dx->dims[2], C = dx->dims[3];
  const float *gd = go->data;
  float *dxd = dx->data;
  KL_PAR_FOR_W(N * H, go->count, r,
    for (int64_t k = 0; k < fh; k++) {
      const float *src = gd + ((r / H) * H * fh + (r % H) * fh + k) * W * fw * C;
      float *dst = dxd + r * W * C;
      for (int64_t ix = 0; ix < W; ix++)
        for (int64_t j = 0; j < fw; j++, src += C)
          for (int64_t c = 0; c < C; c++) dst[ix * C + c] += src[c];
    });
  kl_tensor_release(go);
  gin[0] = dx;
  return 0;
}

/* ---- zero_padding2d --------------------------------------------------------- */

/* Copies the (H,W) block between x and the padded y; dir 0 x->y, 1 y->x. */
static void pad_copy(float *y, float *x, int64_t N, int64_t H, int64_t W, int64_t C,
                     int64_t top, int64_t left, int64_t OH, int64_t OW, int dir) {
  KL_PAR_FOR_W(N * H, N * H * W * C, r,
    int64_t nn = r / H, iy = r % H;
    float *yp = y + ((nn * OH + iy + top) * OW + left) * C, *xp = x + r * W * C;
    if (dir == 0) memcpy(yp, xp, sizeof(float) * W * C); else memcpy(xp, yp, sizeof(float) * W * C);
  );
}

kl_tensor *op_zero_padding2d_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  if (resize_check("zero_padding2d", in[0], a, 4) < 0) return NULL;
  const int64_t *p = a->ints;
  if (p[0] < 0 || p[1] < 0 || p[2] < 0 || p[3] < 0)
    return kl_fail("zero_padding2d: padding must be non-negative, got (%lld,%lld,%lld,%lld)",
                   (long long)p[0], (long long)p[1], (long long)p[2], (long long)p[3]);
  kl_tensor *x = kl_tensor_contiguous(in[0]);
  if (!x) return NULL;
  const int64_t N = x->dims[0], H = x->dims[1], W = x->dims[2], C = x->dims[3];
  const int64_t OH = H + p[0] + p[1], OW = W + p[2] + p[3];
  kl_tensor *y = kl_tensor_zeros(4, (int64_t[]){N, OH, OW, C});
  if (y) pad_copy(y->data, x->data, N, H, W, C, p[0], p[2], OH, OW, 0);
  kl_tensor_release(x);
  return y;
}

int op_zero_padding2d_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  const int64_t *p = a->ints;
  kl_tensor *go = kl_tensor_contiguous(gout);
  kl_tensor *dx = go ? kl_tensor_empty(4, in[0]->dims) : NULL;
  if (!dx) { if (go) kl_tensor_release(go); return -1; }
  const int64_t N = dx->dims[0], H = dx->dims[1], W = dx->dims[2], C = dx->dims[3];
  pad_copy(go->data, dx->data, N, H, W, C, p[0], p[2], go->dims[1], go->dims[2], 1);
  kl_tensor_release(go);
  gin[0] = dx;
  return 0;
}
