"""Layers shared by the network builders: normalization, padding, up- and downsampling.

Some of them compute their values two ways: TensorFlow's fastest kernels for training and
inference, and a plainer form of the same function that every converter takes (LiteRT,
ONNX). :func:`portable_graph` selects the plain form while a graph is traced for export.

Four of them keep the class names of the Keras layers they extend (``Conv2D``,
``Conv2DTranspose``, ``BatchNormalization``, ``Dropout``): Keras files a layer's weights
in a ``.weights.h5`` file under its class name, so the name is what lets weights and
checkpoints written with Keras' layers (and by earlier kstyle versions) load. The network
builders import this module as ``kl`` and write ``kl.Conv2D``, so that their reader sees
which layer it is.
"""

import contextlib
import functools
import math
import threading

import keras

NORMS = ("batch", "instance", "none")

_portable = threading.local()


#: What :func:`portable_graph` may be told the graph is for.
PORTABLE_TARGETS = (None, "litert", "onnx")


@contextlib.contextmanager
def portable_graph(target: str | None = None):
    """Within it, kstyle's layers trace ops that LiteRT and ONNX converters take.

    Outside it, small transposed convs are computed as a matmul and an overlap-add
    (:class:`Conv2DTranspose`): the same function to float rounding, much faster on CPU
    for the U-Net, as a graph of einsums, pads and a ``DepthToSpace`` that converters
    need not see. Within it, reflection padding is also written for the converter that
    ``target`` names (None: any; see :class:`ReflectionPadding2D`). ``kstyle export``
    traces inside it; so should any code that converts a kstyle network itself.

    Args:
        target: ``None``, ``"litert"`` or ``"onnx"``; the innermost one counts.

    Example:
        >>> with portable_graph("litert"):
        ...     converter = tf.lite.TFLiteConverter.from_keras_model(network)
        ...     tflite_bytes = converter.convert()
    """
    if target not in PORTABLE_TARGETS:
        raise ValueError(f"target must be one of {PORTABLE_TARGETS}, got {target!r}")
    stack = getattr(_portable, "stack", None)
    if stack is None:
        stack = _portable.stack = []
    stack.append(target)
    try:
        yield
    finally:
        stack.pop()


def tracing_portable() -> bool:
    """True inside :func:`portable_graph`."""
    return bool(getattr(_portable, "stack", None))


def portable_target() -> str | None:
    """The innermost :func:`portable_graph`'s target (None outside, or for any)."""
    stack = getattr(_portable, "stack", None)
    return stack[-1] if stack else None


def normalization(kind: str, name: str | None = None) -> keras.layers.Layer:
    """Returns a fresh normalization layer of the given kind.

    The settings reproduce PyTorch's defaults, which the reference pix2pix and CycleGAN
    networks were trained with: `BatchNorm2d(momentum=0.1, eps=1e-5)` becomes a
    :class:`BatchNormalization` (Keras' layer, trained with fused kernels) of
    `momentum=0.9, epsilon=1e-5` (Keras' momentum weighs the old running value,
    PyTorch's the new batch), with the scale initialised from N(1, 0.02) as in the
    reference `init_weights`. Instance normalization is
    :class:`InstanceNormalization`: like the reference's `InstanceNorm2d(affine=False)`,
    no learned scale or offset (the conv before it keeps its bias), so parameter counts
    match the reference.

    Args:
        kind: One of `NORMS`: `"batch"`, `"instance"` or `"none"` (identity).
        name: Optional layer name.

    Returns:
        An unbuilt `keras.layers.Layer`.

    Raises:
        ValueError: If `kind` is not one of `NORMS`.

    Example:

    >>> layer = normalization("instance", name="norm")
    >>> type(layer).__name__
    'InstanceNormalization'

    Reference:
        Ioffe & Szegedy, "Batch Normalization", ICML 2015, https://arxiv.org/abs/1502.03167;
        Ulyanov et al., "Instance Normalization: The Missing Ingredient for Fast
        Stylization", 2016, https://arxiv.org/abs/1607.08022.
    """
    if kind == "batch":
        return BatchNormalization(
            momentum=0.9,
            epsilon=1e-5,
            gamma_initializer=keras.initializers.RandomNormal(mean=1.0, stddev=0.02),
            name=name,
        )
    if kind == "instance":
        return InstanceNormalization(epsilon=1e-5, name=name)
    if kind == "none":
        return keras.layers.Identity(name=name)
    raise ValueError(f"Unknown normalization {kind!r}; valid kinds are: {', '.join(NORMS)}.")


@keras.saving.register_keras_serializable(package="kstyle")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` that trains with TensorFlow's fused kernels.

    In training, the batch statistics, the normalization and its gradient are
    TensorFlow's ``FusedBatchNormV3`` and its gradient (two ops, where Keras' moments and
    normalization trace about twenty per layer and call, forward and backward); the
    moving statistics are updated as Keras updates them (with the batch's biased
    variance). Inference, frozen layers, masks and Keras' renorm and synchronized
    options are Keras' own. Weights, configs and checkpoints are those of Keras' layer.

    Args:
        Those of `keras.layers.BatchNormalization`.
    """

    def call(self, inputs, training=None, mask=None):
        axis = self.axis % len(inputs.shape)
        if (not (training and self.trainable) or mask is not None or self.renorm
                or self.synchronized or axis != len(inputs.shape) - 1
                or len(inputs.shape) != 4 or keras.backend.backend() != "tensorflow"):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones([channels], "float32")
        beta = self.beta if self.center else tf.zeros([channels], "float32")
        y, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
            inputs, tf.cast(gamma, "float32"), tf.cast(beta, "float32"),
            epsilon=self.epsilon, is_training=True)
        # The kernel's variance is Bessel-corrected; Keras averages the biased one.
        count = (float(math.prod(inputs.shape[:-1])) if None not in inputs.shape[:-1]
                 else tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), "float32"))
        variance = unbiased * (count - 1.0) / count
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            moving.assign(moving * self.momentum + batch * (1.0 - self.momentum))
        return tf.cast(y, self.compute_dtype)


@keras.saving.register_keras_serializable(package="kstyle")
class InstanceNormalization(keras.layers.Layer):
    """Normalizes each channel of each image over its height and width; no parameters.

    `y = (x - mean) / sqrt(var + epsilon)`, mean and variance over H and W of one image
    and channel, computed in float32 whatever the dtype policy (then cast back). The same
    values as `keras.layers.GroupNormalization(groups=-1, center=False, scale=False)`,
    written out because of what LiteRT makes of each: Keras' group norm reshapes to
    groups through shape arithmetic that the converter keeps as SHAPE / STRIDED_SLICE /
    PACK / RESHAPE chains around every norm, while this converts to two MEANs, a
    SQUARED_DIFFERENCE and an RSQRT that LiteRT's XNNPACK delegate runs (several times
    faster for a small stylizer: bench/README.md). In training it runs
    TensorFlow's fused batch-norm kernels instead (the same values; see `_fused`).

    With ``affine=True`` a learned per-channel scale and offset follow (PyTorch's
    ``InstanceNorm2d(affine=True)``, as in pytorch/examples' fast neural style network).

    Args:
        epsilon: added to the variance.
        affine: learn a scale (``gamma``, from 1) and an offset (``beta``, from 0) per
            channel.
        **kwargs: those of `keras.layers.Layer`.

    Example:

    >>> x = keras.random.normal((2, 8, 8, 3), seed=1) * 5 + 2
    >>> y = InstanceNormalization()(x)
    >>> bool(keras.ops.all(keras.ops.abs(keras.ops.mean(y, axis=(1, 2))) < 1e-4))
    True

    Reference:
        Ulyanov et al., "Instance Normalization: The Missing Ingredient for Fast
        Stylization", 2016, https://arxiv.org/abs/1607.08022.
    """

    #: Largest batch normalized image by image in training.
    SPLIT_MAX = 4

    def __init__(self, epsilon=1e-5, affine=False, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.affine = bool(affine)

    def build(self, input_shape):
        if self.affine:
            channels = input_shape[-1]
            self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma")
            self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def call(self, inputs, training=False):
        if training:
            y = self._fused(inputs)
        else:
            x = keras.ops.cast(inputs, "float32")
            centered = x - keras.ops.mean(x, axis=(1, 2), keepdims=True)
            variance = keras.ops.mean(keras.ops.square(centered), axis=(1, 2), keepdims=True)
            y = keras.ops.cast(centered * keras.ops.rsqrt(variance + self.epsilon),
                               inputs.dtype)
        if self.affine:
            y = y * keras.ops.cast(self.gamma, y.dtype) + keras.ops.cast(self.beta, y.dtype)
        return y

    def _fused(self, inputs):
        # Training: TensorFlow's fused batch norm over one image is instance norm; its
        # kernels (forward and gradient, statistics in float32 for bfloat16 inputs) run
        # forward + backward faster than the means above. Inference keeps the means: the
        # fused op in training mode does not convert to LiteRT, gained TensorFlow's
        # inference next to nothing, and rounds about twice as far from the exact values.
        # A batch of up to SPLIT_MAX images (known when traced) is normalized image by
        # image, faster than transposing them; a larger or unknown batch as one image
        # whose channels are the N x C (image, channel) pairs. Both choices are timed by
        # `python bench/thresholds.py --only norm`.
        import tensorflow as tf

        def normalize(x):
            ones = tf.ones([x.shape[-1] if x.shape[-1] is not None else tf.shape(x)[-1]],
                           "float32")
            return tf.compat.v1.nn.fused_batch_norm(
                x, ones, tf.zeros_like(ones), epsilon=self.epsilon, is_training=True)[0]

        n = inputs.shape[0]
        if n == 1:
            return normalize(inputs)
        if n is not None and n <= self.SPLIT_MAX:
            return tf.concat([normalize(x) for x in tf.split(inputs, n)], 0)
        n, h, w, c = (size if size is not None else tf.shape(inputs)[axis]
                      for axis, size in enumerate(inputs.shape))
        y = normalize(tf.reshape(tf.transpose(inputs, [1, 2, 0, 3]), [1, h, w, n * c]))
        return tf.transpose(tf.reshape(y, [h, w, n, c]), [2, 0, 1, 3])

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["epsilon"] = self.epsilon
        if self.affine:  # left out otherwise: files saved before the option load as they were
            config["affine"] = True
        return config


@keras.saving.register_keras_serializable(package="kstyle")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` drawing its mask with the Philox generator on TensorFlow.

    Same behaviour and seeding as Keras' layer. TensorFlow's default stateless algorithm
    compiles to a slow kernel under XLA on CPU (an order of magnitude slower than Philox
    for the U-Net's masks), which made the U-Net's three dropouts a visible part of a
    jit-compiled pix2pix step.

    Args:
        Those of `keras.layers.Dropout`.
    """

    def call(self, inputs, training=False):
        if (not (training and self.rate > 0) or self.noise_shape is not None
                or keras.backend.backend() != "tensorflow"):
            return super().call(inputs, training=training)
        import tensorflow as tf

        seed = tf.cast(self.seed_generator.next(), tf.int32)
        return tf.nn.experimental.stateless_dropout(
            inputs, rate=self.rate, seed=seed, rng_alg="philox"
        )


@keras.saving.register_keras_serializable(package="kstyle")
class ReflectionPadding2D(keras.layers.Layer):
    """Pads the height and width of NHWC images by reflection, without the edge pixel.

    The equivalent of PyTorch's `nn.ReflectionPad2d` and of `numpy.pad(mode="reflect")`:
    padding `[1, 2, 3]` by 2 gives `[3, 2, 1, 2, 3, 2, 1]`. Each padding must be smaller
    than the padded dimension. TensorFlow's ``MirrorPad`` in training and in a graph
    traced for ONNX (:func:`portable_graph`); otherwise a concatenation of one-row slices,
    which TensorFlow runs faster and LiteRT's XNNPACK delegate runs at all.

    Args:
        padding: An int, the same padding on all four sides, or
            `((top, bottom), (left, right))`.
        **kwargs: Those of `keras.layers.Layer`.

    Example:

    >>> layer = ReflectionPadding2D(3)
    >>> layer(keras.ops.zeros((1, 8, 10, 3))).shape
    TensorShape([1, 14, 16, 3])

    Reference:
        Johnson et al., "Perceptual Losses for Real-Time Style Transfer and
        Super-Resolution", ECCV 2016, https://arxiv.org/abs/1603.08155 (reflection padding
        against border artifacts, supplementary material).
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(padding, int):
            padding = ((padding, padding), (padding, padding))
        self.padding = tuple(tuple(int(p) for p in pair) for pair in padding)
        if len(self.padding) != 2 or any(len(pair) != 2 for pair in self.padding):
            raise ValueError(
                f"padding must be an int or ((top, bottom), (left, right)), got {padding}.")

    def call(self, inputs, training=False):
        (top, bottom), (left, right) = self.padding
        if (keras.backend.backend() == "tensorflow" and not training
                and portable_target() != "onnx"):
            # The reflected rows and columns as one-row slices, concatenated. For LiteRT:
            # its MIRROR_PAD kernel is not one XNNPACK runs, so each pad split the graph
            # between XNNPACK and the built-in kernels (the light AdaIN stylizer's .tflite
            # ran twice as fast with these pads). TensorFlow's inference runs them faster
            # than MirrorPad too; in training MirrorPad stays, the concatenation's gradient
            # being the slower one (`python bench/thresholds.py --only padding`). ONNX has
            # a reflect pad of its own.
            return _reflect(_reflect(inputs, top, bottom, 1), left, right, 2)
        return keras.ops.pad(
            inputs, ((0, 0), (top, bottom), (left, right), (0, 0)), mode="reflect")

    def compute_output_shape(self, input_shape):
        (top, bottom), (left, right) = self.padding
        batch, height, width, channels = input_shape
        height = None if height is None else height + top + bottom
        width = None if width is None else width + left + right
        return (batch, height, width, channels)

    def get_config(self):
        config = super().get_config()
        config["padding"] = self.padding
        return config


def _reflect(x, before: int, after: int, axis: int):
    # numpy.pad(mode="reflect") along one axis, from unit-stride slices of one row each:
    # [1, 2, 3] by 2 -> rows 2, 1, then the rest, then rows -2, -3.
    import tensorflow as tf

    def row(i):
        index = [slice(None)] * 4
        index[axis] = slice(i, i + 1 if i != -1 else None)
        return x[tuple(index)]

    parts = [*(row(i) for i in range(before, 0, -1)), x, *(row(-2 - i) for i in range(after))]
    return tf.concat(parts, axis) if len(parts) > 1 else x


@keras.saving.register_keras_serializable(package="kstyle")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` with faster forms of the same function on CPU.

    Named like Keras' layer, so weights files and checkpoints written with
    ``keras.layers.Conv2D`` load into it unchanged. Two kinds of stride-1, 'valid'
    float32 convolutions are computed otherwise on every CPU:

    - a 3x3 convolution of a map whose size is known when traced, with at least
      ``WINOGRAD_MIN_PIXELS`` output pixels, ``WINOGRAD_MIN_CHANNELS`` input channels
      and an even height and width (the ResNet generator's residual blocks from 128 px
      up), in training and inference: :func:`kstyle.nets.winograd.winograd_conv3x3`,
      with 2.25x fewer multiplications. Its transforms are compiled by XLA once per
      shape, which adds a second or two to a CycleGAN's first step;
    - in inference, a convolution to at most ``TAPS_MAX_FILTERS`` filters (an image
      from a feature map: the generators' last conv): one matmul for every tap, then the
      taps' shifted sum (see `_taps`).

    And where TensorFlow's conv is an im2col and a GEMM (:func:`direct_conv_kernels` is
    False), a 4x4 stride-2 'same' convolution of an even-sized map with at least
    ``BLOCKS_MIN_PIXELS`` output pixels and ``BLOCKS_MIN_CHANNELS`` input channels (the
    U-Net's middle levels) is one matmul of 2x2 pixel blocks in inference (see `_blocks`).

    Everything else, GPUs (where cuDNN picks its own algorithm) and graphs traced for
    export (:func:`portable_graph`) are Keras' layer as it is.

    The channel threshold depends on the CPU: where oneDNN has its AVX-512 kernels it
    convolves directly, and Winograd pays from 128 input channels; without them (an AVX2
    CPU, oneDNN off or capped) TensorFlow's conv is an im2col and a GEMM, several times
    slower, and Winograd pays from 64. ``python bench/thresholds.py`` times both forms on
    the machine at hand.

    Args:
        Those of `keras.layers.Conv2D`.
    """

    #: Smallest output (height x width) computed by Winograd's algorithm.
    WINOGRAD_MIN_PIXELS = 32 * 32
    #: Fewest input channels where oneDNN convolves with AVX-512: below, the transforms
    #: cost more than the matmuls save.
    WINOGRAD_MIN_CHANNELS = 128
    #: Fewest input channels where TensorFlow's conv is an im2col and a GEMM.
    WINOGRAD_MIN_CHANNELS_GEMM_CONV = 64

    #: Most filters of a conv computed tap by tap in inference (see `_taps`).
    TAPS_MAX_FILTERS = 4
    #: Smallest output (height x width) and fewest input channels of a 4x4 stride-2 conv
    #: computed on 2x2 pixel blocks in inference where TensorFlow's conv is an im2col and
    #: a GEMM (see `_blocks`).
    BLOCKS_MIN_PIXELS = 32 * 32
    BLOCKS_MIN_CHANNELS = 64

    def call(self, inputs, training=None):
        import tensorflow as tf

        if self._winograd(inputs):
            from kstyle.nets.winograd import winograd_conv3x3

            y = winograd_conv3x3(inputs, tf.convert_to_tensor(self.kernel))
        elif not training and self._by_taps(inputs):
            y = self._taps(inputs, tf.convert_to_tensor(self.kernel))
        elif not training and self._by_blocks(inputs):
            y = self._blocks(inputs, tf.convert_to_tensor(self.kernel))
        else:
            return super().call(inputs)
        if self.use_bias:
            y = tf.nn.bias_add(y, self.bias)
        return self.activation(y)

    def _rewritable(self, inputs) -> bool:
        # An undilated, ungrouped float32 NHWC conv of 4-d inputs, traced for TensorFlow
        # on a CPU and not for export: what every form below needs.
        return (keras.backend.backend() == "tensorflow" and not tracing_portable()
                and self.dilation_rate == (1, 1) and self.groups == 1
                and self.data_format == "channels_last" and len(inputs.shape) == 4
                and keras.backend.standardize_dtype(inputs.dtype) == "float32"
                and self.compute_dtype == "float32" and _on_cpu())

    def _plain(self, inputs) -> bool:
        # ... with stride 1 and 'valid' padding.
        return (self._rewritable(inputs) and self.strides == (1, 1)
                and self.padding == "valid")

    def _by_taps(self, inputs) -> bool:
        return (self._plain(inputs) and self.filters <= self.TAPS_MAX_FILTERS
                and self.kernel_size != (1, 1))

    def _by_blocks(self, inputs) -> bool:
        shape = inputs.shape
        return (self._rewritable(inputs) and self.kernel_size == (4, 4)
                and self.strides == (2, 2) and self.padding == "same"
                and None not in shape[1:] and shape[1] % 2 == 0 and shape[2] % 2 == 0
                and shape[1] * shape[2] // 4 >= self.BLOCKS_MIN_PIXELS
                and shape[3] >= self.BLOCKS_MIN_CHANNELS and not direct_conv_kernels())

    def _blocks(self, inputs, kernel):
        # The U-Net's 4x4 stride-2 convs where oneDNN has no direct kernel (its im2col
        # and GEMM ran these shapes about half as fast). With 'same' padding (one pixel
        # each side of an even map), output pixel (i, j) reads padded rows 2i..2i+3: the
        # 2x2 pixel blocks i and i + 1, columns likewise. So the conv is one matmul of
        # the four neighbouring blocks of each output pixel, [pixels, 4 x 4 x C], with the
        # kernel regrouped by block offset and position within the block.
        import tensorflow as tf

        _, height, width, channels = inputs.shape
        rows, cols = height // 2, width // 2
        blocks = tf.nn.space_to_depth(
            tf.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]]), 2)  # (dy, dx, c) per block
        patches = tf.concat([blocks[:, a:a + rows, b:b + cols] for a in (0, 1) for b in (0, 1)],
                            axis=-1)
        # kernel row 2a + dy, column 2b + dx -> (a, b, dy, dx, c)
        weights = tf.reshape(tf.transpose(tf.reshape(kernel, [2, 2, 2, 2, channels, -1]),
                                          [0, 2, 1, 3, 4, 5]), [16 * channels, -1])
        y = tf.matmul(tf.reshape(patches, [-1, 16 * channels]), weights)
        return tf.reshape(y, [-1, rows, cols, self.filters])

    def _taps(self, inputs, kernel):
        # An image from a feature map (the generators' last conv: 3 filters, a 7x7 or 9x9
        # kernel). TensorFlow's conv is a skinny GEMM at that shape (K = 3 columns), and
        # an im2col and a GEMM on CPUs without AVX-512. Instead: every tap's outputs of
        # every pixel as one matmul, [kh x kw x K, C] x [C, pixels], then the sum of the
        # kh x kw taps' planes, each shifted by its offset (contiguous slices, taps first).
        # The same function; its gradient (the slices' scattered back) is slower than
        # TensorFlow's, so training keeps Keras' conv.
        import tensorflow as tf

        (kh, kw), k_out = self.kernel_size, self.filters
        shape = tf.shape(inputs)
        n, height, width = shape[0], shape[1], shape[2]
        channels = inputs.shape[-1]
        weights = tf.reshape(tf.transpose(kernel, [0, 1, 3, 2]), [kh * kw * k_out, channels])
        taps = tf.matmul(weights, tf.reshape(inputs, [-1, channels]), transpose_b=True)
        taps = tf.reshape(taps, tf.stack([kh, kw, k_out, n, height, width]))
        rows, cols = height - kh + 1, width - kw + 1
        y = tf.add_n([taps[a, b, :, :, a:a + rows, b:b + cols]
                      for a in range(kh) for b in range(kw)])  # [K, N, H, W]
        return tf.transpose(y, [1, 2, 3, 0])

    def _winograd(self, inputs) -> bool:
        shape = inputs.shape
        if not self._plain(inputs) or self.kernel_size != (3, 3) or None in shape:
            return False
        height, width = shape[1] - 2, shape[2] - 2
        return (height % 2 == 0 and width % 2 == 0
                and height * width >= self.WINOGRAD_MIN_PIXELS
                and shape[3] >= (self.WINOGRAD_MIN_CHANNELS if direct_conv_kernels()
                                 else self.WINOGRAD_MIN_CHANNELS_GEMM_CONV)
                and _winograd_pays())


@functools.cache
def direct_conv_kernels() -> bool:
    """Whether TensorFlow convolves on this CPU with oneDNN's direct (AVX-512) kernels.

    oneDNN runs a float32 NHWC convolution by its brgemm kernels with AVX-512; with AVX2
    alone, as an im2col and a GEMM (``x64:gemm:jit`` in ``ONEDNN_VERBOSE``). False too
    where oneDNN is off (``TF_ENABLE_ONEDNN_OPTS=0``: Eigen's convolutions) or capped
    below AVX-512 by ``ONEDNN_MAX_CPU_ISA``.
    """
    import os

    from kstyle.precision import cpu_info, onednn_on

    if not onednn_on():
        return False
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "ALL"))
    if cap.upper() not in ("ALL", "DEFAULT", "") and "512" not in cap:
        return False
    flags = cpu_info()[1]
    return all(f in flags for f in ("avx512f", "avx512bw", "avx512vl", "avx512dq"))


@functools.cache
def _on_cpu() -> bool:
    # Not on a GPU, where cuDNN picks its own algorithms (Winograd among them).
    import tensorflow as tf

    return not tf.config.list_logical_devices("GPU")


@functools.cache
def _winograd_pays() -> bool:
    # Only where TensorFlow can compile the transforms with XLA (a build without XLA's
    # CPU JIT keeps Keras' conv rather than fail).
    import tensorflow as tf

    try:
        tf.function(lambda x: x + 1.0, jit_compile=True)(tf.zeros([2]))
    except (tf.errors.OpError, ValueError, NotImplementedError):
        return False
    return True


def all_layers(model):
    """Every layer of ``model``, those inside nested models included (depth first)."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


@keras.saving.register_keras_serializable(package="kstyle")
class NearestUpsampling2D(keras.layers.Layer):
    """Doubles the height and width of NHWC images by nearest-neighbour resizing.

    The same values as `keras.layers.UpSampling2D(2, interpolation="nearest")`, computed by
    one `ResizeNearestNeighbor` op, which LiteRT runs natively: Keras' layer builds a
    tile-and-reshape whose output loses its channel count in the converter, so the conv
    after it cannot become a LiteRT conv.

    Args:
        **kwargs: Those of `keras.layers.Layer`.

    Example:

    >>> NearestUpsampling2D()(keras.ops.zeros((1, 3, 5, 8))).shape
    TensorShape([1, 6, 10, 8])
    """

    def call(self, inputs):
        import tensorflow as tf

        size = tf.shape(inputs)[1:3] * 2
        return tf.image.resize(inputs, size, method="nearest")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, None if height is None else 2 * height,
                None if width is None else 2 * width, channels)


@keras.saving.register_keras_serializable(package="kstyle")
class DepthToSpace(keras.layers.Layer):
    """Rearranges ``[N, H, W, C * b * b]`` into ``[N, H * b, W * b, C]`` (pixel shuffle).

    One ``DepthToSpace`` op, which LiteRT runs natively: a network can compute its last
    layer at ``1/b`` of the resolution and unfold it, instead of convolving full-size
    feature maps.

    Args:
        block_size: the factor ``b``.
        **kwargs: those of `keras.layers.Layer`.

    Example:

    >>> DepthToSpace(2)(keras.ops.zeros((1, 3, 5, 12))).shape
    TensorShape([1, 6, 10, 3])

    Reference:
        Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient
        Sub-Pixel Convolutional Neural Network", CVPR 2016, https://arxiv.org/abs/1609.05158.
    """

    def __init__(self, block_size=2, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, inputs):
        import tensorflow as tf

        return tf.nn.depth_to_space(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        b = self.block_size
        return (batch, None if height is None else height * b,
                None if width is None else width * b, channels // (b * b))

    def get_config(self):
        config = super().get_config()
        config["block_size"] = self.block_size
        return config


@keras.saving.register_keras_serializable(package="kstyle")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """A 'valid' transposed conv without its first ``crop`` and last ``crop_end`` rows and
    columns.

    Named like Keras' layer on purpose: Keras addresses a layer's weights in a weights
    file by its class name, so checkpoints written when the generators used
    ``keras.layers.Conv2DTranspose`` (and a ``Cropping2D``) load into it unchanged.

    PyTorch's ``ConvTranspose2d(kernel 3, stride 2, padding=1, output_padding=1)`` (the
    ResNet generator's upsampling) is this with ``crop=1``: ``padding`` drops one row and
    column at each end of the 'valid' output, ``output_padding`` gives back the last ones.
    ``ConvTranspose2d(kernel 4, stride 2, padding=1)`` (the U-Net's) is ``crop=1,
    crop_end=1``, which is also Keras' ``padding="same"`` for that kernel and stride.
    Three computations of the same function, each where it is fastest:

    - small maps (at most ``MATMUL_MAX_PIXELS`` input pixels) of a kernel that is a
      multiple of the stride, in training and inference: one matmul of the pixels with
      the kernel as it is stored, then the overlap-add of the taps, as shifted blocks
      (see `_matmul`). TensorFlow's transposed conv (oneDNN's backward-data kernel)
      spends most of its time on the weights at such shapes, several times as long as
      the matmul for the U-Net's innermost layers. From 32x32 up TensorFlow's own kernel
      is faster in inference and close in training, on AVX-512 and AVX2 CPUs alike, and
      it traces half the ops (`python bench/thresholds.py --only transposed`
      times both on the CPU at hand);
    - larger maps in training: one transposed conv with the cropping as its padding
      (``tf.nn.conv2d_transpose`` with explicit padding), which does not write and then
      copy the cropped output (faster forward and backward than the copy);
    - larger maps in inference, and everything within :func:`portable_graph`: the
      'valid' transposed conv and a slice, which LiteRT and ONNX convert.

    Args:
        *args: those of `keras.layers.Conv2DTranspose` (``padding`` is always "valid",
            ``activation`` must be None).
        crop: rows and columns dropped at the top and left.
        crop_end: rows and columns dropped at the bottom and right.
        **kwargs: those of `keras.layers.Conv2DTranspose`.
    """

    #: Largest input (height x width) computed by a matmul.
    MATMUL_MAX_PIXELS = 16 * 16

    def __init__(self, *args, crop=1, crop_end=0, **kwargs):
        kwargs["padding"] = "valid"
        super().__init__(*args, **kwargs)
        if self.activation is not keras.activations.linear:
            raise ValueError("kstyle's Conv2DTranspose takes no activation")
        self.crop = int(crop)
        self.crop_end = int(crop_end)
        if min(self.crop, self.crop_end) < 0 or max(self.crop, self.crop_end) >= min(
                self.kernel_size):
            raise ValueError(f"crop and crop_end must be in [0, kernel size), got "
                             f"{self.crop} and {self.crop_end}")

    def call(self, inputs, training=False):
        c, e = self.crop, self.crop_end
        tensorflow = keras.backend.backend() == "tensorflow"
        if tensorflow and not tracing_portable() and self._by_matmul(inputs.shape):
            y = self._matmul(inputs, keras.ops.cast(self.kernel, inputs.dtype))
        elif training and tensorflow:
            y = self._explicit(inputs, keras.ops.cast(self.kernel, inputs.dtype))
        else:
            y = super().call(inputs)
            return y[:, c:, c:, :] if not e else y[:, c:-e, c:-e, :]
        if self.use_bias:
            import tensorflow as tf

            y = tf.nn.bias_add(y, keras.ops.cast(self.bias, inputs.dtype))
        return y

    def _explicit(self, inputs, kernel):
        import tensorflow as tf

        c, e = self.crop, self.crop_end
        shape = tf.shape(inputs)
        (sh, sw), (kh, kw) = self.strides, self.kernel_size
        output = tf.stack([shape[0], (shape[1] - 1) * sh + kh - c - e,
                           (shape[2] - 1) * sw + kw - c - e, self.filters])
        return tf.nn.conv2d_transpose(inputs, kernel, output, self.strides,
                                      [[0, 0], [c, e], [c, e], [0, 0]])

    def _by_matmul(self, shape) -> bool:
        height, width = shape[1], shape[2]
        return (keras.backend.backend() == "tensorflow" and self.dilation_rate == (1, 1)
                and self.strides[0] == self.strides[1]
                # every phase has the same taps, none of them padding
                and all(k % self.strides[0] == 0 for k in self.kernel_size)
                and height is not None and width is not None
                and height * width <= self.MATMUL_MAX_PIXELS)

    def _matmul(self, inputs, kernel):
        # A transposed conv is a matmul and an overlap-add: each input pixel's C values
        # times the kernel (as [taps x K, C], the layout it is stored in, so nothing is
        # copied) give the K outputs of each of its kh x kw taps; output pixel
        # s * i + t - crop sums tap t of input pixel i. With the taps split as
        # t = s * a + r (k a multiple of s), the outputs of input pixel i at tap offset
        # a land in output block i + a, phase r: so the overlap-add is a sum of q x q
        # shifted copies (q = k / s), and the blocks unfold into rows and columns. Few
        # ops, so that the step traces about as fast as with TensorFlow's kernel.
        import tensorflow as tf

        s, (kh, kw), k_out = self.strides[0], self.kernel_size, self.filters
        height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        # Taps first: [kh, kw, K, N, H, W], so that each tap offset is a whole block
        # (unstacked, whose gradient is a stack) rather than a strided slice (whose
        # gradient scatters into zeros). An einsum: tf.matmul(..., transpose_b=True)
        # took 3-5x longer at these shapes.
        taps = tf.einsum("pc,nc->np", tf.reshape(inputs, [-1, channels]),
                         tf.reshape(kernel, [kh * kw * k_out, channels]))
        qh, qw = kh // s, kw // s
        taps = tf.reshape(taps, [qh, s, qw, s, k_out, -1, height, width])
        shifted = []
        for a, row in enumerate(tf.unstack(taps, axis=0)):  # row: [s, qw, s, K, N, H, W]
            for b, block in enumerate(tf.unstack(row, axis=1)):  # block: [s, s, K, N, H, W]
                shifted.append(tf.pad(block, [[0, 0], [0, 0], [0, 0], [0, 0],
                                              [a, qh - 1 - a], [b, qw - 1 - b]]))
        blocks = tf.add_n(shifted)  # [s, s, K, N, H + qh - 1, W + qw - 1]
        y = tf.reshape(tf.transpose(blocks, [3, 4, 0, 5, 1, 2]),
                       [-1, (height + qh - 1) * s, (width + qw - 1) * s, k_out])
        c, e = self.crop, self.crop_end
        return y[:, c:(height - 1) * s + kh - e, c:(width - 1) * s + kw - e, :]

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = super().compute_output_shape(input_shape)
        cut = self.crop + self.crop_end
        return (batch, None if height is None else height - cut,
                None if width is None else width - cut, channels)

    def get_config(self):
        config = super().get_config()
        config["crop"] = self.crop
        if self.crop_end:  # left out otherwise: files saved before the option load as they were
            config["crop_end"] = self.crop_end
        config.pop("padding", None)
        return config
