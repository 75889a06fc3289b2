"""FusedAdam matches Keras' Adam; the Philox dropout behaves like Keras' dropout."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kstyle.nets.layers import Dropout
from kstyle.optimizers import FusedAdam


def make_step(opt, variables, jit):
    return tf.function(lambda grads: opt.apply(grads, variables), jit_compile=jit)


SCHEDULE = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=1, decay_rate=0.5)


@pytest.mark.parametrize(("jit", "learning_rate"), [(False, 1e-2), (True, 1e-2),
                                                    (False, SCHEDULE)])
def test_fused_adam_matches_keras_adam(jit, learning_rate):
    rng = np.random.default_rng(0)
    start = [rng.normal(size=s).astype("float32") for s in [(3, 4), (4,), (2, 2, 3, 5)]]
    grads = [[tf.constant(rng.normal(size=x.shape).astype("float32")) for x in start]
             for _ in range(3)]
    results = []
    for cls in (keras.optimizers.Adam, FusedAdam):
        variables = [keras.Variable(x) for x in start]
        opt = cls(learning_rate=learning_rate, beta_1=0.5, beta_2=0.99, epsilon=1e-6)
        opt.build(variables)
        step = make_step(opt, variables, jit)
        for g in grads:
            step(g)
        results.append([v.numpy() for v in variables] + [s.numpy() for s in opt.variables])
    for keras_value, fused_value in zip(*results):
        np.testing.assert_allclose(fused_value, keras_value, rtol=1e-5, atol=1e-7)
    # The update really moved the weights.
    assert not np.allclose(results[1][0], start[0])


def test_fused_adam_computes_the_step_scalars_once_per_update():
    variables = [keras.Variable(np.ones(s, "float32")) for s in [(3, 4), (4,), (2, 5)]]
    opt = FusedAdam(1e-2)
    opt.build(variables)
    graph = make_step(opt, variables, False).get_concrete_function(
        [tf.TensorSpec(v.shape) for v in variables]).graph
    ops = [op.type for op in graph.get_operations()]
    assert ops.count("ResourceApplyAdam") == 3
    assert ops.count("Pow") == 2  # beta_1 and beta_2 to the step, shared by the three


def test_fused_adam_round_trips_its_config():
    opt = FusedAdam(3e-4, beta_1=0.5)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(again, FusedAdam) and again.beta_1 == 0.5


def test_dropout_drops_at_rate_and_scales_only_in_training():
    layer = Dropout(0.5, seed=1)
    x = tf.ones((1, 64, 64, 8))
    assert np.array_equal(layer(x, training=False), x)
    y = layer(x, training=True).numpy()
    assert set(np.unique(y)) == {0.0, 2.0}
    assert 0.45 < (y == 0).mean() < 0.55
    # A new mask each call.
    assert not np.array_equal(y, layer(x, training=True).numpy())
