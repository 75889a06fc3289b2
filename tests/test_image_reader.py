"""One image reader for data checks, training and stylize: colour profiles, animations,
every format Pillow reads in folders, file names that are not UTF-8."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from icc import rgb_profile  # noqa: E402


def gray(value=128, size=(24, 32)):
    return Image.fromarray(np.full((*size, 3), value, np.uint8))


def test_a_colour_profile_is_converted_to_srgb_everywhere(tmp_path):
    from kstyle.data.images import read_image
    from kstyle.data.screen import scan_image

    # Mid-gray in linear light is 188 in sRGB; read raw, it would stay 128.
    path = tmp_path / "linear.png"
    gray(128).save(path, icc_profile=rgb_profile("Linear RGB", gamma=1.0))
    assert read_image(path)[0, 0].tolist() == [188, 188, 188]
    report = scan_image(path)
    assert report.status == "converted" and report.pillow
    assert "colour profile 'Linear RGB' -> sRGB" in report.reason
    # A PIL image given to the API alike, and the result is tagged sRGB.
    import keras

    from kstyle.api import Stylizer

    inputs = keras.Input((None, None, 3))
    identity = Stylizer.from_network(keras.Model(inputs, inputs))
    assert np.asarray(identity(Image.open(path)))[0, 0].tolist() == [188, 188, 188]
    out = identity(path, out=tmp_path / "out.png")
    import io

    from PIL import ImageCms

    tag = Image.open(out).info["icc_profile"]
    assert "sRGB" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(tag)))
    # An sRGB profile is no conversion.
    srgb = tmp_path / "srgb.png"
    gray(128).save(srgb, icc_profile=ImageCms.ImageCmsProfile(
        ImageCms.createProfile("sRGB")).tobytes())
    assert read_image(srgb)[0, 0].tolist() == [128, 128, 128]
    assert scan_image(srgb).status == "used"


def test_an_animation_gives_its_first_frame(tmp_path):
    from kstyle.data.images import read_image
    from kstyle.data.screen import scan_image

    for suffix in (".gif", ".webp"):
        path = tmp_path / f"moving{suffix}"
        frames = [gray(v) for v in (40, 120, 200)]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
        report = scan_image(path)
        assert "animation of 3 frames -> its first frame" in report.reason, suffix
        assert report.pillow and not report.refused
        assert abs(int(read_image(path)[0, 0, 0]) - 40) <= 2, suffix


def test_folders_hold_every_format_kstyle_reads(tmp_path):
    from kstyle.data.images import read_image
    from kstyle.data.layout import list_images

    gray(90).save(tmp_path / "a.tif")
    gray(90).save(tmp_path / "b.tiff")
    gray(90).save(tmp_path / "c.avif", quality=100)
    (tmp_path / "notes.txt").write_text("not an image")
    listed = [Path(p).name for p in list_images(tmp_path)]
    assert listed == ["a.tif", "b.tiff", "c.avif"]
    for name in listed:
        assert abs(int(read_image(tmp_path / name)[0, 0, 0]) - 90) <= 3


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file names are always UTF-8")
def test_a_file_name_that_is_not_utf8_is_named_and_refused(tmp_path):
    from kstyle.data.check import check_data
    from kstyle.data.screen import scan_image

    folder = tmp_path / "photos"
    folder.mkdir()
    gray(100).save(folder / "good.png")
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: not UTF-8
    try:
        gray(100).save(folder / name)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses such names")
    report = scan_image(folder / name)
    assert report.refused and "file name is not valid UTF-8" in report.reason
    result = check_data(folder, layout="photos")
    assert result.count("refused") == 1 and result.count("used") == 1


def test_a_large_image_given_on_purpose_reads_without_a_bomb_warning(tmp_path, monkeypatch):
    import warnings

    from kstyle.data.images import ImageRefused, read_image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow warns from 1000 px
    gray(100, size=(40, 40)).save(tmp_path / "large.png")  # 1600 px
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(tmp_path / "large.png").shape == (40, 40, 3)
    gray(100, size=(50, 50)).save(tmp_path / "bomb.png")  # 2500 px: over kstyle's limit
    with pytest.raises(ImageRefused, match="bomb|limit|too large|MP"):
        read_image(tmp_path / "bomb.png")


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file names are always UTF-8")
def test_fit_names_a_file_name_that_is_not_utf8_and_trains_without_it_on_skip(tmp_path,
                                                                              caplog):
    from conftest import tiny_recipe, write_tiny_photos

    from kstyle.errors import DataError
    from kstyle.train import fit

    photos = tmp_path / "photos"
    photos.mkdir()
    write_tiny_photos(photos, count=6, size=40)
    try:
        gray(100, size=(40, 40)).save(photos / os.fsdecode(b"caf\xe9.png"))
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses such names")
    where = ["data.source=photos", f'data.path="{photos}"', 'data.derive="gray"']
    with pytest.raises(DataError, match=r"caf.*\.png': its file name is not valid UTF-8"):
        fit(tiny_recipe(tmp_path, *where), verbose=0, log=lambda *_: None)
    result = fit(tiny_recipe(tmp_path, *where, 'data.bad_images="skip"', "train.epochs=1"),
                 verbose=0, log=lambda *_: None)
    assert (result.run_dir / "translator.keras").is_file()
    assert "skipped 1 of 7 files" in caplog.text and "not valid UTF-8" in caplog.text
