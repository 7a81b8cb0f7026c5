/* plot.c — line charts rendered into an RGB buffer and saved with libpng.
 * Deliberately small: linear axes with "nice" 1-2-5 ticks, grid, antialiased
 * lines (coverage from the distance to each segment), dot markers for short
 * series, a legend placed in the emptiest corner, a title and axis labels.
 * Text uses a built-in 5x7 bitmap font (ASCII 32..126, plus a descender row),
 * scaled by whole pixels, so the library needs no font files or FreeType. */
#include "image.h"
#include "core.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One glyph per printable ASCII character: 8 rows (7 + descender), the low 5
 * bits of each row are the pixels, bit 4 leftmost. */
static const uint8_t font5x7[95][8] = {
  {0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00}, /* ' ' */
  {0x04,0x04,0x04,0x04,0x04,0x00,0x04,0x00}, /* ! */
  {0x0A,0x0A,0x0A,0x00,0x00,0x00,0x00,0x00}, /* " */
  {0x0A,0x0A,0x1F,0x0A,0x1F,0x0A,0x0A,0x00}, /* # */
  {0x04,0x0F,0x14,0x0E,0x05,0x1E,0x04,0x00}, /* $ */
  {0x18,0x19,0x02,0x04,0x08,0x13,0x03,0x00}, /* % */
  {0x0C,0x12,0x14,0x08,0x15,0x12,0x0D,0x00}, /* & */
  {0x0C,0x04,0x08,0x00,0x00,0x00,0x00,0x00}, /* ' */
  {0x02,0x04,0x08,0x08,0x08,0x04,0x02,0x00}, /* ( */
  {0x08,0x04,0x02,0x02,0x02,0x04,0x08,0x00}, /* ) */
  {0x00,0x04,0x15,0x0E,0x15,0x04,0x00,0x00}, /* * */
  {0x00,0x04,0x04,0x1F,0x04,0x04,0x00,0x00}, /* + */
  {0x00,0x00,0x00,0x00,0x00,0x0C,0x04,0x08}, /* , */
  {0x00,0x00,0x00,0x1F,0x00,0x00,0x00,0x00}, /* - */
  {0x00,0x00,0x00,0x00,0x00,0x0C,0x0C,0x00}, /* . */
  {0x00,0x01,0x02,0x04,0x08,0x10,0x00,0x00}, /* / */
  {0x0E,0x11,0x13,0x15,0x19,0x11,0x0E,0x00}, /* 0 */
  {0x04,0x0C,0x04,0x04,0x04,0x04,0x0E,0x00}, /* 1 */
  {0x0E,0x11,0x01,0x02,0x04,0x08,0x1F,0x00}, /* 2 */
  {0x1F,0x02,0x04,0x02,0x01,0x11,0x0E,0x00}, /* 3 */
  {0x02,0x06,0x0A,0x12,0x1F,0x02,0x02,0x00}, /* 4 */
  {0x1F,0x10,0x1E,0x01,0x01,0x11,0x0E,0x00}, /* 5 */
  {0x06,0x08,0x10,0x1E,0x11,0x11,0x0E,0x00}, /* 6 */
  {0x1F,0x01,0x02,0x04,0x08,0x08,0x08,0x00}, /* 7 */
  {0x0E,0x11,0x11,0x0E,0x11,0x11,0x0E,0x00}, /* 8 */
  {0x0E,0x11,0x11,0x0F,0x01,0x02,0x0C,0x00}, /* 9 */
  {0x00,0x0C,0x0C,0x00,0x0C,0x0C,0x00,0x00}, /* : */
  {0x00,0x0C,0x0C,0x00,0x0C,0x0C,0x04,0x08}, /* ; */
  {0x02,0x04,0x08,0x10,0x08,0x04,0x02,0x00}, /* < */
  {0x00,0x00,0x1F,0x00,0x1F,0x00,0x00,0x00}, /* = */
  {0x08,0x04,0x02,0x01,0x02,0x04,0x08,0x00}, /* > */
  {0x0E,0x11,0x01,0x02,0x04,0x00,0x04,0x00}, /* ? */
  {0x0E,0x11,0x01,0x0D,0x15,0x15,0x0E,0x00}, /* @ */
  {0x0E,0x11,0x11,0x11,0x1F,0x11,0x11,0x00}, /* A */
  {0x1E,0x11,0x11,0x1E,0x11,0x11,0x1E,0x00}, /* B */
  {0x0E,0x11,0x10,0x10,0x10,0x11,0x0E,0x00}, /* C */
  {0x1C,0x12,0x11,0x11,0x11,0x12,0x1C,0x00}, /* D */
  {0x1F,0x10,0x10,0x1E,0x10,0x10,0x1F,0x00}, /* E */
  {0x1F,0x10,0x10,0x1E,0x10,0x10,0x10,0x00}, /* F */
  {0x0E,0x11,0x10,0x17,0x11,0x11,0x0F,0x00}, /* G */
  {0x11,0x11,0x11,0x1F,0x11,0x11,0x11,0x00}, /* H */
  {0x0E,0x04,0x04,0x04,0x04,0x04,0x0E,0x00}, /* I */
  {0x07,0x02,0x02,0x02,0x02,0x12,0x0C,0x00}, /* J */
  {0x11,0x12,0x14,0x18,0x14,0x12,0x11,0x00}, /* K */
  {0x10,0x10,0x10,0x10,0x10,0x10,0x1F,0x00}, /* L */
  {0x11,0x1B,0x15,0x15,0x11,0x11,0x11,0x00}, /* M */
  {0x11,0x11,0x19,0x15,0x13,0x11,0x11,0x00}, /* N */
  {0x0E,0x11,0x11,0x11,0x11,0x11,0x0E,0x00}, /* O */
  {0x1E,0x11,0x11,0x1E,0x10,0x10,0x10,0x00}, /* P */
  {0x0E,0x11,0x11,0x11,0x15,0x12,0x0D,0x00}, /* Q */
  {0x1E,0x11,0x11,0x1E,0x14,0x12,0x11,0x00}, /* R */
  {0x0F,0x10,0x10,0x0E,0x01,0x01,0x1E,0x00}, /* S */
  {0x1F,0x04,0x04,0x04,0x04,0x04,0x04,0x00}, /* T */
  {0x11,0x11,0x11,0x11,0x11,0x11,0x0E,0x00}, /* U */
  {0x11,0x11,0x11,0x11,0x11,0x0A,0x04,0x00}, /* V */
  {0x11,0x11,0x11,0x15,0x15,0x15,0x0A,0x00}, /* W */
  {0x11,0x11,0x0A,0x04,0x0A,0x11,0x11,0x00}, /* X */
  {0x11,0x11,0x11,0x0A,0x04,0x04,0x04,0x00}, /* Y */
  {0x1F,0x01,0x02,0x04,0x08,0x10,0x1F,0x00}, /* Z */
  {0x0E,0x08,0x08,0x08,0x08,0x08,0x0E,0x00}, /* [ */
  {0x00,0x10,0x08,0x04,0x02,0x01,0x00,0x00}, /* \ */
  {0x0E,0x02,0x02,0x02,0x02,0x02,0x0E,0x00}, /* ] */
  {0x04,0x0A,0x11,0x00,0x00,0x00,0x00,0x00}, /* ^ */
  {0x00,0x00,0x00,0x00,0x00,0x00,0x1F,0x00}, /* _ */
  {0x08,0x04,0x02,0x00,0x00,0x00,0x00,0x00}, /* ` */
  {0x00,0x00,0x0E,0x01,0x0F,0x11,0x0F,0x00}, /* a */
  {0x10,0x10,0x16,0x19,0x11,0x11,0x1E,0x00}, /* b */
  {0x00,0x00,0x0E,0x10,0x10,0x11,0x0E,0x00}, /* c */
  {0x01,0x01,0x0D,0x13,0x11,0x11,0x0F,0x00}, /* d */
  {0x00,0x00,0x0E,0x11,0x1F,0x10,0x0E,0x00}, /* e */
  {0x06,0x09,0x08,0x1C,0x08,0x08,0x08,0x00}, /* f */
  {0x00,0x00,0x0F,0x11,0x11,0x0F,0x01,0x0E}, /* g */
  {0x10,0x10,0x16,0x19,0x11,0x11,0x11,0x00}, /* h */
  {0x04,0x00,0x0C,0x04,0x04,0x04,0x0E,0x00}, /* i */
  {0x02,0x00,0x06,0x02,0x02,0x02,0x12,0x0C}, /* j */
  {0x10,0x10,0x12,0x14,0x18,0x14,0x12,0x00}, /* k */
  {0x0C,0x04,0x04,0x04,0x04,0x04,0x0E,0x00}, /* l */
  {0x00,0x00,0x1A,0x15,0x15,0x11,0x11,0x00}, /* m */
  {0x00,0x00,0x16,0x19,0x11,0x11,0x11,0x00}, /* n */
  {0x00,0x00,0x0E,0x11,0x11,0x11,0x0E,0x00}, /* o */
  {0x00,0x00,0x1E,0x11,0x11,0x1E,0x10,0x10}, /* p */
  {0x00,0x00,0x0D,0x13,0x11,0x0F,0x01,0x01}, /* q */
  {0x00,0x00,0x16,0x19,0x10,0x10,0x10,0x00}, /* r */
  {0x00,0x00,0x0E,0x10,0x0E,0x01,0x1E,0x00}, /* s */
  {0x08,0x08,0x1C,0x08,0x08,0x09,0x06,0x00}, /* t */
  {0x00,0x00,0x11,0x11,0x11,0x13,0x0D,0x00}, /* u */
  {0x00,0x00,0x11,0x11,0x11,0x0A,0x04,0x00}, /* v */
  {0x00,0x00,0x11,0x11,0x15,0x15,0x0A,0x00}, /* w */
  {0x00,0x00,0x11,0x0A,0x04,0x0A,0x11,0x00}, /* x */
  {0x00,0x00,0x11,0x11,0x11,0x0F,0x01,0x0E}, /* y */
  {0x00,0x00,0x1F,0x02,0x04,0x08,0x1F,0x00}, /* z */
  {0x02,0x04,0x04,0x08,0x04,0x04,0x02,0x00}, /* { */
  {0x04,0x04,0x04,0x04,0x04,0x04,0x04,0x00}, /* | */
  {0x08,0x04,0x04,0x02,0x04,0x04,0x08,0x00}, /* } */
  {0x00,0x00,0x08,0x15,0x02,0x00,0x00,0x00}, /* ~ */
};

/* matplotlib's default colour cycle ("tab10"), so charts look familiar. */
static const uint32_t palette[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                     0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
enum { WHITE = 0xffffff, TEXT = 0x262626, AXIS = 0x404040, GRID = 0xe6e6e6, LEGEND_EDGE = 0xcccccc };

typedef struct {
  uint8_t *px;
  int w, h;
  int cx0, cy0, cx1, cy1;   /* clip rectangle, inclusive */
} canvas;

static void blend(canvas *c, int x, int y, uint32_t rgb, double a) {
  if (x < c->cx0 || x > c->cx1 || y < c->cy0 || y > c->cy1 || a <= 0) return;
  if (a > 1) a = 1;
  uint8_t *p = c->px + 3 * ((size_t)y * c->w + x);
  for (int k = 0; k < 3; k++) {
    double v = (rgb >> (16 - 8 * k)) & 255;
    p[k] = (uint8_t)lrint(p[k] * (1 - a) + v * a);
  }
}

static void fill_rect(canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb) {
  for (int y = y0; y <= y1; y++)
    for (int x = x0; x <= x1; x++) blend(c, x, y, rgb, 1);
}

static void rect_outline(canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb) {
  fill_rect(c, x0, y0, x1, y0, rgb);
  fill_rect(c, x0, y1, x1, y1, rgb);
  fill_rect(c, x0, y0, x0, y1, rgb);
  fill_rect(c, x1, y0, x1, y1, rgb);
}

/* ---- text --------------------------------------------------------------- */

static const uint8_t *glyph(unsigned char ch) {
  if (ch == '\t') ch = ' ';
  if (ch < 32 || ch > 126) ch = '?';
  return font5x7[ch - 32];
}

static int text_width(const char *s, int scale) {
  int n = (int)strlen(s);
  return n ? (6 * n - 1) * scale : 0;
}
static int text_height(int scale) { return 8 * scale; }

/* Top-left at (x, y); vertical != 0 draws it rotated to read bottom-to-top,
 * with (x, y) the top-left of the rotated box. Returns the advance. */
static int draw_text(canvas *c, int x, int y, const char *s, int scale, uint32_t rgb, int vertical) {
  int len = text_width(s, scale);
  for (int i = 0; s[i]; i++) {
    const uint8_t *g = glyph((unsigned char)s[i]);
    for (int gy = 0; gy < 8; gy++)
      for (int gx = 0; gx < 5; gx++) {
        if (!(g[gy] & (0x10 >> gx))) continue;
        int u = i * 6 + gx;   /* along the text */
        for (int dy = 0; dy < scale; dy++)
          for (int dx = 0; dx < scale; dx++) {
            if (vertical) blend(c, x + gy * scale + dy, y + len - 1 - (u * scale + dx), rgb, 1);
            else blend(c, x + u * scale + dx, y + gy * scale + dy, rgb, 1);
          }
      }
  }
  return len;
}

/* ---- lines -------------------------------------------------------------- */

/* Coverage of a segment of the given width at every pixel near it, kept as
 * the maximum per pixel so joints of one series are not painted twice. */
static void stroke_segment(float *mask, int w, int h, double x0, double y0, double x1, double y1,
                           double width) {
  double r = width / 2;
  int bx0 = (int)floor(fmin(x0, x1) - r - 1), bx1 = (int)ceil(fmax(x0, x1) + r + 1);
  int by0 = (int)floor(fmin(y0, y1) - r - 1), by1 = (int)ceil(fmax(y0, y1) + r + 1);
  if (bx0 < 0) bx0 = 0;
  if (by0 < 0) by0 = 0;
  if (bx1 > w - 1) bx1 = w - 1;
  if (by1 > h - 1) by1 = h - 1;
  double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
  for (int y = by0; y <= by1; y++)
    for (int x = bx0; x <= bx1; x++) {
      double t = len2 > 0 ? ((x - x0) * dx + (y - y0) * dy) / len2 : 0;
      t = t < 0 ? 0 : (t > 1 ? 1 : t);
      double ex = x - (x0 + t * dx), ey = y - (y0 + t * dy);
      double cov = r + 0.5 - sqrt(ex * ex + ey * ey);
      if (cov > 1) cov = 1;
      float *m = mask + (size_t)y * w + x;
      if (cov > *m) *m = (float)cov;
    }
}

/* ---- ticks -------------------------------------------------------------- */

static double nice_step(double span, int target) {
  double raw = span / (target > 1 ? target : 1);
  double e = pow(10, floor(log10(raw))), f = raw / e;
  double nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  return nf * e;
}

typedef struct {
  double lo, hi, step;
  int n;
  double v[64];
  char label[64][32];
} axis;

/* Ticks inside [lo, hi] every `step`; labels share one number of decimals. */
static void make_ticks(axis *a, int target, int integer) {
  double step = nice_step(a->hi - a->lo, target);
  if (integer && step < 1) step = 1;
  a->step = step;
  a->n = 0;
  double first = ceil(a->lo / step - 1e-9) * step;
  for (double v = first; v <= a->hi + step * 1e-9 && a->n < 64; v += step) {
    double t = fabs(v) < step * 1e-9 ? 0 : v;   /* no "-0.0" */
    a->v[a->n++] = t;
  }
  double big = fmax(fabs(a->lo), fabs(a->hi));
  int exp_form = big >= 1e6 || step < 1e-4;
  int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
  int sig = (int)(floor(log10(big)) - floor(log10(step))) + 1;
  if (sig < 1) sig = 1;
  if (sig > 8) sig = 8;
  for (int i = 0; i < a->n; i++) {
    if (exp_form) snprintf(a->label[i], 32, "%.*e", sig - 1, a->v[i]);
    else snprintf(a->label[i], 32, "%.*f", decimals, a->v[i]);
  }
}

/* ---- the chart ---------------------------------------------------------- */

int kl_plot_lines(const char *path, int width, int height, const char *title, const char *xlabel,
                  const char *ylabel, int legend, int nseries, const kl_plot_series *series) {
  if (!path) return kl_failn("plot: no output path");
  if (width < 120 || height < 90 || width > 8000 || height > 8000)
    return kl_failn("plot: '%s': size %dx%d is out of range (120x90 to 8000x8000)", path, width, height);
  if (nseries < 1 || !series) return kl_failn("plot: '%s': nothing to plot (no series)", path);
  if (legend < 0 || legend > 5) return kl_failn("plot: '%s': legend must be 0..5, got %d", path, legend);

  /* Data ranges over the finite points; x is 1..n where not given. */
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  int xint = 1;
  for (int s = 0; s < nseries; s++) {
    if (series[s].n < 0 || (series[s].n > 0 && !series[s].y))
      return kl_failn("plot: '%s': series %d has no values", path, s + 1);
    for (int64_t i = 0; i < series[s].n; i++) {
      double x = series[s].x ? series[s].x[i] : (double)(i + 1), y = series[s].y[i];
      if (!isfinite(x) || !isfinite(y)) continue;
      xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, y), yhi = fmax(yhi, y);
      if (x != floor(x)) xint = 0;
    }
  }
  if (!(xlo <= xhi)) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  if (xlo == xhi) xlo -= 1, xhi += 1;
  if (ylo == yhi) {
    double d = ylo != 0 ? fabs(ylo) * 0.1 : 1;
    ylo -= d, yhi += d;
  }
  double mx = (xhi - xlo) * 0.04, my = (yhi - ylo) * 0.06;   /* margins like matplotlib's */
  axis ax = {.lo = xlo - mx, .hi = xhi + mx}, ay = {.lo = ylo - my, .hi = yhi + my};

  /* Text sizes grow with the canvas: 1 pixel per font pixel up to ~500 px tall. */
  int s1 = height >= 560 && width >= 720 ? 2 : 1, st = s1 + 1;
  int pad = 8 * s1, tick = 4 * s1;
  int top = pad + (title && *title ? text_height(st) + pad : 0);
  int bottom = tick + 3 * s1 + text_height(s1) + (xlabel && *xlabel ? pad / 2 + text_height(s1) : 0) + pad;
  make_ticks(&ay, (height - top - bottom) / (45 * s1), 0);
  int ytw = 0;
  for (int i = 0; i < ay.n; i++) ytw = (int)fmax(ytw, text_width(ay.label[i], s1));
  int left = pad + (ylabel && *ylabel ? text_height(s1) + pad : 0) + ytw + tick + 3 * s1;
  int right = pad + 3 * text_width("0", s1);
  int pw = width - left - right, ph = height - top - bottom;
  if (pw < 40 || ph < 30)
    return kl_failn("plot: '%s': %dx%d is too small for the labels", path, width, height);
  make_ticks(&ax, pw / (70 * s1) > 1 ? pw / (70 * s1) : 2, xint);

  canvas c = {calloc((size_t)width * height * 3, 1), width, height, 0, 0, width - 1, height - 1};
  float *mask = calloc((size_t)width * height, sizeof(float));
  uint8_t *occupied = calloc((size_t)width * height, 1);
  if (!c.px || !mask || !occupied) {
    free(c.px), free(mask), free(occupied);
    return kl_failn("plot: '%s': out of memory", path);
  }
  memset(c.px, 255, (size_t)width * height * 3);
  int x0 = left, y0 = top, x1 = left + pw - 1, y1 = top + ph - 1;
#define PX(v) (x0 + ((v) - ax.lo) / (ax.hi - ax.lo) * (pw - 1))
#define PY(v) (y1 - ((v) - ay.lo) / (ay.hi - ay.lo) * (ph - 1))

  /* grid, ticks, tick labels */
  for (int i = 0; i < ay.n; i++) {
    int y = (int)lrint(PY(ay.v[i]));
    fill_rect(&c, x0, y, x1, y, GRID);
    fill_rect(&c, x0 - tick, y, x0 - 1, y, AXIS);
    draw_text(&c, x0 - tick - 3 * s1 - text_width(ay.label[i], s1), y - 7 * s1 / 2, ay.label[i], s1, TEXT, 0);
  }
  for (int i = 0; i < ax.n; i++) {
    int x = (int)lrint(PX(ax.v[i]));
    fill_rect(&c, x, y0, x, y1, GRID);
    fill_rect(&c, x, y1 + 1, x, y1 + tick, AXIS);
    draw_text(&c, x - text_width(ax.label[i], s1) / 2, y1 + tick + 3 * s1, ax.label[i], s1, TEXT, 0);
  }

  /* series, clipped to the plot area */
  canvas clip = c;
  clip.cx0 = x0, clip.cy0 = y0, clip.cx1 = x1, clip.cy1 = y1;
  double lw = 1.5 * s1 + 0.5;
  for (int s = 0; s < nseries; s++) {
    const kl_plot_series *S = &series[s];
    memset(mask, 0, (size_t)width * height * sizeof(float));
    int markers = S->n <= 40;
    for (int64_t i = 0; i < S->n; i++) {
      double xa = S->x ? S->x[i] : (double)(i + 1), ya = S->y[i];
      if (!isfinite(xa) || !isfinite(ya)) continue;
      double px = PX(xa), py = PY(ya);
      int64_t j = i + 1;
      double xb = j < S->n ? (S->x ? S->x[j] : (double)(j + 1)) : NAN, yb = j < S->n ? S->y[j] : NAN;
      int joined = isfinite(xb) && isfinite(yb);
      int alone = !joined && (i == 0 || !isfinite(S->y[i - 1]) || (S->x && !isfinite(S->x[i - 1])));
      if (joined) stroke_segment(mask, width, height, px, py, PX(xb), PY(yb), lw);
      if (markers || alone) stroke_segment(mask, width, height, px, py, px, py, 2.0 * lw + 1);
    }
    uint32_t col = palette[s % 10];
    for (int y = y0; y <= y1; y++)
      for (int x = x0; x <= x1; x++) {
        float m = mask[(size_t)y * width + x];
        if (m > 0) {
          blend(&clip, x, y, col, m);
          occupied[(size_t)y * width + x] = 1;
        }
      }
  }
  rect_outline(&c, x0 - 1, y0 - 1, x1 + 1, y1 + 1, AXIS);

  /* legend: a framed box in the requested corner, or the emptiest one */
  if (legend) {
    int named = 0, nw = 0;
    for (int s = 0; s < nseries; s++)
      if (series[s].name && *series[s].name) named++, nw = (int)fmax(nw, text_width(series[s].name, s1));
    if (named) {
      int sample = 22 * s1, rowh = text_height(s1) + 5 * s1;
      int bw = pad + sample + 6 * s1 + nw + pad, bh = pad + named * rowh - 5 * s1 + pad;
      int inset = 6 * s1;
      /* the corners, then the middles of the sides and the centre (matplotlib's order) */
      int L = x0 + inset, R = x1 - inset - bw, CX = x0 + (pw - bw) / 2;
      int T = y0 + inset, B = y1 - inset - bh, CY = y0 + (ph - bh) / 2;
      int cx[9] = {R, L, L, R, R, L, CX, CX, CX};
      int cy[9] = {T, T, B, B, CY, CY, B, T, CY};
      int pick = legend >= 2 ? legend - 2 : 0;
      if (legend == 1) {
        long best = -1;
        for (int k = 0; k < 9; k++) {
          long cnt = 0;
          for (int y = cy[k]; y < cy[k] + bh; y++)
            for (int x = cx[k]; x < cx[k] + bw; x++)
              if (x >= 0 && y >= 0 && x < width && y < height) cnt += occupied[(size_t)y * width + x];
          if (best < 0 || cnt < best) best = cnt, pick = k;
          if (best == 0) break;
        }
      }
      int bx = cx[pick], by = cy[pick];
      for (int y = by; y < by + bh; y++)
        for (int x = bx; x < bx + bw; x++) blend(&c, x, y, WHITE, 0.85);
      rect_outline(&c, bx, by, bx + bw - 1, by + bh - 1, LEGEND_EDGE);
      int row = 0;
      for (int s = 0; s < nseries; s++) {
        if (!series[s].name || !*series[s].name) continue;
        int ty = by + pad + row * rowh, my = ty + 7 * s1 / 2;
        memset(mask, 0, (size_t)width * height * sizeof(float));
        stroke_segment(mask, width, height, bx + pad, my, bx + pad + sample, my, lw);
        for (int y = my - 4 * s1; y <= my + 4 * s1; y++)
          for (int x = bx + pad - 2; x <= bx + pad + sample + 2; x++)
            if (x >= 0 && y >= 0 && x < width && y < height) blend(&c, x, y, palette[s % 10], mask[(size_t)y * width + x]);
        draw_text(&c, bx + pad + sample + 6 * s1, ty, series[s].name, s1, TEXT, 0);
        row++;
      }
    }
  }

  if (title && *title)
    draw_text(&c, x0 + pw / 2 - text_width(title, st) / 2, pad, title, st, TEXT, 0);
  if (xlabel && *xlabel)
    draw_text(&c, x0 + pw / 2 - text_width(xlabel, s1) / 2, height - pad - text_height(s1), xlabel, s1, TEXT, 0);
  if (ylabel && *ylabel)
    draw_text(&c, pad, y0 + ph / 2 - text_width(ylabel, s1) / 2, ylabel, s1, TEXT, 1);
#undef PX
#undef PY

  int rc = kl_png_write_u8(path, "plot", c.px, width, height, 3);
  free(c.px), free(mask), free(occupied);
  return rc;
}
