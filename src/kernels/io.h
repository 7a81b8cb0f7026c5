/* io.h — file helpers for klua.saving (src/kernels/io.c): atomic writes
 * (temporary file in the target's directory, fflush + fsync, rename, fsync of
 * the directory), bounded reads at an offset, and float32 tensors written and
 * read in bulk as little-endian bytes. Nothing here parses file contents:
 * the Lua side validates every size and offset before asking for a read.
 * Also the few system calls that klua.utils offers the rest of the Lua side
 * (a monotonic clock, isatty, a directory listing), so that no Lua module
 * declares libc functions itself.
 *
 *   char tmp[4096];
 *   kl_file *f = kl_file_create_temp("model.klua", tmp, sizeof tmp);
 *   kl_file_write(f, header, n); kl_file_write_tensor(f, w);
 *   kl_file_commit(f, tmp, "model.klua");     // or kl_file_abort(f, tmp)
 */
#ifndef KL_IO_H
#define KL_IO_H
#include "klua.h"

/* KL_CDEF_BEGIN */
typedef struct kl_file kl_file;
/* Creates "<dir>/.<name>.tmp-<pid>-<n>" beside `path` and writes its name
 * into tmp_out (cap bytes). NULL on error (message in kl_last_error). */
kl_file *kl_file_create_temp(const char *path, char *tmp_out, int cap);
int kl_file_write(kl_file *f, const void *data, int64_t n);
/* Writes the tensor's elements in row-major order as float32 little-endian. */
int kl_file_write_tensor(kl_file *f, kl_tensor *t);
/* fflush, fsync, close, rename(tmp, path), fsync(dir); frees f in every case
 * (on failure the temporary file is removed). */
int kl_file_commit(kl_file *f, const char *tmp, const char *path);
/* Closes f and removes the temporary file. */
void kl_file_abort(kl_file *f, const char *tmp);

kl_file *kl_file_open_read(const char *path);
int64_t kl_file_size(kl_file *f);
/* Reads exactly n bytes at offset into buf; -1 on a short read. */
int kl_file_read(kl_file *f, int64_t offset, void *buf, int64_t n);
/* Fills the contiguous tensor t with t->count little-endian float32 values read at offset. */
int kl_file_read_tensor(kl_file *f, int64_t offset, kl_tensor *t);
void kl_file_close(kl_file *f);

double kl_time_monotonic(void);   /* seconds */
int kl_isatty(int fd);
/* Writes the names in directory `path` (without "." and "..", in no order)
 * into buf, each ending in a NUL, and returns the bytes that needs: when the
 * result is over cap the names did not all fit (buf may be NULL with cap 0),
 * so call again with a buffer that large. -1 if the directory cannot be read
 * (message in kl_last_error). */
int64_t kl_list_dir(const char *path, char *buf, int64_t cap);
/* KL_CDEF_END */

#endif
