"""Writes the exported files of tests/old_exports/: made by kstyle before its inference
contract (one signature per model kind).

They were written by kstyle at commit 0184187 (the last before the signatures), with

    git worktree add /tmp/old 0184187
    cd /tmp/old && PYTHONPATH=. python /path/to/tests/old_exports/make.py /path/to/tests/old_exports

- ``pix2pix/``: ``tests/old_runs/pix2pix`` exported to a SavedModel, a .tflite and an
  .onnx file;
- ``adain/``: a tiny adain run (its encoder and decoder at 1/16 of the paper's widths)
  exported the same way: three endpoints, and three ONNX files.

Each folder holds ``probe.npz``: fixed inputs and what the exported file made of them
then. ``tests/test_old_runs.py`` loads and runs them with today's code.
"""

import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make(out: Path):
    import keras
    from conftest import write_tiny_photos
    from test_adain import TINY_ADAIN, write_styles

    import kstyle
    from kstyle.export import export_run
    from kstyle.recipes import recipe_from_dict
    from kstyle.train import fit

    work = out / "_work"
    shutil.rmtree(work, ignore_errors=True)
    rng = np.random.default_rng(0)
    content = rng.integers(0, 256, (36, 28, 3), dtype=np.uint8)
    style = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    quiet = lambda *_: None  # noqa: E731

    def export(run, name):
        target = out / name
        shutil.rmtree(target, ignore_errors=True)
        export_run(run, target, saved_model=True, tflite=True, onnx=True, images=[run_images],
                   log=quiet)
        return target

    run_images = work / "images"
    write_tiny_photos(run_images, count=2, seed=3)

    # pix2pix: the old run folder of the tests, exported.
    target = export(out.parent / "old_runs" / "pix2pix", "pix2pix")
    probes = {f: kstyle.load(target / f)(content) for f in
              ("saved_model", "translator.tflite", "translator.onnx")}
    np.savez(target / "probe.npz", content=content,
             **{f.replace(".", "_"): v for f, v in probes.items()})

    # adain: a tiny run, its VGG19 random (no ImageNet weights here).
    vgg = keras.applications.VGG19(include_top=False, weights=None,
                                   input_shape=(None, None, 3))
    vgg.save_weights(work / "vgg19.weights.h5")
    photos, styles = work / "photos", work / "styles"
    write_tiny_photos(photos / "train", count=6, seed=0)
    write_tiny_photos(photos / "val", count=2, seed=1)
    write_styles(styles)
    recipe = recipe_from_dict({"name": "adain"}, [
        *TINY_ADAIN, f'data.path="{photos}"', f'data.style_path="{styles}"',
        f'model.vgg_weights="{work / "vgg19.weights.h5"}"', f'train.out_dir="{work}"',
        "model.encoder_width=0.0625", "model.decoder_width=0.0625", "train.epochs=1"],
        source="adain.toml")
    run = fit(recipe, verbose=0, log=quiet).run_dir
    target = export(run, "adain")
    probes = {f: kstyle.load(target / f).stylize_array(content, style, style_size=0,
                                                       strength=0.7)
              for f in ("saved_model", "translator.tflite", "translator.onnx")}
    np.savez(target / "probe.npz", content=content, style=style, strength=0.7,
             **{f.replace(".", "_"): v for f, v in probes.items()})
    shutil.rmtree(work)


if __name__ == "__main__":
    make(Path(sys.argv[1]).resolve())
