"""Cross-domain autoencoder GAN (CDAE): supervised two-way translation, e.g. gray <-> color."""

from __future__ import annotations

import keras
import tensorflow as tf

from kstyle import losses
from kstyle.models.cdae_options import CDAEOptions
from kstyle.models.two_way import TwoWayGAN
from kstyle.nets.patchgan import discriminator as build_discriminator
from kstyle.nets.unet import size_multiple as unet_size_multiple
from kstyle.nets.unet import unet_generator


@keras.saving.register_keras_serializable(package="kstyle")
class CDAE(TwoWayGAN):
    """Cross-domain autoencoder GAN: two encoder-decoders, a -> b and b -> a, trained on pairs.

    Each domain is converted into the other by its own mapping, an autoencoder (8 stride-2
    convs down, 7 deconvs up and an output deconv at 256 px; ``unet_generator`` with
    ``skips=False``, or a U-Net with ``skips=True``), and each output domain has a
    PatchGAN. Because the training pairs ``(a, b)`` are known, both mappings are
    supervised by their targets, and each round trip must return to its start.

    Objective, with ``G_ab``/``G_ba`` the generators, ``D_a``/``D_b`` the discriminators
    and ``|.|_1`` the mean absolute error:

        fake_b = G_ab(a)            fake_a = G_ba(b)
        recon_a = G_ba(fake_b)      recon_b = G_ab(fake_a)

        g_ab_loss   = mean((D_b(fake_b) - 1)^2)                     trains G_ab, weight 1
        g_ba_loss   = mean((D_a(fake_a) - 1)^2)                     trains G_ba, weight 1
        target_loss = |fake_b - b|_1 + |fake_a - a|_1        trains G_ab, G_ba; lambda_target
        recon_loss  = |recon_a - a|_1 + |recon_b - b|_1   trains G_ab and G_ba; lambda_recon

        g_loss = g_ab_loss + g_ba_loss + lambda_target * target_loss
                 + lambda_recon * recon_loss                        one optimizer, G_ab + G_ba

        d_a_loss = 0.5 * (mean((D_a(a) - 1)^2) + mean(D_a(fake_a)^2))    trains D_a
        d_b_loss = 0.5 * (mean((D_b(b) - 1)^2) + mean(D_b(fake_b)^2))    trains D_b
        d_loss = d_a_loss + d_b_loss                                one optimizer, D_a + D_b

    The squares are the least-squares GAN losses of ``gan_mode="lsgan"`` (the default);
    ``"vanilla"`` and ``"hinge"`` swap in the other pairs of ``kstyle.losses.gan_losses``
    (generator term ``G_loss(D(fake))``, discriminator term ``0.5 * D_loss(D(real),
    D(fake))``). Both reconstruction terms go through both generators, so each trains
    both. Every network is updated from the same forward pass; the fakes reach the
    discriminator loss, but the discriminator optimizer only moves the discriminators.

    Logs: ``g_loss`` (the total), ``g_ab_loss``, ``g_ba_loss``, ``target_loss`` and
    ``recon_loss`` (unweighted, both directions summed), ``d_a_loss``, ``d_b_loss``.
    Evaluation logs ``l1 = |G_ab(a) - b|_1``, the quality of the a -> b direction (for
    colorization, gray -> color) and ``l1_b2a = |G_ba(b) - a|_1``.

    Args:
        generator_ab: a model mapping domain-a images ``[N, H, W, C_a]`` in [-1, 1] to b.
        generator_ba: a model mapping domain-b images ``[N, H, W, C_b]`` to a.
        discriminator_a: a model scoring domain-a images, returning logits.
        discriminator_b: a model scoring domain-b images, returning logits.
        gan_mode: ``"vanilla" | "lsgan" | "hinge"``.
        lambda_target: weight of the supervised target terms.
        lambda_recon: weight of the reconstruction (round-trip) terms.
        size_multiple: the number input sides must be multiples of (``2**num_downs``).

    Example:
        >>> model = CDAE.build_from_options(base_filters=8, num_downs=5, d_base_filters=8)
        >>> model.compile(g_optimizer=keras.optimizers.Adam(5e-3),
        ...               d_optimizer=keras.optimizers.Adam(5e-3))
        >>> model.fit(dataset_of_gray_color_pairs, epochs=1)
        >>> gray = model.translators["b2a"](color)

    Reference:
        Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017,
        https://arxiv.org/abs/1611.04076 (the adversarial terms); Isola et al.,
        "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017,
        https://arxiv.org/abs/1611.07004 (encoder-decoder and PatchGAN, the L1 target
        term); Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent
        Adversarial Networks", ICCV 2017, https://arxiv.org/abs/1703.10593 (the
        reconstruction term).
    """

    Options = CDAEOptions
    #: What ``test_step`` reports first: L1 of the a -> b translation against b.
    val_metric = "l1"

    def __init__(self, generator_ab, generator_ba, discriminator_a, discriminator_b,
                 gan_mode="lsgan", lambda_target=100.0, lambda_recon=10.0, size_multiple=1,
                 **kwargs):
        super().__init__(generator_ab, generator_ba, discriminator_a, discriminator_b,
                         gan_mode=gan_mode, **kwargs)
        self.lambda_target = float(lambda_target)
        self.lambda_recon = float(lambda_recon)
        self.size_multiple = int(size_multiple)
        names = ["g_loss", "g_ab_loss", "g_ba_loss", "target_loss", "recon_loss",
                 "d_a_loss", "d_b_loss"]
        self.train_trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.val_trackers = {n: keras.metrics.Mean(name=n) for n in ("l1", "l1_b2a")}

    @classmethod
    def from_options(cls, options: CDAEOptions, *, in_channels=3, out_channels=3):
        """Builds the two generators and two discriminators from the options, then the model.

        ``in_channels`` are domain a's channels and ``out_channels`` domain b's. The
        generators are ``unet_generator``s of ``num_downs`` levels, plain autoencoders
        unless ``skips``; the discriminators unconditional PatchGANs with the same norm.
        """
        o = options
        generator = {"base_filters": o.base_filters, "num_downs": o.num_downs, "norm": o.norm,
                     "dropout": o.dropout, "skips": o.skips}
        discriminator = {"base_filters": o.d_base_filters, "n_layers": o.d_layers,
                         "norm": o.norm}
        return cls(
            unet_generator(in_channels, out_channels, **generator, name="generator_ab"),
            unet_generator(out_channels, in_channels, **generator, name="generator_ba"),
            build_discriminator(o.discriminator, in_channels, **discriminator,
                                name="discriminator_a"),
            build_discriminator(o.discriminator, out_channels, **discriminator,
                                name="discriminator_b"),
            gan_mode=o.gan_mode, lambda_target=o.lambda_target, lambda_recon=o.lambda_recon,
            size_multiple=unet_size_multiple(o.num_downs))

    def sample_columns(self, real_a, real_b):
        """Named image batches (float, [-1, 1]) for a sample grid: both directions."""
        fake_b = self.generator_ab(real_a, training=False)
        return {"real_a": real_a, "fake_b": fake_b, "real_b": real_b,
                "fake_a": self.generator_ba(real_b, training=False),
                "recon_a": self.generator_ba(fake_b, training=False)}

    @property
    def metrics(self):
        return [*self.train_trackers.values(), *self.val_trackers.values()]

    def train_step(self, data):
        # 1. Translate: fake_b = G_ab(real_a), fake_a = G_ba(real_b).
        # 2. Translate back: recon_a = G_ba(fake_b), recon_b = G_ab(fake_a).
        # 3. Score real and translated images with the discriminator of their domain.
        # 4. Generator loss: fool D_b with fake_b and D_a with fake_a, plus lambda_target *
        #    the supervised target terms and lambda_recon * the reconstruction terms.
        # 5. Discriminator losses: real -> real, translated -> fake, halved, per domain.
        # 6. Apply both updates: one optimizer for both generators, one for both
        #    discriminators.
        real_a, real_b = data
        logs = {}
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake_b = self.generator_ab(real_a, training=True)
            fake_a = self.generator_ba(real_b, training=True)
            recon_a = self.generator_ba(fake_b, training=True)
            recon_b = self.generator_ab(fake_a, training=True)
            fake_b_logits = self.discriminator_b(fake_b, training=True)
            fake_a_logits = self.discriminator_a(fake_a, training=True)
            logs["g_ab_loss"] = self._g_gan_loss_fn(fake_b_logits)
            logs["g_ba_loss"] = self._g_gan_loss_fn(fake_a_logits)
            logs["target_loss"] = (losses.l1_loss(real_b, fake_b)
                                   + losses.l1_loss(real_a, fake_a))
            logs["recon_loss"] = (losses.l1_loss(real_a, recon_a)
                                  + losses.l1_loss(real_b, recon_b))
            g_loss = (logs["g_ab_loss"] + logs["g_ba_loss"]
                      + self.lambda_target * logs["target_loss"]
                      + self.lambda_recon * logs["recon_loss"])
            logs["d_a_loss"] = 0.5 * self._d_loss_fn(
                self.discriminator_a(real_a, training=True), fake_a_logits)
            logs["d_b_loss"] = 0.5 * self._d_loss_fn(
                self.discriminator_b(real_b, training=True), fake_b_logits)
            d_loss = logs["d_a_loss"] + logs["d_b_loss"]
        logs["g_loss"] = g_loss

        self._apply_gradients(g_tape, g_loss, d_tape, d_loss)

        for name, tracker in self.train_trackers.items():
            tracker.update_state(logs[name])
        return {name: tracker.result() for name, tracker in self.train_trackers.items()}

    def test_step(self, data):
        real_a, real_b = data
        self.val_trackers["l1"].update_state(
            losses.l1_loss(real_b, self.generator_ab(real_a, training=False)))
        self.val_trackers["l1_b2a"].update_state(
            losses.l1_loss(real_a, self.generator_ba(real_b, training=False)))
        return {name: tracker.result() for name, tracker in self.val_trackers.items()}

    def get_config(self):
        config = super().get_config()
        config.update({
            "lambda_target": self.lambda_target,
            "lambda_recon": self.lambda_recon,
            "size_multiple": self.size_multiple,
        })
        return config
