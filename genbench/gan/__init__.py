"""The assignment's MNIST GAN: data (``data``), models (``models``), training (``step``: the
training step; ``state``: config and progress; ``checkpoint``; ``outputs``: images and figures;
``train``: the epoch loop and ``train_gan``; ``ddp``: data-parallel training) and quality checks
(``quality``, ``classifier``).

Submodules are imported explicitly (``from genbench.gan.data import load_mnist``) so that importing
one layer never pulls in the layers above it.
"""
