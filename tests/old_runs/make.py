"""Writes the run folders of tests/old_runs/: made by kstyle before its model contract.

They were written by kstyle at commit c87b861 (the last before the options moved into the
model files), with

    git worktree add /tmp/old c87b861
    cd /tmp/old && PYTHONPATH=. python /path/to/tests/old_runs/make.py /path/to/tests/old_runs

Each is a tiny run stopped after its first epoch of two: ``recipe.toml``, ``run.json``,
one checkpoint, the translators, and ``probe.npz`` (a fixed input and what the run's
translator made of it then). ``tests/test_old_runs.py`` resumes, loads and stylizes them
with today's code. Samples and logs are left out to keep the folders small.
"""

import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import tiny_cdae_recipe, tiny_cyclegan_recipe, tiny_recipe  # noqa: E402


def make(out: Path):
    import kstyle
    from kstyle.train import fit

    work = out / "_work"
    small = ("train.epochs=1", "model.base_filters=2", "model.d_base_filters=2")
    recipes = {"pix2pix": tiny_recipe(work, *small, name="pix2pix"),
               "cyclegan": tiny_cyclegan_recipe(work, *small, name="cyclegan"),
               "cdae": tiny_cdae_recipe(work, *small, name="cdae")}
    probe = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for name, recipe in recipes.items():
        run = fit(recipe, verbose=0, log=lambda *_: None).run_dir
        target = out / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(run, target, ignore=shutil.ignore_patterns("samples", "logs", "*.png",
                                                                    "*.csv"))
        *older, _ = sorted((target / "checkpoints").glob("step_*"))
        for folder in older:
            shutil.rmtree(folder)
        outputs = {d: kstyle.load(run, direction=d)(probe) for d in ("a2b", "b2a")
                   if (run / f"translator{'' if d == 'a2b' else '_b2a'}.keras").is_file()}
        np.savez(target / "probe.npz", input=probe, **outputs)
    shutil.rmtree(work)


if __name__ == "__main__":
    make(Path(sys.argv[1]).resolve())
