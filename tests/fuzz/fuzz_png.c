/* fuzz_png.c — libFuzzer target for the PNG reader (src/image.c): each input
 * is written to an in-memory file and read with kl_png_read under a 64 MB
 * limit. Any result is fine (an image or an error naming the file); a crash,
 * leak, sanitizer report, timeout or oversized allocation is a finding. */
#define _GNU_SOURCE
#include "image.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd = memfd_create("fuzz.png", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (write(fd, data, size) == (ssize_t)size) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int depth = 0;
    kl_tensor *t = kl_png_read(path, &depth, 64 << 20);
    if (t) {
      if (t->nd != 3 || t->dims[2] < 1 || t->dims[2] > 4 || (depth != 8 && depth != 16)) __builtin_trap();
      kl_tensor_release(t);
    } else if (strncmp(kl_last_error(), "read_png: '", 11) != 0) {
      __builtin_trap();   /* every error names the reader and the file */
    }
  }
  close(fd);
  return 0;
}
