"""``kstyle data check``: what `fit` would do with every file of a data folder.

The same scan as the training pipelines (`kstyle.data.screen`), over every split of a
folder in any layout (`kstyle.data.layout`), with what only a whole folder shows: files
without a partner, partners of different sizes, files duplicated across splits.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace

from kstyle.data.images import ImageRefused, open_image
from kstyle.data.layout import by_name, domain_folders, existing_splits, list_images
from kstyle.data.screen import AB_ASPECT_TOLERANCE, ImageReport, check_ab, scan_images
from kstyle.errors import DataError

CHECK_LAYOUTS = ("auto", "ab", "folders", "unpaired", "photos")


@dataclass
class CheckRow:
    """One file of a `DataCheck`: its split, scan report and notes about its pairing."""

    split: str
    report: ImageReport
    notes: list[str] = field(default_factory=list)

    @property
    def plain(self) -> bool:
        """Used as it is, with nothing to say."""
        return self.report.status == "used" and not self.notes


@dataclass
class DataCheck:
    """What `fit` would do with every file of a data folder (see `check_data`)."""

    root: str
    layout: str
    splits: list[str]
    rows: list[CheckRow]
    missing_partners: int = 0
    size_mismatches: int = 0
    duplicates: int = 0

    def count(self, status: str) -> int:
        return sum(row.report.status == status for row in self.rows)

    @property
    def refused(self) -> int:
        return self.count("refused")

    def summary(self) -> str:
        """One line, e.g. "412 files: 405 used, 5 converted, 2 refused; 1 missing partner;
        0 duplicated across splits"."""
        text = (f"{len(self.rows)} files: {self.count('used')} used, "
                f"{self.count('converted')} converted, {self.refused} refused")
        if self.layout == "folders":
            text += f"; {_plural(self.missing_partners, 'missing partner')}"
            text += f"; {_plural(self.size_mismatches, 'size mismatch', 'es')} between partners"
        return text + f"; {self.duplicates} duplicated across splits"


def _plural(n: int, what: str, suffix: str = "s") -> str:
    return f"{n} {what}{'' if n == 1 else suffix}"


def _image_subfolders(root: str) -> list[str]:
    names = []
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if os.path.isdir(folder):
            try:
                list_images(folder)
            except DataError:
                continue
            names.append(name)
    return names


def _pair_splits(root: str) -> list[str]:
    """Prefixes p with both <root>/pA and <root>/pB holding images ("" for A and B)."""
    names = set(_image_subfolders(root))
    return sorted(n[:-1] for n in names if n.endswith("A") and n[:-1] + "B" in names)


def detect_layout(root: str) -> tuple[str, list[str]]:
    """Guesses the layout of a data folder and its splits.

    <split>A + <split>B folders are "folders" when most names match across them, else
    "unpaired"; otherwise images in sub-folders (one split each) or in the folder itself
    are "ab" when most are twice as wide as high, else "photos".
    """
    pair_splits = _pair_splits(root)
    if pair_splits:
        matched = 0
        smaller = 0
        for split in pair_splits:
            names_a, names_b = (
                {os.path.basename(p) for p in list_images(os.path.join(root, split + d))}
                for d in "AB")
            matched += len(names_a & names_b)
            smaller += min(len(names_a), len(names_b))
        return ("folders" if 2 * matched >= smaller else "unpaired"), pair_splits
    splits = _image_subfolders(root) or [""]
    files = [f for s in splits for f in list_images(os.path.join(root, s))][:200]
    ab = 0
    for path in files:
        try:
            with open_image(path) as image:
                width, height = image.size
        except ImageRefused:
            continue
        ab += abs(width - 2 * height) <= max(1, AB_ASPECT_TOLERANCE * 2 * height)
    return ("ab" if 2 * ab > len(files) else "photos"), splits


def _digest(path: str) -> str | None:
    digest = hashlib.sha1()
    try:
        with open(path, "rb") as fp:
            for block in iter(lambda: fp.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def check_data(path, *, layout: str = "auto", splits=None) -> DataCheck:
    """Scans every file of a data folder as `fit` would, for ``kstyle data check``.

    Reports each file's status (`scan_image`, plus `check_ab` for "ab"), files of
    "folders" pairs without a partner (refused, as `fit` does) or whose partner differs
    in size (noted: pairs are resized alike, but it often means a misaligned pair), and
    files duplicated across splits, found by a SHA-1 of the file bytes (so a re-encoded
    or resized copy is not found).

    Args:
        path: the data folder.
        layout: one of `CHECK_LAYOUTS`: "ab", "folders" (paired by name), "unpaired"
            (<split>A and <split>B of a CycleGAN set), "photos", or "auto"
            (`detect_layout`).
        splits: split names to check (e.g. a recipe's train and val splits); those that
            do not exist are left out. None: every split found (with "auto"), else the
            folder itself.

    Returns:
        A `DataCheck`.

    Raises:
        DataError: the folder does not exist or holds no images in that layout.

    Example:
        >>> result = check_data("datasets/facades")  # doctest: +SKIP
        >>> result.summary()
        '606 files: 606 used, 0 converted, 0 refused; 0 duplicated across splits'
    """
    root = os.fspath(path)
    if layout not in CHECK_LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; expected one of "
                        f"{', '.join(repr(c) for c in CHECK_LAYOUTS)}")
    if not os.path.isdir(root):
        raise DataError(f"data path {root!r} does not exist or is not a folder")
    if layout == "auto":
        layout, found = detect_layout(root)
        splits = found if splits is None else splits
    if splits is None:
        splits = _pair_splits(root) if layout in ("folders", "unpaired") else [""]
        splits = splits or [""]
    splits = existing_splits(root, layout, splits)
    result = DataCheck(root=root, layout=layout, splits=splits, rows=[])
    for split in splits:
        if layout in ("folders", "unpaired"):
            _check_pair_folders(result, split, paired=layout == "folders")
        else:
            reports = scan_images(list_images(os.path.join(root, split)))
            if layout == "ab":
                reports = [check_ab(r) for r in reports]
            result.rows += [CheckRow(split, r) for r in reports]
    _find_duplicates(result)
    return result


def _check_pair_folders(result: DataCheck, split: str, *, paired: bool) -> None:
    folder_a, folder_b = domain_folders(result.root, split,
                                        "folders" if paired else "unpaired")
    files_a, files_b = by_name(folder_a), by_name(folder_b)
    reports = dict(zip([*files_a.values(), *files_b.values()],
                       scan_images([*files_a.values(), *files_b.values()]), strict=True))
    if not paired:
        result.rows += [CheckRow(split, reports[p]) for p in reports]
        return
    for mine, theirs, other in ((files_a, files_b, folder_b), (files_b, files_a, folder_a)):
        for name, path in mine.items():
            report = reports[path]
            row = CheckRow(split, report)
            partner = theirs.get(name)
            if partner is None:
                result.missing_partners += 1
                if not report.refused:
                    row.report = replace(report, status="refused",
                                         reason=f"no partner of the same name in {other!r}")
                else:
                    row.notes.append(f"no partner in {other!r} either")
            else:
                partner_report = reports[partner]
                if partner_report.refused and not report.refused:
                    row.notes.append("partner refused: the pair is left out")
                elif not report.refused and mine is files_a and (
                        (report.width, report.height)
                        != (partner_report.width, partner_report.height)):
                    result.size_mismatches += 1
                    row.notes.append(f"{report.width}x{report.height} px, partner "
                                     f"{partner_report.width}x{partner_report.height} px")
            result.rows.append(row)


def _find_duplicates(result: DataCheck) -> None:
    if len(result.splits) < 2:
        return
    first: dict[str, CheckRow] = {}
    spans: dict[str, set[str]] = {}
    for row in result.rows:
        digest = _digest(row.report.path)
        if digest is None:
            continue
        seen = first.setdefault(digest, row)
        spans.setdefault(digest, set()).add(row.split)
        if seen.split != row.split:
            where = os.path.relpath(seen.report.path, result.root)
            row.notes.append(f"same bytes as {where}")
    result.duplicates = sum(len(s) > 1 for s in spans.values())

