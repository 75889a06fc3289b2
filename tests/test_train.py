"""Training end to end on tiny models: outputs, learning, resume after interruption."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_recipe

from kstyle import runs
from kstyle.data import synthetic_pairs, to_float
from kstyle.errors import RecipeError
from kstyle.models import MODELS, Pix2Pix, get_model_class
from kstyle.train import Run, fit
from kstyle.training.schedules import EpochSchedule

QUIET = {"verbose": 0, "log": lambda *_: None}


def checkpoint_steps(run_dir) -> list[int]:
    """The steps of a run's complete checkpoints, oldest first, as a resume would see them."""
    from kstyle.training.checkpoints import Checkpointer

    return [json.loads((p / "state.json").read_text())["step"]
            for p in Checkpointer(None, Path(run_dir) / "checkpoints").all()]


def test_run_folder_has_every_output(tiny_run):
    for name in ("recipe.toml", "run.json", "translator.keras", "epochs.csv", "steps.csv",
                 "losses.png", "samples/epoch_0001.png", "samples/epoch_0002.png"):
        assert (tiny_run / name).is_file(), name
    info = json.loads((tiny_run / "run.json").read_text())
    assert info["kind"] == "pix2pix" and info["step"] == 8 and info["epoch"] == 2
    assert info["size_multiple"] == 32 and info["value_range"] == [-1.0, 1.0]
    # The last two checkpoints are kept: step 6 (every 3 steps) and step 8 (epoch end).
    assert checkpoint_steps(tiny_run) == [6, 8]
    assert list((tiny_run / "logs").rglob("events.out.tfevents.*"))
    epochs = (tiny_run / "epochs.csv").read_text().splitlines()
    assert epochs[0].split(",")[:2] == ["epoch", "d_loss"] and len(epochs) == 3
    assert "val_l1" in epochs[0]
    assert not list(tiny_run.rglob("*.tmp*")), "temporary files left behind"


def test_a_few_steps_on_a_fixed_set_reduce_l1():
    keras.utils.set_random_seed(1)
    a, b = (to_float(x) for x in synthetic_pairs(4, 32, seed=3))
    model = Pix2Pix.build_from_options(base_filters=8, num_downs=5, d_base_filters=8,
                                       d_layers=2, norm="instance", dropout=0.0)
    model.compile(g_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5),
                  d_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5))
    before = float(tf.reduce_mean(tf.abs(model.generator(a) - b)))
    ds = tf.data.Dataset.from_tensors((a, b)).repeat()
    model.fit(ds, steps_per_epoch=40, epochs=1, verbose=0)
    after = float(tf.reduce_mean(tf.abs(model.generator(a) - b)))
    assert after < 0.7 * before, (before, after)


@pytest.mark.slow
def test_train_step_runs_under_xla():
    a, b = (to_float(x) for x in synthetic_pairs(2, 32, seed=0))
    model = Pix2Pix.build_from_options(base_filters=4, num_downs=5, d_base_filters=4,
                                       d_layers=2, gan_mode="lsgan")
    model.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(
        1e-3), jit_compile=True)
    logs = model.fit(tf.data.Dataset.from_tensors((a, b)).repeat(), steps_per_epoch=2,
                     epochs=1, verbose=0).history
    assert set(logs) == {"g_loss", "g_gan_loss", "g_l1_loss", "d_loss"}
    assert all(np.isfinite(v[-1]) for v in logs.values())


class StopAt(keras.callbacks.Callback):
    """Raises ``error`` once the optimizer reaches ``step``."""

    def __init__(self, step, error):
        super().__init__()
        self.step, self.error = step, error

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.g_optimizer.iterations.numpy()) == self.step:
            raise self.error


def weights_of(run_dir, step):
    model = Pix2Pix.build_from_options(base_filters=8, num_downs=5, d_base_filters=8,
                                       d_layers=2, norm="instance")
    model.generator.load_weights(run_dir / "checkpoints" / f"step_{step:08d}" /
                                 "generator.weights.h5")
    return [w.numpy() for w in model.generator.weights]


def test_ctrl_c_saves_then_rerun_resumes_at_that_step(tmp_path):
    recipe = tiny_recipe(tmp_path)
    first = fit(recipe, callbacks=[StopAt(6, KeyboardInterrupt())], **QUIET)
    assert first.interrupted and first.step == 6
    saved = weights_of(first.run_dir, 6)

    seen = []

    class FirstStep(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(int(self.model.g_optimizer.iterations.numpy()))
            seen.append([w.numpy() for w in self.model.generator.weights])

    second = fit(recipe, callbacks=[FirstStep()], **QUIET)
    assert second.resumed_from == 6 and second.step == 8 and second.epoch == 2
    assert seen[0] == 6
    for restored, expected in zip(seen[1], saved):
        np.testing.assert_array_equal(restored, expected)
    steps = [int(line.split(",")[0]) for line in
             (first.run_dir / "steps.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps)), "step log has repeated steps after resume"


def test_crash_without_saving_resumes_from_last_periodic_checkpoint(tmp_path):
    recipe = tiny_recipe(tmp_path, "train.checkpoint_every=2")
    with pytest.raises(RuntimeError):
        fit(recipe, callbacks=[StopAt(5, RuntimeError("power cut"))], **QUIET)
    # Checkpoints at steps 2 and 4 (every 2), the epoch end at 4; nothing for step 5.
    assert checkpoint_steps(recipe.run_dir) == [2, 4]
    result = fit(recipe, **QUIET)
    assert result.resumed_from == 4 and result.step == 8


def test_finished_run_is_not_trained_again(tiny_run):
    from kstyle.recipes import load_recipe

    result = fit(load_recipe(tiny_run / "recipe.toml"), **QUIET)
    assert result.resumed_from == 8 and result.step == 8


def test_fit_says_which_side_is_input_and_which_target(tmp_path):
    # A recipe written for one AB set (pix2pix.toml's b2a, for the facades) would otherwise
    # silently train the opposite mapping on another.
    lines = []
    fit(tiny_recipe(tmp_path, "train.epochs=1", "train.steps_per_epoch=1",
                    "data.direction=b2a"), verbose=0, log=lines.append)
    said = [line for line in lines if line.startswith("Pairs: ")]
    assert said == ["Pairs: input = rendered photo, target = label map of the built-in "
                    "synthetic pairs (data.direction = b2a)"]


def test_resume_with_a_different_model_is_refused(tmp_path):
    fit(tiny_recipe(tmp_path, "train.epochs=1", "train.steps_per_epoch=1"), **QUIET)
    with pytest.raises(RecipeError, match=r"model.base_filters: 8 -> 16"):
        fit(tiny_recipe(tmp_path, "model.base_filters=16"), **QUIET)


@pytest.mark.slow
def test_reload_in_a_fresh_process_gives_identical_output(tiny_run, tmp_path):
    import kstyle

    # A U-Net deep enough to hold kstyle's own Dropout layers, beside the tiny run's.
    deep = Pix2Pix.build_from_options(base_filters=4, num_downs=7, d_base_filters=4,
                                      d_layers=2)
    assert any(type(layer).__module__.startswith("kstyle") for layer in deep.generator.layers)
    deep.generator.save(tmp_path / "deep.keras")
    image = synthetic_pairs(1, 45, seed=9)[0][0]
    for model in (tiny_run, tmp_path / "deep.keras"):
        here = kstyle.stylize(image, model=model)
        np.save(tmp_path / "in.npy", image)
        code = ("import sys, numpy as np, kstyle; "
                "x = np.load(sys.argv[1]); "
                "np.save(sys.argv[2], kstyle.stylize(x, model=sys.argv[3]))")
        subprocess.run([sys.executable, "-c", code, str(tmp_path / "in.npy"),
                        str(tmp_path / "out.npy"), str(model)], check=True)
        np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), here)


@pytest.mark.parametrize("policy, epoch, expected", [
    ("constant", 150, 1.0),
    ("linear_decay", 0, 1.0), ("linear_decay", 99, 1.0),
    ("linear_decay", 100, 1 - 1 / 101), ("linear_decay", 199, 1 - 100 / 101),
    ("step", 49, 1.0), ("step", 50, 0.5), ("step", 100, 0.25),
])
def test_epoch_schedule(policy, epoch, expected):
    sched = EpochSchedule(2e-4, steps_per_epoch=10, policy=policy, epochs=200,
                          decay_start_epoch=100, step_epochs=50, step_gamma=0.5)
    assert float(sched(epoch * 10 + 9)) == pytest.approx(2e-4 * expected, rel=1e-6)


def test_registry_lists_valid_kinds():
    assert MODELS["pix2pix"] is Pix2Pix
    with pytest.raises(ValueError, match="valid kinds: adain, cdae, cut, cyclegan, "
                                         "fast_style, fastcut, pix2pix"):
        get_model_class("pix3pix")


def test_translator_file_is_atomic_and_loads_safely(tiny_run):
    net = keras.saving.load_model(tiny_run / runs.TRANSLATOR_FILE, safe_mode=True)
    assert net.output_shape == (None, None, None, 3)


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_resumes_and_saves_float32(tmp_path, precision):
    recipe = tiny_recipe(tmp_path, f"train.precision={precision}", "train.epochs=1")
    run = Run(recipe, log=lambda *_: None)
    compute = {layer.dtype_policy.compute_dtype for layer in run.model.generator.layers
               if layer.weights}
    assert compute == {precision.removeprefix("mixed_")}
    assert run.model.generator.output.dtype == "float32"
    first = run.fit(verbose=0)
    assert np.isfinite(first.logs["g_loss"])
    # The saved translator computes in float32; training goes on from the checkpoint.
    net = keras.saving.load_model(first.run_dir / runs.TRANSLATOR_FILE, safe_mode=True)
    assert {layer.dtype_policy.name for layer in net.layers} == {"float32"}
    second = fit(tiny_recipe(tmp_path, f"train.precision={precision}"), verbose=0,
                 log=lambda *_: None)
    assert second.resumed_from == 4 and second.step == 8
    assert keras.config.dtype_policy().name == "float32"


def test_jit_compile_auto_is_off_without_a_gpu():
    from kstyle.training.builders import resolve_jit

    assert resolve_jit("auto") is bool(tf.config.list_physical_devices("GPU"))
    assert resolve_jit(True) is True and resolve_jit(False) is False


def test_a_non_finite_step_stops_training_before_anything_is_saved(tmp_path):
    from kstyle.errors import TrainingDivergedError

    run = Run(tiny_recipe(tmp_path), log=lambda *_: None)
    original = run.model.train_step

    def diverging(data):
        # From step 5 on the losses come out NaN, as they would after a blow-up.
        logs = original(data)
        late = run.model.g_optimizer.iterations > 4
        return {k: tf.where(late, float("nan"), v) for k, v in logs.items()}

    run.model.train_step = diverging
    with pytest.raises(TrainingDivergedError, match=r"step 5: .*nan") as error:
        run.fit(verbose=0)
    assert "train.lr" in str(error.value) and str(run.checkpointer.latest()) in str(error.value)
    # Checkpoints stop at the last good step (4, the end of epoch 1); the translator saved
    # then is the only one; nothing was written for step 5.
    assert checkpoint_steps(run.dir) == [3, 4]
    assert runs.read_run_info(run.dir)["step"] == 4
    resumed = fit(tiny_recipe(tmp_path), verbose=0, log=lambda *_: None)
    assert resumed.resumed_from == 4 and resumed.step == 8


def test_pix2pix_config_round_trip_computes_the_same():
    model = Pix2Pix.build_from_options(base_filters=4, num_downs=5, d_base_filters=4,
                                       d_layers=2, gan_mode="lsgan", lambda_l1=7.0)
    clone = Pix2Pix.from_config(model.get_config())
    assert (clone.gan_mode, clone.lambda_l1, clone.size_multiple) == ("lsgan", 7.0, 32)
    for net, copy in ((model.generator, clone.generator),
                      (model.discriminator, clone.discriminator)):
        copy.set_weights(net.get_weights())
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(clone(x), model(x), atol=1e-6)
