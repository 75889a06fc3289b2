"""The discriminators of pix2pix and CycleGAN: the PatchGAN and the 1x1 PixelGAN."""

import keras

from kstyle.nets.layers import normalization


def _weights() -> keras.initializers.Initializer:
    # A fresh initializer per layer: one unseeded instance reused across layers would
    # hand every layer the same values.
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def _conv(filters: int, strides: int, use_bias: bool, name: str) -> list[keras.layers.Layer]:
    # PyTorch's padding=1 pads one pixel on every side whatever the stride, which
    # 'same' does not do for a 4x4 kernel, so pad explicitly and convolve 'valid'.
    return [
        keras.layers.ZeroPadding2D(1, name=f"{name}_pad"),
        keras.layers.Conv2D(
            filters,
            4,
            strides=strides,
            padding="valid",
            use_bias=use_bias,
            kernel_initializer=_weights(),
            name=f"{name}_conv",
        ),
    ]


def patchgan_discriminator(
    in_channels: int = 6,
    base_filters: int = 64,
    n_layers: int = 3,
    norm: str = "batch",
    name: str = "patchgan_discriminator",
) -> keras.Model:
    """Builds the PatchGAN discriminator as a functional model.

    A port of `NLayerDiscriminator` from junyanz/pytorch-CycleGAN-and-pix2pix
    (`models/networks.py`): `n_layers` stride-2 4x4 convs with
    `base_filters * min(2**n, 8)` filters, one stride-1 conv, then a stride-1 conv to one
    channel; LeakyReLU(0.2) after each but the last, norm after each but the first and
    the last. Every conv pads one pixel, like the reference's `padding=1`. Biases are
    dropped where the reference drops them (`use_bias = norm != "batch"` for the normed
    convs; the first and last convs always have one). Kernels are drawn from N(0, 0.02),
    batch-norm scales from N(1, 0.02).

    With the defaults each output logit sees a 70x70 patch, and a 256x256 input gives a
    30x30 map. For a conditional discriminator (pix2pix) the caller concatenates the
    condition and the image on the channel axis, hence 6 input channels by default;
    an unconditional one (CycleGAN) takes 3.

    Args:
        in_channels: Channels of the input.
        base_filters: Filters of the first conv (`ndf` in the reference).
        n_layers: Number of stride-2 convs.
        norm: Normalization kind, one of `kstyle.nets.layers.NORMS`.
        name: Model name.

    Returns:
        A `keras.Model` mapping `(batch, H, W, in_channels)` to float32 logits of shape
        `(batch, H', W', 1)`, with no sigmoid.

    Raises:
        ValueError: If `n_layers < 1` or `norm` is unknown.

    Example:

    >>> model = patchgan_discriminator(in_channels=6, base_filters=8)
    >>> model(keras.ops.zeros((1, 256, 256, 6))).shape
    TensorShape([1, 30, 30, 1])

    Reference:
        Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks",
        CVPR 2017, https://arxiv.org/abs/1611.07004; Li & Wand, "Precomputed Real-Time
        Texture Synthesis with Markovian Generative Adversarial Networks", ECCV 2016,
        https://arxiv.org/abs/1604.04382.
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be at least 1, got {n_layers}.")
    normalization(norm)  # Fails early, before any layer is built, on an unknown kind.
    use_bias = norm != "batch"

    inputs = keras.Input(shape=(None, None, in_channels), name="image")
    x = inputs
    for layer in _conv(base_filters, 2, True, "layer0"):
        x = layer(x)
    x = keras.layers.LeakyReLU(negative_slope=0.2, name="layer0_lrelu")(x)
    for n in range(1, n_layers + 1):
        strides = 2 if n < n_layers else 1
        for layer in _conv(base_filters * min(2**n, 8), strides, use_bias, f"layer{n}"):
            x = layer(x)
        x = normalization(norm, name=f"layer{n}_norm")(x)
        x = keras.layers.LeakyReLU(negative_slope=0.2, name=f"layer{n}_lrelu")(x)
    for layer in _conv(1, 1, True, "logits"):
        x = layer(x)
    # Logits leave in float32 whatever the dtype policy, so losses stay stable.
    outputs = keras.layers.Activation("linear", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=name)


#: Discriminator kinds (``model.discriminator``): the PatchGAN of ``n_layers`` strided
#: convs, or the 1x1 PixelGAN.
DISCRIMINATORS = ("patch", "pixel")


def pixel_discriminator(in_channels: int = 6, base_filters: int = 64, norm: str = "batch",
                        name: str = "pixel_discriminator") -> keras.Model:
    """Builds the 1x1 PatchGAN ("PixelGAN") discriminator as a functional model.

    A port of `PixelDiscriminator` from junyanz/pytorch-CycleGAN-and-pix2pix: three 1x1
    convs (``base_filters``, ``2 * base_filters``, 1 filter) with LeakyReLU(0.2) after the
    first two and the norm after the second; each logit judges one pixel, so it pushes
    colours and leaves structure alone (pix2pix, section 4.4). Biases where the reference
    has them: on the first conv always, on the others unless the norm is batch norm.

    Args:
        in_channels: Channels of the input.
        base_filters: Filters of the first conv (`ndf` in the reference).
        norm: Normalization kind, one of `kstyle.nets.layers.NORMS`.
        name: Model name.

    Returns:
        A `keras.Model` mapping `(batch, H, W, in_channels)` to float32 logits of shape
        `(batch, H, W, 1)`.

    Example:

    >>> pixel_discriminator(in_channels=6, base_filters=8)(keras.ops.zeros((1, 5, 7, 6))).shape
    TensorShape([1, 5, 7, 1])
    """
    normalization(norm)  # Fails early on an unknown kind.
    use_bias = norm != "batch"

    def conv(filters, bias, layer_name):
        return keras.layers.Conv2D(filters, 1, use_bias=bias, kernel_initializer=_weights(),
                                   name=layer_name)

    inputs = keras.Input(shape=(None, None, in_channels), name="image")
    x = conv(base_filters, True, "pixel0_conv")(inputs)
    x = keras.layers.LeakyReLU(negative_slope=0.2, name="pixel0_lrelu")(x)
    x = conv(2 * base_filters, use_bias, "pixel1_conv")(x)
    x = normalization(norm, name="pixel1_norm")(x)
    x = keras.layers.LeakyReLU(negative_slope=0.2, name="pixel1_lrelu")(x)
    x = conv(1, use_bias, "logits_conv")(x)
    outputs = keras.layers.Activation("linear", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def discriminator(kind: str, in_channels: int, base_filters: int = 64, n_layers: int = 3,
                  norm: str = "batch", name: str = "discriminator") -> keras.Model:
    """The discriminator of ``kind`` (one of :data:`DISCRIMINATORS`); ``n_layers`` applies
    to the PatchGAN only."""
    if kind == "pixel":
        return pixel_discriminator(in_channels, base_filters, norm, name=name)
    if kind != "patch":
        raise ValueError(f"Unknown discriminator {kind!r}; valid ones are: "
                         f"{', '.join(DISCRIMINATORS)}.")
    return patchgan_discriminator(in_channels, base_filters, n_layers, norm, name=name)
