/* pool.c — pooling and resizing kernels, channels-last (N,H,W,C) like Keras:
 * max_pool2d, avg_pool2d, upsampling2d (nearest), zero_padding2d, forward and
 * backward side by side. 1-D pooling is the 2-D kernel over a (N,1,L,C) view;
 * global pooling is a reduction (ops.mean / ops.max), not a kernel here.
 *
 * Attrs (ints):
 *   max_pool2d, avg_pool2d: pool_h, pool_w, sh, sw, pad_top, pad_bottom, pad_left, pad_right
 *     Padded positions never take part: max ignores them, the average divides
 *     by the number of real elements in the window (Keras/TF "same").
 *   upsampling2d:   size_h, size_w
 *   zero_padding2d: top, bottom, left, right */
#include "core.h"
#include <float.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int64_t n, h, w, c, ph, pw, sh, sw, pt, pl, oh, ow;
} pool_geom;

static int pool_setup(const char *op, kl_tensor *x, const kl_attrs *a, pool_geom *g) {
  if (x->nd != 4) return kl_failn("%s: expected input (N,H,W,C), got %s", op, KL_SHAPE(x));
  if (!a || a->nints < 8) return kl_failn("%s: expected 8 integer attributes, got %d", op, a ? a->nints : 0);
  const int64_t *v = a->ints;
  if (v[0] < 1 || v[1] < 1 || v[2] < 1 || v[3] < 1)
    return kl_failn("%s: pool size and strides must be positive, got pool (%lld,%lld) strides (%lld,%lld)", op,
                    (long long)v[0], (long long)v[1], (long long)v[2], (long long)v[3]);
  if (v[4] < 0 || v[5] < 0 || v[6] < 0 || v[7] < 0 || v[4] >= v[0] || v[5] >= v[0] || v[6] >= v[1] || v[7] >= v[1])
    return kl_failn("%s: padding must be non-negative and smaller than the pool size", op);
  *g = (pool_geom){.n = x->dims[0], .h = x->dims[1], .w = x->dims[2], .c = x->dims[3],
                   .ph = v[0], .pw = v[1], .sh = v[2], .sw = v[3], .pt = v[4], .pl = v[6]};
  int64_t hh = g->h + v[4] + v[5], ww = g->w + v[6] + v[7];
  if (hh < g->ph || ww < g->pw)
    return kl_failn("%s: input %s is smaller than the pool size (%lld,%lld)", op, KL_SHAPE(x),
                    (long long)g->ph, (long long)g->pw);
  g->oh = (hh - g->ph) / g->sh + 1;
  g->ow = (ww - g->pw) / g->sw + 1;
  return 0;
}

/* The window of output (oy,ox), clipped to the real input. */
static inline void window(const pool_geom *g, int64_t oy, int64_t ox, int64_t *y0, int64_t *y1, int64_t *x0, int64_t *x1) {
  *y0 = oy * g->sh - g->pt; *y1 = *y0 + g->ph;
  *x0 = ox * g->sw - g->pl; *x1 = *x0 + g->pw;
  if (*y0 < 0) *y0 = 0;
  if (*x0 < 0) *x0 = 0;
  if (*y1 > g->h) *y1 = g->h;
  if (*x1 > g->w) *x1 = g->w;
}

/* ---- max_pool2d ------------------------------------------------------------ */

kl_tensor *op_max_pool2d_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  pool_geom g;
  if (pool_setup("max_pool2d", in[0], a, &g) < 0) return NULL;
  kl_tensor *x = kl_tensor_contiguous(in[0]);
  if (!x) return NULL;
  kl_tensor *y = kl_tensor_empty(4, (int64_t[]){g.n, g.oh, g.ow, g.c});
  if (y) {
    const float *xd = x->data;
    float *yd = y->data;
    const int64_t rows = g.n * g.oh * g.ow, C = g.c;
    KL_PAR_FOR_W(rows, rows * C * g.ph * g.pw, r,
      int64_t nn = r / (g.oh * g.ow), p = r % (g.oh * g.ow), y0, y1, x0, x1;
      window(&g, p / g.ow, p % g.ow, &y0, &y1, &x0, &x1);
      float *o = yd + r * C;
      for (int64_t c = 0; c < C; c++) o[c] = -FLT_MAX;
      for (int64_t iy = y0; iy < y1; iy++)
        for (int64_t ix = x0; ix < x1; ix++) {
          const float *s = xd + ((nn * g.h + iy) * g.w + ix) * C;
          for (int64_t c = 0; c < C; c++) o[c] = s[c] > o[c] ? s[c] : o[c];
        }
    );
  }
  kl_tensor_release(x);
  return y;
}

/* The gradient goes to the first maximum of each window (recomputed here, so
 * the forward stores nothing); overlapping windows add up. */
int op_max_pool2d_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  pool_geom g;
  if (pool_setup("max_pool2d", in[0], a, &g) < 0) return -1;
  kl_tensor *x = kl_tensor_contiguous(in[0]), *go = kl_tensor_contiguous(gout);
  kl_tensor *dx = x && go ? kl_tensor_zeros(4, x->dims) : NULL;
  int64_t *best = dx ? malloc(sizeof(int64_t) * g.c * g.n) : NULL;
  if (!best) {
    kl_release_all(3, (kl_tensor *[]){x, go, dx});
    return dx ? kl_failn("max_pool2d: out of memory") : -1;
  }
  const float *xd = x->data, *gd = go->data;
  float *dxd = dx->data;
  const int64_t C = g.c;
  /* Images are independent: one thread per image, no write conflicts. */
  KL_PAR_FOR_W(g.n, g.n * g.oh * g.ow * C * g.ph * g.pw, nn,
    int64_t *bi = best + nn * C;
    const float *img = xd + nn * g.h * g.w * C;
    float *dimg = dxd + nn * g.h * g.w * C;
    for (int64_t oy = 0; oy < g.oh; oy++)
      for (int64_t ox = 0; ox < g.ow; ox++) {
        int64_t y0, y1, x0, x1;
        window(&g, oy, ox, &y0, &y1, &x0, &x1);
        const float *o = gd + ((nn * g.oh + oy) * g.ow + ox) * C;
        int64_t first = (y0 * g.w + x0) * C;
        for (int64_t c = 0; c < C; c++) bi[c] = first + c;
        for (int64_t iy = y0; iy < y1; iy++)
          for (int64_t ix = x0; ix < x1; ix++) {
            int64_t base = (iy * g.w + ix) * C;
            for (int64_t c = 0; c < C; c++)
              if (img[base + c] > img[bi[c]]) bi[c] = base + c;
          }
        for (int64_t c = 0; c < C; c++) dimg[bi[c]] += o[c];
      }
  );
  free(best);
  kl_tensor_release(x);
  kl_tensor_release(go);
  gin[0] = dx;
  return 0;
}

/* ---- avg_pool2d ------------------------------------------------------------ */

kl_tensor *op_avg_pool2d_fwd(kl_tensor **in, int n, const kl_attrs *a) {
  pool_geom g;
  if (pool_setup("avg_pool2d", in[0], a, &g) < 0) return NULL;
  kl_tensor *x = kl_tensor_contiguous(in[0]);
  if (!x) return NULL;
  kl_tensor *y = kl_tensor_empty(4, (int64_t[]){g.n, g.oh, g.ow, g.c});
  if (y) {
    const float *xd = x->data;
    float *yd = y->data;
    const int64_t rows = g.n * g.oh * g.ow, C = g.c;
    KL_PAR_FOR_W(rows, rows * C * g.ph * g.pw, r,
      int64_t nn = r / (g.oh * g.ow), p = r % (g.oh * g.ow), y0, y1, x0, x1;
      window(&g, p / g.ow, p % g.ow, &y0, &y1, &x0, &x1);
      float *o = yd + r * C;
      memset(o, 0, sizeof(float) * C);
      for (int64_t iy = y0; iy < y1; iy++)
        for (int64_t ix = x0; ix < x1; ix++) {
          const float *s = xd + ((nn * g.h + iy) * g.w + ix) * C;
          for (int64_t c = 0; c < C; c++) o[c] += s[c];
        }
      float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
      for (int64_t c = 0; c < C; c++) o[c] *= inv;
    );
  }
  kl_tensor_release(x);
  return y;
}

int op_avg_pool2d_bwd(kl_tensor **in, int n, kl_tensor *out, const kl_attrs *a, kl_tensor *gout, kl_tensor **gin) {
  pool_geom g;
  if (pool_setup("avg_pool2d", in[0], a, &g) < 0) return -1;
  kl_tensor *go = kl_tensor_contiguous(gout);
  kl_tensor *dx = go ? kl_tensor_zeros(4, in[0]->dims) : NULL;
  if (!dx) { if (go) kl_tensor_release(go); return -1; }
  const float *gd = go->data;
  float *dxd = dx->data;
  const int64_t C = g.c;
  KL_PAR_FOR_W(g.n, g.n * g.oh * g.ow * C * g.ph * g.pw, nn,
    for (int64_t oy = 0; oy < g.oh; oy++)
      for (int64_t ox = 0; ox < g.ow; ox++) {
        int64_t y0, y1, x0, x1;
        window(&g, oy, ox, &y0, &y1, &x0, &x1);
        const float *o = gd + ((nn * g.oh + oy) * g.ow + ox) * C;
        float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
        for (int64_t iy = y0; iy < y1; iy++)
          for (int64_t ix = x0; ix < x1; ix++) {
            float *d = dxd + ((nn * g.h + iy) * g.w + ix) * C;
            for (int64_t c = 0; c < C; c++) d[c] += o[c] * inv;
          }
      });
  kl_tensor_release(go);
  gin[0] = dx;
  return 0;
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
