"""The mutation catalogue: every mutant is a well-formed, documented, reproducible broken input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genbench.calibration import IMAGE_MUTANTS, KERNEL_MUTANTS, image_mutant, kernel_mutant
from genbench.errors import ParameterError
from genbench.langevin.theory import ula_law
from genbench.langevin.ula import sample_ula, ula_kernel
from genbench.targets import seed_target

ISSUE_2_BUGS = ("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision")


def test_catalogue_holds_issue_2_bugs_and_at_least_five_more() -> None:
    names = [m.name for m in KERNEL_MUTANTS]
    assert names[:3] == list(ISSUE_2_BUGS)
    assert len(names) >= 3 + 5
    assert len(set(names)) == len(names)
    assert {m.family for m in KERNEL_MUTANTS} == {"ula", "mala"}
    image_names = {m.name for m in IMAGE_MUTANTS}
    assert {"additive_noise", "blurred", "missing_digit", "single_class", "collapsed_class", "memorised"} <= image_names


@pytest.mark.parametrize("mutant", [*KERNEL_MUTANTS, *IMAGE_MUTANTS], ids=lambda m: m.name)
def test_every_mutant_states_its_bug(mutant) -> None:  # type: ignore[no-untyped-def]
    assert len(mutant.bug) > 30


def test_lookup_by_name_and_unknown_name_error() -> None:
    assert kernel_mutant("half_drift").name == "half_drift"
    assert image_mutant("blurred").name == "blurred"
    with pytest.raises(ParameterError, match="kernel mutant must be one of"):
        kernel_mutant("nope")
    with pytest.raises(ParameterError, match="image mutant must be one of"):
        image_mutant("nope")


def _run(kernel, steps: int, mu: float, chains: int = 4000, seed: int = 3) -> np.ndarray:  # type: ignore[no-untyped-def]
    return sample_ula(seed_target(), steps, mu, chains=chains, seed=seed, kernel=kernel).final.numpy()


@pytest.mark.parametrize("mutant", KERNEL_MUTANTS, ids=lambda m: m.name)
def test_kernel_mutants_are_pure_shaped_and_reproducible(mutant) -> None:  # type: ignore[no-untyped-def]
    target, mu = seed_target(), 0.05
    x = target.sample(64, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    x_before, noise_before = x.clone(), noise.clone()
    a = mutant.make(target, mu, generator=torch.Generator().manual_seed(2))(x, noise)
    b = mutant.make(target, mu, generator=torch.Generator().manual_seed(2))(x, noise)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)  # a fresh kernel with the same seed reproduces the step
    assert torch.equal(x, x_before) and torch.equal(noise, noise_before)  # arguments untouched


@pytest.mark.parametrize(
    "name",
    [m.name for m in KERNEL_MUTANTS if m.family == "ula" and m.name not in ("noise_frozen_in_time", "skipped_first_step")],
)
def test_ula_mutant_step_differs_from_the_correct_step(name: str) -> None:
    target, mu = seed_target(), 0.05
    x = target.sample(64, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    good = ula_kernel(target, mu)(x, noise)
    bad = kernel_mutant(name).make(target, mu)(x, noise)
    assert not torch.allclose(good, bad)


def test_stateful_mutants_match_their_description() -> None:
    """skipped_first_step returns x_{T-1}; noise_frozen_in_time reuses its first noise draw."""
    target, mu = seed_target(), 0.05
    ref = _run(None, 4, mu)
    skipped = _run(kernel_mutant("skipped_first_step").make(target, mu), 5, mu)
    # Same noise stream from step 2 on is not the same stream as steps 1..4: compare laws instead.
    law4 = ula_law(target, mu, 4)
    assert np.allclose(skipped.mean(0), law4.mean, atol=0.05)
    assert np.allclose(np.cov(skipped.T), law4.cov, rtol=0.1)
    assert ref.shape == skipped.shape
    k = kernel_mutant("noise_frozen_in_time").make(target, mu)
    x = torch.zeros(3, 2, dtype=torch.float64)
    n1 = torch.ones(3, 2, dtype=torch.float64)
    step1 = k(x, n1)
    step2 = k(step1, torch.zeros(3, 2, dtype=torch.float64))  # the new noise is ignored
    expected2 = ula_kernel(target, mu)(step1, n1)
    assert torch.allclose(step2, expected2)


def test_moment_preserving_noise_mutants_keep_mean_and_cov_after_one_step() -> None:
    """Uniform and Rademacher noise have variance 1: only the shape of the one-step law changes."""
    target, mu = seed_target(), 0.05
    law = ula_law(target, mu, 1)
    for name in ("uniform_noise", "rademacher_noise"):
        x = _run(kernel_mutant(name).make(target, mu), 1, mu, chains=200_000)
        assert np.allclose(x.mean(0), law.mean, atol=0.003)
        assert np.allclose(np.cov(x.T), law.cov, atol=0.003)
        assert len(np.unique(np.round(x[:, 0], 12))) > (2 if name == "uniform_noise" else 0)


def _pool(n: int = 600) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic digits whose pixels encode their label, so corruptions can be audited."""
    labels = torch.arange(n) % 10
    images = (labels.float() / 9.0 * 2.0 - 1.0).reshape(n, 1, 1, 1).expand(n, 1, 28, 28).clone()
    return images, labels


def _labels_of(images: torch.Tensor) -> torch.Tensor:
    return torch.round((images[:, 0, 0, 0] + 1.0) / 2.0 * 9.0).long()


@pytest.mark.parametrize("mutant", IMAGE_MUTANTS, ids=lambda m: m.name)
def test_image_mutants_return_n_valid_images_reproducibly(mutant) -> None:  # type: ignore[no-untyped-def]
    images, labels = _pool()
    train = -images.flip(0)
    a = mutant.make(images, labels, 100, generator=torch.Generator().manual_seed(5), train_images=train)
    b = mutant.make(images, labels, 100, generator=torch.Generator().manual_seed(5), train_images=train)
    assert a.shape == (100, 1, 28, 28)
    assert float(a.min()) >= -1.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)


def test_image_mutants_do_what_they_say() -> None:
    images, labels = _pool()
    g = torch.Generator().manual_seed(0)
    assert 7 not in _labels_of(image_mutant("missing_digit").make(images, labels, 300, generator=g)).tolist()
    assert set(_labels_of(image_mutant("single_class").make(images, labels, 300, generator=g)).tolist()) == {1}
    train = torch.rand(50, 1, 28, 28) * 2 - 1
    mem = image_mutant("memorised").make(images, labels, 20, generator=g, train_images=train)
    assert all(any(torch.equal(m, t) for t in train) for m in mem)
    real = torch.rand(200, 1, 28, 28) * 2 - 1
    lab = torch.arange(200) % 10
    col = image_mutant("collapsed_class").make(real, lab, 200, generator=g)
    threes = [img for img in col if any(torch.equal(img, r) for r in real[lab == 3])]
    assert len(threes) == 20 and all(torch.equal(t, threes[0]) for t in threes)
    noisy = image_mutant("additive_noise").make(images, labels, 50, generator=g)
    assert noisy.std() > 0.2
    with pytest.raises(ParameterError, match="train_images is required"):
        image_mutant("memorised").make(images, labels, 10, generator=g)
    with pytest.raises(ParameterError, match="fewer than n"):
        image_mutant("missing_digit").make(images, labels, 600, generator=g)
