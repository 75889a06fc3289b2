"""The callback that makes a Keras ``fit`` a kstyle run: checkpoints, translators, samples."""

from __future__ import annotations

import signal

import keras
import numpy as np

from kstyle.errors import TrainingDivergedError


class Stopped(KeyboardInterrupt):
    """Raised at a step's end after a stop signal; ``fit`` saves a checkpoint and returns.

    ``by_peer``: the signal reached another worker of a multi-worker run, not this one
    (``signum`` is then SIGTERM, what the scheduler sends).
    """

    def __init__(self, signum: int, by_peer: bool = False):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.by_peer = by_peer


class RunCallback(keras.callbacks.Callback):
    """Checkpoints every N steps and at epoch ends, writes the translator, samples, logs.

    Args:
        run: the :class:`Run` being trained.
    """

    def __init__(self, run):
        super().__init__()
        self.run = run
        self.last_saved = run.step

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
        self._stop_if_asked()

    def _stop_if_asked(self):
        """Ends the run here (the step done) when a stop signal came (``train.Stopped``);
        in a multi-worker run, when it came to any worker: every worker stops after this
        step, so the chief's checkpoint is the step the whole cluster reached."""
        signum = self.run.stop_signal
        if self.run.any_worker is not None:
            if self.run.any_worker(signum is not None):
                raise Stopped(signum or signal.SIGTERM, by_peer=signum is None)
        elif signum is not None:
            raise Stopped(signum)

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
        self._stop_if_asked()
