"""The disk fills up during a run: one clear message, nothing complete lost, and the run
resumes once there is room."""

import errno

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY, tiny_recipe

from kstyle.errors import KstyleError
from kstyle.train import fit


def test_a_full_disk_mid_run_is_one_message_and_the_run_resumes(tmp_path, monkeypatch):
    import kstyle.training.checkpoints as checkpoints

    real, calls = np.savez, []

    def savez(path, **arrays):
        calls.append(path)
        if len(calls) > 2:  # the first checkpoint (two .npz files) fits, then none does
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, **arrays)

    monkeypatch.setattr(checkpoints.np, "savez", savez)
    recipe = tiny_recipe(tmp_path)
    with pytest.raises(KstyleError) as error:
        fit(recipe, verbose=0, log=lambda *_: None)
    message = str(error.value)
    assert f"the disk of {recipe.run_dir} is full" in message
    assert "step_00000003 (step 3)" in message and "resume" in message
    monkeypatch.setattr(checkpoints.np, "savez", real)  # room again
    resumed = fit(recipe, verbose=0, log=lambda *_: None)
    assert resumed.resumed_from == 3 and resumed.step == 8


def test_the_fit_command_says_it_in_one_line(tmp_path, monkeypatch):
    import kstyle.training.checkpoints as checkpoints
    from kstyle.cli import main

    def savez(path, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(checkpoints.np, "savez", savez)
    out = tmp_path / "run"
    sets = [a for item in [*TINY, f'train.out_dir="{out}"'] for a in ("--set", item)]
    result = CliRunner().invoke(main, ["fit", "--quiet", "recipes/quickstart.toml", *sets])
    assert result.exit_code == 2, result.output
    assert f"Error: the disk of {out} is full" in result.output
    assert "Traceback" not in result.output
