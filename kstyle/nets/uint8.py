"""The uint8 graph every trained network runs in at inference: uint8 images in and out.

``Uint8Translator`` wraps a network with what inference needs around it: pad the image to
the network's size multiple (by mirroring), map uint8 to [-1, 1], apply the input
derivation the model was trained with (gray, edges), run the network, map back to uint8
and crop to the input's size. ``kstyle.load`` runs it, and ``kstyle export`` writes
exactly this graph, so edge apps need no pre- or post-processing and every format
computes the same thing.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kstyle.data import derive as kderive
from kstyle.data import images as kimages


def mirror_pad_to(images: tf.Tensor, height, width) -> tf.Tensor:
    """Pads ``[N, H, W, C]`` at the bottom and right to ``height`` x ``width`` by mirroring.

    The image is continued as ``x, reversed(x), x, ...`` (numpy's ``"symmetric"``), so any
    amount of padding works, even more than the image's own size.
    """
    def along(x, size, axis):
        # Index i of the padded axis reads i mod 2n, folded back past the edge.
        n = tf.shape(x)[axis]
        i = tf.range(size) % (2 * n)
        return tf.gather(x, tf.where(i < n, i, 2 * n - 1 - i), axis=axis)

    # A gather keeps the channels known, which LiteRT's convolutions need.
    return along(along(images, height, 1), width, 2)


#: Sides are padded to at least this many pixels: the networks' reflection pads need maps
#: wider than the pad at their deepest level (a ResNet's residual blocks pad 1 pixel
#: after two stride-2 convs, AdaIN's decoder after three pools), which an image a few
#: pixels wide would not give. (A U-Net's size multiple is larger already.)
MIN_SIDE = 16


def prepare_input(images: tf.Tensor, size_multiple: int, input_transform: str) -> tf.Tensor:
    """uint8 ``[N, H, W, 3]`` -> the float network input: [-1, 1], mirror-padded to the
    size multiple (and to at least :data:`MIN_SIDE`), with the input derivation
    (``"gray"``, ``"edges"``) applied."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    m = size_multiple
    x = kimages.to_float(images)
    least = (MIN_SIDE + m - 1) // m * m
    x = mirror_pad_to(x, tf.maximum((height + m - 1) // m * m, least),
                      tf.maximum((width + m - 1) // m * m, least))
    if input_transform != "none":
        x = kderive.DERIVATIONS[input_transform](x)[0]
    return x


@keras.saving.register_keras_serializable(package="kstyle")
class Uint8Translator(keras.Model):
    """A translator network as a uint8 ``[N, H, W, 3]`` -> uint8 ``[N, H, W, 3]`` model.

    Args:
        network: maps float32 ``[N, H, W, 3]`` in [-1, 1] to the same.
        size_multiple: the network's height and width must be multiples of this.
        input_transform: ``"none"``, or a derivation of ``kstyle.data.derive.DERIVATIONS``
            (``"gray"``, ``"edges"``) applied to the input first.
        **kwargs: those of ``keras.Model``.

    Example:
        >>> serving = Uint8Translator(generator, size_multiple=256)
        >>> serving(np.zeros((1, 300, 200, 3), np.uint8)).shape
        TensorShape([1, 300, 200, 3])
    """

    def __init__(self, network, size_multiple=1, input_transform="none", **kwargs):
        super().__init__(**kwargs)
        if input_transform != "none" and input_transform not in kderive.DERIVATIONS:
            raise ValueError(f"unknown input_transform {input_transform!r}; expected none or "
                             f"one of {', '.join(kderive.DERIVATIONS)}")
        self.network = network
        self.size_multiple = int(size_multiple)
        self.input_transform = input_transform
        # Nothing of its own to build: the wrapped network comes built.
        self.built = True

    def call(self, images):
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        x = prepare_input(images, self.size_multiple, self.input_transform)
        y = self.network(x, training=False)
        return kimages.to_uint8(y[:, :height, :width, :])

    def get_config(self):
        config = super().get_config()
        config.update({
            "network": keras.saving.serialize_keras_object(self.network),
            "size_multiple": self.size_multiple,
            "input_transform": self.input_transform,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)
