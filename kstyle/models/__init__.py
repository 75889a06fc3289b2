"""Model registry: one ``keras.Model`` subclass per training objective.

``KINDS`` maps each model kind to its options (``kstyle/models/<kind>_options.py``, free
of TensorFlow, so that recipes load and ``kstyle recipe keys`` answers without importing
Keras); each options class names its model class, imported when first used. The model
classes are importable from here as well (``from kstyle.models import Pix2Pix``).

Adding a model kind (README, "Adding a model kind"):
    1. ``kstyle/models/<kind>.py``: a :class:`kstyle.models.base.TranslationModel`
       subclass (its docstring lists what to write);
    2. ``kstyle/models/<kind>_options.py``: its options dataclass and checks;
    3. one line in ``KINDS`` below;
    4. a recipe in ``recipes/`` and a test file in ``tests/``.
"""

from kstyle.models.adain_options import AdaINOptions
from kstyle.models.cdae_options import CDAEOptions
from kstyle.models.cut_options import CUTOptions, FastCUTOptions
from kstyle.models.cyclegan_options import CycleGANOptions
from kstyle.models.fast_style_options import FastStyleOptions
from kstyle.models.pix2pix_options import Pix2PixOptions

#: Model kinds trained by ``kstyle fit``, by the name ``model.kind`` gives them.
#: (``Gatys`` optimizes one image, through ``kstyle stylize --style``, and has no recipe.)
KINDS = {"pix2pix": Pix2PixOptions, "cyclegan": CycleGANOptions, "cdae": CDAEOptions,
         "fast_style": FastStyleOptions, "adain": AdaINOptions, "cut": CUTOptions,
         "fastcut": FastCUTOptions}

#: The kind a recipe without ``model.kind`` trains.
DEFAULT_KIND = "pix2pix"

_CLASSES = {"Pix2Pix": "pix2pix", "CycleGAN": "cyclegan", "CDAE": "cdae",
            "FastStyle": "fast_style", "AdaIN": "adain", "CUT": "cut"}


def get_model_class(kind: str):
    """The model class registered under ``kind``; ValueError listing the valid kinds."""
    from kstyle.models.base import model_class

    try:
        options = KINDS[kind]
    except KeyError:
        raise ValueError(
            f"unknown model kind {kind!r}; valid kinds: {', '.join(sorted(KINDS))}"
        ) from None
    return model_class(options)


def get_inference(kind: str | None = None, network=None):
    """The :class:`kstyle.models.signature.Inference` of a model kind.

    Args:
        kind: the kind a run or an exported file records (None or unknown: not recorded).
        network: for a bare ``.keras`` file with no recorded kind, the loaded network:
            the first kind whose declaration accepts it (see ``Inference.accepts``).
    """
    from kstyle.models.signature import Inference

    if kind in KINDS:
        return get_model_class(kind).inference
    if network is not None:
        for name in KINDS:
            inference = get_model_class(name).inference
            if inference is not Inference and inference.accepts(network):
                return inference
    return Inference


def __getattr__(name):
    # Model classes import Keras (and TensorFlow): only when asked for.
    if name == "MODELS":
        return {kind: get_model_class(kind) for kind in KINDS}
    if name in _CLASSES:
        return get_model_class(_CLASSES[name])
    if name == "Gatys":
        from kstyle.models.gatys import Gatys

        return Gatys
    raise AttributeError(f"module 'kstyle.models' has no attribute {name!r}")


__all__ = ["CUT", "AdaIN", "CDAE", "KINDS", "MODELS", "CycleGAN", "FastStyle", "Gatys", "Pix2Pix",
           "get_inference", "get_model_class"]
