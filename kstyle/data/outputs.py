"""Where stylized images are written: one distinct file per input, never over an input.

``kstyle stylize`` and ``kstyle.stylize`` of several paths name each result after its
input (``photo.jpg`` -> ``<out>/photo.png``). Two inputs of one stem (``a.jpg`` and
``a.png``, or two folders' ``a.jpg``) would get one name: they keep their extension
(``a.jpg.png``, ``a.png.png``) and, if that is not enough, a number. A result that would
replace one of the inputs is refused before anything is written, and one that exists
already is replaced only when asked (``--overwrite``) or left (``--skip-existing``).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from kstyle.errors import DataError


class OutputExists(DataError):
    """Results would replace files that exist (and are not inputs)."""


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and
                                              os.path.samefile(a, b))
    except OSError:
        return False


def plan(inputs: list, folder: str | os.PathLike, suffix=".png",
         overwrite: bool = False, skip_existing: bool = False) -> tuple[list, list[str]]:
    """The result file of each input, and what to say about the names chosen.

    Args:
        inputs: the input paths, in order.
        folder: where the results go.
        suffix: the results' file type, or a function of an input's path giving its
            result's.
        overwrite: replace results that exist.
        skip_existing: keep results that exist (the caller skips their inputs).

    Returns:
        ``(destinations, notes)``: a path per input, and lines to show.

    Raises:
        DataError: a result would replace an input (named).
        OutputExists: results exist and neither ``overwrite`` nor ``skip_existing``.
    """
    folder = Path(folder)
    paths = [Path(p) for p in inputs]
    suffix_of = suffix if callable(suffix) else (lambda path: suffix)
    stems = Counter(p.stem for p in paths)
    names = [p.stem if stems[p.stem] == 1 else p.name for p in paths]
    notes = []
    if len(set(names)) < len(names) or any(stems[p.stem] > 1 for p in paths):
        shared = sorted({p.stem for p in paths if stems[p.stem] > 1})
        notes.append(f"inputs share a name ({', '.join(shared)}): their results keep the "
                     f"input's extension ({names[[p.stem for p in paths].index(shared[0])]}"
                     f"{suffix_of(paths[0])})")
    seen: Counter = Counter()
    unique = []
    for name in names:
        seen[name] += 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    destinations = [folder / f"{name}{suffix_of(path)}" for name, path in zip(unique, paths)]
    for src, dest in zip(paths, destinations):
        for other in paths:
            if _same(dest, other):
                raise DataError(f"{dest}: the result of {src} would replace the input "
                                f"{other}; give --out another folder")
    existing = [d for d in destinations if d.exists()]
    if existing and not (overwrite or skip_existing):
        raise OutputExists(
            f"{existing[0]}{f' and {len(existing) - 1} more' if len(existing) > 1 else ''}"
            " already exist: give --overwrite to replace them, or --skip-existing to keep "
            "them and stylize the rest")
    return destinations, notes


def check_not_an_input(dest: str | os.PathLike, src: str | os.PathLike) -> None:
    """DataError when ``dest`` is the file ``src`` (one input, one output file)."""
    if _same(Path(dest), Path(src)):
        raise DataError(f"{dest}: the result would replace its input; write it elsewhere")
