"""Errors a user meets in stylize and eval: one line naming the file or option, exit 2,
and a folder of inputs with a bad file stylizes the rest."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kstyle.cli import main

OLD_RUN = Path(__file__).resolve().parent / "old_runs" / "pix2pix"  # synthetic data


@pytest.fixture
def run(tmp_path):
    shutil.copytree(OLD_RUN, tmp_path / "run")
    return tmp_path / "run"


def write_photos(folder: Path, count: int):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), np.uint8)).save(folder / f"p{i}.png")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_folder_with_unreadable_files_stylizes_the_others(run, tmp_path):
    inputs = tmp_path / "inputs"
    write_photos(inputs, 2)
    (inputs / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\nxx")
    (inputs / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    result = invoke("stylize", inputs, "--model", run, "--out", out)
    assert result.exit_code == 2, result.output
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png"]
    assert f"{inputs / 'cut.png'}: not stylized: not an image" in result.output
    assert f"{inputs / 'empty.jpg'}: not stylized: empty file (0 bytes)" in result.output
    assert f"Error: 2 of 4 inputs could not be read (listed above); the other results are " \
           f"in {out}" in result.output


def test_a_single_unreadable_input_is_the_error(run, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    result = invoke("stylize", bad, "--model", run, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert f"Error: image file '{bad}': not an image" in result.output


@pytest.mark.parametrize("args, message", [
    (["stylize", "IMG", "--model", "RUN", "--tile", "-1"],
     "Invalid value for '--tile': -1 is not in the range x>=0."),
    (["eval", "RUN", "--limit", "0"], "Invalid value for '--limit': 0 is not in the range x>=1."),
])
def test_option_ranges(run, tmp_path, args, message):
    write_photos(tmp_path / "img", 1)
    swap = {"RUN": run, "IMG": tmp_path / "img" / "p0.png"}
    result = invoke(*[swap.get(a, a) for a in args])
    assert result.exit_code == 2 and message in result.output


def test_eval_refuses_data_for_a_run_on_generated_pairs(run, tmp_path):
    result = invoke("eval", run, "--data", tmp_path)
    assert result.exit_code == 2
    assert f'trained on generated pairs (data.source = "synthetic"), which read no ' \
           f"data.path: leave out --data {tmp_path}" in result.output


def test_eval_names_the_file_that_keeps_a_split_from_being_scored(run, tmp_path):
    recipe = run / "recipe.toml"
    recipe.write_text(recipe.read_text().replace('source = "synthetic"', 'source = "photos"'))
    photos = tmp_path / "photos"
    write_photos(photos / "val", 2)
    (photos / "val" / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\nxx")
    result = invoke("eval", run, "--data", photos)
    assert result.exit_code == 2, result.output
    assert f"no usable images for data.path = '{photos}' (split 'val': 1 of 3 image files" \
        in result.output
    assert f"'{photos / 'val' / 'cut.png'}': not an image" in result.output
