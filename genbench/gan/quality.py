"""Quality metrics of a GAN's images, each with its uncertainty.

* C2ST (Lopez-Paz & Oquab 2017): a fresh classifier (a small CNN by default; the seed's D
  architecture, an MLP, as an option) trained on part of held-out real vs generated images; its
  accuracy on the rest is the statistic. H0 "generated and real images have the same law" makes
  the number of correct test predictions Binomial(n, 1/2) (or, with a balanced test set, less
  spread: Hoeffding 1956), so the exact one-sided binomial p-value is valid. The test-set size
  comes from the exact binomial power for a stated accuracy excess epsilon
  (``genbench.testing.power``). The CNN is the default because the calibration study measured the
  MLP, trained on ~850 images, blind to σ = 0.3 pixel noise that the CNN always detects.
* The GAN's own discriminator on held-out real and generated images (mean outputs) - reported, not
  trusted: it co-adapted with G (a poor judge, Lopez-Paz & Oquab).
* Fréchet distance in the reference classifier's feature space (``genbench.gan.classifier``), in
  float64, at a fixed N, beside the real-vs-real floor at the same N (FD is biased in N).
* KID: unbiased MMD^2 with the cubic polynomial kernel, mean over disjoint subsets with its
  standard error (torch-fidelity's "std" over overlapping subsets is a spread, not an s.e.).
* Class histogram of generated digits with a chi^2 goodness-of-fit test (mode collapse) and the
  mean top-class confidence.
* Memorisation: are generated images nearer to their nearest training digit than held-out real
  digits are? One-sided Mann-Whitney U test (global form of Meehan et al. 2020's C_T).
* Diversity: are generated images nearer to each other than real images are? A permutation test
  on within-set nearest-neighbour distances; catches duplicates and a mode collapsed to a point
  that the class histogram and KID miss.

``evaluate_generator`` runs them all and returns a JSON-able ``QualityReport``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
import scipy.stats
import torch
import torch.nn.functional as F
from torch import nn

from genbench import _validate
from genbench._runtime import make_generator, resolve_device
from genbench.errors import DataError, DivergenceError, ParameterError
from genbench.gan.classifier import (
    ClassifierConfig,
    TrainedClassifier,
    reference_classifier,
)
from genbench.gan.models import Discriminator, sample_noise
from genbench.testing import power as _power

C2ST_CLASSIFIERS = ("mlp", "cnn")


# --------------------------------------------------------------------------------------------- helpers


def _images(name: str, x: Any) -> torch.Tensor:
    """Return ``x`` (a tensor or anything with ``.images``) as float32 CPU images (N, 1, 28, 28)."""
    if hasattr(x, "images"):
        x = x.images
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{name} must be images of shape (N, 1, 28, 28), got {type(x).__name__}")
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise DataError(f"{name} must be images of shape (N, 1, 28, 28), got {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise DataError(f"{name} holds {x.shape[0]} image(s); at least 2 are needed")
    x = x.detach().to("cpu", torch.float32)
    if not torch.isfinite(x).all():
        raise DataError(f"{name} contains non-finite pixel values")
    return x


def _labels(x: Any) -> torch.Tensor | None:
    return x.labels.detach().cpu().long() if hasattr(x, "labels") else None


def _source(x: Any) -> str:
    return str(getattr(x, "source", "in-memory tensor"))


def _seeded_init(seed: int, build):  # type: ignore[no-untyped-def]
    """Build a module with its weights initialised from ``seed`` without disturbing the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


# ------------------------------------------------------------------------------------------------ C2ST


class SmallCNN(nn.Module):
    """C2ST option: conv5x5(16)-pool-conv3x3(32)-pool-fc64-fc1, sigmoid output like the seed's D."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2),
            nn.LeakyReLU(0.2),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 64),
            nn.LeakyReLU(0.2),
            nn.Linear(64, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probability (B, 1) that each image is real."""
        return self.net(x)


@dataclass
class C2STResult:
    """Outcome of one classifier two-sample test (accuracy on held-out test points)."""

    accuracy: float
    ci_low: float  # Clopper-Pearson 95% interval of the accuracy
    ci_high: float
    p_value: float  # exact one-sided binomial, H1: accuracy > 1/2
    auc: float  # area under the ROC curve of the classifier's scores on the test points
    log_loss: float  # mean binary cross-entropy (nats) on the test points; ln 2 = chance
    n_correct: int
    n_test: int  # test points (half real, half generated)
    n_train: int  # training points (half real, half generated)
    epsilon: float | None  # accuracy excess the test size was planned for (None: n_test given)
    alpha: float
    power: float  # planned power at epsilon
    detectable_epsilon: float | None  # accuracy excess detected with probability `power` at n_test
    classifier: str
    epochs: int
    seed: int
    null_hypothesis: str = "real and generated images have the same law (C2ST accuracy = 1/2)"

    @property
    def rejected(self) -> bool:
        """True when H0 is rejected at ``alpha``."""
        return self.p_value < self.alpha

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        d = asdict(self)
        d["rejected"] = self.rejected
        return d


def c2st_test_size(epsilon: float = 0.05, alpha: float = 0.05, power: float = 0.8) -> int:
    """Test points (even) at which C2ST detects accuracy 1/2 + ``epsilon`` with probability ``power``."""
    n = _power.required_samples("c2st", epsilon, alpha=alpha, power=power)
    # Balanced test set (half real, half generated): the smallest even n reaching the power (the
    # exact binomial power is a sawtooth in n, so n + 1 may fall just short).
    while n % 2 or _power.power("c2st", epsilon, n, alpha=alpha) < power:
        n += 1
    return n


def _detectable(n_test: int, alpha: float, power: float) -> float | None:
    try:
        return _power.detectable_effect("c2st", n_test, alpha=alpha, power=power)
    except ParameterError:
        return None  # so few test points that even a perfect classifier is not detected with this power


def _auc(scores_real: np.ndarray, scores_fake: np.ndarray) -> float:
    # Mann-Whitney U / (n1 n0) is the AUC, ties counted one half.
    u = scipy.stats.mannwhitneyu(scores_real, scores_fake, alternative="two-sided").statistic
    return float(u / (len(scores_real) * len(scores_fake)))


def c2st(
    real: Any,
    fake: Any,
    *,
    epsilon: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    n_test: int | None = None,
    classifier: str = "cnn",
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> C2STResult:
    """Classifier two-sample test of ``real`` vs ``fake`` images with a freshly trained classifier.

    ``n_test`` defaults to the size at which accuracy 1/2 + ``epsilon`` (default 0.05) is detected
    with probability ``power``; an explicit ``n_test`` together with an ``epsilon`` it cannot detect
    with that power is an error.
    """
    x_real, x_fake = _images("real", real), _images("fake", fake)
    classifier = _validate.choice("classifier", classifier, C2ST_CLASSIFIERS)
    alpha = _validate.probability("alpha", alpha)
    power = _validate.probability("power", power)
    epochs = _validate.positive_int("epochs", epochs)
    batch_size = _validate.positive_int("batch_size", batch_size)
    lr = _validate.positive_float("lr", lr)
    dev = resolve_device(device)
    if n_test is None:
        epsilon = 0.05 if epsilon is None else epsilon
        n_test = c2st_test_size(epsilon, alpha, power)
    else:
        n_test = _validate.positive_int("n_test", n_test, minimum=2)
        n_test += n_test % 2
        if epsilon is not None and _power.power("c2st", epsilon, n_test, alpha=alpha) < power:
            need = c2st_test_size(epsilon, alpha, power)
            raise ParameterError(
                f"n_test={n_test} is too small to detect epsilon={epsilon:g} with power {power:g} at "
                f"alpha={alpha:g}; it needs n_test >= {need} (or omit n_test to plan it)"
            )
    half = n_test // 2
    m = min(len(x_real), len(x_fake))
    n_train_half = m - half
    if n_train_half < 16:
        raise ParameterError(
            f"C2ST needs more images: {n_test} test points (alpha={alpha:g}, epsilon={epsilon}, "
            f"power={power:g}) plus >= 16 training images per class, i.e. >= {half + 16} real and generated "
            f"images each; got {len(x_real)} real and {len(x_fake)} generated"
        )
    gen = make_generator(seed)
    pr = torch.randperm(len(x_real), generator=gen)[:m]
    pf = torch.randperm(len(x_fake), generator=gen)[:m]
    test_x = torch.cat([x_real[pr[:half]], x_fake[pf[:half]]])
    test_y = torch.cat([torch.ones(half), torch.zeros(half)])
    train_x = torch.cat([x_real[pr[half:]], x_fake[pf[half:]]]).to(dev)
    train_y = torch.cat([torch.ones(n_train_half), torch.zeros(n_train_half)]).to(dev)

    build = Discriminator if classifier == "mlp" else SmallCNN
    model = _seeded_init(seed, build).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(train_x), generator=gen).to(dev)
        for idx in perm.split(batch_size):
            p = model(train_x[idx]).squeeze(1)
            loss = F.binary_cross_entropy(p, train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        scores = torch.cat([model(c.to(dev)).squeeze(1).cpu() for c in test_x.split(1000)]).double()
    if not torch.isfinite(scores).all():
        raise DivergenceError("C2ST classifier produced non-finite outputs")
    pred = scores > 0.5
    correct = int((pred == test_y.bool()).sum())
    test = scipy.stats.binomtest(correct, n_test, 0.5, alternative="greater")
    ci = scipy.stats.binomtest(correct, n_test, 0.5).proportion_ci(0.95, method="exact")
    eps_p = 1e-7  # keeps the log-loss finite when the sigmoid saturates in float32
    yd = test_y.double()
    ll = -(yd * torch.log(scores.clamp(eps_p, 1)) + (1 - yd) * torch.log((1 - scores).clamp(eps_p, 1))).mean()
    s = scores.numpy()
    return C2STResult(
        accuracy=correct / n_test,
        ci_low=float(ci.low),
        ci_high=float(ci.high),
        p_value=float(test.pvalue),
        auc=_auc(s[:half], s[half:]),
        log_loss=float(ll),
        n_correct=correct,
        n_test=n_test,
        n_train=2 * n_train_half,
        epsilon=None if epsilon is None else float(epsilon),
        alpha=alpha,
        power=power,
        detectable_epsilon=_detectable(n_test, alpha, power),
        classifier=classifier,
        epochs=epochs,
        seed=seed,
    )


# --------------------------------------------------------------------------------- own discriminator


@torch.no_grad()
def discriminator_scores(discriminator: nn.Module, real: Any, fake: Any) -> dict[str, float]:
    """Mean output of a (GAN's own) discriminator on real and on generated images."""
    x_real, x_fake = _images("real", real), _images("fake", fake)
    dev = next(discriminator.parameters()).device
    was = discriminator.training
    discriminator.eval()
    try:
        dr = torch.cat([discriminator(c.to(dev)).cpu() for c in x_real.split(1000)]).double()
        df = torch.cat([discriminator(c.to(dev)).cpu() for c in x_fake.split(1000)]).double()
    finally:
        discriminator.train(was)
    return {
        "mean_d_real": float(dr.mean()),
        "mean_d_fake": float(df.mean()),
        "accuracy_at_half": float(((dr > 0.5).double().sum() + (df <= 0.5).double().sum()) / (len(dr) + len(df))),
        "n_real": len(dr),
        "n_fake": len(df),
    }


# ------------------------------------------------------------------------------- Fréchet distance


def _psd_sqrt_eigs(mat: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a symmetric PSD matrix with round-off negatives set to 0 (or an error)."""
    w, v = scipy.linalg.eigh((mat + mat.T) / 2)
    tol = max(w.max(initial=0.0), 1.0) * mat.shape[0] * np.finfo(np.float64).eps * 100
    if w.min(initial=0.0) < -tol:
        raise DivergenceError(f"{name} has a negative eigenvalue {w.min():.3g}: not a covariance matrix")
    return np.clip(w, 0.0, None), v


def frechet_distance(feat_a: Any, feat_b: Any) -> dict[str, float]:
    """Fréchet distance between Gaussians fitted (float64) to two feature sets, with covariance ranks."""
    a = np.asarray(feat_a.cpu() if isinstance(feat_a, torch.Tensor) else feat_a, dtype=np.float64)
    b = np.asarray(feat_b.cpu() if isinstance(feat_b, torch.Tensor) else feat_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ParameterError(f"features must be (N, d) arrays of equal d, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < 2:
        raise ParameterError("Fréchet distance needs at least 2 samples on each side")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise DivergenceError("features contain non-finite values")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(Σa Σb) = tr sqrt(Σa^½ Σb Σa^½): the right side is symmetric PSD, so its square root
    # comes from eigh and is real even when a covariance is singular (dead ReLU units, N < d), where
    # scipy.linalg.sqrtm(Σa Σb) returns complex values or NaN (bioinf-jku/TTUR #4).
    wa, va = _psd_sqrt_eigs(cov_a, "covariance of the first set")
    half_a = (va * np.sqrt(wa)) @ va.T
    wm, _ = _psd_sqrt_eigs(half_a @ cov_b @ half_a, "Σa^½ Σb Σa^½")
    tr_sqrt = float(np.sqrt(wm).sum())
    diff = mu_a - mu_b
    fd = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_sqrt)
    wb, _ = _psd_sqrt_eigs(cov_b, "covariance of the second set")
    rank_tol = lambda w: w.max(initial=0.0) * len(w) * np.finfo(np.float64).eps * 100
    return {
        "fd": max(fd, 0.0),  # round-off can leave -1e-12 when the two sets coincide
        "mean_term": float(diff @ diff),
        "rank_a": int((wa > rank_tol(wa)).sum()),
        "rank_b": int((wb > rank_tol(wb)).sum()),
        "dim": int(a.shape[1]),
        "n_a": len(a),
        "n_b": len(b),
    }


# ---------------------------------------------------------------------------------------------- KID


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2.0 * kxy.mean()
    )


def kernel_inception_distance(feat_x: Any, feat_y: Any, *, n_subsets: int = 10, seed: int = 0) -> dict[str, float]:
    """KID (unbiased MMD^2, kernel (x.y/d + 1)^3) as the mean over disjoint subsets, with its standard error."""
    x = np.asarray(feat_x.cpu() if isinstance(feat_x, torch.Tensor) else feat_x, dtype=np.float64)
    y = np.asarray(feat_y.cpu() if isinstance(feat_y, torch.Tensor) else feat_y, dtype=np.float64)
    n_subsets = _validate.positive_int("n_subsets", n_subsets, minimum=2)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ParameterError(f"features must be (N, d) arrays of equal d, got {x.shape} and {y.shape}")
    size = min(len(x), len(y)) // n_subsets
    if size < 2:
        raise ParameterError(
            f"KID with n_subsets={n_subsets} needs >= {2 * n_subsets} samples per side, got {len(x)} and {len(y)}"
        )
    rng = np.random.default_rng(seed)
    px, py = rng.permutation(len(x)), rng.permutation(len(y))
    # Disjoint subsets give independent, unbiased estimates: their mean's s.e. is sd/sqrt(B).
    vals = np.array(
        [_mmd2_unbiased(x[px[i * size:(i + 1) * size]], y[py[i * size:(i + 1) * size]]) for i in range(n_subsets)]
    )
    if not np.isfinite(vals).all():
        raise DivergenceError("KID is non-finite (features overflow the cubic kernel)")
    mean = float(vals.mean())
    se = float(vals.std(ddof=1) / math.sqrt(n_subsets))
    return {
        "kid": mean,
        "se": se,
        "z": mean / se if se > 0 else float("inf") if mean > 0 else 0.0,
        "n_subsets": n_subsets,
        "subset_size": size,
    }


# --------------------------------------------------------------------------------- class histogram


def class_histogram(probs: Any, expected: Any = None) -> dict[str, Any]:
    """Predicted-class counts with a chi^2 goodness-of-fit test against ``expected`` (uniform by default)."""
    p = torch.as_tensor(probs).detach().cpu().double()
    if p.ndim != 2 or p.shape[0] < 1:
        raise ParameterError(f"probs must be (N, K) class probabilities, got shape {tuple(p.shape)}")
    k = p.shape[1]
    counts = torch.bincount(p.argmax(1), minlength=k).numpy()
    n = int(counts.sum())
    if expected is None:
        e = np.full(k, 1.0 / k)
    else:
        e = np.asarray(expected, dtype=np.float64)
        if e.shape != (k,) or (e <= 0).any() or not np.isfinite(e).all():
            raise ParameterError(f"expected must be {k} positive class frequencies, got {expected!r}")
        e = e / e.sum()
    chi = scipy.stats.chisquare(counts, f_exp=n * e)
    return {
        "counts": counts.tolist(),
        "expected_frequencies": e.tolist(),
        "chi2": float(chi.statistic),
        "dof": k - 1,
        "p_value": float(chi.pvalue),
        "classes_present": int((counts > 0).sum()),
        "mean_confidence": float(p.max(1).values.mean()),
        "n": n,
    }


# ---------------------------------------------------------------------------------- memorisation


def _nn_dist(query: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    q = query.flatten(1).double()
    r = ref.flatten(1).double()
    return torch.cat([torch.cdist(c, r).min(dim=1).values for c in q.split(500)])


def memorisation(fake: Any, train: Any, heldout: Any, *, seed: int = 0) -> dict[str, Any]:
    """Are generated images nearer (pixel L2) to the training set than held-out real images are?

    Mann-Whitney U test (one-sided) between the nearest-training-image distances of the generated
    images and of held-out real images (the global form of Meehan et al. 2020's C_T). H0: generated
    images are no nearer to the training set than unseen real digits; exact under exchangeability
    when the "generated" images are themselves unseen real digits. Noise or blobs far from every
    digit are not memorisation and are not flagged (their distances are larger).
    """
    x_fake, x_train, x_held = _images("fake", fake), _images("train", train), _images("heldout", heldout)
    del seed  # the test is deterministic given its inputs; kept for a uniform signature
    d_fake, d_held = _nn_dist(x_fake, x_train), _nn_dist(x_held, x_train)
    mw = scipy.stats.mannwhitneyu(d_fake.numpy(), d_held.numpy(), alternative="less", method="asymptotic")
    # scipy's U counts pairs with d_fake > d_held (ties 1/2), so 1 - U/(n1 n2) estimates
    # P(d_fake < d_held): 1/2 under H0, -> 1 for copies, -> 0 for images far from every digit.
    prob = 1.0 - float(mw.statistic / (len(d_fake) * len(d_held)))
    # A generated image within 1% of the median held-out distance is a near copy of a training digit.
    copy_tol = 0.01 * float(d_held.median())
    return {
        "null_hypothesis": "generated images are no nearer to the training images than held-out real digits are",
        "fraction_nearer_train": prob,
        "n_nearer_train": int((d_fake < d_held.median()).sum()),
        "n": len(d_fake),
        "n_heldout": len(d_held),
        "p_value": float(mw.pvalue),
        "median_nn_train": float(d_fake.median()),
        "median_nn_heldout": float(d_held.median()),
        "near_copies": int((d_fake < copy_tol).sum()),
        "reference_size": len(x_train),
        "metric": "pixel L2 distance to the nearest training digit",
        "statistic": "P(generated image nearer its nearest training digit than a held-out real digit is), Mann-Whitney U/(n m)",
    }


# ------------------------------------------------------------------------------------- diversity

DIVERSITY_NEIGHBOURS = 64  # sorted neighbours kept per point; rows with no same-group hit are recomputed


def _within_group_nn(dist: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour distance of every point within its own group, for a batch of labellings.

    ``dist``/``idx`` (N, K) are each point's K nearest other points, sorted; ``labels`` (B, N) bool.
    The first sorted neighbour sharing the point's label is its within-group NN; a row whose K
    neighbours all lie in the other group (probability about 2^-K) is recomputed from ``z`` exactly.
    """
    same = labels[:, idx] == labels[:, :, None]  # (B, N, K)
    first = same.to(torch.uint8).argmax(-1)  # torch returns the first maximal index
    nn_d = dist.expand(labels.shape[0], -1, -1).gather(-1, first.unsqueeze(-1)).squeeze(-1)
    miss = ~same.any(-1)
    for b, i in miss.nonzero().tolist():
        d = torch.cdist(z[i : i + 1], z).squeeze(0)
        mask = labels[b] == labels[b, i]
        mask[i] = False
        nn_d[b, i] = d[mask].min()
    return nn_d


def diversity(
    fake: Any, real: Any, *, n_permutations: int = 999, alpha: float = 0.05, power: float = 0.8, seed: int = 0
) -> dict[str, Any]:
    """Are generated images nearer to each other (pixel L2) than real images are? Permutation test.

    Statistic: mean within-set nearest-neighbour distance of the real set minus that of the
    generated set, so that duplicates or a collapsed mode (distance ~0 to a twin) make it large.
    H0: generated and real images are exchangeable (same law); the permutation p-value
    (1 + #{T_perm >= T}) / (B + 1) is then exact at any sample size. Sets of different sizes are
    allowed: group sizes are kept by every permutation. The detectable effect (relative reduction of
    the mean NN distance at ``power``) uses the normal approximation of the permutation law.
    """
    x_fake, x_real = _images("fake", fake), _images("real", real)
    b = _validate.positive_int("n_permutations", n_permutations, minimum=19)
    alpha = _validate.probability("alpha", alpha)
    power = _validate.probability("power", power)
    seed = _validate.positive_int("seed", seed, minimum=0)
    if (b + 1) * alpha < 1:
        raise ParameterError(
            f"n_permutations={b} cannot reach alpha={alpha:g}: the smallest permutation p-value is "
            f"1/(n_permutations+1); use n_permutations >= {math.ceil(1 / alpha) - 1}"
        )
    n_f, n_r = len(x_fake), len(x_real)
    z = torch.cat([x_fake, x_real]).flatten(1).double()
    n = len(z)
    k = min(n - 1, DIVERSITY_NEIGHBOURS)
    # K nearest other points of every point, in chunks so that N = 4000 needs no N x N x D buffer.
    dists, idxs = [], []
    for c in torch.arange(n).split(500):
        d = torch.cdist(z[c], z)
        d[torch.arange(len(c)), c] = math.inf
        v, i = d.topk(k, dim=1, largest=False, sorted=True)
        dists.append(v)
        idxs.append(i)
    dist, idx = torch.cat(dists), torch.cat(idxs)

    def stat(labels: torch.Tensor) -> torch.Tensor:  # labels (B, N) bool: True = "generated" group
        nn_d = _within_group_nn(dist, idx, labels, z)
        lf = labels.double()
        return (nn_d * (1 - lf)).sum(1) / n_r - (nn_d * lf).sum(1) / n_f

    observed = torch.zeros(1, n, dtype=torch.bool)
    observed[0, :n_f] = True
    nn_obs = _within_group_nn(dist, idx, observed, z)[0]
    t_obs = float(nn_obs[n_f:].mean() - nn_obs[:n_f].mean())
    mean_real = float(nn_obs[n_f:].mean())
    if mean_real <= 0:
        raise DataError("real holds only identical images: its diversity is zero and the test has no scale")
    gen = make_generator(seed)
    perms = []
    for chunk in range(0, b, 64):
        m = min(64, b - chunk)
        order = torch.argsort(torch.rand(m, n, generator=gen, dtype=torch.float64), dim=1)
        lab = torch.zeros(m, n, dtype=torch.bool)
        lab.scatter_(1, order[:, :n_f], True)
        perms.append(stat(lab))
    t_perm = torch.cat(perms)
    # A permutation equal to the observed labelling must count as ">=", though its sums ran in another order.
    p = (1.0 + float((t_perm >= t_obs - 1e-12 * abs(t_obs)).sum())) / (b + 1.0)
    sd = float(t_perm.std())
    z_sum = float(scipy.stats.norm.isf(alpha) + scipy.stats.norm.ppf(power))
    dup_tol = 0.01 * float(nn_obs[n_f:].median())  # 1% of the real median: a near-duplicate
    return {
        "null_hypothesis": "generated and real images are exchangeable (generated images no nearer to each other)",
        "statistic": t_obs,
        "relative_reduction": t_obs / mean_real,
        "p_value": p,
        "mean_nn_generated": float(nn_obs[:n_f].mean()),
        "mean_nn_real": mean_real,
        "near_duplicates_generated": int((nn_obs[:n_f] < dup_tol).sum()),
        "near_duplicates_real": int((nn_obs[n_f:] < dup_tol).sum()),
        "detectable_relative_reduction": z_sum * sd / mean_real,
        "power": power,
        "alpha": alpha,
        "n": n_f,
        "n_real": n_r,
        "n_permutations": b,
        "seed": seed,
        "metric": "pixel L2 distance to the nearest other image of the same set",
    }


# ------------------------------------------------------------------------------------ full report


@dataclass
class QualityReport:
    """Every quality figure of one generator, JSON-able via ``to_dict``."""

    n: int
    seed: int
    device: str
    generator: str
    real_test_source: str
    real_train_source: str
    classifier: dict[str, Any]
    c2st: dict[str, Any]
    own_discriminator: dict[str, Any] | None
    frechet: dict[str, Any]
    kid: dict[str, Any]
    class_balance: dict[str, Any]
    memorisation: dict[str, Any]
    diversity: dict[str, Any] | None = None  # None when read from an older quality.json
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)

    def summary(self) -> str:
        """A one-screen human-readable summary."""
        c, fr, k, cb, mem = self.c2st, self.frechet, self.kid, self.class_balance, self.memorisation
        lines = [
            f"generator: {self.generator}   n={self.n}  seed={self.seed}  device={self.device}",
            (f"reference classifier: held-out accuracy {self.classifier['test_accuracy']:.4f} "
            f"(trained on {self.classifier['n_train']} digits{', cached' if self.classifier['from_cache'] else ''})"),
            (f"C2ST ({c['classifier']}): accuracy {c['accuracy']:.4f} [95% CI {c['ci_low']:.4f}, {c['ci_high']:.4f}], "
            f"p={c['p_value']:.3g}, AUC {c['auc']:.4f}, n_test={c['n_test']} "
            f"(detects accuracy >= 0.5+{c['detectable_epsilon']:.3f} with power {c['power']:g} at alpha {c['alpha']:g})"
            f" -> {'REJECTED' if c['rejected'] else 'not rejected'}"),
        ]
        if self.own_discriminator is not None:
            d = self.own_discriminator
            lines.append(f"GAN's own D: mean D(real)={d['mean_d_real']:.4f}  mean D(fake)={d['mean_d_fake']:.4f}")
        lines += [
            f"Fréchet distance (classifier features, N={fr['n']}): {fr['fd']:.4f}   real-vs-real floor: {fr['floor']:.4f}",
            (f"KID: {k['kid']:.5f} ± {k['se']:.5f} (s.e., {k['n_subsets']} disjoint subsets of {k['subset_size']})"
            f"   real-vs-real: {k['floor']:.5f} ± {k['floor_se']:.5f}"),
            (f"classes: {cb['counts']}  chi2={cb['chi2']:.1f} (dof {cb['dof']}), p={cb['p_value']:.3g}, "
            f"mean confidence {cb['mean_confidence']:.3f}"),
            (f"memorisation: P(generated nearer train than held-out real) = {mem['fraction_nearer_train']:.3f}, "
            f"p={mem['p_value']:.3g}, near copies {mem['near_copies']}"),
        ]
        if self.diversity is not None:
            dv = self.diversity
            lines.append(
                f"diversity: mean within-set NN distance {dv['mean_nn_generated']:.3f} generated vs "
                f"{dv['mean_nn_real']:.3f} real (reduction {dv['relative_reduction']:+.3f}), p={dv['p_value']:.3g}, "
                f"near duplicates {dv['near_duplicates_generated']}")
        lines += [
            f"time: {self.seconds.get('total', float('nan')):.1f} s",
        ]
        return "\n".join(lines)


@torch.no_grad()
def sample_images(generator: nn.Module, n: int, *, seed: int = 0, batch_size: int = 1000) -> torch.Tensor:
    """``n`` images (CPU, float32) from ``generator`` with noise from a seeded torch.Generator on its device."""
    n = _validate.positive_int("n", n)
    dev = next(generator.parameters()).device
    gen = make_generator(seed, dev)
    was = generator.training
    generator.eval()
    try:
        out = []
        for i in range(0, n, batch_size):
            z = sample_noise(min(batch_size, n - i), gen, dev)
            out.append(generator(z).cpu())
    finally:
        generator.train(was)
    imgs = torch.cat(out).float()
    if not torch.isfinite(imgs).all():
        raise DivergenceError("the generator produced non-finite images")
    return imgs


def evaluate_generator(
    generator: nn.Module | str | os.PathLike[str] | torch.Tensor,
    real_test: Any,
    real_train: Any,
    *,
    n: int = 2000,
    seed: int = 0,
    device: str | torch.device = "cpu",
    discriminator: nn.Module | None = None,
    epsilon: float = 0.05,
    alpha: float = 0.05,
    power: float = 0.8,
    c2st_classifier: str = "cnn",
    c2st_epochs: int = 10,
    kid_subsets: int = 10,
    classifier: TrainedClassifier | None = None,
    classifier_config: ClassifierConfig | None = None,
) -> QualityReport:
    """Every quality metric of a generator (module, checkpoint path, or a tensor of its images)."""
    t_start = time.perf_counter()
    n = _validate.positive_int("n", n, minimum=2 * kid_subsets)
    _validate.positive_int("seed", seed, minimum=0)
    dev = resolve_device(device)
    x_test, x_train = _images("real_test", real_test), _images("real_train", real_train)
    y_test, y_train = _labels(real_test), _labels(real_train)
    if y_train is None or y_test is None:
        raise DataError("real_test and real_train must carry labels (an MnistData from genbench.gan.data.load_mnist)")
    if len(x_test) < 2 * n:
        raise ParameterError(
            f"n={n} needs >= {2 * n} held-out real images (n for the comparison, n for the real-vs-real floor); "
            f"real_test has {len(x_test)}"
        )
    seconds: dict[str, float] = {}

    # The generator's images.
    t0 = time.perf_counter()
    desc: str | None = None
    if isinstance(generator, (str, os.PathLike)):
        from genbench.gan.train import (  # training sits below quality
            load_discriminator,
            load_generator,
        )

        desc = f"checkpoint {os.fspath(generator)}"
        if discriminator is None:
            discriminator = load_discriminator(generator, dev)
        generator = load_generator(generator, dev)
    if isinstance(generator, torch.Tensor):
        fake = _images("generated images", generator)
        if len(fake) < n:
            raise ParameterError(f"n={n} but only {len(fake)} generated images were given")
        fake = fake[:n]
        desc = desc or f"{n} given images"
    elif isinstance(generator, nn.Module):
        desc = desc or type(generator).__name__
        generator = generator.to(dev)
        fake = sample_images(generator, n, seed=seed)
    else:
        raise ParameterError(f"generator must be a module, a checkpoint path or an image tensor, got {type(generator).__name__}")
    seconds["generate"] = time.perf_counter() - t0

    # Held-out real: A (compared with the generated images) and B (real-vs-real floor), disjoint.
    perm = torch.randperm(len(x_test), generator=make_generator(seed))
    real_a, real_b = x_test[perm[:n]], x_test[perm[n:2 * n]]

    t0 = time.perf_counter()
    if classifier is None:
        classifier = reference_classifier(x_train, y_train, classifier_config or ClassifierConfig(), device=dev)
    clf_info = classifier.describe()
    clf_info["test_accuracy"] = classifier.accuracy(x_test, y_test)
    clf_info["n_test"] = len(x_test)
    seconds["classifier"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    c2 = c2st(
        real_a, fake, epsilon=epsilon, alpha=alpha, power=power, classifier=c2st_classifier,
        epochs=c2st_epochs, seed=seed, device=dev,
    ).to_dict()
    seconds["c2st"] = time.perf_counter() - t0

    own = discriminator_scores(discriminator.to(dev), real_a, fake) if discriminator is not None else None

    t0 = time.perf_counter()
    f_fake, p_fake = classifier.features_and_probabilities(fake)
    f_a = classifier.features(real_a)
    f_b = classifier.features(real_b)
    fd = frechet_distance(f_fake, f_a)
    floor = frechet_distance(f_b, f_a)
    frechet = {"fd": fd["fd"], "floor": floor["fd"], "n": n, "feature_dim": fd["dim"],
               "rank_generated": fd["rank_a"], "rank_real": fd["rank_b"]}
    kid = kernel_inception_distance(f_fake, f_a, n_subsets=kid_subsets, seed=seed)
    kid_floor = kernel_inception_distance(f_b, f_a, n_subsets=kid_subsets, seed=seed)
    kid.update(floor=kid_floor["kid"], floor_se=kid_floor["se"])
    # H0 for the class histogram: generated digits follow the class frequencies of the training digits.
    train_freq = torch.bincount(y_train, minlength=10).double()
    balance = class_histogram(p_fake, expected=(train_freq / train_freq.sum()).numpy())
    seconds["features"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    mem = memorisation(fake, x_train, real_b, seed=seed)
    seconds["memorisation"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    div = diversity(fake, real_a, alpha=alpha, power=power, seed=seed)
    seconds["diversity"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_start

    return QualityReport(
        n=n,
        seed=seed,
        device=str(dev),
        generator=desc,
        real_test_source=_source(real_test),
        real_train_source=_source(real_train),
        classifier=clf_info,
        c2st=c2,
        own_discriminator=own,
        frechet=frechet,
        kid=kid,
        class_balance=balance,
        memorisation=mem,
        diversity=div,
        seconds=seconds,
    )
