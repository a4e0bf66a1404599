/* Body of the fused Gaussian ULA/MALA kernels, included once per working type by _kernels.c
 * with T (float or double) and SFX (f32 or f64) defined.
 *
 * Every arithmetic operation below mirrors, in the same order, one elementwise torch operation of
 * the pure-torch engine in genbench/langevin/_fused.py. Compiled with -ffp-contract=off (no FMA
 * contraction), each operation rounds exactly once, as torch's do, so the two engines produce
 * bit-identical states; tests/test_langevin_fused.py checks it.
 */

#define FN(name) CAT(name, SFX)

/* Normals z (k rows of zstride) for pairs [p0, p1) of each step: step t's uniforms are
 * u[j] = UNIT(splitmix64 output j of keys[t]) (see gb_uniform_bits), and pair p gives
 * z[2p] = r cos(2 pi u[2p+1]), z[2p+1] = r sin(2 pi u[2p+1]), r = sqrt(-2 log(1 - u[2p])),
 * in the working type's arithmetic (LOG, SINCOS: glog/gsincos or glogf/gsincosf). */
void FN(normals)(int64_t k, int64_t zstride, int64_t p0, int64_t p1, const uint64_t *keys, T *z)
{
    for (int64_t t = 0; t < k; t++) {
        const uint64_t key = keys[t];
        T *zt = z + t * zstride;
        for (int64_t q0 = p0; q0 < p1; q0 += NB) {
            const int64_t nb = p1 - q0 < NB ? p1 - q0 : NB;
            T r[NB], c[NB], s[NB];
            for (int64_t i = 0; i < nb; i++) r[i] = SQRT(LOG((T)1 - UNIT(gb_uniform_bits(key, 2 * (q0 + i)))) * (T)-2);
            for (int64_t i = 0; i < nb; i++) SINCOS(UNIT(gb_uniform_bits(key, 2 * (q0 + i) + 1)), &c[i], &s[i]);
            for (int64_t i = 0; i < nb; i++) {
                zt[2 * (q0 + i)] = r[i] * c[i];
                zt[2 * (q0 + i) + 1] = r[i] * s[i];
            }
        }
    }
}

/* log(1 - u[off + c]) for chains [c0, c1) of each step: MALA's log-uniforms, from the same stream. */
void FN(log_uniforms)(int64_t k, int64_t off, int64_t c0, int64_t c1, const uint64_t *keys, T *out, int64_t ostride)
{
    for (int64_t t = 0; t < k; t++)
        for (int64_t c = c0; c < c1; c++) out[t * ostride + c] = LOG((T)1 - UNIT(gb_uniform_bits(keys[t], off + c)));
}

/* Record the kept state of a group: the trace row, and/or add to the statistics of its chunk:
 * acc holds d rows of sum(z) then the d(d+1)/2 rows of sum(z_i z_j), i <= j, each as W lane
 * partial sums (z = x - centre in float64), summed over lanes once at the end of the run. */
static inline __attribute__((always_inline)) void FN(record)(
    const int64_t d, const int64_t chains, const int64_t c, const int nw, T x[DMAX][W],
    T *trace, const int64_t slot, const T *centre, double *acc)
{
    if (trace) {
        T *row = trace + (slot * chains + c) * d;
        for (int w = 0; w < nw; w++)
            for (int64_t i = 0; i < d; i++) row[w * d + i] = x[i][w];
    }
    if (acc) {
        double z[DMAX][W];
        for (int64_t i = 0; i < d; i++)
            for (int w = 0; w < nw; w++) z[i][w] = (double)(x[i][w] - centre[i]);
        int64_t r = d;
        for (int64_t i = 0; i < d; i++) {
            for (int w = 0; w < nw; w++) acc[i * W + w] += z[i][w];
            for (int64_t j = i; j < d; j++, r++)
                for (int w = 0; w < nw; w++) acc[r * W + w] += z[i][w] * z[j][w];
        }
    }
}

/* y = (sigma * n + c) + sum_j a_ij x_j, summed over j in order: the ULA map (also MALA's proposal). */
static inline __attribute__((always_inline)) void FN(affine)(
    const int64_t d, const int64_t chains, const int nw, const T *a, const T *cv, const T sigma,
    const T *n, T x[DMAX][W], T y[DMAX][W])
{
    for (int64_t i = 0; i < d; i++) {
        const T ci = cv[i];
        const T *ni = n + i * chains;
        for (int w = 0; w < nw; w++) y[i][w] = sigma * ni[w] + ci;
        for (int64_t j = 0; j < d; j++) {
            const T aij = a[i * d + j];
            for (int w = 0; w < nw; w++) y[i][w] = y[i][w] + aij * x[j][w];
        }
    }
}

static inline __attribute__((always_inline)) int64_t FN(ula_group)(
    const int64_t d, const int64_t chains, const int64_t c, const int nw, const int64_t k,
    const int64_t stride, const T *a, const T *cv, const T sigma, const T *xin, T *xout,
    const T *noise, const int64_t keep0, const int64_t thin, T *trace, const int64_t slot0,
    const T *centre, double *acc)
{
    T x[DMAX][W], y[DMAX][W];
    for (int64_t i = 0; i < d; i++)
        for (int w = 0; w < nw; w++) x[i][w] = xin[i * chains + c + w];
    int64_t next = keep0, slot = slot0;
    for (int64_t t = 0; t < k; t++) {
        FN(affine)(d, chains, nw, a, cv, sigma, noise + t * stride + c, x, y);
        for (int64_t i = 0; i < d; i++)
            for (int w = 0; w < nw; w++) x[i][w] = y[i][w];
        if (t == next) {
            FN(record)(d, chains, c, nw, x, trace, slot, centre, acc);
            next += thin;
            slot++;
        }
    }
    int64_t bad = 0;
    for (int64_t i = 0; i < d; i++)
        for (int w = 0; w < nw; w++) {
            xout[i * chains + c + w] = x[i][w];
            bad += !(x[i][w] - x[i][w] == 0); /* NaN or inf */
        }
    return bad;
}

/* ULA on N(m, S) for chains [c0, c1) over k steps; returns the number of non-finite coordinates. */
int64_t FN(ula_gauss)(int64_t d, int64_t chains, int64_t c0, int64_t c1, int64_t k, int64_t stride,
                      const T *a, const T *cv, T sigma, const T *xin, T *xout, const T *noise,
                      int64_t keep0, int64_t thin, T *trace, int64_t slot0, const T *centre,
                      double *acc)
{
    int64_t bad = 0;
    for (int64_t c = c0; c < c1; c += W) {
        double *ac = acc ? acc + (c / STAT_CHUNK) * (d + d * (d + 1) / 2) * W : 0;
        const int nw = c1 - c >= W ? W : (int)(c1 - c);
        /* d = 2 (the assignment's target) with constants, so the compiler keeps the lanes in registers */
        if (d == 2 && nw == W)
            bad += FN(ula_group)(2, chains, c, W, k, stride, a, cv, sigma, xin, xout, noise, keep0,
                                 thin, trace, slot0, centre, ac);
        else
            bad += FN(ula_group)(d, chains, c, nw, k, stride, a, cv, sigma, xin, xout, noise, keep0,
                                 thin, trace, slot0, centre, ac);
    }
    return bad;
}

static inline __attribute__((always_inline)) int64_t FN(mala_group)(
    const int64_t d, const int64_t chains, const int64_t c, const int nw, const int64_t k,
    const int64_t stride, const T *a, const T *cv, const T sigma, const T *m, const T *p,
    const T mu, const T inv4mu, const T *xin, T *xout, const T *lpin, T *lpout, const T *noise,
    const T *logu, const int64_t keep0, const int64_t thin, T *trace, const int64_t slot0,
    const T *centre, double *acc)
{
    T x[DMAX][W], y[DMAX][W], zy[DMAX][W], h[DMAX][W], lpx[W];
    int64_t accepted = 0;
    for (int64_t i = 0; i < d; i++)
        for (int w = 0; w < nw; w++) x[i][w] = xin[i * chains + c + w];
    for (int w = 0; w < nw; w++) lpx[w] = lpin[c + w];
    const T half = (T)-0.5;
    int64_t next = keep0, slot = slot0;
    for (int64_t t = 0; t < k; t++) {
        const T *n = noise + t * stride + c;
        const T *lu = logu + t * chains + c;
        FN(affine)(d, chains, nw, a, cv, sigma, n, x, y);
        /* h = P (y - m): the negative score at the proposal */
        for (int64_t i = 0; i < d; i++)
            for (int w = 0; w < nw; w++) zy[i][w] = y[i][w] - m[i];
        for (int64_t i = 0; i < d; i++) {
            const T pi0 = p[i * d];
            for (int w = 0; w < nw; w++) h[i][w] = pi0 * zy[0][w];
            for (int64_t j = 1; j < d; j++) {
                const T pij = p[i * d + j];
                for (int w = 0; w < nw; w++) h[i][w] = h[i][w] + pij * zy[j][w];
            }
        }
        T lpy[W], qf[W], qb[W];
        for (int w = 0; w < nw; w++) {
            lpy[w] = zy[0][w] * h[0][w];
            qf[w] = n[w] * n[w];
            T b0 = (x[0][w] - y[0][w]) + mu * h[0][w];
            qb[w] = b0 * b0;
        }
        for (int64_t i = 1; i < d; i++) {
            const T *ni = n + i * chains;
            for (int w = 0; w < nw; w++) {
                lpy[w] = lpy[w] + zy[i][w] * h[i][w];
                qf[w] = qf[w] + ni[w] * ni[w];
                T bi = (x[i][w] - y[i][w]) + mu * h[i][w];
                qb[w] = qb[w] + bi * bi;
            }
        }
        for (int w = 0; w < nw; w++) {
            lpy[w] = lpy[w] * half;
            /* log alpha = (log pi(y) - log pi(x)) + (log q(x|y) - log q(y|x)) */
            T la = (lpy[w] - lpx[w]) + (-(qb[w] * inv4mu) - qf[w] * half);
            int ok = lu[w] < la; /* NaN compares false: an undefined ratio is a rejection */
            accepted += ok;
            for (int64_t i = 0; i < d; i++) x[i][w] = ok ? y[i][w] : x[i][w];
            lpx[w] = ok ? lpy[w] : lpx[w];
        }
        if (t == next) {
            FN(record)(d, chains, c, nw, x, trace, slot, centre, acc);
            next += thin;
            slot++;
        }
    }
    for (int64_t i = 0; i < d; i++)
        for (int w = 0; w < nw; w++) xout[i * chains + c + w] = x[i][w];
    for (int w = 0; w < nw; w++) lpout[c + w] = lpx[w];
    return accepted;
}

/* MALA on N(m, S) for chains [c0, c1) over k steps; returns the number of accepted proposals. */
int64_t FN(mala_gauss)(int64_t d, int64_t chains, int64_t c0, int64_t c1, int64_t k, int64_t stride,
                       const T *a, const T *cv, T sigma, const T *m, const T *p, T mu, T inv4mu,
                       const T *xin, T *xout, const T *lpin, T *lpout, const T *noise,
                       const T *logu, int64_t keep0, int64_t thin, T *trace, int64_t slot0,
                       const T *centre, double *acc)
{
    int64_t accepted = 0;
    for (int64_t c = c0; c < c1; c += W) {
        double *ac = acc ? acc + (c / STAT_CHUNK) * (d + d * (d + 1) / 2) * W : 0;
        const int nw = c1 - c >= W ? W : (int)(c1 - c);
        if (d == 2 && nw == W)
            accepted += FN(mala_group)(2, chains, c, W, k, stride, a, cv, sigma, m, p, mu, inv4mu,
                                       xin, xout, lpin, lpout, noise, logu, keep0, thin, trace,
                                       slot0, centre, ac);
        else
            accepted += FN(mala_group)(d, chains, c, nw, k, stride, a, cv, sigma, m, p, mu, inv4mu,
                                       xin, xout, lpin, lpout, noise, logu, keep0, thin, trace,
                                       slot0, centre, ac);
    }
    return accepted;
}

#undef FN
