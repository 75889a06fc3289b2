"""``[model]`` of ``kind = "cyclegan"``: the only place its defaults are written."""

from __future__ import annotations

from dataclasses import dataclass

from kstyle.models import options as opt
from kstyle.models.options import ModelOptions, OptionError, option


@dataclass(frozen=True)
class CycleGANOptions(ModelOptions):
    """``[model]`` for ``kind = "cyclegan"``: two ResNet generators + two PatchGANs
    (Zhu et al. 2017), trained on unpaired domains A and B."""

    kind: str = opt.kind_option("cyclegan")
    base_filters: int = option(64, "filters of the first generator layer", positive=True)
    num_blocks: int = option(9, "residual blocks per generator: 9 for 256 px, 6 for 128 px",
                             low=0)
    norm: opt.Norm = opt.norm_option("instance")
    dropout: float = opt.dropout_option(0.0, "inside the residual blocks")
    d_base_filters: int = opt.d_base_filters_option()
    d_layers: int = opt.d_layers_option()
    discriminator: opt.Discriminator = opt.discriminator_option()
    gan_mode: opt.GanMode = opt.gan_mode_option("lsgan")
    lambda_cycle: float = option(10.0, "weight of the cycle-consistency losses A->B->A, "
                                 "B->A->B", low=0)
    lambda_identity: float = option(0.5, "identity loss weight, relative to lambda_cycle "
                                    "(0 turns it off)", low=0)
    lambda_perceptual: float = option(0.0, "weight of the VGG19 perceptual cycle loss (0: off)",
                                      low=0)
    perceptual_layers: list[str] = option(["block3_conv1"], "VGG19 layers of the perceptual "
                                          "loss", name=True)
    vgg_weights: str = option("imagenet", "VGG19 weights: 'imagenet' (Keras cache, or the file "
                              "in $KSTYLE_VGG19_WEIGHTS), or a local .h5 file")
    pool_size: int = option(50, "history of generated images shown to the discriminators "
                            "(0: none)", low=0)

    model = "kstyle.models.cyclegan:CycleGAN"
    data_kind = "unpaired"

    def check(self, data) -> None:
        if data.image_size % 4:
            raise OptionError(f"data.image_size = {data.image_size} must be a multiple of 4")
        if self.lambda_perceptual > 0:
            opt.check_vgg_weights(self.vgg_weights)
