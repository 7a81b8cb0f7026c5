/* fuzz_idx.c — libFuzzer target for the IDX reader (src/idx.c), plain and
 * gzip: each input is written to an in-memory file and read with kl_idx_read
 * under a 64 MB limit. A tensor must have exactly the sizes its header
 * declares and values 0..255; an error must name the reader and the file. */
#define _GNU_SOURCE
#include "idx.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd = memfd_create("fuzz.idx", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (write(fd, data, size) == (ssize_t)size) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    kl_tensor *t = kl_idx_read(path, 64 << 20);
    if (t) {
      if (t->nd < 1 || t->nd > KL_MAX_DIMS) __builtin_trap();
      for (int64_t i = 0; i < t->count; i++)
        if (!(t->data[i] >= 0 && t->data[i] <= 255)) __builtin_trap();
      kl_tensor_release(t);
    } else if (strncmp(kl_last_error(), "read_idx: '", 11) != 0) {
      __builtin_trap();
    }
  }
  close(fd);
  return 0;
}
