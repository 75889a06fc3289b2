"""Files removed or rewritten under a running fit: the message names the file, the steps
trained are saved, and the run resumes once the data is back."""

import shutil

import keras
import pytest
from conftest import tiny_cdae_recipe

from kstyle.errors import DataError
from kstyle.train import fit


class AtStep(keras.callbacks.Callback):
    def __init__(self, step, action):
        super().__init__()
        self.step, self.action, self.done = step, action, False

    def on_train_batch_end(self, batch, logs=None):
        if not self.done and self.model.step == self.step:
            self.done = True
            self.action()


@pytest.mark.parametrize("change", ["remove", "rewrite"])
def test_a_file_changed_mid_run_is_named_and_the_steps_are_kept(tmp_path, change):
    recipe = tiny_cdae_recipe(tmp_path, "train.epochs=4")
    train = tmp_path / "photos" / "train"
    backup = shutil.copytree(train, tmp_path / "backup")

    def act():
        for photo in sorted(train.iterdir()):
            if change == "remove":
                photo.unlink()
            else:
                photo.write_bytes(b"not an image any more")

    with pytest.raises(DataError) as error:
        fit(recipe, callbacks=[AtStep(2, act)], verbose=0, log=lambda *_: None)
    message = str(error.value)
    assert "the training data changed during the run" in message
    assert str(train) in message and "resume" in message
    step = int(message.split(" is saved in ")[0].rsplit("step ", 1)[1])
    assert step >= 2
    assert (recipe.run_dir / "checkpoints" / f"step_{step:08d}").is_dir()
    shutil.rmtree(train)
    shutil.copytree(backup, train)
    resumed = fit(recipe, verbose=0, log=lambda *_: None)
    assert resumed.resumed_from == step and resumed.step == 12
