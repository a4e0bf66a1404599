"""The GAN's own discriminator on held-out real and generated images: reported, never trusted.

It co-adapted with the generator, so it is a poor judge (Lopez-Paz & Oquab 2017); its mean outputs
show how training ended, nothing more. Not a registered metric: ``evaluate_generator`` reports it
only when a discriminator comes with the generator (a checkpoint).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from genbench.gan.metrics.base import as_images


@dataclass(frozen=True)
class DiscriminatorScores:
    """Mean output of a discriminator on real and on generated images."""

    mean_d_real: float
    mean_d_fake: float
    accuracy_at_half: float  # fraction of real scored > 1/2 and generated scored <= 1/2
    n_real: int
    n_fake: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)

    def summary_line(self) -> str:
        """One line for the printed summary."""
        return f"GAN's own D: mean D(real)={self.mean_d_real:.4f}  mean D(fake)={self.mean_d_fake:.4f} (not trusted)"


@torch.no_grad()
def discriminator_scores(discriminator: nn.Module, real: Any, fake: Any) -> DiscriminatorScores:
    """Mean output of a (GAN's own) discriminator on real and on generated images."""
    x_real, x_fake = as_images("real", real), as_images("fake", fake)
    dev = next(discriminator.parameters()).device
    was = discriminator.training
    discriminator.eval()
    try:
        dr = torch.cat([discriminator(c.to(dev)).cpu() for c in x_real.split(1000)]).double()
        df = torch.cat([discriminator(c.to(dev)).cpu() for c in x_fake.split(1000)]).double()
    finally:
        discriminator.train(was)
    return DiscriminatorScores(
        mean_d_real=float(dr.mean()),
        mean_d_fake=float(df.mean()),
        accuracy_at_half=float(((dr > 0.5).double().sum() + (df <= 0.5).double().sum()) / (len(dr) + len(df))),
        n_real=len(dr),
        n_fake=len(df),
    )
