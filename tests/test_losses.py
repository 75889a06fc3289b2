"""Tests of kstyle.losses against hand-computed values."""

import math

import numpy as np
import pytest

from kstyle import losses


def value(x):
    x = np.asarray(x)
    assert x.shape == ()
    assert x.dtype == np.float32
    return float(x)


def f32(values):
    return np.asarray(values, dtype="float32")


def test_vanilla_generator_loss():
    # -log(sigmoid(0)) = log 2; -log(sigmoid(2)) = log(1 + e^-2).
    expected = (math.log(2.0) + math.log(1.0 + math.exp(-2.0))) / 2
    assert value(losses.vanilla_generator_loss(f32([0.0, 2.0]))) == pytest.approx(expected)


def test_vanilla_discriminator_loss():
    real = (math.log(2.0) + math.log(1.0 + math.exp(-2.0))) / 2
    # -log(1 - sigmoid(x)) = log(1 + e^x).
    fake = (math.log(1.0 + math.exp(-1.0)) + math.log(1.0 + math.exp(3.0))) / 2
    got = losses.vanilla_discriminator_loss(f32([0.0, 2.0]), f32([-1.0, 3.0]))
    assert value(got) == pytest.approx(real + fake)


def test_vanilla_losses_are_stable_for_large_logits():
    assert value(losses.vanilla_generator_loss(f32([-200.0]))) == pytest.approx(200.0)
    assert value(losses.vanilla_generator_loss(f32([200.0]))) == pytest.approx(0.0, abs=1e-30)
    got = losses.vanilla_discriminator_loss(f32([-100.0]), f32([300.0]))
    assert value(got) == pytest.approx(400.0)


def test_lsgan_generator_loss():
    # ((0 - 1)^2 + (2 - 1)^2 + (3 - 1)^2) / 3 = 6 / 3.
    assert value(losses.lsgan_generator_loss(f32([0.0, 2.0, 3.0]))) == pytest.approx(2.0)


def test_lsgan_discriminator_loss():
    # real: (0^2 + 2^2) / 2 = 2; fake: (0.5^2 + 2^2) / 2 = 2.125.
    got = losses.lsgan_discriminator_loss(f32([1.0, 3.0]), f32([0.5, -2.0]))
    assert value(got) == pytest.approx(4.125)


def test_hinge_generator_loss():
    assert value(losses.hinge_generator_loss(f32([0.0, 2.0, -5.0]))) == pytest.approx(1.0)


def test_hinge_discriminator_loss():
    # real: (relu(0.5) + relu(2)) / 2 = 1.25; fake: (relu(1.5) + relu(-2)) / 2 = 0.75.
    got = losses.hinge_discriminator_loss(f32([0.5, -1.0]), f32([0.5, -3.0]))
    assert value(got) == pytest.approx(2.0)


def test_l1_loss():
    # (|0 - 1| + |1 - 1| + |2 - 0| + |-3 - 0|) / 4 = 6 / 4.
    got = losses.l1_loss(f32([[0.0, 1.0], [2.0, -3.0]]), f32([[1.0, 1.0], [0.0, 0.0]]))
    assert value(got) == pytest.approx(1.5)


def test_losses_average_over_every_element_of_a_patch_map():
    # A PatchGAN-shaped map of ones: LSGAN sees (1 - 1)^2 = 0 on real and 1 on fake.
    ones = np.ones((2, 3, 3, 1), "float32")
    assert value(losses.lsgan_discriminator_loss(ones, ones)) == pytest.approx(1.0)
    half = np.concatenate([ones[:1], -ones[1:]])
    assert value(losses.hinge_generator_loss(half)) == pytest.approx(0.0)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_losses_compute_in_float32(dtype):
    import tensorflow as tf

    big = tf.constant([300.0, -300.0], dtype=dtype)
    # (299^2 + 301^2) / 2 = 90001 overflows float16 (max 65504) unless cast first.
    assert value(losses.lsgan_generator_loss(big)) == pytest.approx(90001.0)
    assert value(losses.l1_loss(big, tf.zeros_like(big))) == pytest.approx(300.0)
    assert value(losses.vanilla_generator_loss(big)) == pytest.approx(150.0)


def test_gan_losses_registry():
    assert set(losses.GAN_LOSSES) == {"vanilla", "lsgan", "hinge"}
    assert losses.gan_losses("vanilla") == (
        losses.vanilla_generator_loss,
        losses.vanilla_discriminator_loss,
    )
    assert losses.gan_losses("lsgan") == (
        losses.lsgan_generator_loss,
        losses.lsgan_discriminator_loss,
    )
    assert losses.gan_losses("hinge") == (
        losses.hinge_generator_loss,
        losses.hinge_discriminator_loss,
    )


def test_gan_losses_unknown_mode_lists_valid_names():
    with pytest.raises(ValueError, match="wgan") as info:
        losses.gan_losses("wgan")
    for name in ("vanilla", "lsgan", "hinge"):
        assert name in str(info.value)


# ----------------------------------------------------------------------- style transfer


def test_gram_matrix_by_hand():
    # Two positions with features (1, 2) and (3, 0): outer products summed, over 2.
    features = f32([1.0, 2.0, 3.0, 0.0]).reshape(1, 2, 1, 2)
    np.testing.assert_allclose(losses.gram_matrix(features), [[[5.0, 1.0], [1.0, 2.0]]])
    # Independent of size: the same statistics tiled twice give the same Gram matrix.
    tiled = np.tile(features, (1, 2, 3, 1))
    np.testing.assert_allclose(losses.gram_matrix(tiled), losses.gram_matrix(features))


def test_content_and_style_losses_by_hand():
    assert value(losses.content_loss(f32([[1.0, -2.0]]), f32([[0.0, 0.0]]))) == 2.5
    gram = f32([[[1.0, 0.0], [0.0, 1.0]]])
    target = f32([[[0.0, 0.0], [0.0, 3.0]]])
    assert value(losses.style_loss(gram, target)) == pytest.approx((1 + 4) / 4)
    # A [1, C, C] style target broadcasts over a batch of two.
    assert value(losses.style_loss(np.concatenate([gram, target]), target)) == \
        pytest.approx(5 / 8)


def test_total_variation_by_hand():
    image = f32([[0.0, 1.0], [1.0, 1.0]]).reshape(1, 2, 2, 1)
    # Down: |1-0|, |1-1| -> 0.5; right: |1-0|, |1-1| -> 0.5.
    assert value(losses.total_variation_loss(image)) == pytest.approx(1.0)
    assert value(losses.total_variation_loss(np.ones((1, 5, 7, 3), "float32"))) == 0.0
