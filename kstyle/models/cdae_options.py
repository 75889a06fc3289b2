"""``[model]`` of ``kind = "cdae"``: the only place its defaults are written."""

from __future__ import annotations

from dataclasses import dataclass

from kstyle.models import options as opt
from kstyle.models.options import ModelOptions, option
from kstyle.models.pix2pix_options import check_unet_size


@dataclass(frozen=True)
class CDAEOptions(ModelOptions):
    """``[model]`` for ``kind = "cdae"``: cross-domain autoencoder GAN, two encoder-decoders
    + two PatchGANs trained on pairs both ways (a -> b and b -> a)."""

    kind: str = opt.kind_option("cdae")
    base_filters: int = option(64, "filters of the first generator layer", positive=True)
    num_downs: int = option(8, "encoder convs (decoder: num_downs - 1 deconvs + output): 8 "
                            "for 256 px; input side must be a multiple of 2**num_downs",
                            low=1, high=16)
    skips: bool = option(False, "U-Net skip connections (false: plain autoencoders)")
    norm: opt.Norm = opt.norm_option("instance")
    dropout: float = opt.dropout_option(0.0, "in the inner decoder blocks")
    d_base_filters: int = opt.d_base_filters_option()
    d_layers: int = opt.d_layers_option()
    discriminator: opt.Discriminator = opt.discriminator_option()
    gan_mode: opt.GanMode = opt.gan_mode_option("lsgan")
    lambda_target: float = option(100.0, "weight of the supervised L1 losses against the "
                                  "targets", low=0)
    lambda_recon: float = option(10.0, "weight of the reconstruction losses A->B->A, B->A->B",
                                 low=0)

    model = "kstyle.models.cdae:CDAE"
    data_kind = "paired"

    def check(self, data) -> None:
        check_unet_size(data, self.num_downs)
