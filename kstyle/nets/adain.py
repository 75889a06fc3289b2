"""The networks of arbitrary style transfer by adaptive instance normalization (AdaIN).

The encoder is VGG19 up to ``relu4_1``, laid out as the AdaIN reference's
``vgg_normalised`` (a 1x1 conv that takes [0, 1] RGB to VGG's input, then reflection-padded
3x3 convs, max pools that keep a last odd row), so that it holds either Keras' ImageNet
VGG19 or the reference's own file; the decoder mirrors it with nearest-neighbour
upsampling and no normalization. :class:`AdaptiveInstanceNormalization` renormalizes
content features to a style's channel means and standard deviations.

Reference:
    Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance
    Normalization", ICCV 2017, https://arxiv.org/abs/1703.06868.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from kstyle.nets import layers as kl  # kstyle's own forms of Keras' layers (kl.Conv2D, ...)
from kstyle.nets.layers import NearestUpsampling2D, ReflectionPadding2D
from kstyle.nets.vgg import IMAGENET_BGR_MEAN, vgg19_network

#: The encoder layers whose outputs the style loss compares, in order; the last one is
#: the layer AdaIN works at.
ENCODER_OUTPUTS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
#: VGG19's convs up to relu4_1 (Keras' layer names), with "pool" where a max pool goes.
_ENCODER_PLAN = ("block1_conv1", "block1_conv2", "pool", "block2_conv1", "block2_conv2",
                 "pool", "block3_conv1", "block3_conv2", "block3_conv3", "block3_conv4",
                 "pool", "block4_conv1")
#: Image sides the encoder-decoder returns unchanged are multiples of this (three pools).
ADAIN_SIZE_MULTIPLE = 8
#: Added to each channel's variance before its square root, as in the reference.
EPSILON = 1e-5


def _relu_name(conv_name: str) -> str:
    block, conv = conv_name.removeprefix("block").split("_conv")
    return f"relu{block}_{conv}"


def channel_statistics(features, epsilon: float = EPSILON):
    """``(mean, std)`` of each channel over height and width, ``[N, 1, 1, C]`` float32
    (see :class:`ChannelStatistics`)."""
    ops = keras.ops
    x = ops.cast(features, "float32")
    mean = ops.mean(x, axis=(1, 2), keepdims=True)
    shape = ops.shape(x)
    count = ops.cast(shape[1] * shape[2], "float32")
    squares = ops.sum(ops.square(x - mean), axis=(1, 2), keepdims=True)
    variance = squares / ops.maximum(count - 1.0, 1.0)
    return mean, ops.sqrt(variance + epsilon)


@keras.saving.register_keras_serializable(package="kstyle")
class ChannelStatistics(keras.layers.Layer):
    """The mean and standard deviation of each channel of each image, over height and width.

    Returns ``[mean, std]``, each ``[N, 1, 1, C]`` float32. The variance is the unbiased
    one (over ``H * W - 1``), plus ``epsilon`` before the square root, as the AdaIN
    reference computes it (``torch.var``); a 1x1 map counts as ``H * W - 1 = 1``.

    Example:

    >>> mean, std = ChannelStatistics()(keras.ops.ones((2, 4, 4, 3)))
    >>> mean.shape, round(float(std[0, 0, 0, 0]), 5)
    (TensorShape([2, 1, 1, 3]), 0.00316)
    """

    def __init__(self, epsilon: float = EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, features):
        return list(channel_statistics(features, self.epsilon))

    def compute_output_shape(self, input_shape):
        shape = (input_shape[0], 1, 1, input_shape[-1])
        return [shape, shape]

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="kstyle")
class AdaptiveInstanceNormalization(keras.layers.Layer):
    """AdaIN: content features renormalized to a style's channel statistics.

    ``call([content, style_mean, style_std])`` returns
    ``(content - mean(content)) / std(content) * style_std + style_mean``, with the
    content's statistics from :class:`ChannelStatistics`; ``style_mean`` and
    ``style_std`` are ``[N, 1, 1, C]`` (or ``[1, 1, 1, C]``, one style for every image).
    float32 throughout.

    Example:

    >>> content = keras.random.normal((1, 8, 8, 4), seed=0)
    >>> out = AdaptiveInstanceNormalization()(
    ...     [content, keras.ops.full((1, 1, 1, 4), 2.0), keras.ops.full((1, 1, 1, 4), 3.0)])
    >>> round(float(keras.ops.mean(out)), 4)
    2.0
    """

    def __init__(self, epsilon: float = EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        content, style_mean, style_std = inputs
        content = keras.ops.cast(content, "float32")
        mean, std = channel_statistics(content, self.epsilon)
        return (content - mean) / std * keras.ops.cast(style_std, "float32") + \
            keras.ops.cast(style_mean, "float32")

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def _conv(x, filters: int, name: str):
    x = ReflectionPadding2D(1, name=f"{name}_pad")(x)
    # kstyle's Conv2D: the wider layers by Winograd's algorithm
    return kl.Conv2D(filters, 3, padding="valid", activation="relu", name=name)(x)


#: Filters of each VGG19 block, the encoder's at ``width = 1``.
_BLOCK_FILTERS = {"block1": 64, "block2": 128, "block3": 256, "block4": 512}


def adain_encoder(weights: str | os.PathLike | None = None, width: float = 1.0,
                  name: str = "adain_encoder") -> keras.Model:
    """VGG19 up to ``relu4_1``, frozen, as the AdaIN reference lays it out.

    Takes RGB images in [-1, 1]: scales them to [0, 1] (the reference's input), then a 1x1
    conv (``preprocess``) to VGG's own input, then VGG19's convs with reflection padding
    and its max pools (``"same"`` padding: a last odd row or column is pooled on its own,
    as PyTorch's ``ceil_mode=True`` does). With Keras' VGG19 weights the 1x1 conv holds
    VGG's "caffe" preprocessing (x 255, RGB -> BGR, ImageNet mean subtracted), exactly;
    from the reference's ``vgg_normalised.pth`` it holds that file's own.

    Args:
        weights: ``None``/``"random"`` (tests), ``"imagenet"`` (Keras' VGG19 weights, from
            its cache or ``$KSTYLE_VGG19_WEIGHTS``), or the path of a VGG19 weights file.
            (The AdaIN reference's ``vgg_normalised.pth`` is read by
            ``kstyle.importers.convert.read_adain_encoder`` into this same network.)
        width: multiplies every block's filters (random weights only; a ``.pth`` file
            gives its own): 1 is VGG19.
        name: model name.

    Returns:
        A frozen ``keras.Model`` from ``[N, H, W, 3]`` images to a dict of
        :data:`ENCODER_OUTPUTS` feature maps (``relu4_1``: ``[N, H/8, W/8, 512]``, sides
        rounded up).

    Example:

    >>> encoder = adain_encoder()
    >>> {k: tuple(v.shape) for k, v in encoder(keras.ops.zeros((1, 16, 16, 3))).items()}
    {'relu1_1': (1, 16, 16, 64), 'relu2_1': (1, 8, 8, 128), 'relu3_1': (1, 4, 4, 256), \
'relu4_1': (1, 2, 2, 512)}
    """
    if width != 1.0 and weights not in (None, "random"):
        raise ValueError(f"width {width} needs random weights: VGG19's are at width 1.")
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = keras.layers.Rescaling(0.5, offset=0.5, name="to_0_1")(inputs)
    x = keras.layers.Conv2D(3, 1, name="preprocess")(x)
    outputs, pools = {}, 0
    for step in _ENCODER_PLAN:
        if step == "pool":
            pools += 1
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{pools}")(x)
            continue
        filters = max(1, round(_BLOCK_FILTERS[step.split("_")[0]] * width))
        x = _conv(x, filters, step)
        relu = _relu_name(step)
        if relu in ENCODER_OUTPUTS:
            outputs[relu] = x
    encoder = keras.Model(inputs, outputs, name=name)
    if width == 1.0:
        vgg = vgg19_network(weights)
        for step in _ENCODER_PLAN:
            if step != "pool":
                encoder.get_layer(step).set_weights(vgg.get_layer(step).get_weights())
    # VGG's input from [0, 1] RGB: BGR[j] = 255 * RGB[2 - j] - mean[j].
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    for j in range(3):
        kernel[0, 0, 2 - j, j] = 255.0
    encoder.get_layer("preprocess").set_weights(
        [kernel, -np.asarray(IMAGENET_BGR_MEAN, np.float32)])
    encoder.trainable = False
    return encoder


#: The encoder's layers with weights, in the reference's order (its ``vgg[:31]``).
ENCODER_LAYERS = ("preprocess", *(step for step in _ENCODER_PLAN if step != "pool"))


#: The decoder's convs, from relu4_1 back to an image: (name, filters), "up" for a x2
#: nearest upsampling. The reference's own file maps onto these in order.
DECODER_PLAN = (("dec4_1", 256), "up", ("dec3_4", 256), ("dec3_3", 256), ("dec3_2", 256),
                ("dec3_1", 128), "up", ("dec2_2", 128), ("dec2_1", 64), "up",
                ("dec1_2", 64), ("dec1_1", 3))


def adain_decoder(width: float = 1.0, features: int = 512,
                  name: str = "adain_decoder") -> keras.Model:
    """The AdaIN decoder: ``relu4_1`` features back to an image.

    The encoder mirrored, as the reference builds it: reflection-padded 3x3 convs with
    ReLU (none after the last), a x2 nearest-neighbour upsampling before each of blocks 3,
    2 and 1, no normalization. The last conv gives the reference's [0, 1] scale; the model
    returns kstyle's [-1, 1] (not clipped).

    Args:
        width: multiplies every conv's filters but the last (1.0: the reference's 256,
            128, 64; lower for a lighter decoder).
        features: channels of its input (512: VGG19's relu4_1).
        name: model name.

    Returns:
        A ``keras.Model`` from ``[N, h, w, features]`` to ``[N, 8h, 8w, 3]``.

    Example:

    >>> adain_decoder(width=0.25)(keras.ops.zeros((1, 2, 3, 512))).shape
    TensorShape([1, 16, 24, 3])
    """
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}.")
    inputs = keras.Input(shape=(None, None, features), name="features")
    x, ups = inputs, 0
    for step in DECODER_PLAN:
        if step == "up":
            ups += 1
            x = NearestUpsampling2D(name=f"up{ups}")(x)
            continue
        layer_name, filters = step
        last = layer_name == DECODER_PLAN[-1][0]
        x = ReflectionPadding2D(1, name=f"{layer_name}_pad")(x)
        # kstyle's Conv2D: the wider layers by Winograd's algorithm, the last tap by tap
        x = kl.Conv2D(filters if last else max(1, round(filters * width)), 3,
                   activation=None if last else "relu", name=layer_name)(x)
    outputs = keras.layers.Rescaling(2.0, offset=-1.0, dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def adain_stylizer(encoder: keras.Model, decoder: keras.Model,
                   name: str = "adain_stylizer") -> keras.Model:
    """One pass of arbitrary style transfer: ``[content, style]`` images -> stylized image.

    ``decoder(AdaIN(encoder(content), statistics(encoder(style))))`` at ``relu4_1``, with the
    networks shared (not copied). Both inputs are [-1, 1] RGB of any size (a content side
    that is not a multiple of :data:`ADAIN_SIZE_MULTIPLE` comes back rounded up to one);
    the style batch holds one style per content image, or one for all.
    """
    content = keras.Input(shape=(None, None, 3), name="content")
    style = keras.Input(shape=(None, None, 3), name="style")
    style_mean, style_std = ChannelStatistics(name="style_statistics")(encoder(style)["relu4_1"])
    target = AdaptiveInstanceNormalization(name="adain")(
        [encoder(content)["relu4_1"], style_mean, style_std])
    return keras.Model([content, style], decoder(target), name=name)
