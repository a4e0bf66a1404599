"""The mutation catalogue: deliberately broken Langevin kernels and corrupted real-image sets.

Every statistical check in genbench must reject these (or the calibration table must say honestly
which check cannot, and why). A *kernel* is a ``Callable[[x, noise], x_next]`` on (chains, d)
tensors with ``noise`` standard normal of the same shape (the contract of
``genbench.langevin.ula.ula_kernel``); each mutant below is a small factory
``make(target, step_size, *, generator=None) -> kernel`` whose docstring names the bug it models.
Factories build a fresh kernel per run, so the few stateful mutants (a skipped first step, noise
drawn once) start clean each time. ``generator`` feeds only the MALA mutants' accept/reject
uniforms.

Image mutants draw ``n`` images from a pool of REAL held-out digits (or, for memorisation, from
the training digits) and corrupt them the way a broken generator would.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torchvision.transforms.functional import gaussian_blur

from genbench._validate import positive_int
from genbench.errors import ParameterError
from genbench.targets import Gaussian

Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
KernelFactory = Callable[..., Kernel]


# ---------------------------------------------------------------------------------------------
# Langevin kernel mutants. Each writes its (broken) update out in full, on purpose: a mutant that
# called the production step would change whenever the production code changed.
# ---------------------------------------------------------------------------------------------


def _score(target: Gaussian, x: torch.Tensor) -> torch.Tensor:
    return (target.mean - x) @ target.precision


def noise_sqrt_mu(target: Gaussian, step_size: float, *, generator: torch.Generator | None = None) -> Kernel:
    """Noise scaled by √μ instead of √(2μ): the chain is too narrow, stationary cov ≈ Σ/2."""
    mu = float(step_size)

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + mu * _score(target, x) + math.sqrt(mu) * noise

    return kernel


def score_sign_flipped(target: Gaussian, step_size: float, *, generator: torch.Generator | None = None) -> Kernel:
    """Score with the wrong sign, +Σ⁻¹(x − m): gradient ascent on the energy, x runs away."""
    mu = float(step_size)

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x - mu * _score(target, x) + math.sqrt(2 * mu) * noise

    return kernel


def cov_for_precision(target: Gaussian, step_size: float, *, generator: torch.Generator | None = None) -> Kernel:
    """Σ used where Σ⁻¹ belongs in the score, −Σ(x − m): wrong stationary covariance."""
    mu = float(step_size)
    cov = target.cov

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + mu * ((target.mean - x) @ cov) + math.sqrt(2 * mu) * noise

    return kernel


def half_drift(target: Gaussian, step_size: float, *, generator: torch.Generator | None = None) -> Kernel:
    """Drift μ/2·score with noise √(2μ) (a stray ½ from the SDE dx = ½∇log p dt + dW convention):
    stationary cov ≈ 2Σ."""
    mu = float(step_size)

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + 0.5 * mu * _score(target, x) + math.sqrt(2 * mu) * noise

    return kernel


def mean_dropped(target: Gaussian, step_size: float, *, generator: torch.Generator | None = None) -> Kernel:
    """Score −Σ⁻¹x instead of −Σ⁻¹(x − m): the chain targets a zero-mean Gaussian."""
    mu = float(step_size)

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + mu * (-x @ target.precision) + math.sqrt(2 * mu) * noise

    return kernel


def skipped_first_step(target: Gaussian, step_size: float, *, generator: torch.Generator | None = None) -> Kernel:
    """Off-by-one in time: the first call returns x unchanged (loop from t=1), so a run of T steps
    returns x_{T−1}. Visible only where the law still moves with t (small T)."""
    mu = float(step_size)
    state = {"calls": 0}

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        state["calls"] += 1
        if state["calls"] == 1:
            return x.clone()
        return x + mu * _score(target, x) + math.sqrt(2 * mu) * noise

    return kernel


def uniform_noise(target: Gaussian, step_size: float, *, generator: torch.Generator | None = None) -> Kernel:
    """Noise uniform on [−√3, √3] (mean 0, variance 1, like the Gaussian) instead of normal:
    right first two moments, wrong shape. Only a shape check at small T can see it; after many
    steps the sum of uniforms is Gaussian again (central limit theorem)."""
    mu = float(step_size)

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        # Φ(noise) is Uniform(0, 1) exactly, so the mutant keeps the caller's seeding.
        u = torch.special.ndtr(noise)
        return x + mu * _score(target, x) + math.sqrt(2 * mu) * (math.sqrt(3.0) * (2.0 * u - 1.0))

    return kernel


def rademacher_noise(target: Gaussian, step_size: float, *, generator: torch.Generator | None = None) -> Kernel:
    """Noise ±1 with equal probability (variance 1) instead of normal: right moments, discrete
    shape after one step; Gaussian again after many."""
    mu = float(step_size)

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        sign = torch.where(noise >= 0, torch.ones_like(noise), -torch.ones_like(noise))
        return x + mu * _score(target, x) + math.sqrt(2 * mu) * sign

    return kernel


def noise_shared_across_coords(
    target: Gaussian, step_size: float, *, generator: torch.Generator | None = None
) -> Kernel:
    """One normal draw broadcast to every coordinate (noise shaped (chains, 1)): perfectly
    correlated noise, the injected covariance is 2μ·11ᵀ instead of 2μI."""
    mu = float(step_size)

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + mu * _score(target, x) + math.sqrt(2 * mu) * noise[..., :1].expand_as(x)

    return kernel


def noise_shared_across_chains(
    target: Gaussian, step_size: float, *, generator: torch.Generator | None = None
) -> Kernel:
    """One noise vector broadcast to every chain (noise shaped (1, d)): the chains are copies of
    one another, so N chains carry the information of one."""
    mu = float(step_size)

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + mu * _score(target, x) + math.sqrt(2 * mu) * noise[:1].expand_as(x)

    return kernel


def noise_frozen_in_time(target: Gaussian, step_size: float, *, generator: torch.Generator | None = None) -> Kernel:
    """Noise drawn once before the loop and reused at every step: x_t converges to a random point
    m + Σ n √(2/μ) instead of diffusing; the covariance is far too large."""
    mu = float(step_size)
    state: dict[str, torch.Tensor] = {}

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        if "noise" not in state:
            state["noise"] = noise.clone()
        return x + mu * _score(target, x) + math.sqrt(2 * mu) * state["noise"]

    return kernel


def bfloat16_state(target: Gaussian, step_size: float, *, generator: torch.Generator | None = None) -> Kernel:
    """The step computed in bfloat16 (8-bit mantissa), as after a careless autocast: small steps
    μ·score are rounded away next to x. Harmless at large μ, biased at small μ."""
    mu = float(step_size)
    low = torch.bfloat16
    m16 = target.mean.to(low)
    p16 = target.precision.to(low)

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        x16 = x.to(low)
        step = mu * ((m16 - x16) @ p16) + math.sqrt(2 * mu) * noise.to(low)
        return (x16 + step).to(x.dtype)

    return kernel


def _mala_parts(target: Gaussian, mu: float, x: torch.Tensor, noise: torch.Tensor):  # type: ignore[no-untyped-def]
    y = x + mu * _score(target, x) + math.sqrt(2 * mu) * noise

    def log_q(to: torch.Tensor, frm: torch.Tensor) -> torch.Tensor:
        # log N(to; frm + μ score(frm), 2μ I) up to a constant that cancels in the ratio.
        diff = to - frm - mu * _score(target, frm)
        return -(diff * diff).sum(-1) / (4 * mu)

    return y, log_q


def _uniforms(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(x.shape[:-1], generator=generator, dtype=x.dtype, device=x.device)


def mala_always_accept(target: Gaussian, step_size: float, *, generator: torch.Generator | None = None) -> Kernel:
    """MALA whose accept/reject never rejects (acceptance ≡ 1): it is plain ULA, with ULA's O(μ)
    stationary bias, while reporting itself as exact."""
    mu = float(step_size)

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        y, _ = _mala_parts(target, mu, x, noise)
        return y

    return kernel


def mala_no_proposal_correction(
    target: Gaussian, step_size: float, *, generator: torch.Generator | None = None
) -> Kernel:
    """MALA accepting with min(1, π(y)/π(x)), the Metropolis ratio without the Langevin proposal
    densities q(x|y)/q(y|x): the kernel no longer leaves π invariant (biased at large μ)."""
    mu = float(step_size)

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        y, _ = _mala_parts(target, mu, x, noise)
        log_alpha = target.log_prob(y) - target.log_prob(x)
        accept = torch.log(_uniforms(x, generator)) < log_alpha
        return torch.where(accept.unsqueeze(-1), y, x)

    return kernel


def mala_inverted_accept(target: Gaussian, step_size: float, *, generator: torch.Generator | None = None) -> Kernel:
    """MALA with the comparison reversed (accept when u > α): moves towards improbable points."""
    mu = float(step_size)

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        y, log_q = _mala_parts(target, mu, x, noise)
        log_alpha = target.log_prob(y) - target.log_prob(x) + log_q(x, y) - log_q(y, x)
        accept = torch.log(_uniforms(x, generator)) > log_alpha
        return torch.where(accept.unsqueeze(-1), y, x)

    return kernel


@dataclass(frozen=True)
class KernelMutant:
    """A named broken kernel: ``make(target, step_size, generator=...)`` builds it; ``family`` is
    the sampler it impersonates ("ula" or "mala"); ``bug`` says what it models."""

    name: str
    family: str
    make: KernelFactory
    bug: str


def _entry(name: str, family: str, make: KernelFactory) -> KernelMutant:
    doc = (make.__doc__ or "").strip()
    return KernelMutant(name=name, family=family, make=make, bug=" ".join(doc.split()))


# The catalogue, in a fixed order (the table and the JSON follow it). The first three are the bugs
# named in issue 2.
KERNEL_MUTANTS: tuple[KernelMutant, ...] = (
    _entry("noise_sqrt_mu", "ula", noise_sqrt_mu),
    _entry("score_sign_flipped", "ula", score_sign_flipped),
    _entry("cov_for_precision", "ula", cov_for_precision),
    _entry("half_drift", "ula", half_drift),
    _entry("mean_dropped", "ula", mean_dropped),
    _entry("skipped_first_step", "ula", skipped_first_step),
    _entry("uniform_noise", "ula", uniform_noise),
    _entry("rademacher_noise", "ula", rademacher_noise),
    _entry("noise_shared_across_coords", "ula", noise_shared_across_coords),
    _entry("noise_shared_across_chains", "ula", noise_shared_across_chains),
    _entry("noise_frozen_in_time", "ula", noise_frozen_in_time),
    _entry("bfloat16_state", "ula", bfloat16_state),
    _entry("mala_always_accept", "mala", mala_always_accept),
    _entry("mala_no_proposal_correction", "mala", mala_no_proposal_correction),
    _entry("mala_inverted_accept", "mala", mala_inverted_accept),
)


def kernel_mutant(name: str) -> KernelMutant:
    """Look up a kernel mutant by name."""
    for m in KERNEL_MUTANTS:
        if m.name == name:
            return m
    raise ParameterError(f"kernel mutant must be one of {', '.join(m.name for m in KERNEL_MUTANTS)}; got {name!r}")


# ---------------------------------------------------------------------------------------------
# Image-set mutants for the GAN checks: a corrupted sample of n images in [−1, 1], shape (n,1,28,28).
# ---------------------------------------------------------------------------------------------

ImageFactory = Callable[..., torch.Tensor]


def _check_pool(images: torch.Tensor, labels: torch.Tensor, n: int) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1:] != (1, 28, 28):
        raise ParameterError(f"images must be a tensor of shape (N, 1, 28, 28), got {getattr(images, 'shape', None)}")
    if not isinstance(labels, torch.Tensor) or labels.shape != images.shape[:1]:
        raise ParameterError(f"labels must have shape ({images.shape[0]},), got {getattr(labels, 'shape', None)}")
    positive_int("n", n)


def _draw(images: torch.Tensor, n: int, generator: torch.Generator | None, name: str = "images") -> torch.Tensor:
    """n distinct images drawn uniformly at random (without replacement) from ``images``."""
    if images.shape[0] < n:
        raise ParameterError(f"{name} holds {images.shape[0]} images, fewer than n={n}")
    idx = torch.randperm(images.shape[0], generator=generator)[:n]
    return images[idx.to(images.device)]


def real_images(
    images: torch.Tensor,
    labels: torch.Tensor,
    n: int,
    *,
    generator: torch.Generator | None = None,
    train_images: torch.Tensor | None = None,
) -> torch.Tensor:
    """The correct input: n held-out real digits drawn at random without replacement."""
    _check_pool(images, labels, n)
    return _draw(images, n, generator)


def additive_noise(
    images: torch.Tensor,
    labels: torch.Tensor,
    n: int,
    *,
    generator: torch.Generator | None = None,
    train_images: torch.Tensor | None = None,
    sigma: float = 0.3,
) -> torch.Tensor:
    """Real digits plus N(0, σ²) pixel noise (σ = 0.3 on the [−1, 1] scale), clipped: a noisy generator."""
    x = real_images(images, labels, n, generator=generator)
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return (x + sigma * eps).clamp(-1.0, 1.0)


def blurred(
    images: torch.Tensor,
    labels: torch.Tensor,
    n: int,
    *,
    generator: torch.Generator | None = None,
    train_images: torch.Tensor | None = None,
    sigma: float = 1.0,
) -> torch.Tensor:
    """Real digits under a Gaussian blur (5×5 kernel, σ = 1 pixel): a generator without fine detail."""
    x = real_images(images, labels, n, generator=generator)
    # Clamped: the normalised kernel can round a flat −1 background to −1 − 1e−7.
    return gaussian_blur(x, kernel_size=[5, 5], sigma=[sigma, sigma]).clamp(-1.0, 1.0)


def missing_digit(
    images: torch.Tensor,
    labels: torch.Tensor,
    n: int,
    *,
    generator: torch.Generator | None = None,
    train_images: torch.Tensor | None = None,
    digit: int = 7,
) -> torch.Tensor:
    """Real digits with one class (7) never produced: partial mode dropping."""
    _check_pool(images, labels, n)
    return _draw(images[labels != digit], n, generator, name=f"images without digit {digit}")


def single_class(
    images: torch.Tensor,
    labels: torch.Tensor,
    n: int,
    *,
    generator: torch.Generator | None = None,
    train_images: torch.Tensor | None = None,
    digit: int = 1,
) -> torch.Tensor:
    """Real digits of one class only (all 1s): the generator collapsed onto a single mode."""
    _check_pool(images, labels, n)
    pool = images[labels == digit]
    idx = torch.randint(pool.shape[0], (n,), generator=generator)  # with replacement: a class may be < n
    return pool[idx.to(pool.device)]


def collapsed_class(
    images: torch.Tensor,
    labels: torch.Tensor,
    n: int,
    *,
    generator: torch.Generator | None = None,
    train_images: torch.Tensor | None = None,
    digit: int = 3,
) -> torch.Tensor:
    """Real digits where every 3 is the same image: one mode collapsed to a point, class balance intact."""
    _check_pool(images, labels, n)
    perm = torch.randperm(images.shape[0], generator=generator)[:n].to(images.device)
    x, y = images[perm].clone(), labels[perm]
    mask = y == digit
    if bool(mask.any()):
        x[mask] = x[mask][0]
    return x


def memorised(
    images: torch.Tensor,
    labels: torch.Tensor,
    n: int,
    *,
    generator: torch.Generator | None = None,
    train_images: torch.Tensor | None = None,
) -> torch.Tensor:
    """Exact copies of training digits instead of new ones: a generator that memorised its data.
    Same law as the held-out digits, so only a memorisation check (train vs held-out) sees it."""
    _check_pool(images, labels, n)
    if train_images is None:
        raise ParameterError("train_images is required by the 'memorised' image mutant")
    return _draw(train_images, n, generator, name="train_images")


@dataclass(frozen=True)
class ImageMutant:
    """A named corruption of a real-image sample: ``make(images, labels, n, generator=, train_images=)``."""

    name: str
    make: ImageFactory
    bug: str


def _image_entry(name: str, make: ImageFactory) -> ImageMutant:
    doc = (make.__doc__ or "").strip()
    return ImageMutant(name=name, make=make, bug=" ".join(doc.split()))


IMAGE_MUTANTS: tuple[ImageMutant, ...] = (
    _image_entry("additive_noise", additive_noise),
    _image_entry("blurred", blurred),
    _image_entry("missing_digit", missing_digit),
    _image_entry("single_class", single_class),
    _image_entry("collapsed_class", collapsed_class),
    _image_entry("memorised", memorised),
)


def image_mutant(name: str) -> ImageMutant:
    """Look up an image mutant by name."""
    for m in IMAGE_MUTANTS:
        if m.name == name:
            return m
    raise ParameterError(f"image mutant must be one of {', '.join(m.name for m in IMAGE_MUTANTS)}; got {name!r}")
