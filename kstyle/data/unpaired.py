"""Unpaired (A, B) tf.data pipelines for CycleGAN-style translation.

One entry point, `unpaired_dataset`, reads any of `UNPAIRED_SOURCES` and yields batches
of `(real_a, real_b)`, float32 in [-1, 1], shape [batch, image_size, image_size, 3],
where `real_a` and `real_b` have nothing to do with each other:

- "folders": the CycleGAN layout, <path>/<split>A/ and <path>/<split>B/ (trainA, trainB,
  testA, testB; or A/ and B/); file names are not matched.
- "tfds": a CycleGAN-style tensorflow-datasets dataset such as "cycle_gan/horse2zebra",
  whose splits are <split>A and <split>B.
- "synthetic": the label maps (A) and renderings (B) of `synthetic_pairs`, drawn from
  different seeds, so that no B is the rendering of any A.

Each domain is shuffled and augmented on its own (its own shuffle order, its own crops
and flips). An epoch is one pass over the longer domain; the shorter one is cycled,
reshuffled on every cycle, so an epoch yields max(n_a, n_b) pairs before batching.

Reference:
    Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
    Networks", ICCV 2017 (the trainA/trainB layout and the resize-286, crop-256, flip
    augmentation of each domain).
"""

from __future__ import annotations

import os

import tensorflow as tf

from kstyle.data import pipeline
from kstyle.data.images import to_float
from kstyle.data.layout import UNPAIRED_SOURCES, domain_folders, list_images
from kstyle.data.screen import BAD_IMAGE_CHOICES, file_slices, screen_files
from kstyle.data.synthetic import synthetic_pairs
from kstyle.errors import DataError


def _load_tfds_domain(name: str, split: str, data_dir):
    """Loads the split of one domain ("trainA", ...) of a CycleGAN-style tfds dataset."""
    import tensorflow_datasets as tfds  # slow import, only paid by tfds users

    try:
        return tfds.load(name, split=split, data_dir=data_dir)
    except Exception as error:  # not found, no network, bad split: all reported alike
        raise DataError(
            f"tfds dataset {name!r} (split {split!r}) could not be loaded "
            f"({pipeline.short_reason(error)}); an unpaired tfds dataset needs splits <split>A "
            "and "
            '<split>B, like "cycle_gan/horse2zebra"; or set data.path to a local folder '
            'with data.source = "folders"'
        ) from error


def _synthetic_seeds(seed: int, split: str) -> tuple[int, int]:
    """Seeds of the A and B synthetic images: distinct for every (seed, split, domain)."""
    index = 2 * int(seed) + (0 if split == "train" else 1)
    return 2 * index, 2 * index + 1


def unpaired_count(
    source: str,
    path="",
    *,
    split: str = "train",
    synthetic_count: int = 512,
    data_dir=None,
    bad_images: str = "stop",
) -> tuple[int, int]:
    """Number of images of each domain for one split, without decoding images.

    Args:
        source: one of `UNPAIRED_SOURCES`.
        path: as for `unpaired_dataset`.
        split: as for `unpaired_dataset`.
        synthetic_count: number of images of each domain of the "synthetic" source.
        data_dir: tfds data folder (source "tfds").
        bad_images: as for `unpaired_dataset`.

    Returns:
        (n_a, n_b). One epoch of `unpaired_dataset` without `repeat` holds
        max(n_a, n_b) pairs before batching.

    Raises:
        DataError: as `unpaired_dataset`.

    Example:
        >>> unpaired_count("synthetic", synthetic_count=64)
        (64, 64)
    """
    pipeline.check_choice("data source", source, UNPAIRED_SOURCES)
    if source == "synthetic":
        return int(synthetic_count), int(synthetic_count)
    if source == "tfds":
        name = os.fspath(path)
        n_a, n_b = (pipeline.count_elements(_load_tfds_domain(name, f"{split}{d}", data_dir))
                    for d in "AB")
        return n_a, n_b
    pipeline.check_choice("bad_images", bad_images, BAD_IMAGE_CHOICES)
    folders = domain_folders(path, split, "unpaired")
    n_a, n_b = (len(_screened(folder, bad_images)) for folder in folders)
    return n_a, n_b


def _screened(folder: str, bad_images: str):
    """The scanned files of one domain folder kept under `bad_images`."""
    return screen_files(list_images(folder), bad_images=bad_images, where=repr(folder))


def _domain_datasets(source, path, o):
    """Returns one (dataset, count, load) per domain: `load` maps an element to uint8."""
    split, synthetic_count, tfds_keys, data_dir, seed, bad_images = (
        o.split, o.synthetic_count, o.tfds_keys, o.data_dir, o.seed, o.bad_images)
    size = o.load_size if o.augment else o.image_size  # what images are decoded at
    if source == "synthetic":
        seed_a, seed_b = _synthetic_seeds(seed, split)
        a, _ = synthetic_pairs(synthetic_count, size, seed=seed_a)
        _, b = synthetic_pairs(synthetic_count, size, seed=seed_b)
        return [(tf.data.Dataset.from_tensor_slices(x), len(x), None) for x in (a, b)]
    if source == "tfds":
        name = os.fspath(path)
        keys = tuple(tfds_keys)
        if not keys:
            raise DataError("tfds_keys must name the image feature, e.g. ('image',)")
        key = keys[0]
        domains = []
        for domain in "AB":
            ds = _load_tfds_domain(name, f"{split}{domain}", data_dir)
            spec = ds.element_spec
            features = sorted(spec) if isinstance(spec, dict) else []
            if key not in features:
                raise DataError(
                    f"tfds dataset {name!r} has no feature {key!r}; its features are: "
                    f"{', '.join(features) or '(none: elements are not dicts)'}"
                )
            pipeline.check_image_feature(spec[key], key, name)
            domains.append((ds, pipeline.count_elements(ds),
                            lambda ex: pipeline.as_rgb(ex[key])))
        return domains
    domains = []
    for folder in domain_folders(path, split, "unpaired"):
        kept = _screened(folder, bad_images)
        slices, load = file_slices(kept)
        domains.append((tf.data.Dataset.from_tensor_slices(slices), len(kept), load))
    return domains


def unpaired_dataset(source: str, path="", **options) -> tf.data.Dataset:
    """Builds the (real_a, real_b) pipeline of an unpaired image-to-image task.

    The two domains are shuffled with different seeds and cropped and flipped
    independently. One pass (without `repeat`) yields max(n_a, n_b) pairs: the shorter
    domain is cycled, reshuffled on each cycle.

    Args:
        source: one of `UNPAIRED_SOURCES` (see the module docstring).
        path: for "folders" the folder holding <split>A and <split>B; for "tfds" a
            CycleGAN-style dataset name (e.g. "cycle_gan/horse2zebra"); unused for
            "synthetic".
        **options: the keywords of `kstyle.data.pipeline.PipelineOptions` (``split``:
            the folders <split>A and <split>B, or the tfds splits of those names;
            ``image_size``, ``load_size``, ``flip``, ``augment``, ``batch_size``,
            ``shuffle``, ``repeat``, ``seed``, ``cache``, ``synthetic_count``: images of
            each domain, its A label maps and B renderings drawn from different seeds so
            that no B is the rendering of any A; ``tfds_keys``: its first item is the
            image feature; ``drop_remainder``, ``data_dir``, ``bad_images``).

    Returns:
        A `tf.data.Dataset` of (real_a, real_b), float32 in [-1, 1], each
        [batch_size, image_size, image_size, 3].

    Raises:
        DataError: unknown source; a missing or empty folder; refused files under
            bad_images "stop"; a tfds dataset that cannot
            be loaded, lacks the splits or has no such image feature; bad sizes.

    Example:
        >>> ds = unpaired_dataset("synthetic", image_size=64, batch_size=4,
        ...                       synthetic_count=32)
        >>> real_a, real_b = next(iter(ds))
        >>> real_a.shape
        TensorShape([4, 64, 64, 3])
    """
    pipeline.check_choice("data source", source, UNPAIRED_SOURCES)
    o = pipeline.PipelineOptions(**options).checked()

    domains = _domain_datasets(source, path, o)
    length = max(count for _, count, _ in domains)
    prepared = []
    for index, (ds, count, load) in enumerate(domains):
        domain = "AB"[index]
        if count == 0:
            raise DataError(
                f"data source {source!r} at {path!r} holds no images for {o.split}{domain}"
            )
        # Seeds 2 * seed and 2 * seed + 1: the two shuffles differ, for every seed.
        # The shorter domain cycles so that the longer one sets the epoch; with
        # `repeat` both do. The longer one stays finite without `repeat`, so the
        # epoch ends, and a cache of it is complete, when it is exhausted.
        ds = pipeline.decoded(ds, count, load, shuffle=o.shuffle, seed=2 * int(o.seed) + index,
                              cache=pipeline.cache_name(o.cache, f".{domain.lower()}"),
                              repeat=o.repeat or count < length)
        prepared.append(ds)

    def prepare(real_a, real_b, seeds):
        return tuple(pipeline.shaped(to_float(image), augment=o.augment,
                                     image_size=o.image_size, load_size=o.load_size,
                                     flip=o.flip, seed=image_seed)
                     for image, image_seed in ((real_a, seeds[:2]), (real_b, seeds[2:])))

    # Two stateless [2] seeds per pair: one per domain.
    return pipeline.finish(tuple(prepared), 4, prepare, seed=o.seed, batch_size=o.batch_size,
                           drop_remainder=o.drop_remainder)
