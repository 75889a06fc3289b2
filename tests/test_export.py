"""kstyle export: SavedModel, LiteRT and ONNX files of every model kind, checked against Keras."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import tiny_cdae_recipe, tiny_cyclegan_recipe

import kstyle
from kstyle import export as kexport
from kstyle.cli import main
from kstyle.errors import ExportError, ModelLoadError
from kstyle.inference.exported import add_tflite_metadata, exported_info, read_tflite_metadata
from kstyle.nets.uint8 import mirror_pad_to
from kstyle.train import fit


def quiet(*_):
    pass


def test_mirror_padding_matches_numpy_symmetric_at_any_amount():
    image = np.arange(2 * 3 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 3)
    for height, width in ((3, 4), (5, 7), (11, 13)):
        got = mirror_pad_to(image, height, width).numpy()
        want = np.pad(image, ((0, 0), (0, height - 3), (0, width - 4), (0, 0)),
                      mode="symmetric")
        np.testing.assert_array_equal(got, want)


def test_tflite_metadata_round_trip():
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated  # noqa: F401 (needs TF lite)

    module = tf.Module()
    module.f = tf.function(lambda x: x + 1.0,
                           input_signature=[tf.TensorSpec([None], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.f.get_concrete_function()], module)
    model = add_tflite_metadata(converter.convert(), {"size_multiple": 4, "kind": "x"})
    assert read_tflite_metadata(model) == {"kind": "x", "size_multiple": 4}


@pytest.fixture(scope="module")
def pix2pix_export(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    return kexport.export_run(tiny_run, out, log=quiet), out


def test_export_writes_checked_uint8_files(pix2pix_export, tiny_run):
    results, out = pix2pix_export
    assert set(results) == {"saved_model", "tflite"}
    for result in results.values():
        assert result["passed"] and result["max_abs_diff"] <= kexport.MAX_ABS_DIFF
        assert result["n_images"] >= 2
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out / "translator.tflite"))
    (detail,) = interpreter.get_input_details()
    assert detail["dtype"] == np.uint8 and list(detail["shape_signature"]) == [-1, -1, -1, 3]
    assert interpreter.get_output_details()[0]["dtype"] == np.uint8
    info = read_tflite_metadata((out / "translator.tflite").read_bytes())
    run_info = json.loads((tiny_run / "run.json").read_text())
    assert info["size_multiple"] == run_info["size_multiple"] == 32
    assert info["value_range"] == [0, 255] and info["kind"] == "pix2pix"
    assert json.loads((out / "tiny" / "1" / "kstyle.json").read_text())["size_multiple"] == 32


def test_exported_files_stylize_like_keras_at_any_size(pix2pix_export, tiny_run):
    _, out = pix2pix_export
    image = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    expected = kstyle.stylize(image, model=tiny_run)
    for path in (out / "translator.tflite", out / "tiny" / "1", out / "tiny"):
        got = kstyle.stylize(image, model=path)
        assert got.shape == image.shape and got.dtype == np.uint8
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= kexport.MAX_ABS_DIFF


@pytest.mark.parametrize("quantize", ["fp16", "dynamic", "int8"])
def test_quantized_exports_load_and_run_in_litert(tiny_run, tmp_path, quantize):
    results = kexport.export_run(tiny_run, tmp_path, saved_model=False, quantize=quantize,
                                 log=quiet)
    result = results["tflite"]
    assert result["passed"] and result["psnr_db"] >= kexport.MIN_PSNR[quantize]
    path = tmp_path / f"translator_{quantize}.tflite"
    assert read_tflite_metadata(path.read_bytes())["quantize"] == quantize
    out = kstyle.stylize(np.full((33, 40, 3), 120, np.uint8), model=path)
    assert out.shape == (33, 40, 3) and out.dtype == np.uint8


def test_a_failed_check_fails_the_export_and_writes_nothing(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr(kexport, "MIN_PSNR", {**kexport.MIN_PSNR, "dynamic": 1000.0})
    with pytest.raises(ExportError, match="check FAILED .* not written"):
        kexport.export_run(tiny_run, tmp_path, saved_model=False, quantize="dynamic",
                           log=quiet)
    assert not list(tmp_path.glob("*.tflite"))


@pytest.mark.parametrize("kind", ["cyclegan", "cdae"])
@pytest.mark.slow
def test_two_way_models_export_both_directions(kind, tmp_path):
    recipe = (tiny_cyclegan_recipe if kind == "cyclegan" else tiny_cdae_recipe)(
        tmp_path, "train.epochs=1")
    run = fit(recipe, verbose=0, log=quiet).run_dir
    for direction in ("a2b", "b2a"):
        results = kexport.export_run(run, tmp_path / "out", direction=direction,
                                     onnx=kind == "cdae", log=quiet)
        assert all(r["passed"] for r in results.values())
    assert (tmp_path / "out" / "translator_b2a.tflite").is_file()
    info = read_tflite_metadata((tmp_path / "out" / "translator.tflite").read_bytes())
    # A colorizer's a2b translator grays its input itself, in the exported graph too.
    assert info["input_transform"] == ("gray" if kind == "cdae" else "none")
    photo = np.random.default_rng(1).integers(0, 256, (36, 36, 3), dtype=np.uint8)
    keras_out = kstyle.stylize(photo, model=run, direction="b2a")
    lite_out = kstyle.stylize(photo, model=tmp_path / "out" / "translator_b2a.tflite")
    assert np.abs(keras_out.astype(int) - lite_out.astype(int)).max() <= kexport.MAX_ABS_DIFF
    if kind == "cdae":  # the gray derivation runs inside the ONNX graph as well
        onnx_out = kstyle.stylize(photo, model=tmp_path / "out" / "translator.onnx")
        keras_a2b = kstyle.stylize(photo, model=run)
        assert np.abs(keras_a2b.astype(int) - onnx_out.astype(int)).max() <= \
            kexport.MAX_ABS_DIFF


def test_onnx_export_runs_in_onnx_runtime_like_keras(tiny_run, tmp_path):
    results = kexport.export_run(tiny_run, tmp_path, saved_model=False, tflite=False,
                                 onnx=True, log=quiet)
    assert set(results) == {"onnx"} and results["onnx"]["passed"]
    path = tmp_path / "translator.onnx"
    info = exported_info(path)
    assert info["size_multiple"] == 32 and info["kind"] == "pix2pix"
    assert info["value_range"] == [0, 255]
    # Any size, uint8 in and out, the same pixels as Keras (to the parity bar).
    image = np.random.default_rng(2).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    got = kstyle.stylize(image, model=path)
    assert got.shape == image.shape and got.dtype == np.uint8
    expected = kstyle.stylize(image, model=tiny_run)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= kexport.MAX_ABS_DIFF
    # A client of the file alone feeds its input by the signature's name.
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path))
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert session.run(None, {"images": image[None]})[0].shape == (1, 45, 70, 3)


def test_onnx_export_without_its_packages_says_what_to_install(tiny_run, tmp_path,
                                                               monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    with pytest.raises(ExportError, match=r"tf2onnx.*pip install 'kstyle\[onnx\]'"):
        kexport.export_run(tiny_run, tmp_path, onnx=True, log=quiet)
    assert not list(tmp_path.iterdir())


def test_cli_export(tiny_run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(tiny_run), "--tflite", "--out",
                                  str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "translator.tflite" in result.output and "ok" in result.output
    assert (tmp_path / "translator.tflite").is_file() and not (tmp_path / "tiny").exists()
    onnx = runner.invoke(main, ["export", str(tiny_run), "--onnx", "--out", str(tmp_path)])
    assert onnx.exit_code == 0, onnx.output
    assert "translator.onnx" in onnx.output and (tmp_path / "translator.onnx").is_file()
    missing = runner.invoke(main, ["export", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "nowhere" in missing.output


def test_a_killed_export_leaves_no_file_that_passes_for_current(tiny_run, tmp_path,
                                                                monkeypatch):
    out = tmp_path / "export"
    kexport.export_run(tiny_run, out, log=quiet)
    manifest = json.loads((out / "export.json").read_text())["files"]
    assert set(manifest) == {"tiny/1", "translator.tflite"}

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies during the LiteRT step

    monkeypatch.setattr(kexport, "convert_to_litert", killed)
    with pytest.raises(KeyboardInterrupt):
        kexport.export_run(tiny_run, out, log=quiet)
    # The new SavedModel is listed; the .tflite left from the export before is not.
    image = np.zeros((20, 30, 3), np.uint8)
    assert kstyle.stylize(image, model=out / "tiny").shape == image.shape
    with pytest.raises(ModelLoadError, match="not recorded as a complete export"):
        kstyle.load(out / "translator.tflite")
    monkeypatch.undo()
    kexport.export_run(tiny_run, out, saved_model=False, log=quiet)
    assert kstyle.stylize(image, model=out / "translator.tflite").shape == image.shape
    # A file changed after the export is refused too.
    (out / "translator.tflite").write_bytes((out / "translator.tflite").read_bytes() + b"x")
    with pytest.raises(ModelLoadError, match="or the file changed since"):
        kstyle.load(out / "translator.tflite")
