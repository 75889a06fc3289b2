"""Image files: listing, decoding, and the uint8 <-> float [-1, 1] conversions.

Models see float32 images in [-1, 1]; files and the Python API deal in uint8. The two
conversions below are the only place that mapping is written down.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError

from kstyle.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def list_images(folder) -> list[str]:
    """Lists the image files directly inside a folder, sorted by name.

    Args:
        folder: path of a folder holding image files with one of `IMAGE_EXTENSIONS`
            (case-insensitive). Sub-folders are not searched.

    Returns:
        The sorted list of full paths.

    Raises:
        DataError: the folder does not exist or holds no image.

    Example:
        >>> files = list_images("datasets/facades/train")  # doctest: +SKIP
    """
    folder = os.fspath(folder)
    expected = ", ".join(IMAGE_EXTENSIONS)
    if not os.path.isdir(folder):
        raise DataError(
            f"image folder {folder!r} does not exist; it should be a folder holding images "
            f"({expected})"
        )
    files = sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if name.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, name))
    )
    if not files:
        raise DataError(f"image folder {folder!r} holds no images ({expected})")
    return files


def decode(contents: tf.Tensor) -> tf.Tensor:
    """Decodes the bytes of one image file to a uint8 RGB tensor (graph op).

    Grayscale images get three equal channels, an alpha channel is dropped, and an
    animated GIF gives its first frame.

    Args:
        contents: scalar string tensor, the bytes of a JPEG, PNG, BMP, GIF or WebP file.

    Returns:
        uint8 tensor of shape [H, W, 3].

    Example:
        >>> image = decode(tf.io.read_file("photo.jpg"))  # doctest: +SKIP
    """
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def to_float(image: tf.Tensor) -> tf.Tensor:
    """Maps uint8 [0, 255] to float32 [-1, 1] as `x / 127.5 - 1` (graph op).

    Args:
        image: uint8 (or any numeric) tensor or array.

    Returns:
        float32 tensor of the same shape.

    Example:
        >>> float(to_float(tf.constant([255], tf.uint8))[0])
        1.0
    """
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def to_uint8(image: tf.Tensor) -> tf.Tensor:
    """Maps float [-1, 1] back to uint8 [0, 255], rounding and clipping (graph op).

    Args:
        image: float tensor or array, nominally in [-1, 1]; values outside are clipped.

    Returns:
        uint8 tensor of the same shape.

    Example:
        >>> int(to_uint8(tf.constant([0.0]))[0])
        128
    """
    scaled = (tf.cast(image, tf.float32) + 1.0) * 127.5
    return tf.cast(tf.clip_by_value(tf.round(scaled), 0.0, 255.0), tf.uint8)


def read_image(path) -> np.ndarray:
    """Reads one image file into a uint8 RGB array, honouring its EXIF orientation.

    Meant for eager use at the Python API boundary (the training pipelines decode in
    graph with `decode`).

    Args:
        path: path of an image file Pillow can open.

    Returns:
        uint8 array of shape [H, W, 3].

    Raises:
        DataError: the file is missing or is not a readable image.

    Example:
        >>> photo = read_image("photo.jpg")  # doctest: +SKIP
    """
    path = os.fspath(path)
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError as error:
        raise DataError(f"image file {path!r} does not exist") from error
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"image file {path!r} could not be read as an image ({error})") from error


def fetch_image(location) -> np.ndarray:
    """Reads an image from a file path, or from an http(s) URL through Keras' file cache.

    A URL is downloaded once into ``~/.keras/datasets/`` (``$KERAS_HOME``) and read from
    there afterwards, offline included.

    Args:
        location: a path, or a URL starting with ``http://`` or ``https://``.

    Returns:
        uint8 array of shape [H, W, 3].

    Raises:
        DataError: the file is missing or unreadable, or the download failed; the message
            says how to use a local file instead.

    Example:
        >>> style = fetch_image("styles/wave.jpg")  # doctest: +SKIP
    """
    text = os.fspath(location)
    if not text.startswith(("http://", "https://")):
        return read_image(text)
    import keras

    name = os.path.basename(text.split("?")[0]) or "image"
    try:
        path = keras.utils.get_file(fname=name, origin=text, cache_subdir="datasets")
    except Exception as error:  # no network, HTTP error: reported alike
        raise DataError(
            f"could not download the image {text!r} ({type(error).__name__}: {error}); "
            f"download it by hand and give its local path instead") from error
    return read_image(path)


def resize_long_side(images: tf.Tensor, long_side: int) -> tf.Tensor:
    """Resizes float ``[N, H, W, C]`` images (antialiased bilinear) so that the longer side
    is ``long_side``, keeping the aspect ratio; returns them unchanged when it already is.
    """
    height, width = int(images.shape[1]), int(images.shape[2])
    if max(height, width) == long_side:
        return images
    scale = long_side / max(height, width)
    return tf.image.resize(images, (max(1, round(height * scale)), max(1, round(width * scale))),
                           method="bilinear", antialias=True)
