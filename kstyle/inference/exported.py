"""Exported files: the kstyle metadata they carry, and the backends that run them.

Each backend gives ``call(endpoint, **feeds)``: one endpoint of the model's signature
(``kstyle.models.signature``) run on numpy feeds, by port name, batched; its output as
numpy. A SavedModel holds each endpoint as a signature, a .tflite file likewise, an ONNX
export one file per endpoint (listed in its metadata).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

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


#: Beside exported files: which of them are complete and belong together (see
#: :func:`check_listed`). An export drops the entries of the files it is about to write,
#: and adds each one once it is written and checked.
MANIFEST_FILE = "export.json"


def fingerprint(path) -> dict:
    """Size and sha256 of an exported file (of a SavedModel folder: its saved_model.pb)."""
    from kstyle.runs import sha256_file

    path = Path(path)
    target = path / "saved_model.pb" if path.is_dir() else path
    return {"size": target.stat().st_size, "sha256": sha256_file(target)}


def check_listed(path) -> None:
    """Checks that ``path`` is a complete file of the export beside it: ValueError (with
    the way out) when the folder's manifest does not list it as it is. A SavedModel in
    TensorFlow Serving's layout (``OUT/NAME/1``) is listed in ``OUT``'s manifest as
    ``NAME/1``. Folders without a manifest (exports written before there was one) are
    taken as they are."""
    path = Path(path)
    bases = [path.parent, path.parent.parent] if path.name.isdigit() else [path.parent]
    manifest = next((b / MANIFEST_FILE for b in bases if (b / MANIFEST_FILE).is_file()), None)
    if manifest is None:
        return
    try:
        files = json.loads(manifest.read_text()).get("files", {})
    except ValueError:
        files = {}
    if files.get(path.relative_to(manifest.parent).as_posix()) != fingerprint(path):
        raise ValueError(f"{path} is not recorded as a complete export in {manifest} (an "
                         "export was interrupted, or the file changed since); run kstyle "
                         "export again")


def latest_version(path) -> Path | None:
    """The newest version of a SavedModel in TensorFlow Serving's layout (``NAME/`` holding
    ``1/``, ``2/``...), or None when ``path`` is not such a folder."""
    path = Path(path)
    if not path.is_dir():
        return None
    versions = [p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    return max(versions, key=lambda p: int(p.name)) if versions else None
