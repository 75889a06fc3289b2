"""Arbitrary style transfer in one pass (Huang & Belongie): AdaIN and a trained decoder."""

from __future__ import annotations

import keras
import tensorflow as tf

from kstyle.models.adain_options import SIZE_MULTIPLE, AdaINOptions
from kstyle.models.base import TranslationModel
from kstyle.nets.adain import (
    ENCODER_OUTPUTS,
    AdaptiveInstanceNormalization,
    adain_decoder,
    adain_encoder,
    adain_stylizer,
    channel_statistics,
)
from kstyle.optimizers import apply_gradients


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
            encoder = adain_encoder(options.vgg_weights, name="loss_encoder")
        else:
            encoder = adain_encoder(options.vgg_weights)
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
