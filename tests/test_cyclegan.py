"""Tests of CycleGAN: ResNet generator, reflection padding, image pool, VGG features, model."""


import keras
import numpy as np
import pytest
import tensorflow as tf

from kstyle.data import synthetic_pairs, to_float
from kstyle.errors import ModelLoadError
from kstyle.models.cyclegan import CycleGAN, FakeImagePools
from kstyle.nets.image_pool import ImagePool
from kstyle.nets.layers import ReflectionPadding2D
from kstyle.nets.resnet import RESNET_SIZE_MULTIPLE, resnet_generator
from kstyle.nets.vgg import VGG19_WEIGHTS_ENV, VGG19_WEIGHTS_FILE, vgg19_features
from kstyle.optimizers import FusedAdam

CONVS = (keras.layers.Conv2D, keras.layers.Conv2DTranspose)
TINY = {"base_filters": 4, "num_blocks": 1, "d_base_filters": 4, "d_layers": 2}


def trainable_params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def images(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


def unpaired(size=32, seed=0):
    """A fixed batch of two domain-a images and two domain-b images."""
    a, b = (to_float(x) for x in synthetic_pairs(2, size, seed=seed))
    return a, b


def compiled(lr=2e-3, jit_compile=False, **options):
    model = CycleGAN.build_from_options(**{**TINY, **options})
    model.compile(g_optimizer=FusedAdam(lr, beta_1=0.5), d_optimizer=FusedAdam(lr, beta_1=0.5),
                  jit_compile=jit_compile)
    return model


def repeat(a, b):
    return tf.data.Dataset.from_tensors((a, b)).repeat()


# ----------------------------------------------------------------------- ResNet generator

# The reference `ResnetGenerator` (ngf=64, instance norm, so every conv has a bias):
# 7x7 stem 9,472 + downs 73,856 + 295,168 + 1,180,160 per block + ups 295,040 + 73,792 +
# 7x7 head 9,411.
@pytest.mark.parametrize(("num_blocks", "expected"), [(9, 11_378_179), (6, 7_837_699)])
def test_resnet_parameter_count_matches_reference(num_blocks, expected):
    model = resnet_generator(base_filters=64, num_blocks=num_blocks, norm="instance")
    assert trainable_params(model) == expected
    assert not model.non_trainable_weights


# CycleGAN's discriminators use instance norm, like its generators: the three normed convs
# keep their biases (+896) and have no affine scale and offset (-1,792), so the 3-channel
# PatchGAN's 2,765,633 parameters with batch norm become the reference's 2,764,737.
def test_cyclegan_networks_at_reference_size():
    model = CycleGAN.build_from_options()
    for name in ("generator_ab", "generator_ba"):
        assert trainable_params(model.networks[name]) == 11_378_179
    for name in ("discriminator_a", "discriminator_b"):
        assert trainable_params(model.networks[name]) == 2_764_737
    batch = CycleGAN.build_from_options(norm="batch", num_blocks=0)
    assert trainable_params(batch.discriminator_a) == 2_765_633
    assert model.translator is model.generator_ab
    assert model.translators == {"a2b": model.generator_ab, "b2a": model.generator_ba}
    assert [n.name for n in model.networks.values()] == list(model.networks)


@pytest.mark.parametrize(("height", "width"), [(64, 64), (36, 44)])
def test_resnet_output_shape_dtype_and_range(height, width):
    assert height % RESNET_SIZE_MULTIPLE == 0 and width % RESNET_SIZE_MULTIPLE == 0
    model = resnet_generator(base_filters=4, num_blocks=2)
    out = model(images((2, height, width, 3)), training=True)
    assert tuple(out.shape) == (2, height, width, 3)
    assert out.dtype == "float32"
    out = np.asarray(out)
    assert np.all(np.abs(out) <= 1.0) and out.std() > 0


def test_resnet_layers_like_the_reference():
    instance = resnet_generator(base_filters=4, num_blocks=2, dropout=0.5)
    convs = [layer for layer in instance.layers if isinstance(layer, CONVS)]
    assert len(convs) == 1 + 2 + 2 * 2 + 2 + 1
    assert all(c.use_bias for c in convs)
    assert [c.filters for c in convs] == [4, 8, 16, 16, 16, 16, 16, 8, 4, 3]
    assert len([x for x in instance.layers if isinstance(x, keras.layers.Dropout)]) == 2
    assert instance.get_layer("block1_add").input[0] is instance.get_layer("block0_add").output
    batch = resnet_generator(base_filters=4, num_blocks=2, norm="batch")
    convs = [layer for layer in batch.layers if isinstance(layer, CONVS)]
    assert [c.name for c in convs if c.use_bias] == ["head_conv"]
    assert not [x for x in batch.layers if isinstance(x, keras.layers.Dropout)]
    with pytest.raises(ValueError, match="batch, instance, none"):
        resnet_generator(norm="layer")


def torch_conv(x, kernel, bias, stride, padding):
    """PyTorch's Conv2d on one HWC image, with an HWIO kernel."""
    x = np.pad(x, ((padding, padding), (padding, padding), (0, 0)))
    k = kernel.shape[0]
    rows, cols = (x.shape[0] - k) // stride + 1, (x.shape[1] - k) // stride + 1
    out = np.empty((rows, cols, kernel.shape[-1]))
    for i in range(rows):
        for j in range(cols):
            patch = x[i * stride:i * stride + k, j * stride:j * stride + k]
            out[i, j] = np.einsum("yxc,yxco->o", patch, kernel)
    return out + bias


def torch_conv_transpose(x, kernel, bias, stride, padding, output_padding):
    """PyTorch's ConvTranspose2d on one HWC image, with Keras' (h, w, out, in) kernel."""
    k = kernel.shape[0]
    rows, cols = ((n - 1) * stride - 2 * padding + k + output_padding for n in x.shape[:2])
    full = np.zeros(((x.shape[0] - 1) * stride + k + output_padding,
                     (x.shape[1] - 1) * stride + k + output_padding, kernel.shape[2]))
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            full[i * stride:i * stride + k, j * stride:j * stride + k] += np.einsum(
                "c,yxoc->yxo", x[i, j], kernel)
    return full[padding:padding + rows, padding:padding + cols] + bias


def test_strided_convs_pad_exactly_like_pytorch():
    model = resnet_generator(base_filters=4, num_blocks=1)
    for layer in model.layers:  # Non-zero biases, so that a misplaced border shows.
        if isinstance(layer, CONVS):
            layer.bias.assign(np.linspace(-0.5, 0.5, layer.filters).astype("float32"))
    probe = keras.Model(model.input, [
        model.get_layer("down1_pad").input, model.get_layer("down1_conv").output,
        model.get_layer("up2_conv").input, model.get_layer("up2_conv").output])
    for training in (False, True):  # the transposed conv computes its crop another way
        down_in, down_out, up_in, up_out = (
            np.asarray(t)[0] for t in probe(images((1, 36, 44, 3)), training=training))
        down, up = model.get_layer("down1_conv"), model.get_layer("up2_conv")
        np.testing.assert_allclose(
            down_out, torch_conv(down_in, np.asarray(down.kernel), np.asarray(down.bias), 2, 1),
            atol=1e-4)
        expected = torch_conv_transpose(up_in, np.asarray(up.kernel), np.asarray(up.bias), 2,
                                        1, 1)
        assert expected.shape == up_out.shape == (36, 44, 4)
        np.testing.assert_allclose(up_out, expected, atol=1e-4)


@pytest.mark.parametrize("padding", [1, 3, ((2, 1), (0, 3))])
def test_reflection_padding_matches_numpy(padding):
    x = images((2, 5, 6, 3))
    layer = ReflectionPadding2D(padding)
    pads = ((padding, padding), (padding, padding)) if isinstance(padding, int) else padding
    expected = np.pad(x, ((0, 0), *pads, (0, 0)), mode="reflect")
    out = layer(x)
    np.testing.assert_array_equal(np.asarray(out), expected)
    assert layer.compute_output_shape((None, 5, None, 3)) == (
        None, 5 + sum(pads[0]), None, 3)
    clone = ReflectionPadding2D.from_config(layer.get_config())
    np.testing.assert_array_equal(np.asarray(clone(x)), expected)


# --------------------------------------------------------------------------- image pool

def constant_batch(values, size=4):
    return np.stack([np.full((size, size, 1), v, "float32") for v in values])


def values_of(batch):
    return np.asarray(batch)[:, 0, 0, 0].tolist()


def test_pool_returns_inputs_while_filling_then_past_images():
    pool = ImagePool(pool_size=4, seed=1)
    assert values_of(pool(constant_batch([0, 1]))) == [0, 1]
    assert values_of(pool(constant_batch([2, 3]))) == [2, 3]
    assert sorted(values_of(pool.images)) == [0, 1, 2, 3] and int(pool.count.numpy()) == 4
    returned = []
    for k in range(4, 24, 2):
        before = values_of(pool.images)
        out = values_of(pool(constant_batch([k, k + 1])))
        # Each image is either returned, or stored in place of the stored one returned.
        assert sorted(out + values_of(pool.images)) == sorted(before + [k, k + 1])
        assert all(v <= k + 1 for v in out)
        returned += out
    assert any(v < k for k, v in zip(range(4, 24), returned)), "never returned a past image"
    assert int(pool.count.numpy()) == 4


def test_pool_of_size_zero_is_the_identity():
    pool = ImagePool(pool_size=0)
    x = images((3, 8, 8, 3))
    np.testing.assert_array_equal(np.asarray(pool(x)), x)
    assert not pool.weights


def test_pool_under_xla_swaps_half_the_time():
    pool = ImagePool(pool_size=3, seed=2)
    query = tf.function(pool.query, jit_compile=True)
    assert values_of(query(constant_batch([0, 1]))) == [0, 1]
    assert values_of(query(constant_batch([2, 3])))[0] == 2  # Fills the pool's last slot.
    swaps = 0
    for k in range(4, 200, 2):
        before = values_of(pool.images)
        out = values_of(query(constant_batch([k, k + 1])))
        assert sorted(out + values_of(pool.images)) == sorted(before + [k, k + 1])
        swaps += sum(v < k for v in out)
    # 196 queries on a full pool, each a swap with probability 1/2.
    assert 70 < swaps < 126, swaps


def test_pools_round_trip_through_weights_files(tmp_path):
    pools = FakeImagePools(pool_size=4)
    empty = tmp_path / "empty.weights.h5"
    pools.save_weights(empty)  # Before the first batch: nothing built, nothing stored.
    pools((constant_batch([1, 2, 3]), constant_batch([4, 5, 6])))
    full = tmp_path / "pools.weights.h5"
    pools.save_weights(full)

    restored = FakeImagePools(pool_size=4)
    restored.load_weights(empty)
    assert not restored.fake_a.built
    restored.load_weights(full)  # Builds the unbuilt pools from the stored shapes.
    assert values_of(restored.fake_b.images) == [4, 5, 6, 0]
    assert int(restored.fake_a.count.numpy()) == 3
    assert values_of(restored.fake_a(constant_batch([7]))) == [7]
    restored.load_weights(empty)
    assert int(restored.fake_a.count.numpy()) == 0


# ---------------------------------------------------------------------------- VGG features

def caffe(x):
    return ((x + 1.0) * 127.5)[..., ::-1] - np.array([103.939, 116.779, 123.68])


@pytest.mark.parametrize("file", ["vgg19.weights.h5", "vgg19.h5"])
def test_vgg_features_load_a_local_weights_file(random_vgg, file, monkeypatch):
    folder, vgg = random_vgg
    x = images((1, 32, 32, 3))
    layers = ("block2_conv1", "block1_conv2")
    reference = keras.Model(vgg.input, [vgg.get_layer(n).output for n in layers])
    expected = [np.asarray(f) for f in reference(caffe(x).astype("float32"))]
    features = vgg19_features(layers, weights=str(folder / file))
    assert not features.trainable_weights
    assert "block5_conv1" not in [layer.name for layer in features.layers]
    out = features(x)
    assert list(out) == list(layers)
    for name, want in zip(layers, expected):
        np.testing.assert_allclose(np.asarray(out[name]), want, rtol=1e-4, atol=1e-3)
    monkeypatch.setenv(VGG19_WEIGHTS_ENV, str(folder / file))
    from_env = vgg19_features(layers, weights="imagenet")
    np.testing.assert_array_equal(np.asarray(from_env(x)["block2_conv1"]),
                                  np.asarray(out["block2_conv1"]))


def test_vgg_offline_error_names_the_file_to_fetch(monkeypatch):
    def offline(**kwargs):
        if kwargs.get("weights") == "imagenet":
            raise Exception("URL fetch failure: no network")
        raise AssertionError("not reached")

    monkeypatch.delenv(VGG19_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(keras.applications, "VGG19", offline)
    with pytest.raises(ModelLoadError, match=VGG19_WEIGHTS_FILE) as error:
        vgg19_features(weights="imagenet")
    assert "~/.keras/models/" in str(error.value) and VGG19_WEIGHTS_ENV in str(error.value)
    with pytest.raises(ModelLoadError, match="not found"):
        vgg19_features(weights="/nonexistent/vgg19.h5")


def test_vgg_unknown_layer_lists_valid_layers():
    with pytest.raises(ValueError, match=r"'block9_conv1'.*block1_conv1, block1_conv2"):
        vgg19_features(("block9_conv1",))


# --------------------------------------------------------------------------------- model

@pytest.mark.slow
def test_training_reduces_the_cycle_loss():
    keras.utils.set_random_seed(1)
    a, b = unpaired(seed=3)
    model = compiled(base_filters=8)
    before = model.evaluate(tf.data.Dataset.from_tensors((a, b)), verbose=0, return_dict=True)
    logs = model.fit(repeat(a, b), steps_per_epoch=30, epochs=1, verbose=0).history
    after = model.evaluate(tf.data.Dataset.from_tensors((a, b)), verbose=0, return_dict=True)
    assert after["cycle_l1"] < 0.5 * before["cycle_l1"], (before, after)
    assert set(logs) == {"g_loss", "g_ab_loss", "g_ba_loss", "cycle_loss", "identity_loss",
                         "d_a_loss", "d_b_loss"}
    # Both pools took the 30 steps' two fakes each, up to their 50 images.
    assert int(model.pools.fake_a.count.numpy()) == int(model.pools.fake_b.count.numpy()) == 50


@pytest.mark.slow
def test_train_step_runs_under_xla():
    a, b = unpaired()
    model = compiled(jit_compile=True, lambda_identity=0.0, pool_size=3)
    logs = model.fit(repeat(a, b), steps_per_epoch=2, epochs=1, verbose=0).history
    assert set(logs) == {"g_loss", "g_ab_loss", "g_ba_loss", "cycle_loss", "d_a_loss",
                         "d_b_loss"}
    assert all(np.isfinite(v[-1]) for v in logs.values())
    assert int(model.pools.fake_b.count.numpy()) == 3


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_a_step_on_concatenated_batches_equals_one_call_per_batch(norm, monkeypatch):
    # The step calls each network once on the batches it has at the same time (real and
    # identity inputs, real and pooled fakes); that is exact only for per-image networks.
    a, b = unpaired()

    def one_step(per_image):
        keras.utils.set_random_seed(3)
        model = CycleGAN.build_from_options(**{**TINY, "norm": norm, "pool_size": 2})
        model.compile(g_optimizer=keras.optimizers.SGD(0.1),
                      d_optimizer=keras.optimizers.SGD(0.1))
        model.build_optimizers()
        model.build_state(a.shape[1])
        assert model.per_image == (norm == "instance")
        monkeypatch.setattr(CycleGAN, "per_image", per_image)
        logs = tf.function(model.train_step)((a, b))
        monkeypatch.undo()
        return {k: float(v) for k, v in logs.items()}, [w.numpy() for w in model.weights]

    batched_logs, batched_weights = one_step(per_image=norm == "instance")
    logs, weights = one_step(per_image=False)
    assert batched_logs == pytest.approx(logs, rel=1e-5)
    for batched, plain in zip(batched_weights, weights, strict=True):
        np.testing.assert_allclose(batched, plain, rtol=1e-4, atol=1e-6)


def test_perceptual_loss_and_weights_of_the_objective():
    a, b = unpaired()
    model = compiled(lambda_perceptual=0.01, lambda_cycle=7.0, lambda_identity=0.5,
                     perceptual_layers=("block1_conv2", "block2_conv1"), pool_size=0,
                     vgg_weights="random")
    assert model.feature_extractor is not None and not model.feature_extractor.trainable
    logs = {k: v[-1] for k, v in model.fit(
        repeat(a, b), steps_per_epoch=1, epochs=1, verbose=0).history.items()}
    assert logs["perceptual_loss"] > 0
    expected = (logs["g_ab_loss"] + logs["g_ba_loss"] + 7.0 * logs["cycle_loss"]
                + 7.0 * 0.5 * logs["identity_loss"] + 0.01 * logs["perceptual_loss"])
    assert logs["g_loss"] == pytest.approx(expected, rel=1e-5)
    assert CycleGAN.build_from_options(**TINY).feature_extractor is None


def test_generators_reload_safely_with_identical_outputs(tmp_path):
    a, b = unpaired()
    model = CycleGAN.build_from_options(**TINY, dropout=0.5)
    for direction, net in model.translators.items():
        x = a if direction == "a2b" else b
        path = tmp_path / f"{direction}.keras"
        net.save(path)
        reloaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_array_equal(np.asarray(reloaded(x, training=False)),
                                      np.asarray(net(x, training=False)))


@pytest.mark.slow
def test_checkpoint_of_networks_restores_pools_and_optimizers(tmp_path):
    a, b = unpaired()
    model = compiled(pool_size=5)
    model.fit(repeat(a, b), steps_per_epoch=2, epochs=1, verbose=0)
    for name, net in model.networks.items():
        net.save_weights(tmp_path / f"{name}.weights.h5")

    fresh = compiled(pool_size=5)
    fresh.build_optimizers()
    assert [len(opt.variables) for opt in fresh.optimizers.values()] == [
        len(opt.variables) for opt in model.optimizers.values()]
    assert not fresh.pools.fake_a.built
    for name, net in fresh.networks.items():
        net.load_weights(tmp_path / f"{name}.weights.h5")
    assert int(fresh.pools.fake_a.count.numpy()) == 4
    for old, new in ((model.pools.fake_a, fresh.pools.fake_a),
                     (model.pools.fake_b, fresh.pools.fake_b)):
        np.testing.assert_array_equal(np.asarray(new.images), np.asarray(old.images))
    np.testing.assert_array_equal(np.asarray(fresh.generator_ba(b)),
                                  np.asarray(model.generator_ba(b)))


def test_config_round_trip_and_option_errors():
    model = CycleGAN.build_from_options(**TINY, gan_mode="vanilla", pool_size=7,
                                        lambda_identity=0.0)
    clone = CycleGAN.from_config(model.get_config())
    assert (clone.gan_mode, clone.pool_size, clone.lambda_identity) == ("vanilla", 7, 0.0)
    assert trainable_params(clone.generator_ab) == trainable_params(model.generator_ab)
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        CycleGAN.build_from_options(**TINY, out_channels=1)
    with pytest.raises(ValueError, match="valid modes"):
        CycleGAN.build_from_options(**TINY, gan_mode="wgan")
