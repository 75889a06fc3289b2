"""Arbitrary style transfer in one pass (Huang & Belongie): AdaIN and a trained decoder.

:class:`AdaIN` trains the decoder; :class:`AdaINInference` is how a trained run is used:
a style image is encoded to its ``relu4_1`` channel statistics (:class:`StyleCode`) once
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

import keras
import numpy as np
import tensorflow as tf

from kstyle.data import images as kimages
from kstyle.errors import StyleOptionError
from kstyle.models.adain_options import SIZE_MULTIPLE, AdaINOptions
from kstyle.models.base import TranslationModel
from kstyle.models.options import style_problems
from kstyle.models.signature import SCALAR, TENSOR, Endpoint, Inference, Port, Signature
from kstyle.nets.adain import (
    ENCODER_OUTPUTS,
    EPSILON,
    AdaptiveInstanceNormalization,
    adain_decoder,
    adain_encoder,
    adain_stylizer,
    channel_statistics,
)
from kstyle.optimizers import apply_gradients

#: A style image's shorter side is resized to this before encoding (as the reference's
#: test script does; 0 keeps its size).
STYLE_SIZE = 512


@dataclasses.dataclass(frozen=True)
class StyleCode:
    """A style as the stylizer uses it: channel means and standard deviations of its
    ``relu4_1`` features, float32 ``[1, 1, 1, C]`` each."""

    mean: np.ndarray
    std: np.ndarray

    @staticmethod
    def mix(codes: list[StyleCode], weights) -> StyleCode:
        """The weighted mean of several styles' statistics (weights normalized to sum 1)."""
        w = np.asarray(weights, np.float32) / float(np.sum(weights))
        return StyleCode(sum(wi * c.mean for wi, c in zip(w, codes)),
                         sum(wi * c.std for wi, c in zip(w, codes)))

    @classmethod
    def from_statistics(cls, statistics) -> StyleCode:
        """From the ``[1, 2, C]`` statistics ``encode_style`` gives."""
        statistics = np.asarray(statistics, np.float32)
        return cls(statistics[:, 0].reshape(1, 1, 1, -1), statistics[:, 1].reshape(1, 1, 1, -1))

    def statistics(self) -> np.ndarray:
        """As ``stylize_with_statistics`` takes them: ``[1, 2, C]``."""
        return np.concatenate([np.reshape(self.mean, (1, 1, -1)),
                               np.reshape(self.std, (1, 1, -1))], axis=1).astype(np.float32)


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


_CONTENT = Port("content", doc="the image to stylize")
_STYLE = Port("style", doc="the style image (any size: used as given)")
_STRENGTH = Port("strength", SCALAR, "how much style, from 0 (the content as the decoder "
                 "renders it) to 1 (full style)", default=1.0, low=0.0, high=1.0)
_STATISTICS = Port("statistics", TENSOR, "a style's relu4_1 channel means, then standard "
                   "deviations", shape=(None, 2, None))
_STYLIZED = Port("image", doc="the stylized image, the content's size")


class AdaINInference(Inference):
    """An AdaIN run as it stylizes: any content, in the style of any image.

    Endpoints (each one graph in an export):
        ``stylize(content, style, strength)``: one pass, the style used at its size;
        ``encode_style(style)``: the style's statistics ``[N, 2, C]``, to keep and reuse;
        ``stylize_with_statistics(content, statistics, strength)``.

    A call (``kstyle.load(run)(photo, style=..., ...)``) encodes each style once
    (``style_size``: its shorter side resized first), mixes several by ``blend``, and
    stylizes with the mix; ``preserve_color`` gives each style the content's colours
    first. Large images go tile by tile, each renormalized with the content statistics
    of the whole image (:meth:`content_statistics`), so that the tiles match.

    Example:
        >>> stylizer = kstyle.load("saved_models/adain")
        >>> out = stylizer(photo, style="the_scream.jpg", strength=0.8)
        >>> code = stylizer.encode_style("the_scream.jpg")    # encode once ...
        >>> outs = [stylizer(p, style=code) for p in photos]  # ... reuse for many
    """

    signature = Signature((
        Endpoint("stylize", (_CONTENT, _STYLE, _STRENGTH), (_STYLIZED,),
                 "the content in the style of the style image"),
        Endpoint("encode_style", (_STYLE,), (_STATISTICS,),
                 "a style image's statistics, to keep and reuse"),
        Endpoint("stylize_with_statistics", (_CONTENT, _STATISTICS, _STRENGTH), (_STYLIZED,),
                 "the content in a style given by its statistics"),
    ))
    options = {"blend": "with several styles, the weight of each (default equal)",
               "preserve_color": "give each style the content's colours first",
               "style_size": f"resize each style's shorter side to this first "
                             f"(default {STYLE_SIZE}; 0: as it is)"}
    graph_options = {"style_size": 0}  # the graphs take a style at the size it is
    default_size_multiple = SIZE_MULTIPLE

    def __init__(self, network, info=None, call=None):
        super().__init__(network, info, call)
        self._codes: dict = {}

    @classmethod
    def accepts(cls, network) -> bool:
        return len(network.inputs) == 2

    @staticmethod
    def measured_size_multiple(network) -> None:
        return None  # the encoder's pools: default_size_multiple

    # -- the graphs

    def serving_model(self):
        return self.network

    @property
    def encoder(self):
        """The stylizer's encoder (``[N, H, W, 3]`` in [-1, 1] -> features by layer)."""
        return self.network.get_layer("adain_encoder")

    @property
    def decoder(self):
        return self.network.get_layer("decoder")

    def style_statistics(self, styles):
        """``(mean, std)`` of float ``[N, H, W, 3]`` style images in [-1, 1] at relu4_1."""
        return channel_statistics(self.encoder(styles, training=False)["relu4_1"])

    def stylize_float(self, content, mean, std, strength=1.0, content_statistics=None):
        """The network itself: float ``[N, H, W, 3]`` content in [-1, 1] (sides multiples
        of 8) with a style's statistics -> float stylized images (not clipped).

        ``content_statistics``: ``(mean, std)`` to renormalize the content features with
        instead of their own (a tile's, with the whole image's).
        """
        features = tf.cast(self.encoder(content, training=False)["relu4_1"], tf.float32)
        return self.decode(features, mean, std, strength, content_statistics)

    def decode(self, features, mean, std, strength=1.0, content_statistics=None):
        """Content features (relu4_1) renormalized to a style's statistics, decoded."""
        content_mean, content_std = (content_statistics if content_statistics is not None
                                     else channel_statistics(features))
        target = (features - content_mean) / content_std * std + mean
        target = strength * target + (1.0 - strength) * features
        return self.decoder(target, training=False)

    def _encode(self, images):
        return self.style_statistics(kimages.to_float(images))

    def _stylize(self, images, mean, std, strength, content_mean=None, content_std=None):
        from kstyle.nets.uint8 import prepare_input

        height, width = tf.shape(images)[1], tf.shape(images)[2]
        x = prepare_input(images, self.size_multiple, "none")
        given = None if content_mean is None else (content_mean, content_std)
        return kimages.to_uint8(
            self.stylize_float(x, mean, std, strength, given)[:, :height, :width])

    def graphs(self):
        def stylize(content, style, strength):
            mean, std = self._encode(style)
            return self._stylize(content, mean, std, strength)

        def encode_style(style):
            mean, std = self._encode(style)
            return tf.stack([mean[:, 0, 0], std[:, 0, 0]], axis=1)

        def stylize_with_statistics(content, statistics, strength):
            shape = [tf.shape(statistics)[0], 1, 1, -1]  # [N, 1, 1, C] each (a reshape:
            mean, std = (tf.reshape(v, shape) for v in tf.unstack(statistics, axis=1))  # LiteRT)
            return self._stylize(content, mean, std, strength)

        return {"stylize": stylize, "encode_style": encode_style,
                "stylize_with_statistics": stylize_with_statistics}

    # -- a user's call

    def check(self, inputs: dict) -> dict:
        inputs = super().check(inputs)
        style = inputs["style"]
        styles = list(style) if isinstance(style, list | tuple) else [style]
        problems = style_problems(styles, inputs.get("blend"))
        if inputs.get("preserve_color") and any(isinstance(s, StyleCode) for s in styles):
            problems.append("preserve_color recolours the style images: give images, "
                            "not encoded styles")
        if problems:
            raise StyleOptionError("; ".join(problems))
        return {**inputs, "style": styles}

    def encode_style(self, style, *, style_size: int = STYLE_SIZE, like=None) -> StyleCode:
        """Encodes one style image (array, PIL image or path) to its :class:`StyleCode`.

        Args:
            style: the style image.
            style_size: resize its shorter side to this first (0: as it is).
            like: a uint8 content image whose colours the style takes first
                (:func:`match_colors`; ``preserve_color``).
        """
        rgb = kimages.image_to_rgb(style)[0]
        if like is not None:
            rgb = match_colors(rgb, like)
        if style_size and min(rgb.shape[:2]) != style_size:
            scale = style_size / min(rgb.shape[:2])
            size = (max(1, round(rgb.shape[0] * scale)), max(1, round(rgb.shape[1] * scale)))
            rgb = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(
                tf.cast(rgb[None], tf.float32), size, antialias=True)), 0, 255),
                tf.uint8).numpy()[0]
        return StyleCode.from_statistics(self.call("encode_style", style=rgb[None]))

    def _code(self, style, style_size: int, like) -> StyleCode:
        if isinstance(style, StyleCode):
            return style
        if like is not None or not isinstance(style, str | os.PathLike):
            return self.encode_style(style, style_size=style_size, like=like)
        key = (os.fspath(style), style_size)  # a file is encoded once
        if key not in self._codes:
            self._codes[key] = self.encode_style(style, style_size=style_size)
        return self._codes[key]

    def mixed_code(self, content, style, blend=None, preserve_color=False,
                   style_size=STYLE_SIZE) -> StyleCode:
        """The styles of a call as one :class:`StyleCode`."""
        like = content if preserve_color else None
        codes = [self._code(s, style_size, like) for s in style]
        return StyleCode.mix(codes, blend or [1.0] * len(codes))

    def run(self, image, *, style, strength=1.0, **options):
        code = self.mixed_code(image, style, **options)
        return self.call("stylize_with_statistics", content=image[None],
                         statistics=code.statistics(),
                         strength=np.float32(strength))[0]

    # -- clips

    def _stylize_held(self, images, mean, std, strength, content_mean, content_std):
        """:meth:`_stylize` with given content statistics; also gives the frame's own."""
        from kstyle.nets.uint8 import prepare_input

        height, width = tf.shape(images)[1], tf.shape(images)[2]
        x = prepare_input(images, self.size_multiple, "none")
        features = tf.cast(self.encoder(x, training=False)["relu4_1"], tf.float32)
        own_mean, own_std = channel_statistics(features)
        out = self.decode(features, mean, std, strength, (content_mean, content_std))
        return kimages.to_uint8(out[:, :height, :width]), own_mean, own_std

    def clip(self, window: int = 8, *, style, strength=1.0, **options):
        from kstyle.nets.steady import running_moments

        # The style's statistics are one code for the whole clip; the content statistics
        # the features are renormalized with are a running mean over the frames (a
        # scene's first frame: its own), so that the strength of the style does not
        # pump from frame to frame.
        if self.network is None:
            return super().clip(window, style=style, strength=strength, **options)
        if getattr(self, "_held", None) is None:
            self._held = tf.function(self._stylize_held, reduce_retracing=True)
        a = 1.0 / max(1.0, float(window))
        state = {"code": None, "mean": None, "variance": None}
        strength = tf.constant(float(strength))

        def run(frame, new_scene=False):
            batch = np.ascontiguousarray(frame)[None]
            if state["code"] is None:
                state["code"] = self.mixed_code(frame, style, **options)
            if new_scene or state["mean"] is None:
                mean, std = channel_statistics(self.features(batch))
                state["mean"], state["variance"] = mean.numpy(), np.square(std.numpy())
            code = state["code"]
            out, own_mean, own_std = self._held(batch, code.mean, code.std, strength,
                                                state["mean"], np.sqrt(state["variance"]))
            state["mean"], state["variance"] = running_moments(
                state["mean"], state["variance"], own_mean.numpy(),
                np.square(own_std.numpy()), a)
            return out.numpy()[0]

        return run

    # -- large images

    def content_statistics(self, content: np.ndarray, tile: int, overlap: int):
        """``(mean, std)`` of a uint8 image's relu4_1 features, ``[1, 1, 1, C]`` each, as
        ``channel_statistics`` gives them for the whole image, gathered tile by tile:
        each feature from the tile that holds it farthest from an edge (the middle of each
        overlap divides two tiles), summed in float64."""
        from kstyle.nets.tiling import tile_origins

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
                features = self.features(patch[None]).numpy()[0].astype(np.float64)
                own = features[(rows[i] - top) // m:-(-(rows[i + 1] - top) // m),
                               (cols[j] - left) // m:-(-(cols[j + 1] - left) // m)]
                total = total + own.sum(axis=(0, 1))
                squares = squares + np.square(own).sum(axis=(0, 1))
                count += own.shape[0] * own.shape[1]
        mean = total / count
        variance = np.maximum(squares - count * np.square(mean), 0.0) / max(count - 1, 1)
        return (mean.reshape(1, 1, 1, -1).astype(np.float32),
                np.sqrt(variance + EPSILON).reshape(1, 1, 1, -1).astype(np.float32))

    def features(self, images):
        """The relu4_1 features of uint8 ``[N, H, W, 3]`` images (padded to the size
        multiple), float32."""
        if getattr(self, "_features", None) is None:
            from kstyle.nets.uint8 import prepare_input

            def features(images):
                x = prepare_input(images, self.size_multiple, "none")
                return tf.cast(self.encoder(x, training=False)["relu4_1"], tf.float32)

            self._features = tf.function(features, reduce_retracing=True)
        return self._features(images)

    def tiled(self, image, tile, out=None, *, style, strength=1.0, **options):
        # Each tile renormalized with the whole image's content statistics (a tile's own
        # would give each tile its own contrast), blended over the overlaps.
        from kstyle.nets.tiling import blend_tiles, tile_geometry

        if getattr(self, "_stylize_tile", None) is None:
            self._stylize_tile = tf.function(self._stylize, reduce_retracing=True)
        code = self.mixed_code(image, style, **options)
        tile, overlap = tile_geometry(tile, min(64, tile // 4), self.size_multiple)
        content_mean, content_std = self.content_statistics(image, tile, overlap)
        strength = tf.constant(float(strength))
        return blend_tiles(
            image, tile, overlap, self.size_multiple,
            lambda patch: self._stylize_tile(patch[None], code.mean, code.std, strength,
                                             content_mean, content_std).numpy()[0],
            finish=lambda band: np.clip(np.round(band), 0, 255).astype(np.uint8), out=out)


def _frozen_encoder(weights, name: str = "adain_encoder"):
    """VGG19 to relu4_1 from ``model.vgg_weights``: Keras' weights, or the AdaIN
    reference's ``vgg_normalised.pth`` (read without torch; its layers past relu4_1 are
    not used)."""
    if weights is not None and os.fspath(weights).endswith(".pth"):
        from kstyle.importers.convert import read_adain_encoder

        return read_adain_encoder(weights, name=name)
    return adain_encoder(weights, name=name)


def _mse(x, y):
    return tf.reduce_mean(tf.square(tf.cast(x, tf.float32) - tf.cast(y, tf.float32)))


@keras.saving.register_keras_serializable(package="kstyle")
class AdaIN(TranslationModel):
    """A decoder trained to turn AdaIN-renormalized VGG features into images: any style,
    one forward pass.

    Objective, with ``E`` the frozen VGG19 encoder (``E_l`` its ``relu{l}_1`` features,
    ``E = E_4``), ``D`` the decoder, ``c`` a batch of content photos and ``s`` one style
    image per photo, ``mu`` and ``sigma`` channel means and standard deviations over
    height and width:

        t       = AdaIN(E(c), E(s)) = sigma(E(s)) * (E(c) - mu(E(c))) / sigma(E(c)) + mu(E(s))
        g       = D(t)
        content = mean((E(g) - t)^2)
        style   = sum_l mean((mu(E_l(g)) - mu(E_l(s)))^2) + mean((sigma(E_l(g)) - sigma(E_l(s)))^2)
        loss    = content_weight * content + style_weight * style

    which trains ``D`` only. Stylizing is ``D(AdaIN(E(content), E(style)))``
    (:attr:`stylizer`): one pass, for a style it never saw.

    The light variant (``light_encoder``, for phones): VGG19 to relu4_1 is most of a
    stylization's time, so the stylizer gets an encoder ``L`` of the same layout with
    fewer filters, trained with ``D``; ``E`` stays the frozen loss network and still gives
    the targets: ``g = D(AdaIN(L(c), L(s)))``, its content loss against
    ``t = AdaIN(E(c), E(s))`` and its style loss as above, both measured by ``E``. The
    stylizer is then ``D(AdaIN(L(content), L(style)))``; ``E`` is needed for training only.

    Args:
        encoder: ``kstyle.nets.adain.adain_encoder()`` (frozen).
        decoder: ``kstyle.nets.adain.adain_decoder()``.
        light_encoder: None (the stylizer encodes with ``encoder``), or a trainable
            ``adain_encoder(width=...)`` for the stylizer, named ``"adain_encoder"``
            (``encoder`` is then named otherwise).
        content_weight, style_weight: the weights of the two terms (the paper: 1 and 10).
        **kwargs: those of ``keras.Model``.

    Example:
        >>> model = AdaIN.build_from_options(vgg_weights="vgg19.h5")
        >>> model.compile(g_optimizer=keras.optimizers.Adam(1e-4))
        >>> model.fit(content_and_styles, epochs=1)     # batches of (content, style)
        >>> model.stylizer([photo, painting])            # stylized, one pass

    Reference:
        Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance
        Normalization", ICCV 2017, https://arxiv.org/abs/1703.06868.
    """

    Options = AdaINOptions
    #: What ``test_step`` reports.
    val_metric = "loss"
    #: ``compile`` takes one optimizer, for the decoder.
    optimizer_slots = {"g_optimizer": "decoder"}
    size_multiple = SIZE_MULTIPLE
    inference = AdaINInference

    def __init__(self, encoder, decoder, content_weight=1.0, style_weight=10.0,
                 light_encoder=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.encoder.trainable = False
        self.decoder = decoder
        self.light_encoder = light_encoder
        if light_encoder is not None:
            light_encoder.trainable = True
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.adain = AdaptiveInstanceNormalization()
        self.stylizer = adain_stylizer(light_encoder or encoder, decoder)
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", "content_loss", "style_loss")}

    @classmethod
    def from_options(cls, options: AdaINOptions, *, in_channels=3, out_channels=3):
        """Builds the frozen encoder (VGG19 from ``options.vgg_weights``) and the decoder."""
        if in_channels != 3 or out_channels != 3:
            raise ValueError("AdaIN stylizes RGB images: in_channels and out_channels must be 3")
        light = None
        if options.encoder_width != 1.0:
            light = adain_encoder(None, width=options.encoder_width, name="adain_encoder")
            encoder = _frozen_encoder(options.vgg_weights, name="loss_encoder")
        else:
            encoder = _frozen_encoder(options.vgg_weights)
        decoder = adain_decoder(width=options.decoder_width, name="decoder",
                                features=(light or encoder).output["relu4_1"].shape[-1])
        return cls(encoder, decoder, content_weight=options.content_weight,
                   style_weight=options.style_weight, light_encoder=light)

    @property
    def translators(self):
        """Inference networks by direction: the stylizer, ``[content, style]`` -> image."""
        return {"a2b": self.stylizer}

    @property
    def networks(self):
        """The networks by name, the keys used in checkpoints: the trained decoder and the
        frozen encoder (kept, so that a run fine-tuned from an import keeps its encoder),
        and the light variant's trained encoder."""
        networks = {"encoder": self.encoder, "decoder": self.decoder}
        if self.light_encoder is not None:
            networks["light_encoder"] = self.light_encoder
        return networks

    @property
    def trained_variables(self) -> list:
        """What the optimizer updates: the decoder's weights, and the light encoder's."""
        light = [] if self.light_encoder is None else self.light_encoder.trainable_variables
        return [*self.decoder.trainable_variables, *light]

    @property
    def metrics(self):
        return list(self.trackers.values())

    def optimized_variables(self):
        return {"g_optimizer": self.trained_variables}

    def sample_outputs(self, content, style):
        return {"a2b": self.stylizer([content, style], training=False)}

    def sample_columns(self, content, style):
        """Named image batches (float, [-1, 1]) for a sample grid."""
        return {"content": content, "style": style,
                "stylized": self.stylizer([content, style], training=False)}

    def call(self, inputs, training=False):
        return self.stylizer(inputs, training=training)

    def objective(self, content, style, training: bool) -> dict:
        """The weighted loss and its unweighted terms for a batch of (content, style)."""
        batch = tf.shape(content)[0]
        # One encoder pass over both (training crops are all one size); else two.
        if content.shape[1:3] == style.shape[1:3] and content.shape[1] is not None:
            both = self.encoder(tf.concat([content, style], axis=0), training=False)
            content_feature = both["relu4_1"][:batch]
            style_features = {k: v[batch:] for k, v in both.items()}
        else:
            content_feature = self.encoder(content, training=False)["relu4_1"]
            style_features = self.encoder(style, training=False)
        style_stats = {k: channel_statistics(v) for k, v in style_features.items()}
        target = tf.stop_gradient(self.adain([content_feature, *style_stats["relu4_1"]]))
        if self.light_encoder is None:
            generated = self.decoder(target, training=training)
        else:  # the stylizer's own pass, through the light encoder it trains
            generated = self.stylizer([content, style], training=training)
        features = self.encoder(generated, training=False)
        content_loss = _mse(features["relu4_1"], target)
        style_loss = 0.0
        for layer in ENCODER_OUTPUTS:
            mean, std = channel_statistics(features[layer])
            style_mean, style_std = (tf.stop_gradient(v) for v in style_stats[layer])
            style_loss += _mse(mean, style_mean) + _mse(std, style_std)
        loss = self.content_weight * content_loss + self.style_weight * style_loss
        return {"loss": loss, "content_loss": content_loss, "style_loss": style_loss}

    def train_step(self, data):
        # 1. Encode content and style; AdaIN gives the target features t.
        # 2. Decode t; encode the result.
        # 3. Loss: its relu4_1 against t (content), its channel statistics at
        #    relu1_1 .. relu4_1 against the style's (style).
        # 4. Update the decoder (and the light encoder, which the stylizer then encodes
        #    with in step 2's place).
        content, style = data
        with tf.GradientTape() as tape:
            logs = self.objective(content, style, training=True)
        apply_gradients(self.g_optimizer, tape, logs["loss"], self.trained_variables)
        for name, value in logs.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def test_step(self, data):
        content, style = data
        logs = self.objective(content, style, training=False)
        for name, value in logs.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def get_config(self):
        return {**super().get_config(),
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "content_weight": self.content_weight, "style_weight": self.style_weight,
                **({} if self.light_encoder is None else {
                    "light_encoder": keras.saving.serialize_keras_object(self.light_encoder)})}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder", "light_encoder"):
            if key in config:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
