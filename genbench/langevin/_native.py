"""Build, cache and call the fused C kernels of ``_kernels.c`` (Gaussian ULA and MALA on the CPU).

The kernels are compiled once per machine with the system C compiler (the one torch.compile's
CPU backend also needs) and cached under ``$GENBENCH_CACHE/kernels`` (default
``~/.cache/genbench/kernels``, the cache every genbench command uses), keyed by a hash of the source, the flags,
the compiler and the CPU. Without a compiler, or with ``GENBENCH_NATIVE=0``, :func:`library`
returns None and the samplers use the pure-torch engine, which computes the same numbers
(see ``_fused.py``). ``-ffp-contract=off`` keeps every multiply and add a separate rounding, as
in torch's elementwise operations; ``-march=native`` only widens the vectors across chains.

Calls release the GIL (ctypes), so large blocks are split over threads by ranges of chains;
each chain's arithmetic and each statistics chunk are independent of that split.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from genbench._io import cache_root

HERE = Path(__file__).resolve().parent
SOURCES = (HERE / "_kernels.c", HERE / "_kernels_body.h")
FLAGS = ("-O3", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared", "-std=gnu99")
NATIVE_FLAGS = ("-march=native",)
#: Largest dimension the kernels take (DMAX in _kernels.c); bigger targets use torch.
MAX_DIM = 8
#: Chains per SIMD group (W in _kernels.c, checked on loading); thread ranges start on multiples of it.
LANES = 8
#: Below this many chain-steps a block runs in the calling thread (a thread hand-off costs ~20-50 us).
MIN_PARALLEL_WORK = 1 << 15

_lock = threading.Lock()
_state: dict[str, object] = {}
_I64, _PTR = ctypes.c_int64, ctypes.c_void_p


def cache_dir() -> Path:
    """Where compiled kernels are cached."""
    return cache_root() / "kernels"


def _compiler() -> str | None:
    for cand in (os.environ.get("CC"), (sysconfig.get_config_var("CC") or "").split(" ")[0], "cc", "gcc", "clang"):
        if cand and shutil.which(cand):
            return shutil.which(cand)
    return None


def _cpu_id() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            lines = [ln for ln in fh if ln.startswith(("model name", "flags"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() + platform.machine()


def _build(cc: str) -> tuple[Path | None, str]:
    """Compile the kernels (or find them cached); returns (path, "") or (None, why not)."""
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"compiler {cc} does not run: {exc}"
    key = hashlib.sha256()
    for src in SOURCES:
        key.update(src.read_bytes())
    for part in (*FLAGS, *NATIVE_FLAGS, version, _cpu_id(), sys.platform, platform.machine()):
        key.update(part.encode())
    out_dir = cache_dir()
    target = out_dir / f"langevin-{key.hexdigest()[:20]}.so"
    if target.is_file():
        return target, ""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
        os.close(fd)
    except OSError as exc:
        return None, f"cannot write the kernel cache {out_dir}: {exc}"
    errors = ""
    for flags in ((*FLAGS, *NATIVE_FLAGS), FLAGS):  # a compiler without -march=native still builds
        try:
            res = subprocess.run([cc, *flags, "-o", tmp, os.fspath(SOURCES[0]), "-lm"], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            errors = str(exc)
            continue
        if res.returncode == 0:
            os.replace(tmp, target)  # atomic: concurrent builders agree on the same file
            return target, ""
        errors = res.stderr.strip().splitlines()[-1:] and res.stderr.strip().splitlines()[-1]
    Path(tmp).unlink(missing_ok=True)
    return None, f"compiling the kernels failed: {errors}"


def _declare(lib: ctypes.CDLL) -> None:
    ula = [_I64] * 5 + [_PTR, _PTR, _PTR, None, _PTR, _PTR, _I64, _I64, _PTR, _I64, _PTR, _PTR]
    mala = [_I64] * 5 + [_PTR, _PTR, _PTR, None, _PTR, _PTR, None, None] + [_PTR] * 4 + [_I64, _I64, _PTR, _I64, _PTR, _PTR]
    normals = [_I64] * 4 + [_PTR, _PTR]
    log_uniforms = [_I64] * 4 + [_PTR, _PTR, _I64]
    for sfx, real in (("f64", ctypes.c_double), ("f32", ctypes.c_float)):
        for name, args, res in (("ula_gauss", ula, _I64), ("mala_gauss", mala, _I64), ("normals", normals, None),
                                ("log_uniforms", log_uniforms, None)):
            fn = getattr(lib, f"{name}_{sfx}")
            fn.argtypes = [real if a is None else a for a in args]
            fn.restype = res
    lib.genbench_stat_chunk.restype = _I64
    lib.genbench_lanes.restype = _I64


def library() -> ctypes.CDLL | None:
    """The loaded kernels, or None when they cannot be used here (see :func:`status`)."""
    with _lock:
        if "lib" not in _state:
            lib, why = None, ""
            if os.environ.get("GENBENCH_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
                why = "disabled by GENBENCH_NATIVE=0"
            else:
                cc = _compiler()
                path, why = _build(cc) if cc else (None, "no C compiler found (set CC)")
                if path is not None:
                    try:
                        lib = ctypes.CDLL(os.fspath(path))
                        _declare(lib)
                        if lib.genbench_lanes() != LANES:
                            lib, why = None, f"{path} was built for {lib.genbench_lanes()} lanes, not {LANES}"
                    except (OSError, AttributeError) as exc:
                        lib, why = None, f"loading {path} failed: {exc}"
            _state["lib"], _state["why"] = lib, why
        return _state["lib"]  # type: ignore[return-value]


def status() -> str:
    """One line: whether the fused C kernels are in use, and why not."""
    lib = library()
    return "fused C kernels" if lib is not None else f"torch engine ({_state['why']})"


def stat_chunk() -> int:
    """Chains per statistics accumulator of the kernels."""
    lib = library()
    return int(lib.genbench_stat_chunk()) if lib is not None else 4096


def _pool(workers: int) -> ThreadPoolExecutor:
    with _lock:
        pool = _state.get("pool")
        if pool is None or _state.get("workers") != workers:
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genbench-langevin")
            _state["pool"], _state["workers"] = pool, workers
        return pool  # type: ignore[return-value]


_CPUS = os.cpu_count() or 1  # os.cpu_count() reads /sys each call (~20 us)


def split(chains: int, work: int, align: int) -> list[tuple[int, int]]:
    """Ranges [c0, c1) of chains for the threads, each starting on a multiple of ``align``."""
    threads = max(1, min(torch.get_num_threads(), _CPUS))
    if threads == 1 or work < MIN_PARALLEL_WORK or chains < 2 * align:
        return [(0, chains)]
    units = -(-chains // align)
    parts = min(threads, units)
    bounds = [min(chains, (units * i // parts) * align) for i in range(parts + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def run_parallel(fn: ctypes._CFuncPtr, ranges: list[tuple[int, int]], before: tuple, after: tuple) -> int:
    """Call ``fn(*before, lo, hi, *after)`` for each range [lo, hi) (on threads if several); sums the results."""
    if len(ranges) == 1:
        lo, hi = ranges[0]
        return int(fn(*before, lo, hi, *after) or 0)
    futures = [_pool(len(ranges)).submit(fn, *before, lo, hi, *after) for lo, hi in ranges]
    return sum(int(f.result() or 0) for f in futures)
