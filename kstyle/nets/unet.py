"""U-Net generator of pix2pix."""

import keras

from kstyle.nets import layers as kl  # kstyle's own forms of Keras' layers (kl.Conv2D, ...)
from kstyle.nets.layers import normalization


def size_multiple(num_downs: int) -> int:
    """Returns the number that input height and width must be multiples of.

    Args:
        num_downs: Number of stride-2 downsamplings of the U-Net.

    Returns:
        `2 ** num_downs`.

    Example:

    >>> size_multiple(8)
    256
    """
    return 2**num_downs


def _weights() -> keras.initializers.Initializer:
    # A fresh initializer per layer: one unseeded instance reused across layers would
    # hand every layer the same values.
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def unet_generator(
    in_channels: int = 3,
    out_channels: int = 3,
    base_filters: int = 64,
    num_downs: int = 8,
    norm: str = "batch",
    dropout: float = 0.5,
    skips: bool = True,
    name: str = "unet_generator",
) -> keras.Model:
    """Builds the pix2pix U-Net generator (or its plain autoencoder) as a functional model.

    A port of `UnetGenerator` / `UnetSkipConnectionBlock` from
    junyanz/pytorch-CycleGAN-and-pix2pix (`models/networks.py`). Going down, each level
    is LeakyReLU(0.2) -> kl.Conv2D(4x4, stride 2) -> norm, with `min(base_filters * 2**i,
    base_filters * 8)` filters at depth `i`; the outermost level has no activation before
    and no norm after its conv, the innermost (1x1 at the bottleneck for a
    `2**num_downs` input) no norm. Going up, each level is ReLU -> kl.Conv2DTranspose(4x4,
    stride 2, PyTorch's padding 1: `kstyle.nets.layers.Conv2DTranspose` with `crop=1,
    crop_end=1`, which is Keras' "same" here, computed faster) -> norm, then
    concatenation with the skip of its depth; the outermost level ends in tanh. Dropout
    follows the norm in the `num_downs - 5` deepest levels that are not the innermost,
    as in the reference with `use_dropout=True`.

    Conv biases are dropped where batch norm makes them redundant, exactly where the
    reference drops them (`use_bias = norm != "batch"` everywhere but the last conv,
    including the outermost and innermost down convs that no norm follows). Kernels are
    drawn from N(0, 0.02), batch-norm scales from N(1, 0.02), as in the reference
    `init_weights`.

    The skip tensors are taken after the LeakyReLU: the reference applies an in-place
    `LeakyReLU` to each block's input before concatenating that same tensor, so the
    activated values are what it really concatenates (and what its published models
    were trained with).

    With `skips=False` the same layers form a plain encoder-decoder (the autoencoders of
    the cross-domain autoencoder GAN): `num_downs` convs down, `num_downs - 1` deconvs up
    and the output deconv, with no concatenation, so each up conv sees only the
    `filters(depth)` channels of the level below instead of twice that many.

    Args:
        in_channels: Channels of the input image.
        out_channels: Channels of the output image.
        base_filters: Filters of the outermost conv (`ngf` in the reference).
        num_downs: Number of downsamplings, at least 5; height and width of the input
            must be multiples of `size_multiple(num_downs)`. 8 for 256x256, 7 for 128x128.
        norm: Normalization kind, one of `kstyle.nets.layers.NORMS`.
        dropout: Dropout rate of the deep up levels; 0 builds no dropout layers.
        skips: Concatenate each down level's activations into the up level of the same
            depth (the U-Net); False builds the plain encoder-decoder.
        name: Model name.

    Returns:
        A `keras.Model` mapping `(batch, H, W, in_channels)` images in [-1, 1] to
        `(batch, H, W, out_channels)` float32 images in [-1, 1].

    Raises:
        ValueError: If `num_downs < 5`, `dropout` is outside [0, 1) or `norm` is unknown.

    Example:

    >>> model = unet_generator(base_filters=8, num_downs=5)
    >>> model(keras.ops.zeros((1, 32, 32, 3))).shape
    TensorShape([1, 32, 32, 3])
    >>> autoencoder = unet_generator(base_filters=8, num_downs=5, skips=False)

    Reference:
        Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks",
        CVPR 2017, https://arxiv.org/abs/1611.07004; Ronneberger et al., "U-Net:
        Convolutional Networks for Biomedical Image Segmentation", MICCAI 2015,
        https://arxiv.org/abs/1505.04597; for `skips=False`, Hinton & Salakhutdinov,
        "Reducing the Dimensionality of Data with Neural Networks", Science 2006.
    """
    if num_downs < 5:
        raise ValueError(f"num_downs must be at least 5, got {num_downs}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    normalization(norm)  # Fails early, before any layer is built, on an unknown kind.
    use_bias = norm != "batch"
    innermost = num_downs - 1

    def filters(depth: int) -> int:
        return base_filters * min(2**depth, 8)

    inputs = keras.Input(shape=(None, None, in_channels), name="image")

    # Down path. Level 0 is the outermost; down_outputs[d - 1] is what level d concatenates.
    x = kl.Conv2D(
        filters(0),
        4,
        strides=2,
        padding="same",
        use_bias=use_bias,
        kernel_initializer=_weights(),
        name="down0_conv",
    )(inputs)
    down_outputs = []
    for depth in range(1, num_downs):
        x = keras.layers.LeakyReLU(negative_slope=0.2, name=f"down{depth}_lrelu")(x)
        down_outputs.append(x)
        # kstyle's Conv2D: the middle levels by blocks where TensorFlow's conv is a GEMM
        x = kl.Conv2D(
            filters(depth),
            4,
            strides=2,
            padding="same",
            use_bias=use_bias,
            kernel_initializer=_weights(),
            name=f"down{depth}_conv",
        )(x)
        if depth != innermost:
            x = normalization(norm, name=f"down{depth}_norm")(x)

    # Up path, innermost level first; each level returns to the width of its input.
    for depth in range(innermost, 0, -1):
        x = keras.layers.ReLU(name=f"up{depth}_relu")(x)
        x = kl.Conv2DTranspose(
            filters(depth - 1),
            4,
            strides=2,
            crop=1,
            crop_end=1,
            use_bias=use_bias,
            kernel_initializer=_weights(),
            name=f"up{depth}_conv",
        )(x)
        x = normalization(norm, name=f"up{depth}_norm")(x)
        if dropout > 0 and 4 <= depth < innermost:
            x = kl.Dropout(dropout, name=f"up{depth}_dropout")(x)
        if skips:
            x = keras.layers.Concatenate(name=f"up{depth}_concat")([down_outputs[depth - 1], x])

    x = keras.layers.ReLU(name="up0_relu")(x)
    x = kl.Conv2DTranspose(
        out_channels,
        4,
        strides=2,
        crop=1,
        crop_end=1,
        use_bias=True,
        kernel_initializer=_weights(),
        name="up0_conv",
    )(x)
    outputs = keras.layers.Activation("tanh", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=name)
