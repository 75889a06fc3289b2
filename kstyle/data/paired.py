"""Paired (A, B) tf.data pipelines for image-to-image translation.

One entry point, `paired_dataset`, reads any of `PAIRED_SOURCES` and yields batches of
`(real_a, real_b)`, float32 in [-1, 1], shape [batch, image_size, image_size, 3]:

- "ab": side-by-side AB images (the pix2pix layout: A left half, B right half).
- "folders": two folders of images paired by file name.
- "photos": one folder of photos; A is derived on the fly (gray or edges), B is the photo.
- "tfds": a tensorflow-datasets dataset.
- "synthetic": the built-in label-map -> rendered-photo set (`synthetic_pairs`).

Files are scanned first (`kstyle.data.screen`): refused ones stop the build or are
skipped (`bad_images`), and the few that need it are turned upright (EXIF) or decoded by
Pillow. They are decoded in graph by a parallel `map`; random crops and flips are stateless
ops seeded from a `tf.data.Dataset.random` stream, so a pipeline seed gives the same
batches on every run while each epoch still gets new crops.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from kstyle.data.augment import paired_augment, paired_resize
from kstyle.data.derive import DERIVATIONS
from kstyle.data.images import to_float
from kstyle.data.layout import (
    DERIVE_CHOICES,
    DIRECTIONS,
    KNOWN_DATASETS,
    LAYOUTS,
    PAIRED_SOURCES,
    domain_folders,
    name_pairs,
    split_images,
)
from kstyle.data.pipeline import (
    SHUFFLE_BUFFER,
    PipelineOptions,
    as_rgb,
    cache_name,
    check_choice,
    check_image_feature,
    count_elements,
    decoded,
    finish,
    shaped,
    short_reason,
)
from kstyle.data.screen import (
    BAD_IMAGE_CHOICES,
    ImageReport,
    file_slices,
    screen_files,
    screen_pairs,
)
from kstyle.data.synthetic import synthetic_pairs
from kstyle.errors import DataError


def _keras_cache_dir() -> str:
    return os.path.join(
        os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"),
        "datasets",
    )


def _fetch_known(name: str) -> str:
    """Returns the local folder of a known pix2pix dataset, downloading it if needed."""
    url = KNOWN_DATASETS[name]
    cached = os.path.join(_keras_cache_dir(), f"{name}_extracted", name)
    if os.path.isdir(cached):
        return cached
    try:
        extracted = keras.utils.get_file(f"{name}.tar.gz", origin=url, extract=True)
    except Exception as error:  # urllib, socket, tarfile and Keras errors alike
        raise DataError(
            f"could not download {name} from {url} ({short_reason(error)}); download it "
            "yourself and set data.path to the extracted folder "
            f"(e.g. --set data.path=/path/to/{name})"
        ) from error
    inner = os.path.join(extracted, name)
    return inner if os.path.isdir(inner) else extracted


def resolve_path(source: str, path) -> str:
    """Returns the local folder a file-based source reads from.

    For source "ab", a `path` that is not a local folder but names one of
    `KNOWN_DATASETS` is fetched into the Keras file cache (~/.keras/datasets) and the
    extracted folder is returned. For "tfds" and "synthetic" `path` is returned as given
    (a tfds name, or unused).

    Args:
        source: one of `PAIRED_SOURCES`.
        path: folder (str or PathLike), or a known dataset name for "ab".

    Returns:
        The folder path, as a string.

    Raises:
        DataError: unknown source, missing folder, or a failed download.

    Example:
        >>> resolve_path("ab", "facades")  # doctest: +SKIP
        '/home/me/.keras/datasets/facades_extracted/facades'
    """
    check_choice("data source", source, PAIRED_SOURCES)
    path = os.fspath(path) if path is not None else ""
    if source in ("tfds", "synthetic"):
        return path
    if os.path.isdir(path):
        return path
    if source == "ab" and path in KNOWN_DATASETS:
        return _fetch_known(path)
    hint = ""
    if source == "ab":
        hint = f", or one of the known dataset names {', '.join(KNOWN_DATASETS)}"
    what = "is empty" if not path else f"{path!r} does not exist or is not a folder"
    raise DataError(f"data path {what}; source {source!r} expects {LAYOUTS[source]}{hint}")


def _folder_pairs(root: str, split: str):
    """``(pairs, orphans, where)`` of the "folders" layout: (A path, B path) pairs sorted by
    name, refused `ImageReport`s of the files without a partner, the folders for messages."""
    folder_a, folder_b = domain_folders(root, split)
    pairs, orphans = name_pairs(folder_a, folder_b)
    orphans = [ImageReport(path, "refused", reason) for path, reason in orphans]
    return pairs, orphans, f"{folder_a!r} and {folder_b!r}"


def _screened(source: str, root: str, split: str, bad_images: str):
    """The scanned files a file source keeps under `bad_images`: `ImageReport`s, or
    (A, B) pairs of them for "folders"."""
    if source == "folders":
        pairs, orphans, where = _folder_pairs(root, split)
        return screen_pairs(pairs, orphans, bad_images=bad_images, where=where)
    files = split_images(source, root, split)
    return screen_files(files, bad_images=bad_images, where=repr(os.path.dirname(files[0])),
                        ab=source == "ab")


def _load_tfds(name: str, split: str, data_dir):
    import tensorflow_datasets as tfds  # slow import, only paid by tfds users

    try:
        return tfds.load(name, split=split, data_dir=data_dir)
    except Exception as error:  # not found, no network, bad split: all reported alike
        raise DataError(
            f"tfds dataset {name!r} (split {split!r}) could not be loaded "
            f"({short_reason(error)}); set data.path to a local folder instead, with "
            'data.source = "ab", "folders" or "photos"'
        ) from error


def paired_count(
    source: str,
    path="",
    *,
    split: str = "train",
    synthetic_count: int = 512,
    data_dir=None,
    bad_images: str = "stop",
) -> int:
    """Number of pairs a source holds for one split, without decoding images.

    Args:
        source: one of `PAIRED_SOURCES`.
        path: as for `paired_dataset`.
        split: as for `paired_dataset`.
        synthetic_count: number of pairs of the "synthetic" source.
        data_dir: tfds data folder (source "tfds").
        bad_images: as for `paired_dataset`.

    Returns:
        The number of pairs (one epoch without `repeat`, before batching).

    Raises:
        DataError: as `paired_dataset`.

    Example:
        >>> paired_count("synthetic", synthetic_count=64)
        64
    """
    check_choice("data source", source, PAIRED_SOURCES)
    if source == "synthetic":
        return int(synthetic_count)
    if source == "tfds":
        return count_elements(_load_tfds(os.fspath(path), split, data_dir))
    check_choice("bad_images", bad_images, BAD_IMAGE_CHOICES)
    root = resolve_path(source, path)
    return len(_screened(source, root, split, bad_images))


def _source_dataset(source, path, derive, o):
    """Returns (dataset, count, load, single): `load` maps an element to uint8 images."""
    split, synthetic_count, tfds_keys, data_dir, seed, bad_images = (
        o.split, o.synthetic_count, o.tfds_keys, o.data_dir, o.seed, o.bad_images)
    size = o.load_size if o.augment else o.image_size  # what images are decoded at
    if source == "synthetic":
        a, b = synthetic_pairs(synthetic_count, size, seed=seed if split == "train" else seed + 1)
        return tf.data.Dataset.from_tensor_slices((a, b)), len(a), None, False
    if source == "tfds":
        ds = _load_tfds(os.fspath(path), split, data_dir)
        keys = tuple(tfds_keys)
        wanted = 1 if derive != "none" else 2
        if len(keys) < wanted:
            raise DataError(
                f"tfds_keys {keys!r} must name two image features (A, B) when derive is "
                "'none', or one (the photo) otherwise"
            )
        keys = keys[:wanted]
        spec = ds.element_spec
        features = sorted(spec) if isinstance(spec, dict) else []
        for key in keys:
            if key not in features:
                raise DataError(
                    f"tfds dataset {path!r} has no feature {key!r}; its features are: "
                    f"{', '.join(features) or '(none: elements are not dicts)'}"
                )
            check_image_feature(spec[key], key, path)
        cardinality = int(ds.cardinality())
        count = cardinality if cardinality >= 0 else SHUFFLE_BUFFER
        if wanted == 1:
            return ds, count, lambda ex: as_rgb(ex[keys[0]]), True
        return ds, count, lambda ex: (as_rgb(ex[keys[0]]), as_rgb(ex[keys[1]])), False
    root = resolve_path(source, path)
    kept = _screened(source, root, split, bad_images)
    if source == "folders":
        slices_a, load_a = file_slices([a for a, _ in kept])
        slices_b, load_b = file_slices([b for _, b in kept])
        ds = tf.data.Dataset.from_tensor_slices((slices_a, slices_b))
        return ds, len(kept), lambda a, b: (load_a(a), load_b(b)), False
    slices, load = file_slices(kept)
    ds = tf.data.Dataset.from_tensor_slices(slices)
    if source == "ab":
        return ds, len(kept), lambda element: _split_ab(load(element)), False
    return ds, len(kept), load, True


def _split_ab(image):
    half = tf.shape(image)[1] // 2
    return image[:, :half], image[:, half : 2 * half]


def describe_pairs(source: str, path="", *, direction: str = "a2b", derive: str = "gray",
                   tfds_keys=("image",)) -> str:
    """Says in words what a paired pipeline feeds the model as input and as target.

    Printed at the start of a fit, so that a recipe's ``direction`` (written for one data
    set, e.g. the facades' photo-left, labels-right files) cannot silently train the
    opposite mapping on another.

    Args:
        source, path, direction, derive, tfds_keys: as for `paired_dataset`.

    Returns:
        One line, e.g. ``"input = left half, target = right half of each AB image in
        'data/x' (data.direction = a2b)"``.

    Example:
        >>> describe_pairs("ab", "ab", direction="b2a")
        "input = right half, target = left half of each AB image in 'ab' (data.direction = b2a)"
    """
    path = os.fspath(path) if path is not None else ""
    if source == "ab":
        a, b, where = "left half", "right half", f" of each AB image in {path!r}"
    elif source == "folders":
        a, b, where = "<split>A/ (or A/)", "<split>B/ (or B/)", f" in {path!r}"
    elif source == "synthetic":
        a, b, where = "label map", "rendered photo", " of the built-in synthetic pairs"
    elif source == "tfds" and derive == "none":
        keys = tuple(tfds_keys) + ("?", "?")
        a, b, where = f"feature {keys[0]!r}", f"feature {keys[1]!r}", f" of tfds {path!r}"
    else:
        made = {"gray": "grayscale copy", "edges": "edge map"}.get(derive, derive)
        a, b, where = f"the photo's {made}", "the photo", f" in {path!r}"
    if direction == "b2a":
        a, b = b, a
    return f"input = {a}, target = {b}{where} (data.direction = {direction})"


def paired_dataset(source: str, path="", *, direction: str = "a2b", derive: str = "gray",
                   **options) -> tf.data.Dataset:
    """Builds the (real_a, real_b) pipeline of a paired image-to-image task.

    Args:
        source: one of `PAIRED_SOURCES` (see the module docstring).
        path: folder for "ab", "folders" and "photos" (for "ab" also a name from
            `KNOWN_DATASETS`, fetched into the Keras cache), a dataset name for "tfds"
            (e.g. "tf_flowers"), unused for "synthetic".
        direction: "a2b" yields (A, B); "b2a" swaps them.
        derive: how "photos" and "tfds" make A from a photo: "gray" (colorization) or
            "edges" (sketch); "none" means a "tfds" dataset already has A and B.
        **options: the keywords of `kstyle.data.pipeline.PipelineOptions` (``split``,
            ``image_size``, ``load_size``, ``flip``, ``augment``, ``batch_size``,
            ``shuffle``, ``repeat``, ``seed``, ``cache``, ``synthetic_count``,
            ``tfds_keys``, ``drop_remainder``, ``data_dir``, ``bad_images``). For
            "synthetic", "train" uses ``seed`` and any other split ``seed + 1``.

    Returns:
        A `tf.data.Dataset` of (real_a, real_b), float32 in [-1, 1], each
        [batch_size, image_size, image_size, 3].

    Raises:
        DataError: unknown source, direction or derive; missing, empty or unpaired
            folders; refused files under bad_images "stop"; a dataset that cannot be
            loaded or downloaded.

    Example:
        >>> ds = paired_dataset("synthetic", image_size=64, batch_size=4,
        ...                     synthetic_count=32)
        >>> real_a, real_b = next(iter(ds))
        >>> real_a.shape
        TensorShape([4, 64, 64, 3])
    """
    check_choice("data source", source, PAIRED_SOURCES)
    check_choice("direction", direction, DIRECTIONS)
    check_choice("derive", derive, DERIVE_CHOICES)
    if source == "photos" and derive == "none":
        raise DataError("source 'photos' needs derive 'gray' or 'edges', got 'none'")
    o = PipelineOptions(**options).checked()

    ds, count, load, single = _source_dataset(source, path, derive, o)
    if count == 0:
        raise DataError(f"data source {source!r} at {path!r} (split {o.split!r}) holds no pairs")
    ds = decoded(ds, count, load, shuffle=o.shuffle, seed=o.seed, cache=cache_name(o.cache),
                 repeat=o.repeat)

    derivation = DERIVATIONS.get(derive)
    swap = direction == "b2a"

    def prepare(element, pair_seed):
        if single:
            photo = shaped(to_float(element), augment=o.augment, image_size=o.image_size,
                           load_size=o.load_size, flip=o.flip, seed=pair_seed)
            a, b = derivation(photo)
        elif o.augment:
            a, b = paired_augment(to_float(element[0]), to_float(element[1]),
                                  image_size=o.image_size, load_size=o.load_size, flip=o.flip,
                                  seed=pair_seed)
        else:
            a, b = paired_resize(to_float(element[0]), to_float(element[1]), o.image_size)
        return (b, a) if swap else (a, b)

    # One stateless [2] seed per pair (the same crop and flip for A and B).
    return finish((ds,), 2, prepare, seed=o.seed, batch_size=o.batch_size,
                  drop_remainder=o.drop_remainder)
