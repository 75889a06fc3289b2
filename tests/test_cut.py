"""CUT and FastCUT: the PatchNCE loss by hand, shared patch positions, the whole spine."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kstyle
from kstyle.losses import l2_normalize, patch_nce_loss
from kstyle.models import CUT
from kstyle.recipes import load_recipe, recipe_from_dict
from kstyle.train import fit

QUIET = {"verbose": 0, "log": lambda *_: None}

TINY_CUT = [
    "model.kind=cut", "data.source=synthetic", "data.image_size=32", "data.load_size=36",
    "data.batch_size=2", "data.synthetic_count=8", "model.base_filters=4",
    "model.num_blocks=5", "model.d_base_filters=4", "model.d_layers=2",
    "model.num_patches=16", "model.head_units=8", "train.epochs=2",
    "train.steps_per_epoch=3", "train.checkpoint_every=2", "train.num_samples=2",
    "train.val_steps=1", "train.lr_policy=constant", "train.precision=float32",
    # The reference's xavier init (gain 0.02) starts from a near-constant output, which
    # three steps do not leave: the collapse check would say so.
    "model.init=normal",
]


def tiny_cut_recipe(tmp_path, *overrides, name="tiny_cut"):
    return recipe_from_dict({"name": name}, [*TINY_CUT, f'train.out_dir="{tmp_path / name}"',
                                             *overrides], source="tiny_cut.toml")


def by_hand(query, key, temperature):
    """PatchNCE as the paper writes it, one patch at a time, in float64."""
    query, key = np.asarray(query, np.float64), np.asarray(key, np.float64)
    losses = []
    for q_image, k_image in zip(query, key, strict=True):
        for i, q in enumerate(q_image):
            logits = [q @ k_image[i]] + [q @ k if j != i else -10.0
                                         for j, k in enumerate(k_image)]
            logits = np.array(logits) / temperature
            losses.append(np.log(np.exp(logits).sum()) - logits[0])
    return np.mean(losses)


def test_patch_nce_matches_the_formula_on_a_tiny_feature_map():
    rng = np.random.default_rng(0)
    query = l2_normalize(rng.normal(size=(2, 5, 4)).astype(np.float32)).numpy()
    key = l2_normalize(rng.normal(size=(2, 5, 4)).astype(np.float32)).numpy()
    for temperature in (0.07, 0.5, 1.0):
        np.testing.assert_allclose(float(patch_nce_loss(query, key, temperature)),
                                   by_hand(query, key, temperature), rtol=1e-5)
    # Two patches, query equal to key, T = 1: log(e + e^0 + e^-10) - 1.
    q = [[[1.0, 0.0], [0.0, 1.0]]]
    assert float(patch_nce_loss(q, q, 1.0)) == pytest.approx(
        np.log(np.e + 1.0 + np.exp(-10.0)) - 1.0, rel=1e-6)
    # Negatives come from the same image only: a second image changes nothing for the first.
    one = by_hand(query[:1], key[:1], 0.07)
    assert float(patch_nce_loss(query[:1], key[:1])) == pytest.approx(one, rel=1e-5)


def test_no_gradient_reaches_the_keys_and_the_head_normalizes_with_epsilon():
    query = tf.constant(np.random.default_rng(1).normal(size=(1, 3, 4)), tf.float32)
    key = tf.constant(np.random.default_rng(2).normal(size=(1, 3, 4)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([query, key])
        loss = patch_nce_loss(query, key)
    assert tape.gradient(loss, key) is None
    assert np.abs(tape.gradient(loss, query).numpy()).sum() > 0
    np.testing.assert_array_equal(l2_normalize(np.zeros((1, 3), np.float32)).numpy(), 0.0)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return CUT.build_from_options(base_filters=4, num_blocks=5, d_base_filters=4,
                                  num_patches=16, head_units=8)


def test_input_and_output_are_sampled_at_the_same_places_in_every_image(model, monkeypatch):
    import kstyle.models.cut as cut

    calls = []

    def spy(features, ids):
        calls.append((features.shape, ids.numpy()))
        return cut_sample(features, ids)

    cut_sample = cut.sample_patches
    monkeypatch.setattr(cut, "sample_patches", spy)
    x = tf.random.uniform((2, 32, 32, 3), -1, 1, seed=1)
    model.nce(x, model.generator(x))
    assert len(calls) == 2 * len(model.nce_layers)
    for (q_shape, q_ids), (k_shape, k_ids) in zip(calls[::2], calls[1::2], strict=True):
        assert q_shape == k_shape
        np.testing.assert_array_equal(q_ids, k_ids)  # one draw for output and input
        assert q_ids.ndim == 1 and len(set(q_ids)) == len(q_ids) == 16  # and the batch
    # Different layers draw their own places.
    assert not all(np.array_equal(calls[0][1], ids) for _, ids in calls[2::2])


def test_an_output_that_keeps_the_input_scores_better_than_a_scrambled_one(model):
    x = tf.random.uniform((2, 32, 32, 3), -1, 1, seed=2)
    same = float(model.nce(x, x, training=False))
    scrambled = float(model.nce(x, tf.roll(x, 11, axis=1), training=False))
    assert same < scrambled


def test_the_patch_nce_gradient_through_the_encoder_is_the_derivative(monkeypatch):
    # The gradient of PatchNCE with respect to the translation runs back through the
    # generator's encoder: instance norms, residual blocks, reflection pads. Along a random
    # direction it must be the loss's own rate of change (central differences), which a
    # backward that mishandles one layout of its incoming gradient is not (the PyTorch
    # reference's instance norm, bench/README.md).
    import kstyle.models.cut as cut

    def fixed_ids(features, num_patches):
        positions = int(features.shape[1]) * int(features.shape[2])
        order = np.random.default_rng(positions).permutation(positions)
        return tf.constant(order[:min(num_patches, positions)], tf.int32)

    monkeypatch.setattr(cut, "patch_ids", fixed_ids)
    keras.utils.set_random_seed(5)
    m = CUT.build_from_options(base_filters=8, num_blocks=2, d_base_filters=4,
                               nce_layers=["stem_pad", "down1_conv", "down2_conv",
                                           "block0_add", "block1_add"],
                               num_patches=32, head_units=16, init="normal")
    source = tf.random.uniform((1, 32, 32, 3), -1, 1, seed=6)
    target = tf.random.uniform((1, 32, 32, 3), -1, 1, seed=7)
    direction = tf.random.normal((1, 32, 32, 3), seed=8)
    for training in (True, False):
        with tf.GradientTape() as tape:
            tape.watch(target)
            loss = m.nce(source, target, training=training)
        slope = float(tf.reduce_sum(tape.gradient(loss, target) * direction))
        eps = 2e-4  # the loss bends fast (temperature 0.07): 1e-3 is 4% off the slope
        change = (float(m.nce(source, target + eps * direction, training=training))
                  - float(m.nce(source, target - eps * direction, training=training)))
        assert slope == pytest.approx(change / (2 * eps), rel=0.02), training


def test_flipped_outputs_are_compared_flipped_back():
    # On the padded input alone (reflection padding commutes with a flip) and every
    # position sampled (the loss is then the same whatever the draw), an output that is
    # the input flipped, made from the flipped input, scores as the input itself.
    keras.utils.set_random_seed(4)
    m = CUT.build_from_options(base_filters=4, num_blocks=1, nce_layers=["stem_pad"],
                               num_patches=256, head_units=8)
    x = tf.random.uniform((2, 8, 8, 3), -1, 1, seed=3)
    mirror = tf.reverse(x, [2])
    same = float(m.nce(x, x, training=False))
    assert float(m.nce(x, mirror, flipped=tf.constant(True), training=False)) == \
        pytest.approx(same, rel=1e-5)
    assert float(m.nce(x, mirror, flipped=tf.constant(False), training=False)) > same + 0.1


def test_the_reference_initialization():
    keras.utils.set_random_seed(3)
    m = CUT.build_from_options(base_filters=16, num_blocks=5, d_base_filters=16)
    conv = m.generator.get_layer("down2_conv").kernel.numpy()  # 3x3, 32 -> 64
    fans = 9 * 32 + 9 * 64
    assert np.std(conv) == pytest.approx(0.02 * np.sqrt(2.0 / fans), rel=0.1)
    assert np.all(m.generator.get_layer("down2_conv").bias.numpy() == 0)
    dense = m.head.first[1].kernel.numpy()  # 32 -> 256
    assert np.std(dense) == pytest.approx(0.02 * np.sqrt(2.0 / (32 + 256)), rel=0.1)
    normal = CUT.build_from_options(base_filters=16, num_blocks=5, init="normal")
    assert np.std(normal.generator.get_layer("down2_conv").kernel.numpy()) == pytest.approx(
        0.02, rel=0.1)


@pytest.fixture(scope="module")
def cut_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cut")
    return {kind: fit(tiny_cut_recipe(tmp, f"model.kind={kind}", name=kind), **QUIET)
            for kind in ("cut", "fastcut")}


def test_cut_and_fastcut_train_resume_and_stylize(cut_runs, tmp_path):
    for kind, result in cut_runs.items():
        info = json.loads((result.run_dir / "run.json").read_text())
        assert info["kind"] == kind and info["size_multiple"] == 4
        header = (result.run_dir / "epochs.csv").read_text().splitlines()[0]
        assert "nce_loss" in header and "val_nce" in header
        assert ("nce_idt_loss" in header) == (kind == "cut")
        image = np.random.default_rng(0).integers(0, 256, (30, 42, 3), np.uint8)
        out = kstyle.stylize(image, model=result.run_dir)
        assert out.shape == (30, 42, 3) and out.dtype == np.uint8
    # Two more epochs resume where the run stopped.
    again = fit(tiny_cut_recipe(cut_runs["cut"].run_dir.parent, "train.epochs=3",
                                name="cut"), **QUIET)
    assert again.resumed_from == cut_runs["cut"].step and again.step > again.resumed_from


def test_options_are_checked_with_the_layer_named():
    from kstyle.errors import RecipeError

    with pytest.raises(RecipeError, match="'block4_add' is not an encoder layer"):
        recipe_from_dict({"name": "x"}, [*TINY_CUT, "model.num_blocks=2"], source="x.toml")
    with pytest.raises(RecipeError, match="names a layer twice"):
        recipe_from_dict({"name": "x"}, [*TINY_CUT, 'model.nce_layers=["stem_pad", '
                                                    '"stem_pad"]'], source="x.toml")


def test_shipped_recipes_have_the_reference_settings():
    cut, fast = load_recipe("recipes/cut.toml"), load_recipe("recipes/fastcut.toml")
    for r in (cut, fast):
        m = r.model
        assert (m.num_blocks, m.gan_mode, m.num_patches, m.nce_temperature, m.head_units,
                m.init, m.init_gain) == (9, "lsgan", 256, 0.07, 256, "xavier", 0.02)
        assert m.nce_layers == ["stem_pad", "down1_conv", "down2_conv", "block0_add",
                                "block4_add"]
        assert (r.train.lr, r.train.beta_1, r.train.beta_2) == (2e-4, 0.5, 0.999)
    assert (cut.model.kind, cut.model.lambda_nce, cut.model.nce_idt,
            cut.model.flip_equivariance, cut.train.epochs, cut.train.decay_start_epoch) == (
        "cut", 1.0, True, False, 400, 200)
    assert (fast.model.kind, fast.model.lambda_nce, fast.model.nce_idt,
            fast.model.flip_equivariance, fast.train.epochs, fast.train.decay_start_epoch) == (
        "fastcut", 10.0, False, True, 200, 150)


def test_a_cut_run_exports_to_litert_and_onnx_and_tiles(cut_runs, tmp_path):
    from kstyle import export as kexport

    run = cut_runs["fastcut"].run_dir
    results = kexport.export_run(run, tmp_path, saved_model=False, onnx=True,
                                 log=lambda *_: None)
    assert set(results) == {"tflite", "onnx"} and all(r["passed"] for r in results.values())
    photo = np.random.default_rng(1).integers(0, 256, (36, 44, 3), np.uint8)
    keras_out = kstyle.stylize(photo, model=run)
    for name in ("translator.tflite", "translator.onnx"):
        out = kstyle.stylize(photo, model=tmp_path / name)
        assert np.abs(keras_out.astype(int) - out.astype(int)).max() <= kexport.MAX_ABS_DIFF
    tiled = kstyle.load(run, tile=16)(photo)
    assert tiled.shape == photo.shape


def test_kstyle_eval_scores_a_cut_run_with_fid_and_kid(cut_runs, tmp_path):
    from click.testing import CliRunner

    from kstyle.cli import main

    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["eval", str(cut_runs["cut"].run_dir),
                                       "--inception-weights", "random", "--limit", "4",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert scores["kind"] == "cut" and (scores["n_translated"], scores["n_real"]) == (4, 4)
    assert scores["fid"] >= 0 and np.isfinite(scores["kid"])
