/* Decode-time attention over copy-on-write KV (genesis_ps/providers/local/cow.py, SharedKV).
 *
 * One query position per row. Row b belongs to group g = group_of[b]; its keys are the group's prefix
 * (the last plen[g] of P left-padded positions of pk/pv, shared by the group's rows) followed by the row's
 * own tail (the first lt of cap positions of tk/tv). Query head h reads kv head h / (H / KVH). For each
 * (b, h):  out = sum_j softmax_j(scale * q . k_j) v_j  over prefix then tail keys, in fp32, the softmax
 * taken once over both parts (max first, then exp and sum). It differs from the batched torch path it
 * replaces only in the order of the fp32 sums and in using libm's expf for torch's exp (results agree to
 * ~1e-6): the same products, one call per layer instead of about twenty tensor ops.
 *
 * Layouts (all contiguous fp32): q (B, H, D); pk, pv (G, KVH, P, D); tk, tv (B, KVH, cap, D); out (B, H, D).
 * The (row, kv head) pairs are split over the threads of pool.c. Built with blockmm.c and pool.c by
 * genesis_ps/providers/local/blockmm.py.
 */
#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "pool.h"

static inline float dot(const float *a, const float *b, int64_t d) {
    int64_t i = 0;
    float s = 0.0f;
    if ((d & 15) == 0) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (; i < d; i += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), a1);
        }
        __m256 v = _mm256_add_ps(a0, a1);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        return _mm_cvtss_f32(h);
    }
    for (; i < d; i++) s += a[i] * b[i];
    return s;
}

/* o = sum_j w[j] * (row j of the prefix values, then of the tail values), summed over j in order; for a
 * constant dim (inlined below with 64 and 128) the accumulators stay in registers. */
static inline __attribute__((always_inline)) void wsum_fixed(float *o, const float *w, const float *vp, int64_t n,
                                                             const float *vt, int64_t m, const int dim) {
    __m256 acc[16];
    for (int i = 0; i < dim / 8; i++) acc[i] = _mm256_setzero_ps();
    for (int64_t j = 0; j < m; j++) {
        const float *v = j < n ? vp + j * dim : vt + (j - n) * dim;
        const __m256 a = _mm256_set1_ps(w[j]);
        for (int i = 0; i < dim / 8; i++) acc[i] = _mm256_fmadd_ps(a, _mm256_loadu_ps(v + 8 * i), acc[i]);
    }
    for (int i = 0; i < dim / 8; i++) _mm256_storeu_ps(o + 8 * i, acc[i]);
}

static inline void weighted_sum(float *o, const float *w, const float *vp, int64_t n, const float *vt, int64_t m,
                                int64_t d) {
    if (d == 64) {
        wsum_fixed(o, w, vp, n, vt, m, 64);
        return;
    }
    if (d == 128) {
        wsum_fixed(o, w, vp, n, vt, m, 128);
        return;
    }
    for (int64_t i = 0; i < d; i++) o[i] = 0.0f;
    for (int64_t j = 0; j < m; j++) {
        const float *v = j < n ? vp + j * d : vt + (j - n) * d;
        for (int64_t i = 0; i < d; i++) o[i] = fmaf(w[j], v[i], o[i]);
    }
}

typedef struct {
    const float *q, *pk, *pv, *tk, *tv;
    const int64_t *plen, *group_of;
    int64_t B, H, KVH, D, P, cap, lt;
    float scale;
    float *out;
    atomic_int failed;
} attn_t;

/* The (row, kv head) pairs [lo, hi). */
static void attend_pairs(attn_t *a, int64_t lo, int64_t hi) {
    const int64_t H = a->H, KVH = a->KVH, D = a->D, P = a->P, cap = a->cap, lt = a->lt;
    const int64_t rep = H / KVH, width = P + lt;
    float *s = malloc(sizeof(float) * (size_t)(rep * width));
    if (s == NULL) {
        atomic_store(&a->failed, 1);
        return;
    }
    for (int64_t pair = lo; pair < hi; pair++) {
        const int64_t b = pair / KVH, kv = pair % KVH;
        const int64_t g = a->group_of[b], n = a->plen[g], m = n + lt;
        const float *kp = a->pk + ((g * KVH + kv) * P + (P - n)) * D;
        const float *vp = a->pv + ((g * KVH + kv) * P + (P - n)) * D;
        const float *kt = a->tk + (b * KVH + kv) * cap * D, *vt = a->tv + (b * KVH + kv) * cap * D;
        for (int64_t r = 0; r < rep; r++) {
            const float *qh = a->q + (b * H + kv * rep + r) * D;
            float *sr = s + r * width;
            float top = -INFINITY;
            for (int64_t j = 0; j < m; j++) {
                const float v = dot(qh, j < n ? kp + j * D : kt + (j - n) * D, D) * a->scale;
                sr[j] = v;
                if (v > top) top = v;
            }
            float total = 0.0f;
            for (int64_t j = 0; j < m; j++) {
                sr[j] = expf(sr[j] - top);
                total += sr[j];
            }
            const float inv = 1.0f / total;
            for (int64_t j = 0; j < m; j++) sr[j] *= inv;
            weighted_sum(a->out + (b * H + kv * rep + r) * D, sr, vp, n, vt, m, D);
        }
    }
    free(s);
}

static void attend_part(const void *ctx, int part, int parts) {
    attn_t *a = (attn_t *)ctx;
    const int64_t pairs = a->B * a->KVH;
    attend_pairs(a, pairs * part / parts, pairs * (part + 1) / parts);
}

/* Returns 0 on success, 1 on bad shapes, 2 when out of memory. */
int cow_attend(const float *q, int64_t B, int64_t H, int64_t KVH, int64_t D, const float *pk, const float *pv,
               int64_t G, int64_t P, const int64_t *plen, const int64_t *group_of, const float *tk,
               const float *tv, int64_t cap, int64_t lt, float scale, float *out, int threads) {
    if (B < 1 || KVH < 1 || H % KVH != 0 || D < 1 || lt < 1 || lt > cap || P < 0) return 1;
    for (int64_t b = 0; b < B; b++) {
        const int64_t g = group_of[b];
        if (g < 0 || g >= G || plen[g] < 0 || plen[g] > P) return 1;
    }
    attn_t a = {q, pk, pv, tk, tv, plen, group_of, B, H, KVH, D, P, cap, lt, scale, out, 0};
    const int64_t pairs = B * KVH;
    pool_run(attend_part, &a, pairs < threads ? (int)pairs : threads);
    return atomic_load(&a.failed) ? 2 : 0;
}
