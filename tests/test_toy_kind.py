"""A new model kind with its own inference input, added as the README's checklist says.

tests/toy_kind/ holds the kind ``masked`` (a photo and a mask in, an image out): its model
file (with its inference declaration), its options and a recipe. The registry line is
the ``monkeypatch`` below. Nothing else is written for it: it trains, stylizes through
the API and the CLI, exports to SavedModel, LiteRT and ONNX, and runs from each file.
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kstyle.cli import main

TOY = __import__("pathlib").Path(__file__).resolve().parent / "toy_kind"


@pytest.fixture(scope="module")
def masked_run(tmp_path_factory):
    from toy_kind.masked_options import MaskedOptions

    import kstyle.models
    from kstyle.recipes import load_recipe
    from kstyle.train import fit

    patch = pytest.MonkeyPatch()
    patch.setitem(kstyle.models.KINDS, "masked", MaskedOptions)  # the registry line
    tmp = tmp_path_factory.mktemp("masked")
    recipe = load_recipe(TOY / "masked.toml", [f'train.out_dir="{tmp}"'])
    result = fit(recipe, verbose=0, log=lambda *_: None)
    yield result.run_dir, tmp
    patch.undo()


def photo_and_mask(h=37, w=29):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (h, w, 3), np.uint8)
    mask = np.zeros((h, w, 3), np.uint8)
    mask[:, : w // 2] = 255
    return photo, mask


def test_a_toy_kind_trains_and_stylizes_with_its_extra_input(masked_run):
    import kstyle

    run, tmp = masked_run
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "masked" and info["step"] == 2
    stylizer = kstyle.load(run)
    assert list(stylizer.inputs) == ["mask"]
    photo, mask = photo_and_mask()
    out = kstyle.stylize(photo, model=run, mask=mask)
    assert out.shape == photo.shape and out.dtype == np.uint8
    # The mask is an input: another mask gives another image.
    other = kstyle.stylize(photo, model=run, mask=255 - mask)
    assert np.abs(out.astype(int) - other.astype(int)).max() > 0
    with pytest.raises(ValueError, match="mask: this model needs it: give mask="):
        kstyle.stylize(photo, model=run)
    with pytest.raises(ValueError, match="takes no style"):
        kstyle.stylize(photo, model=run, mask=mask, style=photo)
    # The CLI: the mask by name.
    Image.fromarray(photo).save(tmp / "photo.png")
    Image.fromarray(mask).save(tmp / "mask.png")
    result = CliRunner().invoke(main, ["stylize", str(tmp / "photo.png"), "--model", str(run),
                                       "--input", f"mask={tmp / 'mask.png'}",
                                       "--out", str(tmp / "cli.png")])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.asarray(Image.open(tmp / "cli.png")), out)
    missing = CliRunner().invoke(main, ["stylize", str(tmp / "photo.png"), "--model", str(run)])
    assert missing.exit_code == 2 and "needs --input mask=..." in missing.output


def test_a_toy_kind_exports_and_runs_from_each_file(masked_run, monkeypatch):
    import kstyle
    import kstyle.models

    run, tmp = masked_run
    out = tmp / "export"
    result = CliRunner().invoke(main, ["export", str(run), "--saved-model", "--tflite",
                                       "--onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.count(" - ok") == 3, result.output
    photo, mask = photo_and_mask(41, 30)
    expected = kstyle.stylize(photo, model=run, mask=mask)
    for exported in ("masked", "translator.tflite", "translator.onnx"):
        stylizer = kstyle.load(out / exported)
        assert list(stylizer.inputs) == ["mask"] and stylizer.model is None
        got = stylizer(photo, mask=mask)
        assert got.shape == photo.shape
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2, exported
    # The signature travels with the file, for clients that do not know the kind.
    from kstyle.inference.exported import exported_info

    endpoints = exported_info(out / "translator.tflite")["signature"]["endpoints"]
    assert [p["name"] for p in endpoints[0]["inputs"]] == ["images", "mask"]
    # A process that does not know the kind runs the file by the signature it carries.
    monkeypatch.delitem(kstyle.models.KINDS, "masked")
    stylizer = kstyle.load(out / "translator.onnx")
    assert list(stylizer.inputs) == ["mask"]
    got = stylizer(photo, mask=mask)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2
