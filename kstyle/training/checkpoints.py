"""Checkpoints of a training run: every variable that resuming bit for bit needs, atomically.

Keras' ``BackupAndRestore`` and ``tf.train.CheckpointManager`` track the variables of
the model and its optimizer; kstyle's checkpoints also hold the state of the
``keras.random.SeedGenerator``s that ``save_weights`` leaves out (dropout masks, CycleGAN's
pool draws), which resuming bit for bit needs, and their format (one folder per step of
``<network>.weights.h5`` files, written under a temporary name and renamed when complete) is
what run folders written by earlier versions hold. So the format stays kstyle's own.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import warnings
from pathlib import Path

import numpy as np

from kstyle import runs
from kstyle.errors import KstyleError


def load_weights(net, path: Path) -> None:
    """``net.load_weights(path)``; a file of another architecture raises a KstyleError that
    names the file, the first layer that differs and both shapes."""
    with warnings.catch_warnings(record=True) as caught:  # Keras warns per layer it skips
        warnings.simplefilter("always", UserWarning)
        try:
            net.load_weights(path)
        except ValueError as e:
            raise KstyleError(f"{path} holds another network than {net.name}: "
                              f"{mismatch(str(e))}") from None
    skipped = [str(w.message) for w in caught if "Skipping" in str(w.message)]
    if skipped:  # layers the file has no weights for would keep their random ones
        raise KstyleError(f"{path} holds another network than {net.name}: "
                          f"{skipped[0].split(':')[0]}")
    for w in caught:
        if "Skipping" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def mismatch(keras_message: str) -> str:
    """The one informative line of Keras' error for weights that do not fit a network."""
    layer = re.search(r"Example error message for object <\w+ name=([^,>]+)", keras_message)
    shapes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))",
                       keras_message)
    if layer and shapes:
        return (f"layer {layer[1]} has shape {shapes[1]} here, {shapes[2]} in the file")
    first = keras_message.strip().splitlines()[0] if keras_message.strip() else "no detail"
    return first[:300]


def step_of(path: Path) -> int:
    """The step a checkpoint folder (``step_00000420``, or a ``damaged_`` one) holds."""
    return int(path.name.rsplit("_", 1)[-1])


class Checkpointer:
    """Saves and restores network weights, optimizer slots, RNG states and the step, atomically.

    Each checkpoint is a folder ``checkpoints/step_XXXXXXXX/`` written under a temporary
    name and renamed when complete; the newest ``keep`` are kept. It holds one
    ``<network>.weights.h5`` per entry of ``model.networks`` (CycleGAN's image pools
    included), ``optimizers.npz`` (every optimizer variable: slots, ``iterations`` and so
    the learning rate, a function of it), ``rng.npz`` (the state of every
    ``keras.random.SeedGenerator`` in the model: dropout masks, the pools' draws, which
    ``save_weights`` leaves out) and ``state.json``, written last.
    """

    RNG_FILE = "rng.npz"

    def __init__(self, model, directory: str | os.PathLike, keep: int = 2):
        self.model = model
        self.directory = Path(directory)
        self.keep = keep

    def all(self) -> list[Path]:
        """Complete checkpoints, oldest first (temporaries have a leading dot: never here)."""
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.glob("step_*") if (p / "state.json").is_file()]
        return sorted(found, key=lambda p: p.name)

    def latest(self) -> Path | None:
        found = self.all()
        return found[-1] if found else None

    def save(self, state: dict) -> Path:
        path = self.directory / f"step_{state['step']:08d}"
        with runs.atomic_path(path) as tmp:
            tmp.mkdir()
            for name, net in self.model.networks.items():
                net.save_weights(tmp / f"{name}.weights.h5")
            slots = {}
            for name, opt in self.model.optimizers.items():
                for i, var in enumerate(opt.variables):
                    slots[f"{name}/{i:04d}"] = np.asarray(var.numpy())
            np.savez(tmp / "optimizers.npz", **slots)
            np.savez(tmp / self.RNG_FILE, **{f"{i:04d}": np.asarray(var.numpy())
                                            for i, var in enumerate(self._rng_states())})
            (tmp / "state.json").write_text(json.dumps(state, indent=2))
        for old in self.all()[: -self.keep]:
            # Renamed out of sight first: a kill while deleting leaves a temporary
            # (removed on resume), never a checkpoint folder that misses files.
            doomed = old.with_name(f".{old.name}.{secrets.token_hex(4)}.tmp")
            os.replace(old, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
        return path

    def problem(self, path: Path) -> str | None:
        """What makes a checkpoint folder unusable (a file missing, truncated or unreadable,
        by name), or None. Every file is read in full: a truncated HDF5 or ``.npz`` file is
        only found by reading its data."""
        import zipfile

        import h5py

        try:
            state = json.loads((path / "state.json").read_text())
            if int(state["step"]) != step_of(path):
                return f"state.json holds step {state['step']}, not the folder's"
        except (OSError, ValueError, KeyError, TypeError) as e:
            return f"state.json: {e}"
        names = [f"{name}.weights.h5" for name in self.model.networks]
        for name in names:
            try:
                with h5py.File(path / name, "r") as f:
                    f.visititems(lambda _, item: item[()] if isinstance(item, h5py.Dataset)
                                 else None)
            except (OSError, ValueError, KeyError, RuntimeError) as e:
                return f"{name}: {e}"
        for name in ("optimizers.npz", self.RNG_FILE):
            if name == self.RNG_FILE and not (path / name).exists():
                continue  # checkpoints written before RNG states were saved lack it
            try:
                with np.load(path / name) as arrays:
                    for key in arrays.files:
                        arrays[key]
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
                return f"{name}: {e}"
        return None

    def set_aside(self, path: Path) -> Path:
        """Renames a damaged checkpoint out of the ``step_*`` names (kept for a look, never
        restored, never counted among the ``keep`` newest); returns its new path."""
        aside = path.with_name(f"damaged_{path.name}")
        if aside.exists():
            shutil.rmtree(aside, ignore_errors=True)
        os.replace(path, aside)
        return aside

    def _rng_states(self) -> list:
        """The model's SeedGenerator state variables, in the model's (fixed) order."""
        weights = {id(w) for w in self.model.weights}
        return [v for v in self.model.variables if id(v) not in weights]

    def restore(self, path: Path) -> dict:
        """Loads the checkpoint folder ``path`` into the model; returns its state.json.

        Raises:
            KstyleError: the checkpoint holds another model (the layer and shapes named).
        """
        for name, net in self.model.networks.items():
            load_weights(net, path / f"{name}.weights.h5")
        with np.load(path / "optimizers.npz") as slots:
            for name, opt in self.model.optimizers.items():
                variables = opt.variables
                for i, var in enumerate(variables):
                    value = slots[f"{name}/{i:04d}"]
                    if tuple(value.shape) != tuple(var.shape):
                        raise KstyleError(
                            f"{path}: optimizer state of '{name}' does not match the model "
                            f"(variable {i}: {value.shape} vs {tuple(var.shape)})")
                    var.assign(value)
        rng = path / self.RNG_FILE
        if rng.is_file():  # checkpoints written before RNG states were saved lack it
            states = self._rng_states()
            with np.load(rng) as saved:
                if len(saved.files) != len(states):
                    raise KstyleError(
                        f"{path}: {len(saved.files)} random-generator states saved, the "
                        f"model has {len(states)}")
                for i, var in enumerate(states):
                    var.assign(saved[f"{i:04d}"])
        return json.loads((path / "state.json").read_text())


def initial_weights(model, run_dir: str | os.PathLike) -> list[str]:
    """Loads into ``model``'s networks what the run folder ``run_dir`` has of them
    (``train.init_from``): its newest checkpoint's, else the networks a ``kstyle import``
    kept (``networks/``), else its translators. Returns one line per network, saying where
    its weights came from (or that it starts fresh).

    Raises:
        KstyleError: a file holds another architecture (the layer and shapes named).
    """
    import keras

    run_dir = Path(run_dir)
    latest = Checkpointer(None, run_dir / runs.CHECKPOINT_DIR).latest()
    info = runs.read_run_info(run_dir)
    by_net = {id(net): direction for direction, net in model.translators.items()}
    done = []
    for name, net in model.networks.items():
        if not isinstance(net, keras.Model):
            continue  # state such as CycleGAN's image pools: a new run starts its own
        candidates = []
        if latest is not None:
            candidates.append(latest / f"{name}.weights.h5")
        kept = info.get("networks", {}).get(name, f"networks/{name}.weights.h5")
        candidates.append(run_dir / kept)
        direction = by_net.get(id(net))
        if direction is not None and direction in info.get("translators", {}):
            candidates.append(run_dir / info["translators"][direction])
        source = next((c for c in candidates if c.is_file()), None)
        if source is None:
            done.append(f"{name}: starts fresh ({run_dir} has no weights for it)")
            continue
        load_weights(net, source)
        done.append(f"{name}: from {source}")
    return done
