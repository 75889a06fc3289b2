"""CycleGAN through the whole spine: recipe -> fit -> resume -> both translators."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import tiny_cyclegan_recipe
from PIL import Image

import kstyle
from kstyle.cli import main
from kstyle.errors import ModelLoadError, RecipeError
from kstyle.recipes import load_recipe
from kstyle.train import fit

QUIET = {"verbose": 0, "log": lambda *_: None}


class StopAt(keras.callbacks.Callback):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.g_optimizer.iterations.numpy()) == self.step:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    recipe = tiny_cyclegan_recipe(tmp_path_factory.mktemp("cg"))
    first = fit(recipe, callbacks=[StopAt(4)], **QUIET)
    assert first.interrupted and first.step == 4
    second = fit(recipe, **QUIET)
    assert second.resumed_from == 4 and second.step == 6
    return second


def test_run_has_both_translators_and_unpaired_samples(cyclegan_run):
    run = cyclegan_run.run_dir
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "cyclegan" and info["size_multiple"] == 4
    assert info["translators"] == {"a2b": "translator.keras", "b2a": "translator_b2a.keras"}
    grid = Image.open(run / "samples" / "epoch_0002.png")
    assert grid.size[0] > 6 * 32  # six columns: real, fake, cycled for both domains
    header = (run / "epochs.csv").read_text().splitlines()[0]
    for key in ("cycle_loss", "identity_loss", "d_a_loss", "d_b_loss", "val_cycle_l1"):
        assert key in header


def test_pools_and_optimizers_are_restored(cyclegan_run):
    ckpt = sorted((cyclegan_run.run_dir / "checkpoints").iterdir())[-1]
    assert (ckpt / "pools.weights.h5").is_file()
    slots = np.load(ckpt / "optimizers.npz")
    assert any(k.startswith("generators/") for k in slots.files)
    assert any(k.startswith("discriminators/") for k in slots.files)


def test_both_directions_from_api_and_cli(cyclegan_run, tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (30, 42, 3), np.uint8)
    a2b = kstyle.stylize(image, model=cyclegan_run.run_dir)
    b2a = kstyle.stylize(image, model=cyclegan_run.run_dir, direction="b2a")
    assert a2b.shape == b2a.shape == (30, 42, 3)
    assert not np.array_equal(a2b, b2a)
    src = tmp_path / "x.png"
    Image.fromarray(image).save(src)
    result = CliRunner().invoke(main, ["stylize", str(src), "--model",
                                       str(cyclegan_run.run_dir), "--direction", "b2a",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o" / "x.png")), b2a)


def test_pix2pix_run_has_no_b2a(tiny_run):
    with pytest.raises(ModelLoadError, match="no 'b2a' translator; this run has: a2b"):
        kstyle.load(tiny_run, direction="b2a")


def test_cyclegan_refuses_paired_sources(tmp_path):
    with pytest.raises(RecipeError, match="data.source = 'ab' gives pairs"):
        tiny_cyclegan_recipe(tmp_path, "data.source=ab", f'data.path="{tmp_path}"')


def test_shipped_cyclegan_recipe_has_reference_settings():
    r = load_recipe("recipes/cyclegan.toml")
    m = r.model
    assert (m.kind, m.num_blocks, m.gan_mode, m.lambda_cycle, m.lambda_identity,
            m.pool_size) == ("cyclegan", 9, "lsgan", 10.0, 0.5, 50)
    assert (r.train.lr, r.train.beta_1, r.train.epochs, r.train.decay_start_epoch) == (
        2e-4, 0.5, 200, 100)
    assert r.data.path == "cycle_gan/horse2zebra" and r.data.source == "tfds"
