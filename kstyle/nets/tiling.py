"""Translating images too large for one pass: overlapping tiles, feathered seams, and
instance-norm statistics of the whole image.

A network with instance normalization normalizes each feature map by its own mean and
variance; run tile by tile, every tile would get its own statistics and its own
brightness and contrast. Here the statistics come from the whole image instead: one pass
over a copy of the image downscaled to at most ``stats_size`` pixels measures, for every
instance-norm layer, the per-channel mean and variance of its input; then every tile runs
through the same network with those statistics fixed. Tiles overlap by ``overlap`` pixels
and are blended with linear ramps, so no seam shows. Memory is bounded by the tile size,
not the image size (besides the image itself, which the result may overwrite, and one
float32 band of tile rows).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kstyle.nets.layers import InstanceNormalization, portable_graph
from kstyle.nets.uint8 import prepare_input


@keras.saving.register_keras_serializable(package="kstyle")
class FixedInstanceNorm(keras.layers.Layer):
    """Instance normalization with given per-channel statistics (those of a whole image).

    Args:
        channels: number of channels.
        epsilon: as the instance-norm layer it replaces.
        **kwargs: those of ``keras.layers.Layer``.
    """

    def __init__(self, channels, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.epsilon = float(epsilon)
        self.mean = self.add_weight(shape=(self.channels,), initializer="zeros",
                                    trainable=False, name="mean")
        self.variance = self.add_weight(shape=(self.channels,), initializer="ones",
                                        trainable=False, name="variance")

    def call(self, inputs):
        x = tf.cast(inputs, "float32")
        y = (x - self.mean) * tf.math.rsqrt(self.variance + self.epsilon)
        return tf.cast(y, inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels, "epsilon": self.epsilon})
        return config


def _is_instance_norm(layer) -> bool:
    # kstyle's instance norm; or, in networks saved before it, a group norm with one group
    # per channel (-1 becomes the channel count when built) and no scale or offset.
    if isinstance(layer, InstanceNormalization):
        return True
    return (isinstance(layer, keras.layers.GroupNormalization)
            and layer.groups in (-1, layer.input.shape[-1])
            and not layer.center and not layer.scale)


class MeasuringNorm(keras.layers.Layer):
    """Instance normalization that records the statistics it normalizes with in a
    :class:`FixedInstanceNorm`'s variables: a statistics pass's stand-in for a norm.

    Measured where the norm computes them anyway, each norm's input is not also held for
    a separate moments branch beside the network: such a pass (a CycleGAN ResNet at
    1024 x 768) needs less of TensorFlow's allocator, which keeps its high-water mark for
    the rest of the process. The statistics are those ``tf.nn.moments`` gives.

    Args:
        fixed: the :class:`FixedInstanceNorm` whose ``mean`` and ``variance`` are set.
        **kwargs: those of ``keras.layers.Layer``.
    """

    def __init__(self, fixed, **kwargs):
        super().__init__(**kwargs)
        self.fixed = fixed

    def call(self, inputs):
        x = tf.cast(inputs, "float32")
        mean = tf.reduce_mean(x, axis=[0, 1, 2])
        centered = x - mean
        variance = tf.reduce_mean(tf.square(centered), axis=[0, 1, 2])
        self.fixed.mean.assign(mean)
        self.fixed.variance.assign(variance)
        return tf.cast(centered * tf.math.rsqrt(variance + self.fixed.epsilon), inputs.dtype)


def held_norms(network):
    """``(held, norms, measure)`` of a functional network: ``held``, the network with each
    instance norm replaced by a :class:`FixedInstanceNorm` (``norms``, by name; every
    other layer shared, the same weights), and ``measure``, a model that runs the
    original network as far as its last instance norm and sets each of ``norms`` to the
    statistics its norm saw (a :class:`MeasuringNorm` in its place; the outputs are not
    needed). A network without instance norms: ``(network, {}, None)``."""
    found = [layer for layer in network.layers if _is_instance_norm(layer)]
    if not found:
        return network, {}, None
    norms = {}

    def clone(layer):
        if layer in found:
            norms[layer.name] = FixedInstanceNorm(layer.input.shape[-1], layer.epsilon,
                                                  name=layer.name)
            return norms[layer.name]
        return layer

    def measuring(layer):
        return MeasuringNorm(norms[layer.name], name=layer.name) if layer in found else layer

    held = keras.models.clone_model(network, clone_function=clone)
    whole = keras.models.clone_model(network, clone_function=measuring)
    return held, norms, keras.Model(whole.inputs,
                                    [whole.get_layer(name).output for name in norms])


def norm_moments(inputs) -> list:
    """``[(mean, variance)]`` per channel of each tensor (what norms saw), float32."""
    inputs = inputs if isinstance(inputs, list | tuple) else [inputs]
    return [tf.nn.moments(tf.cast(x, "float32"), axes=[0, 1, 2]) for x in inputs]


class TiledTranslator:
    """Translates uint8 images of any size tile by tile, with whole-image norm statistics.

    Args:
        network: a functional translator network, float [-1, 1] in and out.
        size_multiple: the network's sides must be multiples of this.
        input_transform: the input derivation (``"none"``, ``"gray"``, ``"edges"``).
        tile: tile side in pixels (rounded up to a multiple of ``size_multiple``, and to
            at least twice the overlap plus one multiple).
        overlap: pixels shared by neighbouring tiles, blended linearly (rounded up to a
            multiple of ``size_multiple``).
        stats_size: long side of the downscaled copy the statistics are measured on.

    Example:
        >>> tiled = TiledTranslator(generator, size_multiple=4, tile=512)
        >>> out = tiled(np.zeros((4000, 6000, 3), np.uint8))
    """

    def __init__(self, network, size_multiple=1, input_transform="none", tile=512, overlap=64,
                 stats_size=1024):
        m = max(1, int(size_multiple))
        self.size_multiple = m
        self.tile, self.overlap = tile_geometry(tile, overlap, m)
        self.stats_size = int(stats_size)
        self.input_transform = input_transform
        self.network, self.norms, self.measuring = held_norms(network)
        self._run = tf.function(self._translate, reduce_retracing=True)
        self._measure = tf.function(self._statistics, reduce_retracing=True)

    def _prepare(self, images):
        return prepare_input(images, self.size_multiple, self.input_transform)

    def _translate(self, images):
        h, w = tf.shape(images)[1], tf.shape(images)[2]
        return self.network(self._prepare(images), training=False)[:, :h, :w, :]

    def _statistics(self, images):
        self.measuring(self._prepare(images), training=False)  # sets the norms' statistics

    def measure(self, image: np.ndarray) -> None:
        """Sets every instance norm's statistics from ``image`` (downscaled if large)."""
        if self.measuring is not None:
            # Traced with Keras' own convolutions: the one pass over the (large) copy is
            # the memory peak of a tiled image, and the Winograd form's compiled clusters
            # add about a third to it, for a pass that runs once per image.
            with portable_graph(None):
                self._measure(downscale(image, self.stats_size)[None])

    def __call__(self, image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Translates one uint8 ``HxWx3`` array; returns uint8 of the same shape
        (``out``, if given: ``image`` itself, say; see :func:`blend_tiles`)."""
        self.measure(image)
        return blend_tiles(image, self.tile, self.overlap, self.size_multiple,
                           lambda patch: self._run(patch[None]).numpy()[0],
                           finish=lambda band: np.clip(np.round((band + 1.0) * 127.5), 0,
                                                       255).astype(np.uint8), out=out)


def tile_geometry(tile: int, overlap: int, multiple: int) -> tuple[int, int]:
    """``(tile, overlap)`` rounded up to multiples of ``multiple``, the tile grown if need
    be so that neighbouring overlaps never meet.

    Tiles start on the network's stride grid (multiples of ``multiple``), so that each tile
    is sampled in the same phase as the whole image would be.
    """
    if tile < 1 or overlap < 0:
        raise ValueError(f"tile must be positive and overlap not negative, got {tile}, "
                         f"{overlap}")
    overlap = -(-int(overlap) // multiple) * multiple
    return max(-(-int(tile) // multiple) * multiple, 2 * overlap + multiple), overlap


def downscale(image: np.ndarray, long_side: int, rows: int = 32) -> np.ndarray:
    """A uint8 ``HxWx3`` image shrunk (antialiased) so that its longer side is at most
    ``long_side``, without a float copy of the whole: first the mean of each ``f x f``
    block (``f`` the whole factor it allows), ``rows`` block rows at a time, then the
    small rest by an antialiased bilinear resize."""
    h, w = image.shape[:2]
    if max(h, w) <= long_side:
        return image
    f = max(h, w) // long_side
    if f > 1:
        hh, ww = h // f * f, w // f * f  # a last part row or column of blocks is dropped
        blocks = np.empty((hh // f, ww // f, image.shape[-1]), np.float32)
        for top in range(0, hh // f, rows):
            band = image[top * f:min(hh, (top + rows) * f), :ww]
            blocks[top:top + band.shape[0] // f] = band.reshape(
                band.shape[0] // f, f, ww // f, f, -1).mean(axis=(1, 3), dtype=np.float32)
        image = blocks
    scale = long_side / max(image.shape[:2])
    size = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
    small = tf.image.resize(tf.cast(image[None], tf.float32), size, antialias=True)[0]
    return tf.cast(tf.clip_by_value(tf.round(small), 0, 255), tf.uint8).numpy()


#: Rows of a band divided and finished at a time by :func:`blend_tiles`.
BLEND_ROWS = 32


def blend_tiles(image: np.ndarray, tile: int, overlap: int, multiple: int,
                function, finish=None, out: np.ndarray | None = None) -> np.ndarray:
    """``function`` applied to overlapping tiles of ``image``, blended.

    ``function`` maps a uint8 ``h x w x 3`` tile (contiguous) to a float ``h x w x C``
    result; neighbouring results are mixed linearly over the ``overlap`` they share.
    Results are summed into a band of one row of tiles only: once a row of tiles is done,
    the rows above the next one are final, are divided by their weights, go through
    ``finish`` (float ``rows x W x C`` -> the output's dtype: uint8, say) and leave the
    band. So memory is the image, the output and one band, not a float copy of the whole.

    ``out``, if given, receives the result (``HxWxC`` of ``finish``'s dtype). It may be
    ``image`` itself: rows are written only once no tile reads them any more, so a large
    image and its result take the memory of one.

    Returns:
        ``HxWxC``: ``finish``'s dtype, or float32 without ``finish``; ``out`` if given.
    """
    h, w = image.shape[:2]
    tops = tile_origins(h, tile, tile - overlap, multiple)
    lefts = tile_origins(w, tile, tile - overlap, multiple)
    band = weight = None  # the rows top .. top + tile of a row of tiles, allocated once
    for i, top in enumerate(tops):
        for left in lefts:
            patch = np.ascontiguousarray(image[top:top + tile, left:left + tile])
            result = np.asarray(function(patch), np.float32)
            if band is None:
                band = np.zeros((min(tile, h), w, result.shape[-1]), np.float32)
                weight = np.zeros((min(tile, h), w, 1), np.float32)
            ramp = tile_weights(patch.shape[0], patch.shape[1], overlap, top > 0,
                                top + tile < h, left > 0, left + tile < w)
            rows, cols = slice(0, patch.shape[0]), slice(left, left + patch.shape[1])
            band[rows, cols] += result * ramp
            weight[rows, cols] += ramp
        # Rows above the next row of tiles get nothing more: divided by their weights and
        # finished a few at a time (a few rows of temporaries, not a band's).
        done = (tops[i + 1] if i + 1 < len(tops) else h) - top
        for r in range(0, done, BLEND_ROWS):
            rows = slice(r, min(done, r + BLEND_ROWS))
            blended = band[rows] / np.maximum(weight[rows], 1e-8)
            blended = finish(blended) if finish is not None else blended
            if out is None:
                out = np.empty((h, w, blended.shape[-1]), blended.dtype)
            out[top + rows.start:top + rows.stop] = blended
        # The rest of the band moves up to become the next row's first rows.
        keep = band.shape[0] - done
        band[:keep], weight[:keep] = band[done:], weight[done:]
        band[keep:], weight[keep:] = 0.0, 0.0
    return out


def tile_origins(size: int, tile: int, step: int, multiple: int = 1) -> list[int]:
    """Tile origins covering ``size``: every ``step``, then the first multiple of
    ``multiple`` from which a tile reaches the end (that tile may be shorter)."""
    if size <= tile:
        return [0]
    last = -(-(size - tile) // multiple) * multiple
    return sorted({*range(0, size - tile, step), last})


def tile_weights(h: int, w: int, overlap: int, top: bool, bottom: bool, left: bool,
                 right: bool) -> np.ndarray:
    """Blending weights of one tile: linear ramps over the overlaps it shares."""
    def ramp(n, start, end):
        r = np.ones(n, np.float32)
        if overlap:
            edge = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
            k = min(overlap, n)
            if start:
                r[:k] = np.minimum(r[:k], edge[:k])
            if end:
                r[n - k:] = np.minimum(r[n - k:], edge[::-1][overlap - k:])
        return r

    return (ramp(h, top, bottom)[:, None] * ramp(w, left, right)[None, :])[..., None]
