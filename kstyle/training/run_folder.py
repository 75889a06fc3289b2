"""A run folder on disk: made ready before training, and every file a run writes into it.

``recipe.toml`` (the resolved recipe, compared on resume), ``run.json`` (what a translator
needs to be used: see ``kstyle.runs``), the translators (``translator[_b2a].keras``),
``steps.csv`` / ``epochs.csv`` (repaired on resume), ``samples/`` (grids, and the
held-back inputs as files), ``logs/`` (TensorBoard). ``checkpoints/`` is
``kstyle.training.checkpoints``'. Every file is written under a temporary name and renamed when
complete (``kstyle.runs.atomic_path``).
"""

from __future__ import annotations

import csv
import dataclasses
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from kstyle import data as kdata
from kstyle import lock, runs
from kstyle.errors import RecipeError
from kstyle.precision import float32_copy
from kstyle.recipes import Recipe, saved_model_options
from kstyle.training import visual


def checkpoint_bytes(model) -> int:
    """Bytes of one checkpoint: every model and optimizer variable (weights, slots, pools,
    RNG states), as stored."""
    variables = [*model.variables]
    for opt in model.optimizers.values():
        variables += opt.variables
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


def _diff(a, b) -> str:
    ad, bd = dataclasses.asdict(a), dataclasses.asdict(b)
    return ", ".join(f"model.{k}: {ad[k]!r} -> {bd[k]!r}" for k in ad if ad[k] != bd[k])


class RunFolder:
    """The folder of one run (``recipe.run_dir``, or a worker's scratch ``path``).

    Args:
        recipe: the run's recipe (its ``source`` names the file in errors).
        path: the folder.
        log: where messages go.
    """

    def __init__(self, recipe: Recipe, path: Path, log=print):
        self.recipe = recipe
        self.source = recipe.source
        self.dir = Path(path)
        self.log = log
        self.image_writer = None

    # Free space a run needs on the disk of train.out_dir before it starts. A fixed floor: the
    # folder is checked before the model is built, so the size of its checkpoints is not
    # known yet. 256 MiB holds quickstart's two kept checkpoints (8.0M parameters x 4 bytes x
    # 3 for the weights and two Adam slots: ~92 MiB each), samples and logs. It catches a full
    # disk before the first step, not a disk too small for a 256 px pix2pix (57M parameters:
    # ~650 MiB per checkpoint).
    MIN_FREE_BYTES = 256 * 2**20

    def prepare(self):
        """Creates the run folder, first checking that train.out_dir is (or can become) a
        writable folder on a disk with :attr:`MIN_FREE_BYTES` free; raises RecipeError."""
        where = f"{self.source}: train.out_dir = {str(self.dir)!r}"
        try:
            existing = self.dir.absolute()
            while not existing.exists():  # the nearest existing folder: "/" exists
                existing = existing.parent
            if not existing.is_dir():
                what = ("is a file" if existing == self.dir.absolute()
                        else f"is inside {str(existing)!r}, which is a file")
                raise RecipeError(f"{where} {what}; it must name a folder")
            free = shutil.disk_usage(existing).free
        except OSError as e:
            raise RecipeError(f"{where} cannot be used ({e.strerror or e})") from None
        if free < self.MIN_FREE_BYTES:
            self.no_room(free, f"a run needs at least {self.MIN_FREE_BYTES / 2**20:,.0f} MiB "
                                "(checkpoints, samples, logs)")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / ".write_test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            raise RecipeError(
                f"{self.source}: train.out_dir = {str(self.dir)!r} is not writable "
                f"({e.strerror or e})") from None
        # Before anything is read or written: a second fit of this folder stops here.
        lock.acquire(self.dir, self.log)
        saved = self.dir / runs.RECIPE_FILE
        if saved.is_file() and any((self.dir / runs.CHECKPOINT_DIR).glob("step_*")):
            try:
                previous = saved_model_options(saved)
            except RecipeError as e:  # restoring the checkpoints says if the model fits them
                self.log(f"The run's saved recipe is damaged ({e}); it is written again "
                         f"from {self.source} once the checkpoints are read.")
                return
            if previous != self.recipe.model:
                raise RecipeError(
                    f"{self.source}: [model] differs from the run in {self.dir} "
                    f"({_diff(previous, self.recipe.model)}); resuming would mix "
                    "two models. Set train.out_dir to a new folder or delete the old run.")
        self.write_recipe()

    def write_recipe(self):
        """Writes the resolved recipe as the run's ``recipe.toml``."""
        runs.write_text(self.dir / runs.RECIPE_FILE, self.recipe.to_toml())

    def check_room(self, model, checkpointer):
        """Once the model is built: room for the checkpoints still to be written (while a
        new one is written, ``keep`` older ones are still there) and the translators."""
        per_checkpoint = checkpoint_bytes(model)
        existing = len(checkpointer.all())
        translators = sum(net.count_params() * 4 for net in model.translators.values())
        needed = max(0, checkpointer.keep + 1 - existing) * per_checkpoint + translators
        free = shutil.disk_usage(self.dir).free
        if free < needed:
            self.no_room(free, f"this model's checkpoints and translators need about "
                                f"{needed / 2**20:,.1f} MiB ({per_checkpoint / 2**20:,.1f} MiB a "
                                "checkpoint)")

    def no_room(self, free: int, need: str):
        raise RecipeError(
            f"{self.source}: train.out_dir = {str(self.dir)!r}: its disk has "
            f"{free / 2**20:,.1f} MiB free; {need}. Free some space or set train.out_dir to a "
            "folder on another disk.")

    def clean(self):
        """Deals with what a killed run left half-written (see runs.clean_temporaries)."""
        for folder in (self.dir, self.dir / runs.CHECKPOINT_DIR, self.dir / "samples"):
            try:
                for line in runs.clean_temporaries(folder):
                    self.log(f"{folder}: {line} (left by an interrupted run)")
            except OSError as e:  # an unwritable folder is reported by prepare()
                self.log(f"{folder}: could not clean up temporaries ({e})")

    def truncate_log(self, name: str, key: str, keep):
        """Keeps the header and the whole rows of a CSV log whose ``key`` passes ``keep``.

        A row cut short by a kill (fewer fields, or a number cut in two) is dropped too.
        """
        path = self.dir / name
        if not path.is_file():
            return
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows or not rows[0] or rows[0][0] != key:
            path.unlink()  # not even a whole header
            return
        header, kept = rows[0], [rows[0]]
        for row in rows[1:]:
            try:
                whole = len(row) == len(header) and all(row)
                if whole and keep(int(row[0])):
                    kept.append(row)
            except ValueError:
                pass
        if len(kept) == len(rows):
            return
        with runs.atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(kept)

    def log_step(self, step: int, logs: dict):
        path = self.dir / "steps.csv"
        keys = sorted(k for k in logs if not k.startswith("val_"))
        new = not path.is_file() or path.stat().st_size == 0
        with open(path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["step", *keys])
            writer.writerow([step, *(f"{float(logs[k]):.6g}" for k in keys)])

    def save_translators(self, model, info: dict):
        """Writes each translator (float32, whatever the training used) and ``run.json``."""
        for direction, net in model.translators.items():
            if info["precision"] != "float32":
                net = float32_copy(net)
            with runs.atomic_path(self.dir / runs.translator_file(direction),
                                  suffix=".keras") as tmp:
                net.save(tmp)
        self.write_info(info)

    def write_info(self, info: dict):
        runs.write_json(self.dir / runs.RUN_FILE, info)

    def write_sample_inputs(self, images):
        """The held-back inputs as files, so a new user has something to stylize."""
        inputs = self.dir / "samples" / "inputs"
        if not inputs.is_dir():
            with runs.atomic_path(inputs) as tmp:
                tmp.mkdir()
                for i, img in enumerate(kdata.to_uint8(images).numpy()):
                    Image.fromarray(img).save(tmp / f"input_{i:02d}.png")

    def write_samples(self, model, samples, epoch: int, step: int) -> Path:
        """A grid of the model's sample columns as ``samples/epoch_XXXX.png`` and in
        TensorBoard."""
        a, b = samples
        cols = {name: kdata.to_uint8(x).numpy()
                for name, x in model.sample_columns(a, b).items()}
        grid = visual.image_grid(cols)
        path = self.dir / "samples" / f"epoch_{epoch:04d}.png"
        with runs.atomic_path(path, suffix=".png") as tmp:
            grid.save(tmp)
        if self.image_writer is None:
            self.image_writer = tf.summary.create_file_writer(str(self.dir / "logs" / "samples"))
        with self.image_writer.as_default():
            tf.summary.image("samples", np.asarray(grid)[None], step=step)
        self.image_writer.flush()
        return path

    def close(self):
        if self.image_writer is not None:
            self.image_writer.close()
        lock.release(self.dir)
