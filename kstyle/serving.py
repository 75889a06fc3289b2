"""The inference graph every translator runs in: uint8 images in, uint8 images out.

``Uint8Translator`` wraps a trained network with what inference needs around it: pad the
image to the network's size multiple (by mirroring), map uint8 to [-1, 1], apply the
input derivation the model was trained with (gray, edges), run the network, map back to
uint8 and crop to the input's size. ``kstyle.load`` runs it, and ``kstyle export``
writes exactly this graph to SavedModel and LiteRT, so edge apps need no pre- or
post-processing and every format computes the same thing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kstyle.data import derive as kderive
from kstyle.data import images as kimages


def mirror_pad_to(images: tf.Tensor, height, width) -> tf.Tensor:
    """Pads ``[N, H, W, C]`` at the bottom and right to ``height`` x ``width`` by mirroring.

    The image is continued as ``x, reversed(x), x, ...`` (numpy's ``"symmetric"``), so any
    amount of padding works, even more than the image's own size.
    """
    def along(x, size, axis):
        # Index i of the padded axis reads i mod 2n, folded back past the edge.
        n = tf.shape(x)[axis]
        i = tf.range(size) % (2 * n)
        return tf.gather(x, tf.where(i < n, i, 2 * n - 1 - i), axis=axis)

    # A gather keeps the channels known, which LiteRT's convolutions need.
    return along(along(images, height, 1), width, 2)


def prepare_input(images: tf.Tensor, size_multiple: int, input_transform: str) -> tf.Tensor:
    """uint8 ``[N, H, W, 3]`` -> the float network input: [-1, 1], mirror-padded to the
    size multiple, with the input derivation (``"gray"``, ``"edges"``) applied."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    m = size_multiple
    x = kimages.to_float(images)
    if m > 1:
        x = mirror_pad_to(x, (height + m - 1) // m * m, (width + m - 1) // m * m)
    if input_transform != "none":
        x = kderive.DERIVATIONS[input_transform](x)[0]
    return x


@keras.saving.register_keras_serializable(package="kstyle")
class Uint8Translator(keras.Model):
    """A translator network as a uint8 ``[N, H, W, 3]`` -> uint8 ``[N, H, W, 3]`` model.

    Args:
        network: maps float32 ``[N, H, W, 3]`` in [-1, 1] to the same.
        size_multiple: the network's height and width must be multiples of this.
        input_transform: ``"none"``, or a derivation of ``kstyle.data.derive.DERIVATIONS``
            (``"gray"``, ``"edges"``) applied to the input first.
        **kwargs: those of ``keras.Model``.

    Example:
        >>> serving = Uint8Translator(generator, size_multiple=256)
        >>> serving(np.zeros((1, 300, 200, 3), np.uint8)).shape
        TensorShape([1, 300, 200, 3])
    """

    def __init__(self, network, size_multiple=1, input_transform="none", **kwargs):
        super().__init__(**kwargs)
        if input_transform != "none" and input_transform not in kderive.DERIVATIONS:
            raise ValueError(f"unknown input_transform {input_transform!r}; expected none or "
                             f"one of {', '.join(kderive.DERIVATIONS)}")
        self.network = network
        self.size_multiple = int(size_multiple)
        self.input_transform = input_transform
        # Nothing of its own to build: the wrapped network comes built.
        self.built = True

    def call(self, images):
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        x = prepare_input(images, self.size_multiple, self.input_transform)
        y = self.network(x, training=False)
        return kimages.to_uint8(y[:, :height, :width, :])

    def get_config(self):
        config = super().get_config()
        config.update({
            "network": keras.saving.serialize_keras_object(self.network),
            "size_multiple": self.size_multiple,
            "input_transform": self.input_transform,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)


# ------------------------------------------------------------------ exported files

#: Name of the JSON metadata entry embedded in exported .tflite files, and the file
#: written beside a SavedModel's saved_model.pb.
METADATA_NAME = "kstyle"
METADATA_FILE = "kstyle.json"


def add_tflite_metadata(model: bytes, info: dict) -> bytes:
    """Returns the .tflite flatbuffer ``model`` with ``info`` embedded as JSON metadata.

    The entry (named ``"kstyle"``) lives in the flatbuffer's ``metadata`` list, which
    LiteRT runtimes carry along and ignore; :func:`read_tflite_metadata` reads it back.
    """
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    root = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(info, sort_keys=True).encode(), np.uint8)
    root.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(root.buffers) - 1
    root.metadata = [m for m in (root.metadata or []) if m.name != METADATA_NAME.encode()]
    root.metadata.append(entry)
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(root.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_tflite_metadata(model: bytes) -> dict:
    """The JSON metadata :func:`add_tflite_metadata` embedded ({} when there is none)."""
    from tensorflow.lite.python import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(model, 0)
    for i in range(root.MetadataLength()):
        entry = root.Metadata(i)
        if entry.Name() == METADATA_NAME.encode():
            return json.loads(root.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    return {}


def add_onnx_metadata(path, info: dict) -> None:
    """Embeds ``info`` as JSON in an ONNX file's ``metadata_props`` (key ``"kstyle"``)."""
    import onnx

    model = onnx.load(os.fspath(path))
    kept = [p for p in model.metadata_props if p.key != METADATA_NAME]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_NAME, json.dumps(info, sort_keys=True)
    onnx.save(model, os.fspath(path))


def onnx_session(path, num_threads: int | None = None):
    """An ONNX Runtime session of ``path`` on the CPU, one thread per CPU by default,
    logging errors only (the converter's resize attributes warn)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    onnxruntime.set_default_logger_severity(3)
    options.intra_op_num_threads = num_threads or os.cpu_count() or 1
    return onnxruntime.InferenceSession(os.fspath(path), options,
                                        providers=["CPUExecutionProvider"])


#: The ONNX files of an export made before its metadata listed them (``"files"``): one
#: file per endpoint, the first endpoint's being the file given.
LEGACY_ONNX_FILES = {"stylize": "translator.onnx", "encode_style": "style_encoder.onnx",
                     "stylize_with_statistics": "translator_with_statistics.onnx"}


def exported_info(path) -> dict:
    """The kstyle metadata of an exported file or SavedModel folder (``{}`` if none)."""
    path = Path(path)
    if path.suffix == ".tflite":
        return read_tflite_metadata(path.read_bytes())
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load(os.fspath(path), load_external_data=False)
        meta = next((p.value for p in model.metadata_props if p.key == METADATA_NAME), None)
        return json.loads(meta) if meta else {}
    info_file = path / METADATA_FILE
    return json.loads(info_file.read_text()) if info_file.is_file() else {}


def _arrays(feeds: dict) -> dict:
    # numpy scalars (np.float32(0.5)) as 0-d arrays: ONNX Runtime takes arrays only.
    return {name: np.asarray(value) for name, value in feeds.items()}


def _first(outputs: dict) -> np.ndarray:
    return np.asarray(next(iter(outputs.values())))


def saved_model_call(path):
    """``call(endpoint, **feeds)`` of an exported SavedModel: each endpoint a signature
    (the first also ``serving_default``, the only one in files of one endpoint)."""
    loaded = tf.saved_model.load(os.fspath(path))

    def call(name, **feeds):
        signature = loaded.signatures.get(name) or loaded.signatures["serving_default"]
        return _first(signature(**{k: tf.constant(v) for k, v in feeds.items()}))

    return call


def litert_call(path, num_threads: int | None = None):
    """``call(endpoint, **feeds)`` of a .tflite file, run with LiteRT (inputs are resized
    to each new shape): each endpoint a signature of the file."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=os.fspath(path),
                              num_threads=num_threads or os.cpu_count())
    names = list(interpreter.get_signature_list())
    runners = {}

    def call(name, **feeds):
        key = name if name in names else names[0]  # one endpoint: whatever its name
        if key not in runners:
            runners[key] = interpreter.get_signature_runner(key)
        return _first(runners[key](**_arrays(feeds)))

    return call


def onnx_call(path, endpoints: list[str], info: dict, num_threads: int | None = None):
    """``call(endpoint, **feeds)`` of an ONNX export: ``path`` holds the first endpoint,
    the files its metadata lists (``"files"``) the others, beside it.

    Raises:
        FileNotFoundError: a file of another endpoint is missing.
    """
    path = Path(path)
    files = {**LEGACY_ONNX_FILES, **info.get("files", {}), endpoints[0]: path.name}
    wanted = {name: path.parent / files[name] for name in endpoints}
    missing = [p.name for p in wanted.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{path} is one of an export's {len(wanted)} ONNX files; {' and '.join(missing)} "
            "should be beside it (kstyle export --onnx writes them together)")
    sessions = {name: onnx_session(file, num_threads) for name, file in wanted.items()}

    def call(name, **feeds):
        return np.asarray(sessions[name].run(None, _arrays(feeds))[0])

    return call
