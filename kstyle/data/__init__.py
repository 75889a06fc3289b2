"""Data pipelines: image files, paired and unpaired datasets, augmentation, derived pairs.

Inside models images are float32 in [-1, 1]; at the boundaries they are uint8. The
conversions (`to_float`, `to_uint8`) live here and in the Python API only.
"""

from kstyle.data.augment import augment_image, paired_augment, paired_resize
from kstyle.data.check import BAD_IMAGE_CHOICES, ImageReport, check_data, scan_image
from kstyle.data.derive import DERIVATIONS, derive_edges, derive_gray, luminance
from kstyle.data.images import (
    IMAGE_EXTENSIONS,
    decode,
    list_images,
    read_image,
    to_float,
    to_uint8,
)
from kstyle.data.paired import (
    DERIVE_CHOICES,
    DIRECTIONS,
    KNOWN_DATASETS,
    PAIRED_SOURCES,
    describe_pairs,
    paired_count,
    paired_dataset,
    resolve_path,
)
from kstyle.data.synthetic import SYNTHETIC_CLASSES, SyntheticClass, synthetic_pairs
from kstyle.data.unpaired import UNPAIRED_SOURCES, unpaired_count, unpaired_dataset

__all__ = [
    "BAD_IMAGE_CHOICES",
    "DERIVATIONS",
    "DERIVE_CHOICES",
    "DIRECTIONS",
    "IMAGE_EXTENSIONS",
    "ImageReport",
    "KNOWN_DATASETS",
    "PAIRED_SOURCES",
    "SYNTHETIC_CLASSES",
    "SyntheticClass",
    "UNPAIRED_SOURCES",
    "augment_image",
    "check_data",
    "decode",
    "derive_edges",
    "derive_gray",
    "list_images",
    "luminance",
    "paired_augment",
    "describe_pairs",
    "paired_count",
    "paired_dataset",
    "paired_resize",
    "read_image",
    "resolve_path",
    "scan_image",
    "synthetic_pairs",
    "to_float",
    "to_uint8",
    "unpaired_count",
    "unpaired_dataset",
]
