"""``[model]`` of the toy kind ``masked``: what a new kind's options file holds."""

from __future__ import annotations

from dataclasses import dataclass

from kstyle.models import options as opt
from kstyle.models.options import ModelOptions, option


@dataclass(frozen=True)
class MaskedOptions(ModelOptions):
    """``[model]`` for ``kind = "masked"``: a two-conv network that redraws the masked part
    of an image (a toy of a kind that takes an image and a mask)."""

    kind: str = opt.kind_option("masked")
    filters: int = option(8, "filters of the hidden conv", positive=True)

    model = "toy_kind.masked:Masked"
    data_kind = "paired"

    def stylize_arguments(self, data) -> str:
        return "--input mask=MASK"
