"""The published models kstyle gets by name: the manifest (``zoo.toml``), read without
TensorFlow (recipes check ``train.init_from`` against it). Fetching them is
``kstyle.inference.zoo``."""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from pathlib import Path

from kstyle.errors import ModelLoadError

MANIFEST = Path(__file__).with_name("zoo.toml")


@dataclasses.dataclass(frozen=True)
class WeightsFile:
    """One published weights file: its name, where it is published, about how large."""

    name: str
    urls: tuple[str, ...]
    size: int
    archive: str | None = None


@dataclasses.dataclass(frozen=True)
class Published:
    """One entry of the manifest (see ``zoo.toml``)."""

    name: str
    kind: str
    does: str
    source: str
    licence: str
    files: tuple[WeightsFile, ...]

    @property
    def size(self) -> int:
        """About how many bytes its first use downloads (an archive counted once)."""
        return sum({f.archive or f.name: f.size for f in self.files}.values())


@functools.lru_cache(maxsize=1)
def models() -> dict[str, Published]:
    """The manifest: every published model by name."""
    with open(MANIFEST, "rb") as f:
        data = tomllib.load(f)
    return {name: Published(name, e["kind"], e["does"], e["source"], e["licence"],
                            tuple(WeightsFile(w["name"], tuple(w["urls"]), int(w["size"]),
                                              w.get("archive")) for w in e["files"]))
            for name, e in data.items()}


def is_name(model) -> bool:  # models() looked up at call time: tests replace it
    """Whether ``model`` names a published model (and is not an existing path)."""
    return isinstance(model, str) and model in models() and not Path(model).exists()


def get(name: str) -> Published:
    """The manifest's entry; ModelLoadError listing the names for an unknown one."""
    try:
        return models()[name]
    except KeyError:
        raise ModelLoadError(f"{name!r} is no run folder, model file or published model; "
                             "'kstyle models' lists the published ones") from None
