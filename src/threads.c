/* threads.c — how many threads the core and OpenBLAS use (one OpenMP pool).
 *
 * Why it adapts: OpenMP's workers spin between parallel regions, and a region
 * waits for its slowest thread. On a machine that is busy with something else
 * (a second training job, a build, several MPI ranks on one host) the spinning
 * workers fight that load, a preempted worker stalls every region, and a step
 * that takes 0.4 ms alone took 8 ms beside one busy process; one thread took
 * 0.5 ms. So by default ("auto") the pool is sized to the cores nobody else is
 * using: every SAMPLE_NS the op dispatcher calls kl_threads_tick, which reads
 * how much CPU time the machine spent busy (/proc/stat) and subtracts this
 * process's own (CLOCK_PROCESS_CPUTIME_ID): what is left is the cores other
 * processes use, smoothed, and the pool gets the rest. On a quiet machine nothing changes: all cores, the
 * workers spin as before. OMP_NUM_THREADS, KLUA_NUM_THREADS or
 * kl_set_num_threads(n) fix the count instead. */
#define _GNU_SOURCE
#include "core.h"
#include <fcntl.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void openblas_set_num_threads(int);

enum { SAMPLE_NS = 100 * 1000 * 1000 };   /* re-evaluate the load every 100 ms */

static int initialised, adaptive, limit = 1, in_use = 1;
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

static int64_t last_wall;
static double last_busy, last_own;

/* Adapt to the load from now on, up to every core this process may run on. */
static void adapt(void) {
  cpu_set_t set;
  int affinity = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
  limit = affinity > 0 ? affinity : host_cpus;
  adaptive = access("/proc/stat", R_OK) == 0;
  other_load = -1;
  next_sample = 0;
  last_wall = 0;
  apply(limit);
}

static void init(void) {
  initialised = 1;
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  host_cpus = online > 0 ? (int)online : 1;
  int fixed = env_threads("KLUA_NUM_THREADS");
  if (!fixed) fixed = env_threads("OMP_NUM_THREADS");
  if (fixed) { adaptive = 0; limit = fixed; apply(fixed); }
  else adapt();
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

/* CPU seconds the whole machine spent busy since boot (/proc/stat's first
 * line: user, nice, system, irq, softirq, steal). Niced processes count: they
 * yield only in proportion to their weight, and four fuzzers at nice 5 made
 * two spinning threads 25x slower (an MLP step 1.4 -> 36 ms). A hypervisor's
 * steal is load like any other. -1 when unreadable. */
static double machine_busy_seconds(void) {
  static long hz;
  if (!hz) hz = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
  char buf[256];
  if (read_small("/proc/stat", buf, sizeof buf) < 0) return -1;
  unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal = 0;
  if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait, &irq, &softirq,
             &steal) < 7) return -1;
  return (double)(user + nice + sys + irq + softirq + steal) / (double)hz;
}

static double process_cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void kl_threads_tick(void) {
  if (!initialised) init();
  if (!adaptive) return;
  int64_t t = now_ns();
  if (t < next_sample) return;
  next_sample = t + SAMPLE_NS;
  double busy = machine_busy_seconds(), own = process_cpu_seconds();
  if (busy < 0) return;
  if (last_wall && t > last_wall) {
    /* Cores the others kept busy over the window (ours, spinning workers
     * included, subtracted); /proc/stat counts in clock ticks (10 ms), so the
     * estimate is smoothed: a steady load settles within ~3 windows, and one
     * that comes and goes (an editor, a browser) does not flip the count. */
    double others = ((busy - last_busy) - (own - last_own)) / ((double)(t - last_wall) * 1e-9);
    if (others < 0) others = 0;
    other_load = other_load < 0 ? others : 0.5 * other_load + 0.5 * others;
    double free_cpus = host_cpus - other_load;
    /* Rounded: a core is free while others use under half of it. One busy
     * process beside our two spinning threads gets 2/3 of a core (1.33 free:
     * one thread); a load of a third of a core keeps both. */
    int want = (int)(free_cpus + 0.5);
    if (want > limit) want = limit;
    if (want < 1) want = 1;
    if (want != in_use) apply(want);
  }
  last_wall = t;
  last_busy = busy;
  last_own = own;
}

void kl_set_num_threads(int n) {
  if (!initialised) init();
  if (n < 1) { adapt(); return; }
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

double kl_threads_others_load(void) { return other_load; }
