"""ImageNet-pretrained ``keras.applications`` networks, from Keras' cache or a local file."""

import os
from collections.abc import Callable
from pathlib import Path

import keras

from kstyle.errors import ModelLoadError

KERAS_APPLICATIONS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


def load_application(build: Callable[[str | None], keras.Model], weights, *, name: str,
                     file: str, url_dir: str, env: str, option: str = "") -> keras.Model:
    """Builds a ``keras.applications`` network with the weights a user asked for.

    Args:
        build: ``build(weights)`` returns the network; called with ``None`` or "imagenet".
        weights: ``None`` or ``"random"`` (random init, for tests); ``"imagenet"``: the file
            named by the environment variable ``env`` when set, else Keras' cache
            (``~/.keras/models/``, downloaded when online); or the path of that file or of
            a Keras ``.weights.h5`` file saved from the same network.
        name: the network's name, for messages.
        file: the weights file Keras downloads.
        url_dir: its folder under the keras-applications storage.
        env: the environment variable naming a local copy.
        option: how a user passes a path to the command at hand, for messages.

    Raises:
        ModelLoadError: the weights cannot be had (offline, no cache) or loaded; the
            message names the file to fetch, from where, and where to put it.
    """
    url = f"{KERAS_APPLICATIONS_URL}{url_dir}/{file}"
    if weights == "imagenet" and os.environ.get(env):
        weights = os.environ[env]
    if weights is None or weights == "random":
        return build(None)
    if weights == "imagenet":
        try:
            return build("imagenet")
        except Exception as error:
            how = f" ({option})" if option else ""
            raise ModelLoadError(
                f"Could not get the ImageNet weights of {name} ({error}). Download {file} "
                f"from {url} and put it in ~/.keras/models/ (or $KERAS_HOME/models/), or "
                f"pass its path as the weights{how}, or set {env} to its path."
            ) from error
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ModelLoadError(
            f"{name} weights file {str(path)!r} not found; expected {file} (from {url}) or a "
            f".weights.h5 file saved from the same keras.applications network.")
    model = build(None)
    try:
        model.load_weights(path)
    except Exception as error:
        raise ModelLoadError(f"Could not load {name} weights from {str(path)!r}: {error}") \
            from error
    return model
