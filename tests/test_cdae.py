"""Tests of the cross-domain autoencoder GAN: its objective, training, saving, the spine."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_cdae_recipe
from PIL import Image

import kstyle
from kstyle.data import derive_gray, synthetic_pairs, to_float
from kstyle.errors import RecipeError
from kstyle.models import CDAE, get_model_class
from kstyle.models.cdae_options import CDAEOptions
from kstyle.optimizers import FusedAdam
from kstyle.recipes import load_recipe
from kstyle.train import Run, fit
from kstyle.training.builders import input_transforms

TINY = {"base_filters": 8, "num_downs": 5, "d_base_filters": 8, "d_layers": 2}
QUIET = {"verbose": 0, "log": lambda *_: None}
LOGS = {"g_loss", "g_ab_loss", "g_ba_loss", "target_loss", "recon_loss", "d_a_loss",
        "d_b_loss"}


def trainable_params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def gray_color_pairs(count=2, size=32, seed=0):
    """A fixed batch of (gray, color) pairs in [-1, 1], as the photos source derives them."""
    _, photos = synthetic_pairs(count, size, seed=seed)
    gray, color = derive_gray(to_float(photos))
    return gray.numpy(), color.numpy()


def compiled(lr=2e-3, jit_compile=False, **options):
    model = CDAE.build_from_options(**{**TINY, **options})
    model.compile(g_optimizer=FusedAdam(lr, beta_1=0.5), d_optimizer=FusedAdam(lr, beta_1=0.5),
                  jit_compile=jit_compile)
    return model


def repeat(a, b):
    return tf.data.Dataset.from_tensors((a, b)).repeat()


def objective_by_hand(model, a, b):
    """Every logged term of the docstring's objective, recomputed in NumPy (LSGAN)."""
    def run(net, x):
        return np.asarray(net(x, training=True), dtype=np.float64)

    def l1(x, y):
        return np.mean(np.abs(x - y))

    fake_b, fake_a = run(model.generator_ab, a), run(model.generator_ba, b)
    recon_a, recon_b = run(model.generator_ba, fake_b), run(model.generator_ab, fake_a)
    d_a_real, d_a_fake = run(model.discriminator_a, a), run(model.discriminator_a, fake_a)
    d_b_real, d_b_fake = run(model.discriminator_b, b), run(model.discriminator_b, fake_b)
    terms = {
        "g_ab_loss": np.mean((d_b_fake - 1) ** 2),
        "g_ba_loss": np.mean((d_a_fake - 1) ** 2),
        "target_loss": l1(fake_b, b) + l1(fake_a, a),
        "recon_loss": l1(recon_a, a) + l1(recon_b, b),
        "d_a_loss": 0.5 * (np.mean((d_a_real - 1) ** 2) + np.mean(d_a_fake**2)),
        "d_b_loss": 0.5 * (np.mean((d_b_real - 1) ** 2) + np.mean(d_b_fake**2)),
    }
    terms["g_loss"] = (terms["g_ab_loss"] + terms["g_ba_loss"]
                       + model.lambda_target * terms["target_loss"]
                       + model.lambda_recon * terms["recon_loss"])
    return terms


# --------------------------------------------------------------------------------- model

def test_networks_and_registry():
    model = CDAE.build_from_options(**TINY)
    assert get_model_class("cdae") is CDAE
    assert (CDAE.data_kind, CDAE.val_metric, model.size_multiple) == ("paired", "l1", 32)
    assert model.translator is model.generator_ab
    assert model.translators == {"a2b": model.generator_ab, "b2a": model.generator_ba}
    assert [n.name for n in model.networks.values()] == list(model.networks)
    # Plain autoencoders by default; the discriminators score 3-channel images.
    assert not [x for x in model.generator_ab.layers if isinstance(x, keras.layers.Concatenate)]
    assert model.discriminator_a.input_shape[-1] == model.discriminator_b.input_shape[-1] == 3
    unet = CDAE.build_from_options(**TINY, skips=True)
    assert trainable_params(unet.generator_ab) > trainable_params(model.generator_ab)
    assert trainable_params(unet.discriminator_a) == trainable_params(model.discriminator_a)


@pytest.mark.slow
def test_one_step_logs_the_objective_and_training_reduces_it():
    keras.utils.set_random_seed(1)
    a, b = gray_color_pairs(seed=3)
    model = compiled(lr=2e-3, lambda_target=20.0, lambda_recon=3.0)
    before = objective_by_hand(model, a, b)  # the weights the first step uses
    logs = {k: v[-1] for k, v in model.fit(
        repeat(a, b), steps_per_epoch=1, epochs=1, verbose=0).history.items()}
    assert set(logs) == LOGS
    for key, value in before.items():
        assert logs[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    # The total is exactly the weighted sum of the logged terms.
    assert logs["g_loss"] == pytest.approx(
        logs["g_ab_loss"] + logs["g_ba_loss"] + 20.0 * logs["target_loss"]
        + 3.0 * logs["recon_loss"], rel=1e-5)

    model.fit(repeat(a, b), steps_per_epoch=29, epochs=1, verbose=0)
    after = objective_by_hand(model, a, b)
    assert after["target_loss"] < 0.5 * before["target_loss"], (before, after)
    assert after["recon_loss"] < 0.5 * before["recon_loss"], (before, after)
    # Evaluation: l1 is the a -> b direction only, |G_ab(a) - b|; l1_b2a the other.
    val = model.evaluate(tf.data.Dataset.from_tensors((a, b)), verbose=0, return_dict=True)
    assert set(val) == {"l1", "l1_b2a"}
    fake_b = np.asarray(model.generator_ab(a, training=False))
    fake_a = np.asarray(model.generator_ba(b, training=False))
    assert val["l1"] == pytest.approx(np.mean(np.abs(fake_b - b)), rel=1e-5)
    assert val["l1_b2a"] == pytest.approx(np.mean(np.abs(fake_a - a)), rel=1e-5)


@pytest.mark.slow
def test_train_step_runs_under_xla():
    a, b = gray_color_pairs()
    model = compiled(jit_compile=True, base_filters=4)
    logs = model.fit(repeat(a, b), steps_per_epoch=2, epochs=1, verbose=0).history
    assert set(logs) == LOGS
    assert all(np.isfinite(v[-1]) for v in logs.values())
    assert int(model.g_optimizer.iterations.numpy()) == 2


@pytest.mark.parametrize("skips", [False, True])
def test_generators_reload_safely_with_identical_outputs(tmp_path, skips):
    a, b = gray_color_pairs()
    model = CDAE.build_from_options(**TINY, skips=skips)
    for direction, net in model.translators.items():
        x = a if direction == "a2b" else b
        path = tmp_path / f"{direction}.keras"
        net.save(path)
        reloaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_array_equal(np.asarray(reloaded(x, training=False)),
                                      np.asarray(net(x, training=False)))


def test_config_round_trip_and_option_errors():
    model = CDAE.build_from_options(**TINY, gan_mode="hinge", lambda_target=5.0,
                                    lambda_recon=0.5)
    clone = CDAE.from_config(model.get_config())
    assert (clone.gan_mode, clone.lambda_target, clone.lambda_recon, clone.size_multiple) == (
        "hinge", 5.0, 0.5, 32)
    assert trainable_params(clone.generator_ba) == trainable_params(model.generator_ba)
    with pytest.raises(ValueError, match="valid modes"):
        CDAE.build_from_options(**TINY, gan_mode="wgan")
    with pytest.raises(ValueError, match="num_downs"):
        CDAE.build_from_options(**{**TINY, "num_downs": 4})


# ------------------------------------------------------------------------- through fit()

@pytest.fixture(scope="module")
def cdae_run(tmp_path_factory):
    return fit(tiny_cdae_recipe(tmp_path_factory.mktemp("cdae")), **QUIET)


def test_fit_writes_both_translators_and_logs(cdae_run):
    run = cdae_run.run_dir
    assert cdae_run.step == 6
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "cdae" and info["size_multiple"] == 32
    assert info["translators"] == {"a2b": "translator.keras", "b2a": "translator_b2a.keras"}
    # Gray inputs are derived for the colorizer only; the b2a translator reads color.
    assert info["input_transforms"] == {"a2b": "gray", "b2a": "none"}
    header = (run / "epochs.csv").read_text().splitlines()[0]
    for key in ("target_loss", "recon_loss", "d_a_loss", "d_b_loss", "val_l1", "val_l1_b2a"):
        assert key in header
    grid = Image.open(run / "samples" / "epoch_0002.png")
    assert grid.size[0] > 5 * 32  # real_a, fake_b, real_b, fake_a, recon_a


def test_stylize_both_directions(cdae_run):
    run = cdae_run.run_dir
    assert kstyle.load(run).input_transform == "gray"
    assert kstyle.load(run, direction="b2a").input_transform == "none"
    assert kstyle.load(run / "translator_b2a.keras").input_transform == "none"
    image = np.random.default_rng(0).integers(0, 256, (30, 42, 3), np.uint8)
    a2b = kstyle.stylize(image, model=run)
    b2a = kstyle.stylize(image, model=run, direction="b2a")
    assert a2b.shape == b2a.shape == (30, 42, 3)
    assert not np.array_equal(a2b, b2a)


def test_input_transforms_follow_the_data_direction(tmp_path):
    run = Run(tiny_cdae_recipe(tmp_path, "data.direction=b2a"), log=lambda *_: None)
    assert input_transforms(run.recipe, run.model) == {"a2b": "none", "b2a": "gray"}


def test_recipe_checks_the_size_multiple(tmp_path):
    with pytest.raises(RecipeError, match=r"multiple of 2\*\*model.num_downs = 64"):
        tiny_cdae_recipe(tmp_path, "model.num_downs=6")


def test_shipped_recipes():
    paper = load_recipe("recipes/cdae_paper.toml")
    m, t, d = paper.model, paper.train, paper.data
    assert isinstance(m, CDAEOptions)
    assert (m.kind, m.num_downs, m.skips, m.norm, m.gan_mode) == (
        "cdae", 8, False, "instance", "lsgan")
    assert (t.lr, t.beta_1, t.beta_2, t.lr_policy, t.step_epochs, t.step_gamma, t.epochs) == (
        0.005, 0.9, 0.999, "step", 50, 0.5, 100)
    assert (d.source, d.path, d.derive, d.direction, d.image_size, d.load_size,
            d.batch_size) == ("tfds", "tf_flowers", "gray", "a2b", 256, 286, 1)
    colorize = load_recipe("recipes/colorize.toml")
    assert colorize.model.kind == "cdae" and colorize.data.derive == "gray"
    assert colorize.data.image_size % 2**colorize.model.num_downs == 0
