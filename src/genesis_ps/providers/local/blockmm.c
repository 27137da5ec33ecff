/* Matrix products with weights kept in their GGUF block formats, activations and sums in fp32.
 *
 * y[m, n] = sum_k x[m, k] * W[n, k] for m < M, n < N, where row n of W is K/32 consecutive blocks:
 *   Q4_1 (20 bytes): fp16 d, fp16 min, 16 bytes of nibbles; q[j] = low nibble of byte j,
 *                    q[j + 16] = high nibble of byte j; w = d * q + min.
 *   Q8_0 (34 bytes): fp16 d, 32 signed bytes q; w = d * q.
 * Each weight is dequantised in registers with one rounding, fma(d, q, min) (d * q is exact in fp32),
 * which is exactly how the GGUF reader dequantises it in numpy: the weights used are bit for bit the
 * fp32 weights of the dequantised model, and only the order of the fp32 sums differs from a GEMM.
 *
 * A row's sums run in one fixed order whether it is multiplied alone or with up to four other rows (up to two
 * on a CPU without AVX-512VL): few_rows gives each row four accumulators as the one-row loop does, so
 * those batches decode each row with the bits it gets alone, and keep 4·R fma chains in flight where one
 * chain per row waited on each fma's latency. Full groups of eight rows use rows8_cols2 (another order).
 *
 * Output columns are split over the persistent threads of pool.c.
 *
 * Built by genesis_ps/providers/local/blockmm.py with cowattn.c and pool.c:
 *   cc -O3 -mavx2 -mfma -mf16c [-mavx512f -mavx512vl where the CPU has them] -pthread -shared -fPIC -lm.
 */
#include <immintrin.h>
#include <stdint.h>

#include "pool.h"

#define MAX_ROWS 8

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float half_to_float(const uint8_t *p) {
    uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
    return _cvtsh_ss(h);
}

/* Dequantise one block into w[0..3] (8 weights each, in k order). */
static inline void q4_1_block(const uint8_t *blk, __m256 w[4]) {
    const __m256 d = _mm256_set1_ps(half_to_float(blk));
    const __m256 mn = _mm256_set1_ps(half_to_float(blk + 2));
    const __m128i qs = _mm_loadu_si128((const __m128i *)(blk + 4));
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_and_si128(qs, mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(qs, 4), mask);
    w[0] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), mn);
    w[1] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))), mn);
    w[2] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), mn);
    w[3] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))), mn);
}

static inline void q8_0_block(const uint8_t *blk, __m256 w[4]) {
    const __m256 d = _mm256_set1_ps(half_to_float(blk));
    const uint8_t *q = blk + 2;
    for (int i = 0; i < 4; i++) {
        __m128i b = _mm_loadl_epi64((const __m128i *)(q + 8 * i));
        w[i] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)));
    }
}

static inline void load_block(int kind, const uint8_t *blk, __m256 w[4]) {
    if (kind == 0)
        q4_1_block(blk, w);
    else
        q8_0_block(blk, w);
}

typedef struct {
    int kind;
    const uint8_t *W;
    int64_t N, K, M, ldx, ldy;
    const float *x;
    float *y;
} job_t;

/* Eight rows by two output columns (n, n + 1): the x loads are shared by both columns. The 16 accumulators,
 * 8 dequantised weight vectors and 4 x vectors need the 32 vector registers of AVX-512VL (built with it
 * where the CPU has it); each column's sums run in the same order as rows_chain's. */
static void rows8_cols2(int kind, const uint8_t *row0, const uint8_t *row1, int64_t nb, int64_t bsize,
                        const float *xs, int64_t ldx, float *ys, int64_t ldy, int64_t n) {
    __m256 a0[MAX_ROWS], a1[MAX_ROWS];
    for (int r = 0; r < MAX_ROWS; r++) a0[r] = a1[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256 w0[4], w1[4];
        load_block(kind, row0 + b * bsize, w0);
        load_block(kind, row1 + b * bsize, w1);
        const float *xb = xs + b * 32;
#pragma GCC unroll 8
        for (int r = 0; r < MAX_ROWS; r++) {
            const float *xr = xb + r * ldx;
            const __m256 x0 = _mm256_loadu_ps(xr), x1 = _mm256_loadu_ps(xr + 8);
            const __m256 x2 = _mm256_loadu_ps(xr + 16), x3 = _mm256_loadu_ps(xr + 24);
            a0[r] = _mm256_fmadd_ps(w0[0], x0, a0[r]);
            a1[r] = _mm256_fmadd_ps(w1[0], x0, a1[r]);
            a0[r] = _mm256_fmadd_ps(w0[1], x1, a0[r]);
            a1[r] = _mm256_fmadd_ps(w1[1], x1, a1[r]);
            a0[r] = _mm256_fmadd_ps(w0[2], x2, a0[r]);
            a1[r] = _mm256_fmadd_ps(w1[2], x2, a1[r]);
            a0[r] = _mm256_fmadd_ps(w0[3], x3, a0[r]);
            a1[r] = _mm256_fmadd_ps(w1[3], x3, a1[r]);
        }
    }
    for (int r = 0; r < MAX_ROWS; r++) {
        ys[r * ldy + n] = hsum(a0[r]);
        ys[r * ldy + n + 1] = hsum(a1[r]);
    }
}

#ifdef __AVX512VL__
#define FEW 5 /* 4·5 accumulators, 4 weight vectors, an x vector: 25 of AVX-512VL's 32 registers; six or seven
               * rows go to rows_chain, which already hides the latency there and measured no slower */
#else
#define FEW 3 /* 4·3 + 4 + 1 = 17 of AVX2's 16 registers: one spill, still ahead of one chain per row */
#endif

/* R rows (R <= FEW) by one output column, each row's sum in the order of the one-row loop: four
 * accumulators, one per 8-weight quarter of a block, added pairwise at the end. A row decoded in a batch of
 * up to FEW rows therefore gets the same bits as decoded alone, and the 4·R independent fma chains keep
 * the FMA units busy where one chain per row would wait on each fma's latency. */
static inline __attribute__((always_inline)) void rows_col1(int kind, const uint8_t *row, int64_t nb,
                                                            int64_t bsize, const float *xs, int64_t ldx,
                                                            float *ys, int64_t ldy, int64_t n, const int R) {
    __m256 acc[FEW][4];
    for (int r = 0; r < R; r++)
        for (int i = 0; i < 4; i++) acc[r][i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256 w[4];
        load_block(kind, row + b * bsize, w);
        const float *xb = xs + b * 32;
        for (int r = 0; r < R; r++)
            for (int i = 0; i < 4; i++)
                acc[r][i] = _mm256_fmadd_ps(w[i], _mm256_loadu_ps(xb + r * ldx + 8 * i), acc[r][i]);
    }
    for (int r = 0; r < R; r++)
        ys[r * ldy + n] = hsum(_mm256_add_ps(_mm256_add_ps(acc[r][0], acc[r][1]), _mm256_add_ps(acc[r][2], acc[r][3])));
}

/* Rows [0, mr) (2 <= mr <= FEW) of output column n in one pass over the weights: a constant row count
 * per call, so the compiler keeps the accumulators in registers. */
static inline __attribute__((always_inline)) void few_rows(int kind, const uint8_t *row, int64_t nb,
                                                           int64_t bsize, const float *xs, int64_t ldx,
                                                           float *ys, int64_t ldy, int64_t n, int64_t mr) {
    switch (mr) {
    case 2: rows_col1(kind, row, nb, bsize, xs, ldx, ys, ldy, n, 2); break;
#if FEW > 3
    case 3: rows_col1(kind, row, nb, bsize, xs, ldx, ys, ldy, n, 3); break;
    case 4: rows_col1(kind, row, nb, bsize, xs, ldx, ys, ldy, n, 4); break;
    default: rows_col1(kind, row, nb, bsize, xs, ldx, ys, ldy, n, 5); break;
#else
    default: rows_col1(kind, row, nb, bsize, xs, ldx, ys, ldy, n, 3); break;
#endif
    }
}

/* Rows [0, mr) of output column n, one accumulator per row (rows8_cols2's order, for its odd last column,
 * and for row counts above FEW). */
static void rows_chain(int kind, const uint8_t *row, int64_t nb, int64_t bsize, const float *xs, int64_t ldx,
                       float *ys, int64_t ldy, int64_t n, int64_t mr) {
    __m256 acc[MAX_ROWS];
    for (int r = 0; r < mr; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256 w[4];
        load_block(kind, row + b * bsize, w);
        const float *xb = xs + b * 32;
        for (int r = 0; r < mr; r++) {
            const float *xr = xb + r * ldx;
            __m256 a = acc[r];
            a = _mm256_fmadd_ps(w[0], _mm256_loadu_ps(xr), a);
            a = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(xr + 8), a);
            a = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(xr + 16), a);
            a = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xr + 24), a);
            acc[r] = a;
        }
    }
    for (int r = 0; r < mr; r++) ys[r * ldy + n] = hsum(acc[r]);
}

/* Output columns [n_lo, n_hi) of the product. */
static void run_rows(const job_t *j, int64_t n_lo, int64_t n_hi) {
    const int kind = j->kind;
    const uint8_t *W = j->W;
    const int64_t K = j->K, M = j->M, ldx = j->ldx, ldy = j->ldy;
    const int64_t nb = K / 32;
    const int64_t bsize = kind == 0 ? 20 : 34;
    const int64_t row_bytes = nb * bsize;
    for (int64_t m0 = 0; m0 < M; m0 += MAX_ROWS) {
        const int64_t mr = (M - m0) < MAX_ROWS ? (M - m0) : MAX_ROWS;
        const float *xs = j->x + m0 * ldx;
        float *ys = j->y + m0 * ldy;
        int64_t n = n_lo;
        if (mr == MAX_ROWS)
            for (; n + 1 < n_hi; n += 2)
                rows8_cols2(kind, W + n * row_bytes, W + (n + 1) * row_bytes, nb, bsize, xs, ldx, ys, ldy, n);
        if (mr == 1) /* decoding one sequence: the common case, without the grouping's branches */
            for (; n < n_hi; n++) rows_col1(kind, W + n * row_bytes, nb, bsize, xs, ldx, ys, ldy, n, 1);
        else if (mr <= FEW)
            for (; n < n_hi; n++) few_rows(kind, W + n * row_bytes, nb, bsize, xs, ldx, ys, ldy, n, mr);
        for (; n < n_hi; n++) rows_chain(kind, W + n * row_bytes, nb, bsize, xs, ldx, ys, ldy, n, mr);
    }
}

static void product_part(const void *ctx, int part, int parts) {
    const job_t *j = ctx;
    run_rows(j, j->N * part / parts, j->N * (part + 1) / parts);
}

/* kind: 0 = Q4_1, 1 = Q8_0. x: M x K (row stride ldx), y: M x N (row stride ldy). Returns 0 on success. */
int blockmm(int kind, const uint8_t *W, int64_t N, int64_t K, const float *x, int64_t M, int64_t ldx, float *y,
            int64_t ldy, int threads) {
    if (K % 32 != 0 || M < 1 || (kind != 0 && kind != 1)) return 1;
    job_t job = {kind, W, N, K, M, ldx, ldy, x, y};
    pool_run(product_part, &job, N < 64 ? 1 : threads);
    return 0;
}

/* Dequantise rows [0, N) into out (N x K fp32), for checking against the model's own weights. */
int dequantize(int kind, const uint8_t *W, int64_t N, int64_t K, float *out) {
    if (K % 32 != 0 || (kind != 0 && kind != 1)) return 1;
    const int64_t nb = K / 32;
    const int64_t bsize = kind == 0 ? 20 : 34;
    for (int64_t n = 0; n < N; n++) {
        for (int64_t b = 0; b < nb; b++) {
            __m256 w[4];
            const uint8_t *blk = W + (n * nb + b) * bsize;
            load_block(kind, blk, w);
            for (int i = 0; i < 4; i++) _mm256_storeu_ps(out + n * K + b * 32 + 8 * i, w[i]);
        }
    }
    return 0;
}
