"""genbench: validate and benchmark Langevin samplers and small generative models on CPU and GPU."""

__version__ = "0.1.0"
