"""Published models by name: downloaded once, converted by ``kstyle import``, then offline.

``kstyle stylize photo.jpg --model horse2zebra``, ``kstyle.load("mosaic")``, ``kstyle export
style_vangogh`` and ``train.init_from = "horse2zebra"`` take the name of a model of the
manifest (``zoo.toml`` beside this file: the reference projects' published CycleGAN,
pix2pix, fast neural style and AdaIN weights). The first use downloads its files (with a
progress bar; an interrupted download resumes where it stopped), converts them with the
importer and keeps the run folder in the cache (``$KSTYLE_HOME``, else ``kstyle/`` in
Keras' cache folder, ``~/.keras`` or ``$KERAS_HOME``); from then on no network is needed.

The download hosts publish no checksums, so each file's size and sha256 are recorded when
it is downloaded (trust on first use, as ``torch.hub`` does by default), and the converted
run's files are checked against their record on every load: a file that changed is
fetched (or converted) again, or, offline, refused with its name. Files appear under
their final names only when complete. Two processes asking for the same model at once:
one downloads, the other waits for it.

``KSTYLE_ZOO_MIRROR`` (a base URL or a local folder) replaces every official URL with
``MIRROR/<model name>/<weights file>``, the ``.pth`` as the reference names it (for a file
published inside an archive, the ``.pth`` inside it): ``MIRROR/horse2zebra/horse2zebra.pth``,
``MIRROR/adain/decoder.pth``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from kstyle import runs
from kstyle.errors import ModelLoadError
from kstyle.inference import manifest
from kstyle.inference.manifest import MANIFEST, Published, WeightsFile, get, is_name

__all__ = ["MANIFEST", "Published", "WeightsFile", "cached", "default_model", "fetch", "get",
           "home", "is_name", "listing", "models", "resolve", "run_dir"]


def models() -> dict[str, Published]:
    """The manifest: every published model by name (``kstyle.inference.manifest``)."""
    return manifest.models()

HOME_ENV = "KSTYLE_HOME"
MIRROR_ENV = "KSTYLE_ZOO_MIRROR"
DEFAULT_ENV = "KSTYLE_DEFAULT_MODEL"
#: What ``kstyle.stylize(img)`` uses when given neither a model nor a style: a one-pass
#: stylizer with a small download.
DEFAULT_MODEL = "mosaic"
#: The record of a cached model: what was downloaded, and the converted run's files.
RECORD_FILE = "zoo.json"
#: Seconds a download waits for the server before giving up.
TIMEOUT = 30
_CHUNK = 1 << 20


def home() -> Path:
    """The cache folder: ``$KSTYLE_HOME``, else ``kstyle/`` in Keras' cache folder."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    keras_home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return Path(keras_home).expanduser() / "kstyle"


def run_dir(name: str) -> Path:
    """Where the converted run of ``name`` is cached."""
    return home() / "models" / name


def default_model() -> str:
    """``$KSTYLE_DEFAULT_MODEL``, else :data:`DEFAULT_MODEL`."""
    return os.environ.get(DEFAULT_ENV) or DEFAULT_MODEL


def resolve(model, log=print, progress: bool = True):
    """``model`` as a path: a published model's name becomes its cached run folder
    (fetched first if need be); anything else is returned as given."""
    return fetch(model, log=log, progress=progress) if is_name(model) else model


# -- the cache


def _describe(path: Path) -> dict:
    return {"size": path.stat().st_size, "sha256": runs.sha256_file(path)}


def _mismatch(path: Path, record: dict) -> str | None:
    """Why ``path`` is not what ``record`` says (None: it is)."""
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != record["size"]:
        return f"{size:,} bytes, recorded {record['size']:,}"
    if runs.sha256_file(path) != record["sha256"]:
        return "its sha256 differs from the one recorded"
    return None


def cached(name: str) -> Path | None:
    """The cached run of ``name`` if it is complete and its files are as recorded."""
    run = run_dir(name)
    record = _read_record(run)
    if record is None:
        return None
    for relative, expected in record["files"].items():
        if _mismatch(run / relative, expected) is not None:
            return None
    return run


def _read_record(run: Path) -> dict | None:
    try:
        return json.loads((run / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _locked(name: str):
    """Holds ``name``'s lock: a second process using the model waits for the first."""
    path = home() / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            import fcntl
        except ImportError:  # no fcntl (Windows): no waiting, atomic renames still hold
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def fetch(name: str, log=print, progress: bool = True) -> Path:
    """The cached run folder of a published model: downloaded and converted if need be.

    Args:
        name: a name of the manifest (``kstyle models`` lists them).
        log: where progress lines go.
        progress: show a progress bar while downloading.

    Returns:
        The run folder, which ``kstyle.load`` and the commands take.

    Raises:
        ModelLoadError: an unknown name; no URL (or mirror) could give a file, with the
            URLs tried and the ways out; a file that changed and cannot be fetched again.
    """
    entry = get(name)
    run = run_dir(name)
    with _locked(name):
        good = cached(name)
        if good is not None:
            return good
        if (run / RECORD_FILE).exists():
            log(f"{name}: the cached run in {run} is not as recorded; converting it again")
        files = [_download(entry, weights, log, progress) for weights in entry.files]
        _convert(entry, files, run, log)
    return run


def _downloads(name: str) -> Path:
    return home() / "downloads" / name


def _download(entry: Published, weights: WeightsFile, log, progress: bool) -> Path:
    """The weights file, downloaded (or taken from the cache when it is as recorded)."""
    folder = _downloads(entry.name)
    dest = folder / weights.name
    record_file = folder / f"{weights.name}.json"
    try:
        record = json.loads(record_file.read_text())
    except (OSError, ValueError):
        record = None
    if record is not None:
        why = _mismatch(dest, record)
        if why is None:
            return dest
        log(f"{entry.name}: {dest} is not the file downloaded before ({why}); fetching it "
            "again")
        dest.unlink(missing_ok=True)
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        sources = [(_join(mirror, entry.name, weights.name), None)]
    else:
        sources = [(url, weights.archive) for url in weights.urls]
    where = (f"from the mirror {mirror}" if mirror else
             f"once, about {weights.size / 1e6:.0f} MB")
    log(f"{entry.name}: downloading {weights.name} {where} ({entry.source}; "
        f"{entry.licence})")
    tried = []
    for url, archive in sources:
        try:
            if archive:
                holder = home() / "downloads" / "_archives" / archive
                if not holder.is_file():
                    _get(url, holder, weights.size, log, progress, f"{entry.name}: {archive}")
                _extract(holder, weights.name, dest)
            else:
                _get(url, dest, weights.size, log, progress, f"{entry.name}: {weights.name}")
            break
        except (OSError, urllib.error.URLError, zipfile.BadZipFile, KeyError) as e:
            tried.append(f"{url} ({_reason(e)})")
    else:
        raise ModelLoadError(
            f"{entry.name}: could not download {weights.name} (tried {'; '.join(tried)}); "
            f"set {MIRROR_ENV} to a server or folder holding {entry.name}/{weights.name}, "
            f"or download the file by hand and convert it with 'kstyle import'")
    runs.write_json(record_file, {**_describe(dest), "url": url})
    return dest


def _join(base: str, *parts: str) -> str:
    if base.startswith(("http://", "https://", "file://")):
        return base.rstrip("/") + "/" + "/".join(parts)
    return str(Path(base).expanduser().joinpath(*parts))


def _reason(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    if isinstance(error, FileNotFoundError):
        return "no such file"
    return f"{type(error).__name__}: {error}"


def _extract(archive: Path, member_name: str, dest: Path) -> None:
    """Writes the member of ``archive`` whose file name is ``member_name`` to ``dest``."""
    with zipfile.ZipFile(archive) as zf:
        member = next((m for m in zf.namelist() if Path(m).name == member_name), None)
        if member is None:
            raise KeyError(f"{archive.name} holds no {member_name}")
        with runs.atomic_path(dest, suffix=dest.suffix) as tmp, zf.open(member) as src, \
                open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)


def _get(url: str, dest: Path, size_hint: int, log, progress: bool, label: str) -> None:
    """Downloads ``url`` to ``dest``: into ``<dest>.part`` first (resumed from where an
    interrupted download stopped, where the server allows it), renamed when complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not url.startswith(("http://", "https://", "file://")):  # a mirror folder
        with runs.atomic_path(dest, suffix=dest.suffix) as tmp:
            shutil.copyfile(url, tmp)
        return
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "kstyle"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not start:  # 416: the part is already whole
            raise
        os.replace(part, dest)
        return
    with response:
        resumed = start and response.status == 206
        if start and not resumed:
            start = 0  # the server sends the whole file again
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        if resumed:
            log(f"{label}: resuming at {start / 2**20:.1f} MiB")
        from keras.utils import Progbar

        mib = 2**20
        target = total or size_hint
        bar = Progbar(max(1, -(-target // mib)), unit_name="MiB", verbose=int(progress))
        done = start
        with open(part, "ab" if resumed else "wb") as out:
            try:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    bar.update(min(done, target) // mib)
            except http.client.IncompleteRead as e:  # the connection dropped
                out.write(e.partial)
                done += len(e.partial)
            except (ConnectionError, TimeoutError):
                pass  # what arrived is kept in the part; the check below reports it
            out.flush()
            os.fsync(out.fileno())
    if total is not None and done != total:
        raise OSError(f"the connection closed after {done:,} of {total:,} bytes; the part "
                      "is kept and the next try resumes it")
    os.replace(part, dest)


def _convert(entry: Published, files: list[Path], run: Path, log) -> None:
    """Converts the downloaded files into ``run`` (complete, or not there at all)."""
    from kstyle.importers.convert import import_weights

    for stale in run.parent.glob(f".{entry.name}.p*-*.tmp*"):
        pid = stale.name.removeprefix(f".{entry.name}.p").split("-")[0]
        if pid.isdigit() and not runs.process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    with runs.atomic_path(run) as tmp:
        import_weights(files, tmp, log=lambda line: None)
        _rename_run(tmp, run, entry.name)
        record = {"name": entry.name, "kind": entry.kind,
                  "downloads": {p.name: _describe(p) for p in files},
                  "files": {str(p.relative_to(tmp)): _describe(p)
                            for p in sorted(tmp.rglob("*")) if p.is_file()}}
        runs.write_json(tmp / RECORD_FILE, record)
    log(f"{entry.name}: ready in {run}")


def _rename_run(tmp: Path, run: Path, name: str) -> None:
    """The imported run's name and folder are the model's, not its temporary folder's."""
    info = json.loads((tmp / runs.RUN_FILE).read_text())
    info["name"] = name
    runs.write_json(tmp / runs.RUN_FILE, info)
    recipe = (tmp / runs.RECIPE_FILE).read_text()
    runs.write_text(tmp / runs.RECIPE_FILE, recipe.replace(str(tmp), str(run))
                    .replace(f'name = "{tmp.name}"', f'name = "{name}"'))


def listing() -> list[dict]:
    """Every published model with what it takes and whether it is cached: for ``kstyle
    models`` and the pages that list them."""
    from kstyle.models import get_inference

    rows = []
    for entry in models().values():
        signature = get_inference(entry.kind).signature
        rows.append({"name": entry.name, "kind": entry.kind, "does": entry.does,
                     "source": entry.source, "licence": entry.licence,
                     "size": entry.size,
                     "inputs": [p.name for p in signature.main.inputs[1:]],
                     "cached": (run_dir(entry.name) / RECORD_FILE).is_file()})
    return rows
