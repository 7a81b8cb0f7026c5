/* idx.c — IDX files (MNIST's format), read through zlib's gz* functions, which
 * read gzip and plain files alike. A hostile or damaged file must not crash or
 * make us allocate what its header claims: the sizes it declares are checked
 * against the file (a plain file must hold them exactly; a gzip file cannot
 * inflate past 1032 times its size) and against the caller's limit before
 * anything is inflated or allocated, and the data must then account for the
 * declared sizes exactly (no missing and no trailing bytes). */
#include "idx.h"
#include "image.h"
#include "core.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* deflate never packs more than 1032 bytes into one (RFC 1951's longest
 * match, 258 bytes, in as little as 2 bits). */
#define KL_DEFLATE_MAX_RATIO 1032

static const char *dtype_name(int code) {
  switch (code) {
  case 0x08: return "unsigned byte";
  case 0x09: return "signed byte";
  case 0x0B: return "short";
  case 0x0C: return "int";
  case 0x0D: return "float";
  case 0x0E: return "double";
  default: return "unknown";
  }
}

/* Reads up to n bytes; returns the count, or -1 with *why set on a zlib error. */
static int64_t read_some(gzFile g, unsigned char *dst, int64_t n, const char **why) {
  int64_t got = 0;
  while (got < n) {
    unsigned chunk = (unsigned)(n - got > (1 << 30) ? (1 << 30) : n - got);
    int r = gzread(g, dst + got, chunk);
    if (r < 0 || (r == 0 && got < n)) {
      int code = 0;
      const char *msg = gzerror(g, &code);
      if (code != Z_OK && code != Z_STREAM_END) {
        *why = code == Z_ERRNO ? strerror(errno) : msg;
        return -1;
      }
      break;   /* clean end of file */
    }
    got += r;
  }
  return got;
}

/* The file's size on disk and whether it is gzip (magic 1f 8b); -1 if it cannot be read. */
static int64_t file_facts(const char *path, int *is_gzip) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  struct stat st;
  unsigned char m[2] = {0, 0};
  int64_t size = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
  *is_gzip = fread(m, 1, 2, f) == 2 && m[0] == 0x1f && m[1] == 0x8b;
  fclose(f);
  return size;
}

kl_tensor *kl_idx_read(const char *path, int64_t max_bytes) {
  if (max_bytes <= 0) max_bytes = KL_IDX_DEFAULT_MAX_BYTES;
  int is_gzip = 0;
  errno = 0;
  int64_t file_size = file_facts(path, &is_gzip);
  if (file_size < 0)
    return kl_fail("read_idx: '%s': %s", path, errno ? strerror(errno) : "not a regular file");
  gzFile g = gzopen(path, "rb");
  if (!g) return kl_fail("read_idx: '%s': %s", path, errno ? strerror(errno) : "cannot open");
  const char *why = NULL;
  unsigned char head[4 + 4 * 255];
  int64_t got = read_some(g, head, 4, &why);
  if (got < 0) goto zerror;
  if (got < 4) {
    gzclose(g);
    return kl_fail("read_idx: '%s': too short for an IDX header (%lld bytes)", path, (long long)got);
  }
  if (head[0] != 0 || head[1] != 0) {
    gzclose(g);
    return kl_fail("read_idx: '%s': bad magic number 0x%02x%02x%02x%02x (not an IDX file)", path,
                   head[0], head[1], head[2], head[3]);
  }
  if (head[2] != 0x08) {
    gzclose(g);
    return kl_fail("read_idx: '%s': data type 0x%02x (%s) is not supported; only 0x08 (unsigned byte)",
                   path, head[2], dtype_name(head[2]));
  }
  int nd = head[3];
  if (nd < 1 || nd > KL_MAX_DIMS) {
    gzclose(g);
    return kl_fail("read_idx: '%s': %d dimensions in the header; expected 1 to %d", path, nd, KL_MAX_DIMS);
  }
  got = read_some(g, head + 4, 4 * nd, &why);
  if (got < 0) goto zerror;
  if (got < 4 * nd) {
    gzclose(g);
    return kl_fail("read_idx: '%s': truncated header (%d dimension sizes announced)", path, nd);
  }
  int64_t shape[KL_MAX_DIMS], total = 0;
  char dims[160] = "";
  for (int i = 0; i < nd; i++) {
    const unsigned char *p = head + 4 + 4 * i;
    shape[i] = ((int64_t)p[0] << 24) | ((int64_t)p[1] << 16) | ((int64_t)p[2] << 8) | p[3];
    snprintf(dims + strlen(dims), sizeof dims - strlen(dims), i ? "x%lld" : "%lld", (long long)shape[i]);
  }
  /* Everything the header claims is checked before a byte of data is inflated
   * or a buffer allocated: the product (overflow-checked), what a file of
   * this size can hold at all, and the caller's limit. */
  if (kl_shape_count(nd, shape, &total) < 0) {
    gzclose(g);
    return kl_fail("read_idx: '%s': header sizes %s are too large", path, dims);
  }
  int64_t head_bytes = 4 + 4 * nd, room = file_size - head_bytes;
  if (!is_gzip && total != room) {
    gzclose(g);
    if (total > room)
      return kl_fail("read_idx: '%s': truncated: sizes %s need %lld bytes of data, the file has %lld",
                     path, dims, (long long)total, (long long)room);
    return kl_fail("read_idx: '%s': sizes %s account for %lld bytes of data but the file has more "
                   "(dimensions do not match the file size)", path, dims, (long long)total);
  }
  if (is_gzip && total / KL_DEFLATE_MAX_RATIO > file_size) {
    gzclose(g);
    return kl_fail("read_idx: '%s': truncated: sizes %s need %lld bytes of data, more than a gzip file of "
                   "%lld bytes can hold", path, dims, (long long)total, (long long)file_size);
  }
  if (total > max_bytes / 4) {
    gzclose(g);
    return kl_fail("read_idx: '%s': sizes %s make a tensor of %lld bytes, more than the limit of %lld bytes "
                   "(max_bytes)", path, dims, (long long)total * 4, (long long)max_bytes);
  }
  kl_tensor *t = kl_tensor_empty(nd, shape);
  if (!t) {
    gzclose(g);
    return NULL;
  }
  /* Inflate in small pieces straight into the tensor: the one large buffer. */
  unsigned char buf[1 << 16];
  int64_t have = 0;
  while (have < total) {
    int64_t want = total - have < (int64_t)sizeof buf ? total - have : (int64_t)sizeof buf;
    int64_t r = read_some(g, buf, want, &why);
    if (r < 0) {
      kl_tensor_release(t);
      goto zerror;
    }
    for (int64_t i = 0; i < r; i++) t->data[have + i] = (float)buf[i];
    have += r;
    if (r < want) break;
  }
  if (have < total) {
    kl_tensor_release(t);
    gzclose(g);
    return kl_fail("read_idx: '%s': truncated: sizes %s need %lld bytes of data, the file has %lld",
                   path, dims, (long long)total, (long long)have);
  }
  int64_t more = read_some(g, buf, 64, &why);
  if (more < 0) {
    kl_tensor_release(t);
    goto zerror;
  }
  if (more > 0) {
    kl_tensor_release(t);
    gzclose(g);
    return kl_fail("read_idx: '%s': sizes %s account for %lld bytes of data but the file has more "
                   "(dimensions do not match the file size)", path, dims, (long long)total);
  }
  gzclose(g);
  return t;

zerror: {
  /* why may point into g's state: copy it before closing. */
  char msg[160];
  size_t plen = strlen(path);
  if (why && strncmp(why, path, plen) == 0 && strncmp(why + plen, ": ", 2) == 0) why += plen + 2;   /* zlib prefixes the path */
  snprintf(msg, sizeof msg, "%s", why ? why : "read error");
  gzclose(g);
  if (strstr(msg, "unexpected end of file"))
    return kl_fail("read_idx: '%s': truncated gzip data (unexpected end of file)", path);
  return kl_fail("read_idx: '%s': corrupt gzip data (%s)", path, msg);
}
}

int kl_idx_write(const char *path, kl_tensor *t, int gzip) {
  if (!t) return kl_failn("write_idx: '%s': no tensor", path);
  if (t->nd < 1) return kl_failn("write_idx: '%s': expected a tensor with 1 to %d dimensions, got %s",
                                 path, KL_MAX_DIMS, KL_SHAPE(t));
  for (int i = 0; i < t->nd; i++)
    if (t->dims[i] > 0xffffffffLL)
      return kl_failn("write_idx: '%s': dimension %d of %s does not fit IDX's 32 bits", path, i + 1, KL_SHAPE(t));
  kl_tensor *c = kl_tensor_contiguous(t);
  if (!c) return -1;
  unsigned char *bytes = malloc(c->count > 0 ? c->count : 1);
  if (!bytes) {
    kl_tensor_release(c);
    return kl_failn("write_idx: '%s': out of memory", path);
  }
  for (int64_t i = 0; i < c->count; i++) {
    float v = c->data[i];
    if (!(v >= 0 && v <= 255 && v == (float)(int)v)) {
      free(bytes);
      kl_tensor_release(c);
      return kl_failn("write_idx: '%s': value %g at position %lld (1-based, row-major) is not an integer in 0..255", path, v,
                      (long long)i + 1);
    }
    bytes[i] = (unsigned char)v;
  }
  unsigned char head[4 + 4 * KL_MAX_DIMS] = {0, 0, 0x08, (unsigned char)c->nd};
  for (int i = 0; i < c->nd; i++) {
    uint32_t d = (uint32_t)c->dims[i];
    head[4 + 4 * i] = d >> 24, head[5 + 4 * i] = d >> 16, head[6 + 4 * i] = d >> 8, head[7 + 4 * i] = d;
  }
  int64_t count = c->count;
  kl_tensor_release(c);

  char tmp[4096];
  FILE *f = kl_atomic_open(path, "write_idx", tmp, sizeof tmp);
  if (!f) {
    free(bytes);
    return -1;
  }
  int ok;
  if (gzip) {
    /* gzdopen takes its own descriptor so gzclose leaves f's open for the sync. */
    int fd = dup(fileno(f));
    gzFile g = fd >= 0 ? gzdopen(fd, "wb") : NULL;
    ok = g != NULL;
    if (!g && fd >= 0) close(fd);
    if (ok) ok = gzwrite(g, head, 4 + 4 * t->nd) == 4 + 4 * t->nd;
    for (int64_t off = 0; ok && off < count; off += 1 << 30) {
      unsigned n = (unsigned)(count - off > (1 << 30) ? (1 << 30) : count - off);
      ok = gzwrite(g, bytes + off, n) == (int)n;
    }
    if (g && gzclose(g) != Z_OK) ok = 0;
  } else {
    ok = fwrite(head, 1, 4 + 4 * t->nd, f) == (size_t)(4 + 4 * t->nd) &&
         fwrite(bytes, 1, count, f) == (size_t)count;
  }
  free(bytes);
  if (!ok) {
    kl_atomic_commit(f, tmp, path, "write_idx", 0);
    return kl_failn("write_idx: '%s': write failed: %s", path, strerror(errno));
  }
  return kl_atomic_commit(f, tmp, path, "write_idx", 1);
}
