"""Tiled translation of large images: whole-image instance-norm statistics, feathered seams."""

import keras
import numpy as np
import pytest

import kstyle
from kstyle.api import Stylizer
from kstyle.nets import resnet_generator
from kstyle.nets.tiling import TiledTranslator, tile_origins, tile_weights


@pytest.fixture(scope="module")
def network():
    keras.utils.set_random_seed(0)
    return resnet_generator(base_filters=8, num_blocks=2)


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:150, 0:230]
    image = np.stack([x * 0.9, y * 1.2, (x + y) * 0.5], axis=-1) % 256
    return np.clip(image + rng.integers(-10, 10, image.shape), 0, 255).astype(np.uint8)


def mean_abs(a, b):
    return np.abs(a.astype(int) - b.astype(int)).mean()


def test_tiles_cover_the_image_and_ramps_sum_to_one():
    assert tile_origins(100, 64, 48) == [0, 36]
    assert tile_origins(102, 64, 48, multiple=4) == [0, 40]  # the last tile is 62 rows
    assert tile_origins(50, 64, 48) == [0]
    ramp = tile_weights(8, 8, 4, False, True, True, False)
    assert ramp[0, 7, 0] == 1.0 and ramp[7, 0, 0] < 0.2
    # Two tiles overlapping by 4 blend with weights that sum to 1 across the overlap.
    left = tile_weights(1, 8, 4, False, False, False, True)[0, 4:, 0]
    right = tile_weights(1, 8, 4, False, False, True, False)[0, :4, 0]
    np.testing.assert_allclose(left + right, 1.0)


def test_whole_image_statistics_keep_tiles_consistent(network, photo):
    whole = Stylizer.from_network(network, {"size_multiple": 4}, tile=0).stylize_array(photo)
    tiled = TiledTranslator(network, 4, tile=64, overlap=16, stats_size=4096)
    assert len(tiled.norms) == 9  # stem, 2 downs, 2 blocks x 2, 2 ups
    out = tiled(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
    # Per-tile statistics (each tile translated on its own) shift each tile's tone.
    plain = Stylizer.from_network(network, {"size_multiple": 4}, tile=0)
    naive = np.zeros_like(photo)
    for top in range(0, 150, 64):
        for left in range(0, 230, 64):
            naive[top:top + 64, left:left + 64] = plain.stylize_array(
                photo[top:top + 64, left:left + 64])
    assert mean_abs(out, whole) < 5
    assert mean_abs(naive, whole) > 4 * mean_abs(out, whole)


def test_stylize_tiles_large_images_or_on_request(tiny_run, photo):
    translator = kstyle.load(tiny_run, tile=64)
    out = translator(photo)
    assert out.shape == photo.shape and translator.inference._tiler is not None
    assert kstyle.load(tiny_run).tile is None
    assert Stylizer.TILE_ABOVE == 2048 * 2048


def test_blending_band_by_band_gives_the_whole_images_blend():
    # The band accumulator (one row of tiles in memory) sums what the whole-image one did.
    from kstyle.nets.tiling import blend_tiles, tile_origins, tile_weights

    image = np.random.default_rng(3).integers(0, 256, (203, 317, 3), np.uint8)

    def function(patch):  # each tile's own offset: the blend shows in the overlaps
        return patch.astype(np.float32) + float(patch.mean())

    tile, overlap, multiple = 64, 16, 4
    out = np.zeros((203, 317, 3), np.float32)
    weight = np.zeros((203, 317, 1), np.float32)
    for top in tile_origins(203, tile, tile - overlap, multiple):
        for left in tile_origins(317, tile, tile - overlap, multiple):
            patch = image[top:top + tile, left:left + tile]
            ramp = tile_weights(*patch.shape[:2], overlap, top > 0, top + tile < 203,
                                left > 0, left + tile < 317)
            out[top:top + patch.shape[0], left:left + patch.shape[1]] += function(patch) * ramp
            weight[top:top + patch.shape[0], left:left + patch.shape[1]] += ramp
    expected = out / np.maximum(weight, 1e-8)
    np.testing.assert_array_equal(blend_tiles(image, tile, overlap, multiple, function),
                                  expected)
    as_uint8 = blend_tiles(image, tile, overlap, multiple, function,
                           finish=lambda band: np.clip(band, 0, 255).astype(np.uint8))
    assert as_uint8.dtype == np.uint8
    np.testing.assert_array_equal(as_uint8, np.clip(expected, 0, 255).astype(np.uint8))
    # Written over the image itself: each row once no tile reads it, so the same result.
    own = image.copy()
    assert blend_tiles(own, tile, overlap, multiple, function, out=own,
                       finish=lambda band: np.clip(band, 0, 255).astype(np.uint8)) is own
    np.testing.assert_array_equal(own, as_uint8)


def test_a_tiled_file_is_stylized_over_its_own_pixels_to_the_same_result(tiny_run, photo,
                                                                         tmp_path):
    from PIL import Image

    translator = kstyle.load(tiny_run, tile=64)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    written = translator(str(tmp_path / "photo.png"), out=tmp_path / "out.png")
    expected = translator(photo)
    np.testing.assert_array_equal(np.asarray(Image.open(written)), expected)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "photo.png")), photo)
    # An array the caller gave is never written over.
    given = photo.copy()
    translator(given)
    np.testing.assert_array_equal(given, photo)


def test_the_statistics_copy_is_shrunk_without_a_float_copy_of_the_whole():
    # Block means, then a small antialiased resize: what one antialiased resize of the
    # whole gives, to a level, without converting the whole image to float.
    import tensorflow as tf

    from kstyle.nets.tiling import downscale

    ramp = np.linspace(0, 255, 2003)[None, :, None] * np.linspace(0.2, 1, 1501)[:, None, None]
    image = np.repeat(ramp, 3, axis=-1).astype(np.uint8)
    small = downscale(image, 512)
    assert max(small.shape[:2]) == 512 and small.dtype == np.uint8
    direct = tf.image.resize(image[None], small.shape[:2], antialias=True)[0].numpy()
    assert np.abs(small.astype(float) - direct).max() <= 1.5
    np.testing.assert_array_equal(downscale(image[:300, :400], 512), image[:300, :400])


def test_the_statistics_pass_sets_each_norm_to_the_moments_of_what_it_saw(network, photo):
    import tensorflow as tf

    from kstyle.nets.tiling import _is_instance_norm
    from kstyle.nets.uint8 import prepare_input

    tiled = TiledTranslator(network, 4, tile=64, overlap=16, stats_size=4096)
    tiled.measure(photo)
    found = [layer for layer in network.layers if _is_instance_norm(layer)]
    seen = keras.Model(network.inputs, [layer.input for layer in found])(
        prepare_input(photo[None], 4, "none"), training=False)
    assert list(tiled.norms) == [layer.name for layer in found]
    for fixed, x in zip(tiled.norms.values(), seen, strict=True):
        mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
        # The same float32 ops on the same inputs, up to the order of the sums.
        np.testing.assert_allclose(fixed.mean.numpy(), mean.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(fixed.variance.numpy(), variance.numpy(), rtol=1e-4,
                                   atol=1e-6)
