"""Neural style transfer by optimization (Gatys et al.): the image itself is trained."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from kstyle import losses
from kstyle.data.images import resize_long_side
from kstyle.models import gatys_options as options
from kstyle.models.gatys_options import GatysOptions
from kstyle.models.perceptual import PerceptualStyleObjective
from kstyle.nets.vgg import vgg19_features

#: The style layers of Gatys et al.: the first conv of every VGG19 block.
STYLE_LAYERS = tuple(options.STYLE_LAYERS)
#: Content layer of Gatys et al. (``block4_conv2``); TensorFlow's tutorial uses ``block5_conv2``.
CONTENT_LAYER = GatysOptions.content_layer
#: Where the optimization starts.
INITS = options.INITS
_DEFAULTS = GatysOptions()


def _resize(image: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Antialiased bilinear resize of ``[N, H, W, C]`` images in [-1, 1]."""
    return tf.image.resize(image, (height, width), method="bilinear", antialias=True)


def _yiq(image: tf.Tensor) -> tf.Tensor:
    """YIQ of RGB images in [-1, 1], computed on the [0, 1] scale."""
    return tf.image.rgb_to_yiq((image + 1.0) / 2.0)


def _gray3(luma: tf.Tensor) -> tf.Tensor:
    """A [0, 1] luma channel as a 3-channel image in [-1, 1]."""
    return tf.repeat(luma * 2.0 - 1.0, 3, axis=-1)


def pyramid(height: int, width: int, start_size: int) -> list[tuple[int, int]]:
    """The (height, width) of each coarse-to-fine stage, coarsest first.

    An image whose long side is at most ``start_size`` is optimized in one stage; a larger
    one first at its size halved until the long side is at most ``start_size``, then at
    each doubling up to the full size.

    Example:
        >>> pyramid(1000, 2000, 512)
        [(250, 500), (500, 1000), (1000, 2000)]
    """
    levels = max(0, math.ceil(math.log2(max(height, width) / start_size))) if start_size else 0
    return [(max(1, round(height / 2**k)), max(1, round(width / 2**k)))
            for k in range(levels, -1, -1)]


@keras.saving.register_keras_serializable(package="kstyle")
class Gatys(PerceptualStyleObjective, keras.Model):
    """Neural style transfer by optimization: the pixels of one image are the variables.

    Objective, with ``x`` the image being optimized, ``c`` the content image, ``F_l`` the
    VGG19 features at layer ``l``, ``G_l`` their Gram matrix (``kstyle.losses.gram_matrix``)
    and ``A_l`` the (blended) Gram matrix of the style image(s):

        content = mean((F_c(x) - F_c(c))^2)                    at content_layer
        style   = sum_l w_l * mean((G_l(x) - A_l)^2)            over style_layers
        tv      = mean|x[i+1, j] - x[i, j]| + mean|x[i, j+1] - x[i, j]|
        loss    = content_weight * content + style_weight * style + tv_weight * tv

    Several styles with blend weights ``b_s`` (summing to 1) use ``A_l = sum_s b_s A_l^s``:
    ``sum_s b_s |G - A^s|^2`` and ``|G - sum_s b_s A^s|^2`` differ by a constant, so both
    have the same gradients and minimum.

    The model's ``call`` maps images to their features; ``transfer`` runs the optimization
    (Adam on the pixels, clipped to [-1, 1] after each step) coarse to fine: images larger
    than ``start_size`` are first stylized at a lower resolution, upscaled, and refined.
    ``preserve_color`` transfers the style on luminance only and puts the content's chroma
    back (YIQ), the luminance-only method of Gatys et al. 2016.

    Args:
        feature_extractor: a model mapping ``[N, H, W, 3]`` images in [-1, 1] to a dict of
            VGG19 feature maps holding ``content_layer`` and every ``style_layers`` entry.
        content_layer: layer of the content loss.
        style_layers: layers of the style loss.
        style_layer_weights: weight of each style layer (default ``1 / len(style_layers)``).
        content_weight: ``alpha``.
        style_weight: ``beta``.
        tv_weight: weight of the total variation term.
        **kwargs: those of ``keras.Model``.

    Example:
        >>> gatys = Gatys.build_from_options(vgg_weights="vgg19_notop.h5")
        >>> out = gatys.transfer(content, [style], steps=300)   # float [1, H, W, 3] in [-1, 1]

    Reference:
        Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks",
        CVPR 2016; Gatys et al., "Preserving Color in Neural Artistic Style Transfer",
        2016, https://arxiv.org/abs/1606.05897; TensorFlow's "Neural style transfer"
        tutorial (its defaults for the weights and Adam settings).
    """

    def __init__(self, feature_extractor, content_layer=CONTENT_LAYER, style_layers=STYLE_LAYERS,
                 style_layer_weights=None, content_weight=_DEFAULTS.content_weight,
                 style_weight=_DEFAULTS.style_weight, tv_weight=_DEFAULTS.tv_weight, **kwargs):
        super().__init__(**kwargs)
        self.init_objective(feature_extractor, content_layer, style_layers,
                            style_layer_weights, content_weight, style_weight, tv_weight)

    @classmethod
    def from_options(cls, options: GatysOptions, features=None):
        """The model of the options' objective; builds the VGG19 feature extractor
        (``kstyle.nets.vgg.vgg19_features``, from ``options.vgg_weights``: ``"imagenet"``,
        a weights file, or ``"random"``) unless ``features`` is given."""
        o = options
        if features is None:
            features = vgg19_features((o.content_layer, *o.style_layers),
                                      weights=o.vgg_weights, name="gatys_features")
        return cls(features, content_layer=o.content_layer, style_layers=tuple(o.style_layers),
                   style_layer_weights=o.style_layer_weights, content_weight=o.content_weight,
                   style_weight=o.style_weight, tv_weight=o.tv_weight)

    @classmethod
    def build_from_options(cls, **options):
        """:meth:`from_options` with options as keywords, every other one at its default."""
        return cls.from_options(GatysOptions(**options))

    def call(self, images):
        return self.feature_extractor(images, training=False)

    # -- targets and losses

    def style_grams(self, styles: Sequence[tf.Tensor], blend: Sequence[float] | None = None):
        """Blended Gram matrices ``{layer: [1, C, C]}`` of style images ``[1, H, W, 3]``."""
        blend = _normalized_blend(blend, len(styles))
        grams = {}
        for style, weight in zip(styles, blend):
            features = self(style)
            for layer in self.style_layers:
                gram = weight * losses.gram_matrix(features[layer])
                grams[layer] = grams[layer] + gram if layer in grams else gram
        return grams

    def objective(self, image, content_features, style_grams) -> dict:
        """The weighted loss and its unweighted terms for images ``[N, H, W, 3]``."""
        return self.weighted_objective(image, self(image), content_features, style_grams)

    # -- optimization

    def transfer(
        self,
        content: tf.Tensor,
        styles: Sequence[tf.Tensor],
        *,
        blend: Sequence[float] | None = None,
        steps: int = _DEFAULTS.steps,
        init: str = _DEFAULTS.init,
        style_scale: float = _DEFAULTS.style_scale,
        preserve_color: bool = _DEFAULTS.preserve_color,
        start_size: int = _DEFAULTS.start_size,
        lr: float = _DEFAULTS.lr,
        seed: int = _DEFAULTS.seed,
        jit_compile: bool = _DEFAULTS.jit_compile,
        verbose: int = 1,
        callback: Callable[[int, int, tf.Tensor], None] | None = None,
        callback_every: int = 0,
    ) -> tf.Tensor:
        """Stylizes one content image; returns it as ``[1, H, W, 3]`` float32 in [-1, 1].

        Args:
            content: the content image, ``[1, H, W, 3]`` in [-1, 1], at the output size.
            styles: style images ``[1, h, w, 3]`` in [-1, 1], any size.
            blend: weight of each style (normalized to sum to 1; default equal).
            steps: Adam steps of the coarsest stage; each finer stage runs half as many
                as the one before (at four times the pixels).
            init: ``"content"``, ``"noise"`` (uniform) or ``"style"`` (the first style
                resized to the content).
            style_scale: each style is resized to ``style_scale`` times the long side of
                the image being optimized (bigger: larger brush strokes).
            preserve_color: transfer on luminance only and keep the content's colors.
            start_size: long side of the coarsest stage; 0 turns coarse to fine off.
            lr: Adam learning rate (on the [-1, 1] scale; the tutorial's 0.02 on [0, 1]).
            seed: seed of the noise init.
            jit_compile: compile the step with XLA.
            verbose: 1 shows a progress bar per stage, 0 nothing.
            callback: ``callback(stage, step, image)`` every ``callback_every`` steps and
                at each stage's end; ``step`` counts across stages from 1.
            callback_every: see ``callback`` (0: at stage ends only).

        Returns:
            The stylized image.

        Raises:
            ValueError: bad ``init``, ``steps``, ``style_scale`` or no style.
        """
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}.")
        if steps < 1 or style_scale <= 0 or not styles:
            raise ValueError("steps must be >= 1, style_scale > 0, and at least one style given.")
        content = tf.convert_to_tensor(content, tf.float32)
        styles = [tf.convert_to_tensor(s, tf.float32) for s in styles]
        full_content = content
        if preserve_color:
            content, styles = self._luminance_inputs(content, styles)

        height, width = int(content.shape[1]), int(content.shape[2])
        stages = pyramid(height, width, start_size)
        image = None
        done = 0
        for stage, (h, w) in enumerate(stages, start=1):
            stage_content = _resize(content, h, w) if (h, w) != (height, width) else content
            if image is None:
                image = self._initial_image(init, stage_content, styles, seed)
            else:
                image = _resize(image, h, w)
            stage_styles = [resize_long_side(s, round(style_scale * max(h, w))) for s in styles]
            stage_steps = max(1, steps // 2 ** (stage - 1))
            if verbose:
                print(f"Stage {stage}/{len(stages)}: {w}x{h} px, {stage_steps} steps")
            image = self._optimize(image, stage_content, stage_styles, blend, stage_steps,
                                   lr=lr, jit_compile=jit_compile, verbose=verbose,
                                   on_step=self._stage_callback(callback, callback_every,
                                                                stage, done))
            done += stage_steps
            if callback is not None:
                callback(stage, done, image)
        if preserve_color:
            image = self._with_content_chroma(image, full_content)
        return image

    @staticmethod
    def _stage_callback(callback, every, stage, done):
        if callback is None or not every:
            return None

        def on_step(step, image):
            if step % every == 0:
                callback(stage, done + step, image)

        return on_step

    def _initial_image(self, init, content, styles, seed):
        if init == "content":
            return content
        if init == "noise":
            return tf.random.stateless_uniform(content.shape, (seed, 0), -1.0, 1.0)
        return _resize(styles[0], int(content.shape[1]), int(content.shape[2]))

    def optimization_step(self, init, content, styles, blend=None, *, lr=_DEFAULTS.lr,
                          jit_compile=False):
        """A compiled Adam step on a new image variable, and that variable.

        Args:
            init: the starting image ``[1, H, W, 3]`` in [-1, 1].
            content: the content image at the same size.
            styles, blend: the style images (already at their working size) and weights.
            lr, jit_compile: as for :meth:`transfer`.

        Returns:
            ``(step, image)``: ``step()`` updates ``image`` once (then clips it to
            [-1, 1]) and returns the loss terms of the image it started from.
        """
        content_features = tf.stop_gradient(self(content)[self.content_layer])
        grams = {k: tf.stop_gradient(v) for k, v in self.style_grams(styles, blend).items()}
        image = keras.Variable(init, dtype="float32", name="pastiche")
        # The tutorial's Adam: a high beta_1 and a large epsilon damp the pixel updates.
        optimizer = keras.optimizers.Adam(learning_rate=lr, beta_1=0.99, epsilon=0.1)
        optimizer.build([image])

        @tf.function(jit_compile=jit_compile)
        def step():
            with tf.GradientTape() as tape:
                logs = self.objective(image.value, content_features, grams)
            gradient = tape.gradient(logs["loss"], image.value)
            optimizer.apply([gradient], [image])
            image.assign(tf.clip_by_value(image.value, -1.0, 1.0))
            return logs

        return step, image

    def _optimize(self, init, content, styles, blend, steps, *, lr, jit_compile, verbose,
                  on_step):
        step, image = self.optimization_step(init, content, styles, blend, lr=lr,
                                             jit_compile=jit_compile)
        bar = keras.utils.Progbar(steps, stateful_metrics=["loss", "content_loss",
                                                           "style_loss", "tv_loss"],
                                  verbose=1 if verbose else 0)
        for i in range(1, steps + 1):
            logs = step()
            bar.update(i, [(k, float(v)) for k, v in logs.items()])
            if on_step is not None:
                on_step(i, image.value)
        self.last_logs = {k: float(v) for k, v in logs.items()}
        return tf.convert_to_tensor(image.value)

    def _luminance_inputs(self, content, styles):
        """Content and styles as gray images; each style's luma matched to the content's
        mean and standard deviation (Gatys et al. 2016, section 2.2)."""
        content_y = _yiq(content)[..., :1]
        mean, std = tf.reduce_mean(content_y), tf.math.reduce_std(content_y)
        gray_styles = []
        for style in styles:
            y = _yiq(style)[..., :1]
            y = (y - tf.reduce_mean(y)) / (tf.math.reduce_std(y) + 1e-6) * std + mean
            gray_styles.append(_gray3(tf.clip_by_value(y, 0.0, 1.0)))
        return _gray3(content_y), gray_styles

    @staticmethod
    def _with_content_chroma(image, content):
        """The luminance of ``image`` with the chroma (I, Q) of ``content``, in [-1, 1]."""
        luma = _yiq(image)[..., :1]
        chroma = _yiq(content)[..., 1:]
        rgb = tf.image.yiq_to_rgb(tf.concat([luma, chroma], axis=-1))
        return tf.clip_by_value(rgb * 2.0 - 1.0, -1.0, 1.0)

    def get_config(self):
        return {**super().get_config(), **self.objective_config()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["feature_extractor"] = keras.saving.deserialize_keras_object(
            config["feature_extractor"])
        return cls(**config)


def _normalized_blend(blend, count: int) -> list[float]:
    if blend is None:
        return [1.0 / count] * count
    blend = [float(b) for b in blend]
    if len(blend) != count or any(b < 0 for b in blend) or sum(blend) <= 0:
        raise ValueError(
            f"blend must give one non-negative weight per style ({count}), not all zero; "
            f"got {blend}.")
    total = sum(blend)
    return [b / total for b in blend]

