"""Third-party samplers judged by the conformance kit: BlackJAX's MALA and SGLD (needs ``genbench[peers]``).

Skipped, never failed, without jax/blackjax: they are an optional extra (CI without them stays green,
also under GENBENCH_REQUIRE_DATA=1, which is about data, not optional peers).
Budget (default run): two must-not-reject batteries at alpha 2e-4 each, one must-reject at power
0.99999 (1e-5): 4.1e-4.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax", reason="optional extra genbench[peers] (jax) is not installed")
pytest.importorskip("blackjax", reason="optional extra genbench[peers] (blackjax) is not installed")

from genbench.conformance import catalogue, check_sampler  # noqa: E402
from genbench.conformance import adapters  # noqa: E402
from genbench.conformance.plan import step_sizes  # noqa: E402
from genbench.testing import offset_seed  # noqa: E402


@pytest.mark.statistical(alpha=2e-4)
def test_blackjax_mala_passes_the_exact_battery() -> None:
    rep = check_sampler(adapters.blackjax_mala, "exact", targets="gauss2d,diag10,mixture2d", alpha=2e-4,
                        seed=offset_seed(21))
    assert rep.passed, rep.message()
    assert {r.check for r in rep.rows} == {"invariance", "convergence"}
    assert {r.target for r in rep.rows} == {"gauss2d", "diag10", "mixture2d"}


@pytest.mark.statistical(alpha=2e-4)
def test_blackjax_sgld_full_batch_passes_the_ula_battery() -> None:
    rep = check_sampler(adapters.blackjax_sgld, "ula", targets="gauss1d,gauss2d,diag10", alpha=2e-4,
                        seed=offset_seed(22))
    assert rep.passed, rep.message()


# Power: the inverted ratio accepts moves away from the mode; over the slow test's seeds the
# smallest p-value of its battery is below 1e-100 (docs/conformance.md), so 0.99999 is conservative.
@pytest.mark.statistical(power=0.99999)
def test_blackjax_mala_with_inverted_acceptance_is_rejected() -> None:
    rep = check_sampler(adapters.broken_blackjax_mala, "exact", targets="gauss2d", seed=offset_seed(23),
                        fail_fast=True)
    assert not rep.passed
    assert min(r.p_value for r in rep.rows) < 1e-30


def test_blackjax_adapters_are_reproducible_and_float64() -> None:
    t = catalogue()["gauss2d"]
    mu = step_sizes(t)[0]
    x0 = t.sample(64, np.random.default_rng(0))
    for factory in (adapters.blackjax_mala, adapters.blackjax_sgld):
        run = factory(t)
        a, b, c = run(x0, 5, mu, 7), run(x0, 5, mu, 7), run(x0, 5, mu, 8)
        assert a.dtype == np.float64 and a.shape == x0.shape
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
        assert len({tuple(r) for r in a}) == 64  # chains are independent, not copies


def test_blackjax_sgld_drift_is_mu_times_the_score() -> None:
    """One SGLD step minus mu*score(x0) does not depend on x0 (same key): the drift is ULA's, exactly."""
    t = catalogue()["diag10"]
    mu = step_sizes(t)[0]
    x0 = np.tile(t.mean + 0.5, (4, 1))
    x1 = adapters.blackjax_sgld(t)(x0, 1, mu, 3)
    noise = (x1 - x0 - mu * t.score(x0)) / np.sqrt(2 * mu)
    # Same key -> same noise whatever the drift: compare against a run from another start.
    x1b = adapters.blackjax_sgld(t)(x0 + 1.0, 1, mu, 3)
    noise_b = (x1b - (x0 + 1.0) - mu * t.score(x0 + 1.0)) / np.sqrt(2 * mu)
    np.testing.assert_allclose(noise, noise_b, rtol=0, atol=1e-10)


@pytest.mark.slow
@pytest.mark.statistical(alpha=0.0034)
@pytest.mark.parametrize("name, kind", [("blackjax_mala", "exact"), ("blackjax_sgld", "ula")])
def test_false_alarm_rate_of_the_default_battery_over_100_seeds(name: str, kind: str) -> None:
    """The whole default battery (alpha 0.01) on a correct sampler, 100 seeds: false alarms ~ Binomial(100, <= 0.01).

    Fails when 5 or more of 100 batteries reject: P(X >= 5) <= 0.0034 when the rate is 0.01.
    """
    factory = getattr(adapters, name)
    failures = []
    for k in range(100):
        seed = offset_seed(1000 + k)
        rep = check_sampler(factory, kind, seed=seed)
        if not rep.passed:
            failures.append((seed, [r.label for r in rep.failed_rows]))
    assert len(failures) <= 4, failures
