// A fork-join pool for the per-token kernels: decode makes a few hundred parallel calls per token, each only tens
// of microseconds long, so waking threads through the kernel for every call (as a dispatch queue does) costs more
// than the work. The workers here spin briefly on a generation counter before sleeping on a condition variable,
// and the calling thread takes parts itself; one call is one barrier. Parts are claimed from a shared counter and
// the caller waits only for parts to finish, never for a worker to wake: on a busy machine a descheduled worker
// costs nothing, the caller simply runs its parts (and yields the CPU while it waits).
#include "CFolioKernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

enum { MAX_WORKERS = 63 };
static const long SPIN_NANOSECONDS = 2000000;  // spin up to 2 ms after a call before sleeping

static struct {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  atomic_flag busy;               // one run at a time; a second caller falls back
  _Atomic unsigned long generation;
  // One word a worker claims parts from: the run (low 32 bits of its generation) in bits 63-32, its part count in bits
  // 31-16, the next part in bits 15-0. A worker decides from this word alone and claims with a compare-and-swap, so
  // one that wakes late for a finished run can neither claim a part of the next run nor read that run's half-written
  // settings (a shared counter once let a late worker run a part twice and overshoot the count the caller waits for).
  _Atomic uint64_t claim;
  _Atomic size_t done_parts;
  size_t helpers;                 // workers taking part in the current run (threads - 1)
  folio_parallel_body body;
  void *context;
  size_t started;                 // workers created so far
  int sleepers;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, ATOMIC_FLAG_INIT, 0, 0, 0, 0, 0, 0, 0, 0};

static long elapsed_ns(const struct timespec *since) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - since->tv_sec) * 1000000000L + (now.tv_nsec - since->tv_nsec);
}

enum { MAX_PARTS = 0xFFFF };

static uint64_t run_tag(unsigned long generation) { return (uint64_t)(uint32_t)generation << 32; }

// Claims and runs parts of the run with `generation` until none is left or another run has started.
static void take_parts(unsigned long generation) {
  uint64_t current = atomic_load_explicit(&pool.claim, memory_order_acquire);
  for (;;) {
    if ((current & ~(uint64_t)UINT32_MAX) != run_tag(generation)) return;
    size_t parts = (size_t)(current >> 16) & MAX_PARTS, part = (size_t)current & MAX_PARTS;
    if (part >= parts) return;
    if (atomic_compare_exchange_weak_explicit(&pool.claim, &current, current + 1, memory_order_acq_rel,
                                              memory_order_acquire)) {
      pool.body(pool.context, part);
      atomic_fetch_add_explicit(&pool.done_parts, 1, memory_order_release);
      current = atomic_load_explicit(&pool.claim, memory_order_acquire);
    }
  }
}

// Each worker starts from the generation current when it was created (a thread that starts late must still
// take part in the run that created it).
typedef struct {
  size_t index;
  unsigned long generation;
} worker_start;

static void *worker_main(void *argument) {
  worker_start start = *(worker_start *)argument;
  free(argument);
  size_t index = start.index;
  unsigned long seen = start.generation;
  for (;;) {
    struct timespec spin_start;
    clock_gettime(CLOCK_MONOTONIC, &spin_start);
    unsigned long current;
    unsigned spins = 0;
    while ((current = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen) {
      CPU_RELAX();
      if (++spins % 256 == 0 && elapsed_ns(&spin_start) > SPIN_NANOSECONDS) {
        pthread_mutex_lock(&pool.lock);
        pool.sleepers++;
        while ((current = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen)
          pthread_cond_wait(&pool.wake, &pool.lock);
        pool.sleepers--;
        pthread_mutex_unlock(&pool.lock);
        break;
      }
    }
    seen = current;
    if (index < pool.helpers) take_parts(current);
  }
  return NULL;
}

int folio_parallel_run(size_t threads, size_t parts, folio_parallel_body body, void *context) {
  if (threads > MAX_WORKERS + 1) threads = MAX_WORKERS + 1;
  if (threads <= 1 || parts <= 1 || parts > MAX_PARTS) {
    for (size_t part = 0; part < parts; part++) body(context, part);
    return 1;
  }
  if (atomic_flag_test_and_set_explicit(&pool.busy, memory_order_acquire)) return 0;
  size_t helpers = threads - 1;
  while (pool.started < helpers) {
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    worker_start *start = malloc(sizeof *start);
    if (!start) break;
    start->index = pool.started;
    start->generation = atomic_load_explicit(&pool.generation, memory_order_relaxed);
    int failed = pthread_create(&thread, &attributes, worker_main, start);
    pthread_attr_destroy(&attributes);
    if (failed) {
      free(start);
      break;
    }
    pool.started++;
  }
  if (helpers > pool.started) helpers = pool.started;
  pool.body = body;
  pool.context = context;
  pool.helpers = helpers;
  atomic_store_explicit(&pool.done_parts, 0, memory_order_relaxed);
  unsigned long generation = atomic_load_explicit(&pool.generation, memory_order_relaxed) + 1;
  atomic_store_explicit(&pool.claim, run_tag(generation) | ((uint64_t)parts << 16), memory_order_release);
  // Every worker sees the new generation; those with index >= helpers go back to waiting.
  pthread_mutex_lock(&pool.lock);
  atomic_store_explicit(&pool.generation, generation, memory_order_release);
  if (pool.sleepers > 0) pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.lock);
  take_parts(generation);
  unsigned spins = 0;
  while (atomic_load_explicit(&pool.done_parts, memory_order_acquire) != parts) {
    CPU_RELAX();
    if (++spins % 1024 == 0) sched_yield();  // a worker holding a part may be waiting for this CPU
  }
  atomic_flag_clear_explicit(&pool.busy, memory_order_release);
  return 1;
}
