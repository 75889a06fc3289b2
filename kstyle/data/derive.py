"""Pairs derived from a single photo: colorization (gray -> color), sketch (edges -> photo).

Every function takes a float32 photo in [-1, 1], shaped [H, W, 3] or [N, H, W, 3], and
returns `(a, b)` with `b` the photo itself and `a` the derived input, also float32 in
[-1, 1] with 3 channels, so any paired model can train on a folder of plain photos.
"""

from __future__ import annotations

import tensorflow as tf

# ITU-R BT.601 luma weights; they sum to 1, so they apply unchanged to [-1, 1] values.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

# Sobel magnitudes (for a unit step, after the blur) are mapped to ink with a smoothstep
# between these two values: faint texture stays white, strong edges turn fully black.
_EDGE_LOW = 0.08
_EDGE_HIGH = 0.30


def luminance(photo: tf.Tensor) -> tf.Tensor:
    """Returns the BT.601 luma of an RGB image, keeping a last axis of size 1."""
    weights = tf.constant(LUMA_WEIGHTS, dtype=tf.float32)
    return tf.reduce_sum(tf.cast(photo, tf.float32) * weights, axis=-1, keepdims=True)


def derive_gray(photo: tf.Tensor):
    """Makes a colorization pair: A is the photo's luminance on 3 channels, B the photo.

    Args:
        photo: float32 tensor [H, W, 3] or [N, H, W, 3] in [-1, 1].

    Returns:
        (gray3, photo): gray3 = 0.299 R + 0.587 G + 0.114 B repeated on 3 channels.

    Example:
        >>> gray, color = derive_gray(tf.zeros([64, 64, 3]))
    """
    photo = tf.cast(photo, tf.float32)
    gray = luminance(photo)
    return tf.concat([gray, gray, gray], axis=-1), photo


def derive_edges(photo: tf.Tensor):
    """Makes a sketch pair: A is a line drawing (black lines on white), B the photo.

    The luminance is blurred with a 3x3 binomial kernel, its Sobel gradient magnitude is
    taken, and the magnitude is mapped smoothly to ink so that flat regions stay white
    and strong edges become dark lines (a cheap stand-in for the HED edges of
    edges2shoes).

    Args:
        photo: float32 tensor [H, W, 3] or [N, H, W, 3] in [-1, 1], at least 2x2.

    Returns:
        (edges3, photo): edges3 in [-1, 1], 1 = white paper, -1 = black line, 3 channels.

    Example:
        >>> edges, color = derive_edges(tf.zeros([64, 64, 3]))
    """
    photo = tf.cast(photo, tf.float32)
    batched = photo.shape.rank == 4
    luma = (luminance(photo if batched else photo[tf.newaxis]) + 1.0) / 2.0
    row = tf.constant([1.0, 2.0, 1.0]) / 4.0
    kernel = tf.reshape(row[:, tf.newaxis] * row[tf.newaxis, :], [3, 3, 1, 1])
    padded = tf.pad(luma, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    blurred = tf.nn.conv2d(padded, kernel, strides=1, padding="VALID")
    # Sobel rows weigh 1-2-1, so dividing by 4 gives a unit step a magnitude near 1.
    gradients = tf.image.sobel_edges(blurred) / 4.0
    magnitude = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=-1) + 1e-12)
    t = tf.clip_by_value((magnitude - _EDGE_LOW) / (_EDGE_HIGH - _EDGE_LOW), 0.0, 1.0)
    ink = t * t * (3.0 - 2.0 * t)
    edges = 1.0 - 2.0 * ink
    edges = tf.concat([edges, edges, edges], axis=-1)
    if not batched:
        edges = edges[0]
    return edges, photo


DERIVATIONS = {"gray": derive_gray, "edges": derive_edges}
