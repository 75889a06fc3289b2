"""A damaged checkpoint (truncated by a storage crash or a copy cut short) is named, and the
run resumes from the newest complete one; nothing complete is lost."""

import os

import pytest
from conftest import tiny_recipe

from kstyle.errors import KstyleError
from kstyle.train import fit


def truncate(path, keep=0.5):
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))


@pytest.fixture
def two_checkpoints(tmp_path):
    """A finished 2-epoch run: checkpoints at steps 6 (every 3) and 8 (the epoch end)."""
    recipe = tiny_recipe(tmp_path, name="run")
    fit(recipe, verbose=0, log=lambda *_: None)
    folder = recipe.run_dir / "checkpoints"
    assert sorted(os.listdir(folder)) == ["step_00000006", "step_00000008"]
    return tmp_path, folder


@pytest.mark.parametrize("damaged_file", ["generator.weights.h5", "optimizers.npz",
                                          "rng.npz", "state.json"])
def test_a_damaged_newest_checkpoint_is_named_and_the_older_one_used(two_checkpoints,
                                                                      damaged_file):
    tmp_path, folder = two_checkpoints
    truncate(folder / "step_00000008" / damaged_file)
    lines = []
    result = fit(tiny_recipe(tmp_path, "train.epochs=3", name="run"), verbose=0,
                 log=lines.append)
    said = "\n".join(lines)
    assert result.resumed_from == 6 and result.step == 12
    assert "step_00000008 is damaged" in said and damaged_file in said
    assert "2 steps are trained again" in said
    # Set aside for a look, out of the checkpoints a resume considers.
    assert (folder / "damaged_step_00000008").is_dir()
    assert "step_00000012" in os.listdir(folder)


def test_every_checkpoint_damaged_stops_and_names_each(two_checkpoints):
    tmp_path, folder = two_checkpoints
    for step in ("step_00000006", "step_00000008"):
        truncate(folder / step / "discriminator.weights.h5", keep=0.1)
    with pytest.raises(KstyleError) as error:
        fit(tiny_recipe(tmp_path, "train.epochs=3", name="run"), verbose=0,
            log=lambda *_: None)
    message = str(error.value)
    assert "step_00000006" in message and "step_00000008" in message
    assert "discriminator.weights.h5" in message
    assert sorted(os.listdir(folder)) == ["step_00000006", "step_00000008"]  # untouched
