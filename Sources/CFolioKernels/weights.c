// Buffers for repacked weights.
//
// Repacked weights are streamed once per token; on 4 KiB pages a 0.8B model's ~0.4-0.8 GB costs a TLB miss every
// page, so they live in 2 MiB-aligned anonymous mappings that ask for transparent huge pages. Most matrices are
// smaller than a huge page, so small ones are packed together into shared 32 MiB arenas (each counts its live
// buffers and is unmapped when the last goes); large ones get their own aligned mapping.
#include "CFolioKernels.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

enum { HUGE_PAGE = 2u << 20, ARENA_BYTES = 32u << 20, MAX_ARENAS = 4096 };

typedef struct {
  char *base;
  size_t used;
  size_t live;
} weight_arena;

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static weight_arena arenas[MAX_ARENAS];
static size_t arena_count;
static weight_arena *open_arena;  // the arena new small buffers go to

// A 2 MiB-aligned anonymous mapping of `bytes` (a multiple of 2 MiB), marked for huge pages.
static void *map_aligned(size_t bytes) {
  size_t padded = bytes + HUGE_PAGE;
  char *p = mmap(NULL, padded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  char *aligned = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
  if (aligned > p) munmap(p, (size_t)(aligned - p));
  char *end = aligned + bytes;
  if (p + padded > end) munmap(end, (size_t)(p + padded - end));
#ifdef MADV_HUGEPAGE
  madvise(aligned, bytes, MADV_HUGEPAGE);
#endif
  return aligned;
}

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

void *folio_allocate_weights(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes > ARENA_BYTES / 4) return map_aligned(round_up(bytes, HUGE_PAGE));
  size_t need = round_up(bytes, 64);
  pthread_mutex_lock(&arena_lock);
  void *result = NULL;
  if (!open_arena || open_arena->used + need > ARENA_BYTES) {
    open_arena = NULL;
    for (size_t i = 0; i < arena_count; i++)  // reuse a slot whose arena was unmapped
      if (!arenas[i].base) { open_arena = &arenas[i]; break; }
    if (!open_arena && arena_count < MAX_ARENAS) open_arena = &arenas[arena_count++];
    if (open_arena) {
      open_arena->base = map_aligned(ARENA_BYTES);
      open_arena->used = 0;
      open_arena->live = 0;
      if (!open_arena->base) open_arena = NULL;
    }
  }
  if (open_arena) {
    result = open_arena->base + open_arena->used;
    open_arena->used += need;
    open_arena->live++;
  }
  pthread_mutex_unlock(&arena_lock);
  return result;
}

void folio_free_weights(void *p, size_t bytes) {
  if (!p) return;
  if (bytes == 0) bytes = 1;
  if (bytes > ARENA_BYTES / 4) {
    munmap(p, round_up(bytes, HUGE_PAGE));
    return;
  }
  pthread_mutex_lock(&arena_lock);
  for (size_t i = 0; i < arena_count; i++) {
    weight_arena *a = &arenas[i];
    if (a->base && (char *)p >= a->base && (char *)p < a->base + ARENA_BYTES) {
      if (--a->live == 0) {
        munmap(a->base, ARENA_BYTES);
        a->base = NULL;
        if (open_arena == a) open_arena = NULL;
      }
      break;
    }
  }
  pthread_mutex_unlock(&arena_lock);
}
