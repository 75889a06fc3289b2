"""3x3 convolutions by Winograd's minimal filtering algorithm F(2x2, 3x3).

Each 2x2 block of output pixels is ``A^T [(G g G^T) * (B^T d B)] A`` of the 4x4 input
tile ``d`` under it and the 3x3 kernel ``g`` (Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks", CVPR 2016, https://arxiv.org/abs/1509.09308): the sums
over input channels become 16 matmuls of [tiles, C] x [C, K], one per position in the
4x4 tile, with 2.25x fewer multiplications than the direct convolution. B and A only add
and subtract, G adds and halves, so in float32 it rounds no worse than a direct
convolution: against float64, a 64x64x256 -> 256 layer's max |error| was 3.3e-6 this way
and 1.2e-5 with oneDNN's direct kernel.

The transforms read the padded map as 2x2 pixel blocks (a reshape), so each of their
terms is a plain slice. They are memory-bound, and compiled by XLA (once per shape, a
few tenths of a second each), which runs them faster than the same transforms as
TensorFlow ops. Where the algorithm pays against TensorFlow's own conv depends on the CPU
(see `kstyle.nets.layers.Conv2D`); `python bench/thresholds.py --only winograd` times
both.

In training the gradient is written out (``winograd_conv3x3``'s custom gradient): the
input's is the 'full' convolution of the output's gradient by the flipped kernel, itself
by Winograd's algorithm; the kernel's is the same 16 matmuls transposed, between the
input's transform (computed again rather than kept: 16 MB a layer for a 256 px image)
and the adjoint of the output transform. The gradient's work waits for the gradient,
and the layer before for the kernel's gradient: computed as soon as they could be, the
transforms were held or piled up, and a CycleGAN step at 256 px held 1.1 GiB more.
"""

import numpy as np
import tensorflow as tf

#: Winograd's F(2x2, 3x3) kernel transform G; its input transform B^T,
#: ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)), and output transform A^T,
#: ((1, 1, 1, 0), (0, 1, -1, -1)), are written out below.
_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
#: G (x) G: row 4a + b, column 3p + q holds G[a, p] G[b, q], so that G g G^T for every
#: pair of channels is one matmul of the kernel as [9, C x K].
_GG = np.kron(_G, _G)


def _bt(parts):
    # B^T over the four rows (or columns) of every tile
    d0, d1, d2, d3 = parts
    return [d0 - d2, d1 + d2, d2 - d1, d1 - d3]


def _at(rows):
    # A^T over four rows: m0 + m1 + m2, m1 - m2 - m3
    m0, m1, m2, m3 = rows
    return [m0 + m1 + m2, m1 - m2 - m3]


def _at_adjoint(rows):
    # A over two rows: d0, d0 + d1, d0 - d1, -d1
    d0, d1 = rows
    return [d0, d0 + d1, d0 - d1, -d1]


def kernel_transform(kernel):
    """``G g G^T`` of a ``[3, 3, C, K]`` kernel: ``[16, C, K]``, positions row-major."""
    _, _, channels, k_out = kernel.shape
    u = tf.matmul(tf.constant(_GG, kernel.dtype), tf.reshape(kernel, [9, -1]))
    return tf.reshape(u, [16, channels, k_out])


def _kernel_adjoint(u):
    # The kernel's gradient from that of its transform: G^T u G.
    _, channels, k_out = u.shape
    g = tf.matmul(tf.constant(_GG, u.dtype), tf.reshape(u, [16, -1]), transpose_a=True)
    return tf.reshape(g, [3, 3, channels, k_out])


@tf.function(jit_compile=True, autograph=False)
def input_transform(inputs):
    """``B^T d B`` of every 4x4 tile at stride 2 of ``[N, 2R + 2, 2S + 2, C]`` inputs:
    ``[16, N * R * S, C]``, one matrix per position in the tile, row-major."""
    n, height, width, channels = inputs.shape
    rows, cols = (height - 2) // 2, (width - 2) // 2
    # pixel (2i + a, 2j + b) is blocks[:, i, a, j, b]
    blocks = tf.reshape(inputs, [n, height // 2, 2, width // 2, 2, channels])
    # B^T along the tiles' columns, on every row of the map: [4 (b), N, R + 1, 2, S, C];
    # then down the tiles' rows: [4 (a), 4 (b), N, R, S, C]. (Rows first, or as 16
    # separate sums, ran slower: bench/README.md.)
    by_col = tf.stack(_bt([blocks[:, :, :, b // 2:b // 2 + cols, b % 2] for b in range(4)]))
    v = tf.stack(_bt([by_col[:, :, a // 2:a // 2 + rows, a % 2] for a in range(4)]))
    return tf.reshape(v, [16, -1, channels])


@tf.function(jit_compile=True, autograph=False)
def output_transform(products, shape):
    """``A^T m A`` of the ``[16, N * R * S, K]`` products: the ``[N, 2R, 2S, K]`` output
    (``shape`` is ``[N, R, S]``)."""
    n, rows, cols = shape
    k_out = products.shape[-1]
    m = tf.unstack(tf.reshape(products, [16, n, rows, cols, k_out]))
    # Down the tile's rows (a), then along them (b); then the 2x2 phases interleaved.
    by_row = [_at([m[4 * a + b] for a in range(4)]) for b in range(4)]  # [b][u]
    y = tf.stack([tf.stack(_at([by_row[b][u] for b in range(4)]), axis=3) for u in range(2)],
                 axis=2)  # [N, R, 2, S, 2, K]
    return tf.reshape(y, [n, 2 * rows, 2 * cols, k_out])


@tf.function(jit_compile=True, autograph=False)
def _output_adjoint(grad):
    # The 16 products' gradients from the output's: A^T's adjoint down the phases' rows,
    # then along them (as 16 separate sums it ran and compiled slower).
    n, height, width, k_out = grad.shape
    phases = tf.reshape(grad, [n, height // 2, 2, width // 2, 2, k_out])
    rows = tf.stack(_at_adjoint([phases[:, :, u] for u in range(2)]))  # [4, N, R, S, 2, K]
    m = tf.stack(_at_adjoint([rows[..., v, :] for v in range(2)]), axis=1)  # [4, 4, N, R, S, K]
    return tf.reshape(m, [16, -1, k_out])


def _forward(inputs, kernel):
    n, height, width, _ = inputs.shape
    products = tf.matmul(input_transform(inputs), kernel_transform(kernel))
    return output_transform(products, (n, (height - 2) // 2, (width - 2) // 2))


@tf.custom_gradient
def winograd_conv3x3(inputs, kernel):
    """A 3x3, stride-1, 'valid' convolution of NHWC ``inputs`` by Winograd's F(2x2, 3x3).

    The same function as ``tf.nn.conv2d(inputs, kernel, 1, "VALID")``, float32, on CPU;
    differentiable (see the module's docstring).

    Args:
        inputs: ``[N, H + 2, W + 2, C]`` float32 tensor of static shape, H and W even.
        kernel: ``[3, 3, C, K]`` float32 tensor.

    Returns:
        ``[N, H, W, K]``.
    """
    def gradient(grad):
        # Nothing here before the gradient is there: what depends on the input or the
        # kernel alone would be computed during the forward pass and held (the input's
        # transform is 16 MB a layer for one 256 px image, 0.7 GiB of a ResNet-9
        # generator's training step on two).
        with tf.control_dependencies([grad]):
            flipped = tf.reverse(tf.transpose(kernel, [0, 1, 3, 2]), [0, 1])
            v = input_transform(inputs)
        d_inputs = _forward(tf.pad(grad, [[0, 0], [2, 2], [2, 2], [0, 0]]), flipped)
        d_kernel = _kernel_adjoint(tf.matmul(v, _output_adjoint(grad), transpose_a=True))
        # The layer before waits for the kernel's gradient: off the path of the input's
        # gradients, its 16-matrix transforms would pile up from layer to layer.
        with tf.control_dependencies([d_kernel]):
            return tf.identity(d_inputs), d_kernel

    return _forward(inputs, kernel), gradient
