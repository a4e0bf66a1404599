/* Body of the fused Gaussian ULA/MALA kernels, included once per working type by _kernels.c
 * with T (float or double) and SFX (f32 or f64) defined.
 *
 * Every arithmetic operation below mirrors, in the same order, one elementwise torch operation of
 * the pure-torch engine in genbench/langevin/_fused.py. Compiled with -ffp-contract=off (no FMA
 * contraction), each operation rounds exactly once, as torch's do, so the two engines produce
 * bit-identical states; tests/test_langevin_fused.py checks it.
 */

#define FN(name) CAT(name, SFX)

/* The normals of pairs q0 .. q0 + np - 1 of the step keyed by key, pair q0 + i into out[2i], out[2i + 1]:
 * the step's uniforms are u[j] = UNIT(splitmix64 output j of key) (see gb_uniform_bits), and pair p
 * gives z[2p] = r cos(2 pi u[2p+1]), z[2p+1] = r sin(2 pi u[2p+1]), r = sqrt(-2 log(1 - u[2p])), in
 * the working type's arithmetic (LOG, SINCOS: glog/gsincos or glogf/gsincosf), NB pairs a vector block. */
static inline __attribute__((always_inline)) void FN(pair_range)(const uint64_t key, const int64_t q0, const int64_t np, T *out)
{
    for (int64_t b0 = 0; b0 < np; b0 += NB) {
        const int64_t nb = np - b0 < NB ? np - b0 : NB;
        const int64_t qb = q0 + b0;
        T r[NB], c[NB], s[NB];
        for (int64_t i = 0; i < nb; i++) r[i] = SQRT(LOG((T)1 - UNIT(gb_uniform_bits(key, 2 * (qb + i)))) * (T)-2);
        for (int64_t i = 0; i < nb; i++) SINCOS(UNIT(gb_uniform_bits(key, 2 * (qb + i) + 1)), &c[i], &s[i]);
        for (int64_t i = 0; i < nb; i++) {
            out[2 * (b0 + i)] = r[i] * c[i];
            out[2 * (b0 + i) + 1] = r[i] * s[i];
        }
    }
}

/* Normals z (k rows of zstride) for pairs [p0, p1) of each step t, keyed by keys[t]. */
void FN(normals)(int64_t k, int64_t zstride, int64_t p0, int64_t p1, const uint64_t *keys, T *z)
{
    for (int64_t t = 0; t < k; t++) FN(pair_range)(keys[t], p0, p1 - p0, z + t * zstride + 2 * p0);
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
    const int64_t d, const int64_t nstride, const int nw, const T *a, const T *cv, const T sigma,
    const T *n, T x[DMAX][W], T y[DMAX][W])
{
    for (int64_t i = 0; i < d; i++) {
        const T ci = cv[i];
        const T *ni = n + i * nstride;
        for (int w = 0; w < nw; w++) y[i][w] = sigma * ni[w] + ci;
        for (int64_t j = 0; j < d; j++) {
            const T aij = a[i * d + j];
            for (int w = 0; w < nw; w++) y[i][w] = y[i][w] + aij * x[j][w];
        }
    }
}

/* One step's normals for the chains [c, c + tc) of a tile, row i (normals i*chains + c ..) at
 * zb + 1 + i * nstride (nstride from tile_stride). When the tile holds every chain the rows are one
 * range; otherwise each row starts from the pair holding its first normal, written one slot early
 * when that normal is a pair's second. Writes zb[0 .. d * nstride + 2). */
static inline __attribute__((always_inline)) void FN(tile_normals)(
    const int64_t d, const int64_t chains, const int64_t c, const int64_t tc, const uint64_t key, T *zb)
{
    if (c == 0 && tc == chains) {
        FN(pair_range)(key, 0, (d * chains + 1) / 2, zb + 1);
        return;
    }
    for (int64_t i = 0; i < d; i++) {
        const int64_t m0 = i * chains + c;
        FN(pair_range)(key, m0 >> 1, ((m0 + tc - 1) >> 1) - (m0 >> 1) + 1, zb + 1 + i * (TILE + 2) - (m0 & 1));
    }
}

/* Load the states of the tile [c, c + tc) into xs (rows of TILE); returns the statistics sums its
 * groups add to (its chunk's: tiles start on multiples of TILE from c0, a multiple of STAT_CHUNK when
 * acc is used), or 0 without acc. */
static inline __attribute__((always_inline)) double *FN(tile_load)(
    const int64_t d, const int64_t chains, const int64_t c, const int64_t tc, const T *xin, T *xs, double *acc)
{
    for (int64_t i = 0; i < d; i++)
        for (int64_t w = 0; w < tc; w++) xs[i * TILE + w] = xin[i * chains + c + w];
    return acc ? acc + (c / STAT_CHUNK) * (d + d * (d + 1) / 2) * W : 0;
}

/* sn ULA steps for the chains [g, g + nw) of a tile: states xs (rows of TILE), step s's noise rows
 * at n + s * ps (rows of nstride), recording kept states. */
static inline __attribute__((always_inline)) void FN(tile_group)(
    const int64_t d, const int64_t chains, const int64_t c, const int64_t g, const int nw,
    const int64_t sn, const int64_t *kslot, const T *a, const T *cv, const T sigma, T *xs, const T *n,
    const int64_t ps, const int64_t nstride, T *trace, const T *centre, double *acc)
{
    T x[DMAX][W], y[DMAX][W];
    STATS_BEGIN
    for (int64_t i = 0; i < d; i++)
        for (int w = 0; w < nw; w++) x[i][w] = xs[i * TILE + g + w];
    for (int64_t s = 0; s < sn; s++) {
        FN(affine)(d, nstride, nw, a, cv, sigma, n + s * ps + g, x, y);
        for (int64_t i = 0; i < d; i++)
            for (int w = 0; w < nw; w++) x[i][w] = y[i][w];
        if (kslot[s] >= 0) STATS_RECORD(x, kslot[s]);
    }
    for (int64_t i = 0; i < d; i++)
        for (int w = 0; w < nw; w++) xs[i * TILE + g + w] = x[i][w];
    STATS_END
}

/* ULA on N(m, S) for chains [c0, c1) over the k steps keyed by keys[t]; returns the number of
 * non-finite coordinates. Each step's normals are made here (the stream of normals(), the same bits)
 * for a tile of TILE chains and a batch of steps at a time, whose states and normals stay in L1:
 * neither normals nor states go through memory between steps. */
int64_t FN(ula_gauss)(int64_t d, int64_t chains, int64_t c0, int64_t c1, int64_t k,
                      const uint64_t *keys, const T *a, const T *cv, T sigma, const T *xin, T *xout,
                      int64_t keep0, int64_t thin, T *trace, int64_t slot0, const T *centre,
                      double *acc)
{
    T xs[DMAX * TILE];
    T zb[ZCAP];
    int64_t kslot[SMAX];
    int64_t bad = 0;
    for (int64_t c = c0; c < c1; c += TILE) {
        const int64_t tc = c1 - c >= TILE ? TILE : c1 - c;
        double *ac = FN(tile_load)(d, chains, c, tc, xin, xs, acc);
        const int64_t nstride = tile_stride(chains, c, tc), ps = d * nstride + 2, S = batch_steps(ps);
        int64_t next = keep0, slot = slot0;
        for (int64_t t0 = 0; t0 < k; t0 += S) {
            const int64_t sn = k - t0 < S ? k - t0 : S;
            for (int64_t s = 0; s < sn; s++) FN(tile_normals)(d, chains, c, tc, keys[t0 + s], zb + s * ps);
            kept_slots(t0, sn, thin, &next, &slot, kslot);
            for (int64_t g = 0; g < tc; g += W) {
                const int nw = tc - g >= W ? W : (int)(tc - g);
                /* d = 2 (the assignment's target) with constants, so the compiler keeps the lanes in registers */
                if (d == 2 && nw == W)
                    FN(tile_group)(2, chains, c, g, W, sn, kslot, a, cv, sigma, xs, zb + 1, ps, nstride, trace, centre, ac);
                else
                    FN(tile_group)(d, chains, c, g, nw, sn, kslot, a, cv, sigma, xs, zb + 1, ps, nstride, trace, centre, ac);
            }
        }
        for (int64_t i = 0; i < d; i++)
            for (int64_t w = 0; w < tc; w++) {
                const T v = xs[i * TILE + w];
                xout[i * chains + c + w] = v;
                bad += !(v - v == 0); /* NaN or inf */
            }
    }
    return bad;
}

/* sn MALA steps for the chains [g, g + nw) of a tile: states xs and log-densities lps (rows of
 * TILE); step s's noise rows at n + s * ps (rows of nstride) and log-uniforms at lu + s * ps;
 * records kept states; returns the accepted proposals. */
static inline __attribute__((always_inline)) int64_t FN(mala_tile_group)(
    const int64_t d, const int64_t chains, const int64_t c, const int64_t g, const int nw,
    const int64_t sn, const int64_t *kslot, const T *a, const T *cv, const T sigma, const T *m,
    const T *p, const T mu, const T inv4mu, T *xs, T *lps, const T *nb, const T *lb, const int64_t ps,
    const int64_t nstride, T *trace, const T *centre, double *acc)
{
    T x[DMAX][W], y[DMAX][W], zy[DMAX][W], h[DMAX][W], lpx[W];
    int64_t accepted = 0;
    STATS_BEGIN
    for (int64_t i = 0; i < d; i++)
        for (int w = 0; w < nw; w++) x[i][w] = xs[i * TILE + g + w];
    for (int w = 0; w < nw; w++) lpx[w] = lps[g + w];
    const T half = (T)-0.5;
    for (int64_t s = 0; s < sn; s++) {
        const T *n = nb + s * ps + g;
        const T *lu = lb + s * ps + g;
        FN(affine)(d, nstride, nw, a, cv, sigma, n, x, y);
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
            const T *ni = n + i * nstride;
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
        if (kslot[s] >= 0) STATS_RECORD(x, kslot[s]);
    }
    for (int64_t i = 0; i < d; i++)
        for (int w = 0; w < nw; w++) xs[i * TILE + g + w] = x[i][w];
    for (int w = 0; w < nw; w++) lps[g + w] = lpx[w];
    STATS_END
    return accepted;
}

/* MALA on N(m, S) for chains [c0, c1) over the k steps keyed by keys[t]; returns the number of
 * accepted proposals. As ula_gauss, a tile of chains and a batch of steps at a time, with each
 * step's normals and log-uniforms (uniforms 2*ceil(d*chains/2) + c of the stream) made here. */
int64_t FN(mala_gauss)(int64_t d, int64_t chains, int64_t c0, int64_t c1, int64_t k,
                       const uint64_t *keys, const T *a, const T *cv, T sigma, const T *m, const T *p,
                       T mu, T inv4mu, const T *xin, T *xout, const T *lpin, T *lpout, int64_t keep0,
                       int64_t thin, T *trace, int64_t slot0, const T *centre, double *acc)
{
    T xs[DMAX * TILE], lps[TILE];
    T zb[ZCAP];
    int64_t kslot[SMAX];
    const int64_t zs = 2 * ((d * chains + 1) / 2);
    int64_t accepted = 0;
    for (int64_t c = c0; c < c1; c += TILE) {
        const int64_t tc = c1 - c >= TILE ? TILE : c1 - c;
        double *ac = FN(tile_load)(d, chains, c, tc, xin, xs, acc);
        for (int64_t w = 0; w < tc; w++) lps[w] = lpin[c + w];
        /* a step's values: its normal rows, then its tc log-uniforms */
        const int64_t nstride = tile_stride(chains, c, tc), lo = d * nstride + 2, ps = lo + tc, S = batch_steps(ps);
        int64_t next = keep0, slot = slot0;
        for (int64_t t0 = 0; t0 < k; t0 += S) {
            const int64_t sn = k - t0 < S ? k - t0 : S;
            for (int64_t s = 0; s < sn; s++) {
                const uint64_t key = keys[t0 + s];
                T *zs_ = zb + s * ps;
                FN(tile_normals)(d, chains, c, tc, key, zs_);
                for (int64_t w = 0; w < tc; w++) zs_[lo + w] = LOG((T)1 - UNIT(gb_uniform_bits(key, zs + c + w)));
            }
            kept_slots(t0, sn, thin, &next, &slot, kslot);
            for (int64_t g = 0; g < tc; g += W) {
                const int nw = tc - g >= W ? W : (int)(tc - g);
                if (d == 2 && nw == W)
                    accepted += FN(mala_tile_group)(2, chains, c, g, W, sn, kslot, a, cv, sigma, m, p, mu, inv4mu, xs,
                                                    lps, zb + 1, zb + lo, ps, nstride, trace, centre, ac);
                else
                    accepted += FN(mala_tile_group)(d, chains, c, g, nw, sn, kslot, a, cv, sigma, m, p, mu, inv4mu, xs,
                                                    lps, zb + 1, zb + lo, ps, nstride, trace, centre, ac);
            }
        }
        for (int64_t i = 0; i < d; i++)
            for (int64_t w = 0; w < tc; w++) xout[i * chains + c + w] = xs[i * TILE + w];
        for (int64_t w = 0; w < tc; w++) lpout[c + w] = lps[w];
    }
    return accepted;
}

#undef FN
