"""Bad and unusual image files: scanned, converted or refused, in stylize and in training."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import tensorflow as tf
from bad_image_corpus import (
    BLUE,
    EXPECTED,
    EXPECTED_RGB,
    RED,
    left_red_right_blue,
    save_exif,
    solid,
    write_corpus,
)
from PIL import Image, ImageOps

from kstyle.data import paired_count, paired_dataset, read_image, scan_image, unpaired_dataset
from kstyle.data.images import apply_orientation, to_uint8
from kstyle.data.screen import file_slices, scan_images
from kstyle.errors import DataError, RecipeError
from kstyle.recipes import describe_keys, recipe_from_dict

GOOD = (40, 80, 120)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_scan_image_classifies_each_kind(corpus, kind):
    _, status, reason = EXPECTED[kind]
    report = scan_image(corpus[kind])
    assert report.status == status
    assert reason in report.reason
    assert (report.reason == "") == (status == "used")


@pytest.mark.parametrize("kind", sorted(k for k, v in EXPECTED.items() if v[1] == "refused"))
def test_read_image_refuses_naming_file_and_reason(corpus, kind):
    name, _, reason = EXPECTED[kind]
    with pytest.raises(DataError) as info:
        read_image(corpus[kind])
    assert name in str(info.value) and reason in str(info.value)


def test_read_image_converts_to_the_right_pixels(corpus):
    for kind, path in corpus.items():
        rgb, tolerance = EXPECTED_RGB.get(path.name, (None, 0))
        if rgb is None:
            continue
        image = read_image(path)
        assert image.shape == (6, 8, 3) and image.dtype == np.uint8, kind
        assert np.abs(image.astype(int) - rgb).max() <= tolerance, (kind, image[0, 0])


def test_read_image_rotates_exif_6_and_8(corpus):
    # Stored 16 x 32 with red left, blue right; upright it is 32 x 16.
    turned_right = read_image(corpus["EXIF orientation 6 JPEG"])  # 90 deg clockwise
    turned_left = read_image(corpus["EXIF orientation 8 JPEG"])
    assert turned_right.shape == turned_left.shape == (32, 16, 3)
    np.testing.assert_allclose(turned_right[0, 0], RED, atol=3)
    np.testing.assert_allclose(turned_right[-1, 0], BLUE, atol=3)
    np.testing.assert_allclose(turned_left[0, 0], BLUE, atol=3)
    np.testing.assert_allclose(turned_left[-1, 0], RED, atol=3)


def test_pipeline_decodes_converted_files_like_read_image(corpus):
    """The tf.data decode (graph, EXIF code, Pillow for palette BMPs) gives the upright
    8-bit RGB pixels of read_image, within JPEG decoder differences."""
    reports = [r for r in scan_images(corpus.values()) if not r.refused]
    assert any(r.pillow for r in reports) and any(r.orientation == 6 for r in reports)
    slices, load = file_slices(reports)
    decoded = tf.data.Dataset.from_tensor_slices(slices).map(load)
    for report, image in zip(reports, decoded, strict=True):
        expected = read_image(report.path)
        assert image.shape == expected.shape, report.path
        assert np.abs(image.numpy().astype(int) - expected).max() <= 3, report.path


def test_apply_orientation_matches_pillow_for_every_orientation():
    image = np.random.default_rng(1).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        pil = Image.fromarray(image)
        pil.info["exif"] = exif.tobytes()
        expected = np.asarray(ImageOps.exif_transpose(pil))
        got = apply_orientation(tf.constant(image), tf.constant(orientation)).numpy()
        np.testing.assert_array_equal(got, expected, err_msg=f"orientation {orientation}")


def test_plain_files_keep_the_plain_graph_decode(tmp_path):
    Image.fromarray(solid(4, 4, GOOD)).save(tmp_path / "a.png")
    slices, _ = file_slices(scan_images([tmp_path / "a.png"]))
    assert slices == [str(tmp_path / "a.png")]  # bare paths: no EXIF code, no Pillow


# ---------------------------------------------------------------- training folders


@pytest.fixture
def mixed_ab(tmp_path, corpus):
    """train/: 3 good AB files, one upright only with EXIF, one square, and every
    refused kind of the corpus."""
    train = tmp_path / "train"
    train.mkdir()
    for i in range(3):
        Image.fromarray(solid(8, 16, GOOD)).save(train / f"good{i}.png")
    # Stored 32 x 16 (tall); EXIF 6 turns it to 16 x 32, a proper AB file: A red, B blue.
    stored = np.rot90(left_red_right_blue(16, 32), k=1)
    save_exif(train / "rotated.jpg", np.ascontiguousarray(stored), 6)
    Image.fromarray(solid(8, 8, GOOD)).save(train / "square.png")
    for kind, (name, status, _) in EXPECTED.items():
        if status == "refused":
            shutil.copy(corpus[kind], train / name)
    return tmp_path


def test_ab_stop_lists_refused_files_and_reasons(mixed_ab):
    with pytest.raises(DataError) as info:
        paired_dataset("ab", mixed_ab, image_size=8)
    message = str(info.value)
    refused = sum(v[1] == "refused" for v in EXPECTED.values()) + 1  # + square.png
    assert message.startswith(f"{refused} of {refused + 4} image files in")
    assert "bomb.png': declares 100000x100000 px" in message  # first five, by name
    assert "cut.jpg': truncated file" in message and "; and 3 more." in message
    assert 'data.bad_images = "skip"' in message


def test_ab_file_of_the_wrong_aspect_is_refused(tmp_path):
    Image.fromarray(solid(8, 16, GOOD)).save(tmp_path / "ab.png")
    Image.fromarray(solid(8, 8, GOOD)).save(tmp_path / "square.png")
    with pytest.raises(DataError, match=r"square.png': 8x8 px: source 'ab' expects A\|B side "
                                        r"by side, twice as wide as high \(about 16 px wide\)"):
        paired_dataset("ab", tmp_path, image_size=8)
    assert paired_count("ab", tmp_path, bad_images="skip") == 1


def test_ab_skip_trains_on_good_files_and_says_so(mixed_ab, caplog):
    caplog.set_level(logging.WARNING, logger="kstyle.data")
    ds = paired_dataset("ab", mixed_ab, image_size=8, augment=False, batch_size=1,
                        shuffle=False, bad_images="skip")
    pairs = [(to_uint8(a)[0].numpy(), to_uint8(b)[0].numpy()) for a, b in ds]
    assert len(pairs) == 4 == paired_count("ab", mixed_ab, bad_images="skip")
    rotated = pairs[-1]  # rotated.jpg sorts last; far corners, away from JPEG's blur
    np.testing.assert_allclose(rotated[0][0, 0], RED, atol=4)
    np.testing.assert_allclose(rotated[1][-1, -1], BLUE, atol=4)
    for a, b in pairs[:3]:
        assert (a == GOOD).all() and (b == GOOD).all()
    lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    refused = sum(v[1] == "refused" for v in EXPECTED.values()) + 1
    assert len(lines) == 1 and lines[0].startswith(f"skipped {refused} of {refused + 4} files")


def test_folders_skip_drops_orphans_and_partners_of_refused_files(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="kstyle.data")
    for domain, offset in (("A", 0), ("B", 100)):
        (tmp_path / f"train{domain}").mkdir()
        for i in range(3):
            red = solid(6, 6, (20 * i + offset, 0, 0))
            Image.fromarray(red).save(tmp_path / f"train{domain}" / f"{i}.png")
    (tmp_path / "trainB" / "2.png").write_bytes(b"")  # pair 2: B refused, A dropped with it
    Image.fromarray(solid(6, 6, GOOD)).save(tmp_path / "trainA" / "orphan.png")
    with pytest.raises(DataError, match=r"orphan\.png': no partner of the same name in .*trainB"):
        paired_dataset("folders", tmp_path, image_size=4)
    ds = paired_dataset("folders", tmp_path, image_size=4, batch_size=1, shuffle=False,
                        bad_images="skip")
    reds = [(int(to_uint8(a)[0, 0, 0, 0]), int(to_uint8(b)[0, 0, 0, 0])) for a, b in ds]
    assert reds == [(0, 100), (20, 120)]
    assert any(r.getMessage().startswith("skipped 3 of 7 files") for r in caplog.records)


def test_unpaired_skip_yields_only_good_images(tmp_path, corpus):
    for domain, rgb in (("A", RED), ("B", BLUE)):
        folder = tmp_path / f"train{domain}"
        folder.mkdir()
        for i in range(2):
            Image.fromarray(solid(6, 6, rgb)).save(folder / f"{i}.png")
        shutil.copy(corpus["truncated PNG"], folder / "cut.png")
        shutil.copy(corpus["text with an image extension"], folder / "notes.png")
    with pytest.raises(DataError, match="cut.png': truncated file"):
        unpaired_dataset("folders", tmp_path, image_size=4)
    ds = unpaired_dataset("folders", tmp_path, image_size=4, batch_size=2, bad_images="skip")
    batches = [(to_uint8(a).numpy(), to_uint8(b).numpy()) for a, b in ds]
    assert len(batches) == 1
    assert (batches[0][0] == RED).all() and (batches[0][1] == BLUE).all()


def test_bad_images_recipe_key_is_validated_and_documented():
    synthetic = {"data": {"source": "synthetic"}}
    recipe = recipe_from_dict(synthetic, ["data.bad_images=skip"], source="r.toml")
    assert recipe.data.bad_images == "skip"
    assert recipe_from_dict(synthetic).data.bad_images == "stop"
    expected = r"r.toml: data.bad_images = 'maybe' is not allowed; allowed: skip, stop"
    with pytest.raises(RecipeError, match=expected):
        recipe_from_dict(synthetic, ["data.bad_images=maybe"], source="r.toml")
    assert "bad_images ('stop' | 'skip', default 'stop'):" in describe_keys()
