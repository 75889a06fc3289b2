"""CUT and FastCUT: one generator, one discriminator and a patchwise contrastive loss,
for unpaired image-to-image translation."""

from __future__ import annotations

import keras
import tensorflow as tf

from kstyle import losses
from kstyle.models.base import TranslationModel
from kstyle.models.cut_options import NCE_LAYERS, CUTOptions
from kstyle.nets.patch_nce import PatchHead, initialize, patch_ids, sample_patches
from kstyle.nets.patchgan import discriminator as build_discriminator
from kstyle.nets.resnet import RESNET_SIZE_MULTIPLE, resnet_generator
from kstyle.optimizers import apply_gradients


@keras.saving.register_keras_serializable(package="kstyle")
class CUT(TranslationModel):
    """Contrastive Unpaired Translation: a ResNet generator ``G`` against a PatchGAN ``D``,
    with PatchNCE between the input and the output instead of a cycle.

    Objective, with ``a`` a domain-A batch, ``b`` a domain-B batch, ``E_l`` the
    generator's own encoder up to its sampled layer ``l`` (``nce_layers``, by name), ``H_l``
    the head's MLP for that layer (then L2-normalized), and ``S`` the same random
    positions for both arguments of one term:

        d_loss = 0.5 * D_loss(D(b), D(G(a)))                         (updated first)
        nce(x, y) = mean_l PatchNCE(H_l(S(E_l(y))), H_l(S(E_l(x))))   (x's side detached)
        g_loss = lambda_gan * G_loss(D(G(a)))                        (D after its update)
                 + lambda_nce * nce(a, G(a))                                   FastCUT
                 + lambda_nce * (nce(a, G(a)) + nce(b, G(b))) / 2    instead, with nce_idt (CUT)

    where ``D_loss``/``G_loss`` are the GAN losses of ``gan_mode`` (LSGAN in the paper) and
    PatchNCE is :func:`kstyle.losses.patch_nce_loss` (negatives from the same image,
    temperature ``nce_temperature``). With ``flip_equivariance`` (FastCUT), each step flips
    its inputs left-right with probability 1/2 before ``G`` and flips the output's features
    back before comparing them with the unflipped input's. The head is optimized with the
    generator (one Adam over both, which is the reference's two Adams of the same settings
    stepping together).

    Logs: ``g_loss``, ``g_gan_loss``, ``nce_loss`` (the unweighted a -> G(a) term),
    ``nce_idt_loss`` (with ``nce_idt``), ``d_loss``. Evaluation logs ``nce``, the unweighted
    PatchNCE of held-back A images and their translations.

    Args:
        generator: the ResNet generator (``kstyle.nets.resnet``), whose layers ``nce_layers``
            name.
        discriminator: a model scoring domain-B images, returning logits.
        head: a :class:`kstyle.nets.patch_nce.PatchHead` with one MLP per sampled layer.
        nce_layers: the generator's layers PatchNCE compares.
        gan_mode: ``"vanilla" | "lsgan" | "hinge"``.
        lambda_gan, lambda_nce: the weights above.
        nce_idt: add the identity term ``nce(b, G(b))`` (CUT).
        flip_equivariance: FastCUT's random flips.
        num_patches: positions sampled per layer (256).
        nce_temperature: PatchNCE's temperature (0.07).

    Example:
        >>> model = CUT.build_from_options(base_filters=8, num_blocks=5)
        >>> model.compile(g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        ...               d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
        >>> model.fit(dataset_of_unpaired_a_b_batches, epochs=1)

    Reference:
        Park, Efros, Zhang and Zhu, "Contrastive Learning for Unpaired Image-to-Image
        Translation", ECCV 2020, https://arxiv.org/abs/2007.15651.
    """

    Options = CUTOptions
    #: What ``test_step`` reports: PatchNCE between held-back inputs and their outputs.
    val_metric = "nce"
    #: The ResNet generator takes any side that is a multiple of 4.
    size_multiple = RESNET_SIZE_MULTIPLE

    def __init__(self, generator, discriminator, head, nce_layers=tuple(NCE_LAYERS),
                 gan_mode="lsgan", lambda_gan=1.0, lambda_nce=1.0, nce_idt=True,
                 flip_equivariance=False, num_patches=256, nce_temperature=0.07, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.head = head
        self.nce_layers = list(nce_layers)
        self.gan_mode = gan_mode
        self.lambda_gan = float(lambda_gan)
        self.lambda_nce = float(lambda_nce)
        self.nce_idt = bool(nce_idt)
        self.flip_equivariance = bool(flip_equivariance)
        self.num_patches = int(num_patches)
        self.nce_temperature = float(nce_temperature)
        self._g_gan_loss_fn, self._d_loss_fn = losses.gan_losses(gan_mode)
        # The generator's own layers, as far as the deepest sampled one: its features.
        self.encoder = keras.Model(generator.inputs,
                                   [generator.get_layer(n).output for n in self.nce_layers],
                                   name="encoder")
        names = ["g_loss", "g_gan_loss", "nce_loss"]
        if self.nce_idt:
            names.append("nce_idt_loss")
        names.append("d_loss")
        self.train_trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.nce_tracker = keras.metrics.Mean(name="nce")

    @classmethod
    def from_options(cls, options: CUTOptions, *, in_channels=3, out_channels=3):
        """Builds the generator, the discriminator and the head, initialized as the
        reference does (``init``, ``init_gain``), then the model."""
        o = options
        if o.nce_idt and in_channels != out_channels:
            raise ValueError("nce_idt needs in_channels == out_channels, got "
                             f"{in_channels} and {out_channels}.")
        generator = resnet_generator(in_channels, out_channels, base_filters=o.base_filters,
                                     num_blocks=o.num_blocks, norm=o.norm, name="generator")
        discriminator = build_discriminator(o.discriminator, out_channels,
                                            base_filters=o.d_base_filters,
                                            n_layers=o.d_layers, norm=o.norm,
                                            name="discriminator")
        head = PatchHead([generator.get_layer(n).output.shape[-1] for n in o.nce_layers],
                         o.head_units, name="head")
        for network in (generator, discriminator, head):
            initialize(network, o.init, o.init_gain)
        return cls(generator, discriminator, head, nce_layers=o.nce_layers,
                   gan_mode=o.gan_mode, lambda_gan=o.lambda_gan, lambda_nce=o.lambda_nce,
                   nce_idt=o.nce_idt, flip_equivariance=o.flip_equivariance,
                   num_patches=o.num_patches, nce_temperature=o.nce_temperature)

    # -- networks

    @property
    def translators(self):
        """The inference network (never the discriminator or the head)."""
        return {"a2b": self.generator}

    @property
    def networks(self):
        """The trained networks by name, the keys used in checkpoints."""
        return {"generator": self.generator, "discriminator": self.discriminator,
                "head": self.head}

    def sample_columns(self, real_a, real_b):
        """Named image batches (float, [-1, 1]) for a sample grid."""
        columns = {"real_a": real_a, "fake_b": self.generator(real_a, training=False),
                   "real_b": real_b}
        if self.nce_idt:
            columns["identity_b"] = self.generator(real_b, training=False)
        return columns

    @property
    def metrics(self):
        return [*self.train_trackers.values(), self.nce_tracker]

    def optimized_variables(self):
        return {"g_optimizer": (self.generator.trainable_variables
                                + self.head.trainable_variables),
                "d_optimizer": self.discriminator.trainable_variables}

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    # -- the objective

    def nce(self, source, target, flipped=None, training=True):
        """PatchNCE between ``source`` images and their translations ``target``, averaged
        over the sampled layers (unweighted). ``flipped``: a boolean scalar tensor, the
        translations were made from left-right flipped sources (their features are
        flipped back)."""
        queries = self.encoder(target, training=training)
        keys = self.encoder(source, training=training)
        if len(self.nce_layers) == 1:
            queries, keys = [queries], [keys]
        if flipped is not None:
            queries = [tf.where(flipped, tf.reverse(q, [2]), q) for q in queries]
        sampled_q, sampled_k = [], []
        for q, k in zip(queries, keys, strict=True):
            ids = patch_ids(k, self.num_patches)  # the same places in both, every image
            sampled_q.append(sample_patches(q, ids))
            sampled_k.append(sample_patches(k, ids))
        projected_q = self.head(sampled_q, training=training)
        projected_k = self.head(sampled_k, training=training)
        total = sum(losses.patch_nce_loss(q, k, self.nce_temperature)
                    for q, k in zip(projected_q, projected_k, strict=True))
        return total / len(self.nce_layers)

    def train_step(self, data):
        # 1. Translate a (and b, for the identity term) in one call; FastCUT flips the
        #    batch left-right half of the time.
        # 2. Update D: real b -> real, G(a) (no gradient to G) -> fake, halved.
        # 3. Generator loss with the updated D: fool it, plus PatchNCE between a and G(a)
        #    (and b and G(b)); update G and the head together.
        real_a, real_b = data
        count = tf.shape(real_a)[0]
        real = tf.concat([real_a, real_b], 0) if self.nce_idt else real_a
        flipped = None
        if self.flip_equivariance:
            flipped = tf.random.uniform([]) < 0.5
            real = tf.where(flipped, tf.reverse(real, [2]), real)
        logs = {}
        with tf.GradientTape() as g_tape:
            fake = self.generator(real, training=True)
            fake_b = fake[:count]
            with g_tape.stop_recording(), tf.GradientTape() as d_tape:
                fake_logits = self.discriminator(tf.stop_gradient(fake_b), training=True)
                real_logits = self.discriminator(real_b, training=True)
                d_loss = 0.5 * self._d_loss_fn(real_logits, fake_logits)
            with g_tape.stop_recording():
                apply_gradients(self.d_optimizer, d_tape, d_loss,
                                self.discriminator.trainable_variables)
            logs["g_gan_loss"] = self._g_gan_loss_fn(self.discriminator(fake_b, training=True))
            logs["nce_loss"] = self.nce(real_a, fake_b, flipped)
            nce = logs["nce_loss"]
            if self.nce_idt:
                logs["nce_idt_loss"] = self.nce(real_b, fake[count:], flipped)
                nce = 0.5 * (nce + logs["nce_idt_loss"])
            g_loss = self.lambda_gan * logs["g_gan_loss"] + self.lambda_nce * nce
        g_vars = self.generator.trainable_variables + self.head.trainable_variables
        apply_gradients(self.g_optimizer, g_tape, g_loss, g_vars)
        logs["g_loss"], logs["d_loss"] = g_loss, d_loss
        for name, tracker in self.train_trackers.items():
            tracker.update_state(logs[name])
        return {name: tracker.result() for name, tracker in self.train_trackers.items()}

    def test_step(self, data):
        real_a = data[0]
        fake_b = self.generator(real_a, training=False)
        self.nce_tracker.update_state(self.nce(real_a, fake_b, training=False))
        return {"nce": self.nce_tracker.result()}

    def get_config(self):
        config = super().get_config()
        for key in ("generator", "discriminator", "head"):
            config[key] = keras.saving.serialize_keras_object(getattr(self, key))
        config.update({
            "nce_layers": self.nce_layers, "gan_mode": self.gan_mode,
            "lambda_gan": self.lambda_gan, "lambda_nce": self.lambda_nce,
            "nce_idt": self.nce_idt, "flip_equivariance": self.flip_equivariance,
            "num_patches": self.num_patches, "nce_temperature": self.nce_temperature,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator", "head"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
