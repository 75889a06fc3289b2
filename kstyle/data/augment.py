"""Paired augmentation: resize, random crop and random flip shared by both images.

A translator learns a pixel-aligned mapping, so A and B must get exactly the same crop
and flip. Both images are stacked on the channel axis and cropped/flipped once.

Reference:
    Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks",
    CVPR 2017 (the resize-to-286, random-crop-256, random-flip "jitter" of pix2pix).
"""

from __future__ import annotations

import tensorflow as tf

from kstyle.errors import DataError


def _resize(image: tf.Tensor, size: int) -> tf.Tensor:
    """Resizes a float [-1, 1] image to size x size (bilinear, antialiased)."""
    if image.shape[-3] == size and image.shape[-2] == size:
        return image
    resized = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.clip_by_value(resized, -1.0, 1.0)


def _check_sizes(image_size: int, load_size: int) -> None:
    if load_size < image_size:
        raise DataError(
            f"load_size ({load_size}) must be at least image_size ({image_size}): images are "
            "resized to load_size and then cropped to image_size"
        )


def augment_image(image, *, image_size, load_size=None, flip=True, seed=None) -> tf.Tensor:
    """Resizes one image to load_size, takes a random image_size crop and maybe flips it.

    Args:
        image: float32 tensor [H, W, C] in [-1, 1] (C may be 3 or a stack of images).
        image_size: side of the square crop returned.
        load_size: side of the square the image is resized to before cropping; None
            means image_size (no crop, only the flip).
        flip: whether to flip left-right with probability 1/2.
        seed: None for stateful random ops, or an int tensor of shape [2] for
            stateless (reproducible) ones.

    Returns:
        float32 tensor [image_size, image_size, C].

    Raises:
        DataError: load_size is smaller than image_size.

    Example:
        >>> out = augment_image(tf.zeros([300, 200, 3]), image_size=256, load_size=286)
        >>> out.shape
        TensorShape([256, 256, 3])
    """
    load_size = load_size or image_size
    _check_sizes(image_size, load_size)
    image = _resize(image, load_size)
    channels = image.shape[-1]
    crop = [image_size, image_size, channels]
    if seed is None:
        if load_size > image_size:
            image = tf.image.random_crop(image, crop)
        if flip:
            image = tf.image.random_flip_left_right(image)
    else:
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        if load_size > image_size:
            image = tf.image.stateless_random_crop(image, crop, seed=crop_seed)
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    image.set_shape(crop)
    return image


def paired_augment(a, b, *, image_size, load_size=None, flip=True, seed=None):
    """Applies the same random resize-crop-flip to both images of a pair (graph op).

    Args:
        a: float32 tensor [H, W, 3] in [-1, 1], the domain-A image.
        b: float32 tensor [H', W', 3] in [-1, 1], the domain-B image (any size; both
            are resized to load_size x load_size first).
        image_size: side of the square crop returned.
        load_size: side both images are resized to before cropping; None means
            image_size (only the flip is random).
        flip: whether to flip the pair left-right with probability 1/2.
        seed: None for stateful random ops, or an int tensor of shape [2] for
            stateless ones (what `paired_dataset` passes, so a pipeline seed gives the
            same crops every run).

    Returns:
        (a, b), float32 tensors [image_size, image_size, 3].

    Raises:
        DataError: load_size is smaller than image_size.

    Example:
        >>> a, b = paired_augment(tf.zeros([256, 256, 3]), tf.ones([256, 256, 3]),
        ...                       image_size=256, load_size=286, seed=tf.constant([1, 2]))
    """
    load_size = load_size or image_size
    _check_sizes(image_size, load_size)
    stacked = tf.concat([_resize(a, load_size), _resize(b, load_size)], axis=-1)
    stacked = augment_image(
        stacked, image_size=image_size, load_size=load_size, flip=flip, seed=seed
    )
    return stacked[..., :3], stacked[..., 3:]


def paired_resize(a, b, image_size):
    """Resizes both images of a pair to image_size x image_size, without randomness.

    Args:
        a: float32 tensor [H, W, 3] in [-1, 1].
        b: float32 tensor [H', W', 3] in [-1, 1].
        image_size: side of the square output.

    Returns:
        (a, b), float32 tensors [image_size, image_size, 3].

    Example:
        >>> a, b = paired_resize(tf.zeros([300, 200, 3]), tf.zeros([256, 256, 3]), 128)
    """
    a, b = _resize(a, image_size), _resize(b, image_size)
    a.set_shape([image_size, image_size, 3])
    b.set_shape([image_size, image_size, 3])
    return a, b
