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
import os
import re
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from kstyle import lock, runs
from kstyle.data.kinds import get_data_kind
from kstyle.errors import DataError, KstyleError, ModelLoadError, RecipeError, WorkerLostError
from kstyle.precision import choose as choose_precision
from kstyle.recipes import Recipe, load_recipe
from kstyle.training import builders, visual
from kstyle.training.callbacks import RunCallback, Stopped
from kstyle.training.checkpoints import Checkpointer, initial_weights, step_of
from kstyle.training.distribute import any_worker, make_strategy, worker_role, worker_scratch
from kstyle.training.monitor import CollapseMonitor
from kstyle.training.run_folder import RunFolder

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
    #: The signal that stopped the run (``signal.SIGTERM``, ...), or None.
    signal: int | None = None

    @property
    def exit_code(self) -> int:
        """0 when finished; 128 + the signal when stopped by one (130 Ctrl-C, 143 SIGTERM,
        129 SIGHUP): schedulers read it as a failed try, to retry with the same command."""
        if not self.interrupted:
            return 0
        return 128 + (self.signal or signal.SIGINT)


def disk_full(error: OSError) -> bool:
    """An OSError of a full disk or quota (h5py's carry it in their text, not ``errno``)."""
    import errno

    return error.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(error)


#: The signals ``fit`` stops on, saving a checkpoint first: Ctrl-C, and what container
#: runtimes and batch schedulers send to preempt a job (SIGTERM), or a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stop_on_signals(run):
    """While training: a stop signal sets ``run.stop_signal``, acted on at the end of the
    current step (the step finishes, a checkpoint is written); a second one stops at once.

    SIGINT is handled too when the process was started ignoring it (a ``&`` job of a
    script), so Ctrl-C-style stops reach such a run. Outside the main thread (where Python
    cannot handle signals) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if run.stop_signal is not None:
            raise Stopped(signum)
        run.stop_signal = signum
        run.log(f"\n{signal.Signals(signum).name}: stopping after this step (send it again "
                "to stop at once).")

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def resume_phases(step: int, steps_per_epoch: int, epochs: int) -> list[tuple[int, int, int, int]]:
    """The ``model.fit`` calls that train from ``step`` to the last epoch, as
    ``(initial_epoch, epochs, steps_per_epoch, batches to skip)``.

    The run reads one stream of batches, epoch after epoch (Keras keeps the iterator across
    epochs); a resumed run skips the batches trained on, so it sees what an uninterrupted
    run would. A checkpoint taken mid-epoch resumes with the rest of that epoch first, then
    the stream is opened again (a second fit cannot go on with the first one's iterator).
    """
    spe = steps_per_epoch
    epoch, in_epoch = divmod(step, spe)
    if not in_epoch:
        return [(epoch, epochs, spe, step)]
    phases = [(epoch, epoch + 1, spe - in_epoch, step)]
    if epoch + 1 < epochs:
        phases.append((epoch + 1, epochs, spe, (epoch + 1) * spe))
    return phases


class Run:
    """One training run in its folder: model, data, checkpoints and outputs."""

    def __init__(self, recipe: Recipe, log=print):
        self.recipe = recipe
        self.log = log
        # First: a multi-worker strategy must exist before TensorFlow runs anything.
        try:
            self.strategy = make_strategy(recipe.train.distribute)
        except RecipeError as e:
            raise RecipeError(f"{recipe.source}: {e}") from None
        self.worker, self.scratch, self.any_worker = 0, None, None
        if recipe.train.distribute == "multi_worker":
            self.worker, chief = worker_role()
            self.any_worker = any_worker(self.strategy)
            if not chief:
                self.scratch = worker_scratch(self.worker, recipe.run_dir, runs.CHECKPOINT_DIR)
        self.folder = RunFolder(recipe, self.scratch or recipe.run_dir, log)
        self.dir = self.folder.dir
        self.step = self.epoch = 0
        self.stop_signal = None
        try:
            self.initial_val = runs.read_run_info(self.dir).get("untrained_val_metric")
        except ModelLoadError as e:  # written again with the translators
            self.initial_val = None
            log(f"{str(e).partition('. ')[0]}; this run writes it again.")
        self.folder.prepare()  # takes the folder's lock first
        self.folder.clean()  # what a dead run left half-written: its owner is gone
        keras.utils.set_random_seed(recipe.train.seed)
        self.steps_per_epoch, self.count = builders.steps_per_epoch(
            recipe, self.strategy.num_replicas_in_sync)
        self.log_every = max(1, min(STEP_LOG_EVERY, self.steps_per_epoch // 4))
        self.precision, why = choose_precision(recipe.train.precision)
        self.log(f"Precision: {self.precision} ({why})" if not why.startswith("warning: ")
                 else f"Precision: {self.precision}. Warning: {why.removeprefix('warning: ')}")
        self.model = builders.build_model(recipe, self.strategy, self.steps_per_epoch,
                                          self.precision)
        self.checkpointer = Checkpointer(self.model, self.dir / runs.CHECKPOINT_DIR)
        self.folder.check_room(self.model, self.checkpointer)
        self.samples = self._sample_pairs()

    def fit(self, callbacks=(), verbose="auto") -> FitResult:
        """Trains to the recipe's last epoch, resuming from the last checkpoint."""
        try:
            return self._fit(callbacks, verbose)
        finally:
            lock.release(self.dir)  # whatever happened: the folder is free for the next fit
            if self.scratch is not None:  # a non-chief worker's folder, whatever happened
                shutil.rmtree(self.scratch, ignore_errors=True)

    def _fit(self, extra_callbacks, verbose) -> FitResult:
        t = self.recipe.train
        resumed_from = self.restore()
        if resumed_from:
            self.log(f"Resuming {self.dir} at step {resumed_from} (epoch {self.epoch + 1}).")
        if resumed_from >= t.epochs * self.steps_per_epoch:
            self.log(f"{self.dir} already finished {t.epochs} epochs ({resumed_from} steps).")
            self.save_translator()
            return FitResult(self.recipe.run_dir, self.step, self.epoch, {}, resumed_from)
        self._describe_pairs()
        callbacks = self._callbacks(extra_callbacks)
        val_ds = self._validation_data(score_untrained=not resumed_from)
        logs, stopped, start = {}, None, time.time()
        try:
            with stop_on_signals(self):
                for initial_epoch, epochs, steps, skip in resume_phases(
                        self.step, self.steps_per_epoch, t.epochs):
                    ds, _ = builders.train_dataset(self.recipe, skip=skip)
                    history = self.model.fit(
                        ds, epochs=epochs, initial_epoch=initial_epoch,
                        steps_per_epoch=steps, validation_data=val_ds, callbacks=callbacks,
                        verbose=verbose, shuffle=False)
                    logs = {k: v[-1] for k, v in history.history.items() if v}
        except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError,
                tf.errors.DataLossError) as e:
            self._data_changed(e)  # raises, naming the file, once the step is saved
        except OSError as e:
            if not disk_full(e):
                raise
            raise self._disk_full(e) from None
        except (tf.errors.UnavailableError, tf.errors.CancelledError,
                tf.errors.DeadlineExceededError) as e:
            if self.any_worker is None:
                raise
            raise self._worker_lost(e) from None
        except KeyboardInterrupt as e:  # Ctrl-C mid-step, or Stopped at a step's end
            stopped = e.signum if isinstance(e, Stopped) else signal.SIGINT
            path = self._save_now()  # sets self.step
            by = ("another worker's stop signal" if getattr(e, "by_peer", False)
                  else signal.Signals(stopped).name)
            self.log(f"\nStopped by {by} at step {self.step}; saved {path}. Run the same "
                     "command again to resume.")
        self.finish(time.time() - start, logs)
        return FitResult(self.recipe.run_dir, self.step, self.epoch, logs, resumed_from,
                         stopped is not None, stopped)

    # -- the pieces of fit, in order

    def _save_now(self) -> Path:
        """A checkpoint of the model as it is now (the last one, if it is of this step)."""
        self.step = self.model.step
        latest = self.checkpointer.latest()
        if latest is not None and latest.name == f"step_{self.step:08d}":
            return latest
        return self.save_checkpoint()

    def _worker_lost(self, error) -> WorkerLostError:
        """A collective failed: a peer is gone. Nothing is saved: the failed step may have
        updated one network and not the other, so the last checkpoint is the one to use."""
        latest = self.checkpointer.latest()
        if self.scratch is not None:  # the chief's folder may be on another host
            where = f"in {self.recipe.run_dir / runs.CHECKPOINT_DIR} on the chief's host"
        elif latest is not None:
            where = f"{latest} (step {step_of(latest)})"
        else:
            where = "none yet: they start from the beginning"
        why = re.search(r"(Collective ops is aborted by: [^\n]+|[^\n]*unhealthy[^\n]*)",
                        str(error))
        first = why[1] if why else type(error).__name__
        return WorkerLostError(
            f"worker {self.worker}: another worker of the cluster stopped answering at step "
            f"{self.model.step} ({first.strip()[:200]}); this one cannot go on alone. Start "
            f"every worker again with the same command: they resume from the chief's last "
            f"checkpoint, {where}.")

    def _disk_full(self, error) -> KstyleError:
        latest = self.checkpointer.latest()
        where = (f"the last complete checkpoint is {latest} (step "
                 f"{step_of(latest)})" if latest
                 else "no checkpoint was complete yet")
        try:
            free = f"{shutil.disk_usage(self.dir).free / 2**20:,.1f} MiB free"
        except OSError:
            free = "free space unknown"
        return KstyleError(
            f"the disk of {self.dir} is full ({free}; {str(error).strip()}); nothing complete "
            f"was lost: {where}. Free some space, then run the same command to resume.")

    def _data_changed(self, error):
        """An input pipeline error mid-run: the files changed under it (removed, rewritten).

        The failed step never ran (its batch could not be read), so the model is saved as
        it is; the error names the file (TensorFlow's message has it for a removed file; a
        rescan of the training files finds a rewritten one). Anything else is raised as it
        came, after the save.
        """
        path = self._save_now()
        found = re.search(r"(/[^;:\n]+\.(?:png|jpe?g|bmp|gif|webp))", str(error), re.I)
        reason = str(error).split(";")[-1].strip().splitlines()[0] if found else ""
        problem = f"{found.group(1)}: {reason}" if found else None
        if problem is None:
            try:
                builders.steps_per_epoch(self.recipe)  # rescans every training file
            except DataError as e:
                problem = str(e)
        if problem is None:
            raise error
        raise DataError(
            f"the training data changed during the run ({problem}); step {self.step} is "
            f"saved in {path}. Put the data back ('kstyle data check' lists what is wrong), "
            "then run the same command to resume.") from None

    def restore(self) -> int:
        """Loads the newest usable checkpoint (if any); logs past it are dropped.

        A damaged checkpoint (a file truncated or unreadable) is named, set aside as
        ``damaged_step_*`` and the next older one is used; when every checkpoint is
        damaged, nothing is touched and the error names each.
        """
        found = self.checkpointer.all()
        damaged = []
        for path in reversed(found):
            problem = self.checkpointer.problem(path)
            if problem is None:
                break
            damaged.append((path, problem))
        else:
            if damaged:
                listed = "; ".join(f"{p}: {why}" for p, why in damaged)
                raise KstyleError(
                    f"every checkpoint of {self.dir} is damaged ({listed}); move "
                    f"{self.dir / runs.CHECKPOINT_DIR} away to train from the start")
            path = None
        for bad, why in damaged:
            aside = self.checkpointer.set_aside(bad)
            self.log(f"Checkpoint {bad} is damaged ({why}); moved to {aside}.")
        if path is not None:
            try:
                state = self.checkpointer.restore(path)
            except KstyleError as e:  # another model than the recipe's
                raise KstyleError(f"{e}; {self.recipe.source} describes another model: set "
                                  "train.out_dir to a new folder to train it") from None
            self.folder.write_recipe()  # if a damaged one was kept until the model was known
            self.step = self.model.step
            if self.step != state["step"]:
                raise KstyleError(f"{path}: step {state['step']} but optimizer at {self.step}")
            self.epoch = self.step // self.steps_per_epoch
            if damaged:
                lost = step_of(damaged[0][0]) - self.step
                self.log(f"Resuming from {path} instead: {lost} steps are trained again.")
        elif self.recipe.train.init_from:  # a new run: fine-tuning starts from these
            source = self.recipe.train.init_from
            try:
                from kstyle.inference.zoo import resolve

                loaded = initial_weights(self.model, resolve(source, log=self.log))
            except KstyleError as e:
                raise KstyleError(f"{self.recipe.source}: train.init_from = {source!r}: {e}") \
                    from None
            self.log(f"Starting from the networks of {source}:\n  " + "\n  ".join(loaded))
        # A killed run may have logged steps (and an epoch) after its last checkpoint;
        # they are trained again, and logged again.
        self.folder.truncate_log("steps.csv", "step", lambda step: step <= self.step)
        self.folder.truncate_log("epochs.csv", "epoch", lambda epoch: epoch < self.epoch)
        return self.step

    def _describe_pairs(self):
        describe = get_data_kind(self.model.data_kind).describe
        if describe is not None:
            self.log(describe(self.recipe.data))

    def _callbacks(self, extra) -> list:
        return [
            # The epoch's row goes before its checkpoint: a kill in between leaves a row
            # that restore() drops, never a finished epoch without one.
            keras.callbacks.CSVLogger(str(self.dir / "epochs.csv"), append=True),
            RunCallback(self),
            CollapseMonitor(self.samples, log=self.log),
            keras.callbacks.TensorBoard(str(self.dir / "logs"), update_freq=self.log_every,
                                        write_graph=False, profile_batch=0),
            *extra,
        ]

    def _validation_data(self, score_untrained: bool):
        """``train.val_steps`` held-back batches (None: no validation); a new run scores
        its untrained model on them first."""
        val_steps = self.recipe.train.val_steps
        if not val_steps:
            return None
        val_ds = builders.eval_dataset(self.recipe)[0].take(val_steps)
        if score_untrained:
            metric = self.model.val_metric
            initial = self.model.evaluate(val_ds, verbose=0, return_dict=True)[metric]
            self.initial_val = float(initial)
            what = "Initial" if self.recipe.train.init_from else "Untrained"
            self.log(f"{what} val_{metric}: {self.initial_val:.4f} (on {val_steps} "
                     "held-back batches; watch it fall)")
        return val_ds

    def _sample_pairs(self):
        n = self.recipe.train.num_samples
        if n == 0:
            return None
        ds, _ = builders.eval_dataset(self.recipe, batch_size=n)
        batch = next(iter(ds))
        a, b = batch if isinstance(batch, tuple) else (batch, None)
        self.folder.write_sample_inputs(a)
        return a, b

    # -- what the run writes (RunCallback calls these)

    def run_info(self) -> dict:
        r = self.recipe
        transforms = builders.input_transforms(r, self.model)
        return {
            "kind": r.model.kind,
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
            "precision": self.precision,
            "untrained_val_metric": self.initial_val,
        }

    def save_checkpoint(self) -> Path:
        path = self.checkpointer.save({"step": self.step, "epoch": self.epoch,
                                       "steps_per_epoch": self.steps_per_epoch})
        self.folder.write_info(self.run_info())
        return path

    def save_translator(self):
        self.folder.save_translators(self.model, self.run_info())

    def write_samples(self, epoch: int) -> Path | None:
        if self.samples is None:
            return None
        return self.folder.write_samples(self.model, self.samples, epoch, self.step)

    def log_step(self, step: int, logs: dict):
        self.folder.log_step(step, logs)

    def finish(self, seconds: float, logs: dict):
        self.folder.close()
        if self.scratch is not None:  # a non-chief worker: the chief reports
            self.log(f"Worker {self.worker} done in {seconds:.0f} s: step {self.step}.")
            return
        steps_csv = self.dir / "steps.csv"
        if steps_csv.is_file():
            visual.plot_curves(steps_csv, self.dir / "losses.png")
        d = self.dir
        scores = ""
        key = f"val_{self.model.val_metric}"
        if key in logs:
            what = "initial" if self.recipe.train.init_from else "untrained"
            before = (f"{what} {self.initial_val:.4f} -> "
                      if self.initial_val is not None else "")
            scores = f" {key}: {before}{logs[key]:.4f}."
        extra = self.recipe.model.stylize_arguments(self.recipe.data)
        self.log(
            f"\nDone in {seconds:.0f} s: step {self.step}, epoch {self.epoch}.{scores}\n"
            f"  run folder   {d}\n"
            f"  translator   {d / runs.TRANSLATOR_FILE}\n"
            f"  checkpoints  {d / runs.CHECKPOINT_DIR}\n"
            f"  samples      {d / 'samples'}\n"
            f"  loss curves  {d / 'losses.png'}  ({d / 'steps.csv'}, {d / 'epochs.csv'})\n"
            f"  TensorBoard  tensorboard --logdir {d / 'logs'}\n"
            f"  try it       kstyle stylize {d / 'samples' / 'inputs'} --model {d}"
            + (f" {extra}" if extra else ""))


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
