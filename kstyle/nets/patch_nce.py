"""What CUT's patchwise contrastive loss needs besides the loss itself: sampled patch
positions, the two-layer MLP head that projects each sampled feature, and the reference's
weight initializations."""

from __future__ import annotations

import keras
import tensorflow as tf

from kstyle.losses import l2_normalize
from kstyle.nets.layers import all_layers


def initialize(model: keras.Model, init: str = "xavier", gain: float = 0.02) -> None:
    """Sets every kernel of ``model`` (convolutions, transposed convolutions, dense
    layers) to fresh random values and every bias to zero, as the reference's
    ``init_weights`` does: ``"xavier"``, a normal of standard deviation
    ``gain * sqrt(2 / (fan_in + fan_out))`` (PyTorch's ``xavier_normal_``), or
    ``"normal"``, a normal of standard deviation ``gain``."""
    if init not in ("xavier", "normal"):
        raise ValueError(f"unknown init {init!r}; expected 'xavier' or 'normal'")
    for layer in all_layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        if init == "xavier":
            fill = keras.initializers.VarianceScaling(gain**2, "fan_avg", "untruncated_normal")
        else:
            fill = keras.initializers.RandomNormal(0.0, gain)
        kernel.assign(fill(kernel.shape, kernel.dtype))
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(tf.zeros(layer.bias.shape, layer.bias.dtype))


def patch_ids(features, num_patches: int):
    """``min(num_patches, H * W)`` distinct positions of a ``[N, H, W, C]`` feature map,
    drawn at random, as indices into its flattened ``H * W`` grid (one draw for the whole
    batch: every image is sampled at the same places)."""
    shape = tf.shape(features)
    positions = shape[1] * shape[2]
    return tf.random.shuffle(tf.range(positions))[:tf.minimum(num_patches, positions)]


def sample_patches(features, ids):
    """The features of ``[N, H, W, C]`` at positions ``ids`` (see :func:`patch_ids`):
    ``[N, P, C]``."""
    shape = tf.shape(features)
    flat = tf.reshape(features, [shape[0], shape[1] * shape[2], features.shape[-1]])
    return tf.gather(flat, ids, axis=1)


@keras.saving.register_keras_serializable(package="kstyle")
class PatchHead(keras.Model):
    """CUT's feature head: for each sampled layer, ``Dense(units) -> ReLU -> Dense(units)``
    then L2 normalization, applied to each sampled patch feature.

    The reference creates its MLPs on the first call, when it first sees the channel
    counts; here they are known from the generator's layers and given to the constructor.

    Args:
        channels: the channel count of each sampled layer, in order.
        units: the width of both dense layers (256 in the paper).
        **kwargs: those of ``keras.Model``.

    Example:
        >>> head = PatchHead([3, 128, 256])
        >>> [f.shape for f in head([tf.zeros((2, 256, c)) for c in (3, 128, 256)])]
        [TensorShape([2, 256, 256]), TensorShape([2, 256, 256]), TensorShape([2, 256, 256])]
    """

    def __init__(self, channels, units=256, **kwargs):
        super().__init__(**kwargs)
        self.channels = [int(c) for c in channels]
        self.units = int(units)
        self.first, self.second = [], []
        for i, c in enumerate(self.channels):
            self.first.append(keras.layers.Dense(self.units, activation="relu",
                                                 name=f"mlp{i}_dense1"))
            self.second.append(keras.layers.Dense(self.units, name=f"mlp{i}_dense2"))
            self.first[-1].build((None, None, c))
            self.second[-1].build((None, None, self.units))
        self.built = True

    def call(self, features):
        """``features``: one ``[N, P, C_i]`` tensor per layer; returns ``[N, P, units]``
        unit vectors (float32), one per layer."""
        return [l2_normalize(second(first(x)))
                for first, second, x in zip(self.first, self.second, features, strict=True)]

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels, "units": self.units})
        return config
