"""What the paired and unpaired pipelines share: checks, tfds helpers and the tail.

Both read their sources (`kstyle.data.paired`, `kstyle.data.unpaired`), then run the same
tail: shuffle cheap elements, decode, cache, repeat (`decoded`); crop, flip and derive
each element with stateless seeds from one seeded stream, batch and prefetch (`finish`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import tensorflow as tf

from kstyle.data.augment import augment_image
from kstyle.data.screen import BAD_IMAGE_CHOICES
from kstyle.errors import DataError

SHUFFLE_BUFFER = 1000


@dataclass(frozen=True)
class PipelineOptions:
    """The keywords every pipeline (`paired_dataset`, `unpaired_dataset`) takes.

    Attributes:
        split: sub-folder ("train", "val", ...; <split>A and <split>B for two-folder
            layouts) or tfds split. For "synthetic", "train" and any other split draw
            different images (held-back ones).
        image_size: side of the square images yielded.
        load_size: with `augment`, images are resized to load_size and randomly cropped
            to image_size (pix2pix and CycleGAN use 286 -> 256); None: image_size (flip
            only).
        flip: with `augment`, random left-right flips (the same for A and B of a pair;
            drawn for each domain of an unpaired set).
        augment: True for random resize-crop-flip; False resizes to image_size.
        batch_size: pairs per batch.
        shuffle: shuffle (buffer min(count, 1000), reshuffled each epoch; each domain of
            an unpaired set on its own).
        repeat: repeat forever.
        seed: seed of the shuffles, the augmentation and the synthetic images.
        cache: cache the decoded uint8 images: True in memory, a string in that file
            (an unpaired set: one file per domain, ".a" and ".b" appended).
        synthetic_count: images (pairs) of the "synthetic" source.
        tfds_keys: for "tfds", the image feature(s): the photo to derive from, or A and B.
        drop_remainder: drop a last partial batch, so the batch dimension is static.
        data_dir: tfds data folder (None: the tfds default).
        bad_images: what a file refused by `kstyle.data.screen.scan_image` does (file
            sources), as do "ab" files not twice as wide as high and "folders" files
            without a partner: "stop" raises `DataError` listing them; "skip" leaves them
            out, with their partners, and logs one line. Files that need it are made
            upright (EXIF) and brought to 8-bit RGB in the pipeline.
    """

    split: str = "train"
    image_size: int = 256
    load_size: int | None = None
    flip: bool = True
    augment: bool = True
    batch_size: int = 1
    shuffle: bool = True
    repeat: bool = False
    seed: int = 0
    cache: bool | str = False
    synthetic_count: int = 512
    tfds_keys: tuple = ("image",)
    drop_remainder: bool = True
    data_dir: str | None = None
    bad_images: str = "stop"

    def checked(self) -> PipelineOptions:
        """These options with sizes as ints and ``load_size`` set; DataError if unusable."""
        check_choice("bad_images", self.bad_images, BAD_IMAGE_CHOICES)
        for name in ("image_size", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise DataError(f"{name} must be a positive integer, got "
                                f"{getattr(self, name)!r}")
        image_size = int(self.image_size)
        load_size = int(self.load_size) if self.load_size else image_size
        if self.augment and load_size < image_size:
            raise DataError(
                f"load_size ({load_size}) must be at least image_size ({image_size}): images "
                "are resized to load_size and then cropped to image_size")
        return dataclasses.replace(self, image_size=image_size, load_size=load_size)


def check_choice(what: str, value, allowed) -> None:
    if value not in allowed:
        listed = ", ".join(repr(v) for v in allowed)
        raise DataError(f"unknown {what} {value!r}; expected one of {listed}")


def short_reason(error: BaseException) -> str:
    """First line of an exception message (tfds errors can run to hundreds of lines)."""
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    reason = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return reason if len(reason) <= 300 else reason[:297] + "..."


def check_image_feature(spec, key: str, name: str) -> None:
    """Raises DataError unless a tfds feature spec is a uint8 [H, W, 1|3|4] image."""
    shape = getattr(spec, "shape", None)
    if shape is None or shape.rank != 3 or spec.dtype != tf.uint8 or shape[-1] not in (1, 3, 4):
        raise DataError(
            f"tfds dataset {name!r}: feature {key!r} is not an image (expected uint8 "
            f"[H, W, 1|3|4], got {spec})"
        )


def as_rgb(image: tf.Tensor) -> tf.Tensor:
    """Brings a uint8 [H, W, 1|3|4] image to [H, W, 3]."""
    if image.shape[-1] == 1:
        return tf.concat([image, image, image], axis=-1)
    return image[..., :3]


def count_elements(ds: tf.data.Dataset) -> int:
    cardinality = int(ds.cardinality())
    if cardinality >= 0:
        return cardinality
    return int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def cache_name(cache: bool | str, suffix: str = "") -> str | None:
    """``cache`` as ``tf.data``'s cache argument: None (no cache), "" (memory) or a file."""
    if isinstance(cache, str) and cache:
        return cache + suffix
    return "" if cache else None


def decoded(ds, count: int, load, *, shuffle: bool, seed: int, cache: str | None,
            repeat: bool = False):
    """Shuffles, decodes (``load``: element -> uint8 images), caches and repeats a source.

    Cheap elements (file names) are shuffled before decoding, unless decoded images are
    cached, in which case shuffling must follow the cache to differ between epochs.
    """
    buffer = max(1, min(count, SHUFFLE_BUFFER))
    if shuffle and cache is None:
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if load is not None:
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache is not None:
        ds = ds.cache(cache)
        if shuffle:
            ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.repeat() if repeat else ds


def shaped(image, *, augment: bool, image_size: int, load_size: int, flip: bool, seed):
    """One float image at ``image_size``: resized, randomly cropped and flipped when
    ``augment``, else resized."""
    if augment:
        return augment_image(image, image_size=image_size, load_size=load_size, flip=flip,
                             seed=seed)
    return augment_image(image, image_size=image_size, flip=False)


def finish(datasets: tuple, seeds_per_element: int, prepare, *, seed: int, batch_size: int,
           drop_remainder: bool):
    """Zips ``datasets`` with stateless seeds, maps ``prepare``, batches and prefetches.

    Each element gets ``seeds_per_element`` int64 seeds from a stream that is new each
    epoch but fixed by ``seed``: crops are reproducible and independent of parallelism.
    """
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((*datasets, seeds.batch(seeds_per_element)))
    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)
