"""A small feed-forward stylizer for phones: separable convolutions, three downsamplings."""

import keras

from kstyle.nets.layers import DepthToSpace, NearestUpsampling2D, normalization

# Height and width of the input must be multiples of this: three stride-2 convolutions.
MOBILE_SIZE_MULTIPLE = 8


def _separable(x, filters, name):
    # A 3x3 depthwise conv (zero 'same' padding: LiteRT's delegate runs no mirror padding)
    # and a 1x1 conv: about a ninth of the multiply-adds of a full 3x3 conv.
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
    return keras.layers.Conv2D(filters, 1, name=f"{name}_pw")(x)


def mobile_stylizer(
    in_channels: int = 3,
    out_channels: int = 3,
    base_filters: int = 32,
    num_blocks: int = 5,
    norm: str = "instance",
    name: str = "mobile_stylizer",
) -> keras.Model:
    """Builds a light image transformation network for fast style transfer on phones.

    Johnson et al.'s transformer (`kstyle.nets.resnet.resnet_generator` with 32 filters, 5
    blocks, 9x9 outer convs) spends about 10.7 G multiply-adds on a 256x256 image, 43 G
    on 512x512. This one keeps its plan (downsample, residual blocks, upsample by resize
    and conv) with the savings of mobile networks, for about 0.5 G at 256 px (~20x less):

    - three 3x3 stride-2 convs to `base_filters`, 2x and 4x that, each with norm and ReLU
      (the residual blocks work at 1/8 of the resolution, Johnson's at 1/4);
    - `num_blocks` residual blocks of depthwise-separable convs (3x3 depthwise + 1x1),
      norm, ReLU, separable conv, norm, plus the skip (as in MobileNet, Howard et al.);
    - two nearest-neighbour x2 resizes, each followed by a separable conv halving the
      filters, norm and ReLU;
    - a 3x3 conv to `4 * out_channels` at half resolution unfolded by a depth-to-space
      (pixel shuffle, Shi et al.) to full resolution, then tanh: no feature map is ever
      computed at the full size, where memory traffic, not arithmetic, costs the most.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        base_filters: filters of the first conv.
        num_blocks: residual blocks, at least 0.
        norm: normalization kind, one of `kstyle.nets.layers.NORMS`.
        name: model name.

    Returns:
        A `keras.Model` mapping `(batch, H, W, in_channels)` images in [-1, 1] to
        `(batch, H, W, out_channels)` float32 images in [-1, 1]; H and W must be multiples
        of `MOBILE_SIZE_MULTIPLE` (8).

    Raises:
        ValueError: `num_blocks < 0`, `base_filters < 2` or an unknown `norm`.

    Example:

    >>> model = mobile_stylizer(base_filters=8, num_blocks=1)
    >>> model(keras.ops.zeros((1, 32, 48, 3))).shape
    TensorShape([1, 32, 48, 3])

    Reference:
        Johnson et al., "Perceptual Losses for Real-Time Style Transfer and
        Super-Resolution", ECCV 2016, https://arxiv.org/abs/1603.08155; Howard et al.,
        "MobileNets", 2017, https://arxiv.org/abs/1704.04861.
    """
    if num_blocks < 0:
        raise ValueError(f"num_blocks must be at least 0, got {num_blocks}.")
    if base_filters < 2:
        raise ValueError(f"base_filters must be at least 2, got {base_filters}.")
    normalization(norm)  # Fails early, before any layer is built, on an unknown kind.

    inputs = keras.Input(shape=(None, None, in_channels), name="image")
    x = inputs
    filters = base_filters
    for i in (1, 2, 3):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", name=f"down{i}_conv")(x)
        x = normalization(norm, name=f"down{i}_norm")(x)
        x = keras.layers.ReLU(name=f"down{i}_relu")(x)
        filters *= 2
    filters //= 2

    for i in range(num_blocks):
        prefix = f"block{i}"
        y = _separable(x, filters, f"{prefix}_conv1")
        y = normalization(norm, name=f"{prefix}_norm1")(y)
        y = keras.layers.ReLU(name=f"{prefix}_relu")(y)
        y = _separable(y, filters, f"{prefix}_conv2")
        y = normalization(norm, name=f"{prefix}_norm2")(y)
        x = keras.layers.Add(name=f"{prefix}_add")([x, y])

    for i in (1, 2):
        filters //= 2
        x = NearestUpsampling2D(name=f"up{i}_resize")(x)
        x = _separable(x, filters, f"up{i}_conv")
        x = normalization(norm, name=f"up{i}_norm")(x)
        x = keras.layers.ReLU(name=f"up{i}_relu")(x)

    x = keras.layers.Conv2D(4 * out_channels, 3, padding="same", name="head_conv")(x)
    x = DepthToSpace(2, name="head_unfold")(x)
    outputs = keras.layers.Activation("tanh", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=name)
