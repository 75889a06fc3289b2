"""Tests of kstyle.data: files, augmentation, derived pairs, synthetic set, pipelines."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kstyle.data import (
    DIRECTIONS,
    KNOWN_DATASETS,
    PAIRED_SOURCES,
    SYNTHETIC_CLASSES,
    derive_edges,
    derive_gray,
    describe_pairs,
    list_images,
    paired_augment,
    paired_count,
    paired_dataset,
    read_image,
    resolve_path,
    synthetic_pairs,
    to_float,
    to_uint8,
)
from kstyle.errors import DataError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "paired_person_outline").is_dir(),
    reason=f"shared data folder {SHARED_DATA} is absent",
)


def save(path: Path, array) -> Path:
    """Writes a uint8 array as an image file, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path)
    return path


def solid(height: int, width: int, rgb) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, np.uint8), (height, width, 3)).copy()


def as_float(rgb) -> np.ndarray:
    return np.asarray(rgb, np.float32) / 127.5 - 1.0


def first_batch(ds):
    a, b = next(iter(ds))
    return a.numpy(), b.numpy()


def marker_image(size: int) -> np.ndarray:
    """A gradient with an off-centre marker: any crop offset or flip changes it."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.stack([xx * 255 // size, yy * 255 // size, (xx * yy) % 256], -1)
    image[5:9, 3:7] = (255, 255, 255)
    return image.astype(np.uint8)


# ---------------------------------------------------------------- images


def test_to_float_and_to_uint8_round_trip_every_value():
    values = tf.range(256, dtype=tf.int32)
    x = to_float(tf.cast(values, tf.uint8))
    assert x.dtype == tf.float32
    assert float(x[0]) == -1.0 and float(x[-1]) == 1.0
    np.testing.assert_array_equal(to_uint8(x).numpy(), np.arange(256))
    np.testing.assert_array_equal(to_uint8(tf.constant([-3.0, 3.0])).numpy(), [0, 255])


def test_list_images_sorted_and_filtered(tmp_path):
    for name in ("b.png", "a.JPG", "c.webp"):
        save(tmp_path / name, solid(4, 4, (1, 2, 3)))
    (tmp_path / "notes.txt").write_text("not an image")
    assert [os.path.basename(p) for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.webp"]


def test_read_image_applies_exif_orientation_and_gray_to_rgb(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    Image.fromarray(solid(2, 6, (10, 200, 30))).save(tmp_path / "rot.jpg", exif=exif)
    assert read_image(tmp_path / "rot.jpg").shape == (6, 2, 3)
    Image.fromarray(np.full((3, 5), 77, np.uint8)).save(tmp_path / "gray.png")
    gray = read_image(tmp_path / "gray.png")
    assert gray.shape == (3, 5, 3) and gray.dtype == np.uint8 and (gray == 77).all()


def test_read_image_bad_file_names_it(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"definitely not a png")
    with pytest.raises(DataError, match="broken.png"):
        read_image(bad)


# ---------------------------------------------------------------- augmentation


def test_paired_augment_same_crop_and_flip_for_a_and_b(tmp_path):
    image = marker_image(48)
    save(tmp_path / "train" / "0.png", np.concatenate([image, image], axis=1))
    crops = set()
    for seed in range(12):
        ds = paired_dataset("ab", tmp_path, image_size=32, load_size=48, seed=seed, shuffle=False)
        a, b = first_batch(ds)
        np.testing.assert_array_equal(a, b)
        crops.add(a.tobytes())
    assert len(crops) > 3, "crops and flips should differ between seeds"


def test_paired_augment_is_stateless_given_seed():
    a = to_float(marker_image(40))
    b = -a
    seed = tf.constant([3, 4], tf.int64)
    out1 = paired_augment(a, b, image_size=24, load_size=40, seed=seed)
    out2 = paired_augment(a, b, image_size=24, load_size=40, seed=seed)
    np.testing.assert_array_equal(out1[0].numpy(), out2[0].numpy())
    np.testing.assert_allclose(out1[1].numpy(), -out1[0].numpy(), atol=1e-6)


def test_pipeline_reproducible_across_builds_and_new_crops_each_epoch(tmp_path):
    for i in range(3):
        image = np.roll(marker_image(40), 7 * i, axis=1)
        save(tmp_path / f"{i}.png", np.concatenate([image, image], axis=1))
    kwargs = dict(image_size=24, load_size=40, batch_size=3, seed=5)
    ds = paired_dataset("ab", tmp_path, **kwargs)
    epoch1, epoch2 = first_batch(ds), first_batch(ds)
    again = first_batch(paired_dataset("ab", tmp_path, **kwargs))
    np.testing.assert_array_equal(epoch1[0], again[0])
    assert not np.array_equal(epoch1[0], epoch2[0])


# ---------------------------------------------------------------- ab / folders / photos


@pytest.fixture
def red_blue_ab(tmp_path):
    """Three AB images, odd width: A (left 16 px) red, B (next 16 px) blue."""
    for i in range(3):
        image = np.concatenate([solid(16, 16, (255, 0, 0)), solid(16, 17, (0, 0, 255))], 1)
        save(tmp_path / "val" / f"{i}.png", image)
    return tmp_path


def test_ab_left_half_is_a_right_half_is_b(red_blue_ab):
    ds = paired_dataset("ab", red_blue_ab, split="val", image_size=8, augment=False, batch_size=3)
    a, b = first_batch(ds)
    assert a.shape == b.shape == (3, 8, 8, 3)
    np.testing.assert_allclose(a, np.broadcast_to(as_float((255, 0, 0)), a.shape), atol=1e-5)
    np.testing.assert_allclose(b, np.broadcast_to(as_float((0, 0, 255)), b.shape), atol=1e-5)
    a2, b2 = first_batch(
        paired_dataset(
            "ab",
            red_blue_ab,
            split="val",
            direction="b2a",
            image_size=8,
            augment=False,
            batch_size=3,
        )
    )
    np.testing.assert_array_equal(a2, b)
    np.testing.assert_array_equal(b2, a)


@pytest.mark.parametrize("source, options, expected", [
    ("ab", {}, "input = left half, target = right half of each AB image in 'd'"),
    ("ab", {"direction": "b2a"}, "input = right half, target = left half of each AB image"),
    ("folders", {}, "input = <split>A/ (or A/), target = <split>B/ (or B/) in 'd'"),
    ("photos", {"derive": "gray"}, "input = the photo's grayscale copy, target = the photo"),
    ("photos", {"derive": "edges", "direction": "b2a"},
     "input = the photo, target = the photo's edge map"),
    ("tfds", {"derive": "none", "tfds_keys": ("x", "y")},
     "input = feature 'x', target = feature 'y' of tfds 'd'"),
    ("synthetic", {}, "input = label map, target = rendered photo"),
])
def test_describe_pairs_names_input_and_target(source, options, expected):
    text = describe_pairs(source, "d", **options)
    assert text.startswith(expected)
    assert text.endswith(f"(data.direction = {options.get('direction', 'a2b')})")


def test_static_shapes_value_range_and_count(red_blue_ab):
    ds = paired_dataset("ab", red_blue_ab, split="val", image_size=8, load_size=12, batch_size=2)
    assert ds.element_spec[0].shape == (2, 8, 8, 3)
    assert ds.element_spec[1].dtype == tf.float32
    batches = list(ds)
    assert len(batches) == 1  # 3 pairs, drop_remainder
    for a, b in batches:
        assert -1.0 <= float(tf.reduce_min(a)) and float(tf.reduce_max(b)) <= 1.0
    assert paired_count("ab", red_blue_ab, split="val") == 3
    loose = paired_dataset(
        "ab", red_blue_ab, split="val", image_size=8, batch_size=2, drop_remainder=False
    )
    assert [int(a.shape[0]) for a, _ in loose] == [2, 1]


def test_folders_pair_by_name(tmp_path):
    for i in range(5):
        save(tmp_path / "trainA" / f"img{i}.png", solid(10, 12, (20 * i, 0, 0)))
        save(tmp_path / "trainB" / f"img{i}.png", solid(6, 6, (20 * i + 100, 0, 0)))
    ds = paired_dataset("folders", tmp_path, image_size=4, batch_size=1, seed=1)
    seen = []
    for a, b in ds:
        red_a = float(to_uint8(a)[0, 0, 0, 0])
        red_b = float(to_uint8(b)[0, 0, 0, 0])
        assert red_b == red_a + 100
        seen.append(red_a)
    assert sorted(seen) == [0, 20, 40, 60, 80] and seen != sorted(seen)  # all, shuffled
    assert paired_count("folders", tmp_path) == 5


def test_folders_fall_back_to_a_and_b(tmp_path):
    save(tmp_path / "A" / "x.png", solid(4, 4, (255, 255, 255)))
    save(tmp_path / "B" / "x.png", solid(4, 4, (0, 0, 0)))
    a, b = first_batch(paired_dataset("folders", tmp_path, split="val", image_size=4))
    assert a.min() == 1.0 and b.max() == -1.0


def test_folders_missing_partner_is_named(tmp_path):
    save(tmp_path / "trainA" / "shared.png", solid(4, 4, (0, 0, 0)))
    save(tmp_path / "trainB" / "shared.png", solid(4, 4, (0, 0, 0)))
    save(tmp_path / "trainA" / "orphan.png", solid(4, 4, (0, 0, 0)))
    with pytest.raises(DataError, match=r"orphan\.png") as info:
        paired_dataset("folders", tmp_path, image_size=4)
    assert "trainB" in str(info.value)


def test_photos_gray_luminance_matches_bt601(tmp_path):
    rgb = (200, 100, 50)
    save(tmp_path / "photo.png", solid(12, 12, rgb))
    ds = paired_dataset("photos", tmp_path, derive="gray", image_size=8, load_size=10)
    a, b = first_batch(ds)
    expected = (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 127.5 - 1.0
    np.testing.assert_allclose(a, expected, atol=1e-5)
    np.testing.assert_allclose(b, np.broadcast_to(as_float(rgb), b.shape), atol=1e-5)
    gray, color = derive_gray(to_float(marker_image(8)))
    np.testing.assert_array_equal(gray[..., 0], gray[..., 1])
    np.testing.assert_array_equal(gray[..., 1], gray[..., 2])


def test_edges_white_image_is_white_and_boundary_is_dark():
    white, _ = derive_edges(tf.ones([16, 16, 3]))
    assert float(tf.reduce_min(white)) > 0.99
    step = np.ones([16, 16, 3], np.float32)
    step[:, :8] = -1.0  # black left half, white right half
    edges, photo = derive_edges(tf.constant(step))
    edges = edges.numpy()
    assert edges.shape == (16, 16, 3)
    assert (edges[:, 7:9] < -0.5).all()  # the two columns either side of the boundary
    assert (edges[:, :5] > 0.99).all() and (edges[:, 11:] > 0.99).all()
    batched, _ = derive_edges(tf.constant(step)[tf.newaxis])
    np.testing.assert_allclose(batched[0].numpy(), edges, atol=1e-6)


def test_photos_edges_pipeline(tmp_path):
    image = np.full((16, 16, 3), 255, np.uint8)
    image[:, :8] = 0
    save(tmp_path / "train" / "step.png", image)
    ds = paired_dataset("photos", tmp_path, derive="edges", image_size=16, augment=False)
    a, b = first_batch(ds)
    assert (a[0, :, 7:9] < -0.5).all() and (a[0, :, 12:] > 0.99).all()
    np.testing.assert_allclose(b[0], to_float(image).numpy(), atol=1e-5)


# ---------------------------------------------------------------- synthetic


def test_synthetic_pairs_deterministic_shapes_and_label_map():
    a, b = synthetic_pairs(16, 32, seed=0)
    a2, b2 = synthetic_pairs(16, 32, seed=0)
    a3, _ = synthetic_pairs(16, 32, seed=1)
    assert a.shape == b.shape == (16, 32, 32, 3) and a.dtype == b.dtype == np.uint8
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    assert not np.array_equal(a, a3)
    palette = {tuple(c.label_color) for c in SYNTHETIC_CLASSES}
    for image in a:
        colors = {tuple(c) for c in image.reshape(-1, 3)}
        assert 2 <= len(colors) <= len(SYNTHETIC_CLASSES) and colors <= palette
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 30
    # The rendered photo is textured, not one color per class.
    assert len({tuple(c) for c in b[0].reshape(-1, 3)}) > 50


def test_synthetic_dataset_val_uses_other_seed():
    kwargs = dict(image_size=16, batch_size=4, synthetic_count=8, shuffle=False, augment=False)
    train_a, _ = first_batch(paired_dataset("synthetic", **kwargs))
    val_a, _ = first_batch(paired_dataset("synthetic", split="val", **kwargs))
    expected, _ = synthetic_pairs(8, 16, seed=0)
    np.testing.assert_allclose(train_a, to_float(expected[:4]).numpy(), atol=1e-6)
    assert not np.array_equal(train_a, val_a)
    assert paired_count("synthetic", synthetic_count=8) == 8


def test_cache_and_repeat(tmp_path):
    ds = paired_dataset(
        "synthetic",
        image_size=16,
        load_size=20,
        batch_size=4,
        synthetic_count=8,
        cache=True,
        repeat=True,
    )
    batches = [a.numpy() for a, _ in ds.take(5)]
    assert all(x.shape == (4, 16, 16, 3) for x in batches)


# ---------------------------------------------------------------- tfds


def test_tfds_source_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = paired_dataset("tfds", "tf_flowers", image_size=16, batch_size=2)
        a, b = first_batch(ds)
        assert a.shape == b.shape == (2, 16, 16, 3)
        np.testing.assert_array_equal(a[..., 0], a[..., 2])  # gray input
        assert paired_count("tfds", "tf_flowers") == 5
        a, b = first_batch(
            paired_dataset(
                "tfds",
                "tf_flowers",
                derive="none",
                tfds_keys=("image", "image"),
                image_size=16,
                shuffle=False,
                augment=False,
            )
        )
        np.testing.assert_array_equal(a, b)
        with pytest.raises(DataError, match="'photo'"):
            paired_dataset("tfds", "tf_flowers", tfds_keys=("photo",), image_size=16)


def test_tfds_load_error_is_wrapped():
    with pytest.raises(DataError, match="no_such_kstyle_dataset") as info:
        paired_dataset("tfds", "no_such_kstyle_dataset", image_size=16)
    assert "data.path" in str(info.value) and "could not be loaded" in str(info.value)


# ---------------------------------------------------------------- errors


def test_missing_and_empty_folders_name_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="nowhere") as info:
        paired_dataset("ab", missing)
    assert "AB images" in str(info.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="empty"):
        paired_dataset("photos", empty)
    with pytest.raises(DataError, match="nowhere"):
        list_images(missing)


def test_bad_choices_list_valid_values(tmp_path):
    with pytest.raises(DataError, match="'bogus'") as info:
        paired_dataset("bogus", tmp_path)
    assert all(name in str(info.value) for name in PAIRED_SOURCES)
    with pytest.raises(DataError, match="'sideways'") as info:
        paired_dataset("synthetic", direction="sideways")
    assert all(name in str(info.value) for name in DIRECTIONS)
    with pytest.raises(DataError, match="'blur'"):
        paired_dataset("photos", tmp_path, derive="blur")
    with pytest.raises(DataError, match="load_size"):
        paired_dataset("synthetic", image_size=32, load_size=16)


def test_known_dataset_offline_message(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(DataError) as info:
        paired_dataset("ab", "facades")
    message = str(info.value)
    assert KNOWN_DATASETS["facades"] in message
    assert "network is unreachable" in message
    assert "--set data.path=/path/to/facades" in message


def test_known_dataset_uses_extracted_folder(tmp_path, monkeypatch):
    extracted = tmp_path / "keras" / "datasets" / "maps_extracted"
    save(extracted / "maps" / "train" / "0.png", solid(4, 8, (0, 0, 0)))
    calls = []

    def fake_get_file(fname, origin, extract):
        calls.append((fname, origin, extract))
        return str(extracted)

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    assert resolve_path("ab", "maps") == str(extracted / "maps")
    assert calls == [("maps.tar.gz", KNOWN_DATASETS["maps"], True)]
    assert paired_count("ab", "maps") == 1


# ---------------------------------------------------------------- real data


@pytest.mark.shared_data
@needs_shared_data
@pytest.mark.parametrize("split, count", [("train", 86), ("val", 40)])
def test_real_paired_person_outline(split, count):
    root = SHARED_DATA / "paired_person_outline"
    assert paired_count("ab", root, split=split) == count
    ds = paired_dataset("ab", root, split=split, image_size=64, load_size=72, batch_size=4)
    a, b = first_batch(ds)
    assert a.shape == b.shape == (4, 64, 64, 3)
    assert -1.0 <= a.min() and b.max() <= 1.0
    # B is a black-on-white outline: mostly white.
    assert np.median(b) > 0.5


@pytest.mark.shared_data
@needs_shared_data
def test_real_facades_val():
    root = SHARED_DATA / "facades"
    assert paired_count("ab", root, split="val") == 3
    a, b = first_batch(
        paired_dataset("ab", root, split="val", image_size=32, augment=False, batch_size=3)
    )
    assert a.shape == b.shape == (3, 32, 32, 3)


def test_every_model_kind_trains_on_a_registered_data_kind():
    from kstyle.data.kinds import DATA_KINDS, get_data_kind
    from kstyle.models import KINDS

    assert {options.data_kind for options in KINDS.values()} <= set(DATA_KINDS)
    assert get_data_kind("unpaired").layout("folders") == "unpaired"
    with pytest.raises(ValueError, match="valid: paired, unpaired, images, styled"):
        get_data_kind("triplets")
