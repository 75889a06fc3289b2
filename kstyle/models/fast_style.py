"""Fast feed-forward style transfer (Johnson et al.): a network trained for one style."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kstyle import losses
from kstyle.models.base import TranslationModel
from kstyle.models.fast_style_options import NETWORKS, FastStyleOptions
from kstyle.models.perceptual import PerceptualStyleObjective
from kstyle.nets.mobile import MOBILE_SIZE_MULTIPLE, mobile_stylizer
from kstyle.nets.resnet import RESNET_SIZE_MULTIPLE, resnet_generator
from kstyle.nets.transformer_net import TRANSFORMER_NET_SIZE_MULTIPLE, transformer_net
from kstyle.nets.vgg import vgg19_features
from kstyle.optimizers import apply_gradients

#: The default layers and weights (see FastStyleOptions).
CONTENT_LAYER = FastStyleOptions.content_layer
STYLE_LAYERS = tuple(FastStyleOptions().style_layers)
STYLE_LAYER_WEIGHTS = tuple(FastStyleOptions().style_layer_weights)


@keras.saving.register_keras_serializable(package="kstyle")
class FastStyle(PerceptualStyleObjective, TranslationModel):
    """A feed-forward stylizer, trained on content photos against one style image.

    Objective, with ``T`` the transformer network, ``x`` a batch of content photos,
    ``F_l`` VGG19 features at layer ``l``, ``G`` the Gram matrix
    (``kstyle.losses.gram_matrix``) and ``A_l`` the style image's Gram matrices:

        content = mean((F_c(T(x)) - F_c(x))^2)                  at content_layer
        style   = sum_l w_l * mean((G(F_l(T(x))) - A_l)^2)      over style_layers
        tv      = total_variation(T(x))
        loss    = content_weight * content + style_weight * style + tv_weight * tv

    which trains ``T`` only (VGG19 is frozen). Afterwards one forward pass of ``T``
    stylizes an image of any size. ``T`` is ``kstyle.nets.resnet.resnet_generator`` in
    Johnson et al.'s shape: 9x9 outer convs, 32 base filters, two downsamplings, 5 residual
    blocks, instance norm (Ulyanov et al.), and resize-conv upsampling by default; or,
    with ``network="mobile"``, ``kstyle.nets.mobile.mobile_stylizer``, the same plan with
    separable convs and three downsamplings, ~20x fewer multiply-adds, for phones.

    Args:
        transformer: the image transformation network, ``[N, H, W, 3]`` -> same, [-1, 1].
        feature_extractor: VGG19 features (``kstyle.nets.vgg.vgg19_features``) holding
            ``content_layer`` and every ``style_layers`` entry.
        style_grams: ``{layer: [1, C, C]}`` Gram matrices of the style image.
        content_layer, style_layers, style_layer_weights: the loss layers and weights.
        content_weight, style_weight, tv_weight: the weights of the three terms.
        size_multiple: image sides must be multiples of this (4; 8 for the mobile network).
        **kwargs: those of ``keras.Model``.

    Example:
        >>> model = FastStyle.build_from_options(style="wave.jpg", vgg_weights="vgg19.h5")
        >>> model.compile(g_optimizer=keras.optimizers.Adam(1e-3))
        >>> model.fit(photos, epochs=2)                    # batches of content photos
        >>> model.transformer(photo)                       # stylized, one pass

    Reference:
        Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and
        Super-Resolution", ECCV 2016, https://arxiv.org/abs/1603.08155; Ulyanov et al.,
        "Instance Normalization: The Missing Ingredient for Fast Stylization", 2016.
    """

    Options = FastStyleOptions
    #: What ``test_step`` reports.
    val_metric = "loss"
    #: ``compile`` takes one optimizer, for the transformer.
    optimizer_slots = {"g_optimizer": "transformer"}

    def __init__(self, transformer, feature_extractor, style_grams, content_layer=CONTENT_LAYER,
                 style_layers=STYLE_LAYERS, style_layer_weights=STYLE_LAYER_WEIGHTS,
                 content_weight=30.0, style_weight=1.0, tv_weight=0.0,
                 size_multiple=RESNET_SIZE_MULTIPLE, **kwargs):
        super().__init__(**kwargs)
        self.transformer = transformer
        self.init_objective(feature_extractor, content_layer, style_layers,
                            style_layer_weights, content_weight, style_weight, tv_weight)
        missing = [layer for layer in self.style_layers if layer not in style_grams]
        if missing:
            raise ValueError(f"style_grams lacks the layers {', '.join(missing)}.")
        self.style_grams = {layer: tf.constant(np.asarray(style_grams[layer], np.float32))
                            for layer in self.style_layers}
        self.size_multiple = int(size_multiple)
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", "content_loss", "style_loss", "tv_loss")}

    @classmethod
    def from_options(cls, options: FastStyleOptions, *, in_channels=3, out_channels=3):
        """Builds the transformer and VGG19, and the style's Gram matrices.

        ``options.style`` may also be a uint8 ``HxWx3`` array (from Python); a file path or
        an http(s) URL is fetched once into Keras' cache. ``style_size`` resizes the style
        so its long side is that (None: as it is); ``network`` is ``"johnson"``
        (``resnet_generator``, 9x9 outer convs; ``upsample`` applies) or ``"mobile"``
        (``mobile_stylizer``); ``vgg_weights`` is ``"imagenet"``, a VGG19 weights file, or
        ``"random"``.
        """
        from kstyle.data.images import fetch_image, resize_long_side, to_float

        o = options
        style = o.style
        image = np.asarray(style) if isinstance(style, np.ndarray) else fetch_image(style)
        image = to_float(image[None])
        if o.style_size:
            image = resize_long_side(image, o.style_size)
        if o.network not in NETWORKS:
            raise ValueError(f"Unknown network {o.network!r}; valid ones are: "
                             f"{', '.join(NETWORKS)}.")
        if o.network == "examples":
            transformer = transformer_net(base_filters=o.base_filters, num_blocks=o.num_blocks,
                                          name="transformer")
            multiple = TRANSFORMER_NET_SIZE_MULTIPLE
        elif o.network == "mobile":
            transformer = mobile_stylizer(base_filters=o.base_filters, num_blocks=o.num_blocks,
                                          norm=o.norm, name="transformer")
            multiple = MOBILE_SIZE_MULTIPLE
        else:
            transformer = resnet_generator(base_filters=o.base_filters,
                                           num_blocks=o.num_blocks, norm=o.norm,
                                           outer_kernel=9, upsample=o.upsample,
                                           name="transformer")
            multiple = RESNET_SIZE_MULTIPLE
        style_layers = tuple(o.style_layers)
        features = vgg19_features((o.content_layer, *style_layers), weights=o.vgg_weights,
                                  name="fast_style_features")
        style_features = features(image, training=False)
        grams = {layer: losses.gram_matrix(style_features[layer]).numpy()
                 for layer in style_layers}
        return cls(transformer, features, grams, content_layer=o.content_layer,
                   style_layers=style_layers, style_layer_weights=tuple(o.style_layer_weights),
                   content_weight=o.content_weight, style_weight=o.style_weight,
                   tv_weight=o.tv_weight, size_multiple=multiple)

    @property
    def translators(self):
        """Inference networks by direction."""
        return {"a2b": self.transformer}

    @property
    def networks(self):
        """The trained networks by name, the keys used in checkpoints."""
        return {"transformer": self.transformer}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def optimized_variables(self):
        return {"g_optimizer": self.transformer.trainable_variables}

    def sample_columns(self, content, _unused=None):
        """Named image batches (float, [-1, 1]) for a sample grid."""
        return {"content": content, "stylized": self.transformer(content, training=False)}

    def call(self, inputs, training=False):
        return self.transformer(inputs, training=training)

    def objective(self, content, stylized) -> dict:
        """The weighted loss and its unweighted terms for a batch and its stylization."""
        batch = tf.shape(content)[0]
        # One VGG pass over both halves; the content half only gives targets.
        features = self.feature_extractor(tf.concat([stylized, content], axis=0),
                                          training=False)
        targets = tf.stop_gradient(features[self.content_layer][batch:])
        own = {layer: value[:batch] for layer, value in features.items()}
        return self.weighted_objective(stylized, own, targets, self.style_grams)

    def train_step(self, content):
        # 1. Stylize the batch: stylized = T(content).
        # 2. VGG19 features of stylized and content images in one pass.
        # 3. Loss: content (features), style (Gram matrices), total variation.
        # 4. Update T.
        with tf.GradientTape() as tape:
            stylized = self.transformer(content, training=True)
            logs = self.objective(content, stylized)
        variables = self.transformer.trainable_variables
        apply_gradients(self.g_optimizer, tape, logs["loss"], variables)
        for name, value in logs.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def test_step(self, content):
        logs = self.objective(content, self.transformer(content, training=False))
        for name, value in logs.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def get_config(self):
        return {**super().get_config(), **self.objective_config(),
                "transformer": keras.saving.serialize_keras_object(self.transformer),
                "style_grams": {k: v.numpy().tolist() for k, v in self.style_grams.items()},
                "size_multiple": self.size_multiple}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("transformer", "feature_extractor"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
