"""Checks of image files before training: what `fit` uses, converts or refuses, and why.

`scan_image` classifies one file as "used" (decoded as it is), "converted" (decoded, then
made upright or brought to 8-bit RGB: the reason says how) or "refused" (the reason says
why). The training pipelines scan their files before building a dataset, and
`data.bad_images` decides what a refused file does: "stop" raises one `DataError` listing
them, "skip" leaves them (and their partners) out with one logged line.
`kstyle.data.check.check_data` runs the same scan over a whole data folder for ``kstyle
data check``.

Cost: reading the header is cheap, but a truncated file is only found by decoding it, so
every file is decoded once (JPEGs at 1/8 scale with Pillow's ``draft``, which still reads
every byte of the compressed data; other formats in full), in a thread pool since Pillow
decodes without the GIL. That is less than one epoch of training, which decodes every
file anyway. Results are kept for the life of the process, keyed by (path, size, mtime),
so the counts and datasets of one run scan each file once and an edited file is scanned
again. Nothing is written to disk: a cache file beside read-only or shared datasets
would be one more thing to go stale.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
from dataclasses import dataclass, replace
from typing import Literal

import tensorflow as tf

from kstyle.data.images import (
    ImageRefused,
    decode_file,
    exif_orientation,
    icc_profile_name,
    is_16bit,
    load_pixels,
    open_image,
)
from kstyle.errors import DataError

BAD_IMAGE_CHOICES = ("stop", "skip")

# Side-by-side AB files must be twice as wide as high, within this fraction (and one
# pixel for odd widths): a 16:9 photo (1.78) is refused, a 513 x 256 AB file is not.
AB_ASPECT_TOLERANCE = 0.05

# Formats TensorFlow's decode_image reads (JPEG files with several pictures report MPO).
_TF_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP")
_ORIENTATION_NAMES = {2: "flipped", 3: "rotated", 4: "flipped", 5: "transposed",
                      6: "rotated", 7: "transposed", 8: "rotated"}
_MAX_LISTED = 5
_MAX_REMEMBERED = 200_000

logger = logging.getLogger("kstyle.data")
_scanned: dict[tuple[str, int, int], ImageReport] = {}
_logged: set[str] = set()


@dataclass(frozen=True)
class ImageReport:
    """What training does with one image file.

    Attributes:
        path: the file.
        status: "used", "converted" or "refused".
        reason: empty for "used"; what is converted (e.g. "CMYK -> RGB"), or why the file
            is refused (e.g. "truncated file").
        width: width once upright (0 when refused before the header was read).
        height: height once upright.
        orientation: EXIF orientation (1-8) that the pipeline applies; 1 when the file
            is decoded by Pillow, which applies it itself.
        pillow: decode with Pillow in the pipeline (formats TensorFlow decodes wrongly).
    """

    path: str
    status: Literal["used", "converted", "refused"]
    reason: str = ""
    width: int = 0
    height: int = 0
    orientation: int = 1
    pillow: bool = False

    @property
    def refused(self) -> bool:
        return self.status == "refused"


def _refused(path: str, reason: str, width: int = 0, height: int = 0) -> ImageReport:
    return ImageReport(path, "refused", reason, width, height)


def _conversions(image, sixteen: bool, orientation: int) -> list[str]:
    reasons = []
    if orientation != 1:
        reasons.append(f"EXIF orientation {orientation} -> {_ORIENTATION_NAMES[orientation]}")
    mode = image.mode
    bits = "16-bit " if sixteen else ""
    if mode == "CMYK":
        reasons.append("CMYK -> RGB")
    elif mode in ("1", "L", "I") or mode.startswith("I;16"):
        reasons.append("16-bit grayscale -> 8-bit RGB" if sixteen else "grayscale -> RGB")
    elif mode == "LA":
        reasons.append(f"{bits}grayscale with alpha -> RGB (alpha dropped)")
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        reasons.append("palette -> RGB" + (" (transparency dropped)" if has_alpha else ""))
    elif mode == "RGBA":
        reasons.append(f"{bits}RGBA -> RGB (alpha dropped)")
    elif mode == "RGB":
        if sixteen:
            reasons.append("16-bit -> 8-bit")
    else:
        reasons.append(f"{mode} -> RGB")
    return reasons


def _scan(path: str) -> ImageReport:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # TensorFlow's string tensors take UTF-8 names only
        return _refused(path, "its file name is not valid UTF-8 (TensorFlow cannot open "
                              "it): rename the file")
    try:
        image = open_image(path)
    except ImageRefused as refusal:
        return _refused(path, refusal.reason)
    with image:
        width, height = image.size
        image_format, mode = image.format, image.mode
        sixteen = is_16bit(image)  # before load(), which forgets the raw mode
        frames = getattr(image, "n_frames", 1)
        profile = icc_profile_name(image) if mode in ("RGB", "CMYK") else None
        if image_format in ("JPEG", "MPO"):
            # Decode at 1/8 scale: every compressed byte is still read, so truncation
            # shows, at a fraction of the cost.
            image.draft(None, (max(1, width // 8), max(1, height // 8)))
        try:
            load_pixels(image, path)
        except ImageRefused as refusal:
            return _refused(path, refusal.reason, width, height)
        orientation = exif_orientation(image)
        reasons = _conversions(image, sixteen, orientation)
    if frames > 1:
        reasons.append(f"animation of {frames} frames -> its first frame")
    if profile is not None:
        reasons.append(f"colour profile {profile!r} -> sRGB")
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    # Pillow decodes what TensorFlow's decoders would get wrong or not read: other
    # formats, animations (TensorFlow gives every frame), colour profiles (it ignores them).
    pillow = image_format not in _TF_FORMATS or frames > 1 or profile is not None or (
        image_format == "BMP" and mode not in ("RGB", "RGBA")) or (
        image_format in ("JPEG", "MPO") and mode not in ("L", "RGB", "CMYK"))
    return ImageReport(path, "converted" if reasons else "used", "; ".join(reasons),
                       width, height, 1 if pillow else orientation, pillow)


def scan_image(path) -> ImageReport:
    """Says whether training uses, converts or refuses one image file, and why.

    Reads the header (size, mode, EXIF orientation) and decodes the pixels with Pillow
    (JPEGs at reduced scale), so that truncated and corrupt files are found here rather
    than in the middle of a run. Results are remembered per (path, size, mtime).

    Args:
        path: the image file.

    Returns:
        An `ImageReport`. Refused: missing or empty file, not an image, truncated or
        corrupt data, a declared size over `kstyle.data.images.max_pixels()` (a
        decompression bomb: refused from the header, before any pixel is decoded) or a
        side under `kstyle.data.images.MIN_SIDE`. Converted: EXIF orientation other than
        1, CMYK, 16-bit, grayscale, palette, alpha.

    Example:
        >>> report = scan_image("photos/IMG_0001.jpg")  # doctest: +SKIP
        >>> report.status, report.reason
        ('converted', 'EXIF orientation 6 -> rotated')
    """
    path = os.fspath(path)
    try:
        stat = os.stat(path)
    except OSError:
        return _refused(path, "file does not exist")
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    report = _scanned.get(key)
    if report is None:
        report = _scan(path)
        if len(_scanned) >= _MAX_REMEMBERED:
            _scanned.clear()
        _scanned[key] = report
    return report


def scan_images(paths) -> list[ImageReport]:
    """`scan_image` over many files, in a thread pool; reports in the order of `paths`."""
    paths = [os.fspath(p) for p in paths]
    if len(paths) < 16:
        return [scan_image(p) for p in paths]
    workers = min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(scan_image, paths))


def check_ab(report: ImageReport) -> ImageReport:
    """Refuses a side-by-side AB file that is not twice as wide as high.

    Within `AB_ASPECT_TOLERANCE` (and one pixel, for odd widths); a plain photo in an
    "ab" folder would otherwise be split down the middle into a false pair.
    """
    if report.refused:
        return report
    expected = 2 * report.height
    if abs(report.width - expected) <= max(1, AB_ASPECT_TOLERANCE * expected):
        return report
    return replace(report, status="refused", reason=(
        f"{report.width}x{report.height} px: source 'ab' expects A|B side by side, twice "
        f"as wide as high (about {expected} px wide)"))


def _listing(reports) -> str:
    shown = "; ".join(f"{r.path!r}: {r.reason}" for r in reports[:_MAX_LISTED])
    more = len(reports) - _MAX_LISTED
    return shown + (f"; and {more} more" if more > 0 else "")


def _enforce(refused: list[ImageReport], skipped: int, total: int, policy: str,
             where: str) -> None:
    """Raises (stop) or logs once (skip) about the refused files of one file list."""
    if policy not in BAD_IMAGE_CHOICES:
        raise DataError(f"unknown bad_images {policy!r}; expected one of "
                        f"{', '.join(repr(c) for c in BAD_IMAGE_CHOICES)}")
    if not refused:
        return
    if policy == "stop":
        raise DataError(
            f"{len(refused)} of {total} image files in {where} cannot be used: "
            f"{_listing(refused)}. Fix or remove them, or set data.bad_images = \"skip\" "
            "to train without them ('kstyle data check' lists every file)")
    line = (f"skipped {skipped} of {total} files in {where} (bad_images = 'skip'): "
            f"{_listing(refused)}")
    if skipped > len(refused):
        line += f" (and {skipped - len(refused)} partner file(s) of those)"
    if line not in _logged:
        _logged.add(line)
        logger.warning(line)


def screen_files(paths, *, bad_images: str = "stop", where: str = "",
                 ab: bool = False) -> list[ImageReport]:
    """Scans a file list and applies `bad_images` to the refused ones.

    Args:
        paths: image files.
        bad_images: "stop" raises `DataError` listing the refused files; "skip" leaves
            them out and logs one line ("skipped N of M files ...").
        where: the folder, for messages.
        ab: the files are side-by-side AB images (see `check_ab`).

    Returns:
        The reports of the files kept.
    """
    reports = scan_images(paths)
    if ab:
        reports = [check_ab(r) for r in reports]
    refused = [r for r in reports if r.refused]
    _enforce(refused, len(refused), len(reports), bad_images, where)
    return [r for r in reports if not r.refused]


def screen_pairs(pairs, orphans=(), *, bad_images: str = "stop",
                 where: str = "") -> list[tuple[ImageReport, ImageReport]]:
    """`screen_files` for (A, B) file pairs; `orphans` are refused reports of files
    without a partner. A pair is kept only when both its files are."""
    pairs = list(pairs)
    reports = scan_images([p for pair in pairs for p in pair])
    report_pairs = list(zip(reports[0::2], reports[1::2], strict=True))
    refused = list(orphans) + [r for pair in report_pairs for r in pair if r.refused]
    kept = [pair for pair in report_pairs if not (pair[0].refused or pair[1].refused)]
    total = 2 * len(pairs) + len(orphans)
    _enforce(refused, total - 2 * len(kept), total, bad_images, where)
    return kept


def file_slices(reports):
    """Tensor slices of some scanned files and the graph function decoding one of them.

    Returns:
        ``(slices, load)``: `slices` for `tf.data.Dataset.from_tensor_slices`, and
        `load(element)` -> uint8 [H, W, 3]. When no file needs rotating or Pillow, the
        slices are the bare paths and `load` the plain graph decode; otherwise a dict of
        path, EXIF orientation and Pillow flag per file, and only the flagged files leave
        the graph.
    """
    paths = [r.path for r in reports]
    rotate = any(r.orientation != 1 for r in reports)
    pillow = any(r.pillow for r in reports)
    if not (rotate or pillow):
        return paths, decode_file
    slices = {"path": paths}
    if rotate:
        slices["orientation"] = tf.constant([r.orientation for r in reports], tf.int32)
    if pillow:
        slices["pillow"] = tf.constant([r.pillow for r in reports], tf.bool)

    def load(element):
        return decode_file(element["path"], element.get("orientation"), element.get("pillow"))

    return slices, load
