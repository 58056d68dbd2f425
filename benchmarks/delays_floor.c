/* What one synaptic event costs with and without a per-connection delay, on this core: the floor
 * under benchmarks/delays_cost.py (see benchmarks/README.md, "delays_cost.py").
 *
 *     gcc -O3 -march=native -std=c99 -D_POSIX_C_SOURCE=200809L benchmarks/delays_floor.c -o /tmp/floor
 *     /tmp/floor [repeats]
 *
 * One trial of the SHD example's input projection (700 -> 256, dense), 13878 input spikes over 1000
 * steps (the synthetic SHD batches' mean), delays uniform in 0..20 steps, a ring of 61 slots. Every
 * array is the only one of its kind (one trial, warm in cache): the loops as snnc prints them, minus
 * everything else a trial does. Prints nanoseconds per synaptic event (spike x post neuron), best of
 * `repeats` rounds.
 *   forward:  row add (no delay: four spiking rows summed, then added to the current), scatter-add
 *             into the ring at 32-bit offsets (vectorised, as printed), the same kept scalar, and
 *             the row's synapses grouped by delay (one contiguous weight run and index list per group);
 *   backward: the weight gradient's row add (no delay), and with delays the two ring gathers at the
 *             arrival, dL/dw and dL/dd (w g) accumulated per connection.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NPRE 700
#define NPOST 256
#define S 61
#define K 1000
#define NSP 13878
#define RING (S * NPOST)

static float W[NPRE * NPOST], BUF[RING], I[NPOST], GW[NPRE * NPOST];
static float RE[RING], RG[RING], E[NPOST], GR[NPRE * NPOST], DG[NPRE * NPOST];
static int32_t OFF[NPRE * NPOST];
static uint16_t GJ[NPRE * NPOST];
static int32_t GS[NPRE][S + 1];
static int cnt[K], ids[K][NPRE];

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void fwd_row(void) {
    for (int k = 0; k < K; k++) {
        int s = 0;
        for (; s + 4 <= cnt[k]; s += 4) {
            const float *a = W + ids[k][s] * NPOST, *b = W + ids[k][s + 1] * NPOST;
            const float *c = W + ids[k][s + 2] * NPOST, *d = W + ids[k][s + 3] * NPOST;
            for (int j = 0; j < NPOST; j++) I[j] += a[j] + b[j] + c[j] + d[j];
        }
        for (; s < cnt[k]; s++)
            for (int j = 0; j < NPOST; j++) I[j] += W[ids[k][s] * NPOST + j];
    }
}

static void drain(int k) {
    const int32_t base = (k % S) * NPOST;
    for (int j = 0; j < NPOST; j++) {
        I[j] += BUF[base + j];
        BUF[base + j] = 0;
    }
}

static void fwd_scatter(void) {
    for (int k = 0; k < K; k++) {
        const int32_t base = (k % S) * NPOST;
        for (int s = 0; s < cnt[k]; s++) {
            const int32_t *o = OFF + ids[k][s] * NPOST;
            const float *w = W + ids[k][s] * NPOST;
#pragma GCC ivdep
            for (int j = 0; j < NPOST; j++) {
                const int32_t t = base + o[j] >= RING ? base + o[j] - RING : base + o[j];
                BUF[t] += w[j];
            }
        }
        drain(k);
    }
}

__attribute__((optimize("no-tree-vectorize"))) static void fwd_scalar(void) {
    for (int k = 0; k < K; k++) {
        const int32_t base = (k % S) * NPOST;
        for (int s = 0; s < cnt[k]; s++) {
            const int32_t *o = OFF + ids[k][s] * NPOST;
            const float *w = W + ids[k][s] * NPOST;
            for (int j = 0; j < NPOST; j++) {
                const int32_t t = base + o[j] >= RING ? base + o[j] - RING : base + o[j];
                BUF[t] += w[j];
            }
        }
        drain(k);
    }
}

static void fwd_grouped(void) {
    for (int k = 0; k < K; k++) {
        for (int s = 0; s < cnt[k]; s++) {
            const int i = ids[k][s];
            for (int d = 0; d < S - 1; d++) {
                if (GS[i][d] == GS[i][d + 1]) continue;
                const int slot = k % S + d;
                float *row = BUF + (slot >= S ? slot - S : slot) * NPOST;
#pragma GCC ivdep
                for (int m = GS[i][d]; m < GS[i][d + 1]; m++) row[GJ[m]] += GW[m];
            }
        }
        drain(k);
    }
}

static void bwd_row(void) {
    for (int k = K - 1; k >= 0; k--) {
        for (int j = 0; j < NPOST; j++) E[j] = (float)(j + k);
        for (int s = 0; s < cnt[k]; s++) {
            float *g = GR + ids[k][s] * NPOST;
            for (int j = 0; j < NPOST; j++) g[j] += E[j];
        }
    }
}

static void bwd_gather(void) {
    for (int k = K - 1; k >= 0; k--) {
        const int32_t base = (k % S) * NPOST;
        for (int j = 0; j < NPOST; j++) {
            RE[base + j] = (float)j;
            RG[base + j] = (float)k;
        }
        for (int s = 0; s < cnt[k]; s++) {
            const int32_t *o = OFF + ids[k][s] * NPOST;
            const float *w = W + ids[k][s] * NPOST;
            float *g = GR + ids[k][s] * NPOST, *dg = DG + ids[k][s] * NPOST;
            for (int j = 0; j < NPOST; j++) {
                const int32_t t = base + o[j] >= RING ? base + o[j] - RING : base + o[j];
                g[j] += RE[t];
                dg[j] += w[j] * RG[t];
            }
        }
    }
}

int main(int argc, char **argv) {
    const int repeats = argc > 1 ? atoi(argv[1]) : 5;
    srand(1);
    for (int q = 0; q < NPRE * NPOST; q++) {
        W[q] = rand() / (float)RAND_MAX;
        OFF[q] = (rand() % 21) * NPOST + q % NPOST;
    }
    for (int i = 0; i < NPRE; i++) {
        int m = i * NPOST;
        for (int d = 0; d < S; d++) {
            GS[i][d] = m;
            for (int j = 0; j < NPOST; j++)
                if (OFF[i * NPOST + j] / NPOST == d) {
                    GJ[m] = (uint16_t)j;
                    GW[m++] = W[i * NPOST + j];
                }
        }
        GS[i][S] = m;
    }
    for (int n = 0; n < NSP; n++) {
        const int k = rand() % K;
        if (cnt[k] < NPRE) ids[k][cnt[k]++] = rand() % NPRE;
    }
    struct { const char *name; void (*f)(void); } runs[] = {
        {"forward, row add (no delay)", fwd_row},
        {"forward, scatter-add (delays, as printed)", fwd_scatter},
        {"forward, scatter-add, scalar", fwd_scalar},
        {"forward, grouped by delay", fwd_grouped},
        {"backward, row add (no delay)", bwd_row},
        {"backward, two gathers + dL/dw + dL/dd (delays)", bwd_gather},
    };
    const int n = sizeof runs / sizeof runs[0];
    double best[16];
    for (int x = 0; x < n; x++) best[x] = 1e30;
    for (int r = 0; r < repeats; r++)
        for (int x = 0; x < n; x++) {
            const double t = now_s();
            runs[x].f();
            const double dt = now_s() - t;
            if (dt < best[x]) best[x] = dt;
        }
    for (int x = 0; x < n; x++)
        printf("%-50s %.3f ns per synaptic event\n", runs[x].name, best[x] / ((double)NSP * NPOST) * 1e9);
    float check = 0;
    for (int j = 0; j < NPOST; j++) check += I[j] + GR[j] + DG[j];
    printf("(checksum %g)\n", check);
    return 0;
}
