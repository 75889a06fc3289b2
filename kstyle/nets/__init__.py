"""Network builders: functional `keras.Model`s taking plain keyword arguments."""

from kstyle.nets.layers import NORMS, normalization
from kstyle.nets.patchgan import patchgan_discriminator
from kstyle.nets.unet import size_multiple, unet_generator

__all__ = [
    "NORMS",
    "normalization",
    "patchgan_discriminator",
    "size_multiple",
    "unet_generator",
]
