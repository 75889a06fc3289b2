"""Loss functions: pure functions of tensors returning a float32 scalar.

Adversarial losses take discriminator logits of any shape (a PatchGAN map, say) and
average over every element. Weights such as `lambda_l1` and the 0.5 that pix2pix puts on
the discriminator loss are applied by the model, never here. Every loss computes in
float32, whatever dtype its inputs come in, so that mixed precision cannot overflow it.
"""

from keras import ops


def _float32(x):
    return ops.cast(x, "float32")


def _sigmoid_cross_entropy(logits, label: float):
    # max(x, 0) - x * z + log(1 + exp(-|x|)): the form that neither overflows nor loses
    # precision for large |x|, as in tf.nn.sigmoid_cross_entropy_with_logits.
    return ops.relu(logits) - logits * label + ops.log1p(ops.exp(-ops.abs(logits)))


def vanilla_generator_loss(fake_logits):
    """Non-saturating GAN generator loss.

    `mean(BCE(1, D(G(z)))) = mean(-log(sigmoid(fake_logits)))`, computed from the logits
    in a numerically stable form.

    Args:
        fake_logits: Discriminator logits on generated samples, any shape.

    Returns:
        A float32 scalar.

    Example:

    >>> round(float(vanilla_generator_loss([0.0])), 4)  # log(2)
    0.6931

    Reference:
        Goodfellow et al., "Generative Adversarial Networks", NeurIPS 2014,
        https://arxiv.org/abs/1406.2661 (section 3, the non-saturating objective).
    """
    return ops.mean(_sigmoid_cross_entropy(_float32(fake_logits), 1.0))


def vanilla_discriminator_loss(real_logits, fake_logits):
    """GAN discriminator loss: binary cross-entropy on real and generated samples.

    `mean(BCE(1, D(x))) + mean(BCE(0, D(G(z))))
    = mean(-log(sigmoid(real_logits))) + mean(-log(1 - sigmoid(fake_logits)))`.
    The two means are summed; pix2pix's halving is left to the model.

    Args:
        real_logits: Discriminator logits on real samples, any shape.
        fake_logits: Discriminator logits on generated samples, any shape.

    Returns:
        A float32 scalar.

    Example:

    >>> round(float(vanilla_discriminator_loss([0.0], [0.0])), 4)  # 2 log(2)
    1.3863

    Reference:
        Goodfellow et al., "Generative Adversarial Networks", NeurIPS 2014,
        https://arxiv.org/abs/1406.2661.
    """
    real = ops.mean(_sigmoid_cross_entropy(_float32(real_logits), 1.0))
    fake = ops.mean(_sigmoid_cross_entropy(_float32(fake_logits), 0.0))
    return real + fake


def lsgan_generator_loss(fake):
    """Least-squares GAN generator loss.

    `mean((D(G(z)) - 1)^2)`, with targets b = c = 1 of the LSGAN paper. The
    discriminator output is used raw, with no sigmoid.

    Args:
        fake: Discriminator outputs on generated samples, any shape.

    Returns:
        A float32 scalar.

    Example:

    >>> float(lsgan_generator_loss([0.0, 2.0]))
    1.0

    Reference:
        Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017,
        https://arxiv.org/abs/1611.04076.
    """
    return ops.mean(ops.square(_float32(fake) - 1.0))


def lsgan_discriminator_loss(real, fake):
    """Least-squares GAN discriminator loss.

    `mean((D(x) - 1)^2) + mean(D(G(z))^2)`, with targets a = 0, b = 1 of the LSGAN
    paper. The two means are summed; any halving is left to the model.

    Args:
        real: Discriminator outputs on real samples, any shape.
        fake: Discriminator outputs on generated samples, any shape.

    Returns:
        A float32 scalar.

    Example:

    >>> float(lsgan_discriminator_loss([1.0, 3.0], [0.0, 2.0]))
    4.0

    Reference:
        Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017,
        https://arxiv.org/abs/1611.04076.
    """
    return ops.mean(ops.square(_float32(real) - 1.0)) + ops.mean(ops.square(_float32(fake)))


def hinge_generator_loss(fake):
    """Hinge GAN generator loss.

    `-mean(D(G(z)))`.

    Args:
        fake: Discriminator logits on generated samples, any shape.

    Returns:
        A float32 scalar.

    Example:

    >>> float(hinge_generator_loss([0.0, 2.0]))
    -1.0

    Reference:
        Lim & Ye, "Geometric GAN", 2017, https://arxiv.org/abs/1705.02894; Miyato et al.,
        "Spectral Normalization for Generative Adversarial Networks", ICLR 2018,
        https://arxiv.org/abs/1802.05957.
    """
    return -ops.mean(_float32(fake))


def hinge_discriminator_loss(real, fake):
    """Hinge GAN discriminator loss.

    `mean(max(0, 1 - D(x))) + mean(max(0, 1 + D(G(z))))`.

    Args:
        real: Discriminator logits on real samples, any shape.
        fake: Discriminator logits on generated samples, any shape.

    Returns:
        A float32 scalar.

    Example:

    >>> float(hinge_discriminator_loss([0.0, 2.0], [0.0, -2.0]))
    1.0

    Reference:
        Lim & Ye, "Geometric GAN", 2017, https://arxiv.org/abs/1705.02894; Miyato et al.,
        "Spectral Normalization for Generative Adversarial Networks", ICLR 2018,
        https://arxiv.org/abs/1802.05957.
    """
    return ops.mean(ops.relu(1.0 - _float32(real))) + ops.mean(ops.relu(1.0 + _float32(fake)))


def l1_loss(x, y):
    """Mean absolute error, the reconstruction term of pix2pix.

    `mean(|x - y|)`.

    Args:
        x: A tensor, e.g. the generated image.
        y: A tensor of the same shape, e.g. the target image.

    Returns:
        A float32 scalar.

    Example:

    >>> float(l1_loss([0.0, 1.0], [1.0, -1.0]))
    1.5

    Reference:
        Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks",
        CVPR 2017, https://arxiv.org/abs/1611.07004 (equation 3).
    """
    return ops.mean(ops.abs(_float32(x) - _float32(y)))


# Adding a GAN objective: write its generator and discriminator losses above, add one
# line here, and one hand-computed test case in tests/test_losses.py.
GAN_LOSSES = {
    "vanilla": (vanilla_generator_loss, vanilla_discriminator_loss),
    "lsgan": (lsgan_generator_loss, lsgan_discriminator_loss),
    "hinge": (hinge_generator_loss, hinge_discriminator_loss),
}


def gan_losses(mode: str):
    """Returns the `(generator_loss, discriminator_loss)` pair of a GAN objective.

    Args:
        mode: One of the keys of `GAN_LOSSES`: `"vanilla"`, `"lsgan"` or `"hinge"`.

    Returns:
        A pair of functions: `generator_loss(fake)` and
        `discriminator_loss(real, fake)`.

    Raises:
        ValueError: If `mode` is unknown; the message lists the valid modes.

    Example:

    >>> g_loss, d_loss = gan_losses("lsgan")
    >>> float(g_loss([1.0]))
    0.0
    """
    try:
        return GAN_LOSSES[mode]
    except KeyError:
        raise ValueError(
            f"Unknown GAN loss mode {mode!r}; valid modes are: {', '.join(GAN_LOSSES)}."
        ) from None


__all__ = [
    "GAN_LOSSES",
    "gan_losses",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "l1_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "vanilla_discriminator_loss",
    "vanilla_generator_loss",
]
