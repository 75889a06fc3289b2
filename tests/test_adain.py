"""Arbitrary style transfer (AdaIN): its layers, networks, objective, data and fit.

VGG19 has random weights read from a local file (no ImageNet weights offline).
"""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from conftest import SHARED_DATA, needs_shared_data, write_tiny_photos
from PIL import Image

import kstyle
from kstyle.cli import main
from kstyle.errors import ModelLoadError, RecipeError, StyleOptionError
from kstyle.models import AdaIN
from kstyle.models.adain import AdaINInference, match_colors
from kstyle.nets.adain import (
    AdaptiveInstanceNormalization,
    ChannelStatistics,
    adain_decoder,
    adain_encoder,
    adain_stylizer,
)
from kstyle.nets.vgg import VGGPreprocessing, vgg19_features
from kstyle.recipes import recipe_from_dict
from kstyle.train import fit

TINY_ADAIN = [
    "model.kind=adain", "data.source=photos", "data.image_size=32", "data.load_size=40",
    "data.batch_size=2", "model.decoder_width=0.125", "train.epochs=2",
    "train.steps_per_epoch=3", "train.checkpoint_every=2", "train.num_samples=2",
    "train.val_steps=1", "train.lr_policy=constant", "train.lr=1e-3",
    "train.precision=float32",
]


@pytest.fixture(scope="module")
def vgg_file(random_vgg):
    return str(random_vgg[0] / "vgg19.weights.h5")


def write_styles(folder, count=3, size=48):
    """Stripes and checks in a few colour schemes: images with distinct statistics."""
    folder.mkdir(parents=True, exist_ok=True)
    x = np.arange(size)
    for i in range(count):
        period = 3 + 2 * i
        pattern = ((x[:, None] // period + x[None, :] // (period + i)) % 2).astype(np.float32)
        colors = np.array([[230, 40, 60], [20, 200, 120], [250, 240, 30]][i % 3], np.float32)
        image = pattern[..., None] * colors + (1 - pattern[..., None]) * (255 - colors)
        Image.fromarray(image.astype(np.uint8)).save(folder / f"style_{i}.png")
    return folder


def tiny_adain_recipe(tmp_path, vgg_file, *overrides, name="tiny_adain"):
    photos, styles = tmp_path / "photos", tmp_path / "styles"
    if not photos.is_dir():
        write_tiny_photos(photos / "train", count=6, seed=0)
        write_tiny_photos(photos / "val", count=2, seed=1)
        write_styles(styles)
    return recipe_from_dict({"name": name}, [
        *TINY_ADAIN, f'data.path="{photos}"', f'data.style_path="{styles}"',
        f'model.vgg_weights="{vgg_file}"', f'train.out_dir="{tmp_path / name}"', *overrides],
        source="tiny_adain.toml")


def test_channel_statistics_are_the_references_unbiased_ones():
    x = np.random.default_rng(0).normal(2.0, 3.0, (2, 5, 7, 4)).astype(np.float32)
    mean, std = (np.asarray(v) for v in ChannelStatistics()(x))
    flat = x.reshape(2, 35, 4)
    np.testing.assert_allclose(mean[:, 0, 0], flat.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(std[:, 0, 0], np.sqrt(flat.var(axis=1, ddof=1) + 1e-5),
                               rtol=1e-5)


def test_adain_gives_the_content_the_style_statistics():
    rng = np.random.default_rng(1)
    content = rng.normal(0.0, 1.0, (2, 6, 6, 8)).astype(np.float32)
    style_mean = rng.normal(0.0, 2.0, (2, 1, 1, 8)).astype(np.float32)
    style_std = rng.uniform(0.5, 3.0, (2, 1, 1, 8)).astype(np.float32)
    out = AdaptiveInstanceNormalization()([content, style_mean, style_std])
    mean, std = (np.asarray(v) for v in ChannelStatistics()(out))
    np.testing.assert_allclose(mean, style_mean, atol=1e-5)
    np.testing.assert_allclose(std, style_std, rtol=1e-3)
    # The content's spatial pattern survives: each channel is an affine map of its input.
    for n, c in ((0, 0), (1, 5)):
        assert abs(np.corrcoef(content[n, ..., c].ravel(), out[n, ..., c].numpy().ravel())[0, 1]
                   - 1) < 1e-5


def test_encoder_holds_keras_vgg19_with_reflection_padding(random_vgg):
    folder, _ = random_vgg
    encoder = adain_encoder(str(folder / "vgg19.weights.h5"))
    assert not encoder.trainable_weights
    # The reference's counts: a 1x1 conv and VGG19's convs to relu4_1.
    assert encoder.count_params() == 12 + 3_505_728
    image = np.random.default_rng(2).uniform(-1, 1, (1, 40, 40, 3)).astype(np.float32)
    # The 1x1 conv is VGG's "caffe" preprocessing, on [0, 1] input.
    pre = keras.Model(encoder.input, encoder.get_layer("preprocess").output)
    np.testing.assert_allclose(pre(image), VGGPreprocessing()(image), atol=1e-3)
    # Inside the border, where reflection and zero padding agree, Keras' VGG19 features.
    ours = encoder(image)
    theirs = vgg19_features(("block1_conv1", "block2_conv1"),
                            weights=folder / "vgg19.weights.h5")(image)
    inner1, inner2 = (slice(None), slice(1, -1), slice(1, -1)), (slice(None), slice(3, -3),
                                                                 slice(3, -3))
    np.testing.assert_allclose(ours["relu1_1"][inner1], theirs["block1_conv1"][inner1],
                               rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(ours["relu2_1"][inner2], theirs["block2_conv1"][inner2],
                               rtol=1e-4, atol=1e-1)
    # Odd sides are pooled as PyTorch's ceil_mode does: sides rounded up.
    odd = encoder(np.zeros((1, 37, 50, 3), np.float32))
    assert odd["relu4_1"].shape == (1, 5, 7, 512)


def test_decoder_and_stylizer_shapes_and_the_reference_parameter_count():
    decoder = adain_decoder()
    assert decoder.count_params() == 3_505_219  # naoto0804/pytorch-AdaIN's decoder
    light = adain_decoder(width=0.5)
    assert light.get_layer("dec4_1").kernel.shape == (3, 3, 512, 128)
    assert light.get_layer("dec1_1").kernel.shape == (3, 3, 32, 3)
    assert light(np.zeros((1, 3, 5, 512), np.float32)).shape == (1, 24, 40, 3)
    stylizer = adain_stylizer(adain_encoder(), light)
    content = np.zeros((2, 48, 64, 3), np.float32)
    assert stylizer([content, np.zeros((1, 40, 32, 3), np.float32)]).shape == (2, 48, 64, 3)
    with pytest.raises(ValueError, match="width"):
        adain_decoder(width=0)


def test_recipe_names_the_style_folder(tmp_path, vgg_file):
    with pytest.raises(RecipeError, match=r"data\.style_path = .*nowhere.* is not a folder"):
        tiny_adain_recipe(tmp_path, vgg_file, f'data.style_path="{tmp_path / "nowhere"}"')
    with pytest.raises(RecipeError, match=r"data\.style_path is empty"):
        tiny_adain_recipe(tmp_path, vgg_file, 'data.style_path=""')
    with pytest.raises(RecipeError, match=r"data\.image_size = 36 must be a multiple of 8"):
        tiny_adain_recipe(tmp_path, vgg_file, "data.image_size=36")


def test_fit_trains_the_decoder_and_saves_a_stylizer(tmp_path, vgg_file):
    recipe = tiny_adain_recipe(tmp_path, vgg_file)
    lines = []
    result = fit(recipe, verbose=0, log=lines.append)
    run = result.run_dir
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "adain"
    assert (run / "samples" / "epoch_0002.png").is_file()
    epochs = (run / "epochs.csv").read_text().splitlines()
    assert epochs[0].split(",")[:1] == ["epoch"] and len(epochs) == 3
    assert "style_loss" in epochs[0] and "val_loss" in epochs[0]
    # The saved stylizer: the encoder is the VGG19 it started with (only the decoder
    # trains), and the decoder is no longer the untrained one.
    stylizer = keras.models.load_model(run / "translator.keras")
    encoder = adain_encoder(vgg_file)
    saved = stylizer.get_layer("adain_encoder")
    for ours, theirs in zip(saved.weights, encoder.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    keras.utils.set_random_seed(recipe.train.seed)
    fresh = AdaIN.from_options(recipe.model)
    assert not np.allclose(stylizer.get_layer("decoder").weights[0].numpy(),
                           fresh.decoder.weights[0].numpy())
    # It stylizes any two images: a content of any size (multiple of 8), a style of another.
    rng = np.random.default_rng(3)
    content = rng.uniform(-1, 1, (1, 40, 24, 3)).astype(np.float32)
    style = rng.uniform(-1, 1, (1, 32, 56, 3)).astype(np.float32)
    out = np.asarray(stylizer([content, style]))
    assert out.shape == content.shape and np.isfinite(out).all()
    # Resuming the finished run one epoch further goes on from its checkpoint.
    longer = fit(tiny_adain_recipe(tmp_path, vgg_file, "train.epochs=3"), verbose=0,
                 log=lines.append)
    assert longer.step == 9 and longer.resumed_from == 6


def test_the_light_variant_trains_its_own_encoder_and_exports_it(tmp_path, vgg_file):
    # model.encoder_width: the stylizer encodes with a narrower VGG19 layout that trains
    # with the decoder; the frozen VGG19 stays the loss network, unchanged.
    recipe = tiny_adain_recipe(tmp_path, vgg_file, "model.encoder_width=0.125",
                               "train.epochs=1", name="light")
    keras.utils.set_random_seed(recipe.train.seed)
    fresh = AdaIN.from_options(recipe.model)
    assert fresh.stylizer.get_layer("adain_encoder") is fresh.light_encoder
    assert fresh.light_encoder.output["relu4_1"].shape[-1] == 64
    assert set(fresh.networks) == {"encoder", "decoder", "light_encoder"}
    result = fit(recipe, verbose=0, log=lambda line: None)
    run = result.run_dir
    stylizer = keras.models.load_model(run / "translator.keras")
    light = stylizer.get_layer("adain_encoder")
    assert light.output["relu4_1"].shape[-1] == 64
    assert not np.allclose(light.get_layer("block1_conv1").weights[0].numpy(),
                           fresh.light_encoder.get_layer("block1_conv1").weights[0].numpy())
    # The loss network is checkpointed as it was built: VGG19 from the file.
    checkpointed = AdaIN.from_options(recipe.model)
    from kstyle.training.checkpoints import initial_weights

    initial_weights(checkpointed, run)
    for ours, theirs in zip(checkpointed.encoder.weights, adain_encoder(vgg_file).weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    # It stylizes, and exports with 64-channel statistics.
    content = np.random.default_rng(1).integers(0, 256, (40, 24, 3), np.uint8)
    style = np.random.default_rng(2).integers(0, 256, (32, 32, 3), np.uint8)
    expected = kstyle.load(run).stylize_array(content, style=style, style_size=0)
    assert expected.shape == content.shape
    out = tmp_path / "export"
    exported = CliRunner().invoke(main, ["export", str(run), "--tflite", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out / "translator.tflite"))
    (statistics,) = interpreter.get_signature_runner("encode_style")(
        style=style[None]).values()
    assert statistics.shape == (1, 2, 64)
    (litert,) = interpreter.get_signature_runner("stylize")(
        content=content[None], style=style[None], strength=np.array(1.0, np.float32)).values()
    assert np.abs(litert[0].astype(int) - expected.astype(int)).max() <= 2


@needs_shared_data
def test_loss_goes_down_on_real_photos_and_paintings(tmp_path):
    # Horse photos for content, the shared public-domain paintings for style; VGG19 with
    # seeded random weights (no ImageNet weights offline), 20 steps of 64 px at lr 1e-4
    # (the held-back loss is then about 0.17x the untrained one).
    recipe = recipe_from_dict({"name": "real_adain"}, [
        *TINY_ADAIN, f'data.path="{SHARED_DATA / "horse2zebra" / "trainA"}"',
        f'data.style_path="{SHARED_DATA / "styles"}"', "data.image_size=64",
        "data.load_size=80", "data.batch_size=4", "model.decoder_width=0.25",
        'model.vgg_weights="random"', "train.epochs=1", "train.steps_per_epoch=20",
        "train.lr=1e-4", "train.beta_1=0.9", "train.val_steps=4", "train.num_samples=0",
        f'train.out_dir="{tmp_path / "run"}"'], source="real_adain.toml")
    lines = []
    result = fit(recipe, verbose=0, log=lines.append)
    untrained = json.loads((result.run_dir / "run.json").read_text())["untrained_val_metric"]
    rows = (result.run_dir / "epochs.csv").read_text().splitlines()
    val = [float(row.split(",")[rows[0].split(",").index("val_loss")]) for row in rows[1:]]
    assert val[-1] < 0.3 * untrained, (untrained, val)
    assert f"--style {SHARED_DATA / 'styles'}" in lines[-1]


@pytest.fixture(scope="module")
def adain_run(tmp_path_factory, vgg_file):
    tmp = tmp_path_factory.mktemp("adain")
    return fit(tiny_adain_recipe(tmp, vgg_file), verbose=0, log=lambda *_: None).run_dir, tmp


def test_a_fresh_process_loads_and_runs_the_run(adain_run, tmp_path):
    # Nothing imported beforehand registers AdaIN's layers: loading has to.
    import subprocess
    import sys

    run, tmp = adain_run
    content = tmp_path / "content.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), np.uint8)).save(
        content)
    style = sorted((tmp / "styles").glob("*.png"))[0]
    done = subprocess.run([sys.executable, "-m", "kstyle.cli", "stylize", str(content),
                           "--model", str(run), "--style", str(style), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert Image.open(tmp_path / "out" / "content.png").size == (40, 30)


def test_load_gives_a_stylizer_that_takes_any_style(adain_run):
    run, tmp = adain_run
    stylizer = kstyle.load(run)
    assert isinstance(stylizer.inference, AdaINInference)
    assert set(stylizer.inputs) == {"style", "strength", "blend", "preserve_color",
                                    "style_size"}
    rng = np.random.default_rng(4)
    content = rng.integers(0, 256, (37, 50, 3), np.uint8)
    styles = sorted((tmp / "styles").glob("*.png"))
    out = stylizer(content, style=styles[0], style_size=0)
    assert out.shape == content.shape and out.dtype == np.uint8
    # The same as the saved Keras stylizer on the padded image (to uint8 rounding).
    from kstyle.nets.uint8 import prepare_input

    style = np.asarray(Image.open(styles[0]).convert("RGB"))
    padded = prepare_input(content[None], 8, "none")
    style_float = style[None].astype(np.float32) / 127.5 - 1
    keras_out = (np.asarray(stylizer.model([padded, tf.constant(style_float)]))[0, :37, :50]
                 + 1) * 127.5
    assert np.abs(out.astype(np.float32) - np.clip(np.round(keras_out), 0, 255)).max() <= 1
    # Strength 0 is the content through the decoder; it differs from the full style.
    plain = stylizer(content, style=styles[0], strength=0.0)
    assert np.abs(plain.astype(int) - out.astype(int)).mean() > 0.5
    # A blend of weights 1 and 0 is the first style alone; an encoded style is the same
    # as its image.
    code = stylizer.encode_style(styles[0])
    np.testing.assert_array_equal(stylizer(content, style=styles[:2], blend=[1.0, 0.0]),
                                  stylizer(content, style=code))
    np.testing.assert_array_equal(stylizer(content, style=code),
                                  kstyle.stylize(content, model=stylizer, style=styles[0]))
    with pytest.raises(StyleOptionError, match=r"strength = 1.5"):
        stylizer(content, style=styles[0], strength=1.5)
    with pytest.raises(StyleOptionError, match=r"blend = \[1.0\]: expected 2"):
        stylizer(content, style=styles[:2], blend=[1.0])
    with pytest.raises(ValueError, match="style: this model needs it: give style="):
        kstyle.stylize(content, model=run)
    with pytest.raises(ValueError, match="takes no steps .*options of optimization"):
        kstyle.stylize(content, model=run, style=styles[0], steps=3)


def test_large_images_stylize_in_tiles_with_the_whole_images_statistics(adain_run):
    run, _ = adain_run
    rng = np.random.default_rng(11)
    # A smooth photo-like content (random pixels would make every feature local).
    y, x = np.mgrid[0:120, 0:104]
    content = np.stack([128 + 100 * np.sin(x / 9.0), 128 + 100 * np.cos(y / 13.0),
                        128 + 60 * np.sin((x + y) / 17.0)], -1)
    content = np.clip(content + rng.normal(0, 8, content.shape), 0, 255).astype(np.uint8)
    style = rng.integers(0, 256, (48, 48, 3), np.uint8)
    whole = kstyle.load(run, tile=0)
    tiled = kstyle.load(run, tile=48)
    # The statistics gathered tile by tile are the whole image's (features near a tile's
    # edge see its padding, not their neighbours: close, not equal; 1.4% and 3.7% here).
    mean, std = tiled.content_statistics(content, 48, 16)
    features = whole.features(content[None])
    from kstyle.nets.adain import channel_statistics

    true_mean, true_std = (np.asarray(v) for v in channel_statistics(features))
    assert mean.shape == true_mean.shape == (1, 1, 1, 512)
    for ours, truth in ((mean, true_mean), (std, true_std)):
        assert np.linalg.norm(ours - truth) < 0.05 * np.linalg.norm(truth)
    reference = whole.stylize_array(content, style=style, style_size=0).astype(float)
    out = tiled.stylize_array(content, style=style, style_size=0)
    assert out.shape == content.shape and out.dtype == np.uint8
    # With the whole image's statistics the tiles come out closer to the one-pass result
    # than with each tile's own (what tiling without them gives): 0.9 against 2.5 of 255.
    # The same tiles, each renormalized by itself:
    tiled.inference.content_statistics = lambda *a: (None, None)
    per_tile = tiled.stylize_array(content, style=style, style_size=0)
    error = np.abs(out - reference).mean()
    assert error < np.abs(per_tile - reference).mean(), error
    assert error < 12, error


def test_preserve_color_gives_the_style_the_contents_colours():
    rng = np.random.default_rng(5)
    style = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
    content = (rng.normal(0, 1, (50, 3)) @ np.array([[30, 5, 0], [0, 20, 3], [2, 0, 10]])
               + [120, 90, 60]).clip(0, 255).astype(np.uint8).reshape(5, 10, 3)
    mapped = match_colors(style, content).reshape(-1, 3).astype(np.float64)
    flat = content.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(mapped.mean(axis=0), flat.mean(axis=0), atol=1.5)
    np.testing.assert_allclose(np.cov(mapped, rowvar=False), np.cov(flat, rowvar=False),
                               rtol=0.1, atol=3)


def test_cli_stylizes_a_folder_in_blended_styles(adain_run, tmp_path):
    run, tmp = adain_run
    styles = sorted((tmp / "styles").glob("*.png"))
    photos = write_tiny_photos(tmp_path / "photos", count=2, size=36)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "stylize", str(photos), "--model", str(run), "--style", str(styles[0]), "--style",
        str(styles[1]), "--blend", "0.7", "--blend", "0.3", "--strength", "0.6",
        "--preserve-color", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.png")) == ["00.png", "01.png"]
    assert Image.open(out / "00.png").size == (36, 36)
    no_style = CliRunner().invoke(main, ["stylize", str(photos), "--model", str(run)])
    assert no_style.exit_code == 2 and "needs --style (the style image" in no_style.output
    strength = CliRunner().invoke(main, ["stylize", str(photos), "--style", str(styles[0]),
                                         "--strength", "0.5"])
    assert strength.exit_code == 2 and "--strength needs --model" in strength.output


def test_exports_three_endpoints_that_run_in_litert_and_onnx(adain_run, tmp_path):
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    run, _ = adain_run
    out = tmp_path / "export"
    result = CliRunner().invoke(main, ["export", str(run), "--saved-model", "--tflite",
                                       "--onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.count(" - ok") == 3, result.output  # SavedModel, LiteRT, ONNX
    rng = np.random.default_rng(7)
    content = rng.integers(0, 256, (1, 45, 30, 3), np.uint8)
    style = rng.integers(0, 256, (1, 20, 36, 3), np.uint8)
    expected = kstyle.load(run).stylize_array(content[0], style=style[0], style_size=0,
                                              strength=0.7)
    strength = np.array(0.7, np.float32)
    saved = tf.saved_model.load(str(out / "tiny_adain" / "1"))
    (saved_out,) = saved.signatures["stylize"](content=content, style=style,
                                                strength=strength).values()
    interpreter = Interpreter(model_path=str(out / "translator.tflite"))
    assert set(interpreter.get_signature_list()) == {"stylize", "encode_style",
                                                     "stylize_with_statistics"}
    (statistics,) = interpreter.get_signature_runner("encode_style")(style=style).values()
    assert statistics.shape == (1, 2, 512)  # relu4_1's channel means, then stds
    (litert,) = interpreter.get_signature_runner("stylize_with_statistics")(
        content=content, statistics=statistics, strength=strength).values()
    sessions = {name: onnxruntime.InferenceSession(str(out / f"{name}.onnx"))
                for name in ("translator", "translator_encode_style",
                             "translator_stylize_with_statistics")}
    onnx_out = sessions["translator"].run(None, {"content": content, "style": style,
                                                 "strength": strength})[0]
    for got in (np.asarray(saved_out), litert, onnx_out):
        assert got.shape == content.shape and got.dtype == np.uint8
        assert np.abs(got[0].astype(int) - expected.astype(int)).max() <= 2
    # kstyle itself runs the exported files as it runs the run: styles encoded by the
    # file's encode_style, blended, at a strength.
    for exported in ("translator.tflite", "translator.onnx", "tiny_adain"):
        stylizer = kstyle.load(out / exported)
        assert isinstance(stylizer.inference, AdaINInference) and stylizer.model is None
        got = stylizer.stylize_array(content[0], style=style[0], style_size=0, strength=0.7)
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2, exported
    photo = tmp_path / "photo.png"
    Image.fromarray(content[0]).save(photo)
    Image.fromarray(style[0]).save(tmp_path / "style.png")
    stylized = CliRunner().invoke(main, [
        "stylize", str(photo), "--model", str(out / "translator.tflite"), "--style",
        str(tmp_path / "style.png"), "--strength", "0.7", "--out", str(tmp_path / "out.png")])
    assert stylized.exit_code == 0, stylized.output
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == content[0].shape
    (out / "translator_encode_style.onnx").unlink()
    with pytest.raises(ModelLoadError, match="translator_encode_style.onnx should be beside"):
        kstyle.load(out / "translator.onnx")
    int8 = CliRunner().invoke(main, ["export", str(run), "--tflite", "--quantize", "int8",
                                     "--out", str(tmp_path / "int8")])
    assert int8.exit_code == 2 and "use fp16 or dynamic" in int8.output, int8.output


def test_fine_tunes_from_the_imported_reference_networks(tmp_path):
    from kstyle.importers.convert import import_weights

    fixtures = Path(__file__).resolve().parent / "pth"
    vgg = fixtures / "adain_vgg.pth"
    imported = import_weights([fixtures / "adain_decoder.pth"], tmp_path / "imported", vgg=vgg,
                              log=lambda *_: None)
    lines = []
    # lr 0: the fine-tuned run's stylizer is the imported one.
    recipe = tiny_adain_recipe(tmp_path, str(vgg), f'train.init_from="{imported}"',
                               "model.decoder_width=0.03125", "train.lr=0", "train.epochs=1")
    result = fit(recipe, verbose=0, log=lines.append)
    assert any("decoder: from" in line and "networks/decoder.weights.h5" in line
               for line in lines), lines
    rng = np.random.default_rng(6)
    content = rng.integers(0, 256, (32, 40, 3), np.uint8)
    style = rng.integers(0, 256, (24, 24, 3), np.uint8)
    np.testing.assert_array_equal(kstyle.load(result.run_dir)(content, style=style),
                                  kstyle.load(imported)(content, style=style))


def test_a_bfloat16_run_saves_a_float32_stylizer(tmp_path, vgg_file):
    # Trained under mixed_bfloat16, the saved stylizer computes in float32 throughout,
    # nested encoder and decoder included, and stylizes.
    result = fit(tiny_adain_recipe(tmp_path, vgg_file, "train.precision=mixed_bfloat16",
                                   "train.epochs=1"), verbose=0, log=lambda *_: None)
    stylizer = kstyle.load(result.run_dir)
    policies = {layer.dtype_policy.name for net in (stylizer.encoder, stylizer.decoder)
                for layer in net.layers}
    assert policies == {"float32"}, policies
    rng = np.random.default_rng(8)
    out = stylizer(rng.integers(0, 256, (24, 32, 3), np.uint8),
                   style=rng.integers(0, 256, (16, 16, 3), np.uint8))
    assert out.shape == (24, 32, 3)
