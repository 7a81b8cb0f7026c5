/* image.c — PNG read/write through libpng, and image grids. libpng reports
 * errors by longjmp; every libpng call sits under a setjmp in the function that
 * owns the resources, so a truncated or garbage file frees everything and
 * returns NULL with "read_png: 'path': reason". Writes go to a temporary file
 * in the target directory and are renamed into place only when complete. */
#include "image.h"
#include "core.h"
#include "kernels/io.h"
#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest grid we agree to allocate. */
#define KL_IMAGE_MAX_ELEMENTS ((int64_t)1 << 28)
/* What a hostile file can make libpng allocate before any pixel: the data of
 * a chunk read whole (text, ICC profiles: 2^31 bytes by declaration), and how
 * many such chunks are kept. klua reads none of the ancillary chunks but
 * tRNS, so they are skipped unread and these caps only bound what is left. */
#define KL_PNG_CHUNK_MALLOC_MAX (1 << 20)
#define KL_PNG_CHUNK_CACHE_MAX 64
#define KL_PNG_MAX_SIDE 1000000

typedef struct {
  char msg[200];
} png_err;

static void on_png_error(png_structp png, png_const_charp msg) {
  png_err *e = png_get_error_ptr(png);
  if (e) snprintf(e->msg, sizeof e->msg, "%s", msg);
  png_longjmp(png, 1);
}
static void on_png_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

/* libpng's own reader says only "Read Error" when the file ends early. */
static void read_file(png_structp png, png_bytep dst, size_t n) {
  FILE *f = png_get_io_ptr(png);
  if (fread(dst, 1, n, f) != n) png_error(png, ferror(f) ? "read error" : "file is truncated");
}

/* ---- atomic files ------------------------------------------------------- */

/* The temporary is named as the saving code names its own (kernels/io.c), so
 * one killed mid-write is removed by the next write of that path. */
FILE *kl_atomic_open(const char *path, const char *what, char *tmp, size_t n) {
  int fd = kl_temp_create(path, tmp, n);
  if (fd < 0 && errno == ENAMETOOLONG) return kl_fail("%s: '%s': path too long", what, path);
  if (fd < 0) return kl_fail("%s: '%s': cannot create a file there: %s", what, path, strerror(errno));
  FILE *f = fdopen(fd, "wb");
  if (!f) {
    int e = errno;
    close(fd);
    unlink(tmp);
    return kl_fail("%s: '%s': %s", what, path, strerror(e));
  }
  return f;
}

int kl_atomic_commit(FILE *f, const char *tmp, const char *path, const char *what, int ok) {
  int err = 0;
  if (ok && (fflush(f) != 0 || fsync(fileno(f)) != 0)) err = errno ? errno : EIO;
  if (fclose(f) != 0 && ok && !err) err = errno ? errno : EIO;
  if (ok && !err && rename(tmp, path) != 0) err = errno;
  if (!ok || err) {
    unlink(tmp);
    if (err) return kl_failn("%s: '%s': %s", what, path, strerror(err));
    return -1;
  }
  return 0;
}

/* ---- reading ------------------------------------------------------------ */

kl_tensor *kl_png_read(const char *path, int *bit_depth_out, int64_t max_bytes) {
  volatile int64_t limit = max_bytes > 0 ? max_bytes : KL_PNG_DEFAULT_MAX_BYTES;   /* read after setjmp */
  FILE *f = fopen(path, "rb");
  if (!f) return kl_fail("read_png: '%s': %s", path, strerror(errno));
  unsigned char sig[8];
  if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
    fclose(f);
    return kl_fail("read_png: '%s': not a PNG file (bad signature)", path);
  }
  png_err err = {"unknown libpng error"};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, on_png_error, on_png_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    fclose(f);
    return kl_fail("read_png: '%s': out of memory", path);
  }
  /* Written after setjmp and read after longjmp: must be volatile. */
  unsigned char *volatile buf = NULL;
  png_bytep *volatile rows = NULL;
  if (setjmp(png_jmpbuf(png))) {
    free(rows);
    free(buf);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return kl_fail("read_png: '%s': %s", path, err.msg);
  }
  png_set_read_fn(png, f, read_file);
  png_set_sig_bytes(png, 8);
  png_set_user_limits(png, KL_PNG_MAX_SIDE, KL_PNG_MAX_SIDE);
  png_set_chunk_malloc_max(png, KL_PNG_CHUNK_MALLOC_MAX);
  png_set_chunk_cache_max(png, KL_PNG_CHUNK_CACHE_MAX);
  /* -1: every ancillary chunk but tRNS (text, iCCP, sPLT, eXIf, ...) is skipped unread. */
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
  png_read_info(png, info);

  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  int channels = png_get_channels(png, info);
  int out_depth = png_get_bit_depth(png, info);   /* 8 or 16 after the transforms */
  size_t rowbytes = png_get_rowbytes(png, info);
  /* The decoded rows plus the float tensor, before allocating either (w, h <= 10^6: no overflow). */
  int64_t need = (int64_t)rowbytes * h + (int64_t)4 * w * h * channels;
  if (need > limit) {
    snprintf(err.msg, sizeof err.msg, "a %ux%u image with %d channels needs %lld bytes to decode, more than "
             "the limit of %lld (max_bytes)", (unsigned)w, (unsigned)h, channels, (long long)need, (long long)limit);
    png_longjmp(png, 1);
  }
  buf = malloc(rowbytes * h);
  rows = malloc(sizeof(png_bytep) * h);
  if (!buf || !rows) {
    snprintf(err.msg, sizeof err.msg, "out of memory for %ux%u pixels", (unsigned)w, (unsigned)h);
    png_longjmp(png, 1);
  }
  for (png_uint_32 y = 0; y < h; y++) rows[y] = buf + y * rowbytes;
  png_read_image(png, rows);
  png_read_end(png, NULL);

  int64_t shape[3] = {h, w, channels};
  kl_tensor *t = kl_tensor_empty(3, shape);
  if (t) {
    int64_t count = (int64_t)h * w * channels;
    const unsigned char *p = buf;
    if (out_depth == 16)
      for (int64_t i = 0; i < count; i++) t->data[i] = (float)((p[2 * i] << 8) | p[2 * i + 1]);
    else
      for (int64_t i = 0; i < count; i++) t->data[i] = (float)p[i];
  }
  free(rows);
  free(buf);
  png_destroy_read_struct(&png, &info, NULL);
  fclose(f);
  if (bit_depth_out) *bit_depth_out = out_depth == 16 ? 16 : 8;
  return t;   /* NULL with kl_tensor_empty's error if allocation failed */
}

/* ---- writing ------------------------------------------------------------ */

/* Encodes pixels (h rows of w*channels samples, 1 or 2 bytes big-endian each). */
static int png_encode(FILE *f, const char *path, const char *what, const unsigned char *pix,
                      int w, int h, int channels, int depth) {
  static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                               PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  png_err err = {"unknown libpng error"};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, on_png_error, on_png_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    return kl_failn("%s: '%s': out of memory", what, path);
  }
  png_bytep *volatile rows = NULL;
  if (setjmp(png_jmpbuf(png))) {
    free(rows);
    png_destroy_write_struct(&png, &info);
    return kl_failn("%s: '%s': %s", what, path, err.msg);
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, w, h, depth, types[channels], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  rows = malloc(sizeof(png_bytep) * h);
  if (!rows) {
    snprintf(err.msg, sizeof err.msg, "out of memory");
    png_longjmp(png, 1);
  }
  size_t rowbytes = (size_t)w * channels * (depth / 8);
  for (int y = 0; y < h; y++) rows[y] = (png_bytep)pix + y * rowbytes;
  png_write_image(png, rows);
  png_write_end(png, NULL);
  free(rows);
  png_destroy_write_struct(&png, &info);
  return 0;
}

static int png_save(const char *path, const char *what, const unsigned char *pix, int w, int h,
                    int channels, int depth) {
  char tmp[4096];
  FILE *f = kl_atomic_open(path, what, tmp, sizeof tmp);
  if (!f) return -1;
  int rc = png_encode(f, path, what, pix, w, h, channels, depth);
  if (kl_atomic_commit(f, tmp, path, what, rc == 0) != 0) return -1;
  return 0;
}

int kl_png_write_u8(const char *path, const char *what, const uint8_t *pix, int w, int h, int channels) {
  return png_save(path, what, pix, w, h, channels, 8);
}

int kl_png_write(const char *path, kl_tensor *img, double max_value, int bit_depth) {
  if (!img) return kl_failn("write_png: '%s': no image", path);
  int nd = img->nd;
  int channels = nd == 3 ? (int)img->dims[2] : 1;
  if (!(nd == 2 || (nd == 3 && channels >= 1 && channels <= 4)))
    return kl_failn("write_png: '%s': expected an image (H,W) or (H,W,C) with C in 1..4, got %s",
                    path, KL_SHAPE(img));
  if (img->dims[0] < 1 || img->dims[1] < 1 || img->dims[0] > 1000000 || img->dims[1] > 1000000)
    return kl_failn("write_png: '%s': image size %s is out of range", path, KL_SHAPE(img));
  if (bit_depth != 8 && bit_depth != 16)
    return kl_failn("write_png: '%s': bit depth must be 8 or 16, got %d", path, bit_depth);
  if (!(max_value > 0) || !isfinite(max_value))
    return kl_failn("write_png: '%s': max_value must be a positive number, got %g", path, max_value);
  int h = (int)img->dims[0], w = (int)img->dims[1];
  kl_tensor *c = kl_tensor_contiguous(img);
  if (!c) return -1;
  int64_t count = (int64_t)h * w * channels;
  int bytes = bit_depth / 8;
  unsigned char *pix = malloc((size_t)count * bytes);
  if (!pix) {
    kl_tensor_release(c);
    return kl_failn("write_png: '%s': out of memory", path);
  }
  double top = bit_depth == 16 ? 65535.0 : 255.0;
  for (int64_t i = 0; i < count; i++) {
    double v = c->data[i] / max_value;
    v = v > 0 ? (v < 1 ? v : 1) : 0;   /* NaN lands on 0 */
    unsigned q = (unsigned)lrint(v * top);
    if (bytes == 2) {
      pix[2 * i] = (unsigned char)(q >> 8);
      pix[2 * i + 1] = (unsigned char)(q & 255);
    } else {
      pix[i] = (unsigned char)q;
    }
  }
  kl_tensor_release(c);
  int rc = png_save(path, "write_png", pix, w, h, channels, bit_depth);
  free(pix);
  return rc;
}

/* ---- grids -------------------------------------------------------------- */

/* images (N,H,W[,C]) -> (rows*(H+p)+p, ncol*(W+p)+p, C) */
kl_tensor *kl_image_grid(kl_tensor *images, int ncol, int padding, double pad_value) {
  if (!images) return kl_fail("save_grid: no images");
  if (images->nd != 3 && images->nd != 4)
    return kl_fail("save_grid: expected images (N,H,W) or (N,H,W,C), got %s", KL_SHAPE(images));
  int64_t n = images->dims[0], h = images->dims[1], w = images->dims[2];
  int64_t ch = images->nd == 4 ? images->dims[3] : 1;
  if (n < 1 || h < 1 || w < 1 || ch < 1 || ch > 4)
    return kl_fail("save_grid: expected images (N,H,W) or (N,H,W,C) with N,H,W >= 1 and C in 1..4, got %s",
                   KL_SHAPE(images));
  if (padding < 0 || padding > 1000) return kl_fail("save_grid: padding must be in 0..1000, got %d", padding);
  if (ncol <= 0) ncol = (int)ceil(sqrt((double)n));
  if (ncol > n) ncol = (int)n;
  int64_t nrows = (n + ncol - 1) / ncol;
  int64_t gh = nrows * (h + padding) + padding, gw = ncol * (w + padding) + padding;
  if (gh > 1000000 || gw > 1000000 || gh * gw * ch > KL_IMAGE_MAX_ELEMENTS)
    return kl_fail("save_grid: a grid of %s in %d columns would be %lldx%lld pixels, too large",
                   KL_SHAPE(images), ncol, (long long)gh, (long long)gw);
  kl_tensor *src = kl_tensor_contiguous(images);
  if (!src) return NULL;
  int64_t shape[3] = {gh, gw, ch};
  kl_tensor *out = kl_tensor_full(3, shape, pad_value);
  if (!out) {
    kl_tensor_release(src);
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) {
    int64_t top = (i / ncol) * (h + padding) + padding, left = (i % ncol) * (w + padding) + padding;
    for (int64_t y = 0; y < h; y++)
      memcpy(out->data + ((top + y) * gw + left) * ch, src->data + ((i * h + y) * w) * ch,
             sizeof(float) * w * ch);
  }
  kl_tensor_release(src);
  return out;
}
