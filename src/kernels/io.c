/* io.c — atomic file writes, bounded reads and bulk float32 I/O for
 * klua.saving, plus the system calls klua.utils wraps (clock, isatty,
 * directory listing).
 * See io.h. Little-endian on disk; a big-endian host swaps bytes. */
#define _GNU_SOURCE
#include "io.h"
#include "../core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct kl_file {
  FILE *fp;
  char *path;   /* for error messages */
};

static int host_is_le(void) {
  const uint16_t one = 1;
  return *(const uint8_t *)&one == 1;
}

static kl_file *file_new(FILE *fp, const char *path) {
  kl_file *f = calloc(1, sizeof *f);
  if (!f) { fclose(fp); kl_fail("out of memory"); return NULL; }
  f->fp = fp;
  f->path = strdup(path);
  return f;
}

static void file_free(kl_file *f) {
  if (!f) return;
  if (f->fp) fclose(f->fp);
  free(f->path);
  free(f);
}

/* ---- temporary files ----------------------------------------------------
 * A save writes "<dir>/.<name>.tmp-<pid>-<n>-<host>" and renames it over
 * <name>. A process killed mid-save leaves its temporary behind; the next
 * save or load of <name> removes the ones whose process is gone. Only names
 * of this exact form are touched, and only regular files. One made on this
 * host goes as soon as its process is gone (kill(pid, 0) fails with ESRCH);
 * one made on another host (a shared filesystem may hold another machine's
 * save in progress, and a container's restart changes its host name) goes
 * once it is a day old. */
#define KL_FOREIGN_TEMP_AGE (24 * 3600)

/* This host's name, reduced to [A-Za-z0-9_] (at most 32 characters). */
static const char *host_tag(void) {
  static char tag[33];
  if (tag[0]) return tag;
  char host[256] = "";
  if (gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  int k = 0;
  for (int i = 0; host[i] && k < 32; i++) {
    char c = host[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') tag[k++] = c;
  }
  if (k == 0) tag[k++] = '_';
  tag[k] = 0;
  return tag;
}

/* What host_tag makes: 1 to 32 of [A-Za-z0-9_]. */
static int is_host_tag(const char *s) {
  int k = 0;
  for (; s[k]; k++) {
    char c = s[k];
    if (k == 32 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return 0;
  }
  return k > 0;
}

/* Copies of path's directory and base name (the caller frees them); -1 when out of memory. */
static int split_path(const char *path, char **dir, char **base) {
  char *c1 = strdup(path), *c2 = strdup(path);
  if (!c1 || !c2) { free(c1); free(c2); return -1; }
  *dir = strdup(dirname(c1));
  *base = strdup(basename(c2));
  free(c1); free(c2);
  if (!*dir || !*base) { free(*dir); free(*base); return -1; }
  return 0;
}

int kl_file_remove_stale_temps(const char *path) {
  char *dir, *base;
  if (split_path(path, &dir, &base) != 0) return 0;
  DIR *d = opendir(dir);
  int removed = 0;
  size_t plen = strlen(base) + 6;   /* "." base ".tmp-" */
  char *prefix = malloc(plen + 1);
  if (d && prefix) {
    snprintf(prefix, plen + 1, ".%s.tmp-", base);
    struct dirent *e;
    while ((e = readdir(d))) {
      if (strncmp(e->d_name, prefix, plen) != 0) continue;
      long pid = 0;
      int n = 0, used = 0;
      if (sscanf(e->d_name + plen, "%ld-%d%n", &pid, &n, &used) != 2 || pid <= 0 || pid > INT32_MAX) continue;
      const char *rest = e->d_name + plen + used;
      if (rest[0] != 0 && (rest[0] != '-' || !is_host_tag(rest + 1))) continue;
      /* older saves wrote no host: those are taken as this host's */
      int here = rest[0] == 0 || strcmp(rest + 1, host_tag()) == 0;
      char full[4096];
      struct stat st;
      if (snprintf(full, sizeof full, "%s/%s", dir, e->d_name) >= (int)sizeof full) continue;
      if (lstat(full, &st) != 0 || !S_ISREG(st.st_mode)) continue;
      if (here && (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
      if (!here && time(NULL) - st.st_mtime < KL_FOREIGN_TEMP_AGE) continue;
      if (unlink(full) == 0) removed++;
    }
  }
  if (d) closedir(d);
  free(prefix); free(dir); free(base);
  return removed;
}

int kl_temp_create(const char *path, char *tmp_out, size_t cap) {
  static int counter = 0;
  char *dir, *base;
  if (split_path(path, &dir, &base) != 0) { errno = ENOMEM; return -1; }
  kl_file_remove_stale_temps(path);
  int fd = -1;
  /* A name can be taken by a temporary left by an earlier process that had
   * this pid (pids restart in every container): then try the next number. */
  for (int tries = 0; tries < 100 && fd < 0; tries++) {
    int n = snprintf(tmp_out, cap, "%s/.%s.tmp-%ld-%d-%s", dir, base, (long)getpid(), ++counter, host_tag());
    if (n < 0 || (size_t)n >= cap) { errno = ENAMETOOLONG; break; }
    /* O_EXCL: never follow or reuse an existing name; 0666 & ~umask, as any new file */
    fd = open(tmp_out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  free(dir); free(base);
  return fd;
}

kl_file *kl_file_create_temp(const char *path, char *tmp_out, int cap) {
  if (cap <= 0) { kl_fail("%s: no room for the temporary file's name", path); return NULL; }
  int fd = kl_temp_create(path, tmp_out, (size_t)cap);
  if (fd < 0 && errno == ENAMETOOLONG) { kl_fail("%s: path is too long", path); return NULL; }
  if (fd < 0) { kl_fail("%s: cannot create a temporary file beside it: %s", path, strerror(errno)); return NULL; }
  FILE *fp = fdopen(fd, "wb");
  if (!fp) { close(fd); unlink(tmp_out); kl_fail("%s: %s", path, strerror(errno)); return NULL; }
  return file_new(fp, path);
}

int kl_file_write(kl_file *f, const void *data, int64_t n) {
  if (n <= 0) return 0;
  if (fwrite(data, 1, (size_t)n, f->fp) != (size_t)n) {
    kl_fail("%s: write failed: %s", f->path, strerror(errno));
    return -1;
  }
  return 0;
}

int kl_file_write_tensor(kl_file *f, kl_tensor *t) {
  kl_tensor *c = kl_tensor_contiguous(t);
  if (!c) return -1;
  int rc = 0;
  if (host_is_le()) {
    rc = kl_file_write(f, c->data, c->count * (int64_t)sizeof(float));
  } else {
    uint8_t buf[4096];
    int64_t i = 0;
    while (i < c->count && rc == 0) {
      int64_t k = 0;
      for (; k < (int64_t)(sizeof buf / 4) && i < c->count; k++, i++) {
        const uint8_t *b = (const uint8_t *)&c->data[i];
        buf[4 * k] = b[3]; buf[4 * k + 1] = b[2]; buf[4 * k + 2] = b[1]; buf[4 * k + 3] = b[0];
      }
      rc = kl_file_write(f, buf, 4 * k);
    }
  }
  kl_tensor_release(c);
  return rc;
}

static void fsync_dir(const char *path) {
  char *copy = strdup(path);
  if (!copy) return;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(copy);
  if (fd >= 0) { fsync(fd); close(fd); }  /* best effort: some filesystems refuse */
}

int kl_file_commit(kl_file *f, const char *tmp, const char *path) {
  int rc = 0;
  if (fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0) {
    kl_fail("%s: cannot flush to disk: %s", path, strerror(errno));
    rc = -1;
  }
  if (fclose(f->fp) != 0 && rc == 0) {
    kl_fail("%s: cannot close: %s", path, strerror(errno));
    rc = -1;
  }
  f->fp = NULL;
  file_free(f);
  if (rc == 0 && rename(tmp, path) != 0) {
    kl_fail("%s: cannot replace the file: %s", path, strerror(errno));
    rc = -1;
  }
  if (rc != 0) { unlink(tmp); return -1; }
  fsync_dir(path);
  return 0;
}

void kl_file_abort(kl_file *f, const char *tmp) {
  file_free(f);
  if (tmp) unlink(tmp);
}

kl_file *kl_file_open_read(const char *path) {
  kl_file_remove_stale_temps(path);
  FILE *fp = fopen(path, "rb");
  if (!fp) { kl_fail("%s: cannot open: %s", path, strerror(errno)); return NULL; }
  struct stat st;
  if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(fp);
    kl_fail("%s: not a regular file", path);
    return NULL;
  }
  return file_new(fp, path);
}

int64_t kl_file_size(kl_file *f) {
  struct stat st;
  if (fstat(fileno(f->fp), &st) != 0) { kl_fail("%s: %s", f->path, strerror(errno)); return -1; }
  return (int64_t)st.st_size;
}

int kl_file_read(kl_file *f, int64_t offset, void *buf, int64_t n) {
  if (offset < 0 || n < 0) { kl_fail("%s: negative offset or size", f->path); return -1; }
  if (fseeko(f->fp, (off_t)offset, SEEK_SET) != 0) { kl_fail("%s: cannot seek: %s", f->path, strerror(errno)); return -1; }
  if (n > 0 && fread(buf, 1, (size_t)n, f->fp) != (size_t)n) {
    kl_fail("%s: file ended early (wanted %lld bytes at offset %lld)", f->path, (long long)n, (long long)offset);
    return -1;
  }
  return 0;
}

int kl_file_read_tensor(kl_file *f, int64_t offset, kl_tensor *t) {
  if (!t->contiguous) { kl_fail("kl_file_read_tensor: the tensor must be contiguous"); return -1; }
  if (kl_file_read(f, offset, t->data, t->count * (int64_t)sizeof(float)) != 0) return -1;
  if (!host_is_le()) {
    uint8_t *b = (uint8_t *)t->data;
    for (int64_t i = 0; i < t->count; i++, b += 4) {
      uint8_t x = b[0]; b[0] = b[3]; b[3] = x;
      x = b[1]; b[1] = b[2]; b[2] = x;
    }
  }
  return 0;
}

void kl_file_close(kl_file *f) { file_free(f); }

double kl_time_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int kl_isatty(int fd) { return isatty(fd); }

int kl_terminal_columns(int fd) {
  struct winsize ws;
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return 0;
  return ws.ws_col;
}

int64_t kl_list_dir(const char *path, char *buf, int64_t cap) {
  DIR *d = opendir(path);
  if (!d) { kl_fail("%s: cannot list the directory: %s", path, strerror(errno)); return -1; }
  int64_t need = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    const char *name = e->d_name;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
    int64_t len = (int64_t)strlen(name) + 1;
    /* keep counting past cap so the caller learns the size it needs */
    if (buf && need + len <= cap) memcpy(buf + need, name, (size_t)len);
    need += len;
  }
  closedir(d);
  return need;
}

/* ---- safetensors dtypes other than F32 -----------------------------------
 * Published weights are mostly F16 or BF16; klua computes in float32, so a
 * tensor of another dtype is converted as it is read, and F16/BF16 can be
 * written on request. F16 and BF16 convert to float32 exactly (subnormals,
 * inf and NaN included); F64 and float32 -> F16/BF16 round to nearest even.
 * Integers and BOOL are read only when every value is exact in float32. */

#include <float.h>
#include <math.h>

enum { DT_F32, DT_F16, DT_BF16, DT_F64, DT_INT, DT_UINT, DT_BOOL };

static const struct { const char *name; int size, kind; } kl_dtypes[] = {
  { "F32", 4, DT_F32 }, { "F16", 2, DT_F16 }, { "BF16", 2, DT_BF16 }, { "F64", 8, DT_F64 },
  { "I64", 8, DT_INT }, { "I32", 4, DT_INT }, { "I16", 2, DT_INT }, { "I8", 1, DT_INT },
  { "U64", 8, DT_UINT }, { "U32", 4, DT_UINT }, { "U16", 2, DT_UINT }, { "U8", 1, DT_UINT },
  { "BOOL", 1, DT_BOOL },
};

static int dtype_index(const char *dtype) {
  if (!dtype) return -1;
  for (int i = 0; i < (int)(sizeof kl_dtypes / sizeof kl_dtypes[0]); i++)
    if (strcmp(dtype, kl_dtypes[i].name) == 0) return i;
  return -1;
}

int kl_dtype_size(const char *dtype) {
  int i = dtype_index(dtype);
  return i < 0 ? 0 : kl_dtypes[i].size;
}

static float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, x;
  if (e == 0x1f) {
    x = sign | 0x7f800000 | (m << 13);             /* inf, or NaN with its payload */
  } else if (e == 0) {
    float v = (float)m * 0x1p-24f;                 /* zero or subnormal: exact */
    memcpy(&x, &v, 4);
    x |= sign;
  } else {
    x = sign | ((e + 112) << 23) | (m << 13);
  }
  float f;
  memcpy(&f, &x, 4);
  return f;
}

/* q + rem / 2^shift rounded to nearest, ties to even (shift >= 1). */
static uint32_t round_even(uint32_t q, uint32_t rem, int shift) {
  uint32_t half = 1u << (shift - 1);
  return q + (rem > half || (rem == half && (q & 1)));
}

static uint16_t f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffff;
  if (ax > 0x7f800000) return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x3ff);   /* NaN stays a quiet NaN */
  if (ax >= 0x477ff000) return sign | 0x7c00;     /* >= 65520 rounds to inf (65504 is the largest half) */
  if (ax >= 0x38800000) {                         /* a normal half; a carry moves into the exponent */
    uint32_t h = (((ax >> 23) - 112) << 10) | ((ax >> 13) & 0x3ff);
    return sign | (uint16_t)round_even(h, ax & 0x1fff, 13);
  }
  int e = (int)(ax >> 23);
  if (e < 102) return sign;                       /* below 2^-25: rounds to zero */
  uint32_t m = (ax & 0x7fffff) | 0x800000;        /* the value is m * 2^(e-150); a subnormal half counts 2^-24 */
  int shift = 126 - e;                            /* 14..24 */
  return sign | (uint16_t)round_even(m >> shift, m & ((1u << shift) - 1), shift);
}

static float bf16_to_f32(uint16_t b) {
  uint32_t x = (uint32_t)b << 16;
  float f;
  memcpy(&f, &x, 4);
  return f;
}

static uint16_t f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x0040);   /* quiet NaN */
  return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);                       /* overflow gives inf */
}

static uint64_t load_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* An integer of magnitude a is exact in float32 when its significant bits fit in 24. */
static int exact_in_f32(uint64_t a) {
  if (a < (1u << 24)) return 1;
  while ((a & 1) == 0) a >>= 1;
  return a < (1u << 24);
}

/* n elements at src into dst; `first` numbers the first element in messages. */
static int convert_to_f32(float *dst, const uint8_t *p, const char *dtype, int64_t n, int64_t first) {
  int d = dtype_index(dtype);
  if (d < 0) { kl_fail("unsupported dtype %s", dtype ? dtype : "(null)"); return -1; }
  int size = kl_dtypes[d].size, kind = kl_dtypes[d].kind;
  for (int64_t i = 0; i < n; i++, p += size) {
    uint64_t u = load_le(p, size);
    switch (kind) {
    case DT_F32: { uint32_t x = (uint32_t)u; memcpy(&dst[i], &x, 4); break; }
    case DT_F16: dst[i] = f16_to_f32((uint16_t)u); break;
    case DT_BF16: dst[i] = bf16_to_f32((uint16_t)u); break;
    case DT_F64: {
      double v;
      memcpy(&v, &u, 8);
      /* from FLT_MAX + half an ulp on, the nearest float32 would be inf */
      if (isfinite(v) && fabs(v) >= 0x1.ffffffp127) {
        kl_fail("element %lld is %.10g, beyond float32's range (largest %.9g)", (long long)(first + i), v, (double)FLT_MAX);
        return -1;
      }
      dst[i] = (float)v;
      break;
    }
    case DT_BOOL:
      if (u > 1) { kl_fail("element %lld is the byte %u, not a boolean (0 or 1)", (long long)(first + i), (unsigned)u); return -1; }
      dst[i] = (float)u;
      break;
    case DT_UINT:
      if (!exact_in_f32(u)) {
        kl_fail("element %lld is %llu, which float32 cannot hold exactly (integers are exact up to 2^24 = 16777216)",
                (long long)(first + i), (unsigned long long)u);
        return -1;
      }
      dst[i] = (float)u;
      break;
    default: {                                     /* DT_INT: sign-extend */
      int bits = 8 * size;
      int64_t v = bits == 64 ? (int64_t)u : (int64_t)(u ^ (1ull << (bits - 1))) - (int64_t)(1ull << (bits - 1));
      if (!exact_in_f32(v < 0 ? 0 - (uint64_t)v : (uint64_t)v)) {
        kl_fail("element %lld is %lld, which float32 cannot hold exactly (integers are exact up to 2^24 = 16777216)",
                (long long)(first + i), (long long)v);
        return -1;
      }
      dst[i] = (float)v;
    }
    }
  }
  return 0;
}

int kl_convert_to_f32(float *dst, const void *src, const char *dtype, int64_t n) {
  return convert_to_f32(dst, (const uint8_t *)src, dtype, n, 0);
}

int kl_convert_from_f32(void *dst, const float *src, const char *dtype, int64_t n) {
  uint8_t *p = (uint8_t *)dst;
  int d = dtype_index(dtype);
  int kind = d < 0 ? -1 : kl_dtypes[d].kind;
  if (kind == DT_F32) {
    for (int64_t i = 0; i < n; i++) {
      uint32_t x;
      memcpy(&x, &src[i], 4);
      for (int k = 0; k < 4; k++) p[4 * i + k] = (uint8_t)(x >> (8 * k));
    }
    return 0;
  }
  if (kind != DT_F16 && kind != DT_BF16) {
    kl_fail("cannot write dtype %s (klua writes F32, F16 and BF16)", dtype ? dtype : "(null)");
    return -1;
  }
  for (int64_t i = 0; i < n; i++) {
    uint16_t h = kind == DT_BF16 ? f32_to_bf16(src[i]) : f32_to_f16(src[i]);
    p[2 * i] = (uint8_t)h;
    p[2 * i + 1] = (uint8_t)(h >> 8);
  }
  return 0;
}

#define KL_CONVERT_BLOCK 4096   /* elements converted per read or write */

int kl_file_read_tensor_as(kl_file *f, int64_t offset, kl_tensor *t, const char *dtype) {
  if (!t->contiguous) { kl_fail("kl_file_read_tensor_as: the tensor must be contiguous"); return -1; }
  int size = kl_dtype_size(dtype);
  if (size == 0) { kl_fail("%s: unsupported dtype %s", f->path, dtype ? dtype : "(null)"); return -1; }
  uint8_t *buf = malloc((size_t)KL_CONVERT_BLOCK * (size_t)size);
  if (!buf) { kl_fail("out of memory"); return -1; }
  int rc = 0;
  for (int64_t i = 0; i < t->count && rc == 0; i += KL_CONVERT_BLOCK) {
    int64_t k = t->count - i < KL_CONVERT_BLOCK ? t->count - i : KL_CONVERT_BLOCK;
    rc = kl_file_read(f, offset + i * size, buf, k * size);
    if (rc == 0) rc = convert_to_f32(t->data + i, buf, dtype, k, i);
  }
  free(buf);
  return rc;
}

int kl_file_write_tensor_as(kl_file *f, kl_tensor *t, const char *dtype) {
  int d = dtype_index(dtype);
  if (d >= 0 && kl_dtypes[d].kind == DT_F32) return kl_file_write_tensor(f, t);
  if (d < 0 || (kl_dtypes[d].kind != DT_F16 && kl_dtypes[d].kind != DT_BF16)) {
    kl_fail("cannot write dtype %s (klua writes F32, F16 and BF16)", dtype ? dtype : "(null)");
    return -1;
  }
  kl_tensor *c = kl_tensor_contiguous(t);
  if (!c) return -1;
  uint8_t buf[KL_CONVERT_BLOCK * 2];
  int rc = 0;
  for (int64_t i = 0; i < c->count && rc == 0; i += KL_CONVERT_BLOCK) {
    int64_t k = c->count - i < KL_CONVERT_BLOCK ? c->count - i : KL_CONVERT_BLOCK;
    kl_convert_from_f32(buf, c->data + i, dtype, k);
    rc = kl_file_write(f, buf, 2 * k);
  }
  kl_tensor_release(c);
  return rc;
}
