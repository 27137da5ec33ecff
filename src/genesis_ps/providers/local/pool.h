/* The decode kernels' thread pool (pool.c). */
#ifndef GENESIS_PS_POOL_H
#define GENESIS_PS_POOL_H

/* One share of a job: part `part` of `parts`. */
typedef void (*pool_fn)(const void *ctx, int part, int parts);

/* Run fn(ctx, p, parts) for p < parts on the calling thread and up to threads - 1 persistent workers
 * (parts <= threads), returning when every part is done. One job at a time: concurrent callers wait. */
void pool_run(pool_fn fn, const void *ctx, int threads);

#endif
