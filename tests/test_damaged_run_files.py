"""A damaged translator.keras, run.json or recipe.toml of a run folder: stylize, export and
eval name the file and what is wrong, and say the fit command that writes it again; that
command works, and a fit never loses a run's checkpoints to a damaged recipe.toml."""

import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kstyle.cli import main
from kstyle.errors import ModelLoadError

OLD_RUN = Path(__file__).resolve().parent / "old_runs" / "pix2pix"  # synthetic data, finished


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "my run"  # moved away from the recipe's out_dir, with a space
    shutil.copytree(OLD_RUN, folder)
    return folder


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(path)
    return path


def cut_short(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def edit_info(run: Path, **changes):
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, **changes}))


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def rewrite_command(message: str) -> list[str]:
    command = shlex.split(message.partition("are still there): ")[2])
    assert command[:2] == ["kstyle", "fit"], message
    return command[2:]


def test_a_truncated_translator_is_named_and_the_fit_it_names_writes_it_again(run, photo):
    import kstyle

    cut_short(run / "translator.keras")
    with pytest.raises(ModelLoadError) as err:
        kstyle.load(run)
    message = str(err.value)
    assert message.startswith(f"{run / 'translator.keras'}: damaged: not a complete .keras "
                              "file (")
    result = invoke("fit", "--quiet", *rewrite_command(message))
    assert result.exit_code == 0, result.output
    assert "already finished 1 epochs" in result.output
    with np.load(run / "probe.npz") as probe:  # the same network as before the damage
        out = kstyle.load(run)(probe["input"])
        assert np.abs(out.astype(int) - probe["a2b"].astype(int)).max() <= 1


@pytest.mark.parametrize("command", ["stylize", "export", "eval"])
def test_each_command_names_a_damaged_translator(command, run, photo, tmp_path):
    (run / "translator.keras").write_bytes(b"")
    args = {"stylize": [photo, "--model", run, "--out", tmp_path / "out.png"],
            "export": [run, "--tflite", "--out", tmp_path / "export"],
            "eval": [run]}[command]
    result = invoke(command, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"Error: {run / 'translator.keras'}: damaged: not a complete .keras file (0 bytes)" \
        in result.output
    assert "kstyle fit" in result.output


@pytest.mark.parametrize("text, problem", [
    ('{"kind": "pix2', "not valid JSON (Unterminated string starting at: line 1, column 10)"),
    ("[1, 2]", "holds a list, not a JSON object"),
    (b"\xff\xfe\x00", "not text"),
])
def test_run_json_that_is_not_json(run, photo, text, problem):
    path = run / "run.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = invoke("stylize", photo, "--model", run)
    assert result.exit_code == 2, result.output
    assert f"Error: {path}: damaged: {problem}." in result.output
    assert "kstyle fit" in result.output


@pytest.mark.parametrize("changes, problem", [
    ({"size_multiple": "x"}, 'size_multiple = "x" must be an integer of at least 1'),
    ({"size_multiple": 0}, "size_multiple = 0 must be an integer of at least 1"),
    ({"translators": {"a2b": "../elsewhere.keras"}},
     'translators = {"a2b": "../elsewhere.keras"} must be a table of .keras file names'),
    ({"input_transforms": {"a2b": "sepia"}}, "input_transform = 'sepia' is not one of: none"),
])
def test_run_json_with_a_value_of_the_wrong_kind(run, photo, changes, problem):
    edit_info(run, **changes)
    result = invoke("stylize", photo, "--model", run)
    assert result.exit_code == 2, result.output
    assert f"Error: {run / 'run.json'}: damaged: {problem}" in result.output


def test_fit_writes_a_damaged_run_json_again(run):
    (run / "run.json").write_text("{")
    result = invoke("fit", "--quiet", *rewrite_command(
        str(pytest.raises(ModelLoadError, __import__("kstyle").load, run).value)))
    assert result.exit_code == 0, result.output
    assert f"{run / 'run.json'}: damaged: not valid JSON" in result.output
    assert json.loads((run / "run.json").read_text())["kind"] == "pix2pix"


def test_a_damaged_saved_recipe_is_replaced_only_once_the_checkpoint_fits(run, tmp_path):
    (run / "recipe.toml").write_text("garbage [[[")
    recipe = (OLD_RUN / "recipe.toml").read_text()
    other = tmp_path / "other.toml"  # another model: twice the generator's filters
    other.write_text(recipe.replace("\nbase_filters = 2", "\nbase_filters = 4"))
    result = invoke("fit", "--quiet", other, "--set", f"train.out_dir={run}")
    assert result.exit_code == 2, result.output
    assert f"{run / 'recipe.toml'}: not valid TOML" in result.output
    assert ("generator.weights.h5 holds another network than unet_generator: layer "
            "down0_conv has shape (4, 4, 3, 4) here, (4, 4, 3, 2) in the file") in result.output
    assert (run / "recipe.toml").read_text() == "garbage [[["  # nothing was decided yet
    assert (run / "checkpoints" / "step_00000004").is_dir()

    same = tmp_path / "same.toml"
    same.write_text(recipe)
    result = invoke("fit", "--quiet", same, "--set", f"train.out_dir={run}")
    assert result.exit_code == 0, result.output
    assert "base_filters = 2" in (run / "recipe.toml").read_text()
