"""What the Python API takes as an image, and the one-line refusals of anything else."""

import io

import numpy as np
import pytest
from PIL import Image

from kstyle.errors import DataError


@pytest.fixture(scope="module")
def identity():
    import keras

    from kstyle.api import Stylizer

    inputs = keras.Input((None, None, 3))
    return Stylizer.from_network(keras.Model(inputs, inputs))


def test_float_images_must_be_in_0_1(identity):
    photo = np.random.default_rng(0).integers(0, 256, (8, 9, 3)).astype(np.float32)
    with pytest.raises(DataError, match=r"must be in \[0, 1\]; this one spans \[0, 255\]: "
                                        "divide by 255"):
        identity(photo)
    out = identity(photo / 255.0)
    assert out.dtype == np.float32 and np.abs(out - photo / 255.0).max() <= 0.5 / 255 + 1e-6
    with pytest.raises(DataError, match=r"spans \[-1, 1\]"):
        identity(photo / 127.5 - 1.0)


def test_non_finite_pixels_are_refused(identity):
    photo = np.full((6, 6, 3), 0.5, np.float32)
    photo[2, 3, 1] = np.nan
    photo[0, 0, 0] = np.inf
    with pytest.raises(DataError, match="2 NaN or infinite values"):
        identity(photo)


@pytest.mark.parametrize("given, hint", [
    (None, "got NoneType$"), (b"\x89PNG...", r"got bytes \(encoded bytes: open them first"),
    ([[1, 2], [3, 4]], "got list"), (3.0, "got float")])
def test_what_is_not_an_image_gets_what_is_accepted(identity, given, hint):
    with pytest.raises(DataError, match=r"expected an image: a file path, a PIL.Image, or a "
                                        r"numpy array .*" + hint):
        identity(given)


def test_16_bit_images_are_scaled_not_clipped(identity):
    values = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    expected = np.round(values / 257.0).astype(np.uint8)
    pil = Image.fromarray(values)  # mode I;16
    out = np.asarray(identity(pil))
    np.testing.assert_array_equal(out[..., 0], expected)
    assert (out == 255).mean() < 0.01
    rgb16 = np.repeat(values[..., None], 3, axis=-1)
    np.testing.assert_array_equal(identity(rgb16)[..., 0], expected)


def test_a_pil_image_is_turned_upright_by_its_exif_orientation(identity):
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, :5] = 255  # a white band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    buffer = io.BytesIO()
    Image.fromarray(wide).save(buffer, format="PNG", exif=exif)
    opened = Image.open(io.BytesIO(buffer.getvalue()))
    out = identity(opened)
    assert out.size == (10, 30)  # upright: 10 wide, 30 high
    assert np.asarray(out)[:5].mean() > 200  # the band is now at the top
