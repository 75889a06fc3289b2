"""kstyle stylize never loses a file: results never replace inputs or each other, and an
existing result is replaced only when asked."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kstyle.cli import main
from kstyle.data.outputs import OutputExists, plan
from kstyle.errors import DataError


def write(path, size=(20, 24), value=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    image = rng.integers(0, 256, (*size, 3), np.uint8) if value is None else \
        np.full((*size, 3), value, np.uint8)
    Image.fromarray(image).save(path)
    return path


def test_inputs_of_one_stem_get_distinct_results(tmp_path):
    inputs = [write(tmp_path / "in" / "a.jpg"), write(tmp_path / "in" / "a.png"),
              write(tmp_path / "in" / "b.png"), write(tmp_path / "other" / "a.jpg")]
    destinations, notes = plan(inputs, tmp_path / "out")
    assert [d.name for d in destinations] == ["a.jpg.png", "a.png.png", "b.png",
                                              "a.jpg_2.png"]
    assert len(notes) == 1 and "share a name (a)" in notes[0]


def test_a_result_never_replaces_an_input(tmp_path):
    inputs = [write(tmp_path / "in" / "a.png"), write(tmp_path / "in" / "b.jpg")]
    with pytest.raises(DataError, match=r"a.png: the result of .*a.png would replace the "
                                        "input"):
        plan(inputs, tmp_path / "in")


def test_existing_results_are_kept_unless_asked(tmp_path):
    inputs = [write(tmp_path / "in" / "a.png"), write(tmp_path / "in" / "b.png")]
    write(tmp_path / "out" / "a.png")
    with pytest.raises(OutputExists, match="a.png already exist: give --overwrite"):
        plan(inputs, tmp_path / "out")
    assert plan(inputs, tmp_path / "out", skip_existing=True)[0][0].name == "a.png"
    assert plan(inputs, tmp_path / "out", overwrite=True)[0][0].name == "a.png"


def test_the_command_refuses_before_writing_anything(tiny_run, tmp_path):
    folder = tmp_path / "photos"
    a = write(folder / "a.png")
    write(folder / "b.jpg")
    original = a.read_bytes()
    same_folder = CliRunner().invoke(main, ["stylize", str(folder), "--model", str(tiny_run),
                                            "--out", str(folder)])
    assert same_folder.exit_code == 2 and "would replace the input" in same_folder.output
    same_file = CliRunner().invoke(main, ["stylize", str(a), "--model", str(tiny_run),
                                          "--out", str(a)])
    assert same_file.exit_code == 2 and "would replace its input" in same_file.output
    assert a.read_bytes() == original and not (folder / "b.png").exists()
    out = tmp_path / "out"
    first = CliRunner().invoke(main, ["stylize", str(folder), "--model", str(tiny_run),
                                      "--out", str(out)])
    assert first.exit_code == 0, first.output
    written = (out / "a.png").read_bytes()
    again = CliRunner().invoke(main, ["stylize", str(folder), "--model", str(tiny_run),
                                      "--out", str(out)])
    assert again.exit_code == 2 and "give --overwrite" in again.output
    (out / "a.png").write_bytes(b"")
    replaced = CliRunner().invoke(main, ["stylize", str(folder), "--model", str(tiny_run),
                                         "--out", str(out), "--overwrite"])
    assert replaced.exit_code == 0 and Image.open(out / "a.png").size == (24, 20)
    assert len((out / "a.png").read_bytes()) > 0 and written


def test_a_folder_goes_on_past_a_tiny_image(tmp_path):
    from kstyle.nets import resnet_generator

    run = tmp_path / "net.keras"
    resnet_generator(base_filters=4, num_blocks=1).save(run)
    folder = tmp_path / "photos"
    write(folder / "tiny.png", size=(2, 3))
    write(folder / "normal.png", size=(30, 20))
    result = CliRunner().invoke(main, ["stylize", str(folder), "--model", str(run),
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "tiny.png").size == (3, 2)
    assert Image.open(tmp_path / "out" / "normal.png").size == (20, 30)
