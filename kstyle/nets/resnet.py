"""ResNet generator of CycleGAN."""

import keras

from kstyle.nets import layers as kl  # kstyle's own forms of Keras' layers (kl.Conv2D, ...)
from kstyle.nets.layers import NearestUpsampling2D, ReflectionPadding2D, normalization

# Height and width of the input must be multiples of this: two stride-2 downsamplings.
RESNET_SIZE_MULTIPLE = 4
# How the decoder doubles the resolution.
UPSAMPLING = ("deconv", "resize")


def _weights() -> keras.initializers.Initializer:
    # A fresh initializer per layer: one unseeded instance reused across layers would
    # hand every layer the same values.
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def _conv(filters, kernel_size, use_bias, name, strides=1):
    # kstyle's Conv2D: the residual blocks' 3x3 convs run by Winograd's algorithm.
    return kl.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="valid",
        use_bias=use_bias,
        kernel_initializer=_weights(),
        name=name,
    )


def resnet_generator(
    in_channels: int = 3,
    out_channels: int = 3,
    base_filters: int = 64,
    num_blocks: int = 9,
    norm: str = "instance",
    dropout: float = 0.0,
    outer_kernel: int = 7,
    upsample: str = "deconv",
    name: str = "resnet_generator",
) -> keras.Model:
    """Builds the CycleGAN ResNet generator as a functional model.

    A port of `ResnetGenerator` / `ResnetBlock` from junyanz/pytorch-CycleGAN-and-pix2pix
    (`models/networks.py`), itself after Johnson et al.'s fast style transfer network:

    - reflection pad 3, 7x7 conv to `base_filters`, norm, ReLU;
    - two 3x3 stride-2 convs doubling the filters, each with norm and ReLU;
    - `num_blocks` residual blocks at `4 * base_filters`: reflection pad 1, 3x3 conv,
      norm, ReLU, [dropout], reflection pad 1, 3x3 conv, norm, then the skip is added;
    - two 3x3 stride-2 transposed convs halving the filters, each with norm and ReLU;
    - reflection pad 3, 7x7 conv to `out_channels`, tanh.

    Every padding is PyTorch's to the pixel, so the reference's weights would port as
    they are (kernels transposed to HWIO): the stride-2 convs pad one zero on every side
    and convolve 'valid' (Keras' 'same' would pad only after), and each transposed conv
    is 'valid' without its first row and column, which is PyTorch's `padding=1,
    output_padding=1` (Keras' 'same' gives the same size but drops the last ones;
    `kstyle.nets.layers.Conv2DTranspose` computes it without the copy in training).
    Conv biases are kept only with instance norm, as the reference's `use_bias =
    norm_layer == nn.InstanceNorm2d` does (so "none" has no biases either); the last
    conv always has one. Kernels are drawn from N(0, 0.02), as in the reference
    `init_weights`. With the defaults the model has 11,378,179 parameters, the
    reference's count; 9 blocks is the reference's `resnet_9blocks` for 256x256 images,
    6 blocks (7,837,699 parameters) its `resnet_6blocks` for 128x128.

    Johnson et al.'s fast style transfer network is the same shape with 32 base filters,
    5 blocks and 9x9 outer convs (`outer_kernel=9`); `upsample="resize"` replaces each
    transposed conv by a nearest-neighbour x2 resize and a 3x3 conv, which avoids the
    checkerboard artifacts of transposed convs (Odena et al., Distill 2016).

    Args:
        in_channels: Channels of the input image.
        out_channels: Channels of the output image.
        base_filters: Filters of the first conv (`ngf` in the reference).
        num_blocks: Number of residual blocks, at least 0.
        norm: Normalization kind, one of `kstyle.nets.layers.NORMS`.
        dropout: Dropout rate inside each residual block; 0 (CycleGAN's default) builds
            no dropout layers, the reference's `use_dropout` is 0.5.
        outer_kernel: Kernel side of the first and last convs (odd; 7 in CycleGAN, 9 in
            Johnson et al.).
        upsample: `"deconv"` (stride-2 transposed convs, the reference's) or `"resize"`
            (nearest-neighbour resize, reflection pad 1, 3x3 conv).
        name: Model name.

    Returns:
        A `keras.Model` mapping `(batch, H, W, in_channels)` images in [-1, 1] to
        `(batch, H, W, out_channels)` float32 images in [-1, 1]. H and W must be
        multiples of `RESNET_SIZE_MULTIPLE` (4), and at least 8.

    Raises:
        ValueError: If `num_blocks < 0`, `dropout` is outside [0, 1), `outer_kernel` is not
            a positive odd number, or `norm` or `upsample` is unknown.

    Example:

    >>> model = resnet_generator(base_filters=8, num_blocks=2)
    >>> model(keras.ops.zeros((1, 36, 44, 3))).shape
    TensorShape([1, 36, 44, 3])

    Reference:
        Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
        Networks", ICCV 2017, https://arxiv.org/abs/1703.10593; Johnson et al.,
        "Perceptual Losses for Real-Time Style Transfer and Super-Resolution", ECCV 2016,
        https://arxiv.org/abs/1603.08155.
    """
    if num_blocks < 0:
        raise ValueError(f"num_blocks must be at least 0, got {num_blocks}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    if outer_kernel < 1 or outer_kernel % 2 == 0:
        raise ValueError(f"outer_kernel must be a positive odd number, got {outer_kernel}.")
    if upsample not in UPSAMPLING:
        raise ValueError(
            f"Unknown upsample {upsample!r}; valid kinds are: {', '.join(UPSAMPLING)}.")
    outer_pad = outer_kernel // 2
    normalization(norm)  # Fails early, before any layer is built, on an unknown kind.
    use_bias = norm == "instance"

    inputs = keras.Input(shape=(None, None, in_channels), name="image")
    x = ReflectionPadding2D(outer_pad, name="stem_pad")(inputs)
    x = _conv(base_filters, outer_kernel, use_bias, "stem_conv")(x)
    x = normalization(norm, name="stem_norm")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)

    filters = base_filters
    for i in (1, 2):
        filters *= 2
        x = keras.layers.ZeroPadding2D(1, name=f"down{i}_pad")(x)
        x = _conv(filters, 3, use_bias, f"down{i}_conv", strides=2)(x)
        x = normalization(norm, name=f"down{i}_norm")(x)
        x = keras.layers.ReLU(name=f"down{i}_relu")(x)

    for i in range(num_blocks):
        prefix = f"block{i}"
        y = ReflectionPadding2D(1, name=f"{prefix}_pad1")(x)
        y = _conv(filters, 3, use_bias, f"{prefix}_conv1")(y)
        y = normalization(norm, name=f"{prefix}_norm1")(y)
        y = keras.layers.ReLU(name=f"{prefix}_relu")(y)
        if dropout > 0:
            y = kl.Dropout(dropout, name=f"{prefix}_dropout")(y)
        y = ReflectionPadding2D(1, name=f"{prefix}_pad2")(y)
        y = _conv(filters, 3, use_bias, f"{prefix}_conv2")(y)
        y = normalization(norm, name=f"{prefix}_norm2")(y)
        x = keras.layers.Add(name=f"{prefix}_add")([x, y])

    for i in (1, 2):
        filters //= 2
        if upsample == "resize":
            x = NearestUpsampling2D(name=f"up{i}_resize")(x)
            x = ReflectionPadding2D(1, name=f"up{i}_pad")(x)
            x = _conv(filters, 3, use_bias, f"up{i}_conv")(x)
        else:
            # 'valid' gives 2n + 1; PyTorch's padding=1 crops the first row and column and
            # output_padding=1 gives back the last, leaving 2n.
            x = kl.Conv2DTranspose(
                filters,
                3,
                strides=2,
                crop=1,
                use_bias=use_bias,
                kernel_initializer=_weights(),
                name=f"up{i}_conv",
            )(x)
        x = normalization(norm, name=f"up{i}_norm")(x)
        x = keras.layers.ReLU(name=f"up{i}_relu")(x)

    x = ReflectionPadding2D(outer_pad, name="head_pad")(x)
    x = _conv(out_channels, outer_kernel, True, "head_conv")(x)
    outputs = keras.layers.Activation("tanh", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=name)
