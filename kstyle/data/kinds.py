"""What a model kind trains on: one registry entry per data kind (``DATA_KINDS``).

A model kind's options name their data kind (``data_kind = "paired"``); everything that
reads a recipe's ``[data]`` for a model (the training and held-back datasets, the recipe
checks, the log, ``kstyle data check``, ``kstyle eval``) asks the entry, never the name.

Adding a data kind is one :class:`DataKind` below. TensorFlow-free: the pipelines are
imported when a dataset is built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from kstyle.data.layout import UNPAIRED_SOURCES


@dataclasses.dataclass(frozen=True)
class DataKind:
    """How one kind of training data is read from a recipe's ``[data]`` (``d`` below).

    Args:
        name: its name, as model options give it (``data_kind``).
        doc: what the model sees, one line.
        count: ``count(d, split)``: the examples of a split (an epoch's worth).
        dataset: ``dataset(d, split, **options)``: the batched ``tf.data.Dataset`` of a
            split, with the options of :func:`kstyle.data.paired_dataset` (``load_size``,
            ``flip``, ``augment``, ``batch_size``, ``shuffle``, ``repeat``, ``seed``, ...).
        sources: the ``data.source`` values it can read (None: any).
        derives: whether ``data.derive`` (gray, edges) makes its inputs.
        targets: what ``kstyle eval`` scores outputs against: ``"pairs"`` (each input's
            target), ``"domain"`` (real images of the other domain), or None (nothing).
        layout: ``kstyle data check``'s layout for a ``data.source`` (default: the source).
        describe: ``describe(d)``: a line for the training log, or None.
    """

    name: str
    doc: str
    count: Callable
    dataset: Callable
    sources: tuple[str, ...] | None = None
    derives: bool = True
    targets: str | None = None
    layout: Callable[[str], str] = lambda source: source
    describe: Callable | None = None


def _where(d) -> dict:
    return dict(synthetic_count=d.synthetic_count, data_dir=d.data_dir or None,
                bad_images=d.bad_images)


def _common(d) -> dict:
    return dict(image_size=d.image_size, tfds_keys=tuple(d.tfds_keys), **_where(d))


def _paired_count(d, split):
    from kstyle import data as kdata

    return kdata.paired_count(d.source, d.path, split=split, **_where(d))


def _pairs(d, split, **options):
    from kstyle import data as kdata

    return kdata.paired_dataset(d.source, d.path, split=split, direction=d.direction,
                                derive=d.derive, **_common(d), **options)


def _photos(d, split, **options):
    # The B side (the photo) of any paired source: photo folders, tfds, synthetic ...
    from kstyle import data as kdata

    pairs = kdata.paired_dataset(d.source, d.path, split=split, direction="a2b",
                                 derive=d.derive, **_common(d), **options)
    return pairs.map(lambda a, b: b)


def _styled(d, split, **options):
    import tensorflow as tf

    from kstyle import data as kdata

    styles = kdata.style_dataset(
        d.style_path, image_size=d.image_size, bad_images=d.bad_images,
        **{k: v for k, v in options.items() if k not in ("repeat", "drop_remainder")})
    # A last, smaller content batch takes as many styles.
    return tf.data.Dataset.zip((_photos(d, split, **options), styles)).map(
        lambda content, style: (content, style[:tf.shape(content)[0]]))


def _unpaired_count(d, split):
    from kstyle import data as kdata

    # An epoch is the larger domain.
    return max(kdata.unpaired_count(d.source, d.path, split=split, **_where(d)))


def _unpaired(d, split, **options):
    from kstyle import data as kdata

    return kdata.unpaired_dataset(d.source, d.path, split=split, **_common(d), **options)


def _describe_pairs(d) -> str:
    from kstyle import data as kdata

    return "Pairs: " + kdata.describe_pairs(d.source, d.path, direction=d.direction,
                                            derive=d.derive, tfds_keys=d.tfds_keys)


#: The data kinds, by the name model options give them.
DATA_KINDS = {kind.name: kind for kind in (
    DataKind("paired", "(input, target) pairs", _paired_count, _pairs, targets="pairs",
             describe=_describe_pairs),
    DataKind("unpaired", "images of two domains, unpaired", _unpaired_count, _unpaired,
             sources=UNPAIRED_SOURCES, targets="domain", layout=lambda source: "unpaired"),
    DataKind("images", "photos alone", _paired_count, _photos, derives=False),
    DataKind("styled", "photos, each with a style image of data.style_path",
             _paired_count, _styled, derives=False),
)}


def get_data_kind(name: str) -> DataKind:
    """The registered :class:`DataKind`; ValueError listing the valid names."""
    try:
        return DATA_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown data kind {name!r}; valid: {', '.join(DATA_KINDS)}") \
            from None
