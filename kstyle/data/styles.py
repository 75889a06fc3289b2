"""Style images for arbitrary-style training: a folder of paintings, cycled endlessly.

`style_dataset` yields batches of style images, float32 in [-1, 1], from every image
directly inside one folder, shuffled on its own and reshuffled on every pass, each
resized and randomly cropped (and flipped) like the content photos it is paired with.
It never ends: the content sets the epoch (`kstyle.training.builders` zips the two).

Reference:
    Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance
    Normalization", ICCV 2017 (WikiArt paintings, resized to 512 and cropped to 256,
    drawn independently of the content photos).
"""

from __future__ import annotations

import os

import tensorflow as tf

from kstyle.data import pipeline
from kstyle.data.images import to_float
from kstyle.data.layout import list_images
from kstyle.data.screen import file_slices, screen_files


def _screened(folder, bad_images: str):
    return screen_files(list_images(folder), bad_images=bad_images, where=repr(os.fspath(folder)))


def style_count(folder, *, bad_images: str = "stop") -> int:
    """The number of usable style images in ``folder`` (``DataError`` as `style_dataset`)."""
    return len(_screened(folder, bad_images))


def style_dataset(folder, **options) -> tf.data.Dataset:
    """Endless batches of style images from the images directly inside ``folder``.

    Args:
        folder: a folder of style images (sub-folders are not read).
        **options: those of `kstyle.data.pipeline.PipelineOptions` that apply:
            ``image_size``, ``load_size``, ``flip``, ``augment`` (False: each image resized
            to ``image_size``), ``batch_size``, ``shuffle``, ``seed``, ``cache`` (".style"
            is appended to a file name) and ``bad_images``. ``repeat`` is always on.

    Returns:
        A `tf.data.Dataset` of float32 ``[batch_size, image_size, image_size, 3]``.

    Raises:
        DataError: the folder does not exist or holds no usable image; refused files
            under ``bad_images = "stop"``.

    Example:
        >>> styles = style_dataset("paintings/", image_size=256, load_size=512,
        ...                        batch_size=8)  # doctest: +SKIP
    """
    o = pipeline.PipelineOptions(**options).checked()
    kept = _screened(folder, o.bad_images)
    slices, load = file_slices(kept)
    # Seed 2 * seed + 1, apart from a content pipeline's 2 * seed.
    ds = pipeline.decoded(tf.data.Dataset.from_tensor_slices(slices), len(kept), load,
                          shuffle=o.shuffle, seed=2 * int(o.seed) + 1,
                          cache=pipeline.cache_name(o.cache, ".style"), repeat=True)

    def prepare(image, seeds):
        return pipeline.shaped(to_float(image), augment=o.augment, image_size=o.image_size,
                               load_size=o.load_size, flip=o.flip, seed=seeds)

    return pipeline.finish((ds,), 2, prepare, seed=int(o.seed) + 1, batch_size=o.batch_size,
                           drop_remainder=True)
