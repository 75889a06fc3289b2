"""Arbitrary style transfer at inference: an AdaIN run, a content image and style images.

:class:`ArbitraryStylizer` is what ``kstyle.load`` returns for a run of model kind
``adain``. It runs two graphs: one encodes a style image to its ``relu4_1`` channel
statistics (:class:`StyleCode`), the other stylizes a uint8 content image with given
statistics (mirror-padded to a multiple of 8 and cropped back). A style is encoded once
and reused for every content image; several styles mix by weighting their statistics;
``strength`` blends the AdaIN target with the content's own features.

Reference:
    Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance
    Normalization", ICCV 2017, https://arxiv.org/abs/1703.06868 (sections 7.1-7.3: the
    content-style trade-off, style interpolation, colour control).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from kstyle.data import images as kimages
from kstyle.errors import StyleOptionError
from kstyle.nets.adain import ADAIN_SIZE_MULTIPLE, EPSILON, channel_statistics
from kstyle.serving import prepare_input
from kstyle.tiling import blend_tiles, tile_geometry, tile_origins

#: A style image's shorter side is resized to this before encoding (as the reference's
#: test script does; 0 keeps its size).
STYLE_SIZE = 512


@dataclasses.dataclass(frozen=True)
class StyleCode:
    """A style as the stylizer uses it: channel means and standard deviations of its
    ``relu4_1`` features, float32 ``[1, 1, 1, 512]`` each."""

    mean: np.ndarray
    std: np.ndarray

    @staticmethod
    def mix(codes: list[StyleCode], weights) -> StyleCode:
        """The weighted mean of several styles' statistics (weights normalized to sum 1)."""
        w = np.asarray(weights, np.float32) / float(np.sum(weights))
        return StyleCode(sum(wi * c.mean for wi, c in zip(w, codes)),
                         sum(wi * c.std for wi, c in zip(w, codes)))


def match_colors(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The style image recoloured to the content's colour mean and covariance (uint8).

    Colour control as the AdaIN paper does it: a linear map of the style's RGB pixels
    that gives them the content's mean and 3x3 covariance (whitening by the style's
    covariance, colouring by the content's).
    """
    s = style.reshape(-1, 3).astype(np.float64) / 255.0
    c = content.reshape(-1, 3).astype(np.float64) / 255.0

    def sqrt_and_inverse(cov):
        values, vectors = np.linalg.eigh(cov + 1e-5 * np.eye(3))
        values = np.maximum(values, 1e-8)
        return ((vectors * np.sqrt(values)) @ vectors.T,
                (vectors / np.sqrt(values)) @ vectors.T)

    _, style_inverse = sqrt_and_inverse(np.cov(s, rowvar=False))
    content_sqrt, _ = sqrt_and_inverse(np.cov(c, rowvar=False))
    mapped = (s - s.mean(axis=0)) @ style_inverse.T @ content_sqrt.T + c.mean(axis=0)
    return np.clip(np.round(mapped * 255.0), 0, 255).astype(np.uint8).reshape(style.shape)


class ArbitraryStylizer:
    """An AdaIN run ready to stylize images of any size in the style of any image.

    Large images (more than ``TILE_ABOVE`` pixels, or any larger than ``tile`` when it is
    set) are stylized in overlapping tiles, each renormalized with the content statistics
    of the whole image (:meth:`content_statistics`), so that memory stays bounded and the
    tiles match.

    Args:
        model: the run's stylizer (``translator.keras``: ``[content, style]`` -> image),
            whose ``adain_encoder`` and ``decoder`` layers are used.
        info: the run's ``run.json``.
        tile: tile side in pixels (None: 512 above ``TILE_ABOVE`` pixels; 0: never).

    Example:
        >>> stylizer = kstyle.load("saved_models/adain")
        >>> out = stylizer(photo, style="the_scream.jpg", strength=0.8)
        >>> code = stylizer.encode_style("the_scream.jpg")    # encode once ...
        >>> outs = [stylizer(p, style=code) for p in photos]  # ... reuse for many
    """

    #: Content images with more pixels than this are stylized in tiles when ``tile`` is
    #: None.
    TILE_ABOVE = 2048 * 2048

    def __init__(self, model, info: dict | None = None, *, tile: int | None = None):
        self.model = model
        self.info = dict(info or {})
        self.size_multiple = int(self.info.get("size_multiple") or ADAIN_SIZE_MULTIPLE)
        self.encoder = model.get_layer("adain_encoder")
        self.decoder = model.get_layer("decoder")
        self.tile = tile
        self._encode = tf.function(self._encode_graph, reduce_retracing=True)
        self._stylize = tf.function(self._stylize_graph, reduce_retracing=True)
        self._features = tf.function(self._features_graph, reduce_retracing=True)
        self._codes: dict = {}

    def style_statistics(self, styles):
        """``(mean, std)`` of float ``[N, H, W, 3]`` style images in [-1, 1] at relu4_1."""
        return channel_statistics(self.encoder(styles, training=False)["relu4_1"])

    def stylize_float(self, content, mean, std, strength=1.0, content_statistics=None):
        """The network itself: float ``[N, H, W, 3]`` content in [-1, 1] (sides multiples of
        8) with a style's statistics -> float stylized images (not clipped).

        ``content_statistics``: ``(mean, std)`` to renormalize the content features with
        instead of their own (a tile's, with the whole image's).
        """
        features = tf.cast(self.encoder(content, training=False)["relu4_1"], tf.float32)
        content_mean, content_std = (content_statistics if content_statistics is not None
                                     else channel_statistics(features))
        target = (features - content_mean) / content_std * std + mean
        target = strength * target + (1.0 - strength) * features
        return self.decoder(target, training=False)

    def _encode_graph(self, images):
        return self.style_statistics(kimages.to_float(images))

    def _stylize_graph(self, images, mean, std, strength, content_mean=None,
                       content_std=None):
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        x = prepare_input(images, self.size_multiple, "none")
        given = None if content_mean is None else (content_mean, content_std)
        return kimages.to_uint8(
            self.stylize_float(x, mean, std, strength, given)[:, :height, :width])

    def _features_graph(self, images):
        x = prepare_input(images, self.size_multiple, "none")
        return tf.cast(self.encoder(x, training=False)["relu4_1"], tf.float32)

    def content_statistics(self, content: np.ndarray, tile: int, overlap: int):
        """``(mean, std)`` of a uint8 image's relu4_1 features, ``[1, 1, 1, C]`` each, as
        :func:`channel_statistics` gives them for the whole image, gathered tile by tile:
        each feature from the tile that holds it farthest from an edge (the middle of each
        overlap divides two tiles), summed in float64."""
        m = self.size_multiple  # also the encoder's stride: a feature per m x m pixels
        step = tile - overlap

        def cuts(size):  # [0, middles of the overlaps (multiples of m), size]
            origins = tile_origins(size, tile, step, m)
            return origins, [0, *((b + min(a + tile, size)) // 2 // m * m
                                  for a, b in zip(origins, origins[1:])), size]

        (tops, rows), (lefts, cols) = cuts(content.shape[0]), cuts(content.shape[1])
        total, squares, count = 0.0, 0.0, 0
        for i, top in enumerate(tops):
            for j, left in enumerate(lefts):
                patch = np.ascontiguousarray(content[top:top + tile, left:left + tile])
                features = self._features(patch[None]).numpy()[0].astype(np.float64)
                own = features[(rows[i] - top) // m:-(-(rows[i + 1] - top) // m),
                               (cols[j] - left) // m:-(-(cols[j + 1] - left) // m)]
                total = total + own.sum(axis=(0, 1))
                squares = squares + np.square(own).sum(axis=(0, 1))
                count += own.shape[0] * own.shape[1]
        mean = total / count
        variance = np.maximum(squares - count * np.square(mean), 0.0) / max(count - 1, 1)
        return (mean.reshape(1, 1, 1, -1).astype(np.float32),
                np.sqrt(variance + EPSILON).reshape(1, 1, 1, -1).astype(np.float32))

    def _tiled(self, content: np.ndarray, code: StyleCode, strength: float, tile: int):
        # Each tile renormalized with the whole image's content statistics (a tile's own
        # would give each tile its own contrast), blended over the overlaps.
        tile, overlap = tile_geometry(tile, min(64, tile // 4), self.size_multiple)
        content_mean, content_std = self.content_statistics(content, tile, overlap)
        strength = tf.constant(strength)
        out = blend_tiles(content, tile, overlap, self.size_multiple, lambda patch: self._stylize(
            patch[None], code.mean, code.std, strength, content_mean, content_std).numpy()[0])
        return np.clip(np.round(out), 0, 255).astype(np.uint8)

    def encode_style(self, style, *, style_size: int = STYLE_SIZE, like=None) -> StyleCode:
        """Encodes one style image (array, PIL image or path) to its :class:`StyleCode`.

        Args:
            style: the style image.
            style_size: resize its shorter side to this first (0: as it is).
            like: a uint8 content image whose colours the style takes first
                (:func:`match_colors`; ``preserve_color``).
        """
        from kstyle.api import unpack_image

        rgb = unpack_image(style)[0]
        if like is not None:
            rgb = match_colors(rgb, like)
        x = tf.convert_to_tensor(rgb[None])
        if style_size and min(rgb.shape[:2]) != style_size:
            scale = style_size / min(rgb.shape[:2])
            size = (max(1, round(rgb.shape[0] * scale)), max(1, round(rgb.shape[1] * scale)))
            x = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(
                tf.cast(x, tf.float32), size, antialias=True)), 0, 255), tf.uint8)
        mean, std = self._encode(x)
        return StyleCode(np.asarray(mean), np.asarray(std))

    def _code(self, style, style_size: int, like) -> StyleCode:
        if isinstance(style, StyleCode):
            return style
        if like is not None or not isinstance(style, str | os.PathLike):
            return self.encode_style(style, style_size=style_size, like=like)
        key = (os.fspath(style), style_size)  # a file is encoded once
        if key not in self._codes:
            self._codes[key] = self.encode_style(style, style_size=style_size)
        return self._codes[key]

    def stylize_array(self, content: np.ndarray, style, *, blend=None, strength: float = 1.0,
                      preserve_color: bool = False, style_size: int = STYLE_SIZE) -> np.ndarray:
        """Stylizes one uint8 ``HxWx3`` array; returns uint8 of the same shape.

        Args:
            content: the content image.
            style: a style image (array, PIL image, path) or :class:`StyleCode`, or a list.
            blend: with several styles, the weight of each (default equal).
            strength: 1 is the full style, 0 the content as the decoder renders it.
            preserve_color: give each style the content's colours first (a style code
                cannot be recoloured: pass images).
            style_size: see :meth:`encode_style`.
        """
        styles = list(style) if isinstance(style, list | tuple) else [style]
        check_options(styles, blend, strength)
        if preserve_color and any(isinstance(s, StyleCode) for s in styles):
            raise StyleOptionError("preserve_color recolours the style images: give images, "
                                   "not encoded styles")
        like = content if preserve_color else None
        codes = [self._code(s, style_size, like) for s in styles]
        code = StyleCode.mix(codes, blend or [1.0] * len(codes))
        h, w = content.shape[:2]
        tile = self.tile if self.tile is not None else (512 if h * w > self.TILE_ABOVE else 0)
        if tile and max(h, w) > tile:
            return self._tiled(content, code, float(strength), tile)
        out = self._stylize(np.ascontiguousarray(content[None]), code.mean, code.std,
                            tf.constant(float(strength)))
        return np.asarray(out)[0]

    def __call__(self, image, out=None, *, style, **options):
        """Stylizes one image (array, PIL image or path); returns the same kind.

        ``options`` are those of :meth:`stylize_array`; ``out`` as for
        ``kstyle.Translator``.
        """
        from kstyle.api import map_image

        return map_image(lambda rgb: self.stylize_array(rgb, style, **options), image, out)


class ExportedArbitraryStylizer(ArbitraryStylizer):
    """An exported adain stylizer (LiteRT, ONNX or SavedModel), used as the run would be.

    Styles are encoded by the file's ``encode_style`` graph, photos stylized by its
    ``stylize_with_statistics``; blending, strength, colour preservation and the reuse of
    encoded styles work as for the run. Photos go through in one pass (no tiling).

    Args:
        encode: uint8 ``[1, H, W, 3]`` style -> statistics ``[1, 2, C]``.
        stylize: ``(content, statistics, strength)`` -> uint8 stylized content.
        info: the file's kstyle metadata.
    """

    def __init__(self, encode, stylize, info: dict | None = None):
        self.model = None
        self.info = dict(info or {})
        self.size_multiple = int(self.info.get("size_multiple") or ADAIN_SIZE_MULTIPLE)
        self.tile = 0
        self._codes = {}

        def encode_statistics(images):
            statistics = np.asarray(encode(np.asarray(images, np.uint8)), np.float32)
            return (statistics[:, 0].reshape(1, 1, 1, -1),
                    statistics[:, 1].reshape(1, 1, 1, -1))

        def stylize_with_statistics(images, mean, std, strength):
            statistics = np.concatenate([np.reshape(mean, (1, 1, -1)),
                                         np.reshape(std, (1, 1, -1))], axis=1)
            return stylize(np.asarray(images, np.uint8), statistics.astype(np.float32),
                           np.array(float(strength), np.float32))

        self._encode = encode_statistics
        self._stylize = stylize_with_statistics


def style_problems(styles, blend) -> list[str]:
    """What is wrong with a list of styles and their weights (``blend``), if anything."""
    problems = [] if styles else ["style: give at least one style image"]
    if blend is not None and (len(blend) != len(styles) or any(b < 0 for b in blend)
                              or not sum(blend) > 0):
        problems.append(f"blend = {list(blend)}: expected {len(styles)} non-negative "
                        "weight(s), one per style, not all zero")
    return problems


def check_options(styles, blend, strength) -> None:
    """StyleOptionError naming each problem of the styles, weights and strength."""
    problems = style_problems(styles, blend)
    if not 0.0 <= float(strength) <= 1.0:
        problems.append(f"strength = {strength}: expected a number in [0, 1]")
    if problems:
        raise StyleOptionError("; ".join(problems))


#: The exported endpoints' inputs: uint8 images of any size, a strength in [0, 1], and a
#: style's statistics (``[N, 2, C]``: channel means, then standard deviations, at relu4_1).
CONTENT_SPEC = tf.TensorSpec([None, None, None, 3], tf.uint8, name="content")
STYLE_SPEC = tf.TensorSpec([None, None, None, 3], tf.uint8, name="style")
STRENGTH_SPEC = tf.TensorSpec([], tf.float32, name="strength")
STATISTICS_SPEC = tf.TensorSpec([None, 2, None], tf.float32, name="statistics")


def endpoints(stylizer: ArbitraryStylizer) -> dict:
    """The graphs ``kstyle export`` writes for an adain run, by name: ``(function, specs)``.

    - ``stylize``: ``(content, style, strength)`` -> stylized uint8 content;
    - ``encode_style``: ``style`` -> statistics ``[N, 2, 512]``, to keep and reuse;
    - ``stylize_with_statistics``: ``(content, statistics, strength)`` -> stylized.

    A style image is used at the size given (``kstyle stylize`` first resizes its shorter
    side to :data:`STYLE_SIZE`).
    """
    def stylize(content, style, strength):
        mean, std = stylizer._encode_graph(style)
        return stylizer._stylize_graph(content, mean, std, strength)

    def encode_style(style):
        mean, std = stylizer._encode_graph(style)
        return tf.stack([mean[:, 0, 0], std[:, 0, 0]], axis=1)

    def stylize_with_statistics(content, statistics, strength):
        shape = [tf.shape(statistics)[0], 1, 1, -1]  # [N, 1, 1, C] each (a reshape:
        mean, std = (tf.reshape(v, shape) for v in tf.unstack(statistics, axis=1))  # LiteRT)
        return stylizer._stylize_graph(content, mean, std, strength)

    return {"stylize": (stylize, [CONTENT_SPEC, STYLE_SPEC, STRENGTH_SPEC]),
            "encode_style": (encode_style, [STYLE_SPEC]),
            "stylize_with_statistics": (stylize_with_statistics,
                                        [CONTENT_SPEC, STATISTICS_SPEC, STRENGTH_SPEC])}
