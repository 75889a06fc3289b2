"""Translating the frames of a clip with instance-norm statistics held steady.

Run frame by frame, a network with instance normalization normalizes every frame by its
own statistics: a frame a little brighter or busier than the last gets its own contrast,
and the output flickers. Here each instance-norm layer normalizes by a running mean of
the statistics over the frames so far instead (exponentially weighted: the last
``window`` frames or so count), the way tiling holds them at the whole image's
(``kstyle.nets.tiling``). A scene's first frame sets them exactly, from its own pass;
each later frame runs once, with the held statistics, and the statistics its layers saw
update the running mean.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kstyle.data.images import to_uint8
from kstyle.nets.tiling import held_norms, norm_moments
from kstyle.nets.uint8 import prepare_input


class SteadyTranslator:
    """Translates uint8 frames one by one with running-mean instance-norm statistics.

    Args:
        network: a functional translator network, float [-1, 1] in and out.
        size_multiple: the network's sides must be multiples of this.
        input_transform: the input derivation (``"none"``, ``"gray"``, ``"edges"``).
        window: about how many frames the running mean spans (its weight is
            ``1 / window`` for the newest).

    Example:
        >>> steady = SteadyTranslator(generator, 4, window=8)
        >>> outs = [steady(frame, new_scene=(i == 0)) for i, frame in enumerate(frames)]
    """

    def __init__(self, network, size_multiple=1, input_transform="none", window=8):
        self.size_multiple, self.input_transform = int(size_multiple), input_transform
        self.weight = 1.0 / max(1.0, float(window))
        held, norms, self.measuring = held_norms(network)
        self.fixed = list(norms.values())
        # The held network also gives the inputs its norms saw, to update the mean with.
        self.network = held if self.measuring is None else keras.Model(
            held.inputs, [held.output, *[f.input for f in self.fixed]])
        self._run = tf.function(self._translate, reduce_retracing=True)
        self._measure = tf.function(self._statistics, reduce_retracing=True)
        self.held = False

    def _prepare(self, images):
        return prepare_input(images, self.size_multiple, self.input_transform)

    def _statistics(self, images):
        self.measuring(self._prepare(images), training=False)  # sets the norms' statistics

    def _translate(self, images):
        h, w = tf.shape(images)[1], tf.shape(images)[2]
        outputs = self.network(self._prepare(images), training=False)
        if self.measuring is None:
            return to_uint8(outputs[:, :h, :w, :]), []
        return to_uint8(outputs[0][:, :h, :w, :]), norm_moments(outputs[1:])

    def __call__(self, frame: np.ndarray, new_scene: bool = False) -> np.ndarray:
        """Translates one uint8 ``HxWx3`` frame; ``new_scene``: the statistics restart from
        this frame's own (a clip's first frame, or the first after a cut)."""
        batch = np.ascontiguousarray(frame)[None]
        if self.measuring is not None and (new_scene or not self.held):
            self._measure(batch)
            self.held = True
        out, seen = self._run(batch)
        for fixed, (mean, variance) in zip(self.fixed, seen):
            held = running_moments(fixed.mean.numpy(), fixed.variance.numpy(), mean.numpy(),
                                   variance.numpy(), self.weight)
            fixed.mean.assign(held[0])
            fixed.variance.assign(held[1])
        return out.numpy()[0]


def running_moments(mean, variance, new_mean, new_variance, weight):
    """The mean and variance of a mixture: the held statistics (weight ``1 - weight``)
    and a new frame's (``weight``), written without subtracting squares (which loses
    the variance to rounding where the mean is large)."""
    mixed = (1 - weight) * mean + weight * new_mean
    spread = (1 - weight) * variance + weight * new_variance
    return mixed, spread + weight * (1 - weight) * np.square(mean - new_mean)
