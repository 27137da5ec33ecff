/* A small pool of persistent pthreads for the decode kernels (blockmm.c, cowattn.c); see pool.h.
 *
 * Not OpenMP: the local backend runs its work in a worker thread, and there OpenMP parallel regions were
 * measured about twice as slow per decode step as on the main thread. Idle workers spin briefly (so the
 * next product of the same decode step finds them awake), then sleep on a condition variable.
 */
#include "pool.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define MAX_THREADS 64
#define SPIN 20000

static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_mutex_t wake_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cv = PTHREAD_COND_INITIALIZER;
static pool_fn cur_fn;
static const void *cur_ctx;
static int cur_parts;
static atomic_long generation;
static atomic_int finished;
static int n_workers;
static long start_gen[MAX_THREADS]; /* the generation current when each worker was created */

static void run_part(int part) { cur_fn(cur_ctx, part, cur_parts); }

static void *worker(void *arg) {
    const int id = (int)(intptr_t)arg; /* 1 .. n_workers; the caller runs part 0 */
    long seen = start_gen[id];
    for (;;) {
        long g;
        int spins = 0;
        while ((g = atomic_load_explicit(&generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN) {
                _mm_pause();
                continue;
            }
            pthread_mutex_lock(&wake_mu);
            while ((g = atomic_load_explicit(&generation, memory_order_acquire)) == seen)
                pthread_cond_wait(&wake_cv, &wake_mu);
            pthread_mutex_unlock(&wake_mu);
            break;
        }
        seen = g;
        if (id < cur_parts) run_part(id);
        atomic_fetch_add_explicit(&finished, 1, memory_order_release);
    }
    return NULL;
}

/* A forked child has none of the parent's workers: start its pool afresh. */
static void after_fork_in_child(void) {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    call_mu = m;
    wake_mu = m;
    wake_cv = c;
    n_workers = 0;
}

static void grow_pool(int want) {
    static int registered = 0;
    if (!registered) {
        pthread_atfork(NULL, NULL, after_fork_in_child);
        registered = 1;
    }
    while (n_workers < want && n_workers < MAX_THREADS - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        /* a new worker must not mistake the current generation for new work */
        start_gen[n_workers + 1] = atomic_load_explicit(&generation, memory_order_acquire);
        if (pthread_create(&t, &attr, worker, (void *)(intptr_t)(n_workers + 1)) != 0) {
            pthread_attr_destroy(&attr);
            break;
        }
        pthread_attr_destroy(&attr);
        n_workers++;
    }
}

void pool_run(pool_fn fn, const void *ctx, int threads) {
    if (threads <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    pthread_mutex_lock(&call_mu);
    grow_pool(threads - 1);
    const int parts = n_workers + 1 < threads ? n_workers + 1 : threads;
    cur_fn = fn;
    cur_ctx = ctx;
    cur_parts = parts;
    atomic_store_explicit(&finished, 0, memory_order_relaxed);
    pthread_mutex_lock(&wake_mu);
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    pthread_cond_broadcast(&wake_cv);
    pthread_mutex_unlock(&wake_mu);
    run_part(0);
    while (atomic_load_explicit(&finished, memory_order_acquire) < n_workers) _mm_pause();
    pthread_mutex_unlock(&call_mu);
}
