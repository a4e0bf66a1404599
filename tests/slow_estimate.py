"""CPU-time estimate of the core slow shard (tox -e slow-core): one unit of each slow test's loop, times its count.

Run from the repository root: ``python tests/slow_estimate.py``. One torch thread, CPU time: on a loaded
machine wall time says little, and spinning intra-op threads inflate multi-threaded CPU time.
"""
import sys, time
sys.path.insert(0, "tests")
import torch, numpy as np
torch.set_num_threads(1)  # CPU time of one thread: spinning intra-op threads inflate it under load
def cpu(fn, reps=1):
    t0 = time.process_time(); w0 = time.perf_counter()
    for _ in range(reps): fn()
    return (time.process_time() - t0) / reps, (time.perf_counter() - w0) / reps
out = {}
from genbench.targets import seed_target
T = seed_target()
import test_stats as ts
out["stats ess band (300)"] = 300 * cpu(lambda: ts._geyer(ts._ar1(0.9, 20000, 1)))[0]
import test_testing_conservation as tc
from genbench.testing.conservation import check_one_step, check_ula_one_step, ula_one_step_inflation, one_step_required_samples
from genbench.langevin.ula import ula_kernel
from genbench.testing import mutants
d = ula_one_step_inflation(T, 0.05); n80 = one_step_required_samples(d, d=2, alpha=0.05, power=0.8)
u = cpu(lambda: check_one_step(tc.mala_kernel(T, 0.15, 7), T, n=5000, alpha=0.05, seed=1))[0] \
  + cpu(lambda: check_ula_one_step(ula_kernel(T, 0.05), T, 0.05, n=5000, alpha=0.05, seed=1))[0] \
  + cpu(lambda: check_one_step(mutants.mala_always_accept(T, 0.05), T, n=n80, alpha=0.05, seed=1))[0]
out["conservation FA+detect (200)"] = 200 * u
out["conservation scale power (200)"] = 200 * cpu(lambda: check_one_step(mutants.mala_always_accept(T, 0.05), T, n=n80, alpha=0.05, seed=1))[0]
import test_testing_gaussian as tg
g = sum(cpu(lambda f=f, n=n, m=m, c=c: f(tg._draws(3, n, m, c)), 20)[0] for f, n, m, c in tg.CHECKS.values())
out["gaussian FA (6 x 2000)"] = 2000 * g
from genbench.testing.ksd import check_ksd
x = T.sample(500, torch.Generator().manual_seed(1)); y = T.sample(1000, torch.Generator().manual_seed(1))
k_iid = cpu(lambda: check_ksd(x, T, alpha=0.05, seed=1, n_boot=499))[0]
k_1000 = cpu(lambda: check_ksd(y, T, alpha=0.05, seed=1, n_boot=499))[0]
out["ksd FA (200 iid + 800 chain + 200 uniform)"] = 200 * k_iid + 1000 * k_1000
import test_testing_sbc as tsb
from genbench.langevin.posterior import mala_posterior_sampler
from genbench.testing.sbc import check_sbc
out["sbc FA+detect (600 x S=500)"] = 600 * cpu(lambda: check_sbc(mala_posterior_sampler(tsb.MODEL, tsb.VAR), tsb.MODEL, replications=500, alpha=0.05, seed=1))[0]
import test_testing_sequential as tq
from genbench.testing.sequential import check_sequential
out["sequential FA (300 good + 300 bad)"] = 300 * (cpu(lambda: check_sequential(tq._shape_check("gaussian"), n=500, alpha=0.05, seed=1))[0] + cpu(lambda: check_sequential(tq._shape_check("uniform"), n=100, alpha=0.05, seed=1))[0])
import test_testing_shape as tsh
from genbench.testing.shape import check_gaussian_shape
out["shape FA (800 x n=1000)"] = 800 * cpu(lambda: check_gaussian_shape(tsh._law("gaussian", 1000, 1), tsh.MEAN, tsh.COV, alpha=0.05, seed=1))[0]
from genbench.langevin.ula import sample_ula
from genbench.testing import check_ula_law
out["langevin FA (250 x 500 chains x 1e3)"] = 250 * cpu(lambda: check_ula_law(sample_ula(T, 1000, 0.01, chains=500, seed=1).final, T, 0.01, 1000, 0.0, 0.01))[0]
out["langevin 1e5 steps x 3 (fused, 2000 chains): 1e4 x 30"] = 30 * cpu(lambda: sample_ula(T, 10_000, 0.15, chains=2000, seed=1))[0]
import test_langevin_statistical as tl
rec = lambda: sample_ula(T, 10_000, 0.01, chains=2000, seed=1, kernel=tl._Recorder(ula_kernel(T, 0.01), 2000, 2))
out["langevin errors to 1e5 (recorder kernel): 1e4 x 10"] = 10 * cpu(rec)[0]
for name in tl.MUTANTS:
    n, _ = tl._planned_chains(name)
    k = mutants.kernel_mutant(name).make
    out[f"langevin mutant rate {name} (200 x n={n})"] = 200 * cpu(lambda: check_ula_law(sample_ula(T, 1000, 0.01, chains=n, seed=1, kernel=k(T, 0.01)).final, T, 0.01, 1000, 0.0, 0.01))[0]
tot = 0
for k_, v in out.items():
    tot += v; print(f"{v:8.0f} s  {k_}")
print(f"{tot:8.0f} s  total CPU (core slow tests)")
