"""Fast feed-forward style transfer (Johnson et al.): a network trained for one style."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kstyle import losses
from kstyle.models.perceptual import PerceptualStyleObjective
from kstyle.nets.mobile import MOBILE_SIZE_MULTIPLE, mobile_stylizer
from kstyle.nets.resnet import RESNET_SIZE_MULTIPLE, resnet_generator
from kstyle.nets.vgg import vgg19_features
from kstyle.optimizers import apply_gradients

#: Transformer networks by name: Johnson et al.'s, and a ~20x lighter one for phones.
NETWORKS = ("johnson", "mobile")

#: Johnson et al.'s layers (VGG16 relu2_2 for content; relu1_2, relu2_2, relu3_3, relu4_3
#: for style), as the last conv of the same VGG19 blocks.
CONTENT_LAYER = "block2_conv2"
STYLE_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv4", "block4_conv4")
#: Per-layer style weights: 935 / C**2 for C channels. They turn the PyTorch example's
#: weights (content 1e5, style 1e10; VGG16 features of mean/std-normalized inputs, Gram
#: matrices over C*H*W) into kstyle's terms (VGG on 0-255 "caffe" inputs, about 57 times
#: larger features; Gram matrices over H*W), with content_weight 30 and style_weight 1.
STYLE_LAYER_WEIGHTS = (0.23, 0.057, 0.014, 0.0036)


@keras.saving.register_keras_serializable(package="kstyle")
class FastStyle(PerceptualStyleObjective, keras.Model):
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

    #: Training data: batches of content images (the photo side of a paired source).
    data_kind = "images"
    #: What ``test_step`` reports.
    val_metric = "loss"
    #: What ``compile`` takes.
    optimizer_names = ("g_optimizer",)

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
    def build_from_options(cls, *, style, style_size=None, network="johnson", base_filters=32,
                           num_blocks=5, norm="instance", upsample="resize",
                           content_layer=CONTENT_LAYER,
                           style_layers=STYLE_LAYERS, style_layer_weights=STYLE_LAYER_WEIGHTS,
                           content_weight=30.0, style_weight=1.0, tv_weight=0.0,
                           vgg_weights="imagenet"):
        """Builds the transformer and VGG19, and the style's Gram matrices.

        Args:
            style: the style image: a uint8 ``HxWx3`` array, a file path or an http(s)
                URL (fetched once into Keras' cache).
            style_size: resize the style so its long side is this (None: as it is).
            network: ``"johnson"`` (``resnet_generator``, 9x9 outer convs; ``upsample``
                applies) or ``"mobile"`` (``mobile_stylizer``).
            vgg_weights: ``"imagenet"``, a VGG19 weights file, or ``"random"``.
            Others: see the class and ``kstyle.nets.resnet.resnet_generator``.
        """
        from kstyle.data.images import fetch_image, resize_long_side, to_float

        image = np.asarray(style) if isinstance(style, np.ndarray) else fetch_image(style)
        image = to_float(image[None])
        if style_size:
            image = resize_long_side(image, style_size)
        if network not in NETWORKS:
            raise ValueError(f"Unknown network {network!r}; valid ones are: "
                             f"{', '.join(NETWORKS)}.")
        if network == "mobile":
            transformer = mobile_stylizer(base_filters=base_filters, num_blocks=num_blocks,
                                          norm=norm, name="transformer")
            multiple = MOBILE_SIZE_MULTIPLE
        else:
            transformer = resnet_generator(base_filters=base_filters, num_blocks=num_blocks,
                                           norm=norm, outer_kernel=9, upsample=upsample,
                                           name="transformer")
            multiple = RESNET_SIZE_MULTIPLE
        features = vgg19_features((content_layer, *style_layers), weights=vgg_weights,
                                  name="fast_style_features")
        style_features = features(image, training=False)
        grams = {layer: losses.gram_matrix(style_features[layer]).numpy()
                 for layer in style_layers}
        return cls(transformer, features, grams, content_layer=content_layer,
                   style_layers=style_layers, style_layer_weights=style_layer_weights,
                   content_weight=content_weight, style_weight=style_weight,
                   tv_weight=tv_weight, size_multiple=multiple)

    @property
    def translator(self):
        """The network used for inference and export."""
        return self.transformer

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

    def compile(self, g_optimizer, **kwargs):
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer

    @property
    def optimizers(self):
        """The optimizers by network name."""
        return {"transformer": self.g_optimizer}

    def build_optimizers(self):
        """Creates optimizer slots now, so that a checkpoint can be restored into them."""
        self.g_optimizer.build(self.transformer.trainable_variables)

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
