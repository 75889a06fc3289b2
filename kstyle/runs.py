"""The run folder: what a training run writes, and how it is written safely.

Layout of ``saved_models/<name>/``::

    recipe.toml         the fully resolved recipe of the run
    run.json            what inference needs: model kind, direction, value range, multiple
    translator.keras    the inference network (updated at every epoch end); models that
                        translate both ways add translator_b2a.keras
    checkpoints/        resumable state: weights, optimizer slots, RNG states, step
                        (last 2 kept)
    samples/            epoch_0001.png ...: input | output | target grids
    logs/               TensorBoard event files
    epochs.csv          per-epoch losses; steps.csv: per-step losses
    losses.png          loss curves, written when fit ends

Every file is written to a temporary name in the same folder and then renamed, so an
interrupted run never leaves a half-written checkpoint or model behind; only the logs
grow in place (epochs.csv, steps.csv, logs/), and a resumed run drops the CSV rows past
its checkpoint (TensorBoard shows the retrained steps twice). A run killed in
the middle of a write leaves its temporary (``.<name>.<random>.tmp...``) behind; the next
``fit`` removes it with :func:`clean_temporaries`, which also puts back a folder that was
being replaced when the run died.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import tempfile
import tomllib
from pathlib import Path

from kstyle.errors import ModelLoadError

RUN_FILE = "run.json"
RECIPE_FILE = "recipe.toml"
TRANSLATOR_FILE = "translator.keras"
DEFAULT_DIRECTION = "a2b"
CHECKPOINT_DIR = "checkpoints"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ""):
    """Yields a temporary path beside ``path``; renames it onto ``path`` if the body succeeds.

    Args:
        path: final file (or folder) name.
        suffix: suffix the temporary name must keep (Keras insists on ``.keras`` etc.).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer's process id is part of the name: clean_temporaries() leaves alone what a
    # live process is writing.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.p{os.getpid()}-", suffix=f".tmp{suffix}",
                               dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        yield Path(tmp)
        if Path(tmp).is_dir() and path.is_dir():
            # Two renames: a kill between them leaves the new folder complete under its
            # temporary name and the old one under ``<tmp>.old``; clean_temporaries()
            # moves the new one into place.
            old = Path(str(tmp) + OLD_SUFFIX)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.unlink(tmp)


#: A temporary of atomic_path: ``.<name>.p<pid>-<8 random chars>.tmp<suffix>[.old]``
#: (written before the process id was part of the name: ``.<name>.<8 random chars>.tmp``).
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?:p(?P<pid>\d+)-)?[A-Za-z0-9_]{8}\.tmp")


def process_alive(pid: int) -> bool:
    """Whether a process of this id runs on this host (this process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def _owner_alive(name: str) -> bool:
    pid = _TEMPORARY.match(name)["pid"]
    return pid is not None and process_alive(int(pid))
OLD_SUFFIX = ".old"


def clean_temporaries(folder: str | os.PathLike) -> list[str]:
    """Removes what writes interrupted in ``folder`` left behind; returns what it did.

    A temporary file or folder of :func:`atomic_path` is half-written unless its
    ``.old`` twin exists: the process then died between moving the old folder aside and
    moving the new, complete one into place, so the new one is moved in (or, if it is
    gone too, the old one back). Everything else with a temporary name is deleted. What a
    live process (named in the temporary) is writing is left alone.

    Args:
        folder: a folder that :func:`atomic_path` writes into (not searched recursively).

    Returns:
        One line per recovered or removed entry.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    done = []
    entries = sorted(p for p in folder.iterdir()
                     if _TEMPORARY.match(p.name) and not _owner_alive(p.name))
    for old in [p for p in entries if p.name.endswith(OLD_SUFFIX)]:
        target = folder / _TEMPORARY.match(old.name)["name"]
        if target.exists():
            continue
        new = old.with_name(old.name.removesuffix(OLD_SUFFIX))
        source = new if new.exists() else old
        os.replace(source, target)
        done.append(f"recovered {target.name} from {source.name}")
    for p in entries:
        if not p.exists() and not p.is_symlink():
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        done.append(f"removed {p.name}")
    return done


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data) -> None:
    """Writes a JSON file atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def translator_file(direction: str = DEFAULT_DIRECTION) -> str:
    """File name of the inference network for one direction (``a2b`` is the default)."""
    return TRANSLATOR_FILE if direction == DEFAULT_DIRECTION else f"translator_{direction}.keras"


def read_run_info(run_dir: str | os.PathLike) -> dict:
    """Reads ``run.json`` of a run folder ({} when it has none).

    Raises:
        ModelLoadError: the file is not JSON, or a value inference reads has the wrong
            type; the message names the file, the key and how to rewrite it.
    """
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise damaged(path, "not text") from None
    except json.JSONDecodeError as e:
        raise damaged(path, f"not valid JSON ({e.msg}: line {e.lineno}, column {e.colno})") \
            from None
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot be read ({e.strerror or e})") from None
    problem = _run_info_problem(info)
    if problem:
        raise damaged(path, problem)
    return info


def _is_int(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_file_name(value) -> bool:
    return (isinstance(value, str) and value.endswith(".keras")
            and Path(value).name == value and not value.startswith("."))


def _str_map(check):
    return lambda v: isinstance(v, dict) and all(isinstance(k, str) and check(x)
                                                  for k, x in v.items())


#: What the keys of run.json that inference reads must hold (other keys are not checked).
_RUN_INFO_KEYS = {
    "kind": ("a string", lambda v: isinstance(v, str)),
    "direction": ("a string", lambda v: isinstance(v, str)),
    "input_transform": ("a string", lambda v: isinstance(v, str)),
    "input_transforms": ("a table of strings", _str_map(lambda v: isinstance(v, str))),
    "translator": ("a .keras file name", _is_file_name),
    "translators": ("a table of .keras file names", _str_map(_is_file_name)),
    "size_multiple": ("an integer of at least 1", lambda v: _is_int(v, 1)),
    "image_size": ("an integer of at least 1", lambda v: _is_int(v, 1)),
    "step": ("an integer of at least 0", lambda v: _is_int(v, 0)),
    "value_range": ("two numbers", lambda v: isinstance(v, list) and len(v) == 2
                    and all(map(_is_number, v))),
}


def _run_info_problem(info) -> str | None:
    if not isinstance(info, dict):
        return f"holds a {type(info).__name__}, not a JSON object"
    for key, (expected, ok) in _RUN_INFO_KEYS.items():
        if key in info and not ok(info[key]):
            return f"{key} = {json.dumps(info[key])} must be {expected}"
    return None


def damaged(path: Path, problem: str) -> ModelLoadError:
    """The error for a damaged file of a run folder: what is wrong, and how to rewrite it."""
    return ModelLoadError(f"{path}: damaged: {problem}. {rewrite_hint(path.parent)}")


def rewrite_hint(run_dir: Path) -> str:
    """How a damaged translator or run.json of ``run_dir`` can be written again."""
    recipe = run_dir / RECIPE_FILE
    if not recipe.is_file() and not (run_dir / RUN_FILE).is_file():  # not in a run folder
        return "Copy it again from where it came from"
    if not any((run_dir / CHECKPOINT_DIR).glob("step_*")) or not recipe.is_file():
        return ("This run has no checkpoint to rebuild it from: copy the run folder "
                "again, or train (or import) it again")
    command = f"kstyle fit {shlex.quote(str(recipe))}"
    if _recipe_out_dir(recipe) != run_dir.absolute():  # the folder was moved or renamed
        command += " --set " + shlex.quote(f"train.out_dir={run_dir}")
    return ("A fit of the run writes it again from its newest checkpoint (if the run's "
            f"data are still there): {command}")


def _recipe_out_dir(recipe: Path) -> Path | None:
    try:
        out_dir = tomllib.loads(recipe.read_text(encoding="utf-8"))["train"]["out_dir"]
        return Path(out_dir).absolute()
    except (OSError, ValueError, KeyError, TypeError):
        return None


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read a megabyte at a time (not whole into memory)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
