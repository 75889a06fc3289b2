"""Compute precision: building layers under a Keras dtype policy, float32 copies for inference."""

from __future__ import annotations

import contextlib

import keras


@contextlib.contextmanager
def dtype_policy(name: str):
    """Builds layers under the Keras dtype policy ``name``, then restores the old one.

    Layers keep the policy they were built with, so a model built inside trains in mixed
    precision while the rest of the process (loading, inference) stays float32.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_copy(network: keras.Model) -> keras.Model:
    """The same functional network with every layer computing in float32, same weights."""
    def clone(layer):
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(network, clone_function=clone)
    copy.set_weights(network.get_weights())
    return copy
