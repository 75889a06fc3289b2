"""``[model]`` of ``kind = "pix2pix"``: the only place its defaults are written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kstyle.models.options import ModelOptions, OptionError, option


def check_unet_size(data, num_downs: int) -> None:
    """A U-Net of ``num_downs`` levels takes sides that are multiples of ``2**num_downs``."""
    multiple = 2**num_downs
    if data.image_size % multiple:
        raise OptionError(
            f"data.image_size = {data.image_size} must be a multiple of 2**model.num_downs = "
            f"{multiple} (lower model.num_downs or change the size)")


@dataclass(frozen=True)
class Pix2PixOptions(ModelOptions):
    """``[model]`` for ``kind = "pix2pix"``: U-Net generator + PatchGAN (Isola et al. 2017)."""

    kind: str = option("pix2pix", "which model to train (kstyle recipe keys --kind KIND)")
    base_filters: int = option(64, "filters of the first generator layer", positive=True)
    num_downs: int = option(8, "U-Net depth: 8 for 256 px, 7 for 128 px; input side must be "
                            "a multiple of 2**num_downs", low=1, high=16)
    norm: Literal["batch", "instance", "none"] = option("batch", "normalization layers")
    dropout: float = option(0.5, "dropout rate in the inner decoder blocks (0 turns it off)",
                            low=0, high=1, high_open=True)
    d_base_filters: int = option(64, "filters of the first discriminator layer", low=1)
    d_layers: int = option(3, "PatchGAN strided layers: 3 gives 70x70 patches", low=1)
    gan_mode: Literal["vanilla", "lsgan", "hinge"] = option("vanilla", "adversarial loss")
    lambda_l1: float = option(100.0, "weight of the L1 loss against the target", low=0)

    model = "kstyle.models.pix2pix:Pix2Pix"
    data_kind = "paired"

    def check(self, data) -> None:
        check_unet_size(data, self.num_downs)
