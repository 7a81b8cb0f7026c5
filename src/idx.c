/* idx.c — IDX files (MNIST's format), read through zlib's gz* functions, which
 * read gzip and plain files alike. A hostile or damaged file must not crash or
 * make us allocate what its header claims: the data buffer grows only as
 * bytes actually arrive, and the header's sizes must account for the file
 * exactly (no missing and no trailing bytes). */
#include "idx.h"
#include "image.h"
#include "core.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* 16 GiB: far above any IDX dataset, far below a sum that overflows. */
#define KL_IDX_MAX_BYTES ((int64_t)1 << 34)

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

kl_tensor *kl_idx_read(const char *path) {
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
  int64_t shape[KL_MAX_DIMS], total = 1;
  char dims[160] = "";
  for (int i = 0; i < nd; i++) {
    const unsigned char *p = head + 4 + 4 * i;
    shape[i] = ((int64_t)p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
    snprintf(dims + strlen(dims), sizeof dims - strlen(dims), i ? "x%lld" : "%lld", (long long)shape[i]);
    if (shape[i] > 0 && total > KL_IDX_MAX_BYTES / shape[i]) total = KL_IDX_MAX_BYTES + 1;
    else total *= shape[i];
  }
  if (total > KL_IDX_MAX_BYTES) {
    gzclose(g);
    return kl_fail("read_idx: '%s': header sizes %s are too large", path, dims);
  }
  /* Grow as data arrives: a lying header costs at most twice the real size. */
  int64_t cap = total < (1 << 20) ? total : (1 << 20), have = 0;
  unsigned char *buf = malloc(cap > 0 ? cap : 1);
  while (buf && have < total) {
    if (have == cap) {
      cap = cap * 2 < total ? cap * 2 : total;
      unsigned char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
    }
    int64_t r = read_some(g, buf + have, cap - have, &why);
    if (r < 0) {
      free(buf);
      goto zerror;
    }
    if (r == 0) break;
    have += r;
  }
  if (!buf) {
    gzclose(g);
    return kl_fail("read_idx: '%s': out of memory for %s bytes", path, dims);
  }
  if (have < total) {
    free(buf);
    gzclose(g);
    return kl_fail("read_idx: '%s': truncated: sizes %s need %lld bytes of data, the file has %lld",
                   path, dims, (long long)total, (long long)have);
  }
  unsigned char extra[64];
  int64_t more = read_some(g, extra, sizeof extra, &why);
  if (more < 0) {
    free(buf);
    goto zerror;
  }
  if (more > 0) {
    free(buf);
    gzclose(g);
    return kl_fail("read_idx: '%s': sizes %s account for %lld bytes of data but the file has more "
                   "(dimensions do not match the file size)", path, dims, (long long)total);
  }
  gzclose(g);
  kl_tensor *t = kl_tensor_from_bytes(nd, shape, buf);
  free(buf);
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
