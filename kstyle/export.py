"""``kstyle export``: a trained model as a SavedModel, a LiteRT (.tflite) and ONNX files.

What is written is the model's signature (``kstyle.models.signature``): every endpoint
its kind declares, as the graphs it runs in ``kstyle.load`` (uint8 images in and out, H
and W dynamic, padding, input derivation and value mapping included; never a
discriminator). Every file is checked against the Keras model on real images before it
is kept: the largest difference (and, for quantized files, the PSNR) is printed, and a
file that misses the bar is not written.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from kstyle import lock, runs
from kstyle.data.images import list_images, read_image
from kstyle.errors import ExportError, ModelLoadError
from kstyle.inference.exported import (
    MANIFEST_FILE,
    METADATA_FILE,
    add_onnx_metadata,
    add_tflite_metadata,
    fingerprint,
    litert_call,
    onnx_session,
    saved_model_call,
)
from kstyle.models.signature import (
    ENCODED_OUTPUT,
    ENCODED_SIGNATURE,
    IMAGE,
    SCALAR,
    Endpoint,
    Signature,
    encoded_ports,
)

QUANTIZATIONS = ("none", "fp16", "dynamic", "int8")
#: The bar each export must pass against the Keras model, on uint8 outputs: the largest
#: absolute difference for float32 files, the PSNR (dB) for quantized ones.
MAX_ABS_DIFF = 2
MIN_PSNR = {"fp16": 35.0, "dynamic": 25.0, "int8": 20.0}
# Images used by the parity check and, for int8, as the representative set.
MAX_CHECK_IMAGES = 8


def serving_name(name: str, direction: str = runs.DEFAULT_DIRECTION) -> str:
    """The SavedModel's folder name (TensorFlow Serving's model name): ``name`` in the
    letters a URL holds, ``_b2a`` added for that direction."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-") or "model"
    return safe + ("" if direction == runs.DEFAULT_DIRECTION else f"_{direction}")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def check_images(run_dir: Path, images=None, log=print) -> list[np.ndarray]:
    """Images for the parity check: ``images`` (files or folders), else the run's held-back
    sample inputs, else (an imported run has none) rendered ones of the synthetic source;
    the first also cropped to an odd size, to exercise padding."""
    paths = []
    for item in images or [run_dir / "samples" / "inputs"]:
        item = Path(item)
        paths += list_images(item) if item.is_dir() else [item] if item.is_file() else []
    if not paths and images:
        raise ExportError(f"{', '.join(map(str, images))}: no images to check the export "
                          "with")
    if paths:
        arrays = [read_image(p) for p in sorted(paths)[:MAX_CHECK_IMAGES]]
    else:
        from kstyle.data.synthetic import synthetic_pairs

        log(f"{run_dir}: no sample images (samples/inputs/); checking on rendered ones "
            "(give real ones with --check-images)")
        labels, photos = synthetic_pairs(2, 96, seed=0)
        arrays = [*photos, *labels]
    first = arrays[0]
    h, w = first.shape[:2]
    arrays.append(first[: max(1, h - 3), : max(1, w - 5)])
    return arrays


def representative_images(run_dir: Path, direction: str, input_transform: str,
                          count: int = 32) -> list[np.ndarray]:
    """Up to ``count`` training inputs of the run's recipe, uint8, for int8 calibration.

    Each is what the exported translator will be given: the A side, or B for ``b2a``,
    or the plain photo for runs that derive their input (gray, edges) from it.
    """
    from kstyle.data.images import to_uint8
    from kstyle.errors import KstyleError
    from kstyle.recipes import load_recipe
    from kstyle.training.builders import eval_dataset

    try:
        recipe = load_recipe(run_dir / runs.RECIPE_FILE)
        ds, _ = eval_dataset(recipe, split=recipe.data.train_split, batch_size=1)
    except KstyleError as e:
        raise ExportError(f"{run_dir}: int8 calibration needs the run's training data "
                          f"({e}); or give images with --check-images") from None
    side = 1 if (input_transform != "none" or direction == "b2a") else 0
    images = []
    for element in ds.take(count):
        batch = element[side] if isinstance(element, tuple) else element
        images.append(to_uint8(batch).numpy()[0])
    return images


def parity(reference, run, images, quantize: str) -> dict:
    """Runs both on every image (uint8 ``HxWx3`` -> uint8); returns max |difference| and
    PSNR, and whether they pass the bar for ``quantize``."""
    worst, psnrs = 0, []
    for image in images:
        expected = reference(image)
        try:
            got = run(image)
        except Exception as e:  # the runtime refuses the file: report it, keep nothing
            raise ExportError(f"the exported model failed to run on a {image.shape} image "
                              f"({type(e).__name__}: {str(e).splitlines()[0]})") from e
        if got.shape != expected.shape or got.dtype != np.uint8:
            raise ExportError(f"exported model returned {got.dtype} {got.shape} for a "
                              f"{image.shape} image; expected uint8 {expected.shape}")
        worst = max(worst, int(np.abs(got.astype(int) - expected.astype(int)).max()))
        psnrs.append(_psnr(got, expected))
    psnr = min(psnrs)
    passed = worst <= MAX_ABS_DIFF if quantize == "none" else psnr >= MIN_PSNR[quantize]
    return {"max_abs_diff": worst, "psnr_db": psnr, "n_images": len(images), "passed": passed}


def every_endpoint(call, signature: Signature, first: np.ndarray):
    """``image -> uint8``: every endpoint of ``signature`` run by ``call`` on one image,
    their image outputs side by side (what the export check compares).

    Each endpoint's first image input (and each aligned one) is the image, any other
    image input is ``first``; a scalar is the middle of its range (else its default); a
    tensor input is the output of the same name of an endpoint before it (a style's
    statistics, say), so that the file's endpoints are checked chained as well.
    """
    def run(image):
        outputs, images = {}, []
        for endpoint in signature.endpoints:
            feeds = {}
            for i, port in enumerate(endpoint.inputs):
                if port.type == IMAGE:
                    feeds[port.name] = (image if i == 0 or port.aligned else first)[None]
                elif port.type == SCALAR:
                    middle = (None if port.low is None or port.high is None
                              else (port.low + port.high) / 2)
                    feeds[port.name] = np.float32(middle if middle is not None
                                                  else port.default or 0.0)
                else:
                    feeds[port.name] = outputs[port.name]
            result = call(endpoint.name, **feeds)
            outputs[endpoint.outputs[0].name] = result
            if endpoint.outputs[0].type == IMAGE:
                images.append(result[0])
        return np.concatenate(images, axis=1)

    return run


def _converter_options(quantize: str, calibration):
    builtins = tf.lite.OpsSet.TFLITE_BUILTINS
    if quantize == "none":
        return {"target_spec": {"supported_ops": {builtins}}}
    options = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if quantize == "fp16":
        options["target_spec"] = {"supported_types": [tf.float16], "supported_ops": {builtins}}
    elif quantize == "int8":
        def representative():
            for image in calibration():
                yield [image[None]]

        options["representative_dataset"] = representative
        options["target_spec"] = {"supported_ops": {tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                    builtins}}
    return options


def convert_to_litert(saved_model: Path, endpoints: list[str], quantize: str,
                      calibration) -> bytes:
    """A SavedModel's endpoints as one .tflite flatbuffer (a signature each)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model),
                                                         signature_keys=endpoints)
    for key, value in _converter_options(quantize, calibration).items():
        if key == "target_spec":
            for field, setting in value.items():
                setattr(converter.target_spec, field, setting)
        else:
            setattr(converter, key, value)
    try:
        return converter.convert()
    except Exception as e:  # the converter raises many kinds of errors
        lines = [ln.strip() for ln in str(e).splitlines()
                 if "ops" in ln.lower() or ln.strip().startswith("error")]
        raise ExportError(f"LiteRT conversion failed ({type(e).__name__}: "
                          f"{'; '.join(lines[:3]) or str(e)[:300]})") from e


#: Scratch folders of exports in the system temp folder: ``kstyle-export-<pid>-<random>``.
SCRATCH_PREFIX = "kstyle-export-"


def _clean_scratch() -> list[str]:
    """Removes the scratch folders of exports whose process is gone (killed mid-export)."""
    done = []
    for path in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        pid = path.name.removeprefix(SCRATCH_PREFIX).split("-")[0]
        if path.is_dir() and pid.isdigit() and not runs.process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path}")
    return done


def export_run(model, out=None, *, saved_model: bool = True, tflite: bool = True,
               onnx: bool = False, quantize: str = "none", direction: str | None = None,
               images=None, log=print) -> dict:
    """Exports a trained model and checks each file against the Keras model.

    Every endpoint of the model's signature (``kstyle.models.signature``) is written: a
    signature of the SavedModel and of the .tflite file, an ONNX file each. The
    SavedModel's first signature is also its ``serving_default``.

    Args:
        model: a run folder written by ``kstyle fit`` or ``kstyle import``, a translator
            ``.keras`` file, or a published model's name (its cached run).
        out: the folder for the files (default ``<run>/export``; for a published model,
            ``<name>_export`` in the working folder).
        saved_model: write ``NAME/1/``, a SavedModel in TensorFlow Serving's layout
            (``NAME``: the run's name, ``_b2a`` added for that direction), with
            ``kstyle.json`` metadata inside; its ``serving_default`` signature takes and
            gives encoded image files (:func:`encoded_endpoint`).
        tflite: write ``translator[_b2a][_<quantize>].tflite`` (metadata embedded).
        onnx: write ``translator[_b2a].onnx``, and ``translator[_b2a]_<endpoint>.onnx``
            for each further endpoint (float32, metadata in ``metadata_props``; needs the
            ``onnx`` extra: tf2onnx and onnxruntime).
        quantize: ``"none"`` (float32), ``"fp16"`` (float16 weights), ``"dynamic"`` (int8
            weights) or ``"int8"`` (int8 weights and activations, calibrated on training
            inputs of the run's recipe, or on ``images`` when given; for models of one
            endpoint that takes one image); applies to the .tflite file.
        direction: ``"a2b"`` or ``"b2a"`` for two-way models.
        images: image files or folders for the check (default: the run's sample inputs).
        log: where messages go.

    Returns:
        ``{format: {"path", "bytes", "max_abs_diff", "psnr_db", "n_images", "passed"}}``.

    Raises:
        ExportError: a check failed (nothing is written for that format), a conversion
            failed, or an option is invalid.
        ModelLoadError: the run cannot be loaded.

    Example:
        >>> export_run("saved_models/quickstart", quantize="fp16")["tflite"]["psnr_db"]
    """
    from kstyle.inference.stylizer import load

    if quantize not in QUANTIZATIONS:
        raise ExportError(f"quantize = {quantize!r}; expected one of {', '.join(QUANTIZATIONS)}")
    if not (saved_model or tflite or onnx):
        raise ExportError("nothing to export: ask for a SavedModel, a .tflite and/or an "
                          ".onnx file")
    if onnx:
        _check_onnx_installed()
    from kstyle.inference.zoo import is_name, resolve

    if is_name(model):  # a published model: its cached run, exported to <name>_export/
        out = out or Path(f"{model}_export")
        model = resolve(model, log=log)
    inference = load(model, direction, tile=0).inference
    if inference.network is None:
        raise ModelLoadError(f"{model}: already an exported file; export a run folder")
    signature = inference.signature
    if quantize == "int8" and (len(signature.endpoints) > 1
                               or len(signature.main.inputs) > 1):
        raise ExportError(f"--quantize int8 is not available for this model (its calibration "
                          f"takes images alone; it has {', '.join(signature.names)}); use "
                          "fp16 or dynamic")
    source = Path(model)
    run_dir = source if source.is_dir() else source.parent
    out = Path(out) if out else run_dir / "export"
    busy = lock.holder(run_dir)
    if busy is not None and out.resolve().is_relative_to(run_dir.resolve()):
        raise lock.RunLockedError(
            f"{run_dir} is in use by process {busy.get('pid', '?')} on host "
            f"{busy.get('host', '?')} (a fit); export when it is done, or give --out a folder "
            "outside the run")
    out.mkdir(parents=True, exist_ok=True)
    for line in [*runs.clean_temporaries(out), *_clean_scratch()]:
        log(f"{out}: {line} (left by an interrupted export)")
    direction = direction or runs.DEFAULT_DIRECTION
    stem = runs.translator_file(direction).removesuffix(".keras")
    onnx_files = {name: f"{stem}.onnx" if i == 0 else f"{stem}_{name}.onnx"
                  for i, name in enumerate(signature.names)}
    info = {k: inference.info.get(k) for k in ("kind", "name", "image_size", "step")}
    info.update({"direction": direction, "size_multiple": inference.size_multiple,
                 "input_transform": inference.input_transform, "value_range": [0, 255],
                 "dtype": "uint8", "layout": "NHWC", "quantize": quantize,
                 "signature": signature.to_dict(), "files": onnx_files,
                 "endpoints": {e.name: e.describe() for e in signature.endpoints}})
    user_images = images
    images = check_images(run_dir, images, log)
    reference = every_endpoint(inference.call, signature, images[0])
    results = {}

    def checked(call, quantize, tmp, dest):
        return _checked(every_endpoint(call, signature, images[0]), reference, images,
                        quantize, tmp, dest, log)

    tflite_name = stem + ("" if quantize == "none" else f"_{quantize}") + ".tflite"
    saved_name = serving_name(info.get("name") or run_dir.name, direction)
    manifest = _Manifest(out, [name for name, wanted in (
        (f"{saved_name}/1", saved_model), (tflite_name, tflite),
        *((f, onnx) for f in onnx_files.values())) if wanted])
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as scratch:
        # Scratch in the system temp folder: a kill leaves nothing in the export folder
        # (and the next export removes a killed one's scratch: its name holds the pid).
        raw = Path(scratch) / "saved_model"
        if saved_model or tflite:
            # The graph LiteRT converts, kept as the SavedModel too.
            write_saved_model(inference, raw, "litert")
            runs.write_json(raw / METADATA_FILE, {**info, "quantize": "none"})
        if saved_model:
            # TensorFlow Serving's layout: NAME/VERSION/ (tensorflow_model_server
            # --model_name=NAME --model_base_path=OUT/NAME).
            dest = out / saved_name / "1"
            dest.parent.mkdir(exist_ok=True)
            with runs.atomic_path(dest) as tmp:
                shutil.copytree(raw, tmp)
                results["saved_model"] = checked(saved_model_call(tmp), "none", tmp, dest)
            manifest.add(dest)
        if tflite:
            if quantize == "int8" and user_images is None:
                def calibration():
                    return representative_images(run_dir, direction, inference.input_transform)
            else:
                def calibration():
                    return images
            flatbuffer = convert_to_litert(raw, signature.names, quantize, calibration)
            dest = out / tflite_name
            with runs.atomic_path(dest, suffix=".tflite") as tmp:
                tmp.write_bytes(add_tflite_metadata(flatbuffer, info))
                results["tflite"] = checked(litert_call(tmp), quantize, tmp, dest)
            manifest.add(dest)
    if onnx:
        results["onnx"] = _export_onnx(inference, out, onnx_files, {**info, "quantize": "none"},
                                       checked)
        for name in onnx_files.values():
            manifest.add(out / name)
    return results


class _Manifest:
    """``export.json``: the files of the folder that are complete and belong together.

    An export first drops the entries of the files it will write (a kill from then on
    leaves the old ones unlisted: ``kstyle.load`` refuses them), then lists each one once
    it is written and checked; the other files' entries (another direction's) stay.
    """

    def __init__(self, out: Path, planned: list[str]):
        self.path = out / MANIFEST_FILE
        try:
            self.data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {"files": {}}
        for name in planned:
            self.data.setdefault("files", {}).pop(name, None)
        runs.write_json(self.path, self.data)

    def add(self, path: Path) -> None:
        self.data["files"][path.relative_to(self.path.parent).as_posix()] = fingerprint(path)
        runs.write_json(self.path, self.data)


def write_saved_model(inference, path: Path, target: str | None) -> None:
    """Writes every endpoint of ``inference`` as a signature of one SavedModel, traced for
    ``target`` (see ``Inference.functions``); the first is also ``serving_default``."""
    import keras

    # Keras' export archive, as `model.export` uses: LiteRT converts what it writes
    # correctly (a plain tf.Module around the model converted to wrong numbers).
    archive = keras.export.ExportArchive()
    archive.track(inference.serving_model())
    functions = inference.functions(target)
    for endpoint in inference.signature.endpoints:
        archive.add_endpoint(endpoint.name, functions[endpoint.name],
                             input_signature=endpoint.specs())
    main = inference.signature.main
    encoded = encoded_endpoint(main, functions[main.name])
    if encoded is not None:
        archive.add_endpoint(ENCODED_SIGNATURE, *encoded)
    archive.write_out(str(path), verbose=False)


def encoded_endpoint(endpoint: Endpoint, function):
    """``(function, input_signature)`` of ``endpoint``'s encoded-bytes form (see
    ``kstyle.models.signature.encoded_ports``): a batch of image files (PNG, JPEG, GIF,
    BMP) and scalars in, each result as a PNG file out (``image_bytes``), one instance
    at a time, since images of a batch may differ in size. None when the endpoint takes
    a tensor.

    This is the SavedModel's ``serving_default``: what TensorFlow Serving's REST API
    runs for ``{"instances": [{"b64": ...}]}``, as ``kstyle serve`` does at ``:predict``.
    """
    ports = encoded_ports(endpoint)
    if ports is None:
        return None
    specs = [tf.TensorSpec([None], tf.string if port.type == IMAGE else tf.float32,
                           name=name) for name, port in ports]

    def one(row):
        feeds = []
        for (_, port), value in zip(ports, row):
            if port.type == IMAGE:
                image = tf.io.decode_image(value, channels=3, expand_animations=False)
                image.set_shape([None, None, 3])
                feeds.append(image[None])
            else:
                feeds.append(value)
        return tf.io.encode_png(function(*feeds)[0])

    def encoded(*columns):
        return {ENCODED_OUTPUT: tf.map_fn(one, tuple(columns),
                                          fn_output_signature=tf.string)}

    return encoded, specs


def convert_to_onnx(function, endpoint, path: Path) -> None:
    """Writes one endpoint's function (traced for ONNX) as an ONNX file."""
    import tf2onnx

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf2onnx's numpy deprecations
            tf2onnx.convert.from_function(tf.function(function),
                                          input_signature=endpoint.specs(),
                                          output_path=str(path))
    except Exception as e:  # tf2onnx raises many kinds of errors
        raise ExportError(f"ONNX conversion of {endpoint.name} failed "
                          f"({type(e).__name__}: {str(e)[:300]})") from e


def _export_onnx(inference, out: Path, files: dict, info: dict, checked) -> dict:
    """Each endpoint as an ONNX file (written together: all are kept or none)."""
    import logging

    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)  # its optimizer logs (and survives) a traceback
    functions = inference.functions("onnx")
    try:
        with contextlib.ExitStack() as stack:
            written = {}
            for endpoint in inference.signature.endpoints:
                dest = out / files[endpoint.name]
                tmp = stack.enter_context(runs.atomic_path(dest, suffix=".onnx"))
                convert_to_onnx(functions[endpoint.name], endpoint, tmp)
                add_onnx_metadata(tmp, {**info, "endpoint": endpoint.name})
                written[endpoint.name] = tmp
            sessions = {name: onnx_session(path) for name, path in written.items()}

            def call(name, **feeds):
                arrays = {k: np.asarray(v) for k, v in feeds.items()}  # numpy scalars too
                return np.asarray(sessions[name].run(None, arrays)[0])

            main = inference.signature.main.name
            return checked(call, "none", written[main], out / files[main])
    finally:
        logger.setLevel(level)


def _check_onnx_installed() -> None:
    missing = [name for name in ("tf2onnx", "onnx", "onnxruntime")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(
            f"ONNX export needs {', '.join(missing)}, which are not installed; install "
            "them with: pip install 'kstyle[onnx]'")


def _checked(run, reference, images, quantize, tmp: Path, dest: Path, log) -> dict:
    """Checks one exported file; raises (so that it is not kept) when it fails."""
    result = parity(reference, run, images, quantize)
    size = (sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file()) if tmp.is_dir()
            else tmp.stat().st_size)
    line = (f"{dest}: {size / 2**20:.1f} MiB; vs Keras on {result['n_images']} images: "
            f"max |diff| {result['max_abs_diff']} (of 255), PSNR {result['psnr_db']:.1f} dB")
    if not result["passed"]:
        bar = (f"max |diff| <= {MAX_ABS_DIFF}" if quantize == "none"
               else f"PSNR >= {MIN_PSNR[quantize]} dB")
        raise ExportError(f"{line}: check FAILED (needs {bar}); the file was not written")
    log(line + " - ok")
    return {"path": str(dest), "bytes": size, **result}
