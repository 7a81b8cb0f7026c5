/* threads.c — how many threads the core and OpenBLAS use (one OpenMP pool).
 *
 * Why it adapts: OpenMP's workers spin between parallel regions, and a region
 * waits for its slowest thread. On a machine that is busy with something else
 * (a second training job, a build, several MPI ranks on one host) the spinning
 * workers fight that load, a preempted worker stalls every region, and a step
 * that takes 0.4 ms alone took 8 ms beside one busy process; one thread took
 * 0.5 ms. So by default ("auto") the pool is sized to the cores nobody else is
 * using: every SAMPLE_NS the op dispatcher calls kl_threads_tick, which reads
 * the kernel's count of runnable tasks (/proc/loadavg), subtracts this
 * process's own runnable threads (/proc/self/task/<tid>/stat), smooths it and
 * picks the thread count. On a quiet machine nothing changes: all cores, the
 * workers spin as before. OMP_NUM_THREADS, KLUA_NUM_THREADS or
 * kl_set_num_threads(n) fix the count instead. */
#define _GNU_SOURCE
#include "core.h"
#include <dirent.h>
#include <fcntl.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void openblas_set_num_threads(int);

enum { SAMPLE_NS = 50 * 1000 * 1000 };   /* re-evaluate the load every 50 ms */

static int initialised, adaptive = 1, limit = 1, in_use = 1;
static int host_cpus = 1;
static double other_load = -1;   /* smoothed runnable tasks that are not ours; < 0: none yet */
static int64_t next_sample;

static void apply(int n) {
  in_use = n;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

static int env_threads(const char *name) {
  const char *s = getenv(name);
  if (!s || !*s) return 0;
  char *end;
  long v = strtol(s, &end, 10);   /* OMP_NUM_THREADS may be a list ("4,2"): its first entry */
  return end != s && v >= 1 && v <= 4096 ? (int)v : 0;
}

static void init(void) {
  initialised = 1;
  cpu_set_t set;
  int affinity = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  host_cpus = online > 0 ? (int)online : 1;
  limit = affinity > 0 ? affinity : host_cpus;
  int fixed = env_threads("KLUA_NUM_THREADS");
  if (!fixed) fixed = env_threads("OMP_NUM_THREADS");
  if (fixed) { adaptive = 0; limit = fixed; }
  if (access("/proc/loadavg", R_OK) != 0) adaptive = 0;
  apply(limit);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int read_small(const char *path, char *buf, int cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int n = (int)read(fd, buf, (size_t)cap - 1);
  close(fd);
  if (n < 0) return -1;
  buf[n] = 0;
  return n;
}

/* Runnable tasks on the machine now (the kernel's nr_running), or -1. */
static int machine_runnable(void) {
  char buf[128];
  if (read_small("/proc/loadavg", buf, sizeof buf) < 0) return -1;
  int running = -1, total;
  if (sscanf(buf, "%*f %*f %*f %d/%d", &running, &total) != 2) return -1;
  return running;
}

/* This process's threads that are runnable now (spinning workers count). */
static int own_runnable(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return 1;
  int n = 0;
  struct dirent *e;
  char path[64], buf[512];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
    if (read_small(path, buf, sizeof buf) < 0) continue;
    const char *p = strrchr(buf, ')');   /* the name may hold spaces and parentheses */
    if (p && p[1] == ' ' && p[2] == 'R') n++;
  }
  closedir(d);
  return n > 0 ? n : 1;
}

void kl_threads_tick(void) {
  if (!initialised) init();
  if (!adaptive) return;
  int64_t t = now_ns();
  if (t < next_sample) return;
  next_sample = t + SAMPLE_NS;
  int all = machine_runnable();
  if (all < 0) return;
  int others = all - own_runnable();
  if (others < 0) others = 0;
  /* Smoothed so that a load that comes and goes (an editor, a browser) does
   * not flip the count on every sample; a steady load settles in ~3 samples. */
  other_load = other_load < 0 ? others : 0.5 * other_load + 0.5 * others;
  double free_cpus = host_cpus - other_load;
  int want = (int)(free_cpus + 0.35);   /* a core counts as free below ~0.65 of a task on it */
  if (want > limit) want = limit;
  if (want < 1) want = 1;
  if (want != in_use) apply(want);
}

void kl_set_num_threads(int n) {
  if (!initialised) init();
  if (n < 1) {   /* back to adapting to the load, up to every core we may run on */
    cpu_set_t set;
    limit = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : host_cpus;
    adaptive = access("/proc/loadavg", R_OK) == 0;
    other_load = -1;
    next_sample = 0;
    apply(limit);
    return;
  }
  adaptive = 0;
  limit = n;
  apply(n);
}

int kl_get_num_threads(void) {
  if (!initialised) init();
  return in_use;
}

int kl_threads_adaptive(void) {
  if (!initialised) init();
  return adaptive;
}
