"""The assignment's MNIST GAN: data (``data``), models (``models``), training with checkpoints
(``train``) and quality checks (``quality``, ``classifier``).

Submodules are imported explicitly (``from genbench.gan.data import load_mnist``) so that importing
one layer never pulls in the layers above it.
"""
