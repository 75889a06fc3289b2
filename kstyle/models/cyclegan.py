"""CycleGAN: two generators and two discriminators, for unpaired image-to-image translation."""

from __future__ import annotations

import keras
import tensorflow as tf

from kstyle import losses
from kstyle.models.cyclegan_options import CycleGANOptions
from kstyle.models.two_way import TwoWayGAN
from kstyle.nets.image_pool import ImagePool
from kstyle.nets.layers import all_layers
from kstyle.nets.patchgan import discriminator as build_discriminator
from kstyle.nets.resnet import RESNET_SIZE_MULTIPLE, resnet_generator
from kstyle.nets.vgg import vgg19_features


@keras.saving.register_keras_serializable(package="kstyle")
class FakeImagePools(keras.Model):
    """CycleGAN's two `ImagePool`s as one model, so that `save_weights` checkpoints them.

    Args:
        pool_size: Images kept by each pool; 0 disables both.
        **kwargs: Those of `keras.Model`.

    Example:
        >>> pools = FakeImagePools(pool_size=50)
        >>> pooled_a, pooled_b = pools((fake_a, fake_b))
        >>> pools.save_weights("pools.weights.h5")
    """

    def __init__(self, pool_size=50, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)
        self.fake_a = ImagePool(pool_size, name="fake_a_pool")
        self.fake_b = ImagePool(pool_size, name="fake_b_pool")
        # Built from the start: each pool builds its buffer on its first batch, or from
        # a checkpoint, and the holder has nothing of its own to build.
        self.built = True

    def call(self, inputs):
        fake_a, fake_b = inputs
        return self.fake_a(fake_a), self.fake_b(fake_b)

    def build_buffers(self, shape_a, shape_b):
        """Builds the buffers now, for fakes of shape ``(H, W, C)`` in each domain.

        Otherwise each pool builds on its first batch, inside the traced training step,
        which a tf.distribute strategy does not allow (variables must exist before the
        step runs on the replicas).
        """
        for pool, shape in ((self.fake_a, shape_a), (self.fake_b, shape_b)):
            if pool.pool_size and not pool.built:
                pool.build((None, *shape))

    def get_config(self):
        config = super().get_config()
        config["pool_size"] = self.pool_size
        return config


@keras.saving.register_keras_serializable(package="kstyle")
class CycleGAN(TwoWayGAN):
    """CycleGAN: two generators, a -> b and b -> a, each against a PatchGAN of its domain.

    Objective, with ``G_ab``/``G_ba`` the generators, ``D_a``/``D_b`` the discriminators,
    ``|.|_1`` the mean absolute error and ``F`` VGG19 features:

        g_loss = G_loss(D_b(G_ab(a))) + G_loss(D_a(G_ba(b)))                 (g_ab, g_ba)
                 + lambda_cycle * (|G_ba(G_ab(a)) - a|_1 + |G_ab(G_ba(b)) - b|_1)   (cycle)
                 + lambda_cycle * lambda_identity * (|G_ba(a) - a|_1 + |G_ab(b) - b|_1)
                 + lambda_perceptual * (|F(G_ba(G_ab(a))) - F(a)|_1
                                        + |F(G_ab(G_ba(b))) - F(b)|_1)
        d_a_loss = 0.5 * D_loss(D_a(a), D_a(pool_a(G_ba(b))))
        d_b_loss = 0.5 * D_loss(D_b(b), D_b(pool_b(G_ab(a))))

    where ``G_loss``/``D_loss`` are the GAN losses chosen by ``gan_mode`` (``"lsgan"`` in
    the paper) and ``pool_a``/``pool_b`` are ``ImagePool``s: the discriminators learn on a
    history of fakes. The identity term is computed only when ``lambda_identity > 0``,
    the perceptual one only when ``lambda_perceptual > 0`` (the distance between feature
    maps is their mean absolute difference, summed over the extractor's layers; not part
    of the paper's objective). One optimizer updates both generators and one both
    discriminators, as the reference chains their parameters, from the same forward
    pass (the discriminators' parameters do not change between the reference's generator
    and discriminator steps, so the gradients are the same).

    Logs: ``g_loss`` (the total above), ``g_ab_loss``, ``g_ba_loss``, ``cycle_loss``,
    ``identity_loss`` and ``perceptual_loss`` (the unweighted sums of both directions; the
    last two only when their weight is > 0), ``d_a_loss``, ``d_b_loss``. Evaluation logs
    ``cycle_l1``, the unweighted cycle term of both directions (``cycle_loss`` on
    held-out pairs).

    The checkpointed state is ``networks``: the four networks plus ``"pools"``, a
    ``FakeImagePools`` model holding both pools' buffers.

    Args:
        generator_ab: a model mapping domain-a images ``[N, H, W, C_a]`` in [-1, 1] to b.
        generator_ba: a model mapping domain-b images ``[N, H, W, C_b]`` to a.
        discriminator_a: a model scoring domain-a images, returning logits.
        discriminator_b: a model scoring domain-b images, returning logits.
        feature_extractor: a model mapping images to a dict of feature maps (see
            ``kstyle.nets.vgg.vgg19_features``); needed when ``lambda_perceptual > 0``.
        gan_mode: ``"vanilla" | "lsgan" | "hinge"``.
        lambda_cycle: weight of the cycle-consistency terms (``lambda_A = lambda_B``).
        lambda_identity: weight of the identity terms relative to ``lambda_cycle``.
        lambda_perceptual: weight of the perceptual cycle terms.
        pool_size: images kept by each pool; 0 feeds the discriminators the latest fakes.

    Example:
        >>> model = CycleGAN.build_from_options(base_filters=8, num_blocks=2)
        >>> model.compile(g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        ...               d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
        >>> model.fit(dataset_of_unpaired_a_b_batches, epochs=1)
        >>> fake_b = model.translators["a2b"](real_a)

    Reference:
        Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
        Networks", ICCV 2017, https://arxiv.org/abs/1703.10593.
    """

    Options = CycleGANOptions
    #: What ``test_step`` reports: L1 of both cycles.
    val_metric = "cycle_l1"
    #: The ResNet generators take any side that is a multiple of 4.
    size_multiple = RESNET_SIZE_MULTIPLE
    serialized_networks = (*TwoWayGAN.serialized_networks, "feature_extractor")

    def __init__(self, generator_ab, generator_ba, discriminator_a, discriminator_b,
                 feature_extractor=None, gan_mode="lsgan", lambda_cycle=10.0,
                 lambda_identity=0.5, lambda_perceptual=0.0, pool_size=50, **kwargs):
        super().__init__(generator_ab, generator_ba, discriminator_a, discriminator_b,
                         gan_mode=gan_mode, **kwargs)
        if lambda_perceptual > 0 and feature_extractor is None:
            raise ValueError("lambda_perceptual > 0 needs a feature_extractor.")
        self.feature_extractor = feature_extractor
        self.lambda_cycle = float(lambda_cycle)
        self.lambda_identity = float(lambda_identity)
        self.lambda_perceptual = float(lambda_perceptual)
        self.pool_size = int(pool_size)
        self.pools = FakeImagePools(self.pool_size, name="pools")

        names = ["g_loss", "g_ab_loss", "g_ba_loss", "cycle_loss"]
        if self.lambda_identity > 0:
            names.append("identity_loss")
        if self.lambda_perceptual > 0:
            names.append("perceptual_loss")
        names += ["d_a_loss", "d_b_loss"]
        self.train_trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.cycle_l1_tracker = keras.metrics.Mean(name="cycle_l1")

    @classmethod
    def from_options(cls, options: CycleGANOptions, *, in_channels=3, out_channels=3):
        """Builds the four networks (and VGG19 if needed) from the options, then the model.

        ``in_channels`` are domain a's channels and ``out_channels`` domain b's; the
        identity terms need them equal. VGG19 (``perceptual_layers``, ``vgg_weights``) is
        built only when ``lambda_perceptual > 0``.
        """
        o = options
        if o.lambda_identity > 0 and in_channels != out_channels:
            raise ValueError(
                "lambda_identity > 0 needs in_channels == out_channels, got "
                f"{in_channels} and {out_channels}.")
        generator = {"base_filters": o.base_filters, "num_blocks": o.num_blocks,
                     "norm": o.norm, "dropout": o.dropout}
        discriminator = {"base_filters": o.d_base_filters, "n_layers": o.d_layers,
                         "norm": o.norm}
        feature_extractor = None
        if o.lambda_perceptual > 0:
            feature_extractor = vgg19_features(tuple(o.perceptual_layers),
                                               weights=o.vgg_weights)
        return cls(
            resnet_generator(in_channels, out_channels, **generator, name="generator_ab"),
            resnet_generator(out_channels, in_channels, **generator, name="generator_ba"),
            build_discriminator(o.discriminator, in_channels, **discriminator,
                                name="discriminator_a"),
            build_discriminator(o.discriminator, out_channels, **discriminator,
                                name="discriminator_b"),
            feature_extractor=feature_extractor, gan_mode=o.gan_mode,
            lambda_cycle=o.lambda_cycle, lambda_identity=o.lambda_identity,
            lambda_perceptual=o.lambda_perceptual, pool_size=o.pool_size)

    def build_state(self, image_size):
        """Builds the image pools' buffers for training crops of ``image_size``."""
        size = (image_size, image_size)
        self.pools.build_buffers((*size, self.generator_ba.output.shape[-1]),
                                 (*size, self.generator_ab.output.shape[-1]))

    def sample_columns(self, real_a, real_b):
        """Named image batches (float, [-1, 1]) for a sample grid: both directions."""
        fake_b = self.generator_ab(real_a, training=False)
        fake_a = self.generator_ba(real_b, training=False)
        return {"real_a": real_a, "fake_b": fake_b,
                "cycled_a": self.generator_ba(fake_b, training=False),
                "real_b": real_b, "fake_a": fake_a,
                "cycled_b": self.generator_ab(fake_a, training=False)}

    @property
    def networks(self):
        """The checkpointed state by name: the four networks and the image pools."""
        return {**super().networks, "pools": self.pools}

    @property
    def metrics(self):
        return [*self.train_trackers.values(), self.cycle_l1_tracker]

    def _perceptual_distance(self, real, cycled):
        real_features = self.feature_extractor(real, training=False)
        cycled_features = self.feature_extractor(cycled, training=False)
        return sum(losses.l1_loss(tf.stop_gradient(real_features[name]), cycled_features[name])
                   for name in sorted(real_features))

    def train_step(self, data):
        # 1. Translate: fake_b = G_ab(real_a), fake_a = G_ba(real_b).
        # 2. Translate back: cycled_a = G_ba(fake_b), cycled_b = G_ab(fake_a).
        # 3. Identity (lambda_identity > 0): identity_b = G_ab(real_b), identity_a =
        #    G_ba(real_a).
        # 4. Generator loss: fool D_b with fake_b and D_a with fake_a, plus the weighted
        #    cycle, identity and perceptual terms.
        # 5. Draw the discriminators' fakes from the pools (stored past fakes, no gradient).
        # 6. Discriminator losses: real -> real, pooled fake -> fake, halved, per domain.
        # 7. Apply both updates: one optimizer for both generators, one for both
        #    discriminators.
        # A network's calls on batches known at once (1 and 3, the discriminators' real
        # and pooled batches) are one call on their concatenation (see `_run`).
        real_a, real_b = data
        logs = {}
        identity = self.lambda_identity > 0
        with tf.GradientTape() as g_tape:
            if identity:
                fake_b, identity_b = self._run(self.generator_ab, real_a, real_b)
                fake_a, identity_a = self._run(self.generator_ba, real_b, real_a)
            else:
                fake_b = self.generator_ab(real_a, training=True)
                fake_a = self.generator_ba(real_b, training=True)
            cycled_a = self.generator_ba(fake_b, training=True)
            cycled_b = self.generator_ab(fake_a, training=True)
            logs["g_ab_loss"] = self._g_gan_loss_fn(self.discriminator_b(fake_b, training=True))
            logs["g_ba_loss"] = self._g_gan_loss_fn(self.discriminator_a(fake_a, training=True))
            logs["cycle_loss"] = (losses.l1_loss(real_a, cycled_a)
                                  + losses.l1_loss(real_b, cycled_b))
            g_loss = (logs["g_ab_loss"] + logs["g_ba_loss"]
                      + self.lambda_cycle * logs["cycle_loss"])
            if identity:
                logs["identity_loss"] = (losses.l1_loss(real_a, identity_a)
                                         + losses.l1_loss(real_b, identity_b))
                g_loss += self.lambda_cycle * self.lambda_identity * logs["identity_loss"]
            if self.lambda_perceptual > 0:
                logs["perceptual_loss"] = (self._perceptual_distance(real_a, cycled_a)
                                           + self._perceptual_distance(real_b, cycled_b))
                g_loss += self.lambda_perceptual * logs["perceptual_loss"]
        logs["g_loss"] = g_loss

        pooled_fake_a, pooled_fake_b = self.pools((fake_a, fake_b))
        with tf.GradientTape() as d_tape:
            logs["d_a_loss"] = 0.5 * self._d_loss_fn(
                *self._run(self.discriminator_a, real_a, pooled_fake_a))
            logs["d_b_loss"] = 0.5 * self._d_loss_fn(
                *self._run(self.discriminator_b, real_b, pooled_fake_b))
            d_loss = logs["d_a_loss"] + logs["d_b_loss"]

        self._apply_gradients(g_tape, g_loss, d_tape, d_loss)

        for name, tracker in self.train_trackers.items():
            tracker.update_state(logs[name])
        return {name: tracker.result() for name, tracker in self.train_trackers.items()}

    def _run(self, network, *batches):
        """``network`` in training mode on each of ``batches``.

        When the networks compute each image on its own (:attr:`per_image`), as one call
        on the batches' concatenation: the same values as one call per batch, with a
        third fewer ops in a CycleGAN step to trace, optimize and run (a shorter first
        step, and a slightly faster one after it).
        """
        if not self.per_image:
            return [network(batch, training=True) for batch in batches]
        sizes = [batch.shape[0] if batch.shape[0] is not None else tf.shape(batch)[0]
                 for batch in batches]
        return tf.split(network(tf.concat(batches, 0), training=True), sizes)

    @property
    def per_image(self) -> bool:
        """Whether the four networks compute each image of a batch on its own: true
        unless one has batch normalization, whose statistics span the batch."""
        return not any(isinstance(layer, keras.layers.BatchNormalization)
                       for network in super().networks.values()
                       for layer in all_layers(network))

    def test_step(self, data):
        real_a, real_b = data
        cycled_a = self.generator_ba(self.generator_ab(real_a, training=False), training=False)
        cycled_b = self.generator_ab(self.generator_ba(real_b, training=False), training=False)
        self.cycle_l1_tracker.update_state(
            losses.l1_loss(real_a, cycled_a) + losses.l1_loss(real_b, cycled_b))
        return {"cycle_l1": self.cycle_l1_tracker.result()}

    def get_config(self):
        config = super().get_config()
        config.update({
            "lambda_cycle": self.lambda_cycle,
            "lambda_identity": self.lambda_identity,
            "lambda_perceptual": self.lambda_perceptual,
            "pool_size": self.pool_size,
        })
        return config
