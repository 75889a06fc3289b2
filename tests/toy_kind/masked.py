"""A toy model kind that takes two images at inference: a photo and a mask.

It exists to show (and test) that a new kind with its own inference inputs is one model
file, its options, one registry line and a recipe: nothing in kstyle's API, CLI, exporter
or runners knows it.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kstyle import losses
from kstyle.data import images as kimages
from kstyle.models.base import TranslationModel
from kstyle.models.signature import Endpoint, Inference, Port, Signature
from kstyle.nets.uint8 import prepare_input
from kstyle.optimizers import apply_gradients
from toy_kind.masked_options import MaskedOptions


def left_half_mask(images):
    """1 over the left half of each image, -1 elsewhere (the mask used in training)."""
    width = tf.shape(images)[2]
    columns = tf.cast(tf.range(width) < width // 2, images.dtype) * 2.0 - 1.0
    return tf.broadcast_to(columns[None, None, :, None], tf.shape(images))


def masked_network(filters: int) -> keras.Model:
    image = keras.Input((None, None, 3), name="image")
    mask = keras.Input((None, None, 3), name="mask")
    x = keras.layers.Concatenate()([image, mask])
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", activation="tanh")(x)
    return keras.Model([image, mask], x, name="masked_generator")


class MaskedInference(Inference):
    """``stylize(images, mask) -> images``: the mask an image of the photo's size."""

    signature = Signature((Endpoint(
        "stylize",
        (Port("images", doc="the photo"),
         Port("mask", doc="where to redraw: white, an image the photo's size", aligned=True)),
        (Port("images", doc="the result, the photo's size"),)),))

    def serving_model(self):
        return self.network

    def graphs(self):
        def stylize(images, mask):
            height, width = tf.shape(images)[1], tf.shape(images)[2]
            x = prepare_input(images, self.size_multiple, "none")
            m = prepare_input(mask, self.size_multiple, "none")
            y = self.network([x, m], training=False)
            return kimages.to_uint8(y[:, :height, :width])

        return {"stylize": stylize}


@keras.saving.register_keras_serializable(package="kstyle_toy")
class Masked(TranslationModel):
    """Redraws the masked half of A as B (L1 only)."""

    Options = MaskedOptions
    inference = MaskedInference
    optimizer_slots = {"g_optimizer": "generator"}

    def __init__(self, generator, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.l1_tracker = keras.metrics.Mean(name="l1")

    @classmethod
    def from_options(cls, options, *, in_channels=3, out_channels=3):
        return cls(masked_network(options.filters))

    @property
    def translators(self):
        return {"a2b": self.generator}

    @property
    def networks(self):
        return {"generator": self.generator}

    @property
    def metrics(self):
        return [self.loss_tracker, self.l1_tracker]

    def optimized_variables(self):
        return {"g_optimizer": self.generator.trainable_variables}

    def sample_outputs(self, real_a, real_b):
        return {"a2b": self.generator([real_a, left_half_mask(real_a)], training=False)}

    def sample_columns(self, real_a, real_b):
        return {"input": real_a, **self.sample_outputs(real_a, real_b), "target": real_b}

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def train_step(self, data):
        real_a, real_b = data
        with tf.GradientTape() as tape:
            fake_b = self.generator([real_a, left_half_mask(real_a)], training=True)
            loss = losses.l1_loss(real_b, fake_b)
        apply_gradients(self.g_optimizer, tape, loss, self.generator.trainable_variables)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        real_a, real_b = data
        fake_b = self.generator([real_a, left_half_mask(real_a)], training=False)
        self.l1_tracker.update_state(losses.l1_loss(real_b, fake_b))
        return {"l1": self.l1_tracker.result()}

    def get_config(self):
        return {**super().get_config(),
                "generator": keras.saving.serialize_keras_object(self.generator)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        return cls(**config)
