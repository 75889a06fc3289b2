"""Network builders: functional `keras.Model`s taking plain keyword arguments.

Importing this package registers every custom layer, which loading a saved network needs.
"""

from kstyle.nets.image_pool import ImagePool
from kstyle.nets.layers import NORMS, Dropout, ReflectionPadding2D, normalization
from kstyle.nets.patchgan import patchgan_discriminator
from kstyle.nets.resnet import RESNET_SIZE_MULTIPLE, resnet_generator
from kstyle.nets.unet import size_multiple, unet_generator
from kstyle.nets.vgg import vgg19_features

__all__ = [
    "NORMS",
    "RESNET_SIZE_MULTIPLE",
    "Dropout",
    "ImagePool",
    "ReflectionPadding2D",
    "normalization",
    "patchgan_discriminator",
    "resnet_generator",
    "size_multiple",
    "unet_generator",
    "vgg19_features",
]
