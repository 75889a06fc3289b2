"""pix2pix: conditional GAN with an L1 term, for paired image-to-image translation."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from kstyle import losses
from kstyle.models.base import TranslationModel
from kstyle.models.pix2pix_options import Pix2PixOptions
from kstyle.nets import unet_generator
from kstyle.nets.patchgan import discriminator as build_discriminator
from kstyle.optimizers import apply_gradients


@keras.saving.register_keras_serializable(package="kstyle")
class Pix2Pix(TranslationModel):
    """pix2pix: a U-Net generator trained against a conditional PatchGAN.

    Objective, with ``a`` the input, ``b`` the target and ``G(a)`` the translation:

        d_loss = 0.5 * D_loss(D(a, b), D(a, G(a)))            trains discriminator
        g_loss = G_loss(D(a, G(a))) + lambda_l1 * |b - G(a)|_1  trains generator

    where ``D_loss``/``G_loss`` are the GAN losses chosen by ``gan_mode`` (vanilla, lsgan or
    hinge; see ``kstyle.losses``). As in TensorFlow's pix2pix tutorial, both networks are
    updated from the same forward pass.

    Args:
        generator: a model mapping ``[N, H, W, C_a]`` in [-1, 1] to ``[N, H, W, C_b]``.
        discriminator: a model taking ``concat(a, b)`` on channels, returning logits.
        lambda_l1: weight of the L1 term.
        gan_mode: ``"vanilla" | "lsgan" | "hinge"``.

    Example:
        >>> model = Pix2Pix.build_from_options(base_filters=8, num_downs=5)
        >>> model.compile(g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        ...               d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
        >>> model.fit(dataset_of_pairs, epochs=1)

    Reference:
        Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks",
        CVPR 2017.
    """

    Options = Pix2PixOptions
    #: What ``test_step`` reports: L1 between translation and target.
    val_metric = "l1"

    def __init__(self, generator, discriminator, lambda_l1=100.0, gan_mode="vanilla",
                 size_multiple=1, **kwargs):
        super().__init__(**kwargs)
        self.size_multiple = int(size_multiple)
        self.generator = generator
        self.discriminator = discriminator
        self.lambda_l1 = float(lambda_l1)
        self.gan_mode = gan_mode
        self._g_gan_loss_fn, self._d_loss_fn = losses.gan_losses(gan_mode)
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.g_gan_loss_tracker = keras.metrics.Mean(name="g_gan_loss")
        self.g_l1_loss_tracker = keras.metrics.Mean(name="g_l1_loss")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.l1_tracker = keras.metrics.Mean(name="l1")

    @classmethod
    def from_options(cls, options: Pix2PixOptions, *, in_channels=3, out_channels=3):
        """Builds the generator and discriminator from the options, then the model."""
        o = options
        generator = unet_generator(
            in_channels=in_channels, out_channels=out_channels, base_filters=o.base_filters,
            num_downs=o.num_downs, norm=o.norm, dropout=o.dropout)
        discriminator = build_discriminator(
            o.discriminator, in_channels + out_channels, base_filters=o.d_base_filters,
            n_layers=o.d_layers, norm=o.norm, name="patchgan_discriminator")
        return cls(generator, discriminator, lambda_l1=o.lambda_l1, gan_mode=o.gan_mode,
                   size_multiple=2**o.num_downs)

    @property
    def translators(self):
        """Inference networks by direction (never the discriminator)."""
        return {"a2b": self.generator}

    def sample_columns(self, real_a, real_b):
        """Named image batches (float, [-1, 1]) for a sample grid."""
        return {"input": real_a, "output": self.generator(real_a, training=False),
                "target": real_b}

    @property
    def networks(self):
        """The trained networks by name, the keys used in checkpoints."""
        return {"generator": self.generator, "discriminator": self.discriminator}

    @property
    def metrics(self):
        return [self.g_loss_tracker, self.g_gan_loss_tracker, self.g_l1_loss_tracker,
                self.d_loss_tracker, self.l1_tracker]

    def optimized_variables(self):
        return {"g_optimizer": self.generator.trainable_variables,
                "d_optimizer": self.discriminator.trainable_variables}

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def train_step(self, data):
        # 1. Translate: fake_b = G(real_a).
        # 2. Score (a, b) and (a, fake_b) with the conditional discriminator.
        # 3. Discriminator loss: real pairs -> real, translated pairs -> fake (halved).
        # 4. Generator loss: fool the discriminator + lambda_l1 * L1(real_b, fake_b).
        # 5. Apply both updates.
        real_a, real_b = data
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake_b = self.generator(real_a, training=True)
            real_logits = self.discriminator(
                ops.concatenate([real_a, real_b], axis=-1), training=True)
            fake_logits = self.discriminator(
                ops.concatenate([real_a, fake_b], axis=-1), training=True)
            d_loss = 0.5 * self._d_loss_fn(real_logits, fake_logits)
            g_gan_loss = self._g_gan_loss_fn(fake_logits)
            g_l1_loss = losses.l1_loss(real_b, fake_b)
            g_loss = g_gan_loss + self.lambda_l1 * g_l1_loss

        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        apply_gradients(self.g_optimizer, g_tape, g_loss, g_vars)
        apply_gradients(self.d_optimizer, d_tape, d_loss, d_vars)

        self.g_loss_tracker.update_state(g_loss)
        self.g_gan_loss_tracker.update_state(g_gan_loss)
        self.g_l1_loss_tracker.update_state(g_l1_loss)
        self.d_loss_tracker.update_state(d_loss)
        return {m.name: m.result() for m in self.metrics[:4]}

    def test_step(self, data):
        real_a, real_b = data
        fake_b = self.generator(real_a, training=False)
        self.l1_tracker.update_state(losses.l1_loss(real_b, fake_b))
        return {"l1": self.l1_tracker.result()}

    def get_config(self):
        config = super().get_config()
        config.update({
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "lambda_l1": self.lambda_l1,
            "gan_mode": self.gan_mode,
            "size_multiple": self.size_multiple,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
