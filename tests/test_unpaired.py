"""Tests of kstyle.data.unpaired: CycleGAN folders, tfds, synthetic domains, pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kstyle.data import (
    SYNTHETIC_CLASSES,
    UNPAIRED_SOURCES,
    synthetic_pairs,
    to_uint8,
    unpaired_count,
    unpaired_dataset,
)
from kstyle.errors import DataError

HORSE2ZEBRA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "horse2zebra"
needs_horse2zebra = pytest.mark.skipif(
    not all((HORSE2ZEBRA / name).is_dir() for name in ("trainA", "trainB", "testA", "testB")),
    reason=f"real unpaired images not found at {HORSE2ZEBRA} (trainA/trainB/testA/testB)",
)

# Red channel of the solid images: A and B sets are disjoint.
A_REDS = (0, 40, 80)
B_REDS = (130, 160, 190, 220, 250)


def save_solid(path: Path, red: int, size=(10, 12)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.zeros((*size, 3), np.uint8)
    image[..., 0] = red
    Image.fromarray(image).save(path)


@pytest.fixture
def cyclegan_folders(tmp_path):
    """trainA: 3 solid images, trainB: 5, testA/testB: 2 each (distinct reds)."""
    for i, red in enumerate(A_REDS):
        save_solid(tmp_path / "trainA" / f"a{i}.png", red)
    for i, red in enumerate(B_REDS):
        save_solid(tmp_path / "trainB" / f"b{i}.png", red, size=(7, 9))
    for split_red, domain in ((10, "A"), (200, "B")):
        for i in range(2):
            save_solid(tmp_path / f"test{domain}" / f"{i}.png", split_red)
    return tmp_path


def reds(ds) -> list[tuple[int, int]]:
    """(red of A, red of B) of every pair of a batch-1 dataset."""
    out = []
    for a, b in ds:
        out.append((int(to_uint8(a)[0, 0, 0, 0]), int(to_uint8(b)[0, 0, 0, 0])))
    return out


# ---------------------------------------------------------------- folders


def test_folders_epoch_is_the_longer_domain_and_domains_stay_apart(cyclegan_folders):
    ds = unpaired_dataset("folders", cyclegan_folders, image_size=4, load_size=6, seed=3)
    pairs = reds(ds)
    assert len(pairs) == 5
    a_seen, b_seen = [a for a, _ in pairs], [b for _, b in pairs]
    assert set(a_seen) == set(A_REDS)  # A is cycled: its 3 images fill 5 pairs
    assert sorted(b_seen) == sorted(B_REDS)  # every B exactly once
    assert unpaired_count("folders", cyclegan_folders) == (3, 5)


def test_folders_orders_independent_and_deterministic(cyclegan_folders):
    def orders(seed):
        pairs = reds(unpaired_dataset("folders", cyclegan_folders, image_size=4, seed=seed))
        a_index = [A_REDS.index(a) for a, _ in pairs[:3]]
        b_index = [B_REDS.index(b) for _, b in pairs[:3]]
        return a_index, b_index

    runs = [orders(seed) for seed in range(6)]
    assert any(a != b for a, b in runs), "A and B should not be shuffled alike"
    assert len({tuple(a) for a, _ in runs}) > 1, "the seed should change the A order"
    assert orders(4) == runs[4]
    # Domains of equal length: a shared shuffle would give the very same order.
    for domain, base in (("A", 0), ("B", 100)):
        for i in range(6):
            save_solid(cyclegan_folders / f"val{domain}" / f"{i}.png", base + 20 * i)
    for seed in range(3):
        pairs = reds(
            unpaired_dataset("folders", cyclegan_folders, split="val", image_size=4, seed=seed)
        )
        assert sorted(a for a, _ in pairs) == [20 * i for i in range(6)]
        assert [a for a, _ in pairs] != [b - 100 for _, b in pairs]


def test_folders_no_shuffle_no_augment_is_file_order(cyclegan_folders):
    ds = unpaired_dataset(
        "folders", cyclegan_folders, image_size=4, augment=False, shuffle=False, seed=9
    )
    assert reds(ds) == [(A_REDS[i % 3], B_REDS[i]) for i in range(5)]


def test_folders_test_split(cyclegan_folders):
    ds = unpaired_dataset("folders", cyclegan_folders, split="test", image_size=4)
    assert reds(ds) == [(10, 200), (10, 200)]
    assert unpaired_count("folders", cyclegan_folders, split="test") == (2, 2)


def test_folders_missing_domain_named_with_layout(cyclegan_folders, tmp_path):
    for image in (cyclegan_folders / "trainB").iterdir():
        image.unlink()
    (cyclegan_folders / "trainB").rmdir()
    with pytest.raises(DataError, match="trainB") as info:
        unpaired_dataset("folders", cyclegan_folders, image_size=4)
    message = str(info.value)
    assert str(cyclegan_folders / "trainB") in message and "<split>A" in message
    with pytest.raises(DataError, match="nowhere"):
        unpaired_count("folders", tmp_path / "nowhere")


def test_repeat_and_batches(cyclegan_folders):
    ds = unpaired_dataset(
        "folders", cyclegan_folders, image_size=4, batch_size=2, repeat=True, seed=1
    )
    assert ds.element_spec[0].shape == (2, 4, 4, 3)
    batches = list(ds.take(7))  # well past one epoch of 5 pairs
    assert all(a.shape == (2, 4, 4, 3) and b.shape == (2, 4, 4, 3) for a, b in batches)
    once = unpaired_dataset("folders", cyclegan_folders, image_size=4, batch_size=2)
    assert len(list(once)) == 2  # 5 pairs, drop_remainder


def test_new_crops_each_epoch_same_for_a_rebuild(cyclegan_folders):
    marker = np.zeros((16, 16, 3), np.uint8)
    marker[2:5, 3:6] = 255
    marker[..., 1] = np.arange(16, dtype=np.uint8)[None, :] * 16
    for domain in "AB":
        for i in range(2):
            path = cyclegan_folders / f"val{domain}" / f"{i}.png"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(np.roll(marker, 5 * i, axis=1)).save(path)
    kwargs = dict(split="val", image_size=8, load_size=16, batch_size=2, seed=5)
    ds = unpaired_dataset("folders", cyclegan_folders, **kwargs)
    epoch1, epoch2 = [next(iter(ds))[0].numpy() for _ in range(2)]
    again = next(iter(unpaired_dataset("folders", cyclegan_folders, **kwargs)))[0].numpy()
    np.testing.assert_array_equal(epoch1, again)
    assert not np.array_equal(epoch1, epoch2)


# ---------------------------------------------------------------- synthetic


def test_synthetic_domains_look_right_and_are_not_paired():
    kwargs = dict(image_size=32, batch_size=8, synthetic_count=8, augment=False, shuffle=False)
    a, b = next(iter(unpaired_dataset("synthetic", **kwargs)))
    a, b = to_uint8(a).numpy(), to_uint8(b).numpy()
    assert a.shape == b.shape == (8, 32, 32, 3) and a.dtype == np.uint8
    palette = {tuple(c.label_color) for c in SYNTHETIC_CLASSES}
    for label_map, rendering in zip(a, b):
        assert {tuple(c) for c in label_map.reshape(-1, 3)} <= palette
        assert len({tuple(c) for c in rendering.reshape(-1, 3)}) > 50
    same_a, same_b = synthetic_pairs(8, 32, seed=0)
    np.testing.assert_array_equal(a, same_a)  # A: the label maps of seed 0 ...
    # ... but B is not their rendering: B's layout differs from A's.
    assert not np.array_equal(b, same_b)
    assert np.abs(b.astype(int) - same_b.astype(int)).mean() > 20
    test_a, test_b = next(iter(unpaired_dataset("synthetic", split="test", **kwargs)))
    assert not np.array_equal(to_uint8(test_a).numpy(), a)
    assert not np.array_equal(to_uint8(test_b).numpy(), b)
    assert unpaired_count("synthetic", synthetic_count=8) == (8, 8)


def test_shapes_dtype_range_and_cache():
    ds = unpaired_dataset(
        "synthetic", image_size=16, load_size=20, batch_size=4, synthetic_count=8, cache=True
    )
    for spec in ds.element_spec:
        assert spec.shape == (4, 16, 16, 3) and spec.dtype == tf.float32
    for _ in range(2):  # the second epoch reads the cache
        batches = list(ds)
        assert len(batches) == 2
        for a, b in batches:
            for x in (a, b):
                assert -1.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0


# ---------------------------------------------------------------- tfds


def test_tfds_cycle_gan_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
        name = "cycle_gan/horse2zebra"
        assert unpaired_count("tfds", name) == (3, 3)
        assert unpaired_count("tfds", name, split="test") == (3, 3)
        ds = unpaired_dataset("tfds", name, image_size=16, load_size=20, batch_size=3)
        batches = list(ds)
        assert len(batches) == 1
        a, b = batches[0]
        assert a.shape == b.shape == (3, 16, 16, 3) and a.dtype == tf.float32
        with pytest.raises(DataError, match="'photo'"):
            unpaired_dataset("tfds", name, tfds_keys=("photo",), image_size=16)


def test_tfds_errors_are_wrapped():
    with pytest.raises(DataError, match="no_such_kstyle_dataset") as info:
        unpaired_dataset("tfds", "no_such_kstyle_dataset", image_size=16)
    assert "could not be loaded" in str(info.value) and "<split>A" in str(info.value)


# ---------------------------------------------------------------- errors


def test_bad_source_and_sizes(tmp_path):
    with pytest.raises(DataError, match="'ab'") as info:
        unpaired_dataset("ab", tmp_path)
    assert all(name in str(info.value) for name in UNPAIRED_SOURCES)
    with pytest.raises(DataError, match="load_size"):
        unpaired_dataset("synthetic", image_size=32, load_size=16)
    with pytest.raises(DataError, match="batch_size"):
        unpaired_dataset("synthetic", batch_size=0)


# ---------------------------------------------------------------- real data


@pytest.mark.shared_data
@needs_horse2zebra
def test_real_horse2zebra():
    assert unpaired_count("folders", HORSE2ZEBRA) == (200, 200)
    assert unpaired_count("folders", HORSE2ZEBRA, split="test") == (50, 50)
    ds = unpaired_dataset("folders", HORSE2ZEBRA, image_size=64, load_size=72, batch_size=4)
    a, b = next(iter(ds))
    assert a.shape == b.shape == (4, 64, 64, 3)
    assert -1.0 <= float(tf.reduce_min(a)) and float(tf.reduce_max(b)) <= 1.0
    # Different photos, so the two batches differ.
    assert float(tf.reduce_mean(tf.abs(a - b))) > 0.05


def test_one_layout_for_the_pipelines_and_the_data_check(cyclegan_folders, tmp_path):
    from kstyle.data import check_data

    # Without split folders, A/ and B/ serve every split, as for paired folders.
    flat = tmp_path / "flat"
    flat.mkdir()
    (cyclegan_folders / "trainA").rename(flat / "A")
    (cyclegan_folders / "trainB").rename(flat / "B")
    assert unpaired_count("folders", flat, split="train") == (3, 5)
    assert unpaired_count("folders", flat, split="test") == (3, 5)
    report = check_data(flat, layout="unpaired", splits=["train"])
    assert report.splits == [""] and len(report.rows) == 8


def test_recipes_load_without_tensorflow(tmp_path):
    import subprocess
    import sys

    script = ("import sys; from kstyle.recipes import load_recipe; "
              "load_recipe('recipes/pix2pix.toml', ['data.path=" + str(tmp_path) + "']); "
              "load_recipe('recipes/cyclegan.toml', ['data.path=" + str(tmp_path) + "']); "
              "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    assert out.stdout.strip() == "[]"
