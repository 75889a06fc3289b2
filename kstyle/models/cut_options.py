"""``[model]`` of ``kind = "cut"`` and ``kind = "fastcut"``: the only place their defaults
are written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kstyle.models import options as opt
from kstyle.models.options import ModelOptions, OptionError, option

#: The generator layers PatchNCE compares by default: the paper's five (the padded input,
#: the two downsampling convolutions, the first and the fifth residual block).
NCE_LAYERS = ["stem_pad", "down1_conv", "down2_conv", "block0_add", "block4_add"]

Init = Literal["normal", "xavier"]

# The fields FastCUT gives other defaults: one doc each.
LAMBDA_NCE = "weight of the PatchNCE loss between input and output"
NCE_IDT = ("also PatchNCE between a domain-B image and its translation (the identity term "
           "of CUT; FastCUT: false)")
FLIP = "flip half the inputs left-right and compare flipped features (FastCUT's regularizer)"


def encoder_layers(num_blocks: int) -> list[str]:
    """The names of the ResNet generator's encoder layers (``kstyle.nets.resnet``): the
    layers PatchNCE may sample."""
    names = [f"stem_{s}" for s in ("pad", "conv", "norm", "relu")]
    names += [f"down{i}_{s}" for i in (1, 2) for s in ("pad", "conv", "norm", "relu")]
    return names + [f"block{i}_{s}" for i in range(num_blocks)
                    for s in ("pad1", "conv1", "norm1", "relu", "pad2", "conv2", "norm2", "add")]


@dataclass(frozen=True)
class CUTOptions(ModelOptions):
    """``[model]`` for ``kind = "cut"``: one ResNet generator, one PatchGAN and a patchwise
    contrastive loss (Park et al. 2020), trained on unpaired domains A and B."""

    kind: str = opt.kind_option("cut")
    base_filters: int = option(64, "filters of the first generator layer", positive=True)
    num_blocks: int = option(9, "residual blocks of the generator: 9 for 256 px, 6 for 128 px",
                             low=0)
    norm: opt.Norm = opt.norm_option("instance")
    d_base_filters: int = opt.d_base_filters_option()
    d_layers: int = opt.d_layers_option()
    discriminator: opt.Discriminator = opt.discriminator_option()
    gan_mode: opt.GanMode = opt.gan_mode_option("lsgan")
    lambda_gan: float = option(1.0, "weight of the adversarial loss", low=0)
    lambda_nce: float = option(1.0, LAMBDA_NCE, low=0)
    nce_idt: bool = option(True, NCE_IDT)
    flip_equivariance: bool = option(False, FLIP)
    nce_layers: list[str] = option(list(NCE_LAYERS), "generator layers PatchNCE compares, "
                                   "by name", name=True)
    num_patches: int = option(256, "patches sampled per layer and image", positive=True)
    nce_temperature: float = option(0.07, "temperature of the PatchNCE softmax",
                                    positive=True)
    head_units: int = option(256, "width of the two-layer MLP head over sampled features",
                             positive=True)
    init: Init = option("xavier", "weight initialization: xavier (the CUT reference's) or "
                        "normal")
    init_gain: float = option(0.02, "gain (xavier) or standard deviation (normal) of the "
                              "initial weights", positive=True)

    model = "kstyle.models.cut:CUT"
    data_kind = "unpaired"

    def check(self, data) -> None:
        if data.image_size % 4:
            raise OptionError(f"data.image_size = {data.image_size} must be a multiple of 4")
        known = encoder_layers(self.num_blocks)
        for name in self.nce_layers:
            if name not in known:
                raise OptionError(
                    f"model.nce_layers: {name!r} is not an encoder layer of a generator of "
                    f"{self.num_blocks} blocks; expected names such as "
                    f"{', '.join(repr(n) for n in NCE_LAYERS[:4])} or 'block<i>_add' with "
                    f"i < {self.num_blocks}")
        if len(set(self.nce_layers)) != len(self.nce_layers):
            raise OptionError("model.nce_layers names a layer twice")


@dataclass(frozen=True)
class FastCUTOptions(CUTOptions):
    """``[model]`` for ``kind = "fastcut"``: CUT without the identity term, a stronger
    PatchNCE weight and flip equivariance (Park et al. 2020): about half CUT's step."""

    kind: str = opt.kind_option("fastcut")
    lambda_nce: float = option(10.0, LAMBDA_NCE, low=0)
    nce_idt: bool = option(False, NCE_IDT)
    flip_equivariance: bool = option(True, FLIP)
