"""Warnings for a GAN that has stopped learning, raised while it trains.

Two failures cost users of the pix2pix/CycleGAN reference days, because the losses keep
printing and nothing stops (its FAQ, ``docs/qa.md``, answers them again and again):

* the discriminator wins outright: its loss sits near 0, it tells every fake from every
  real image, and the generator gets no useful gradient;
* the generator collapses to a flat image: its outputs on the held-back samples have
  almost no variance, whatever the input.

:class:`CollapseMonitor` watches for both during ``fit`` and warns once per episode,
naming the step, the metric, its value and what to try. It only warns: a run can come
back from either, and the checkpoints before the episode stay on disk.
"""

from __future__ import annotations

import re
import warnings

import keras
import numpy as np

#: A discriminator loss below this is "near 0". The GAN losses kstyle uses sit far above
#: it while the two networks compete: the vanilla (cross-entropy) loss of a
#: discriminator that cannot tell real from fake is 2 log 2 ~ 1.4 (0.69 halved, as the
#: two-way models report it), the LSGAN one about 0.25 to 0.5, and even a confident
#: discriminator stays around 0.01 to 0.1. Below 1e-3 it is right on nearly every patch
#: of every image.
D_LOSS_FLOOR = 1e-3
#: Consecutive steps below the floor before warning: a few steps there happen in healthy
#: runs (an easy batch); 200 is a few minutes of training that learned nothing.
D_LOSS_WINDOW = 200
#: Pixel standard deviation (images in [-1, 1]) below which an output is flat. Real
#: photos and the synthetic sets have 0.3 to 0.6; a uniform-looking image with faint
#: texture about 0.05; 0.02 is 2.5 levels of 255, an image that looks like one colour.
FLAT_STD = 0.02
#: Log keys of discriminator losses: ``d_loss`` (pix2pix), ``d_a_loss``/``d_b_loss``
#: (CycleGAN, CDAE).
D_LOSS_KEY = re.compile(r"^d(_[a-z0-9]+)?_loss$")


class CollapseWarning(UserWarning):
    """A GAN has collapsed during training (see :mod:`kstyle.training.monitor`)."""


def step_values(batch: int, logs: dict, previous: dict) -> dict:
    """Per-step values of the losses that Keras logs as means since the epoch began.

    The models' trackers are ``keras.metrics.Mean`` objects reset at every epoch start,
    so after ``k = batch + 1`` steps the log is ``m_k`` and this step's value is
    ``k * m_k - (k - 1) * m_(k-1)``.

    Args:
        batch: the batch index within the epoch (0 for its first step).
        logs: this step's logs.
        previous: the previous step's logs of the same epoch (ignored when ``batch`` is 0).
    """
    values = {}
    for key, mean in logs.items():
        mean = float(mean)
        if batch == 0 or key not in previous:
            values[key] = mean
        else:
            values[key] = (batch + 1) * mean - batch * float(previous[key])
    return values


class CollapseMonitor(keras.callbacks.Callback):
    """Warns when the discriminator loss stays near 0 or the outputs go flat.

    After every training step the discriminator losses (logs named ``d_loss``,
    ``d_a_loss``, ``d_b_loss``) are checked: below ``d_loss_floor`` for ``window``
    consecutive steps is a discriminator that wins outright. At every epoch end each
    translator of the model is run on the held-back sample inputs: a mean per-image pixel
    standard deviation below ``flat_std`` is a generator that collapsed to a flat image.
    Each warning goes to ``log`` and to :func:`warnings.warn` (category
    :class:`CollapseWarning`), once per episode: the same condition warns again only
    after it has cleared.

    Args:
        samples: ``(a, b)`` held-back input batches in [-1, 1] (``b`` may be ``None``):
            ``a`` feeds the ``a2b`` translator, ``b`` the ``b2a`` one. ``None`` skips the
            output check.
        log: where messages go (besides ``warnings``).
        d_loss_floor: see :data:`D_LOSS_FLOOR`.
        window: see :data:`D_LOSS_WINDOW`.
        flat_std: see :data:`FLAT_STD`.

    Example:
        >>> monitor = CollapseMonitor((sample_a, sample_b), log=print)
        >>> model.fit(dataset, epochs=10, callbacks=[monitor])
    """

    def __init__(self, samples=None, log=print, d_loss_floor: float = D_LOSS_FLOOR,
                 window: int = D_LOSS_WINDOW, flat_std: float = FLAT_STD):
        super().__init__()
        self.samples = samples
        self.log = log
        self.d_loss_floor = d_loss_floor
        self.window = int(window)
        self.flat_std = flat_std
        self.low_steps: dict[str, int] = {}
        self.flat: set[str] = set()
        self.warned: list[str] = []
        self._previous: dict = {}

    def global_step(self) -> int:
        """The model's step count (restored on resume)."""
        return self.model.step

    def warn(self, message: str):
        self.warned.append(message)
        self.log(f"Warning: {message}")
        warnings.warn(message, CollapseWarning, stacklevel=2)

    def on_train_batch_end(self, batch, logs=None):
        logs = {k: v for k, v in (logs or {}).items() if D_LOSS_KEY.match(k)}
        if not logs:
            return
        values = step_values(batch, logs, self._previous)
        self._previous = logs
        for key, value in values.items():
            if not np.isfinite(value) or value >= self.d_loss_floor:
                self.low_steps[key] = 0
                continue
            self.low_steps[key] = self.low_steps.get(key, 0) + 1
            if self.low_steps[key] == self.window:
                self.warn(
                    f"step {self.global_step()}: {key} = {value:.2g} has stayed below "
                    f"{self.d_loss_floor:g} for {self.window} steps: the discriminator "
                    "tells every fake from every real image and the generator gets no "
                    "useful gradient. Try a lower learning rate (train.lr), a weaker "
                    "discriminator (model.d_layers, model.d_base_filters) or "
                    "model.gan_mode = 'lsgan'; check the data (are both sides the same "
                    "size and colour range? is one side blank or corrupt?); resume from a "
                    "checkpoint saved before this step.")

    def on_epoch_begin(self, epoch, logs=None):
        self._previous = {}

    def on_epoch_end(self, epoch, logs=None):
        if self.samples is None:
            return
        for direction, out in self.model.sample_outputs(*self.samples).items():
            out = np.asarray(out, dtype=np.float32)
            std = float(out.reshape(len(out), -1).std(axis=1).mean())
            if std >= self.flat_std:
                self.flat.discard(direction)
                continue
            if direction in self.flat:
                continue
            self.flat.add(direction)
            self.warn(
                f"step {self.global_step()}: the {direction} outputs on the held-back "
                f"samples are flat (pixel std {std:.4f} < {self.flat_std:g}, in [-1, 1] "
                "units): the generator has collapsed to a near-constant image. Check the "
                "data first (a blank, constant or wrongly scaled target side gives this), "
                "then try a lower learning rate (train.lr) or a weaker discriminator, and "
                "resume from a checkpoint saved before the collapse.")
