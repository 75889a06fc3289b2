"""Where a data source's files are: one resolver from (source, path, split) to files.

The paired and unpaired pipelines and ``kstyle data check`` all find their files here, so
a layout is described, accepted and refused the same way everywhere. TensorFlow-free: the
recipe checks use it too.

Layouts of the file sources:

- ``ab``: side-by-side AB images in ``<path>/<split>/``, or directly in ``<path>``.
- ``photos``: photos in ``<path>/<split>/``, or directly in ``<path>``.
- ``folders``: ``<path>/<split>A/`` and ``<path>/<split>B/`` (or ``<path>/A/`` and
  ``<path>/B/``); paired sources match their files by name, unpaired ones do not.
"""

from __future__ import annotations

import os

from kstyle.errors import DataError

#: The files read from folders: every format kstyle reads (through TensorFlow's decoders
#: or, for TIFF and AVIF, Pillow's).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff",
                    ".avif")
PAIRED_SOURCES = ("ab", "folders", "photos", "tfds", "synthetic")
UNPAIRED_SOURCES = ("folders", "tfds", "synthetic")
DIRECTIONS = ("a2b", "b2a")
DERIVE_CHOICES = ("gray", "edges", "none")

# The pix2pix reference datasets (junyanz/pytorch-CycleGAN-and-pix2pix,
# datasets/download_pix2pix_dataset.sh), all in the "ab" layout with train/val folders.
KNOWN_DATASETS = {
    "facades": "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz",
    "maps": "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/maps.tar.gz",
    "edges2shoes": "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/edges2shoes.tar.gz",
    "edges2handbags": ("http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/edges2handbags.tar.gz"),
    "cityscapes": "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/cityscapes.tar.gz",
    "night2day": "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/night2day.tar.gz",
}

_EXTENSIONS = ", ".join(IMAGE_EXTENSIONS)
#: What each file layout expects, in words (for error messages).
LAYOUTS = {
    "ab": (
        "a folder of side-by-side AB images (A = left half, B = right half), either in "
        f"<path>/<split>/ or directly in <path> ({_EXTENSIONS})"
    ),
    "folders": (
        "two folders of images paired by file name, <path>/<split>A and <path>/<split>B, "
        f"or <path>/A and <path>/B ({_EXTENSIONS})"
    ),
    "unpaired": (
        "two folders of unpaired images, <path>/<split>A and <path>/<split>B (e.g. trainA and "
        f"trainB, testA and testB), or <path>/A and <path>/B ({_EXTENSIONS})"
    ),
    "photos": (
        f"a folder of photos, either in <path>/<split>/ or directly in <path> ({_EXTENSIONS})"
    ),
}


def list_images(folder, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[str]:
    """Lists the image files directly inside a folder, sorted by name.

    Args:
        folder: path of a folder holding image files with one of `IMAGE_EXTENSIONS`
            (case-insensitive). Sub-folders are not searched.
        extensions: the file name endings listed (lower case); video files as well,
            say, for stylize.

    Returns:
        The sorted list of full paths.

    Raises:
        DataError: the folder does not exist or holds no image.

    Example:
        >>> files = list_images("datasets/facades/train")  # doctest: +SKIP
    """
    folder = os.fspath(folder)
    names = ", ".join(extensions)
    if not os.path.isdir(folder):
        raise DataError(
            f"image folder {folder!r} does not exist; it should be a folder holding images "
            f"({names})"
        )
    files = sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if name.lower().endswith(extensions) and os.path.isfile(os.path.join(folder, name))
    )
    if not files:
        raise DataError(f"image folder {folder!r} holds no images ({names})")
    return files


def split_images(layout: str, root: str, split: str) -> list[str]:
    """Images of one split of a one-folder layout (``ab``, ``photos``): ``<root>/<split>/``
    if that folder exists, else ``<root>`` itself."""
    folder = os.path.join(root, split)
    if os.path.isdir(folder):
        return list_images(folder)
    try:
        return list_images(root)
    except DataError as error:
        raise DataError(
            f"{root!r} has no {split!r} sub-folder and no images of its own; "
            f"source {layout!r} expects {LAYOUTS[layout]}"
        ) from error


def domain_folders(root: str, split: str, layout: str = "folders") -> tuple[str, str]:
    """The A and B folders of one split: ``<root>/<split>A`` + ``<root>/<split>B``, else
    ``<root>/A`` + ``<root>/B``; a DataError naming what was tried otherwise."""
    root = os.fspath(root) if root is not None else ""
    if not os.path.isdir(root):
        what = "is empty" if not root else f"{root!r} does not exist or is not a folder"
        raise DataError(f"data path {what}; source 'folders' expects {LAYOUTS[layout]}")
    candidates = [(f"{split}A", f"{split}B"), ("A", "B")]
    for name_a, name_b in candidates:
        folder_a, folder_b = os.path.join(root, name_a), os.path.join(root, name_b)
        if os.path.isdir(folder_a) and os.path.isdir(folder_b):
            return folder_a, folder_b
    expects = f"source 'folders' expects {LAYOUTS[layout]}"
    for name_a, name_b in candidates:  # one domain of a pair there: name the other
        present = [os.path.isdir(os.path.join(root, n)) for n in (name_a, name_b)]
        if any(present):
            missing = os.path.join(root, name_b if present[0] else name_a)
            raise DataError(f"folder {missing!r} does not exist; {expects}")
    tried = " or ".join(f"{a}/ + {b}/" for a, b in candidates)
    raise DataError(f"{root!r} holds neither {tried}; {expects}")


def by_name(folder: str) -> dict[str, str]:
    """The images of a folder by file name."""
    return {os.path.basename(p): p for p in list_images(folder)}


def name_pairs(folder_a: str, folder_b: str):
    """Pairs the files of two folders by name.

    Returns:
        ``(pairs, orphans)``: (A path, B path) pairs sorted by name, and ``(path, reason)``
        of each file without a partner.
    """
    files_a, files_b = by_name(folder_a), by_name(folder_b)
    orphans = [(mine[name], f"no partner of the same name in {other!r}")
               for mine, theirs, other in ((files_a, files_b, folder_b),
                                           (files_b, files_a, folder_a))
               for name in sorted(set(mine) - set(theirs))]
    names = sorted(set(files_a) & set(files_b))
    return [(files_a[n], files_b[n]) for n in names], orphans


def existing_splits(root: str, layout: str, splits) -> list[str]:
    """The given splits that exist as folders of ``layout``; ``[""]`` (the folder itself,
    or its A and B) when none does, as the pipelines fall back."""
    found = []
    for split in dict.fromkeys(splits):
        if layout in ("folders", "unpaired"):
            ok = all(os.path.isdir(os.path.join(root, f"{split}{d}")) for d in "AB")
        else:
            ok = os.path.isdir(os.path.join(root, split))
        if ok:
            found.append(split)
    return found or [""]
