"""``fit(recipe)``: recipe -> tf.data -> ``keras.Model.fit`` -> a resumable run folder.

Running ``fit`` again on the same recipe resumes from the run folder's last checkpoint:
weights, optimizer slots, the learning rate (a function of the restored step), the
random generators' states (dropout, CycleGAN's image pools) and the position in the
stream of training batches all come back, and training goes on to ``train.epochs``. A
run killed at any moment (even SIGKILL) and started again ends with the same weights as
one never stopped (bit for bit on one CPU thread with deterministic ops; see
tests/test_crash_safety.py).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from kstyle import data as kdata
from kstyle import runs, visual
from kstyle.errors import DataError, KstyleError, RecipeError, TrainingDivergedError
from kstyle.models import get_model_class
from kstyle.monitor import CollapseMonitor
from kstyle.optimizers import CountingLossScaleOptimizer, FusedAdam
from kstyle.recipes import Recipe, load_recipe, saved_model_options
from kstyle.schedules import EpochSchedule

STEP_LOG_EVERY = 10


@dataclass
class FitResult:
    """What a finished (or resumed-and-finished) run produced."""

    run_dir: Path
    step: int
    epoch: int
    logs: dict
    resumed_from: int
    interrupted: bool = False


# --------------------------------------------------------------------------- data


def _source(recipe: Recipe):
    """``(count(split), dataset(split, **options))`` for the recipe's data and model kind.

    Paired models (pix2pix) read :func:`kstyle.data.paired_dataset`; unpaired ones
    (CycleGAN) :func:`kstyle.data.unpaired_dataset`, whose epoch is the larger domain;
    models that learn from images alone (the fast stylizer) the B side (the photo) of a
    paired source, so any paired layout, photo folder, tfds set or the synthetic
    renderings serve.
    """
    d = recipe.data
    where = dict(synthetic_count=d.synthetic_count, data_dir=d.data_dir or None,
                 bad_images=d.bad_images)
    common = dict(image_size=d.image_size, tfds_keys=tuple(d.tfds_keys), **where)
    data_kind = recipe.model.data_kind
    if data_kind == "images":
        def count(split):
            return kdata.paired_count(d.source, d.path, split=split, **where)

        def dataset(split, **options):
            pairs = kdata.paired_dataset(d.source, d.path, split=split, direction="a2b",
                                         derive=d.derive, **common, **options)
            return pairs.map(lambda a, b: b)
    elif data_kind == "unpaired":
        def count(split):
            return max(kdata.unpaired_count(d.source, d.path, split=split, **where))

        def dataset(split, **options):
            return kdata.unpaired_dataset(d.source, d.path, split=split, **common, **options)
    else:
        def count(split):
            return kdata.paired_count(d.source, d.path, split=split, **where)

        def dataset(split, **options):
            return kdata.paired_dataset(d.source, d.path, split=split, direction=d.direction,
                                        derive=d.derive, **common, **options)
    return count, dataset


def train_dataset(recipe: Recipe, seed_offset: int = 0, skip: int = 0):
    """The repeated, augmented, batched training pairs and the number of pairs.

    Args:
        recipe: the run's recipe.
        seed_offset: added to ``data.seed``. ``fit`` keeps it at 0: the synthetic source
            renders its images from the seed (and the held-back ones from ``seed + 1``).
        skip: batches to drop from the start of the stream: those a resumed run has
            already trained on, so that it goes on with the batches an uninterrupted run
            would see next. The dropped batches are still read and augmented (fast next
            to training steps: about 2 ms a batch for the quickstart on 2 CPU cores).
    """
    d = recipe.data
    count, dataset = _source(recipe)
    ds = dataset(d.train_split, load_size=d.load_size, flip=d.flip, augment=True,
                 batch_size=d.batch_size, shuffle=True, repeat=True, seed=d.seed + seed_offset,
                 cache=d.cache)
    return (ds.skip(skip) if skip else ds), count(d.train_split)


def eval_dataset(recipe: Recipe, split: str | None = None, batch_size: int | None = None):
    """Held-back pairs, resized without randomness; falls back to the training split.

    Returns:
        ``(dataset, split_used)``.
    """
    d = recipe.data
    count, dataset = _source(recipe)
    for candidate in dict.fromkeys([split or d.val_split, d.train_split]):
        try:
            count(candidate)
        except DataError:
            continue
        ds = dataset(candidate, load_size=None, flip=False, augment=False,
                     batch_size=batch_size or d.batch_size, shuffle=False, repeat=False,
                     seed=d.seed, drop_remainder=False)
        return ds, candidate
    raise DataError(f"no images found for data.path = {d.path!r}")


# --------------------------------------------------------------------------- precision


def make_strategy(kind: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy of ``train.distribute``.

    ``"mirrored"`` replicates the model on every local GPU, or, without GPUs, on the
    CPU devices TensorFlow has been told about (at least one). ``"multi_worker"`` does the
    same across the processes (hosts) that ``$TF_CONFIG`` lists, each running the same
    ``kstyle fit`` (see :func:`worker_role`). Each replica gets its share of the batch;
    gradients are averaged over the global batch (see
    ``kstyle.optimizers.apply_gradients``).

    Raises:
        RecipeError: ``"multi_worker"`` without a usable ``$TF_CONFIG``.
    """
    if kind == "mirrored":
        devices = (tf.config.list_logical_devices("GPU")
                   or tf.config.list_logical_devices("CPU"))
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if kind == "multi_worker":
        worker_role()  # a clear error before TensorFlow's, when TF_CONFIG is wrong
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def worker_role() -> tuple[int, bool]:
    """``(task index, is chief)`` of this process in ``$TF_CONFIG``'s cluster.

    ``TF_CONFIG`` is TensorFlow's JSON cluster description, the same on every process but
    for ``task``: ``{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type":
    "worker", "index": 0}}``. The chief (a ``"chief"`` task, else worker 0) writes the run
    folder; the other workers train alongside it and write nothing there.

    Raises:
        RecipeError: ``$TF_CONFIG`` is missing or does not describe this task.
    """
    expected = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}\' (index 1 on the second host)')
    raw = os.environ.get("TF_CONFIG", "")
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
        if kind not in cluster or not 0 <= index < len(cluster[kind]):
            raise ValueError(f"task {kind} {index} is not in the cluster")
    except (ValueError, KeyError, TypeError) as e:
        problem = "is not set" if not raw else f"is not usable ({e})"
        raise RecipeError(
            f"train.distribute = 'multi_worker': $TF_CONFIG {problem}; every worker needs "
            f"it, e.g. {expected}") from None
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    return index, chief


def resolve_jit(setting) -> bool:
    """``train.jit_compile``: ``"auto"`` is XLA on a GPU, off on CPUs (where it was slower)."""
    if setting == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    return bool(setting)


@contextlib.contextmanager
def dtype_policy(name: str):
    """Builds layers under the Keras dtype policy ``name``, then restores the old one.

    Layers keep the policy they were built with, so a model built inside trains in mixed
    precision while the rest of the process (loading, inference) stays float32.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_copy(network: keras.Model) -> keras.Model:
    """The same functional network with every layer computing in float32, same weights."""
    def clone(layer):
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(network, clone_function=clone)
    copy.set_weights(network.get_weights())
    return copy


# --------------------------------------------------------------------------- checkpoints


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

    def _rng_states(self) -> list:
        """The model's SeedGenerator state variables, in the model's (fixed) order."""
        weights = {id(w) for w in self.model.weights}
        return [v for v in self.model.variables if id(v) not in weights]

    def restore(self, path: Path) -> dict:
        for name, net in self.model.networks.items():
            net.load_weights(path / f"{name}.weights.h5")
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


# --------------------------------------------------------------------------- callbacks


class RunCallback(keras.callbacks.Callback):
    """Checkpoints every N steps and at epoch ends, writes the translator, samples, logs.

    Args:
        run: the :class:`Run` being trained.
    """

    def __init__(self, run: Run):
        super().__init__()
        self.run = run
        self.last_saved = run.step
        self._step_log = None

    def on_train_batch_end(self, batch, logs=None):
        step = self.run.model.step
        self.run.step = step
        self._check_finite(step, logs or {})
        if step % self.run.log_every == 0 and logs:
            self.run.log_step(step, logs)
        # An epoch's last step is saved by on_epoch_end, after the epoch's row in
        # epochs.csv: saved here, a kill before that row would leave the epoch without one.
        last_of_epoch = step % self.run.steps_per_epoch == 0
        if (step % self.run.recipe.train.checkpoint_every == 0 and step != self.last_saved
                and not last_of_epoch):
            self.run.save_checkpoint()
            self.last_saved = step

    def _check_finite(self, step, logs):
        """Stops before a non-finite step reaches a checkpoint or a saved model."""
        bad = sorted(k for k, v in logs.items() if not np.isfinite(float(v)))
        if bad:
            latest = self.run.checkpointer.latest()
            where = (f"the last good checkpoint is {latest}" if latest
                     else "no checkpoint was saved yet")
            raise TrainingDivergedError(
                f"step {step}: {', '.join(bad)} became {float(logs[bad[0]])} (the training "
                f"diverged; nothing from this step was saved); {where}. Lower train.lr (or "
                "check the data), then run the same command to resume from it.")

    def on_epoch_end(self, epoch, logs=None):
        self.run.epoch = epoch + 1
        self.run.save_checkpoint()
        self.last_saved = self.run.step
        self.run.save_translator()
        if (epoch + 1) % self.run.recipe.train.sample_every == 0:
            self.run.write_samples(epoch + 1)


# --------------------------------------------------------------------------- the run


class Run:
    """One training run in its folder: model, data, checkpoints and outputs."""

    def __init__(self, recipe: Recipe, log=print):
        self.recipe = recipe
        # First: a multi-worker strategy must exist before TensorFlow runs anything.
        try:
            self.strategy = make_strategy(recipe.train.distribute)
        except RecipeError as e:
            raise RecipeError(f"{recipe.source}: {e}") from None
        self.dir = recipe.run_dir
        self.scratch = None
        self.worker = worker_role()[0] if recipe.train.distribute == "multi_worker" else 0
        if recipe.train.distribute == "multi_worker" and not worker_role()[1]:
            self.dir = self._worker_scratch()
        self.log = log
        self.step = 0
        self.epoch = 0
        self.initial_val = runs.read_run_info(self.dir).get("untrained_val_metric")
        self.clean_run_dir()
        self._prepare_dir()
        keras.utils.set_random_seed(recipe.train.seed)
        self.count = None
        self.steps_per_epoch = self._steps_per_epoch()
        self.log_every = max(1, min(STEP_LOG_EVERY, self.steps_per_epoch // 4))
        self.model = self._build_model()
        self.checkpointer = Checkpointer(self.model, self.dir / runs.CHECKPOINT_DIR)
        self._check_room_for_checkpoints()
        self.samples = self._sample_pairs()
        self.image_writer = tf.summary.create_file_writer(str(self.dir / "logs" / "samples"))

    # -- setup

    def _worker_scratch(self) -> Path:
        """A non-chief worker's folder: it writes there, never into the chief's run folder
        (deleted when fit ends); it starts from a copy of the run's last checkpoint, so
        that every worker resumes from the same step."""
        self.scratch = Path(tempfile.mkdtemp(prefix=f"kstyle-worker{self.worker}-"))
        latest = Checkpointer(None, self.recipe.run_dir / runs.CHECKPOINT_DIR).latest()
        if latest is not None:
            shutil.copytree(latest, self.scratch / runs.CHECKPOINT_DIR / latest.name)
        return self.scratch

    # Free space a run needs on the disk of train.out_dir before it starts. A fixed floor: the
    # folder is checked before the model is built, so the size of its checkpoints is not
    # known yet. 256 MiB holds quickstart's two kept checkpoints (8.0M parameters x 4 bytes x
    # 3 for the weights and two Adam slots: ~92 MiB each), samples and logs. It catches a full
    # disk before the first step, not a disk too small for a 256 px pix2pix (57M parameters:
    # ~650 MiB per checkpoint).
    MIN_FREE_BYTES = 256 * 2**20

    def _prepare_dir(self):
        """Creates the run folder, first checking that train.out_dir is (or can become) a
        writable folder on a disk with :attr:`MIN_FREE_BYTES` free; raises RecipeError."""
        where = f"{self.recipe.source}: train.out_dir = {str(self.dir)!r}"
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
            self._no_room(free, f"a run needs at least {self.MIN_FREE_BYTES / 2**20:,.0f} MiB "
                                "(checkpoints, samples, logs)")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / ".write_test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            raise RecipeError(
                f"{self.recipe.source}: train.out_dir = {str(self.dir)!r} is not writable "
                f"({e.strerror or e})") from None
        saved = self.dir / runs.RECIPE_FILE
        if saved.is_file() and any((self.dir / runs.CHECKPOINT_DIR).glob("step_*")):
            previous = saved_model_options(saved)
            if previous != self.recipe.model:
                raise RecipeError(
                    f"{self.recipe.source}: [model] differs from the run in {self.dir} "
                    f"({self._diff(previous, self.recipe.model)}); resuming would mix "
                    "two models. Set train.out_dir to a new folder or delete the old run.")
        runs.write_text(saved, self.recipe.to_toml())

    def checkpoint_bytes(self) -> int:
        """Bytes of one checkpoint: every model and optimizer variable (weights, slots,
        pools, RNG states), as stored."""
        variables = [*self.model.variables]
        for opt in self.model.optimizers.values():
            variables += opt.variables
        return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)

    def _check_room_for_checkpoints(self):
        """Once the model is built: room for the checkpoints still to be written (while a
        new one is written, ``keep`` older ones are still there) and the translators."""
        per_checkpoint = self.checkpoint_bytes()
        existing = len(self.checkpointer.all())
        translators = sum(net.count_params() * 4 for net in self.model.translators.values())
        needed = max(0, self.checkpointer.keep + 1 - existing) * per_checkpoint + translators
        free = shutil.disk_usage(self.dir).free
        if free < needed:
            self._no_room(free, f"this model's checkpoints and translators need about "
                                f"{needed / 2**20:,.1f} MiB ({per_checkpoint / 2**20:,.1f} MiB a "
                                "checkpoint)")

    def _no_room(self, free: int, need: str):
        raise RecipeError(
            f"{self.recipe.source}: train.out_dir = {str(self.dir)!r}: its disk has "
            f"{free / 2**20:,.1f} MiB free; {need}. Free some space or set train.out_dir to a "
            "folder on another disk.")

    @staticmethod
    def _diff(a, b) -> str:
        ad, bd = dataclasses.asdict(a), dataclasses.asdict(b)
        return ", ".join(f"model.{k}: {ad[k]!r} -> {bd[k]!r}" for k in ad if ad[k] != bd[k])

    def _steps_per_epoch(self) -> int:
        d = self.recipe.data
        self.count = _source(self.recipe)[0](d.train_split)
        replicas = self.strategy.num_replicas_in_sync
        if d.batch_size % replicas:
            raise RecipeError(
                f"{self.recipe.source}: data.batch_size = {d.batch_size} must be a multiple of "
                f"the {replicas} replicas of train.distribute = {self.recipe.train.distribute!r}")
        if self.count < d.batch_size:
            raise DataError(
                f"data.path = {d.path!r} has {self.count} training pairs, fewer than "
                f"data.batch_size = {d.batch_size}")
        return self.recipe.train.steps_per_epoch or self.count // d.batch_size

    def _build_model(self):
        r = self.recipe
        t = r.train
        with dtype_policy(t.precision), self.strategy.scope():
            model = get_model_class(r.model.kind).from_options(r.model)

        def adam():
            schedule = EpochSchedule(
                t.lr, self.steps_per_epoch, policy=t.lr_policy, epochs=t.epochs,
                decay_start_epoch=t.decay_start_epoch, step_epochs=t.step_epochs,
                step_gamma=t.step_gamma)
            adam = FusedAdam(schedule, beta_1=t.beta_1, beta_2=t.beta_2)
            # float16 gradients underflow without loss scaling; bfloat16 has float32's range.
            return CountingLossScaleOptimizer(adam) if t.precision == "mixed_float16" else adam

        with self.strategy.scope():
            model.compile(**{name: adam() for name in model.optimizer_slots},
                          jit_compile=resolve_jit(t.jit_compile))
            model.build_optimizers()
            model.build_state(r.data.image_size)
        if t.distribute == "multi_worker":
            model.use_multi_worker_fixes()
        return model

    def _sample_pairs(self):
        n = self.recipe.train.num_samples
        if n == 0:
            return None
        ds, _ = eval_dataset(self.recipe, batch_size=n)
        batch = next(iter(ds))
        a, b = batch if isinstance(batch, tuple) else (batch, None)
        # The held-back inputs as files, so a new user has something to stylize.
        inputs = self.dir / "samples" / "inputs"
        if not inputs.is_dir():
            with runs.atomic_path(inputs) as tmp:
                tmp.mkdir()
                for i, img in enumerate(kdata.to_uint8(a).numpy()):
                    Image.fromarray(img).save(tmp / f"input_{i:02d}.png")
        return a, b

    # -- outputs

    def input_transforms(self) -> dict:
        """The derivation (gray, edges, none) each translator applies to its input.

        A derived pair has the derived image on its A side, so the derivation belongs to the
        translator that reads that side: ``a2b`` for ``data.direction = "a2b"``, ``b2a``
        otherwise (that of a two-way model, or none), whose input is the plain photo.
        """
        d = self.recipe.data
        derived = d.source in ("photos", "tfds") and self.model.data_kind != "images"
        derive = d.derive if derived else "none"
        return {k: derive if k == d.direction else "none" for k in self.model.translators}

    def run_info(self) -> dict:
        r = self.recipe
        m = r.model
        transforms = self.input_transforms()
        return {
            "kind": m.kind,
            "name": r.name,
            "direction": r.data.direction,
            "input_transform": transforms[runs.DEFAULT_DIRECTION],
            "input_transforms": transforms,
            "image_size": r.data.image_size,
            "size_multiple": self.model.size_multiple,
            "value_range": [-1.0, 1.0],
            "translator": runs.TRANSLATOR_FILE,
            "translators": {k: runs.translator_file(k) for k in self.model.translators},
            "step": self.step,
            "epoch": self.epoch,
            "epochs": r.train.epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "untrained_val_metric": self.initial_val,
        }

    def save_checkpoint(self) -> Path:
        path = self.checkpointer.save({"step": self.step, "epoch": self.epoch,
                                       "steps_per_epoch": self.steps_per_epoch})
        runs.write_json(self.dir / runs.RUN_FILE, self.run_info())
        return path

    def save_translator(self):
        for direction, net in self.model.translators.items():
            if self.recipe.train.precision != "float32":
                # Inference and export get float32 networks, whatever the training used.
                net = float32_copy(net)
            with runs.atomic_path(self.dir / runs.translator_file(direction),
                                  suffix=".keras") as tmp:
                net.save(tmp)
        runs.write_json(self.dir / runs.RUN_FILE, self.run_info())

    def write_samples(self, epoch: int) -> Path | None:
        if self.samples is None:
            return None
        a, b = self.samples
        cols = {name: kdata.to_uint8(x).numpy()
                for name, x in self.model.sample_columns(a, b).items()}
        grid = visual.image_grid(cols)
        path = self.dir / "samples" / f"epoch_{epoch:04d}.png"
        with runs.atomic_path(path, suffix=".png") as tmp:
            grid.save(tmp)
        with self.image_writer.as_default():
            tf.summary.image("samples", np.asarray(grid)[None], step=self.step)
        self.image_writer.flush()
        return path

    def log_step(self, step: int, logs: dict):
        path = self.dir / "steps.csv"
        keys = sorted(k for k in logs if not k.startswith("val_"))
        new = not path.is_file() or path.stat().st_size == 0
        with open(path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["step", *keys])
            writer.writerow([step, *(f"{float(logs[k]):.6g}" for k in keys)])

    # -- training

    def restore(self) -> int:
        """Loads the last complete checkpoint (if any); logs past it are dropped."""
        latest = self.checkpointer.latest()
        if latest is not None:
            state = self.checkpointer.restore(latest)
            self.step = self.model.step
            if self.step != state["step"]:
                raise KstyleError(f"{latest}: step {state['step']} but optimizer at {self.step}")
            self.epoch = self.step // self.steps_per_epoch
        # A killed run may have logged steps (and an epoch) after its last checkpoint;
        # they are trained again, and logged again.
        self._truncate_log("steps.csv", "step", lambda step: step <= self.step)
        self._truncate_log("epochs.csv", "epoch", lambda epoch: epoch < self.epoch)
        return self.step

    def clean_run_dir(self):
        """Deals with what a killed run left half-written (see runs.clean_temporaries)."""
        for folder in (self.dir, self.dir / runs.CHECKPOINT_DIR, self.dir / "samples"):
            try:
                for line in runs.clean_temporaries(folder):
                    self.log(f"{folder}: {line} (left by an interrupted run)")
            except OSError as e:  # an unwritable folder is reported by _prepare_dir
                self.log(f"{folder}: could not clean up temporaries ({e})")

    def _truncate_log(self, name: str, key: str, keep):
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

    def fit(self, callbacks=(), verbose="auto") -> FitResult:
        """Trains to the recipe's last epoch, resuming from the last checkpoint."""
        try:
            return self._fit(callbacks, verbose)
        finally:
            if self.scratch is not None:  # a non-chief worker's folder, whatever happened
                shutil.rmtree(self.scratch, ignore_errors=True)

    def _fit(self, callbacks, verbose) -> FitResult:
        t = self.recipe.train
        resumed_from = self.restore()
        total = t.epochs * self.steps_per_epoch
        if resumed_from:
            self.log(f"Resuming {self.dir} at step {resumed_from} (epoch {self.epoch + 1}).")
        if resumed_from >= total:
            self.log(f"{self.dir} already finished {t.epochs} epochs ({resumed_from} steps).")
            self.save_translator()
            return FitResult(self.recipe.run_dir, self.step, self.epoch, {}, resumed_from)

        if self.model.data_kind == "paired":
            d = self.recipe.data
            self.log("Pairs: " + kdata.describe_pairs(d.source, d.path, direction=d.direction,
                                                      derive=d.derive, tfds_keys=d.tfds_keys))
        cbs = [
            # The epoch's row goes before its checkpoint: a kill in between leaves a row
            # that restore() drops, never a finished epoch without one.
            keras.callbacks.CSVLogger(str(self.dir / "epochs.csv"), append=True),
            RunCallback(self),
            CollapseMonitor(self.samples, log=self.log),
            keras.callbacks.TensorBoard(str(self.dir / "logs"), update_freq=self.log_every,
                                        write_graph=False, profile_batch=0),
            *callbacks,
        ]
        val_steps = t.val_steps
        val_ds = eval_dataset(self.recipe)[0].take(val_steps) if val_steps else None
        if val_ds is not None and not resumed_from:
            metric = self.model.val_metric
            initial = self.model.evaluate(val_ds, verbose=0, return_dict=True)[metric]
            self.initial_val = float(initial)
            self.log(f"Untrained val_{metric}: {self.initial_val:.4f} (on {val_steps} "
                     "held-back batches; watch it fall)")
        history_logs: dict = {}
        interrupted = False
        start = time.time()
        try:
            spe = self.steps_per_epoch
            in_epoch = self.step - self.epoch * spe
            # The run reads one stream of batches, epoch after epoch (Keras keeps the
            # iterator across epochs); a resumed run skips the batches trained on, so
            # it sees what an uninterrupted run would. A checkpoint taken mid-epoch
            # resumes with the rest of that epoch first, then the stream is opened again
            # (a second fit cannot go on with the first one's iterator).
            phases = []
            if in_epoch:
                phases.append((self.epoch, self.epoch + 1, spe - in_epoch, self.step))
                if self.epoch + 1 < t.epochs:
                    phases.append((self.epoch + 1, t.epochs, spe, (self.epoch + 1) * spe))
            else:
                phases.append((self.epoch, t.epochs, spe, self.step))
            for initial_epoch, epochs, steps, skip in phases:
                ds, _ = train_dataset(self.recipe, skip=skip)
                history = self.model.fit(
                    ds, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                    validation_data=val_ds, callbacks=cbs, verbose=verbose,
                    shuffle=False)
                history_logs = {k: v[-1] for k, v in history.history.items() if v}
        except KeyboardInterrupt:
            interrupted = True
            self.step = self.model.step
            path = self.save_checkpoint()
            self.log(f"\nInterrupted at step {self.step}; saved {path}. "
                     "Run the same command again to resume.")
        self.finish(time.time() - start, history_logs)
        return FitResult(self.recipe.run_dir, self.step, self.epoch, history_logs,
                         resumed_from, interrupted)

    def finish(self, seconds: float, logs: dict):
        if self.scratch is not None:  # a non-chief worker: the chief reports
            self.image_writer.close()
            self.log(f"Worker {self.worker} done in {seconds:.0f} s: step {self.step}.")
            return
        steps_csv = self.dir / "steps.csv"
        if steps_csv.is_file():
            visual.plot_curves(steps_csv, self.dir / "losses.png")
        self.image_writer.close()
        d = self.dir
        scores = ""
        key = f"val_{self.model.val_metric}"
        if key in logs:
            before = (f"untrained {self.initial_val:.4f} -> "
                      if self.initial_val is not None else "")
            scores = f" {key}: {before}{logs[key]:.4f}."
        self.log(
            f"\nDone in {seconds:.0f} s: step {self.step}, epoch {self.epoch}.{scores}\n"
            f"  run folder   {d}\n"
            f"  translator   {d / runs.TRANSLATOR_FILE}\n"
            f"  checkpoints  {d / runs.CHECKPOINT_DIR}\n"
            f"  samples      {d / 'samples'}\n"
            f"  loss curves  {d / 'losses.png'}  ({d / 'steps.csv'}, {d / 'epochs.csv'})\n"
            f"  TensorBoard  tensorboard --logdir {d / 'logs'}\n"
            f"  try it       kstyle stylize {d / 'samples' / 'inputs'} --model {d}")


def fit(recipe: Recipe | str | os.PathLike, overrides=(), *, callbacks=(), verbose="auto",
        log=print) -> FitResult:
    """Trains (or resumes) the run a recipe describes.

    Args:
        recipe: a :class:`Recipe` or the path of a recipe file.
        overrides: ``table.key=value`` strings, applied when ``recipe`` is a path.
        callbacks: extra Keras callbacks.
        verbose: Keras ``fit`` verbosity (progress bar by default).
        log: where messages go.

    Returns:
        A :class:`FitResult`.

    Example:
        >>> kstyle.train.fit("recipes/quickstart.toml", ["train.epochs=1"])
    """
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    sys.stdout.flush()
    return Run(recipe, log=log).fit(callbacks=callbacks, verbose=verbose)
