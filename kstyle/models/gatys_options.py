"""The options of neural style transfer by optimization (Gatys et al.), in one place.

``kstyle stylize --style`` (each field is a command-line option), ``kstyle.stylize(...,
style=)`` / ``kstyle.transfer_style`` (each field is a keyword) and the
:class:`kstyle.models.gatys.Gatys` model all read their defaults from
:class:`GatysOptions`. Free of TensorFlow, so that ``kstyle stylize --help`` is instant.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kstyle.models.options import field_message, option

#: The style layers of Gatys et al.: the first conv of every VGG19 block.
STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
#: Where the optimization starts.
INITS = ("content", "noise", "style")


@dataclass(frozen=True)
class GatysOptions:
    """How one image is stylized by optimization; see :func:`kstyle.transfer_style`."""

    steps: int = option(300, "optimization steps (coarsest stage; finer stages run half as "
                        "many each)", low=1)
    size: int | None = option(512, "long side of the result in pixels (0 or none: the input's "
                              "own size); above start_size, runs coarse to fine", low=0)
    init: str = option("content", "image the optimization starts from: content, noise or "
                       "style")
    style_scale: float = option(1.0, "style resized to this fraction of the result's long "
                                "side (larger: bigger brush strokes)", positive=True)
    preserve_color: bool = option(False, "transfer on luminance only; keep the input's colors")
    content_weight: float = option(1e4, "alpha, weight of the content loss", low=0)
    style_weight: float = option(1e-2, "beta, weight of the style loss", low=0)
    tv_weight: float = option(1e7, "weight of the total variation (smoothness) loss", low=0)
    content_layer: str = option("block4_conv2", "VGG19 layer of the content loss (the "
                                "paper's; block5_conv2: TensorFlow tutorial's)", name=True)
    style_layers: list[str] = option(STYLE_LAYERS, "VGG19 layers of the style loss",
                                     name=True)
    style_layer_weights: list[float] | None = option(
        None, "weight of each style layer (none: equal, summing to 1)", low=0)
    lr: float = option(0.04, "Adam learning rate on the [-1, 1] pixel scale", positive=True)
    start_size: int = option(512, "long side of the coarsest stage (0: no coarse to fine)",
                             low=0)
    save_every: int = option(0, "also write every Nth step's image as a frame, to "
                             "OUT/<name>_frames/ (0: none; into transfer_style's frames=: "
                             "one per stage)", low=0)
    vgg_weights: str = option(
        "imagenet", "VGG19 weights: 'imagenet' (Keras' cache ~/.keras/models/, downloaded on "
        "first use, or $KSTYLE_VGG19_WEIGHTS), or a file "
        "(vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 or .weights.h5)")
    jit_compile: bool = option(False, "compile the optimization step with XLA")
    seed: int = option(0, "seed of the noise init", low=0)

    def problems(self) -> list[str]:
        """What is wrong with these options, each naming its option (empty: nothing)."""
        found = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            wrong_type = f.type in ("int", "int | None") and value is not None and (
                not isinstance(value, int) or isinstance(value, bool))
            message = (f"{f.name} = {value!r} must be a whole number" if wrong_type
                       else field_message(f.name, value, f.metadata))
            if message:
                found.append(message)
        if self.init not in INITS:
            found.append(f"init = {self.init!r}: expected one of {', '.join(INITS)}")
        return found
