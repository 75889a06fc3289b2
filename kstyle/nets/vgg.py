"""Frozen VGG19 feature extractor for perceptual losses."""

import os

import keras

from kstyle.nets.pretrained import KERAS_APPLICATIONS_URL, load_application

# The file `keras.applications.VGG19(include_top=False, weights="imagenet")` downloads.
VGG19_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG19_WEIGHTS_URL = f"{KERAS_APPLICATIONS_URL}vgg19/{VGG19_WEIGHTS_FILE}"
# A local copy of that file, used for weights="imagenet" instead of Keras' download.
VGG19_WEIGHTS_ENV = "KSTYLE_VGG19_WEIGHTS"
# Per-channel means of ImageNet in BGR order on a 0-255 scale, those VGG was trained with.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="kstyle")
class VGGPreprocessing(keras.layers.Layer):
    """Maps RGB images in [-1, 1] to the input VGG was trained on ("caffe" mode).

    Rescales to [0, 255], reverses the channels to BGR and subtracts the ImageNet mean
    of each channel, as `keras.applications.vgg19.preprocess_input` does on [0, 255]
    RGB input.

    Args:
        **kwargs: Those of `keras.layers.Layer`.

    Example:

    >>> white = VGGPreprocessing()(keras.ops.ones((1, 1, 1, 3)))  # 255 less the BGR mean
    >>> [round(float(v), 3) for v in white.numpy().ravel()]
    [151.061, 138.221, 131.32]

    Reference:
        Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
        Recognition", ICLR 2015, https://arxiv.org/abs/1409.1556.
    """

    def call(self, inputs):
        bgr = keras.ops.flip((inputs + 1.0) * 127.5, axis=-1)
        return bgr - keras.ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=bgr.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def vgg19_network(weights) -> keras.Model:
    """``keras.applications.VGG19`` without its top, with the weights a user asked for
    (``None``/"random", "imagenet" or a file: see :func:`vgg19_features`)."""

    def build(weights):
        return keras.applications.VGG19(
            include_top=False, weights=weights, input_shape=(None, None, 3))

    return load_application(build, weights, name="VGG19", file=VGG19_WEIGHTS_FILE,
                            url_dir="vgg19", env=VGG19_WEIGHTS_ENV,
                            option="'kstyle stylize --vgg-weights PATH', or model.vgg_weights "
                                   "in a recipe")


def vgg19_features(
    layers: tuple[str, ...] = ("block3_conv1",),
    weights: str | os.PathLike | None = None,
    name: str = "vgg19_features",
) -> keras.Model:
    """Builds a frozen VGG19 that maps images to the activations of some of its layers.

    The model takes RGB images in [-1, 1], converts them to VGG's own input
    (`VGGPreprocessing`: [0, 255], BGR, ImageNet mean subtracted) and runs the
    convolutional part of `keras.applications.VGG19` up to the deepest requested layer.
    All its weights are frozen (`trainable=False`).

    Args:
        layers: Names of VGG19 layers whose outputs are returned, such as
            `"block3_conv1"` (after its ReLU, as Keras' VGG convs have the activation
            built in) or `"block2_pool"`.
        weights: `None` (or `"random"`) for random weights (tests); `"imagenet"` for the
            ImageNet weights, taken from the file named by the `KSTYLE_VGG19_WEIGHTS` environment
            variable when it is set, else from Keras' cache (`~/.keras/models/`), which
            Keras fills by downloading `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`
            when online; or the path to that file or to a `.weights.h5` file saved from
            `keras.applications.VGG19(include_top=False)`.
        name: Model name.

    Returns:
        A `keras.Model` mapping `(batch, H, W, 3)` images to a dict of feature maps keyed
        by layer name (a dict even for one layer, where a list would collapse to a
        tensor).

    Raises:
        ValueError: If `layers` is empty or names a layer VGG19 does not have.
        kstyle.errors.ModelLoadError: If the weights cannot be found or loaded; the
            message names the file to fetch and where to put it.

    Example:

    >>> features = vgg19_features(("block1_conv2", "block2_conv1"))
    >>> {k: f.shape for k, f in features(keras.ops.zeros((1, 32, 32, 3))).items()}
    {'block1_conv2': TensorShape([1, 32, 32, 64]), 'block2_conv1': TensorShape([1, 16, 16, 128])}

    Reference:
        Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
        Recognition", ICLR 2015, https://arxiv.org/abs/1409.1556; Johnson et al.,
        "Perceptual Losses for Real-Time Style Transfer and Super-Resolution", ECCV 2016,
        https://arxiv.org/abs/1603.08155.
    """
    layers = tuple(dict.fromkeys(layers))  # Drops repeats, keeps the order.
    if not layers:
        raise ValueError("layers must name at least one VGG19 layer.")
    vgg = vgg19_network(weights)
    known = [layer.name for layer in vgg.layers[1:]]
    unknown = [n for n in layers if n not in known]
    if unknown:
        raise ValueError(
            f"Unknown VGG19 layer(s) {', '.join(map(repr, unknown))}; valid layers are: "
            f"{', '.join(known)}.")

    # VGG19 is a chain: reapply its layers up to the deepest one asked for, so that the
    # unused tail is neither built nor saved.
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = VGGPreprocessing(name="preprocessing")(inputs)
    found = {}
    for layer in vgg.layers[1:]:
        x = layer(x)
        if layer.name in layers:
            found[layer.name] = x
            if len(found) == len(layers):
                break
    model = keras.Model(inputs, {n: found[n] for n in layers}, name=name)
    model.trainable = False
    return model
