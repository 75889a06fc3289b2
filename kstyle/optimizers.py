"""Optimizers: Adam with a fused update kernel on the TensorFlow backend."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="kstyle")
class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose per-variable update is one fused TensorFlow kernel.

    The math is Keras' Adam exactly (``m``, ``v`` and the bias-corrected step size), but the
    update runs as ``ResourceApplyAdam``, which reads and writes each variable and its two
    slots once instead of through a chain of element-wise ops: on CPUs, where the update
    of pix2pix's 54 M-parameter U-Net is a large share of a step, it takes a fraction of
    the time (bench/README.md). Slots, checkpoints and configs are those of
    ``keras.optimizers.Adam``; other backends and ``amsgrad`` use Keras' own update.

    Args:
        Those of ``keras.optimizers.Adam``.

    Example:
        >>> opt = FusedAdam(2e-4, beta_1=0.5)

    Reference:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    """

    def update_step(self, gradient, variable, learning_rate):
        if keras.backend.backend() != "tensorflow" or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle,
            **self._scalars(variable.dtype, learning_rate),
            grad=ops.cast(gradient, variable.dtype))

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # The step's scalars (beta powers, learning rate, epsilon) are computed once per
        # dtype and update, not once per variable: a traced CycleGAN step had about 700
        # ops of them.
        self._scalar_cache = {}
        try:
            super()._backend_update_step(grads, trainable_variables, learning_rate)
        finally:
            self._scalar_cache = None

    def _scalars(self, dtype, learning_rate) -> dict:
        cache = getattr(self, "_scalar_cache", None)
        key = (dtype, id(learning_rate))
        if cache is not None and key in cache:
            return cache[key]
        local_step = ops.cast(self.iterations + 1, dtype)
        beta_1 = ops.cast(self.beta_1, dtype)
        beta_2 = ops.cast(self.beta_2, dtype)
        scalars = dict(
            beta1_power=ops.power(beta_1, local_step), beta2_power=ops.power(beta_2, local_step),
            lr=ops.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=ops.cast(self.epsilon, dtype))
        if cache is not None:
            cache[key] = scalars
        return scalars


@keras.saving.register_keras_serializable(package="kstyle")
class CountingLossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
    """``keras.optimizers.LossScaleOptimizer`` whose ``iterations`` counts every step.

    Keras' loss-scale optimizer skips the update of a step whose scaled gradients overflow,
    and its ``iterations`` (the inner optimizer's) does not count that step. kstyle's runs
    take the step count from ``iterations`` for checkpoints, resuming and logs, so this one
    counts all the steps it was given; the inner optimizer's count (the updates applied)
    still drives its learning-rate schedule.

    Args:
        Those of ``keras.optimizers.LossScaleOptimizer``.
    """

    def build(self, var_list):
        self.steps_taken = self.add_variable(shape=(), dtype="int", initializer="zeros",
                                             aggregation="none", name="steps_taken")
        super().build(var_list)

    def apply(self, grads, trainable_variables=None):
        super().apply(grads, trainable_variables)
        self.steps_taken.assign_add(1)

    @property
    def iterations(self):
        return self.steps_taken if self.built else self.inner_optimizer.iterations


def apply_gradients(optimizer, tape, loss, variables) -> None:
    """Applies ``optimizer`` to the gradients of ``loss`` that ``tape`` recorded.

    Under ``mixed_float16`` the optimizer is a ``keras.optimizers.LossScaleOptimizer``:
    the backward pass then starts from the loss scale instead of 1 (the gradients of
    ``scale * loss``, without float16 underflow), and the optimizer unscales them (and skips
    the step on overflow).

    Under a ``tf.distribute`` strategy with N replicas, each replica's loss is the mean over
    its share of the batch and the optimizer sums the replicas' gradients: the backward
    pass starts from 1 / N, which makes the sum the gradient of the mean over the global
    batch, as on one device.

    Args:
        optimizer: a Keras optimizer, built for ``variables``.
        tape: the ``tf.GradientTape`` that recorded ``loss``.
        loss: a scalar tensor.
        variables: the trainable variables to update.
    """
    scale = None
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        scale = ops.cast(optimizer.scale_loss(1.0), loss.dtype)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        scale = (1.0 if scale is None else scale) / ops.cast(replicas, loss.dtype)
    optimizer.apply(tape.gradient(loss, variables, output_gradients=scale), variables)
