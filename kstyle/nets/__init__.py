"""Network builders: functional `keras.Model`s taking plain keyword arguments.

Importing this package registers every custom layer, which loading a saved network needs.
"""

from kstyle.nets import adain, patch_nce, uint8  # noqa: F401  (register their layers)
from kstyle.nets.image_pool import ImagePool
from kstyle.nets.layers import (
    NORMS,
    BatchNormalization,
    DepthToSpace,
    Dropout,
    InstanceNormalization,
    ReflectionPadding2D,
    normalization,
)
from kstyle.nets.mobile import MOBILE_SIZE_MULTIPLE, mobile_stylizer
from kstyle.nets.patchgan import patchgan_discriminator
from kstyle.nets.resnet import RESNET_SIZE_MULTIPLE, resnet_generator
from kstyle.nets.unet import size_multiple, unet_generator
from kstyle.nets.vgg import vgg19_features

__all__ = [
    "MOBILE_SIZE_MULTIPLE",
    "NORMS",
    "RESNET_SIZE_MULTIPLE",
    "BatchNormalization",
    "DepthToSpace",
    "Dropout",
    "ImagePool",
    "InstanceNormalization",
    "ReflectionPadding2D",
    "mobile_stylizer",
    "normalization",
    "patchgan_discriminator",
    "resnet_generator",
    "size_multiple",
    "unet_generator",
    "vgg19_features",
]
