"""train.out_dir is checked before training starts: a full disk, a file where the folder
should be, or a folder that cannot be written raise a RecipeError naming train.out_dir."""

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TINY, tiny_recipe

from kstyle.cli import main
from kstyle.errors import RecipeError
from kstyle.train import Run
from kstyle.training.run_folder import RunFolder, checkpoint_bytes

QUICKSTART = Path(__file__).resolve().parents[1] / "recipes" / "quickstart.toml"
MiB = 2**20


def disk_with_free(monkeypatch, free):
    real = shutil.disk_usage

    def fake(path):
        return real(path)._replace(free=free)

    monkeypatch.setattr(shutil, "disk_usage", fake)


def test_full_disk_is_reported_before_anything_is_written(tmp_path, monkeypatch):
    disk_with_free(monkeypatch, 12 * MiB)
    with pytest.raises(RecipeError) as err:
        Run(tiny_recipe(tmp_path), log=lambda *_: None)
    message = str(err.value)
    assert message.startswith("tiny.toml: train.out_dir = ")
    assert str(tmp_path / "tiny") in message
    assert "12.0 MiB free" in message and "at least 256 MiB" in message
    assert not (tmp_path / "tiny").exists()


def test_fit_command_reports_a_full_disk(tmp_path, monkeypatch):
    disk_with_free(monkeypatch, RunFolder.MIN_FREE_BYTES - 1)
    out = tmp_path / "run"
    sets = [arg for item in [*TINY, f'train.out_dir="{out}"'] for arg in ("--set", item)]
    result = CliRunner().invoke(main, ["fit", "--quiet", str(QUICKSTART), *sets])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert f"Error: {QUICKSTART}: train.out_dir = {str(out)!r}: its disk has" in result.output
    assert not out.exists()


def test_room_for_this_models_checkpoints_is_checked_once_it_is_built(tmp_path,
                                                                     monkeypatch):
    run = Run(tiny_recipe(tmp_path, name="sized"), log=lambda *_: None)
    per_checkpoint = checkpoint_bytes(run.model)
    # Weights + two Adam slots per trainable weight, at least.
    trainable = sum(net.count_params() for net in run.model.networks.values())
    assert per_checkpoint >= 4 * trainable
    monkeypatch.setattr(RunFolder, "MIN_FREE_BYTES", 0)
    disk_with_free(monkeypatch, 2 * per_checkpoint)  # three are needed from an empty run
    with pytest.raises(RecipeError) as err:
        Run(tiny_recipe(tmp_path), log=lambda *_: None)
    message = str(err.value)
    assert message.startswith("tiny.toml: train.out_dir = ") and "MiB a checkpoint" in message
    assert "need about" in message


def test_just_enough_space_is_enough(tmp_path, monkeypatch):
    disk_with_free(monkeypatch, RunFolder.MIN_FREE_BYTES)
    run = Run(tiny_recipe(tmp_path), log=lambda *_: None)
    assert (run.dir / "recipe.toml").is_file()


@pytest.mark.parametrize("inside, expected", [
    ("", "is a file; it must name a folder"),
    ("sub/run", "which is a file; it must name a folder"),
])
def test_out_dir_on_a_file(tmp_path, inside, expected):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    out = blocker / inside if inside else blocker
    recipe = tiny_recipe(tmp_path, f'train.out_dir="{out}"')
    with pytest.raises(RecipeError) as err:
        Run(recipe, log=lambda *_: None)
    assert str(err.value).startswith(f"tiny.toml: train.out_dir = {str(out)!r} ")
    assert expected in str(err.value)
    if inside:
        assert f"inside {str(blocker)!r}" in str(err.value)
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_dir(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(RecipeError, match="train.out_dir = .* is not writable"):
            Run(tiny_recipe(tmp_path, f'train.out_dir="{locked / "run"}"'),
                log=lambda *_: None)
    finally:
        locked.chmod(0o700)
