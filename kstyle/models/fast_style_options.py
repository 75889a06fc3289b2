"""``[model]`` of ``kind = "fast_style"``: the only place its defaults are written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kstyle.models import options as opt
from kstyle.models.options import ModelOptions, OptionError, option

#: Transformer networks by name: Johnson et al.'s, and a ~20x lighter one for phones.
NETWORKS = ("johnson", "mobile", "examples")


@dataclass(frozen=True)
class FastStyleOptions(ModelOptions):
    """``[model]`` for ``kind = "fast_style"``: a feed-forward stylizer for one style
    (Johnson et al. 2016), trained on content photos with VGG19 perceptual losses."""

    kind: str = opt.kind_option("fast_style")
    style: str = option("", "the style image: a file, or an http(s) URL fetched once into "
                        "Keras' cache")
    style_size: int | None = option(None, "resize the style's long side to this (none: as is)",
                                    positive=True)
    network: Literal["johnson", "mobile", "examples"] = option(
        "johnson", "the transformer: Johnson et al.'s; mobile, ~20x lighter, for phones "
        "(separable convs, three downsamplings); or examples, pytorch/examples' TransformerNet "
        "(reflection-padded downsampling, affine instance norm: what kstyle import makes of "
        "candy.pth & co.). upsample and norm apply to johnson only")
    base_filters: int = option(32, "filters of the transformer's first conv", positive=True)
    num_blocks: int = option(5, "residual blocks of the transformer", low=0)
    norm: opt.Norm = opt.norm_option("instance")
    upsample: Literal["resize", "deconv"] = option(
        "resize", "decoder upsampling: resize + conv (no checkerboard) or transposed convs")
    # Johnson et al.'s layers (VGG16 relu2_2 for content; relu1_2, relu2_2, relu3_3, relu4_3
    # for style), as the last conv of the same VGG19 blocks.
    content_layer: str = option("block2_conv2", "VGG19 layer of the content loss", name=True)
    style_layers: list[str] = option(["block1_conv2", "block2_conv2", "block3_conv4",
                                      "block4_conv4"], "VGG19 layers of the style loss",
                                     name=True)
    # 935 / C**2 for C channels. They turn the PyTorch example's weights (content 1e5, style
    # 1e10; VGG16 features of mean/std-normalized inputs, Gram matrices over C*H*W) into
    # kstyle's terms (VGG on 0-255 "caffe" inputs, about 57 times larger features; Gram
    # matrices over H*W), with content_weight 30 and style_weight 1.
    style_layer_weights: list[float] = option([0.23, 0.057, 0.014, 0.0036],
                                              "weight of each style layer", low=0)
    content_weight: float = option(30.0, "weight of the content loss", low=0)
    style_weight: float = option(1.0, "weight of the style loss (raise for more style)", low=0)
    tv_weight: float = option(0.0, "weight of the total variation loss (0: off)", low=0)
    vgg_weights: str = option("imagenet", "VGG19 weights: 'imagenet' (Keras cache, or the file "
                              "in $KSTYLE_VGG19_WEIGHTS), or a local .h5 file")

    model = "kstyle.models.fast_style:FastStyle"
    data_kind = "images"

    def check(self, data) -> None:
        if data.image_size % 4:
            raise OptionError(f"data.image_size = {data.image_size} must be a multiple of 4")
        opt.check_vgg_weights(self.vgg_weights)
        if not self.style.startswith(("http://", "https://")) and not opt.is_path(self.style):
            what = "is empty" if not self.style else f"= {self.style!r} is not a file"
            raise OptionError(f"model.style {what}; expected the path (or http(s) URL) of the "
                              "style image")
        if len(self.style_layer_weights) != len(self.style_layers):
            raise OptionError(
                f"model.style_layer_weights has {len(self.style_layer_weights)} values; "
                f"expected one per model.style_layers entry ({len(self.style_layers)})")
