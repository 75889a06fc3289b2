"""Tests of the network builders in kstyle.nets."""

import contextlib
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kstyle.nets import (
    NORMS,
    BatchNormalization,
    DepthToSpace,
    InstanceNormalization,
    normalization,
    patchgan_discriminator,
    resnet_generator,
    size_multiple,
    unet_generator,
)
from kstyle.precision import cpu_info

TINY_UNET = {"base_filters": 8, "num_downs": 5}
CONVS = (keras.layers.Conv2D, keras.layers.Conv2DTranspose)


def trainable_params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def layers_of(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


def images(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


@pytest.mark.parametrize(("shape", "static"), [((1, 6, 5, 4), True), ((3, 6, 5, 4), True),
                                               ((6, 6, 5, 4), True), ((2, 6, 5, 4), False)])
def test_instance_norm_in_training_equals_its_inference_formula(shape, static):
    # Training runs fused batch-norm kernels (image by image for small batches, on the
    # images as channels of one for larger or unknown ones); inference the plain means.
    # Values and input gradients agree, with static and unknown batch sizes.
    layer = InstanceNormalization()
    x = tf.constant(images(shape) * 3 + 1)
    weights = tf.constant(images(shape, seed=1))
    signature = [tf.TensorSpec(shape if static else (None, *shape[1:]))]

    def value_and_gradient(training):
        @tf.function(input_signature=signature)
        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=training)
                loss = tf.reduce_sum(y * weights)
            return y, tape.gradient(loss, x)

        return [t.numpy() for t in run(x)]

    (y_fused, g_fused), (y_means, g_means) = value_and_gradient(True), value_and_gradient(False)
    np.testing.assert_allclose(y_fused, y_means, atol=1e-5)
    np.testing.assert_allclose(g_fused, g_means, atol=1e-4)
    assert abs(y_means.mean(axis=(1, 2))).max() < 1e-5


@pytest.mark.parametrize("scale", [True, False])
def test_batch_norm_trains_as_keras_batch_norm(scale):
    # Fused kernels in training: the same outputs, gradients (inputs, scale, offset) and
    # moving statistics as Keras' layer, over two steps; inference as Keras'.
    x = [tf.constant(images((2, 5, 6, 4), seed=s) * 3 + 1) for s in (0, 1)]
    weights = tf.constant(images((2, 5, 6, 4), seed=2))
    results = []
    for cls in (keras.layers.BatchNormalization, BatchNormalization):
        keras.utils.set_random_seed(0)
        layer = cls(momentum=0.9, epsilon=1e-5, scale=scale,
                    gamma_initializer=keras.initializers.RandomNormal(1.0, 0.1))
        layer.build(x[0].shape)

        @tf.function
        def step(x, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(layer(x, training=True) * weights)
            return loss, tape.gradient(loss, [x, *layer.trainable_weights])

        values = [t.numpy() for batch in x for t in tf.nest.flatten(step(batch))]
        values += [w.numpy() for w in layer.non_trainable_weights]
        results.append(values + [layer(x[0], training=False).numpy()])
    for fused, plain in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(fused, plain, rtol=1e-5, atol=1e-5)
    assert type(normalization("batch")) is BatchNormalization


# Parameter counts of the reference networks (PyTorch `UnetGenerator` "unet_256" and
# `NLayerDiscriminator` "basic", batch norm, ngf = ndf = 64): weights, biases and the
# affine parameters of batch norm, running statistics excluded.
def test_unet_256_parameter_count_matches_reference():
    model = unet_generator(base_filters=64, num_downs=8, norm="batch")
    assert trainable_params(model) == 54_413_955


@pytest.mark.parametrize(("in_channels", "expected"), [(6, 2_768_705), (3, 2_765_633)])
def test_patchgan_parameter_count_matches_reference(in_channels, expected):
    model = patchgan_discriminator(in_channels=in_channels, base_filters=64, n_layers=3)
    assert trainable_params(model) == expected


def test_size_multiple():
    assert size_multiple(8) == 256
    assert size_multiple(5) == 32


@pytest.mark.parametrize(
    ("num_downs", "size", "in_channels", "out_channels"),
    [(5, 32, 3, 3), (6, 64, 1, 2)],
)
def test_unet_output_shape_dtype_and_range(num_downs, size, in_channels, out_channels):
    model = unet_generator(
        in_channels=in_channels,
        out_channels=out_channels,
        base_filters=8,
        num_downs=num_downs,
    )
    out = model(images((2, size, size, in_channels)), training=True)
    assert tuple(out.shape) == (2, size, size, out_channels)
    assert out.dtype == "float32"
    out = np.asarray(out)
    assert np.all(out >= -1.0) and np.all(out <= 1.0)
    assert out.std() > 0


def test_unet_takes_any_multiple_of_its_size():
    model = unet_generator(**TINY_UNET)
    out = model(images((1, 64, 96, 3)), training=False)
    assert tuple(out.shape) == (1, 64, 96, 3)


@pytest.mark.parametrize(
    ("num_downs", "dropout", "expected"), [(8, 0.5, 3), (6, 0.5, 1), (5, 0.5, 0), (8, 0.0, 0)]
)
def test_unet_dropout_layers(num_downs, dropout, expected):
    model = unet_generator(base_filters=4, num_downs=num_downs, dropout=dropout)
    drops = layers_of(model, keras.layers.Dropout)  # kstyle Dropout subclasses it
    assert len(drops) == expected
    assert all(layer.rate == dropout for layer in drops)


def test_unet_biases_only_where_the_reference_keeps_them():
    batch = unet_generator(**TINY_UNET, norm="batch")
    convs = layers_of(batch, CONVS)
    assert len(convs) == 2 * 5
    assert [c.name for c in convs if c.use_bias] == ["up0_conv"]
    instance = unet_generator(**TINY_UNET, norm="instance")
    assert all(c.use_bias for c in layers_of(instance, CONVS))


def test_unet_norm_layers():
    batch = unet_generator(**TINY_UNET, norm="batch")
    # Every conv but the outermost down, the innermost down and the outermost up.
    assert len(layers_of(batch, keras.layers.BatchNormalization)) == 2 * 5 - 3
    instance = unet_generator(**TINY_UNET, norm="instance")
    assert not layers_of(instance, keras.layers.BatchNormalization)
    assert len(layers_of(instance, InstanceNormalization)) == 2 * 5 - 3
    out = instance(images((1, 32, 32, 3)), training=False)
    assert tuple(out.shape) == (1, 32, 32, 3)
    none = unet_generator(**TINY_UNET, norm="none")
    assert not layers_of(none, keras.layers.BatchNormalization)
    assert not layers_of(none, InstanceNormalization)


def test_unet_skips_are_taken_after_the_leaky_relu():
    model = unet_generator(**TINY_UNET)
    for depth in range(1, 5):
        skip = model.get_layer(f"up{depth}_concat").input[0]
        assert skip is model.get_layer(f"down{depth}_lrelu").output


def test_unet_without_skips_is_a_plain_encoder_decoder():
    model = unet_generator(**TINY_UNET, norm="instance", skips=False)
    assert not layers_of(model, keras.layers.Concatenate)
    convs = layers_of(model, keras.layers.Conv2D)
    deconvs = layers_of(model, keras.layers.Conv2DTranspose)
    assert len(convs) == 5 and len(deconvs) == 5  # num_downs down, num_downs - 1 up + output
    out = model(images((2, 32, 32, 3)), training=True)
    assert tuple(out.shape) == (2, 32, 32, 3) and out.dtype == "float32"
    out = np.asarray(out)
    assert np.all(np.abs(out) <= 1.0) and out.std() > 0
    # Each up conv but the innermost (whose input is the bottleneck either way) loses the
    # skip half of its input channels: 4 * 4 * filters(depth) * its output filters.
    filters = [8, 16, 32, 64, 64]
    outputs = [3, 8, 16, 32]
    saved = sum(16 * filters[d] * outputs[d] for d in range(4))
    with_skips = unet_generator(**TINY_UNET, norm="instance")
    assert trainable_params(model) == trainable_params(with_skips) - saved
    assert trainable_params(model) < trainable_params(with_skips)


def test_unet_without_skips_at_paper_depth():
    model = unet_generator(base_filters=4, num_downs=8, skips=False, dropout=0.0)
    assert len(layers_of(model, keras.layers.Conv2D)) == 8  # the encoder's 8 convs
    assert len(layers_of(model, keras.layers.Conv2DTranspose)) == 8  # 7 deconvs + output
    assert tuple(model(images((1, 256, 256, 3))).shape) == (1, 256, 256, 3)


def test_unet_filters():
    model = unet_generator(base_filters=4, num_downs=7)
    filters = [model.get_layer(f"down{d}_conv").filters for d in range(7)]
    assert filters == [4, 8, 16, 32, 32, 32, 32]
    assert model.get_layer("up1_conv").filters == 4
    assert model.get_layer("up0_conv").filters == 3


def test_unet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_downs"):
        unet_generator(num_downs=4)
    with pytest.raises(ValueError, match="batch, instance, none"):
        unet_generator(**TINY_UNET, norm="layer")


def test_patchgan_output_shape():
    model = patchgan_discriminator(in_channels=6, base_filters=4)
    assert tuple(model(images((1, 256, 256, 6)), training=False).shape) == (1, 30, 30, 1)
    out = model(images((2, 64, 64, 6)), training=False)
    assert tuple(out.shape) == (2, 6, 6, 1)
    assert out.dtype == "float32"
    three = patchgan_discriminator(in_channels=3, base_filters=4)
    assert tuple(three(images((1, 64, 64, 3))).shape) == (1, 6, 6, 1)


def test_patchgan_outputs_raw_logits():
    keras.utils.set_random_seed(0)  # unseeded weights could put every logit in [0, 1]
    model = patchgan_discriminator(base_filters=4, norm="none")
    x = images((1, 64, 64, 6)) * 50.0
    out = np.asarray(model(x))
    assert out.min() < 0.0 or out.max() > 1.0


def test_patchgan_receptive_field_is_70_pixels():
    # With one pixel of zero padding per conv, logit (0, 0) sees input rows and columns
    # -23 to 46: a change at 47 must not reach it, a change at 46 must.
    model = patchgan_discriminator(base_filters=4)
    x = images((1, 96, 96, 6))
    base = np.asarray(model(x, training=False))[0, 0, 0, 0]
    far, edge = x.copy(), x.copy()
    far[0, 47, 47] += 5.0
    edge[0, 46, 46] += 5.0
    assert np.asarray(model(far, training=False))[0, 0, 0, 0] == base
    assert np.asarray(model(edge, training=False))[0, 0, 0, 0] != base


def test_patchgan_biases_and_norms():
    model = patchgan_discriminator(base_filters=4, n_layers=3, norm="batch")
    convs = layers_of(model, keras.layers.Conv2D)
    assert [c.name for c in convs if c.use_bias] == ["layer0_conv", "logits_conv"]
    assert [c.strides for c in convs] == [(2, 2), (2, 2), (2, 2), (1, 1), (1, 1)]
    assert [c.filters for c in convs] == [4, 8, 16, 32, 1]
    assert len(layers_of(model, keras.layers.BatchNormalization)) == 3
    instance = patchgan_discriminator(base_filters=4, norm="instance")
    assert not layers_of(instance, keras.layers.BatchNormalization)
    assert all(c.use_bias for c in layers_of(instance, keras.layers.Conv2D))


def test_kernels_initialised_like_the_reference():
    keras.utils.set_random_seed(0)
    model = patchgan_discriminator(base_filters=64)
    kernel = np.asarray(model.get_layer("layer3_conv").kernel)
    assert abs(kernel.mean()) < 1e-3
    assert kernel.std() == pytest.approx(0.02, rel=0.02)
    gamma = np.asarray(model.get_layer("layer3_norm").gamma)
    assert gamma.mean() == pytest.approx(1.0, abs=0.01)
    assert gamma.std() == pytest.approx(0.02, rel=0.2)


@pytest.mark.parametrize(
    "build",
    [
        lambda: unet_generator(**TINY_UNET, norm="batch"),
        lambda: unet_generator(**TINY_UNET, norm="instance"),
        lambda: patchgan_discriminator(base_filters=4),
        # Reflection pads of 3 and 1 and 3x3 transposed convs, at 64 px.
        lambda: resnet_generator(base_filters=8, num_blocks=2),
    ],
)
def test_save_and_reload_give_identical_outputs(build, tmp_path):
    model = build()
    channels = model.input.shape[-1]
    x = images((2, 64, 64, channels))
    # One training call so that batch-norm statistics differ from their initial values.
    model(x, training=True)
    expected = np.asarray(model(x, training=False))
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(np.asarray(reloaded(x, training=False)), expected)


@pytest.mark.parametrize(
    "build",
    [
        lambda: unet_generator(**TINY_UNET, norm="instance"),
        lambda: patchgan_discriminator(base_filters=4),
    ],
)
def test_xla_forward_matches_eager(build):
    model = build()
    x = images((2, 32, 32, model.input.shape[-1]))

    @tf.function(jit_compile=True)
    def forward(x):
        return model(x, training=False)

    np.testing.assert_allclose(
        np.asarray(forward(x)), np.asarray(model(x, training=False)), atol=1e-5
    )


def test_mixed_precision_outputs_float32():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        generator = unet_generator(**TINY_UNET)
        discriminator = patchgan_discriminator(base_filters=4)
    finally:
        keras.config.set_dtype_policy(previous)
    assert generator.get_layer("down1_conv").compute_dtype == "bfloat16"
    fake = generator(images((1, 32, 32, 3)), training=True)
    assert fake.dtype == "float32"
    logits = discriminator(keras.ops.concatenate([fake, fake], axis=-1), training=True)
    assert logits.dtype == "float32"


def test_normalization_kinds():
    assert NORMS == ("batch", "instance", "none")
    batch = normalization("batch", name="bn")
    assert isinstance(batch, keras.layers.BatchNormalization)
    assert (batch.name, batch.momentum, batch.epsilon) == ("bn", 0.9, 1e-5)
    instance = normalization("instance")
    assert isinstance(instance, InstanceNormalization)
    assert instance.epsilon == 1e-5 and not instance.weights
    assert isinstance(normalization("none"), keras.layers.Identity)


def test_instance_normalization_normalises_each_channel_of_each_image():
    x = images((2, 8, 8, 3)) * np.array([1.0, 5.0, 10.0], "float32") + 3.0
    out = np.asarray(normalization("instance")(x))
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2)), 1.0, atol=1e-3)


def test_normalization_unknown_kind_lists_valid_kinds():
    with pytest.raises(ValueError, match=r"'layer'.*batch, instance, none"):
        normalization("layer")


def test_instance_normalization_matches_keras_group_norm_and_converts_plainly():
    x = np.random.default_rng(4).normal(2.0, 3.0, (2, 9, 7, 5)).astype(np.float32)
    ours = InstanceNormalization(epsilon=1e-5)(x)
    group = keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, center=False,
                                            scale=False)(x)
    np.testing.assert_allclose(ours, group, atol=1e-5)
    layer = InstanceNormalization.from_config(InstanceNormalization(epsilon=1e-3).get_config())
    assert layer.epsilon == 1e-3
    # bfloat16 in, bfloat16 out, statistics in float32.
    y = InstanceNormalization(dtype="mixed_bfloat16")(x)
    assert y.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(y, tf.float32), ours, atol=0.05)
    # Training runs the fused kernels: the same values and the same gradients.
    norm = InstanceNormalization()
    weights = tf.constant(np.random.default_rng(5).normal(size=x.shape), tf.float32)
    grads = {}
    for training in (False, True):
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = norm(xt, training=training)
            loss = tf.reduce_sum(out * weights)
        grads[training] = tape.gradient(loss, xt).numpy()
        np.testing.assert_allclose(out, ours, atol=1e-4)
    np.testing.assert_allclose(grads[True], grads[False], atol=1e-4)
    y = InstanceNormalization(dtype="mixed_bfloat16")(x, training=True)
    assert y.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(y, tf.float32), ours, atol=0.05)


def test_depth_to_space_unfolds_channels_into_blocks():
    x = np.arange(1 * 2 * 3 * 12, dtype=np.float32).reshape(1, 2, 3, 12)
    y = np.asarray(DepthToSpace(2)(x))
    assert y.shape == (1, 4, 6, 3)
    # Channels 0-2 go to the top-left pixel of each 2x2 block, 3-5 top-right, ...
    np.testing.assert_array_equal(y[0, 0, 0], x[0, 0, 0, 0:3])
    np.testing.assert_array_equal(y[0, 0, 1], x[0, 0, 0, 3:6])
    np.testing.assert_array_equal(y[0, 1, 0], x[0, 0, 0, 6:9])


# (kernel, crop, crop_end): the ResNet generator's upsampling (PyTorch padding 1, output
# padding 1), the U-Net's (padding 1, Keras' "same"), and two shapes neither uses.
CROPPED = [(3, 1, 0), (4, 1, 1), (5, 2, 1), (4, 0, 0)]


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("kernel,crop,crop_end", CROPPED)
@pytest.mark.parametrize("side", [(9, 7), (40, 36)])  # small and large maps
def test_cropped_transposed_conv_is_the_valid_conv_and_crop(policy, kernel, crop, crop_end,
                                                             side):
    from kstyle.nets.layers import Conv2DTranspose, portable_graph
    from kstyle.precision import dtype_policy

    x = tf.constant(images((2, *side, 6)))
    with dtype_policy(policy):
        layer = Conv2DTranspose(5, kernel, strides=2, crop=crop, crop_end=crop_end,
                                bias_initializer="random_normal", name="up")
        layer.build(x.shape)
        plain = keras.layers.Conv2DTranspose(5, kernel, strides=2, padding="valid")
        plain.build(x.shape)
    plain.set_weights(layer.get_weights())
    # A matmul for small maps of a kernel that is a multiple of the stride.
    assert layer._by_matmul(x.shape) == (side == (9, 7) and kernel % 2 == 0)
    crop_layer = keras.layers.Cropping2D(((crop, crop_end), (crop, crop_end)))
    tolerance = 1e-5 if policy == "float32" else 3e-2
    expected = crop_layer(plain(x))
    out_shape = (2, 2 * side[0] + kernel - 2 - crop - crop_end,
                 2 * side[1] + kernel - 2 - crop - crop_end, 5)
    for training, portable in ((False, False), (False, True), (True, False)):
        with tf.GradientTape(persistent=True) as tape, (
                portable_graph() if portable else contextlib.nullcontext()):
            tape.watch(x)
            y = tf.function(lambda x, training=training: layer(x, training=training))(x)
            z = crop_layer(plain(x))
            ly, lz = tf.reduce_sum(tf.cast(y, "float32") ** 2), tf.reduce_sum(
                tf.cast(z, "float32") ** 2)
        assert y.shape == out_shape == expected.shape
        assert layer.compute_output_shape(x.shape) == out_shape
        np.testing.assert_allclose(np.float32(y), np.float32(expected), atol=tolerance)
        if training and (policy == "float32" or side == (9, 7)):  # bf16 sums drift on more
            for a, b in zip(tape.gradient(ly, [x, *layer.trainable_weights]),
                            tape.gradient(lz, [x, *plain.trainable_weights])):
                np.testing.assert_allclose(np.float32(a), np.float32(b), atol=tolerance * 10,
                                           rtol=tolerance)
    config = layer.get_config()
    assert config["crop"] == crop and "padding" not in config
    assert ("crop_end" in config) == bool(crop_end)  # older files have no such key
    assert Conv2DTranspose.from_config(config).compute_output_shape(
        (None, *side, 6)) == (None, *out_shape[1:])


def test_transposed_conv_refuses_a_crop_as_large_as_its_kernel():
    from kstyle.nets.layers import Conv2DTranspose

    with pytest.raises(ValueError, match="crop and crop_end must be in"):
        Conv2DTranspose(4, 3, strides=2, crop=1, crop_end=3)


def test_the_unet_computes_the_same_function_fast_and_portable():
    # Outside portable_graph the small transposed convs (16x16 inputs and under, here)
    # are a matmul and an overlap-add; the export graph keeps TensorFlow's transposed
    # conv. Same parameters, same outputs (the reference's parameter counts are checked
    # above).
    from kstyle.nets.layers import portable_graph

    side = 256
    keras.utils.set_random_seed(3)
    net = unet_generator()
    x = tf.constant(images((2, side, side, 3), seed=3))
    fast = tf.function(lambda x: net(x, training=False))(x)
    with portable_graph():
        plain = tf.function(lambda x: net(x, training=False))(x)
    assert float(tf.reduce_max(tf.abs(plain))) > 0.01  # not a vanishing output
    np.testing.assert_allclose(fast, plain, atol=1e-5, rtol=0)


@pytest.mark.parametrize("target", [None, "litert", "onnx"])
def test_reflection_padding_is_numpys_for_every_converter(target):
    from kstyle.nets.layers import ReflectionPadding2D, portable_graph

    x = images((2, 7, 9, 3), seed=5)
    for padding in (1, 3, ((0, 2), (3, 0))):
        layer = ReflectionPadding2D(padding)
        (top, bottom), (left, right) = layer.padding
        expected = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), mode="reflect")
        for training in (False, True):  # concatenated slices, and MirrorPad
            np.testing.assert_array_equal(layer(x, training=training), expected)
        with portable_graph(target):
            np.testing.assert_array_equal(tf.function(layer)(x), expected)
        # In training the gradient is MirrorPad's: each input pixel collects the
        # gradients of its reflections.
        x_var = tf.constant(x)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x_var)
            sums = [tf.reduce_sum(layer(x_var, training=t) * expected) for t in (False, True)]
        inference, training = (tape.gradient(total, x_var) for total in sums)
        np.testing.assert_allclose(inference, training, atol=1e-6)


def test_portable_graph_names_its_targets_and_nests():
    from kstyle.nets.layers import portable_graph, portable_target, tracing_portable

    assert not tracing_portable() and portable_target() is None
    with portable_graph("litert"):
        with portable_graph("onnx"):
            assert portable_target() == "onnx"
        assert tracing_portable() and portable_target() == "litert"
    assert not tracing_portable()
    with pytest.raises(ValueError, match="target must be one of"):
        with portable_graph("coreml"):
            pass


@pytest.mark.parametrize("shape", [(2, 10, 14, 5), (1, 6, 4, 64)])
def test_winograd_conv_and_its_gradients_round_no_worse_than_the_direct_conv(shape):
    # Output, input gradient and kernel gradient, each against float64.
    from kstyle.nets.winograd import winograd_conv3x3

    x = tf.constant(images(shape, seed=7))
    kernel = tf.constant(
        np.random.default_rng(8).normal(0, 0.3, (3, 3, shape[-1], 6)).astype("float32"))
    weights = tf.constant(images((shape[0], shape[1] - 2, shape[2] - 2, 6), seed=9))

    def values(conv, dtype):
        x_, k_ = tf.cast(x, dtype), tf.cast(kernel, dtype)
        with tf.GradientTape() as tape:
            tape.watch([x_, k_])
            y = conv(x_, k_)
            loss = tf.reduce_sum(y * tf.cast(weights, dtype))
        return [tf.cast(t, "float64") for t in (y, *tape.gradient(loss, [x_, k_]))]

    direct = lambda x, k: tf.nn.conv2d(x, k, 1, "VALID")  # noqa: E731
    exact = values(direct, "float64")
    errors = {name: [float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(found, exact)]
              for name, found in (("direct", values(direct, "float32")),
                                  ("winograd", values(tf.function(winograd_conv3x3),
                                                      "float32")))}
    assert exact[0].shape == (shape[0], shape[1] - 2, shape[2] - 2, 6)
    for wino, plain in zip(errors["winograd"], errors["direct"]):
        assert wino <= max(2 * plain, 1e-5), errors


@pytest.mark.skipif("avx512f" not in cpu_info()[1],
                    reason="no AVX-512 here: the tests above already ran on AVX2 kernels")
def test_winograd_numerics_hold_on_avx2_kernels():
    # The tests of the CPU-chosen convs again, with oneDNN's and XLA's kernels capped at
    # AVX2 as on a Zen 3 CPU, so that a tolerance tuned on AVX-512 fails here rather than
    # on the next machine.
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2",
               XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_max_isa=AVX2".strip())
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-k", "(winograd or tap_by_tap or by_blocks) and not avx2", __file__],
        env=env, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout and " failed" not in result.stdout, result.stdout[-4000:]


def test_conv2d_takes_winograd_only_where_it_applies(monkeypatch):
    from kstyle.nets import layers
    from kstyle.nets.layers import Conv2D, portable_graph

    layer = Conv2D(4, 3, padding="valid")
    layer.build((None, None, None, 3))
    layer.WINOGRAD_MIN_PIXELS = layer.WINOGRAD_MIN_CHANNELS = 1
    layer.WINOGRAD_MIN_CHANNELS_GEMM_CONV = 1
    taken = {
        "float32": layer._winograd(tf.zeros((1, 8, 10, 3))),
        "odd height": layer._winograd(tf.zeros((1, 9, 10, 3))),
        "bfloat16": layer._winograd(tf.zeros((1, 8, 10, 3), "bfloat16")),
    }
    with portable_graph():
        taken["export"] = layer._winograd(tf.zeros((1, 8, 10, 3)))
    assert taken == {"float32": True, "odd height": False, "bfloat16": False, "export": False}
    for size in ((2, 8, 10, 3), (2, 9, 10, 3)):  # Winograd, and Keras' own conv
        x = images(size)
        np.testing.assert_allclose(layer(x), keras.layers.Conv2D.call(layer, x), atol=1e-5)
    default = Conv2D(4, 3)
    default.build((None, None, None, 128))
    for direct in (True, False):  # oneDNN's AVX-512 kernels, or an im2col and a GEMM
        monkeypatch.setattr(layers, "direct_conv_kernels", lambda direct=direct: direct)
        assert not default._winograd(tf.zeros((1, 32, 34, 128)))  # 32 x 30 output pixels
        assert default._winograd(tf.zeros((1, 34, 34, 128)))
        assert default._winograd(tf.zeros((1, 34, 34, 64))) is not direct
        assert not default._winograd(tf.zeros((1, 34, 34, 32)))


@pytest.mark.parametrize(("flags", "env", "direct"), [
    ("avx2 fma avx512f avx512bw avx512vl avx512dq", {}, True),
    ("avx2 fma avx512f avx512bw avx512vl avx512dq", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, True),
    ("avx2 fma avx512f avx512bw avx512vl avx512dq", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, False),
    ("avx2 fma avx512f avx512bw avx512vl avx512dq", {"TF_ENABLE_ONEDNN_OPTS": "0"}, False),
    ("avx2 fma", {}, False),
])
def test_direct_conv_kernels_follow_the_cpu_and_onednn(monkeypatch, flags, env, direct):
    from kstyle import precision
    from kstyle.nets.layers import direct_conv_kernels

    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(precision, "cpu_info", lambda: ("CPU", frozenset(flags.split())))
    direct_conv_kernels.cache_clear()
    try:
        assert direct_conv_kernels() is direct
    finally:
        direct_conv_kernels.cache_clear()


@pytest.mark.parametrize(("kernel", "channels", "filters"), [(7, 16, 3), (9, 8, 3), (3, 5, 4)])
def test_conv2d_to_few_filters_computes_the_same_function_tap_by_tap(kernel, channels, filters):
    from kstyle.nets.layers import Conv2D, portable_graph

    layer = Conv2D(filters, kernel, activation="tanh")
    layer.build((None, None, None, channels))
    layer.bias.assign(np.random.default_rng(0).normal(0, 0.5, filters).astype("float32"))
    x = images((2, 20, 23, channels), seed=1)
    taken = {"inference": layer._by_taps(tf.constant(x))}
    with portable_graph():
        taken["export"] = layer._by_taps(tf.constant(x))
    wide = Conv2D(filters + Conv2D.TAPS_MAX_FILTERS, kernel)
    wide.build((None, None, None, channels))
    taken["wide"] = wide._by_taps(tf.constant(x))
    assert taken == {"inference": True, "export": False, "wide": False}
    # a graph of unknown size, as the stylizers trace
    run = tf.function(lambda x: layer(x, training=False),
                      input_signature=[tf.TensorSpec([None, None, None, channels])])
    keras_conv = keras.layers.Conv2D.call(layer, x)
    assert run(x).shape == (2, 21 - kernel, 24 - kernel, filters)
    np.testing.assert_allclose(run(x), keras_conv, atol=1e-5)
    np.testing.assert_allclose(layer(x, training=True), keras_conv, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 64, 66, 64), (1, 66, 64, 80)])
def test_a_strided_conv_computes_the_same_function_by_blocks(monkeypatch, shape):
    # Where TensorFlow's conv is an im2col and a GEMM, the U-Net's 4x4 stride-2 convs of
    # large enough maps are a matmul of 2x2 pixel blocks in inference.
    from kstyle.nets import layers
    from kstyle.nets.layers import Conv2D, portable_graph

    layer = Conv2D(24, 4, strides=2, padding="same")
    layer.build((None, None, None, shape[-1]))
    layer.bias.assign(np.random.default_rng(0).normal(0, 0.5, 24).astype("float32"))
    x = images(shape, seed=2)
    taken = {}
    for direct in (True, False):
        monkeypatch.setattr(layers, "direct_conv_kernels", lambda direct=direct: direct)
        taken[direct] = layer._by_blocks(tf.constant(x))
    with portable_graph():
        taken["export"] = layer._by_blocks(tf.constant(x))
    taken["small"] = layer._by_blocks(tf.constant(x[:, :62, :62]))  # 31 x 31 outputs
    assert taken == {True: False, False: True, "export": False, "small": False}
    keras_conv = keras.layers.Conv2D.call(layer, x)
    blocks = tf.function(lambda x: layer(x, training=False))(x)
    assert blocks.shape == (shape[0], shape[1] // 2, shape[2] // 2, 24)
    np.testing.assert_allclose(blocks, keras_conv, atol=1e-5)


def test_conv2d_keeps_keras_conv_where_xla_cannot_compile(monkeypatch):
    from kstyle.nets import layers

    layer = layers.Conv2D(4, 3)
    layer.build((None, None, None, 128))
    assert layer._winograd(tf.zeros((1, 34, 34, 128)))
    monkeypatch.setattr(layers, "_winograd_pays", lambda: False)
    assert not layer._winograd(tf.zeros((1, 34, 34, 128)))


def _with_smooth_activations(model):
    # The same network with SiLU where it has ReLU. ReLU's gradient jumps at 0: wherever
    # a pre-activation lies within float32 rounding of 0, the float32 and float64 graphs
    # can take opposite sides, and every gradient upstream moves by about 1e-3 of its
    # scale. Which graph that happens to is down to chance and the CPU's kernels: with
    # this test's seed, oneDNN's plain graph on AVX-512 was 1.4e-3 from float64 and
    # Winograd's 6e-4; with oneDNN capped at AVX2 both were 2.5e-6; on a Zen 3 CPU
    # Winograd's 1.2e-3 and the plain graph's 2.4e-4. Without that jump both are
    # 2e-6 to 7e-6 everywhere, which is the rounding this test compares.
    def clone(layer):
        if isinstance(layer, keras.layers.ReLU):
            return keras.layers.Activation("silu", name=layer.name, dtype=layer.dtype_policy)
        return layer.__class__.from_config(layer.get_config())

    smooth = keras.models.clone_model(model, clone_function=clone)
    smooth.set_weights(model.get_weights())
    return smooth


def test_the_resnet_generator_computes_the_same_function_by_winograd():
    # At 128 px the residual blocks' 32x32x256 maps are convolved by Winograd's
    # algorithm. The float32 graphs, Winograd's and the plain one, are both measured
    # against the same network in float64: Winograd's output is as close to it as the
    # plain graph's (both about 1e-5 away), and every gradient no farther from it, in
    # inference and in training.
    from kstyle.nets.layers import portable_graph

    keras.utils.set_random_seed(4)
    net = resnet_generator(num_blocks=6)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        net64 = resnet_generator(num_blocks=6, name="float64")
    finally:
        keras.config.set_dtype_policy(previous)
    net64.set_weights([w.astype("float64") for w in net.get_weights()])
    x = tf.constant(images((1, 128, 128, 3), seed=4))
    target = tf.constant(images((1, 128, 128, 3), seed=5))

    def run(network, training, exact):
        with tf.GradientTape() as tape:
            # Instance norm trains through fused kernels, which take no float64: the
            # float64 network is differentiated through its inference form, the same
            # function (no dropout, no running statistics).
            y = network(tf.cast(x, network.compute_dtype), training=training and not exact)
            # the output layer is float32 (rounding by about 6e-8)
            y = tf.cast(y, "float64")
            loss = tf.reduce_sum(y * tf.cast(target, "float64"))
        grads = tape.gradient(loss, network.trainable_weights)
        return [y] + [tf.cast(g, "float64") for g in grads] if training else [y]

    def graphs(network, network64, training):
        fast = tf.function(lambda: run(network, training, False))()
        with portable_graph():
            plain = tf.function(lambda: run(network, training, False))()
            exact = run(network64, training, True)
        return fast, plain, exact

    def relative_errors(found, exact):
        scale = max(float(tf.reduce_max(tf.abs(exact))), 1.0)
        return [float(tf.reduce_max(tf.abs(t - exact))) / scale for t in found]

    for training in (False, True):
        fast, plain, exact = graphs(net, net64, training)
        assert float(tf.reduce_max(tf.abs(plain[0]))) > 0.01  # not a vanishing output
        assert 0 < float(tf.reduce_max(tf.abs(fast[0] - plain[0])))  # Winograd did run
        # the output: the plain graph's own rounding is about 1e-5
        errors = relative_errors((fast[0], plain[0]), exact[0])
        assert errors[0] <= max(1e-5, 1.25 * errors[1]), (training, errors)

    fast, plain, exact = graphs(_with_smooth_activations(net), _with_smooth_activations(net64),
                                training=True)
    names = [w.path for w in net.trainable_weights]
    kernels = {name.rsplit("/", 1)[0]: e for name, e in zip(names, exact[1:])
               if name.endswith("kernel")}
    for name, f, p, e in zip(names, fast[1:], plain[1:], exact[1:]):
        layer = name.rsplit("/", 1)[0]
        if name.endswith("bias") and not layer.endswith("head_conv"):
            # Instance norm follows: the exact gradient is 0 and each float32 one is
            # rounding, at most 5e-6 of the kernel's gradient (measured on AVX-512 and
            # with AVX2 imitated).
            bound = 1e-4 * float(tf.reduce_max(tf.abs(kernels[layer])))
            assert float(tf.reduce_max(tf.abs(f))) <= bound, name
            assert float(tf.reduce_max(tf.abs(p))) <= bound, name
            continue
        errors = relative_errors((f, p), e)
        # float32 sums of up to 16k pixels: 2e-6 to 7e-6 from float64 either way, the
        # ratio between the two graphs 0.7-1.6 on AVX-512 and with AVX2 imitated
        assert errors[0] <= max(1e-5, 2 * errors[1]), (name, errors)
