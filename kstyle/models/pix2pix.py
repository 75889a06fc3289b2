"""pix2pix: conditional GAN with an L1 term, for paired image-to-image translation."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from kstyle import losses
from kstyle.nets import patchgan_discriminator, unet_generator
from kstyle.optimizers import apply_gradients


@keras.saving.register_keras_serializable(package="kstyle")
class Pix2Pix(keras.Model):
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

    #: Training data: (input, target) pairs.
    data_kind = "paired"
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
    def build_from_options(cls, *, in_channels=3, out_channels=3, base_filters=64, num_downs=8,
                           norm="batch", dropout=0.5, d_base_filters=64, d_layers=3,
                           gan_mode="vanilla", lambda_l1=100.0):
        """Builds the generator and discriminator from plain options, then the model."""
        generator = unet_generator(
            in_channels=in_channels, out_channels=out_channels, base_filters=base_filters,
            num_downs=num_downs, norm=norm, dropout=dropout)
        discriminator = patchgan_discriminator(
            in_channels=in_channels + out_channels, base_filters=d_base_filters,
            n_layers=d_layers, norm=norm)
        return cls(generator, discriminator, lambda_l1=lambda_l1, gan_mode=gan_mode,
                   size_multiple=2**num_downs)

    @property
    def translator(self):
        """The network used for inference and export (never the discriminator)."""
        return self.generator

    @property
    def translators(self):
        """Inference networks by direction."""
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

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer

    @property
    def optimizers(self):
        """The optimizers by network name."""
        return {"generator": self.g_optimizer, "discriminator": self.d_optimizer}

    def build_optimizers(self):
        """Creates optimizer slots now, so that a checkpoint can be restored into them."""
        for name, net in self.networks.items():
            self.optimizers[name].build(net.trainable_variables)

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
