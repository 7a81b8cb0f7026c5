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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

kl_file *kl_file_create_temp(const char *path, char *tmp_out, int cap) {
  static int counter = 0;
  char *copy1 = strdup(path), *copy2 = strdup(path);
  if (!copy1 || !copy2) { free(copy1); free(copy2); kl_fail("out of memory"); return NULL; }
  const char *dir = dirname(copy1), *base = basename(copy2);
  int n = snprintf(tmp_out, (size_t)cap, "%s/.%s.tmp-%ld-%d", dir, base, (long)getpid(), ++counter);
  free(copy1); free(copy2);
  if (n < 0 || n >= cap) { kl_fail("%s: path is too long", path); return NULL; }
  /* O_EXCL: never follow or reuse an existing name */
  int fd = open(tmp_out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
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
