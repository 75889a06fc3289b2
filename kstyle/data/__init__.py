"""Data pipelines: image files, paired and unpaired datasets, augmentation, derived pairs.

Inside models images are float32 in [-1, 1]; at the boundaries they are uint8. The
conversions (`to_float`, `to_uint8`) live here and in the Python API only.

Where each source's files are is `kstyle.data.layout` (TensorFlow-free); what happens to
a file that cannot be used, `kstyle.data.screen`; the pipelines, `kstyle.data.paired` and
`kstyle.data.unpaired`, and the style images of arbitrary-style training,
`kstyle.data.styles`; ``kstyle data check``, `kstyle.data.check`. The names below are
imported on first use, so that the layout (used by recipe checks) loads without
TensorFlow.
"""

import importlib

_NAMES = {
    "BAD_IMAGE_CHOICES": "kstyle.data.screen",
    "DERIVATIONS": "kstyle.data.derive",
    "DERIVE_CHOICES": "kstyle.data.layout",
    "DIRECTIONS": "kstyle.data.layout",
    "IMAGE_EXTENSIONS": "kstyle.data.layout",
    "ImageReport": "kstyle.data.screen",
    "KNOWN_DATASETS": "kstyle.data.layout",
    "PAIRED_SOURCES": "kstyle.data.layout",
    "SYNTHETIC_CLASSES": "kstyle.data.synthetic",
    "SyntheticClass": "kstyle.data.synthetic",
    "UNPAIRED_SOURCES": "kstyle.data.layout",
    "augment_image": "kstyle.data.augment",
    "check_data": "kstyle.data.check",
    "decode": "kstyle.data.images",
    "derive_edges": "kstyle.data.derive",
    "derive_gray": "kstyle.data.derive",
    "describe_pairs": "kstyle.data.paired",
    "list_images": "kstyle.data.layout",
    "luminance": "kstyle.data.derive",
    "paired_augment": "kstyle.data.augment",
    "paired_count": "kstyle.data.paired",
    "paired_dataset": "kstyle.data.paired",
    "paired_resize": "kstyle.data.augment",
    "read_image": "kstyle.data.images",
    "resolve_path": "kstyle.data.paired",
    "scan_image": "kstyle.data.screen",
    "style_count": "kstyle.data.styles",
    "style_dataset": "kstyle.data.styles",
    "synthetic_pairs": "kstyle.data.synthetic",
    "to_float": "kstyle.data.images",
    "to_uint8": "kstyle.data.images",
    "unpaired_count": "kstyle.data.unpaired",
    "unpaired_dataset": "kstyle.data.unpaired",
}


def __getattr__(name):
    try:
        module = _NAMES[name]
    except KeyError:
        raise AttributeError(f"module 'kstyle.data' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_NAMES)
