"""Shared fixtures: tiny recipes and one tiny trained run reused by many tests."""

import gc
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: two workers where there are two cores or more. Much of a test's time is
    one thread's (tracing, building models, starting subprocesses), which a second worker
    fills; each worker's TensorFlow uses every core for the rest, so more workers than two
    only add memory (a few GiB each)."""
    return min(2, os.cpu_count() or 1)


def pytest_collection_finish(session):
    # What collecting imported (TensorFlow, Keras, kstyle, the test modules) lives for the
    # whole session: out of the garbage collector's sight, each of its thousands of
    # collections in a process this size gets cheaper.
    gc.collect()
    gc.freeze()


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(),
    reason=f"real images not found at {SHARED_DATA} (the shared data folder beside the repo)")

TINY = [
    "data.source=synthetic", "data.image_size=32", "data.load_size=36", "data.batch_size=2",
    "data.synthetic_count=16", "model.base_filters=8", "model.num_downs=5",
    "model.d_base_filters=8", "model.d_layers=2", "model.norm=instance",
    "train.epochs=2", "train.steps_per_epoch=4", "train.checkpoint_every=3",
    "train.num_samples=2", "train.val_steps=1", "train.lr_policy=constant",
    "train.precision=float32",  # the same numbers on every CPU ("auto" depends on it)
]


def tiny_recipe(tmp_path, *overrides, name="tiny"):
    """A recipe for a seconds-long pix2pix run on the synthetic source, in tmp_path."""
    from kstyle.recipes import recipe_from_dict

    return recipe_from_dict({"name": name}, [*TINY, f'train.out_dir="{tmp_path / name}"',
                                             *overrides], source="tiny.toml")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished tiny run folder (2 epochs of 4 steps)."""
    from kstyle.train import fit

    tmp = tmp_path_factory.mktemp("runs")
    result = fit(tiny_recipe(tmp), verbose=0, log=lambda *_: None)
    return result.run_dir


@pytest.fixture(scope="session")
def random_vgg(tmp_path_factory):
    """A random-weight VGG19 without its top, and its weights saved in two formats.

    No ImageNet weights can be downloaded here: the style losses are tested with these,
    which also exercises loading VGG19 weights from a local file.
    """
    import warnings

    import keras

    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    folder = tmp_path_factory.mktemp("vgg")
    vgg.save_weights(folder / "vgg19.weights.h5")
    # Keras' legacy HDF5 format, that of the file keras.applications downloads.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vgg.save(folder / "vgg19.h5")
    return folder, vgg


TINY_CYCLEGAN = [
    "model.kind=cyclegan", "data.source=synthetic", "data.image_size=32",
    "data.load_size=36", "data.batch_size=1", "data.synthetic_count=8",
    "model.base_filters=4", "model.num_blocks=1", "model.d_base_filters=4",
    "model.d_layers=2", "model.pool_size=3", "train.epochs=2", "train.steps_per_epoch=3",
    "train.checkpoint_every=2", "train.num_samples=2", "train.val_steps=1",
    "train.lr_policy=constant", "train.precision=float32",
]


def tiny_cyclegan_recipe(tmp_path, *overrides, name="tiny_cyclegan"):
    """A recipe for a seconds-long CycleGAN run on the unpaired synthetic domains."""
    from kstyle.recipes import recipe_from_dict

    return recipe_from_dict({"name": name}, [*TINY_CYCLEGAN, f'train.out_dir="{tmp_path / name}"',
                                             *overrides], source="tiny_cyclegan.toml")


TINY_CDAE = [
    "model.kind=cdae", "data.source=photos", "data.derive=gray", "data.image_size=32",
    "data.load_size=36", "data.batch_size=2", "model.base_filters=8", "model.num_downs=5",
    "model.d_base_filters=8", "model.d_layers=2", "train.epochs=2",
    "train.steps_per_epoch=3", "train.checkpoint_every=2", "train.num_samples=2",
    "train.val_steps=1", "train.lr_policy=constant", "train.precision=float32",
]


def write_tiny_photos(folder, count=4, size=40, seed=0):
    """Writes `count` small color photos (smooth gradients and a disc) as PNGs in folder."""
    import numpy as np
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    for i in range(count):
        colors = rng.uniform(0, 255, (3, 3))
        image = colors[0] * x[..., None] + colors[1] * y[..., None]
        cy, cx = rng.uniform(0.2, 0.8, 2)
        disc = (y - cy) ** 2 + (x - cx) ** 2 < 0.05
        image[disc] = colors[2]
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def tiny_cdae_recipe(tmp_path, *overrides, name="tiny_cdae"):
    """A recipe for a seconds-long CDAE colorization run on a few generated photos."""
    from kstyle.recipes import recipe_from_dict

    photos = tmp_path / "photos"
    if not photos.is_dir():
        write_tiny_photos(photos / "train", count=6, seed=0)
        write_tiny_photos(photos / "val", count=2, seed=1)
    return recipe_from_dict({"name": name}, [*TINY_CDAE, f'data.path="{photos}"',
                                             f'train.out_dir="{tmp_path / name}"',
                                             *overrides], source="tiny_cdae.toml")


@pytest.fixture(autouse=True, scope="session")
def no_published_model_downloads(tmp_path_factory):
    """No test reaches the internet for a published model or writes the user's cache: the
    model cache is a fresh folder and the mirror an empty one (tests of the zoo set their
    own, a local server)."""

    saved = {k: os.environ.get(k) for k in ("KSTYLE_HOME", "KSTYLE_ZOO_MIRROR")}
    os.environ["KSTYLE_HOME"] = str(tmp_path_factory.mktemp("kstyle_home"))
    os.environ["KSTYLE_ZOO_MIRROR"] = str(tmp_path_factory.mktemp("empty_mirror"))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
