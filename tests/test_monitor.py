"""Collapse warnings: a discriminator loss stuck near 0, outputs gone flat."""

import functools
import types
import warnings

import keras
import numpy as np
import pytest
from conftest import tiny_recipe

from kstyle import train
from kstyle.models.base import TranslationModel
from kstyle.training import monitor
from kstyle.training.monitor import CollapseMonitor, CollapseWarning, step_values


def fake_model(translators=None):
    """What the monitor reads from a model: the step counter and the translators' outputs
    (as ``TranslationModel.sample_outputs`` gives them)."""
    model = types.SimpleNamespace(step=0, translators=translators or {})
    model.sample_outputs = functools.partial(TranslationModel.sample_outputs, model)
    return model


def feed(callback, per_step, steps_per_epoch=100):
    """Feeds per-step values of d_a_loss (and a healthy d_b_loss) as Keras logs them:
    means since the epoch began. Returns the messages logged."""
    logged = []
    callback.log = logged.append
    total = {}
    for i, value in enumerate(per_step):
        batch = i % steps_per_epoch
        if batch == 0:
            callback.on_epoch_begin(i // steps_per_epoch)
            total = {"d_a_loss": 0.0, "d_b_loss": 0.0}
        total["d_a_loss"] += value
        total["d_b_loss"] += 0.25
        callback.model.step = i + 1
        logs = {k: np.float32(v / (batch + 1)) for k, v in total.items()}
        logs["g_loss"] = np.float32(3.0)  # not a discriminator loss: never checked
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CollapseWarning)
            callback.on_train_batch_end(batch, logs)
    return logged


def monitor_on(model, **options):
    callback = CollapseMonitor(**options)
    callback.set_model(model)
    return callback


def test_per_step_values_come_back_from_epoch_means():
    steps = [0.5, 0.1, 2.0, 1e-4]
    means, previous, got = np.cumsum(steps) / np.arange(1, 5), {}, []
    for batch, mean in enumerate(means):
        logs = {"d_loss": np.float32(mean)}
        got.append(step_values(batch, logs, previous)["d_loss"])
        previous = logs
    np.testing.assert_allclose(got, steps, atol=1e-6)


def test_a_discriminator_loss_near_zero_for_the_window_warns_once_naming_the_step():
    callback = monitor_on(fake_model())
    # 150 healthy steps, then 0 for 300 (across two epoch boundaries, where the epoch
    # means are still far above the floor): the 200th low step is step 350.
    logged = feed(callback, [0.6] * 150 + [1e-5] * 300)
    assert len(logged) == 1, logged
    assert logged[0].startswith("Warning: step 350: d_a_loss = 1e-05 has stayed below "
                                "0.001 for 200 steps")
    for hint in ("train.lr", "model.d_layers", "check the data"):
        assert hint in logged[0]


def test_the_warning_comes_again_only_after_the_loss_recovered():
    callback = monitor_on(fake_model(), window=20)
    logged = feed(callback, [0.0] * 50 + [0.4] * 5 + [0.0] * 30)
    assert [m.split(":")[1] for m in logged] == [" step 20", " step 75"]


def test_healthy_logs_and_short_dips_give_no_warning():
    rng = np.random.default_rng(0)
    healthy = list(rng.uniform(0.2, 0.8, 400))
    healthy[100:150] = [1e-5] * 50  # a confident stretch, shorter than the window
    callback = monitor_on(fake_model())
    assert feed(callback, healthy) == []


def test_warnings_also_go_to_python_warnings():
    callback = monitor_on(fake_model(), window=3, log=lambda *_: None)
    with pytest.warns(CollapseWarning, match="step 3: d_loss"):
        for step in range(3):
            callback.model.step = step + 1
            callback.on_train_batch_end(step, {"d_loss": 0.0})


def constant_net(value):
    return keras.Sequential([
        keras.Input((None, None, 3)),
        keras.layers.Conv2D(3, 1, kernel_initializer="zeros",
                            bias_initializer=keras.initializers.Constant(value))])


def test_flat_outputs_warn_at_epoch_end_naming_direction_step_and_std():
    images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    nets = {"a2b": keras.Sequential([keras.Input((None, None, 3)), keras.layers.Identity()]),
            "b2a": constant_net(0.3)}
    model = fake_model(nets)
    logged = []
    callback = monitor_on(model, samples=(images, images), log=logged.append)
    model.step = 40
    with pytest.warns(CollapseWarning):
        callback.on_epoch_end(0)
    callback.on_epoch_end(1)  # still flat: the same episode, no second warning
    assert len(logged) == 1
    assert logged[0].startswith("Warning: step 40: the b2a outputs on the held-back "
                                "samples are flat (pixel std 0.0000 < 0.02")
    assert "Check the data" in logged[0]


def test_varied_outputs_and_missing_samples_give_no_warning():
    images = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    identity = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Identity()])
    logged = []
    monitor_on(fake_model({"a2b": identity}), samples=(images, None),
               log=logged.append).on_epoch_end(0)
    monitor_on(fake_model({"a2b": constant_net(0.0)}), samples=None,
               log=logged.append).on_epoch_end(0)
    assert logged == []


def test_fit_runs_the_monitor(tmp_path, monkeypatch):
    # Thresholds that anything crosses: the run's log gets both warnings, with steps.
    monkeypatch.setattr(train, "CollapseMonitor", functools.partial(
        monitor.CollapseMonitor, d_loss_floor=100.0, window=2, flat_std=100.0))
    logged = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapseWarning)
        train.fit(tiny_recipe(tmp_path, "train.epochs=1"), verbose=0,
                  log=lambda *a: logged.append(" ".join(map(str, a))))
    warned = [m for m in logged if m.startswith("Warning:")]
    assert warned[0].startswith("Warning: step 2: d_loss")
    assert warned[1].startswith("Warning: step 4: the a2b outputs")
