"""Learning-rate schedules that follow epochs, driven by the optimizer's step counter.

Because the schedule is a pure function of ``optimizer.iterations``, a resumed run gets the
right learning rate from its restored optimizer with nothing else to save.
"""

from __future__ import annotations

import keras
from keras import ops

POLICIES = ("constant", "linear_decay", "step")


@keras.saving.register_keras_serializable(package="kstyle")
class EpochSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate as a function of the epoch, computed from the global step.

    Policies:
        constant: ``lr`` throughout.
        linear_decay: ``lr`` for ``decay_start_epoch`` epochs, then linearly towards 0 over
            the remaining ``epochs - decay_start_epoch`` epochs. With 0-based epoch ``e``,
            ``lr * (1 - max(0, e + 1 - decay_start_epoch) / (epochs - decay_start_epoch + 1))``,
            the rule of the pix2pix/CycleGAN reference implementation.
        step: ``lr * step_gamma ** (e // step_epochs)`` (e.g. halved after 50 epochs).

    Args:
        lr: initial learning rate.
        steps_per_epoch: optimizer steps in one epoch.
        policy: one of ``POLICIES``.
        epochs: total epochs (linear_decay).
        decay_start_epoch: epochs at ``lr`` before the decay (linear_decay).
        step_epochs: epochs between drops (step).
        step_gamma: factor of each drop (step).

    Example:
        >>> sched = EpochSchedule(2e-4, steps_per_epoch=400, policy="linear_decay",
        ...                       epochs=200, decay_start_epoch=100)
        >>> opt = keras.optimizers.Adam(sched, beta_1=0.5)

    Reference:
        Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
        Networks", ICCV 2017 (the schedule of its public implementation).
    """

    def __init__(self, lr, steps_per_epoch, policy="constant", epochs=1, decay_start_epoch=0,
                 step_epochs=1, step_gamma=0.5):
        if policy not in POLICIES:
            raise ValueError(f"unknown lr policy {policy!r}; valid: {', '.join(POLICIES)}")
        self.lr = float(lr)
        self.steps_per_epoch = int(steps_per_epoch)
        self.policy = policy
        self.epochs = int(epochs)
        self.decay_start_epoch = int(decay_start_epoch)
        self.step_epochs = int(step_epochs)
        self.step_gamma = float(step_gamma)

    def epoch_factor(self, epoch):
        """The multiplier of ``lr`` in 0-based epoch ``epoch`` (a tensor or a number)."""
        epoch = ops.cast(epoch, "float32")
        if self.policy == "linear_decay":
            span = float(max(self.epochs - self.decay_start_epoch, 0) + 1)
            return 1.0 - ops.maximum(0.0, epoch + 1.0 - self.decay_start_epoch) / span
        if self.policy == "step":
            return ops.power(self.step_gamma, ops.floor(epoch / float(self.step_epochs)))
        return ops.ones_like(epoch)

    def __call__(self, step):
        epoch = ops.floor(ops.cast(step, "float32") / float(self.steps_per_epoch))
        return self.lr * ops.maximum(self.epoch_factor(epoch), 0.0)

    def get_config(self):
        return {
            "lr": self.lr, "steps_per_epoch": self.steps_per_epoch, "policy": self.policy,
            "epochs": self.epochs, "decay_start_epoch": self.decay_start_epoch,
            "step_epochs": self.step_epochs, "step_gamma": self.step_gamma,
        }
