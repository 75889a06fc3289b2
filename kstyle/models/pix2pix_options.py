"""``[model]`` of ``kind = "pix2pix"``: the only place its defaults are written."""

from __future__ import annotations

from dataclasses import dataclass

from kstyle.models import options as opt
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

    kind: str = opt.kind_option("pix2pix")
    base_filters: int = option(64, "filters of the first generator layer", positive=True)
    num_downs: int = option(8, "U-Net depth: 8 for 256 px, 7 for 128 px; input side must be "
                            "a multiple of 2**num_downs", low=1, high=16)
    norm: opt.Norm = opt.norm_option("batch")
    dropout: float = opt.dropout_option(0.5, "in the inner decoder blocks")
    d_base_filters: int = opt.d_base_filters_option()
    d_layers: int = opt.d_layers_option()
    discriminator: opt.Discriminator = opt.discriminator_option()
    gan_mode: opt.GanMode = opt.gan_mode_option("vanilla")
    lambda_l1: float = option(100.0, "weight of the L1 loss against the target", low=0)

    model = "kstyle.models.pix2pix:Pix2Pix"
    data_kind = "paired"

    def check(self, data) -> None:
        check_unet_size(data, self.num_downs)
