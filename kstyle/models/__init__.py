"""Model registry: one ``keras.Model`` subclass per training objective.

Adding a model kind:
    1. a model file ``kstyle/models/<kind>.py`` with a ``keras.Model`` subclass that overrides
       ``train_step``, exposes ``translator`` and has a ``build_from_options(**options)``
       classmethod, a ``data_kind`` (``paired``, ``unpaired`` or ``images``) and, if its
       ``compile`` takes other optimizers than ``g_optimizer`` and ``d_optimizer``, their
       ``optimizer_names`` (a two-way model subclasses ``kstyle.models.two_way.TwoWayGAN``);
    2. one line in ``MODELS`` below;
    3. its ``[model]`` dataclass in ``kstyle/recipes.py`` (``MODEL_CONFIGS``);
    4. a recipe in ``recipes/`` and a test case in ``tests/``.
"""

from kstyle.models.cdae import CDAE
from kstyle.models.cyclegan import CycleGAN
from kstyle.models.fast_style import FastStyle
from kstyle.models.gatys import Gatys
from kstyle.models.pix2pix import Pix2Pix

#: Models trained by ``kstyle fit``. (``Gatys`` optimizes one image, through
#: ``kstyle stylize --style``, and has no recipe.)
MODELS = {"pix2pix": Pix2Pix, "cyclegan": CycleGAN, "cdae": CDAE, "fast_style": FastStyle}


def get_model_class(kind: str):
    """The model class registered under ``kind``; ValueError listing the valid kinds."""
    try:
        return MODELS[kind]
    except KeyError:
        raise ValueError(
            f"unknown model kind {kind!r}; valid kinds: {', '.join(sorted(MODELS))}"
        ) from None


__all__ = ["CDAE", "MODELS", "CycleGAN", "FastStyle", "Gatys", "Pix2Pix", "get_model_class"]
