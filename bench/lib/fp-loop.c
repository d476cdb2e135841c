/*
 * The machine's own 2-thread ceiling, for the paired thread-scaling measurement
 * (bench/run.mjs `runScaling`): a perfectly parallel floating-point loop with no memory
 * traffic, spread over T threads in 64 chunks claimed from an atomic counter (as the
 * library's executor claims tasks), so a thread that runs slower takes fewer chunks.
 *
 *   fp-loop THREADS  →  prints the milliseconds the whole job took
 *
 * The job is the same for any THREADS, so (time at 1) ÷ (time at 2) is the speed-up two
 * threads get on this machine at that moment: what is left when no code of ours is in
 * the way (no memory, no wasm, one start and one join).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { CHUNKS = 64, CHAINS = 12, STEPS = 1000000 };

/* Four-lane vectors (GCC/Clang), as the kernels' f32x4. */
typedef float f32x4 __attribute__((vector_size(16)));

static atomic_int next_chunk;
static volatile float sink;

/* One chunk: CHAINS independent vector multiply-add chains held in registers, enough to
 * keep the FP units busy (as the GEMM microkernel's accumulators do). */
static void chunk(void) {
  f32x4 x[CHAINS];
  const f32x4 m = {0.99999f, 0.99999f, 0.99999f, 0.99999f}, c = {1e-5f, 1e-5f, 1e-5f, 1e-5f};
  for (int i = 0; i < CHAINS; i++) x[i] = (f32x4){(float)i, 1, 2, 3} * 0.001f;
  for (int s = 0; s < STEPS; s++)
    _Pragma("GCC unroll 12") for (int i = 0; i < CHAINS; i++) x[i] = x[i] * m + c;
  float sum = 0;
  for (int i = 0; i < CHAINS; i++) sum += x[i][0] + x[i][1] + x[i][2] + x[i][3];
  sink = sum;
}

static void *worker(void *arg) {
  (void)arg;
  while (atomic_fetch_add(&next_chunk, 1) < CHUNKS) chunk();
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  if (threads < 1 || threads > 64) return 2;
  pthread_t pool[64];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int t = 1; t < threads; t++) pthread_create(&pool[t], NULL, worker, NULL);
  worker(NULL);
  for (int t = 1; t < threads; t++) pthread_join(pool[t], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%.3f\n", (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
  return 0;
}
