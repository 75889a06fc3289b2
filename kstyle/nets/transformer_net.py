"""pytorch/examples' fast neural style network (``TransformerNet``), as a Keras model."""

import keras

from kstyle.nets import layers as kl  # kstyle's own forms of Keras' layers (kl.Conv2D, ...)
from kstyle.nets.layers import InstanceNormalization, NearestUpsampling2D, ReflectionPadding2D

#: Height and width must be multiples of this (two stride-2 convs, two x2 upsamplings).
TRANSFORMER_NET_SIZE_MULTIPLE = 4


def transformer_net(base_filters: int = 32, num_blocks: int = 5,
                    name: str = "transformer_net") -> keras.Model:
    """Builds the ``TransformerNet`` of pytorch/examples' ``fast_neural_style``.

    The network its published models (candy, mosaic, rain_princess, udnie) were trained
    as: every conv reflection-pads by half its kernel, the stride-2 downsampling convs too;
    instance norm with a learned scale and offset (``affine=True``); 9x9 outer convs, 3x3
    inner; ``num_blocks`` residual blocks (conv, norm, ReLU, conv, norm, add);
    nearest-neighbour x2 upsampling before each of the two upsampling convs; no activation
    at the end. It computes on 0..255 pixel values, as that network does: this model takes
    and returns kstyle's [-1, 1] images, scaling to 0..255 before the first conv and back
    after the last (the output is not clipped; the uint8 serving wrapper clips it).

    Args:
        base_filters: filters of the first conv (32 in pytorch/examples; then 64 and 128).
        num_blocks: residual blocks (5 there).
        name: model name.

    Returns:
        A `keras.Model` mapping ``[N, H, W, 3]`` in [-1, 1] to the same; H and W multiples
        of :data:`TRANSFORMER_NET_SIZE_MULTIPLE`.

    Example:

    >>> net = transformer_net(base_filters=4, num_blocks=1)
    >>> net(keras.ops.zeros((1, 36, 44, 3))).shape
    TensorShape([1, 36, 44, 3])

    Reference:
        Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and
        Super-Resolution", ECCV 2016, https://arxiv.org/abs/1603.08155;
        https://github.com/pytorch/examples/tree/main/fast_neural_style.
    """
    if num_blocks < 0:
        raise ValueError(f"num_blocks must be at least 0, got {num_blocks}.")

    def conv(x, filters, kernel, stride, layer_name):
        x = ReflectionPadding2D(kernel // 2, name=f"{layer_name}_pad")(x)
        # kstyle's Conv2D: the residual blocks' 3x3 convs by Winograd's algorithm, the
        # last conv tap by tap.
        return kl.Conv2D(filters, kernel, strides=stride, padding="valid", name=layer_name)(x)

    def norm_relu(x, layer_name):
        x = InstanceNormalization(affine=True, name=layer_name)(x)
        return keras.layers.ReLU(name=f"{layer_name}_relu")(x)

    f = base_filters
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = keras.layers.Rescaling(127.5, offset=127.5, name="to_0_255")(inputs)
    x = norm_relu(conv(x, f, 9, 1, "conv1"), "in1")
    x = norm_relu(conv(x, 2 * f, 3, 2, "conv2"), "in2")
    x = norm_relu(conv(x, 4 * f, 3, 2, "conv3"), "in3")
    for i in range(1, num_blocks + 1):
        y = norm_relu(conv(x, 4 * f, 3, 1, f"res{i}_conv1"), f"res{i}_in1")
        y = InstanceNormalization(affine=True, name=f"res{i}_in2")(
            conv(y, 4 * f, 3, 1, f"res{i}_conv2"))
        x = keras.layers.Add(name=f"res{i}_add")([y, x])
    x = NearestUpsampling2D(name="deconv1_upsample")(x)
    x = norm_relu(conv(x, 2 * f, 3, 1, "deconv1"), "in4")
    x = NearestUpsampling2D(name="deconv2_upsample")(x)
    x = norm_relu(conv(x, f, 3, 1, "deconv2"), "in5")
    x = conv(x, 3, 9, 1, "deconv3")
    outputs = keras.layers.Rescaling(1 / 127.5, offset=-1.0, dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=name)
