"""Run folders written by earlier kstyle versions load, stylize and resume with today's code.

tests/old_runs/ holds tiny runs made by kstyle before its model contract (see
tests/old_runs/make.py), each stopped after the first of two epochs; tests/old_exports/
the files ``kstyle export`` wrote before the inference contract (tests/old_exports/make.py).
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_tiny_photos

OLD_RUNS = Path(__file__).resolve().parent / "old_runs"
OLD_EXPORTS = OLD_RUNS.parent / "old_exports"
EXPORTED = ("saved_model", "translator.tflite", "translator.onnx")
KINDS = ("pix2pix", "cyclegan", "cdae")


def copy_of(kind, tmp_path):
    run = tmp_path / kind
    shutil.copytree(OLD_RUNS / kind, run)
    return run


@pytest.mark.parametrize("kind", KINDS)
def test_an_old_run_stylizes_as_it_did(kind, tmp_path):
    import kstyle

    run = copy_of(kind, tmp_path)
    with np.load(run / "probe.npz") as probe:
        for direction in [d for d in ("a2b", "b2a") if d in probe.files]:
            out = kstyle.load(run, direction=direction)(probe["input"])
            diff = np.abs(out.astype(int) - probe[direction].astype(int))
            assert diff.max() <= 1, (kind, direction, diff.max())


@pytest.mark.parametrize("kind", KINDS)
def test_an_old_run_resumes_where_it_stopped(kind, tmp_path):
    import kstyle
    from kstyle.recipes import load_recipe
    from kstyle.train import fit

    run = copy_of(kind, tmp_path)
    overrides = [f'train.out_dir="{run}"', "train.epochs=2"]
    if kind == "cdae":  # the photos it trained on, written again the same way
        photos = tmp_path / "photos"
        write_tiny_photos(photos / "train", count=6, seed=0)
        write_tiny_photos(photos / "val", count=2, seed=1)
        overrides.append(f'data.path="{photos}"')
    recipe = load_recipe(run / "recipe.toml", overrides)
    saved_step = int(sorted((run / "checkpoints").glob("step_*"))[-1].name.split("_")[1])
    result = fit(recipe, verbose=0, log=lambda *_: None)
    assert result.resumed_from == saved_step
    assert result.step == 2 * saved_step and result.epoch == 2
    with np.load(run / "probe.npz") as probe:  # the second epoch changed the translator
        out = kstyle.load(run)(probe["input"])
        assert np.abs(out.astype(int) - probe["a2b"].astype(int)).max() > 0


@pytest.mark.parametrize("exported", EXPORTED)
@pytest.mark.parametrize("kind", ["pix2pix", "adain"])
def test_an_old_export_runs_as_it_did(kind, exported, tmp_path):
    import kstyle

    folder = tmp_path / kind
    shutil.copytree(OLD_EXPORTS / kind, folder)
    with np.load(folder / "probe.npz") as probe:
        inputs = ({} if kind == "pix2pix" else
                  {"style": probe["style"], "style_size": 0, "strength": float(probe["strength"])})
        out = kstyle.load(folder / exported)(probe["content"], **inputs)
        expected = probe[exported.replace(".", "_")]
    assert out.shape == expected.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1, (kind, exported)
