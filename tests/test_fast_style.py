"""The fast feed-forward stylizer (Johnson et al.): network, objective, fit and stylize.

VGG19 has random weights read from a local file (no ImageNet weights offline).
"""

from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import kstyle
from kstyle.cli import main
from kstyle.errors import RecipeError
from kstyle.export import export_run
from kstyle.models.fast_style import STYLE_LAYERS, FastStyle
from kstyle.nets.layers import NearestUpsampling2D
from kstyle.nets.mobile import mobile_stylizer
from kstyle.nets.resnet import resnet_generator
from kstyle.recipes import load_recipe, recipe_from_dict
from kstyle.train import fit


@pytest.fixture(scope="module")
def vgg_file(random_vgg):
    return str(random_vgg[0] / "vgg19.weights.h5")


@pytest.fixture(scope="module")
def style_file(tmp_path_factory):
    x = np.arange(48)
    stripes = np.where(((x[:, None] + x[None, :]) // 4) % 2, 230, 20).astype(np.uint8)
    image = np.stack([stripes, 255 - stripes, np.full_like(stripes, 90)], axis=-1)
    path = tmp_path_factory.mktemp("style") / "stripes.png"
    Image.fromarray(image).save(path)
    return path


def test_johnson_transformer_shape():
    net = resnet_generator(base_filters=32, num_blocks=5, outer_kernel=9, upsample="resize")
    assert net(np.zeros((1, 36, 52, 3), np.float32)).shape == (1, 36, 52, 3)
    kinds = {type(layer).__name__ for layer in net.layers}
    assert "NearestUpsampling2D" in kinds and "Conv2DTranspose" not in kinds
    assert net.get_layer("stem_conv").kernel.shape == (9, 9, 3, 32)
    assert net.get_layer("block4_conv2").kernel.shape == (3, 3, 128, 128)
    # By hand, kernels + biases: stem 9*9*3*32 + 32, downs 3*3*32*64 + 64 and
    # 3*3*64*128 + 128, 10 block convs of 3*3*128*128 + 128, resize-convs 3*3*128*64 + 64
    # and 3*3*64*32 + 32, head 9*9*32*3 + 3 (instance norm has no weights).
    expected = (7808 + 18496 + 73856 + 10 * 147584 + 73792 + 18464 + 7779)
    assert net.count_params() == expected == 1_676_035
    with pytest.raises(ValueError, match="upsample"):
        resnet_generator(upsample="pixelshuffle")
    with pytest.raises(ValueError, match="outer_kernel"):
        resnet_generator(outer_kernel=4)


def test_mobile_transformer_shape_and_cost():
    net = mobile_stylizer()
    assert net(np.zeros((1, 40, 56, 3), np.float32)).shape == (1, 40, 56, 3)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds.count("DepthwiseConv2D") == 2 * 5 + 2 and "DepthToSpace" in kinds
    assert net.get_layer("head_conv").kernel.shape == (3, 3, 32, 12)
    # Multiply-adds per 256x256 image, by hand from the layer shapes: under 1/15 of
    # Johnson et al.'s ~10.7 G.
    macs = 0
    probe = keras.Model(net.inputs, [layer.output for layer in net.layers
                                     if isinstance(layer, keras.layers.Conv2D |
                                                   keras.layers.DepthwiseConv2D)])
    outputs = probe(np.zeros((1, 256, 256, 3), np.float32))
    convs = [layer for layer in net.layers
             if isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D)]
    for layer, out in zip(convs, outputs):
        kernel = layer.kernel.shape
        per_pixel = (kernel[0] * kernel[1] * kernel[2] if isinstance(
            layer, keras.layers.DepthwiseConv2D) else int(np.prod(kernel)))
        macs += per_pixel * out.shape[1] * out.shape[2]
    assert 0.3e9 < macs < 10.7e9 / 15
    with pytest.raises(ValueError, match="num_blocks"):
        mobile_stylizer(num_blocks=-1)


def test_mobile_fast_style_exports_with_multiple_8(style_file, vgg_file):
    model = FastStyle.build_from_options(style=style_file, network="mobile", base_filters=4,
                                        num_blocks=1, vgg_weights=vgg_file, style_size=32)
    assert model.size_multiple == 8
    assert model.transformer(np.zeros((1, 24, 16, 3), np.float32)).shape == (1, 24, 16, 3)
    with pytest.raises(ValueError, match="johnson, mobile"):
        FastStyle.build_from_options(style=style_file, network="vgg", vgg_weights=vgg_file)


def tiny_model(style_file, vgg_file):
    return FastStyle.build_from_options(style=style_file, base_filters=4, num_blocks=1,
                                        vgg_weights=vgg_file, style_size=32,
                                        content_weight=1.0, style_weight=1.0, tv_weight=1.0)


def test_objective_terms_and_style_grams(style_file, vgg_file):
    model = tiny_model(style_file, vgg_file)
    assert set(model.style_grams) == set(STYLE_LAYERS)
    assert model.style_grams["block1_conv2"].shape == (1, 64, 64)
    content = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    same = model.objective(content, content)
    assert float(same["content_loss"]) == 0.0 and float(same["style_loss"]) > 0
    logs = model.objective(content, np.zeros_like(content))
    assert float(logs["tv_loss"]) == 0.0
    assert float(logs["loss"]) == pytest.approx(
        float(logs["content_loss"] + logs["style_loss"]), rel=1e-5)


def test_a_few_steps_reduce_the_loss(style_file, vgg_file):
    keras.utils.set_random_seed(0)
    model = tiny_model(style_file, vgg_file)
    model.compile(g_optimizer=keras.optimizers.Adam(1e-3))
    content = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)

    def loss():
        return float(model.objective(content, model.transformer(content))["loss"])

    before = loss()
    for _ in range(20):
        logs = model.train_step(content)
    assert set(logs) == {"loss", "content_loss", "style_loss", "tv_loss"}
    assert loss() < 0.7 * before


def tiny_recipe(tmp_path, style_file, vgg_file, *overrides):
    return recipe_from_dict({"name": "fast"}, [
        "model.kind=fast_style", f'model.style="{style_file}"', f'model.vgg_weights="{vgg_file}"',
        "model.style_size=32", "model.base_filters=4", "model.num_blocks=1",
        "data.source=synthetic", "data.synthetic_count=8", "data.image_size=32",
        "data.load_size=36", "data.batch_size=2", "train.epochs=2", "train.steps_per_epoch=2",
        "train.checkpoint_every=3", "train.num_samples=2", "train.val_steps=1",
        "train.lr=1e-3", "train.lr_policy=constant", f'train.out_dir="{tmp_path / "fast"}"',
        *overrides], source="fast.toml")


@pytest.mark.slow
def test_fit_resumes_and_the_run_stylizes_any_size(style_file, vgg_file, tmp_path):
    recipe = tiny_recipe(tmp_path, style_file, vgg_file)
    first = fit(tiny_recipe(tmp_path, style_file, vgg_file, "train.epochs=1"), verbose=0,
                log=lambda *_: None)
    assert first.step == 2
    result = fit(recipe, verbose=0, log=lambda *_: None)
    assert result.resumed_from == 2 and result.step == 4
    run = result.run_dir
    assert (run / "translator.keras").is_file() and (run / "samples" / "epoch_0002.png").is_file()
    assert {"val_loss", "val_style_loss"} <= set(result.logs)
    info = kstyle.load(run).info
    assert info["kind"] == "fast_style" and info["input_transform"] == "none"
    assert info["size_multiple"] == 4
    photo = np.random.default_rng(2).integers(0, 256, (45, 61, 3), dtype=np.uint8)
    out = kstyle.stylize(photo, model=run)
    assert out.shape == photo.shape and out.dtype == np.uint8
    src = tmp_path / "photo.png"
    Image.fromarray(photo).save(src)
    cli = CliRunner().invoke(main, ["stylize", str(src), "--model", str(run), "--out",
                                    str(tmp_path / "out")])
    assert cli.exit_code == 0, cli.output
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "photo.png")), out)
    # It exports like every other translator, LiteRT included.
    results = export_run(run, tmp_path / "export", log=lambda *_: None)
    assert results["tflite"]["passed"] and results["saved_model"]["passed"]
    lite = kstyle.stylize(photo, model=tmp_path / "export" / "translator.tflite")
    assert np.abs(lite.astype(int) - out.astype(int)).max() <= 2


def test_the_mobile_network_trains_exports_and_runs_in_litert(style_file, vgg_file, tmp_path):
    recipe = tiny_recipe(tmp_path, style_file, vgg_file, "model.network=mobile",
                         "train.epochs=1")
    result = fit(recipe, verbose=0, log=lambda *_: None)
    run = result.run_dir
    assert result.step == 2 and kstyle.load(run).info["size_multiple"] == 8
    photo = np.random.default_rng(4).integers(0, 256, (37, 50, 3), dtype=np.uint8)
    keras_out = kstyle.stylize(photo, model=run)
    results = export_run(run, tmp_path / "export", saved_model=False, log=lambda *_: None)
    assert results["tflite"]["passed"]
    lite = kstyle.stylize(photo, model=tmp_path / "export" / "translator.tflite")
    assert lite.shape == photo.shape
    assert np.abs(lite.astype(int) - keras_out.astype(int)).max() <= 2


def test_nearest_upsampling_matches_keras():
    x = np.random.default_rng(3).normal(size=(2, 5, 7, 3)).astype(np.float32)
    ours = NearestUpsampling2D()(x)
    theirs = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
    np.testing.assert_array_equal(ours, theirs)


def test_recipe_errors_name_the_style_key(tmp_path, style_file, vgg_file):
    with pytest.raises(RecipeError, match="model.style = '/nowhere/painting.jpg' is not a file"):
        tiny_recipe(tmp_path, style_file, vgg_file, 'model.style="/nowhere/painting.jpg"')
    with pytest.raises(RecipeError, match="model.style_layer_weights has 1 values"):
        tiny_recipe(tmp_path, style_file, vgg_file, "model.style_layer_weights=[1.0]")
    with pytest.raises(RecipeError, match="model.vgg_weights"):
        tiny_recipe(tmp_path, style_file, vgg_file, 'model.vgg_weights="/nowhere/v.h5"')


def test_shipped_recipe_has_johnsons_settings():
    recipe = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "fast_style.toml")
    m = recipe.model
    assert (m.kind, m.base_filters, m.num_blocks, m.norm) == ("fast_style", 32, 5, "instance")
    assert m.style.startswith("https://")
    assert (recipe.data.image_size, recipe.data.batch_size, recipe.train.lr) == (256, 4, 1e-3)


def test_config_round_trip_computes_the_same(style_file, vgg_file):
    model = tiny_model(style_file, vgg_file)
    clone = FastStyle.from_config(model.get_config())  # the config holds no weights
    for net, copy in ((model.transformer, clone.transformer),
                      (model.feature_extractor, clone.feature_extractor)):
        copy.set_weights(net.get_weights())
    assert (clone.content_layer, clone.style_layers, clone.style_layer_weights,
            clone.size_multiple) == (model.content_layer, model.style_layers,
                                     model.style_layer_weights, model.size_multiple)
    content = np.random.default_rng(1).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    for key, value in model.objective(content, model.transformer(content)).items():
        assert float(clone.objective(content, clone.transformer(content))[key]) == \
            pytest.approx(float(value), rel=1e-5), key
