"""Python API and CLI on a tiny trained run: any size in, same size and kind out."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import kstyle
from kstyle.cli import main
from kstyle.errors import ModelLoadError


@pytest.fixture(scope="module")
def translator(tiny_run):
    return kstyle.load(tiny_run)


@pytest.mark.parametrize("shape", [(32, 32, 3), (37, 45, 3), (5, 70, 3), (64, 33, 4)])
def test_numpy_any_size_keeps_size_and_dtype(translator, shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = translator(image)
    assert out.shape == shape[:2] + (3,) and out.dtype == np.uint8


def test_padding_does_not_change_the_valid_region(translator):
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    # A 32x32 image needs no padding: same result as the raw network on it.
    direct = translator.model(image[None].astype(np.float32) / 127.5 - 1.0, training=False)
    expected = np.clip(np.round((direct.numpy()[0] + 1.0) * 127.5), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(translator(image), expected)


def test_gray_float_and_pil_come_back_as_given(translator):
    gray = np.full((20, 30), 128, np.uint8)
    out = translator(gray)
    assert out.shape == (20, 30) and out.dtype == np.uint8
    as_float = translator(np.full((20, 30, 3), 0.5, np.float32))
    assert as_float.dtype == np.float32 and 0.0 <= as_float.min() <= as_float.max() <= 1.0
    pil = translator(Image.new("RGB", (41, 23), (200, 10, 10)))
    assert isinstance(pil, Image.Image) and pil.size == (41, 23)
    palette = Image.new("P", (16, 16))
    assert translator(palette).size == (16, 16)


def test_path_in_path_out(translator, tmp_path):
    src = tmp_path / "photo.jpg"
    Image.new("RGB", (50, 40), (0, 120, 255)).save(src)
    dest = kstyle.stylize(src, model=translator)
    assert dest == tmp_path / "photo_kstyle.png"
    assert Image.open(dest).size == (50, 40)
    many = kstyle.stylize([src, str(src)], model=translator, out=tmp_path / "o")
    assert [p.parent for p in many] == [tmp_path / "o"] * 2


def test_bad_inputs_raise_clear_errors(tiny_run, tmp_path):
    with pytest.raises(ModelLoadError, match="no such run folder"):
        kstyle.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no translator.keras"):
        kstyle.load(tmp_path / "empty")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ModelLoadError, match="bad.keras: damaged: not a complete .keras file "
                                             "\\(14 bytes\\). Copy it again"):
        kstyle.load(bad)
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    with pytest.raises(kstyle.errors.DataError, match="notes.jpg"):
        kstyle.stylize(text, model=tiny_run)
    with pytest.raises(kstyle.errors.DataError, match="shape"):
        kstyle.stylize(np.zeros((4, 4, 3, 2), np.uint8), model=tiny_run)


def test_cli_help_lists_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("fit", "stylize", "eval", "recipe"):
        assert command in result.output


def test_cli_fit_reports_recipe_errors_without_traceback(tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_text("[train]\nepochz = 3\n")
    result = CliRunner().invoke(main, ["fit", str(recipe)])
    assert result.exit_code == 2
    assert "train.epochz" in result.output and "Traceback" not in result.output


def test_cli_stylize_and_eval(tiny_run, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(src / "a.png")
    Image.new("RGB", (31, 17), (10, 20, 210)).save(src / "b.jpg")
    runner = CliRunner()
    result = runner.invoke(main, ["stylize", str(src), "--model", str(tiny_run),
                                  "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "b.png").size == (31, 17)

    result = runner.invoke(main, ["eval", str(tiny_run), "--out", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "e.json").read_text())
    assert scores["n"] > 0 and 0 <= scores["l1"] <= 1 and 0 < scores["psnr"] < 100
    assert -1 <= scores["ssim"] <= 1 and "PSNR" in result.output


def test_cli_recipe_show_and_keys(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["recipe", "show", "recipes/quickstart.toml",
                                  "--set", "train.epochs=3"])
    assert result.exit_code == 0 and "epochs = 3" in result.output
    assert "lambda_l1" in runner.invoke(main, ["recipe", "keys"]).output


def test_eval_of_a_perfect_translator_is_perfect(tiny_run, tmp_path, monkeypatch):
    from kstyle import evaluate as ev

    def identity(run, direction=None):
        import keras

        from kstyle.api import Stylizer

        inp = keras.Input((None, None, 3))
        return Stylizer.from_network(keras.Model(inp, inp))

    # Pairs whose A equals B: the identity scores L1 0 and SSIM 1.
    folder = tmp_path / "same"
    (folder / "A").mkdir(parents=True)
    (folder / "B").mkdir()
    for i in range(3):
        img = Image.fromarray(np.random.default_rng(i).integers(0, 256, (32, 32, 3), np.uint8))
        img.save(folder / "A" / f"{i}.png")
        img.save(folder / "B" / f"{i}.png")
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.toml").write_text(
        (tiny_run / "recipe.toml").read_text().replace('source = "synthetic"',
                                                        'source = "folders"'))
    monkeypatch.setattr(ev, "load", identity)
    scores = ev.evaluate(run, folder)
    assert scores["n"] == 3 and scores["l1"] == 0.0 and scores["ssim"] == pytest.approx(1.0)


def test_size_multiple_is_inferred_for_bare_keras_files():
    from kstyle.models.signature import Inference
    from kstyle.nets import resnet_generator, unet_generator

    assert Inference.measured_size_multiple(unet_generator(base_filters=4, num_downs=8)) == 256
    assert Inference.measured_size_multiple(unet_generator(base_filters=4, num_downs=6)) == 64
    assert Inference.measured_size_multiple(resnet_generator(base_filters=4, num_blocks=1)) == 4


def test_a_keras_file_with_code_in_it_is_refused(tmp_path):
    # A .keras file whose network runs arbitrary Python (a Lambda layer) is what a
    # tampered model looks like: loading is in Keras' safe mode only, so it is refused.
    import keras

    inputs = keras.Input((None, None, 3))
    net = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 0.5)(inputs))
    path = tmp_path / "tampered.keras"
    net.save(path)
    with pytest.raises(ModelLoadError, match="tampered.keras: could not load.*safe"):
        kstyle.load(path)
    exported = tmp_path / "broken.tflite"
    exported.write_bytes(b"TFL3 but not really")
    with pytest.raises(ModelLoadError, match="broken.tflite: could not load"):
        kstyle.load(exported)


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_damaged_keras_file_gives_an_error_naming_it(tiny_run, tmp_path, damage):
    data = bytearray((tiny_run / "translator.keras").read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:  # bytes changed inside the zip: its CRC check or the weights' reader fails
        for i in range(len(data) // 3, len(data) // 3 + 64):
            data[i] ^= 0xFF
    path = tmp_path / f"{damage}.keras"
    path.write_bytes(bytes(data))
    expected = {"truncated": "damaged: not a complete .keras file",
                "flipped": "could not load the model"}[damage]
    with pytest.raises(ModelLoadError, match=f"{damage}.keras: {expected}"):
        kstyle.load(path)
