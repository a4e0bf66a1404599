"""The assignment's MNIST GAN: an MLP generator and an MLP discriminator, exactly as specified."""

from __future__ import annotations

import torch
from torch import nn

LATENT_DIM = 100
IMAGE_SHAPE = (1, 28, 28)
IMAGE_PIXELS = 28 * 28
LEAKY_SLOPE = 0.2  # D's LeakyReLU negative slope


class Generator(nn.Module):
    """G: Linear(100,256)-ReLU-Linear(256,512)-ReLU-Linear(512,784)-Tanh, reshaped to (1, 28, 28)."""

    def __init__(self, latent_dim: int = LATENT_DIM) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 256),
            nn.ReLU(),
            nn.Linear(256, 512),
            nn.ReLU(),
            nn.Linear(512, IMAGE_PIXELS),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map noise of shape (B, latent_dim) to images of shape (B, 1, 28, 28) in [−1, 1]."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        return self.net(z).view(-1, *IMAGE_SHAPE)


class Discriminator(nn.Module):
    """D: Flatten-Linear(784,512)-LeakyReLU(0.2)-Linear(512,256)-LeakyReLU(0.2)-Linear(256,1)-Sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(IMAGE_PIXELS, 512),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Linear(512, 256),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Linear(256, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probability that each image of shape (B, 1, 28, 28) is real, shape (B, 1)."""
        return self.net(x)


def sample_noise(n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normal latent noise of shape (n, LATENT_DIM) (the seed's (B, 1, 100) bug fixed)."""
    return torch.randn(n, LATENT_DIM, generator=generator, device=device)
