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
    # Keras' from-logits form, max(x, 0) - x * z + log(1 + exp(-|x|)), which neither
    # overflows nor loses precision for large |x|.
    return ops.binary_crossentropy(ops.full_like(logits, label), logits, from_logits=True)


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


def gram_matrix(features):
    """Gram matrix of feature maps, normalized by the number of positions.

    `G[n, c, d] = sum_{h, w} F[n, h, w, c] * F[n, h, w, d] / (H * W)`: the correlations
    between channels that Gatys et al. take as the "style" of a layer. Dividing by the
    number of positions makes Gram matrices of different image sizes comparable.

    Args:
        features: Feature maps `[N, H, W, C]`.

    Returns:
        A float32 tensor `[N, C, C]`.

    Example:

    >>> gram_matrix([[[[1.0, 2.0]], [[3.0, 0.0]]]]).numpy().tolist()  # 2 positions
    [[[5.0, 1.0], [1.0, 2.0]]]

    Reference:
        Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks",
        CVPR 2016 (equation 3).
    """
    features = _float32(features)
    shape = ops.shape(features)
    positions = ops.cast(shape[1] * shape[2], "float32")
    return ops.einsum("nhwc,nhwd->ncd", features, features) / positions


def content_loss(features, target):
    """Content loss: mean squared difference of feature maps.

    `mean((F - P)^2)` over every element, with `F` the features of the generated image
    and `P` those of the content image at the same layer (Gatys et al. sum and halve;
    the mean makes the weight independent of the image size).

    Args:
        features: Feature maps of the generated image, `[N, H, W, C]`.
        target: Feature maps of the content image, same shape.

    Returns:
        A float32 scalar.

    Example:

    >>> float(content_loss([[1.0, 2.0]], [[0.0, 0.0]]))
    2.5

    Reference:
        Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks",
        CVPR 2016 (equation 1).
    """
    return ops.mean(ops.square(_float32(features) - _float32(target)))


def style_loss(gram, target_gram):
    """Style loss of one layer: mean squared difference of Gram matrices.

    `mean((G - A)^2)` over the `C x C` entries (and the batch), with `G` the Gram matrix
    (`gram_matrix`) of the generated image and `A` that of the style image. With Gram
    matrices normalized by the `M = H * W` positions this is `4 * E_l` of Gatys et al.,
    `E_l = sum((G_raw - A_raw)^2) / (4 N^2 M^2)`. Per-layer weights are the model's.

    Args:
        gram: Gram matrices of the generated image, `[N, C, C]`.
        target_gram: Gram matrices of the style, `[N, C, C]` or `[1, C, C]` (broadcast).

    Returns:
        A float32 scalar.

    Example:

    >>> float(style_loss([[[1.0, 0.0], [0.0, 1.0]]], [[[0.0, 0.0], [0.0, 3.0]]]))
    1.25

    Reference:
        Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks",
        CVPR 2016 (equations 4 and 5).
    """
    return ops.mean(ops.square(_float32(gram) - _float32(target_gram)))


def total_variation_loss(images):
    """Anisotropic total variation: mean absolute difference of neighbouring pixels.

    `mean(|x[:, i+1, j] - x[:, i, j]|) + mean(|x[:, i, j+1] - x[:, i, j]|)`, a smoothness
    prior against the high-frequency noise that optimizing an image through a CNN
    leaves. The means make it independent of the image size.

    Args:
        images: Images `[N, H, W, C]`, H and W at least 2.

    Returns:
        A float32 scalar.

    Example:

    >>> float(total_variation_loss([[[[0.0], [1.0]], [[1.0], [1.0]]]]))
    1.0

    Reference:
        Mahendran & Vedaldi, "Understanding Deep Image Representations by Inverting Them",
        CVPR 2015; Johnson et al., "Perceptual Losses for Real-Time Style Transfer and
        Super-Resolution", ECCV 2016.
    """
    images = _float32(images)
    down = ops.mean(ops.abs(images[:, 1:, :, :] - images[:, :-1, :, :]))
    right = ops.mean(ops.abs(images[:, :, 1:, :] - images[:, :, :-1, :]))
    return down + right


def l2_normalize(x, epsilon: float = 1e-7):
    """``x / (|x|_2 + epsilon)`` over the last axis, in float32.

    The form of CUT's feature head (not ``x / max(|x|, epsilon)``): a zero vector stays
    zero instead of dividing by zero.

    Example:

    >>> [round(float(v), 4) for v in l2_normalize([[3.0, 4.0]])[0]]
    [0.6, 0.8]
    """
    x = _float32(x)
    return x / (ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True)) + epsilon)


def patch_nce_loss(query, key, temperature: float = 0.07):
    """PatchNCE: a patch of the output must match the patch of the input at the same place
    among the input's other patches.

    For image ``n`` and patch ``i``, with ``q = query[n, i]`` (a feature of the output)
    and ``k_j = key[n, j]`` (features of the input, same positions; no gradient flows
    into them):

        logits = [q . k_i, q . k_1, ..., q . k_P] / temperature,  q . k_i itself among the
                 negatives replaced by -10 (exp(-10 / 0.07) is nothing)
        loss[n, i] = cross_entropy(logits, class 0)
                   = -q . k_i / T + log(exp(q . k_i / T) + sum_{j != i} exp(q . k_j / T)
                                        + exp(-10 / T))

    and the loss is the mean over images and patches. Negatives come from the same image
    only. ``query`` and ``key`` are normally unit vectors (see :func:`l2_normalize`).

    Args:
        query: ``[N, P, C]`` features of the translated image at ``P`` sampled positions.
        key: ``[N, P, C]`` features of the input at the same positions.
        temperature: the softmax temperature (0.07 in the paper).

    Returns:
        A float32 scalar.

    Example:

    >>> q = [[[1.0, 0.0], [0.0, 1.0]]]
    >>> round(float(patch_nce_loss(q, q, temperature=1.0)), 4)  # log(e + e^0 + e^-10)
    0.3133

    Reference:
        Park et al., "Contrastive Learning for Unpaired Image-to-Image Translation", ECCV
        2020, https://arxiv.org/abs/2007.15651 (equation 2; negatives as in the authors'
        ``PatchNCELoss`` with ``nce_includes_all_negatives_from_minibatch = False``).
    """
    query = _float32(query)
    key = ops.stop_gradient(_float32(key))
    positive = ops.sum(query * key, axis=-1, keepdims=True)  # [N, P, 1]
    negative = ops.matmul(query, ops.transpose(key, (0, 2, 1)))  # [N, P, P]
    patches = ops.shape(query)[1]
    same = ops.cast(ops.eye(patches), "bool")[None]
    negative = ops.where(same, ops.full_like(negative, -10.0), negative)
    logits = ops.concatenate([positive, negative], axis=-1) / temperature
    return ops.mean(ops.logsumexp(logits, axis=-1) - logits[..., 0])


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
    "content_loss",
    "gan_losses",
    "gram_matrix",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "l1_loss",
    "l2_normalize",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "patch_nce_loss",
    "style_loss",
    "total_variation_loss",
    "vanilla_discriminator_loss",
    "vanilla_generator_loss",
]
