"""The random stream of the batched samplers: uniforms keyed per step (SplitMix64), normals by Box–Muller.

On the CPU, step t takes one 63-bit key from the run's ``torch.Generator`` (``random_()`` of an
int64; a block of k steps draws its k keys at once, which equals k single draws as torch's CPU
generator is serial), and its m uniforms are u[j] = top bits of SplitMix64 output j + 1 from that
key: ``mix64(key + (j + 1)·γ)`` (Steele, Lea & Flood 2014, Java's ``SplittableRandom``), 53 bits
in float64 and 24 in float32, as ``torch.rand`` has. m = 2·⌈n/2⌉ for the n = d·chains noise
coordinates, plus (MALA) one per chain for the accept test. Uniform pair p gives normals
z[2p] = r cos θ, z[2p+1] = r sin θ with r = √(−2 log(1 − u[2p])) and θ = 2π u[2p+1]; step t's noise
is z[:d·chains] as (d, chains), and MALA's log-uniform of chain c is log(1 − u[2⌈n/2⌉ + c]). A run
continued with the same generator equals one longer run.

Why not ``torch.rand``: its CPU generator (mt19937) is serial and took half of a many-chain ULA
step, which a second core could not share. A counter-based stream computes any uniform from
(key, j) alone, so the C kernels make a step's uniforms inside the Box–Muller loop, on every
thread and SIMD lane, with numbers that do not depend on the split. The Gaussian ULA and MALA
kernels go further: they take only the keys (``draw_keys``) and make each step's normals inside the
step, a tile of chains at a time, so no normals go through memory. On CUDA, step t's uniforms are
one ``torch.rand(m)`` from the run's CUDA generator (one step per draw: CUDA's generator does not
split a long draw into per-step ones).

The transform is computed in the run's dtype with the log and sin/cos below, written in +, −, ×,
÷, √, truncation and exact bit operations only (each rounded once; √ is numpy's on the CPU: torch's
AVX-512 square root is not correctly rounded): the C kernels (``_kernels.c``) compute the same bits,
so a seed gives the same numbers with or without them, and whatever the number of threads. (torch's
and libm's transcendental functions differ in the last place, and torch's also between its vector
and scalar code paths.) Accuracy is a few units in the last place; in float32 the uniforms have 24
bits, as ``torch.randn``'s, which bounds |z| by √(48 log 2) ≈ 5.8.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from genbench.langevin._native import LANES, library, run_parallel, split

# Series coefficients, bit-identical to the hex literals of _kernels.c (tested). float64 runs use
# the float64 set; float32 runs compute in float32 with the shorter float32 set (24 bits suffice).
LOGC = tuple(1.0 / (2 * k + 1) for k in range(1, 12))  # 2 atanh(s) = 2s (1 + s²/3 + s⁴/5 + ...)
SINC = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(1, 9))
COSC = tuple((-1) ** k / math.factorial(2 * k) for k in range(1, 10))
SQRT2 = float.fromhex("0x1.6a09e667f3bcdp+0")
PIO2 = float.fromhex("0x1.921fb54442d18p+0")
LN2_HI = float.fromhex("0x1.62e42fee00000p-1")  # fdlibm's split of log 2: e·LN2_HI is exact
LN2_LO = float.fromhex("0x1.a39ef35793c76p-33")
_f32 = lambda v: float(np.float32(v))  # noqa: E731
LOGF = tuple(_f32(c) for c in LOGC[:5])
SINF = tuple(_f32(c) for c in SINC[:5])
COSF = tuple(_f32(c) for c in COSC[:6])
SQRT2F, PIO2F = _f32(math.sqrt(2.0)), _f32(math.pi / 2)
LN2F_HI = float.fromhex("0x1.62e3p-1")  # fdlibm's logf split (0x3f317180, 0x3717f7d1)
LN2F_LO = float.fromhex("0x1.2fefa2p-17")
_BITS = {torch.float64: (torch.int64, 52, 1023, 0x000FFFFFFFFFFFFF, 0x3FF0000000000000),
         torch.float32: (torch.int32, 23, 127, 0x007FFFFF, 0x3F800000)}


def _consts(dtype: torch.dtype) -> tuple:
    if dtype == torch.float64:
        return LOGC, SINC, COSC, SQRT2, PIO2, LN2_HI, LN2_LO
    return LOGF, SINF, COSF, SQRT2F, PIO2F, LN2F_HI, LN2F_LO


def log_exact(x: torch.Tensor) -> torch.Tensor:
    """log x for positive normal x (float64, or float32 in float32 arithmetic), in the kernels' arithmetic."""
    logc, _, _, sqrt2, _, ln2_hi, ln2_lo = _consts(x.dtype)
    itype, shift, bias, mantissa, one_bits = _BITS[x.dtype]
    b = x.contiguous().view(itype)
    e = (b >> shift) - bias
    m = ((b & mantissa) | one_bits).view(x.dtype)
    big = m > sqrt2
    m = torch.where(big, m * 0.5, m)
    e = torch.where(big, e + 1, e)
    f = m - 1.0
    s = f / (f + 2.0)
    s2 = s * s
    p = torch.full_like(s, logc[-1])
    for c in logc[-2::-1]:
        p = p * s2 + c
    p = p * s2 + 1.0
    ed = e.to(x.dtype)
    return ed * ln2_hi + (ed * ln2_lo + (s + s) * p)


def sincos_2pi(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos 2πv, sin 2πv) for v in [0, 1): a quarter-turn reduction, then Taylor series on |a| ≤ π/4."""
    _, sinc, cosc, _, pio2, _, _ = _consts(v.dtype)
    v4 = v * 4.0
    q = v4.to(torch.int32).to(v.dtype)  # floor, as v4 >= 0
    g = v4 - q
    adj = g >= 0.5
    g = torch.where(adj, g - 1.0, g)
    q = torch.where(adj, q + 1.0, q)
    a = g * pio2
    a2 = a * a
    ps = torch.full_like(a, sinc[-1])
    for c in sinc[-2::-1]:
        ps = ps * a2 + c
    sa = a + a * (a2 * ps)
    pc = torch.full_like(a, cosc[-1])
    for c in cosc[-2::-1]:
        pc = pc * a2 + c
    ca = a2 * pc + 1.0
    odd = (q == 1.0) | (q == 3.0)
    one = torch.ones((), dtype=v.dtype, device=v.device)
    sc = torch.where((q == 1.0) | (q == 2.0), -one, one)
    ss = torch.where((q == 2.0) | (q == 3.0), -one, one)
    return torch.where(odd, sa, ca) * sc, torch.where(odd, ca, sa) * ss


def sqrt_exact(x: torch.Tensor) -> torch.Tensor:
    """Correctly rounded √x: numpy's on the CPU (torch's AVX-512 sqrt is not correctly rounded)."""
    if x.device.type != "cpu":
        return torch.sqrt(x)  # CUDA's sqrt is IEEE round-to-nearest
    return torch.from_numpy(np.sqrt(x.numpy()))


def box_muller(u: torch.Tensor, pairs: int, out: torch.Tensor) -> torch.Tensor:
    """Normals (k, 2·pairs) into ``out`` from the first 2·pairs uniforms of each row of u (k, m), in u's dtype."""
    u1 = u[:, 0 : 2 * pairs : 2]
    u2 = u[:, 1 : 2 * pairs : 2].contiguous()
    r = sqrt_exact(log_exact(1.0 - u1) * -2.0)
    c, s = sincos_2pi(u2)
    out[:, 0::2] = r * c
    out[:, 1::2] = r * s
    return out


#: SplitMix64's constants (_kernels.c's GB_GAMMA and gb_uniform_bits), unsigned; _i64 gives torch their int64 bits.
GAMMA, MIX1, MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _i64(v: int) -> int:
    """The int64 with the same 64 bits as the unsigned v."""
    return v - (1 << 64) if v >= 1 << 63 else v


def _shr(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns (torch's ``>>`` is arithmetic)."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def uniform_bits(keys: torch.Tensor, m: int) -> torch.Tensor:
    """SplitMix64 outputs 1..m of each key (k,) as int64 bit patterns (k, m): the stream's raw bits."""
    j = torch.arange(1, m + 1, dtype=torch.int64, device=keys.device)
    z = keys.reshape(-1, 1) + j * _i64(GAMMA)  # int64 arithmetic wraps modulo 2^64, as uint64's does
    z = (z ^ _shr(z, 30)) * _i64(MIX1)
    z = (z ^ _shr(z, 27)) * _i64(MIX2)
    return z ^ _shr(z, 31)


def uniforms(keys: torch.Tensor, m: int, dtype: torch.dtype) -> torch.Tensor:
    """The stream's uniforms (k, m) in [0, 1) for per-step keys (k,), in ``dtype`` (float64 or float32)."""
    z = uniform_bits(keys, m)
    if dtype == torch.float64:
        return _shr(z, 11).to(torch.float64) * 2.0**-53
    return _shr(z, 40).to(torch.float32) * 2.0**-24


def draw_keys(gen: torch.Generator, k: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """The next k steps' keys from the run's generator: int64 in [0, 2^63)."""
    keys = torch.empty(k, dtype=torch.int64) if out is None else out[:k]
    return keys.random_(generator=gen)


def padded_pairs(n: int) -> int:
    """Uniform pairs that give n normals."""
    return -(-n // 2)


class NoiseStream:
    """Per-step normals (and MALA's log-uniforms) of a run, drawn a block of steps at a time."""

    #: Normals made per block on the CPU: enough to amortise the per-call overhead over many
    #: steps when chains are few, small enough to stay in cache until the step kernel reads them.
    BLOCK_BYTES = 1 << 19

    def __init__(self, gen: torch.Generator, d: int, chains: int, device: torch.device, dtype: torch.dtype,
                 *, check_every: int, uniforms: bool = False, keyed: bool = False):
        self.gen, self.d, self.chains, self.dtype = gen, d, chains, dtype
        self.pairs = padded_pairs(d * chains)
        self.zs = 2 * self.pairs
        self.m = self.zs + (chains if uniforms else 0)
        self.cpu = device.type == "cpu"
        itemsize = torch.finfo(dtype).bits // 8
        # keyed: the engine makes the normals from the keys itself (draw_keys), so no buffer bounds
        # the block. CUDA's generator does not split a long draw into per-step ones: one step per draw there.
        assert self.cpu or not keyed, "keyed noise streams are CPU-only"
        self.block = (1 if not self.cpu else check_every if keyed
                      else max(1, min(check_every, self.BLOCK_BYTES // (self.m * itemsize))))
        self.keys = torch.empty(self.block, dtype=torch.int64) if self.cpu else None
        self.u = None if self.cpu else torch.empty(self.block, self.m, device=device, dtype=dtype)
        # A keyed stream hands out keys only: its engine makes the normals, and replays a diverged block
        # from the keys too, so no (block, zs) buffer (16 GB at 10^6 chains and 1 024 steps) is made.
        self.z = None if keyed else torch.empty(self.block, self.zs, device=device, dtype=dtype)
        self.log_u = torch.empty(self.block, chains, device=device, dtype=dtype) if uniforms and not keyed else None
        self.native = None
        lib = library() if self.cpu else None
        if lib is not None:
            sfx = "f64" if dtype == torch.float64 else "f32"
            self.native = (getattr(lib, f"normals_{sfx}"), getattr(lib, f"log_uniforms_{sfx}"))

    def draw_keys(self, k: int) -> torch.Tensor:
        """The next k steps' keys alone (CPU), for an engine whose kernel makes their normals itself."""
        return draw_keys(self.gen, k, self.keys)

    def draw(self, k: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The next k steps: normals (k, zs) (step j's noise is ``noise_of(z[j])``) and log-uniforms (k, chains)."""
        assert self.z is not None, "a keyed stream hands out keys (draw_keys), not normals"
        z = self.z[:k]
        lu = None if self.log_u is None else self.log_u[:k]
        if not self.cpu:
            u = self.u[:k]
            torch.rand(u.shape, generator=self.gen, out=u)
        else:
            keys = draw_keys(self.gen, k, self.keys)
            if self.native is not None:
                normals, log_uniforms = self.native
                ranges = split(self.pairs, 2 * k * self.pairs, LANES)
                run_parallel(normals, ranges, (k, self.zs), (keys.data_ptr(), z.data_ptr()))
                if lu is not None:
                    log_uniforms(k, self.zs, 0, self.chains, keys.data_ptr(), lu.data_ptr(), self.chains)
                return z, lu
            u = uniforms(keys, self.m, self.dtype)
        box_muller(u, self.pairs, z)
        if lu is not None:
            lu.copy_(log_exact(1.0 - u[:, self.zs :]))
        return z, lu

    def noise_of(self, row: torch.Tensor) -> torch.Tensor:
        """One step's noise (d, chains) from its row of normals."""
        return row[: self.d * self.chains].view(self.d, self.chains)
