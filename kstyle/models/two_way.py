"""What every two-way GAN shares: two generators, two discriminators, two optimizers."""

from __future__ import annotations

import keras

from kstyle import losses
from kstyle.models.base import TranslationModel
from kstyle.optimizers import apply_gradients


class TwoWayGAN(TranslationModel):
    """Base of the models that translate both ways: ``a -> b`` and ``b -> a``.

    Holds ``generator_ab``, ``generator_ba``, ``discriminator_a`` and ``discriminator_b``
    and the plumbing that does not depend on the objective: the translators, one
    optimizer for both generators and one for both discriminators (as the CycleGAN
    reference chains their parameters), and the networks' (de)serialization. A subclass
    writes ``train_step``/``test_step``, its trackers and ``metrics``, and adds its own
    options to ``get_config``.

    Args:
        generator_ab: a model mapping domain-a images ``[N, H, W, C_a]`` in [-1, 1] to b.
        generator_ba: a model mapping domain-b images ``[N, H, W, C_b]`` to a.
        discriminator_a: a model scoring domain-a images, returning logits.
        discriminator_b: a model scoring domain-b images, returning logits.
        gan_mode: ``"vanilla" | "lsgan" | "hinge"`` (see ``kstyle.losses.gan_losses``).
        **kwargs: those of ``keras.Model``.

    Example:
        >>> class MyGAN(TwoWayGAN):
        ...     def train_step(self, data): ...
        >>> model = MyGAN(g_ab, g_ba, d_a, d_b, gan_mode="lsgan")
        >>> model.compile(g_optimizer=keras.optimizers.Adam(2e-4),
        ...               d_optimizer=keras.optimizers.Adam(2e-4))

    Reference:
        Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
        Networks", ICCV 2017, https://arxiv.org/abs/1703.10593.
    """

    #: Constructor arguments that hold networks, serialized as nested Keras objects
    #: (``None`` allowed).
    serialized_networks = ("generator_ab", "generator_ba", "discriminator_a",
                           "discriminator_b")
    #: One optimizer for both generators, one for both discriminators.
    optimizer_slots = {"g_optimizer": "generators", "d_optimizer": "discriminators"}

    def __init__(self, generator_ab, generator_ba, discriminator_a, discriminator_b,
                 gan_mode="lsgan", **kwargs):
        super().__init__(**kwargs)
        self.generator_ab = generator_ab
        self.generator_ba = generator_ba
        self.discriminator_a = discriminator_a
        self.discriminator_b = discriminator_b
        self.gan_mode = gan_mode
        self._g_gan_loss_fn, self._d_loss_fn = losses.gan_losses(gan_mode)

    @property
    def translators(self):
        """Both inference networks by direction."""
        return {"a2b": self.generator_ab, "b2a": self.generator_ba}

    @property
    def networks(self):
        """The checkpointed networks by name."""
        return {"generator_ab": self.generator_ab, "generator_ba": self.generator_ba,
                "discriminator_a": self.discriminator_a,
                "discriminator_b": self.discriminator_b}

    def _generator_variables(self):
        return self.generator_ab.trainable_variables + self.generator_ba.trainable_variables

    def _discriminator_variables(self):
        return (self.discriminator_a.trainable_variables
                + self.discriminator_b.trainable_variables)

    def optimized_variables(self):
        return {"g_optimizer": self._generator_variables(),
                "d_optimizer": self._discriminator_variables()}

    def _apply_gradients(self, g_tape, g_loss, d_tape, d_loss):
        g_vars = self._generator_variables()
        d_vars = self._discriminator_variables()
        apply_gradients(self.g_optimizer, g_tape, g_loss, g_vars)
        apply_gradients(self.d_optimizer, d_tape, d_loss, d_vars)

    def call(self, inputs, training=False):
        return self.generator_ab(inputs, training=training)

    def get_config(self):
        config = super().get_config()
        for key in self.serialized_networks:
            value = getattr(self, key)
            config[key] = None if value is None else keras.saving.serialize_keras_object(value)
        config["gan_mode"] = self.gan_mode
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in cls.serialized_networks:
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
