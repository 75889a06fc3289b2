"""FID and KID: the math on hand-checkable features, InceptionV3 features, `kstyle eval`."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import tiny_cyclegan_recipe
from PIL import Image

from kstyle import evaluate as ev
from kstyle.cli import main
from kstyle.errors import ModelLoadError
from kstyle.metrics import fid, frechet_distance, kid
from kstyle.nets import inception
from kstyle.nets.inception import INCEPTION_WEIGHTS_ENV, inception_features


def _features(n, d, seed=0):
    rng = np.random.default_rng(seed)
    return np.abs(rng.normal(size=(n, d))) * rng.uniform(0.1, 3.0, d)


def _moments(x):
    return x.mean(axis=0), np.cov(x, rowvar=False)


# --------------------------------------------------------------------------- the math


@pytest.mark.parametrize("n, d", [(60, 16), (8, 64)])  # N > D, and N < D (singular S)
def test_identical_sets_give_zero_fid(n, d):
    x = _features(n, d)
    trace = np.trace(np.cov(x, rowvar=False))
    assert abs(fid(x, x)) <= 1e-6 * trace
    assert abs(frechet_distance(*_moments(x), *_moments(x))) <= 1e-6 * trace


def test_identical_sets_give_near_zero_kid():
    # The unbiased estimate of a set against itself is not 0 but, with K its kernel
    # matrix, 2 / (m (m - 1)) * (sum(K) / m - tr(K)): negative and O(1/m).
    x = _features(100, 16)
    gram = (x @ x.T / 16 + 1.0) ** 3
    m = len(x)
    same, _ = kid(x, x, subsets=2, subset_size=m)
    assert same == pytest.approx(2 / (m * (m - 1)) * (gram.sum() / m - np.trace(gram)))
    shifted, _ = kid(x, x + 1.0, subsets=2, subset_size=m)
    assert -0.05 * shifted < same < 0 < shifted


@pytest.mark.parametrize("n, d", [(60, 16), (8, 64)])
def test_a_constant_shift_gives_its_squared_norm(n, d):
    x = _features(n, d)
    c = np.random.default_rng(1).normal(size=d)
    assert fid(x, x + c) == pytest.approx(c @ c, rel=1e-9)
    assert fid(x + c, x) == pytest.approx(c @ c, rel=1e-9)


def test_diagonal_covariances_match_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 0.25, 9.0]), np.array([4.0, 1.0, 0.25, 0.0])
    expected = np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2) + np.sum((mu1 - mu2) ** 2)
    # (1 + 1 + 0 + 9) + (1 + 0 + 4 + 0.25)
    assert expected == 16.25
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(16.25)


def test_sample_space_fid_equals_the_moments_formula():
    # fid() takes a shortcut when a set has fewer samples than features.
    x, y = _features(8, 64, seed=2), _features(11, 64, seed=3) + 0.3
    assert fid(x, y) == pytest.approx(frechet_distance(*_moments(x), *_moments(y)), rel=1e-9)
    assert fid(x, y) == pytest.approx(fid(y, x), rel=1e-12)


def test_kid_of_two_points_by_hand():
    # k(u, v) = (u.v / 2 + 1)^3. x = {(1, 0), (0, 1)}, y = {(1, 1), (0, 0)}.
    # Within x: x1.x2 = 0 -> k = 1, mean over the 2 ordered pairs i != j: 1. Within y: 1.
    # Across: x1.y1 = x2.y1 = 1 -> 1.5^3 = 3.375; x1.y2 = x2.y2 = 0 -> 1; mean 2.1875.
    # MMD^2 = 1 + 1 - 2 * 2.1875 = -2.375, for every subset (each holds both points).
    x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0], [0.0, 0.0]])
    mean, std = kid(x, y, subsets=3)
    assert mean == pytest.approx(-2.375) and std == pytest.approx(0.0)


def test_kid_of_three_points_by_explicit_sums():
    x = np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 1.0]])
    y = np.array([[3.0, 0.0], [0.0, -1.0], [1.0, 2.0]])

    def k(u, v):
        return (float(u @ v) / 2 + 1) ** 3

    pairs = [(i, j) for i in range(3) for j in range(3)]
    k_xx = sum(k(x[i], x[j]) for i, j in pairs if i != j) / 6
    k_yy = sum(k(y[i], y[j]) for i, j in pairs if i != j) / 6
    k_xy = sum(k(x[i], y[j]) for i, j in pairs) / 9
    mean, std = kid(x, y, subsets=4, subset_size=10)  # capped at 3: the whole sets
    assert mean == pytest.approx(k_xx + k_yy - 2 * k_xy) and std == pytest.approx(0.0)


def test_kid_on_subsets_is_seeded():
    x, y = _features(30, 8, seed=4), _features(40, 8, seed=5)
    first = kid(x, y, subsets=7, subset_size=10, seed=3)
    assert first == kid(x, y, subsets=7, subset_size=10, seed=3)
    assert first[1] > 0  # different subsets, different estimates


def test_too_few_samples_are_refused():
    with pytest.raises(ValueError, match="N >= 2"):
        fid(np.ones((1, 4)), np.ones((5, 4)))


# --------------------------------------------------------------------------- InceptionV3


@pytest.fixture(scope="module")
def random_inception():
    keras.utils.set_random_seed(0)
    return inception_features(weights="random")


def _images(seed, n=4, size=24):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype("float32")


def test_random_inception_features_give_fid_zero_to_self(random_inception):
    a = random_inception(_images(0), training=False).numpy().astype(np.float64)
    b = random_inception(_images(1, size=40), training=False).numpy().astype(np.float64)
    assert a.shape == b.shape == (4, 2048)
    assert abs(fid(a, a)) <= 1e-6 * np.trace(np.cov(a, rowvar=False))
    assert fid(a, b) > 0


def test_weights_from_a_local_file_give_identical_features(random_inception, tmp_path):
    path = tmp_path / "inception.weights.h5"
    random_inception.get_layer("inception_v3").save_weights(path)
    images = _images(2, n=2)
    np.testing.assert_array_equal(inception_features(path)(images, training=False).numpy(),
                                  random_inception(images, training=False).numpy())


def test_offline_imagenet_weights_name_the_file_to_fetch(monkeypatch):
    real = keras.applications.InceptionV3

    def offline(*args, weights=None, **kwargs):
        if weights == "imagenet":
            raise Exception("URL fetch failure on https://storage.googleapis.com/...: None "
                            "-- [Errno -3] Temporary failure in name resolution")
        return real(*args, weights=weights, **kwargs)

    monkeypatch.setattr(keras.applications, "InceptionV3", offline)
    monkeypatch.delenv(INCEPTION_WEIGHTS_ENV, raising=False)
    with pytest.raises(ModelLoadError) as info:
        inception_features("imagenet")
    message = str(info.value)
    for part in (inception.INCEPTION_WEIGHTS_FILE, inception.INCEPTION_WEIGHTS_URL,
                 "~/.keras/models/", INCEPTION_WEIGHTS_ENV, "name resolution"):
        assert part in message
    with pytest.raises(ModelLoadError, match="not found; expected inception_v3_weights"):
        inception_features("/nonexistent/inception.h5")
    # The environment variable stands in for "imagenet": its file, not a download.
    monkeypatch.setenv(INCEPTION_WEIGHTS_ENV, "/nonexistent/from_env.h5")
    with pytest.raises(ModelLoadError, match="'/nonexistent/from_env.h5' not found"):
        inception_features("imagenet")


# --------------------------------------------------------------------------- kstyle eval


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    from kstyle.train import fit

    recipe = tiny_cyclegan_recipe(tmp_path_factory.mktemp("metrics"), "train.epochs=1")
    return fit(recipe, verbose=0, log=lambda *_: None).run_dir


def test_cli_eval_of_a_cyclegan_run_reports_fid_and_kid(cyclegan_run, tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["eval", str(cyclegan_run), "--inception-weights",
                                       "random", "--limit", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert (scores["n_translated"], scores["n_real"], scores["direction"]) == (4, 4, "a2b")
    assert scores["kind"] == "cyclegan" and scores["inception_weights"] == "random"
    assert scores["fid"] >= 0 and np.isfinite(scores["kid"]) and scores["kid_std"] >= 0
    assert "n_translated=4, n_real=4" in result.output and "FID" in result.output
    assert "NOT comparable" in result.output


def _identity(run, direction=None):
    """Stands in for a loaded translator: outputs its input."""
    from kstyle.api import Stylizer

    inputs = keras.Input((None, None, 3))
    return Stylizer.from_network(keras.Model(inputs, inputs))


def _mean_colours(weights):
    # A cheap stand-in for InceptionV3: per-image channel means and spreads.
    return lambda x: np.concatenate([np.mean(x, axis=(1, 2)), np.std(x, axis=(1, 2))],
                                    axis=1).astype(np.float64)


def test_unpaired_eval_translates_the_source_domain_and_reads_each_image_once(
        cyclegan_run, tmp_path, monkeypatch):
    # testA: a0..a2; testB: the same three and two more. The identity "translator"
    # turns A into copies of B's first three images: FID 0 against those.
    data = tmp_path / "domains"
    for folder in ("testA", "testB"):
        (data / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        img = Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8))
        img.save(data / "testB" / f"a{i}.png")
        if i < 3:
            img.save(data / "testA" / f"a{i}.png")
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.toml").write_text((cyclegan_run / "recipe.toml").read_text().replace(
        'source = "synthetic"', 'source = "folders"'))
    monkeypatch.setattr(ev, "load", _identity)
    monkeypatch.setattr(ev, "_feature_extractor", _mean_colours)

    scores = ev.evaluate_run(run, data, split="test", batch_size=2)
    assert (scores["n_translated"], scores["n_real"], scores["split"]) == (3, 5, "test")
    assert scores["fid"] > 0
    same = ev.evaluate_run(run, data, split="test", limit=3, batch_size=2)
    assert same["fid"] == pytest.approx(0.0, abs=1e-9)
    back = ev.evaluate_run(run, data, split="test", direction="b2a", batch_size=4)
    assert (back["n_translated"], back["n_real"]) == (5, 3)


def test_paired_eval_adds_fid_on_request_and_refuses_b2a(tiny_run, monkeypatch):
    monkeypatch.setattr(ev, "_feature_extractor", _mean_colours)
    scores = ev.evaluate_run(tiny_run, limit=4, fid=True)
    assert scores["kind"] == "pix2pix" and scores["n"] == 4
    assert scores["fid"] >= 0 and {"l1", "psnr", "ssim", "kid", "kid_std"} <= set(scores)
    assert "fid" not in ev.evaluate_run(tiny_run, limit=2)
    with pytest.raises(ModelLoadError, match="translates one way only"):
        ev.evaluate_run(tiny_run, direction="b2a")
