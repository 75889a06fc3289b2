"""``[model]`` of ``kind = "adain"``: the only place its defaults are written."""

from __future__ import annotations

from dataclasses import dataclass

from kstyle.models import options as opt
from kstyle.models.options import ModelOptions, OptionError, is_path, option

#: Image sides must be multiples of this (the encoder's three pools).
SIZE_MULTIPLE = 8


@dataclass(frozen=True)
class AdaINOptions(ModelOptions):
    """``[model]`` for ``kind = "adain"``: one network for any style (Huang & Belongie
    2017), trained on content photos (``[data]``) and paintings (``data.style_path``)."""

    kind: str = opt.kind_option("adain")
    content_weight: float = option(1.0, "weight of the content loss (relu4_1 against the "
                                   "AdaIN target)", low=0)
    style_weight: float = option(10.0, "weight of the style loss (channel means and stds at "
                                 "relu1_1 .. relu4_1; raise for more style)", low=0)
    decoder_width: float = option(1.0, "multiplies the decoder's filters (1: the paper's "
                                  "256/128/64; lower: lighter and faster)", positive=True,
                                  high=4)
    encoder_width: float = option(1.0, "the stylizer's encoder: 1 is VGG19 itself, frozen "
                                  "(the paper); lower (0.25: the light variant, for phones) "
                                  "trains an encoder of VGG19's layout with that share of "
                                  "its filters, beside the decoder, with VGG19 as the loss "
                                  "network", positive=True, high=1)
    vgg_weights: str = option("imagenet", "VGG19 weights of the frozen encoder: 'imagenet' "
                              "(Keras cache, or the file in $KSTYLE_VGG19_WEIGHTS), or a "
                              "local .h5 file")

    model = "kstyle.models.adain:AdaIN"
    data_kind = "styled"

    def stylize_arguments(self, data) -> str:
        from kstyle.data.layout import list_images

        return f"--style {list_images(data.style_path)[0]}"

    def check(self, data) -> None:
        if data.image_size % SIZE_MULTIPLE:
            raise OptionError(f"data.image_size = {data.image_size} must be a multiple of "
                              f"{SIZE_MULTIPLE}")
        opt.check_vgg_weights(self.vgg_weights)
        if not data.style_path:
            raise OptionError("data.style_path is empty; model.kind = 'adain' trains on a "
                              "folder of style images (paintings)")
        if not is_path(data.style_path, lambda p: p.is_dir()):
            raise OptionError(f"data.style_path = {data.style_path!r} is not a folder; "
                              "expected a folder of style images (paintings)")
