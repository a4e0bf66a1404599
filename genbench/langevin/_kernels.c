/* Fused multi-step ULA and MALA kernels for Gaussian targets (CPU), loaded by _native.py.
 *
 * Why C: a MALA step on a few chains is ~20 tiny tensor operations, so eager torch spends its
 * time in per-operation dispatch (BlackJAX avoids it with jit + lax.scan). torch.compile cannot
 * loop over steps without unrolling them into the graph, and numba is not a dependency; a small C
 * loop, compiled once per machine and cached, runs a whole block of steps per call.
 *
 * Layout: states are (d, chains) row-major; a block's noise is (k, stride) with step t's
 * standard normals at noise[t * stride + i * chains + c]. Chains are processed in groups of W
 * lanes held in registers for all k steps, so the state is read and written once per block.
 * Statistics go to float64 accumulators, one per lane of each STAT_CHUNK consecutive chains, added
 * to in a fixed order, so they do not depend on how chains are split across threads.
 */
#include <stdint.h>

#define W 8
#define DMAX 8
#define STAT_CHUNK 4096
#define NB 64 /* normals pairs per vector block */
#define TILE 128 /* chains per tile of the step kernels (divides STAT_CHUNK) */
#define ZCAP 2048 /* values of normals (and log-uniforms) a tile keeps for a batch of steps: L1-sized */
#define SMAX 64   /* most steps per batch */
/* One step of the widest tile (d = DMAX, rows of TILE + 2, MALA's TILE log-uniforms) fits a batch. */
_Static_assert(DMAX * (TILE + 2) + 2 + TILE <= ZCAP, "ZCAP must hold one step of a tile");
_Static_assert(STAT_CHUNK % TILE == 0, "a tile must not straddle two statistics chunks");

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)

int64_t genbench_stat_chunk(void) { return STAT_CHUNK; }
int64_t genbench_lanes(void) { return W; }

/* ---- The uniforms: SplitMix64 outputs keyed per step ----
 * Uniform j of a step with key K is bits(K, j) = mix64(K + (j + 1) * GAMMA), the (j + 1)-th output
 * of SplitMix64 (Steele, Lea & Flood 2014; Java's SplittableRandom) seeded with K, taken to the top
 * 53 (double) or 24 (float) bits. Counter-based: any uniform is computed from (K, j) alone, so
 * threads and SIMD lanes make a step's uniforms side by side with numbers that do not depend on the
 * split; torch's and numpy's generators are serial. _noise.py computes the same bits in torch.
 */
#define GB_GAMMA 0x9E3779B97F4A7C15ull

static inline __attribute__((always_inline)) uint64_t gb_uniform_bits(uint64_t key, int64_t j)
{
    uint64_t z = key + (uint64_t)(j + 1) * GB_GAMMA;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
#define UNIT_F64(b) ((double)((b) >> 11) * 0x1.0p-53)
#define UNIT_F32(b) ((float)((b) >> 40) * 0x1.0p-24f)

/* ---- Tiles of chains and batches of steps (the step kernels) ---- */

/* Row stride of a tile's normals: the rows are one range when the tile holds every chain. */
static inline int64_t tile_stride(const int64_t chains, const int64_t c, const int64_t tc)
{
    return c == 0 && tc == chains ? chains : TILE + 2;
}

/* Steps per batch: the normals of a batch (ps values a step) fit in ZCAP, at most SMAX. Batching
 * steps lets a small tile overlap consecutive steps' Box-Muller and keep its states in registers. */
static inline int64_t batch_steps(const int64_t ps)
{
    const int64_t s = ZCAP / ps;
    return s > SMAX ? SMAX : s < 1 ? 1 : s;
}

/* The kept-state slot of each step of a batch (-1: not kept), advancing next and slot. */
static inline void kept_slots(const int64_t t0, const int64_t sn, const int64_t thin, int64_t *next,
                              int64_t *slot, int64_t *kslot)
{
    for (int64_t s = 0; s < sn; s++) {
        kslot[s] = -1;
        if (t0 + s == *next) {
            kslot[s] = (*slot)++;
            *next += thin;
        }
    }
}

/* keep="stats" sums of one group of chains over a batch of steps, added to its chunk's sums acc at
 * the end. For d = 2 with a full group (the assignment's target) they are five vectors of W lanes
 * held in registers (gb_v8d: GCC vector extension); otherwise a local array. The order of the
 * additions, and so the sums, is the same either way. Expanded inside the body's step groups. */
typedef double gb_v8d __attribute__((vector_size(W * sizeof(double))));
#define STATS_BEGIN                                                                         \
    const int two = d == 2 && nw == W;                                                      \
    gb_v8d s_0 = {0}, s_1 = {0}, s_00 = {0}, s_01 = {0}, s_11 = {0};                        \
    const int64_t nsum = (d + d * (d + 1) / 2) * W;                                         \
    double gsum[(DMAX + DMAX * (DMAX + 1) / 2) * W];                                        \
    if (acc && !two)                                                                        \
        for (int64_t r = 0; r < nsum; r++) gsum[r] = 0.0;
#define STATS_RECORD(x, sl)                                                                 \
    do {                                                                                    \
        if (trace) FN(record)(d, chains, c + g, nw, x, trace, sl, centre, 0);               \
        if (acc && two) {                                                                   \
            gb_v8d z0, z1;                                                                  \
            for (int w = 0; w < W; w++) {                                                   \
                z0[w] = (double)(x[0][w] - centre[0]);                                      \
                z1[w] = (double)(x[1][w] - centre[1]);                                      \
            }                                                                               \
            s_0 += z0;                                                                      \
            s_1 += z1;                                                                      \
            s_00 += z0 * z0;                                                                \
            s_01 += z0 * z1;                                                                \
            s_11 += z1 * z1;                                                                \
        } else if (acc) {                                                                   \
            FN(record)(d, chains, c + g, nw, x, 0, sl, centre, gsum);                       \
        }                                                                                   \
    } while (0)
#define STATS_END                                                                           \
    if (acc && two) {                                                                       \
        for (int w = 0; w < W; w++) {                                                       \
            acc[w] += s_0[w];                                                               \
            acc[W + w] += s_1[w];                                                           \
            acc[2 * W + w] += s_00[w];                                                      \
            acc[3 * W + w] += s_01[w];                                                      \
            acc[4 * W + w] += s_11[w];                                                      \
        }                                                                                   \
    } else if (acc) {                                                                       \
        for (int64_t r = 0; r < nsum; r++) acc[r] += gsum[r];                               \
    }

/* ---- Standard normals from uniforms: Box-Muller with a log and a sin/cos in plain arithmetic ----
 * Only +, -, *, /, sqrt, floor and exact bit operations, each rounded once, so that
 * genbench/langevin/_noise.py computes the very same bits in torch (libm's and torch's
 * transcendental functions differ in the last place, and torch's also between its vector and
 * scalar paths). Accuracy: a few units in the last place, far below any statistical effect.
 */
#include <math.h>
#include <string.h>

#define LOGC0 0x1.5555555555555p-2
#define LOGC1 0x1.999999999999ap-3
#define LOGC2 0x1.2492492492492p-3
#define LOGC3 0x1.c71c71c71c71cp-4
#define LOGC4 0x1.745d1745d1746p-4
#define LOGC5 0x1.3b13b13b13b14p-4
#define LOGC6 0x1.1111111111111p-4
#define LOGC7 0x1.e1e1e1e1e1e1ep-5
#define LOGC8 0x1.af286bca1af28p-5
#define LOGC9 0x1.8618618618618p-5
#define LOGC10 0x1.642c8590b2164p-5
#define SINC0 -0x1.5555555555555p-3
#define SINC1 0x1.1111111111111p-7
#define SINC2 -0x1.a01a01a01a01ap-13
#define SINC3 0x1.71de3a556c734p-19
#define SINC4 -0x1.ae64567f544e4p-26
#define SINC5 0x1.6124613a86d09p-33
#define SINC6 -0x1.ae7f3e733b81fp-41
#define SINC7 0x1.952c77030ad4ap-49
#define COSC0 -0x1.0000000000000p-1
#define COSC1 0x1.5555555555555p-5
#define COSC2 -0x1.6c16c16c16c17p-10
#define COSC3 0x1.a01a01a01a01ap-16
#define COSC4 -0x1.27e4fb7789f5cp-22
#define COSC5 0x1.1eed8eff8d898p-29
#define COSC6 -0x1.93974a8c07c9dp-37
#define COSC7 0x1.ae7f3e733b81fp-45
#define COSC8 -0x1.6827863b97d97p-53
#define SQRT2 0x1.6a09e667f3bcdp+0
#define PIO2 0x1.921fb54442d18p+0
#define LN2_HI 0x1.62e42fee00000p-1
#define LN2_LO 0x1.a39ef35793c76p-33

/* log(x) for a positive normal double: x = m 2^e with m in (sqrt(1/2), sqrt(2)], then
 * log(m) = 2 atanh(s), s = (m - 1)/(m + 1), by its series in s^2 (|s| < 0.172, 11 terms). */
static inline __attribute__((always_inline)) double glog(double x)
{
    uint64_t b;
    memcpy(&b, &x, 8);
    int64_t e = (int64_t)(b >> 52) - 1023;
    uint64_t mb = (b & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;
    double m;
    memcpy(&m, &mb, 8);
    int big = m > SQRT2;
    m = big ? m * 0.5 : m;
    e = big ? e + 1 : e;
    double f = m - 1.0;
    double s = f / (f + 2.0);
    double s2 = s * s;
    double p = LOGC10;
    p = p * s2 + LOGC9;
    p = p * s2 + LOGC8;
    p = p * s2 + LOGC7;
    p = p * s2 + LOGC6;
    p = p * s2 + LOGC5;
    p = p * s2 + LOGC4;
    p = p * s2 + LOGC3;
    p = p * s2 + LOGC2;
    p = p * s2 + LOGC1;
    p = p * s2 + LOGC0;
    p = p * s2 + 1.0;
    double ed = (double)e;
    return ed * LN2_HI + (ed * LN2_LO + (s + s) * p);
}

/* cos and sin of 2 pi v for v in [0, 1): quadrant by floor(4v), then Taylor series on |a| <= pi/4. */
static inline __attribute__((always_inline)) void gsincos(double v, double *c, double *s)
{
    double v4 = v * 4.0;
    double q = (double)(int32_t)v4; /* floor: v4 is in [0, 4) */
    double g = v4 - q;
    int adj = g >= 0.5;
    g = adj ? g - 1.0 : g;
    q = adj ? q + 1.0 : q;
    double a = g * PIO2;
    double a2 = a * a;
    double ps = SINC7;
    ps = ps * a2 + SINC6;
    ps = ps * a2 + SINC5;
    ps = ps * a2 + SINC4;
    ps = ps * a2 + SINC3;
    ps = ps * a2 + SINC2;
    ps = ps * a2 + SINC1;
    ps = ps * a2 + SINC0;
    double sa = a + a * (a2 * ps);
    double pc = COSC8;
    pc = pc * a2 + COSC7;
    pc = pc * a2 + COSC6;
    pc = pc * a2 + COSC5;
    pc = pc * a2 + COSC4;
    pc = pc * a2 + COSC3;
    pc = pc * a2 + COSC2;
    pc = pc * a2 + COSC1;
    pc = pc * a2 + COSC0;
    double ca = 1.0 + a2 * pc;
    /* rotate by q quarter turns (q in 0..4, 4 = 0): swap on odd q, signs by quadrant */
    int odd = q == 1.0 || q == 3.0;
    double sc = (q == 1.0 || q == 2.0) ? -1.0 : 1.0;
    double ss = (q == 2.0 || q == 3.0) ? -1.0 : 1.0;
    double nc = (odd ? sa : ca) * sc;
    double ns = (odd ? ca : sa) * ss;
    *c = nc;
    *s = ns;
}

/* The same in float32 arithmetic for float32 runs (about half the cost; torch.randn's float32
 * normals are also computed in float32): 5-6 series terms suffice for 24 bits. */
#define LOGF0 0x1.5555560000000p-2f
#define LOGF1 0x1.99999a0000000p-3f
#define LOGF2 0x1.24924a0000000p-3f
#define LOGF3 0x1.c71c720000000p-4f
#define LOGF4 0x1.745d180000000p-4f
#define SINF0 -0x1.5555560000000p-3f
#define SINF1 0x1.1111120000000p-7f
#define SINF2 -0x1.a01a020000000p-13f
#define SINF3 0x1.71de3a0000000p-19f
#define SINF4 -0x1.ae64560000000p-26f
#define COSF0 -0x1.0000000000000p-1f
#define COSF1 0x1.5555560000000p-5f
#define COSF2 -0x1.6c16c20000000p-10f
#define COSF3 0x1.a01a020000000p-16f
#define COSF4 -0x1.27e4fc0000000p-22f
#define COSF5 0x1.1eed8e0000000p-29f
#define SQRT2F 0x1.6a09e60000000p+0f
#define PIO2F 0x1.921fb60000000p+0f
#define LN2F_HI 0x1.62e3000000000p-1f
#define LN2F_LO 0x1.2fefa20000000p-17f

static inline __attribute__((always_inline)) float glogf(float x)
{
    uint32_t b;
    memcpy(&b, &x, 4);
    int32_t e = (int32_t)(b >> 23) - 127;
    uint32_t mb = (b & 0x007FFFFFu) | 0x3F800000u;
    float m;
    memcpy(&m, &mb, 4);
    int big = m > SQRT2F;
    m = big ? m * 0.5f : m;
    e = big ? e + 1 : e;
    float f = m - 1.0f;
    float s = f / (f + 2.0f);
    float s2 = s * s;
    float p = LOGF4;
    p = p * s2 + LOGF3;
    p = p * s2 + LOGF2;
    p = p * s2 + LOGF1;
    p = p * s2 + LOGF0;
    p = p * s2 + 1.0f;
    float ed = (float)e;
    return ed * LN2F_HI + (ed * LN2F_LO + (s + s) * p);
}
static inline __attribute__((always_inline)) void gsincosf(float v, float *c, float *s)
{
    float v4 = v * 4.0f;
    float q = (float)(int32_t)v4;
    float g = v4 - q;
    int adj = g >= 0.5f;
    g = adj ? g - 1.0f : g;
    q = adj ? q + 1.0f : q;
    float a = g * PIO2F;
    float a2 = a * a;
    float ps = SINF4;
    ps = ps * a2 + SINF3;
    ps = ps * a2 + SINF2;
    ps = ps * a2 + SINF1;
    ps = ps * a2 + SINF0;
    float sa = a + a * (a2 * ps);
    float pc = COSF5;
    pc = pc * a2 + COSF4;
    pc = pc * a2 + COSF3;
    pc = pc * a2 + COSF2;
    pc = pc * a2 + COSF1;
    pc = pc * a2 + COSF0;
    float ca = 1.0f + a2 * pc;
    int odd = q == 1.0f || q == 3.0f;
    float sc = (q == 1.0f || q == 2.0f) ? -1.0f : 1.0f;
    float ss = (q == 2.0f || q == 3.0f) ? -1.0f : 1.0f;
    *c = (odd ? sa : ca) * sc;
    *s = (odd ? ca : sa) * ss;
}
#define T double
#define SFX f64
#define LOG glog
#define SINCOS gsincos
#define SQRT sqrt
#define UNIT UNIT_F64
#include "_kernels_body.h"
#undef T
#undef SFX
#undef LOG
#undef SINCOS
#undef SQRT
#undef UNIT

#define T float
#define SFX f32
#define LOG glogf
#define SINCOS gsincosf
#define SQRT sqrtf
#define UNIT UNIT_F32
#include "_kernels_body.h"
#undef T
#undef SFX
#undef LOG
#undef SINCOS
#undef SQRT
#undef UNIT
