"""The band-by-band PNG writer: exactly the pixels back, Pillow's size, the profile kept."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

from kstyle.data.png import write_png


def photo_like(h, w):
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(0)
    image = np.stack([x * 1.3 + y * 0.2, y * 0.9, (x - y) * 0.7 + 128], axis=-1)
    return np.clip(image % 256 + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (65, 3), (130, 97), (300, 211)])
def test_pixels_come_back_exactly(shape):
    image = photo_like(*shape)
    buffer = io.BytesIO()
    write_png(buffer, image)
    back = Image.open(io.BytesIO(buffer.getvalue()))
    assert back.mode == "RGB" and back.size == shape[::-1]
    np.testing.assert_array_equal(np.asarray(back), image)


def test_every_filter_is_chosen_somewhere_and_the_file_is_as_small_as_pillows():
    from kstyle.data.png import _filtered

    image = photo_like(300, 211)
    filtered = _filtered(image.reshape(300, -1), np.zeros(211 * 3, np.uint8), 3)
    assert set(filtered[:, 0]) - {0} and filtered.shape == (300, 1 + 211 * 3)
    ours, pillows = io.BytesIO(), io.BytesIO()
    write_png(ours, image)
    Image.fromarray(image).save(pillows, format="PNG")
    assert len(ours.getvalue()) < 1.05 * len(pillows.getvalue())
    # Unfiltered rows compress worse: the filters do their job.
    raw = zlib.compress(b"".join(b"\0" + row.tobytes() for row in image.reshape(300, -1)), 6)
    assert len(ours.getvalue()) < len(raw)


def test_the_colour_profile_is_embedded_and_bad_input_refused():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    write_png(buffer, photo_like(8, 8), icc_profile=profile)
    assert Image.open(io.BytesIO(buffer.getvalue())).info["icc_profile"] == profile
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        write_png(io.BytesIO(), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        write_png(io.BytesIO(), np.zeros((4, 4, 3), np.float32))


def test_the_same_result_is_the_same_file_whenever_it_is_written(monkeypatch):
    """LittleCMS stamps a profile with the time it is made: results embed one with a fixed
    date, so two saves of one result (a second apart or not) are byte for byte alike."""
    from kstyle.data import images

    stamps = iter([(2026, 12, 7, 15, 47, 59), (2026, 12, 7, 15, 48, 0)])
    made = images.srgb_profile

    def stamped():  # the profile as LittleCMS would make it at two different seconds
        profile = bytearray(made().tobytes())
        profile[24:36] = np.array(next(stamps), ">u2").tobytes()
        return ImageCms.ImageCmsProfile(io.BytesIO(bytes(profile)))

    images.srgb_profile_bytes.cache_clear()
    monkeypatch.setattr(images, "srgb_profile", stamped)
    files = []
    for _ in range(2):
        buffer = io.BytesIO()
        images.save_image(buffer, photo_like(9, 7))
        files.append(buffer.getvalue())
        images.srgb_profile_bytes.cache_clear()
    assert files[0] == files[1]
    embedded = Image.open(io.BytesIO(files[0])).info["icc_profile"]
    assert "sRGB" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(
        io.BytesIO(embedded)))
    monkeypatch.undo()
    images.srgb_profile_bytes.cache_clear()
