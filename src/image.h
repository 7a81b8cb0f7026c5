/* image.h — PNG files (libpng), image grids, and line plots drawn with a
 * built-in bitmap font (src/image.c, src/plot.c).
 *
 *   kl_tensor *img = kl_png_read("digit.png", NULL, 0);  // (H,W,C), 0..255
 *   kl_png_write("copy.png", img, 255.0, 8);             // 255 -> white
 *
 * Every function returns NULL / -1 on failure with a message that names the
 * file and the problem in kl_last_error(). Bad files never crash the host.
 */
#ifndef KL_IMAGE_H
#define KL_IMAGE_H
#include "klua.h"

/* KL_CDEF_BEGIN */
/* Reads any PNG (1/2/4/8/16-bit; gray, gray+alpha, RGB, RGBA, palette) as a
 * float tensor (H,W,C), C in 1..4. Values keep the file's range: 0..255 for
 * files of 8 bits or fewer (low depths are scaled up to 0..255), 0..65535 for
 * 16-bit files. Palette images become RGB (RGBA when the palette carries
 * transparency); a tRNS chunk on gray/RGB images adds an alpha channel.
 * *bit_depth_out (may be NULL) receives 8 or 16. A file whose decoding would
 * take more than max_bytes (the decoded rows plus the float tensor: about 5
 * bytes per 8-bit sample) fails before anything is allocated; max_bytes <= 0
 * means the default, 1 GiB. Ancillary chunks other than tRNS are skipped
 * unread; sides are at most 10^6 pixels. */
kl_tensor *kl_png_read(const char *path, int *bit_depth_out, int64_t max_bytes);

/* Writes img, shaped (H,W), (H,W,1) gray, (H,W,2) gray+alpha, (H,W,3) RGB or
 * (H,W,4) RGBA. Each value v is written as round(clamp(v / max_value, 0, 1) *
 * (2^bit_depth - 1)); NaN is written as 0. bit_depth is 8 or 16. The file is
 * written to a temporary file in the same directory, synced, then renamed. */
int kl_png_write(const char *path, kl_tensor *img, double max_value, int bit_depth);

/* Tiles images (N,H,W) or (N,H,W,C) into one image (rows*(H+p)+p, ncol*(W+p)+p, C),
 * row by row, ncol images per row, with p pixels of pad_value between tiles
 * and around the border. ncol <= 0 picks ceil(sqrt(N)). */
kl_tensor *kl_image_grid(kl_tensor *images, int ncol, int padding, double pad_value);

/* One line of a plot: n points (x[i], y[i]); x may be NULL for 1..n.
 * Non-finite y values leave a gap in the line. */
typedef struct kl_plot_series {
  const char *name;
  const double *x;
  const double *y;
  int64_t n;
} kl_plot_series;

/* Renders a line chart (axes, grid, tick labels, legend, title, axis labels)
 * as an RGB PNG of width x height pixels (atomic write, as kl_png_write).
 * title, xlabel, ylabel may be NULL. legend: 0 none, 1 the emptiest of nine places,
 * 2 upper right, 3 upper left, 4 lower left, 5 lower right. */
int kl_plot_lines(const char *path, int width, int height, const char *title,
                  const char *xlabel, const char *ylabel, int legend,
                  int nseries, const kl_plot_series *series);

/* KL_CDEF_END */

#define KL_PNG_DEFAULT_MAX_BYTES ((int64_t)1 << 30)

/* Internal, shared by image.c, plot.c and idx.c: open a temporary file beside path;
 * kl_atomic_commit syncs, closes and renames it over path (or removes it when
 * ok == 0). Returns NULL / -1 with an error naming what and path. */
#include <stdio.h>
FILE *kl_atomic_open(const char *path, const char *what, char *tmp_path, size_t n);
int kl_atomic_commit(FILE *f, const char *tmp_path, const char *path, const char *what, int ok);
/* Encodes an 8-bit RGB/gray canvas as PNG atomically (plot.c). */
int kl_png_write_u8(const char *path, const char *what, const uint8_t *pix, int w, int h, int channels);

#endif
