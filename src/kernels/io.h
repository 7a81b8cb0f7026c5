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
/* Creates "<dir>/.<name>.tmp-<pid>-<n>-<host>" beside `path` and writes its
 * name into tmp_out (cap bytes). NULL on error (message in kl_last_error).
 * First removes the temporaries that saves of `path` killed mid-write left
 * (kl_file_remove_stale_temps). */
kl_file *kl_file_create_temp(const char *path, char *tmp_out, int cap);
/* Removes the "<dir>/.<name>.tmp-<pid>-<n>[-<host>]" files of `path` that
 * saves killed mid-write left: those made on this host by processes that no
 * longer run, and those made on other hosts once a day old. Returns how many.
 * Saves and loads (kl_file_create_temp, kl_file_open_read, PNG and IDX
 * writes) call it. */
int kl_file_remove_stale_temps(const char *path);
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
/* The width in columns of the terminal on fd (ioctl TIOCGWINSZ); 0 when fd is
 * not a terminal or reports no size. */
int kl_terminal_columns(int fd);
/* Writes the names in directory `path` (without "." and "..", in no order)
 * into buf, each ending in a NUL, and returns the bytes that needs: when the
 * result is over cap the names did not all fit (buf may be NULL with cap 0),
 * so call again with a buffer that large. -1 if the directory cannot be read
 * (message in kl_last_error). */
int64_t kl_list_dir(const char *path, char *buf, int64_t cap);

/* safetensors dtypes as float32. klua reads F32, F16, BF16, F64, I64, I32,
 * I16, I8, U64, U32, U16, U8 and BOOL, and writes F32, F16 and BF16:
 * - F16 and BF16 become float32 exactly (subnormals, inf, NaN and -0 too);
 * - F64 rounds to the nearest float32 (ties to even); a finite value that
 *   would round to inf is refused;
 * - integers are refused unless float32 holds the value exactly (every
 *   integer up to 2^24 = 16777216 in magnitude, larger ones with few
 *   significant bits); BOOL bytes must be 0 or 1;
 * - float32 -> F16/BF16 rounds to nearest, ties to even; values past the
 *   largest finite one become inf (as IEEE and PyTorch), NaN stays NaN.
 * Errors name the element ("element 3 is 16777217, which float32 cannot
 * hold exactly ...") in kl_last_error; the caller adds the tensor's name. */
int kl_dtype_size(const char *dtype);   /* bytes per element; 0 for a dtype klua does not read */
int kl_convert_to_f32(float *dst, const void *src, const char *dtype, int64_t n);
int kl_convert_from_f32(void *dst, const float *src, const char *dtype, int64_t n);   /* F32, F16, BF16 */
/* kl_file_read_tensor for a tensor stored as dtype: t->count elements at offset. */
int kl_file_read_tensor_as(kl_file *f, int64_t offset, kl_tensor *t, const char *dtype);
/* kl_file_write_tensor as dtype (F32, F16 or BF16). */
int kl_file_write_tensor_as(kl_file *f, kl_tensor *t, const char *dtype);
/* KL_CDEF_END */

/* Internal (image.c, idx.c): removes stale temporaries of path, then opens a
 * fresh temporary beside it as kl_file_create_temp names it; its name goes
 * into tmp_out. A descriptor, or -1 with errno (ENAMETOOLONG: no room). */
#include <stddef.h>
int kl_temp_create(const char *path, char *tmp_out, size_t cap);

#endif
