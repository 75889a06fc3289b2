"""Frozen InceptionV3 pool features, the embedding of FID and KID."""

import os

import keras

from kstyle.nets.pretrained import KERAS_APPLICATIONS_URL, load_application

# The file `keras.applications.InceptionV3(include_top=False, weights="imagenet")` downloads.
INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_WEIGHTS_URL = f"{KERAS_APPLICATIONS_URL}inception_v3/{INCEPTION_WEIGHTS_FILE}"
# A local copy of that file, used for weights="imagenet" instead of Keras' download.
INCEPTION_WEIGHTS_ENV = "KSTYLE_INCEPTION_WEIGHTS"
# InceptionV3's input side and the width of its average-pool features.
INCEPTION_SIZE = 299
INCEPTION_DIM = 2048


def _inception_v3(weights) -> keras.Model:
    def build(weights):
        return keras.applications.InceptionV3(
            include_top=False, weights=weights, pooling="avg",
            input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))

    return load_application(build, weights, name="InceptionV3", file=INCEPTION_WEIGHTS_FILE,
                            url_dir="inception_v3", env=INCEPTION_WEIGHTS_ENV,
                            option="'kstyle eval --inception-weights PATH'")


def inception_features(
    weights: str | os.PathLike | None = "imagenet",
    name: str = "inception_features",
) -> keras.Model:
    """Builds a frozen InceptionV3 mapping images to its 2048-d average-pool features.

    The model takes RGB images in [-1, 1] of any size, as every kstyle network does,
    which is also InceptionV3's own input range (`keras.applications.inception_v3.
    preprocess_input` maps [0, 255] to `x / 127.5 - 1`), so no other preprocessing is
    applied. Images are resized to 299x299 by bilinear interpolation with antialiasing
    (`keras.layers.Resizing(antialias=True)`, i.e. `tf.image.resize(..., antialias=True)`),
    then run through `keras.applications.InceptionV3(include_top=False, pooling="avg")`.
    All its weights are frozen (`trainable=False`).

    These are Keras' ImageNet weights, not the 2015 TensorFlow graph of the original FID
    code, and the resize differs from its: scores compare kstyle runs with each other,
    and published FIDs only approximately.

    Args:
        weights: `None` (or `"random"`) for random weights (tests; their scores mean
            nothing outside them); `"imagenet"` for the ImageNet weights, taken from the
            file named by the `KSTYLE_INCEPTION_WEIGHTS` environment variable when it is
            set, else from Keras' cache (`~/.keras/models/`), which Keras fills by
            downloading `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5` when
            online; or the path to that file or to a `.weights.h5` file saved from
            `keras.applications.InceptionV3(include_top=False)` (with or without pooling).
        name: Model name.

    Returns:
        A `keras.Model` mapping `(batch, H, W, 3)` images in [-1, 1] to `(batch, 2048)`
        float32 features.

    Raises:
        kstyle.errors.ModelLoadError: If the weights cannot be found or loaded; the
            message names the file to fetch, its URL and where to put it.

    Example:

    >>> features = inception_features(weights="random")
    >>> features(keras.ops.zeros((2, 32, 32, 3))).shape
    TensorShape([2, 2048])

    Reference:
        Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
        CVPR 2016, https://arxiv.org/abs/1512.00567; Heusel et al., "GANs Trained by a
        Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017,
        https://arxiv.org/abs/1706.08500 (the pool features as the FID embedding).
    """
    inception = _inception_v3(weights)
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = keras.layers.Resizing(INCEPTION_SIZE, INCEPTION_SIZE, interpolation="bilinear",
                              antialias=True, name="resize")(inputs)
    model = keras.Model(inputs, inception(x), name=name)
    model.trainable = False
    return model
