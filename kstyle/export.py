"""``kstyle export``: a trained translator as a SavedModel, a LiteRT (.tflite) and an ONNX file.

Only the inference network is exported (never a discriminator), wrapped in
:class:`kstyle.serving.Uint8Translator`: uint8 ``[N, H, W, 3]`` in, uint8 out, H and W
dynamic, padding, input derivation and value mapping included. Every file is checked
against the Keras model on real images before it is kept: the largest difference (and,
for quantized files, the PSNR) is printed, and a file that misses the bar is not written.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from kstyle import lock, runs
from kstyle.arbitrary import ArbitraryStylizer, endpoints
from kstyle.data.images import list_images, read_image
from kstyle.errors import ExportError, ModelLoadError
from kstyle.nets.layers import portable_graph
from kstyle.serving import (
    ARBITRARY_ONNX,
    METADATA_FILE,
    add_onnx_metadata,
    add_tflite_metadata,
    litert_runner,
    onnx_runner,
    onnx_session,
    saved_model_runner,
)

QUANTIZATIONS = ("none", "fp16", "dynamic", "int8")
#: The bar each export must pass against the Keras model, on uint8 outputs: the largest
#: absolute difference for float32 files, the PSNR (dB) for quantized ones.
MAX_ABS_DIFF = 2
MIN_PSNR = {"fp16": 35.0, "dynamic": 25.0, "int8": 20.0}
# Images used by the parity check and, for int8, as the representative set.
MAX_CHECK_IMAGES = 8


def _input_spec():
    return [tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def check_images(run_dir: Path, images=None) -> list[np.ndarray]:
    """Real images for the parity check: ``images`` (files or folders), else the run's
    held-back sample inputs; each also cropped to an odd size, to exercise padding."""
    paths = []
    for item in images or [run_dir / "samples" / "inputs"]:
        item = Path(item)
        paths += list_images(item) if item.is_dir() else [item] if item.is_file() else []
    if not paths:
        raise ExportError(
            f"{run_dir}: no images to check the export with (samples/inputs/ is missing); "
            "give some with --check-images")
    arrays = [read_image(p) for p in sorted(paths)[:MAX_CHECK_IMAGES]]
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
    from kstyle.builders import eval_dataset
    from kstyle.data.images import to_uint8
    from kstyle.errors import KstyleError
    from kstyle.recipes import load_recipe

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
    """Runs both on every image; returns max |difference| and PSNR, and whether it passed."""
    worst, psnrs = 0, []
    for image in images:
        expected = reference(image)
        try:
            got = np.asarray(run(image[None]))[0]
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


def _converter_options(quantize: str, calibration):
    builtins = tf.lite.OpsSet.TFLITE_BUILTINS
    if quantize == "none":
        return {"target_spec": {"supported_ops": [builtins]}}
    options = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if quantize == "fp16":
        options["target_spec"] = {"supported_types": [tf.float16], "supported_ops": [builtins]}
    elif quantize == "int8":
        def representative():
            for image in calibration():
                yield [image[None]]

        options["representative_dataset"] = representative
        options["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                    builtins]}
    return options


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
    """Exports a trained translator and checks each file against the Keras model.

    Args:
        model: a run folder written by ``kstyle fit`` (or a translator ``.keras`` file).
        out: the folder for the files (default ``<run>/export``).
        saved_model: write ``saved_model/`` (with ``kstyle.json`` metadata beside it).
        tflite: write ``translator[_b2a][_<quantize>].tflite`` (metadata embedded).
        onnx: write ``translator[_b2a].onnx`` (float32, metadata in ``metadata_props``;
            needs the ``onnx`` extra: tf2onnx and onnxruntime).
        quantize: ``"none"`` (float32), ``"fp16"`` (float16 weights), ``"dynamic"`` (int8
            weights) or ``"int8"`` (int8 weights and activations, calibrated on training
            inputs of the run's recipe, or on ``images`` when given); applies to the
            .tflite file.
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
    # The converters' ops, not TensorFlow's fastest: the SavedModel and the LiteRT file
    # are traced for LiteRT (the SavedModel is what the converter reads), ONNX for ONNX.
    with portable_graph("litert"):
        return _export_run(model, out, saved_model=saved_model, tflite=tflite, onnx=onnx,
                           quantize=quantize, direction=direction, images=images, log=log)


def _export_run(model, out, *, saved_model, tflite, onnx, quantize, direction, images,
                log) -> dict:
    from kstyle.api import load

    if quantize not in QUANTIZATIONS:
        raise ExportError(f"quantize = {quantize!r}; expected one of {', '.join(QUANTIZATIONS)}")
    if not (saved_model or tflite or onnx):
        raise ExportError("nothing to export: ask for a SavedModel, a .tflite and/or an "
                          ".onnx file")
    if onnx:
        _check_onnx_installed()
    translator = load(model, direction)
    if translator.model is None:
        raise ModelLoadError(f"{model}: already an exported file; export a run folder")
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
    if isinstance(translator, ArbitraryStylizer):
        return _export_arbitrary(translator, run_dir, out, saved_model=saved_model,
                                 tflite=tflite, onnx=onnx, quantize=quantize,
                                 images=check_images(run_dir, images), log=log)
    direction = direction or runs.DEFAULT_DIRECTION
    info = {k: translator.info.get(k) for k in ("kind", "name", "image_size", "step")}
    info.update({"direction": direction, "size_multiple": translator.size_multiple,
                 "input_transform": translator.input_transform, "value_range": [0, 255],
                 "dtype": "uint8", "layout": "NHWC", "quantize": quantize})
    user_images = images
    images = check_images(run_dir, images)
    reference = translator.translate_array
    serving = translator.serving
    stem = runs.translator_file(direction).removesuffix(".keras")
    results = {}

    if saved_model:
        dest = out / "saved_model"
        with runs.atomic_path(dest) as tmp:
            serving.export(str(tmp), format="tf_saved_model", input_signature=_input_spec(),
                           verbose=False)
            runs.write_json(tmp / METADATA_FILE, {**info, "quantize": "none"})
            run, _ = saved_model_runner(tmp)
            results["saved_model"] = _checked(run, reference, images, "none", tmp, dest, log)

    if tflite:
        name = stem + ("" if quantize == "none" else f"_{quantize}") + ".tflite"
        dest = out / name
        # Scratch in the system temp folder: a kill leaves nothing in the export folder
        # (and the next export removes a killed one's scratch: its name holds the pid).
        with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as scratch:
            raw = Path(scratch) / "raw.tflite"
            if quantize == "int8" and user_images is None:
                def calibration():
                    return representative_images(run_dir, direction,
                                                 translator.input_transform)
            else:
                def calibration():
                    return images
            try:
                serving.export(str(raw), format="litert", input_signature=_input_spec(),
                               verbose=False, **_converter_options(quantize, calibration))
            except Exception as e:  # the converter raises many kinds of errors
                lines = [ln.strip() for ln in str(e).splitlines()
                         if "ops" in ln.lower() or ln.strip().startswith("error")]
                raise ExportError(f"LiteRT conversion failed ({type(e).__name__}: "
                                  f"{'; '.join(lines[:3]) or str(e)[:300]})") from e
            with runs.atomic_path(dest, suffix=".tflite") as tmp:
                tmp.write_bytes(add_tflite_metadata(raw.read_bytes(), info))
                run, _ = litert_runner(tmp)
                results["tflite"] = _checked(run, reference, images, quantize, tmp, dest, log)

    if onnx:
        dest = out / (stem + ".onnx")
        with runs.atomic_path(dest, suffix=".onnx") as tmp:
            try:
                with warnings.catch_warnings(), portable_graph("onnx"):
                    warnings.simplefilter("ignore")  # tf2onnx's numpy deprecations
                    serving.export(str(tmp), format="onnx", input_signature=_input_spec(),
                                   verbose=False)
            except Exception as e:  # tf2onnx raises many kinds of errors
                raise ExportError(f"ONNX conversion failed ({type(e).__name__}: "
                                  f"{str(e)[:300]})") from e
            add_onnx_metadata(tmp, {**info, "quantize": "none"})
            run, _ = onnx_runner(tmp)
            results["onnx"] = _checked(run, reference, images, "none", tmp, dest, log)
    return results


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




def _arbitrary_check(stylizer: ArbitraryStylizer, images):
    """``(reference, check)`` for :func:`_checked`: each image is stylized in the style of
    the first, at strength 1 by ``stylize`` and at 0.5 by ``stylize_with_statistics`` from
    ``encode_style``'s statistics, side by side; ``check(call)`` turns an exported file's
    endpoints (``call(name, **inputs)``) into the runner of the same."""
    style = images[0]

    def reference(image):
        return np.concatenate([stylizer.stylize_array(image, style, style_size=0),
                               stylizer.stylize_array(image, style, style_size=0,
                                                      strength=0.5)], axis=1)

    def check(call):
        def run(batch):
            statistics = call("encode_style", style=style[None])
            return np.concatenate([
                call("stylize", content=batch, style=style[None],
                     strength=np.array(1.0, np.float32)),
                call("stylize_with_statistics", content=batch, statistics=statistics,
                     strength=np.array(0.5, np.float32))], axis=2)
        return run

    return reference, check


def _export_arbitrary(stylizer: ArbitraryStylizer, run_dir: Path, out: Path, *,
                      saved_model: bool, tflite: bool, onnx: bool, quantize: str, images,
                      log) -> dict:
    """An adain run's three endpoints (:func:`kstyle.arbitrary.endpoints`) as a SavedModel
    and a LiteRT file (three signatures each) and three ONNX files, each checked."""
    if quantize == "int8":
        raise ExportError("--quantize int8 is not available for adain runs (its calibration "
                          "would need content and style pairs); use fp16 or dynamic")
    info = {k: stylizer.info.get(k) for k in ("kind", "name", "image_size", "step")}
    info.update({"size_multiple": stylizer.size_multiple, "value_range": [0, 255],
                 "dtype": "uint8", "layout": "NHWC", "quantize": quantize,
                 "endpoints": {"stylize": "content, style, strength -> image",
                               "encode_style": "style -> statistics [N, 2, C]",
                               "stylize_with_statistics":
                                   "content, statistics, strength -> image"}})
    reference, check = _arbitrary_check(stylizer, images)
    graphs = endpoints(stylizer)
    results = {}
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as scratch:
        import keras

        # Keras' export archive, as `model.export` uses: LiteRT converts what it writes
        # correctly (a plain tf.Module around the model converted to wrong numbers).
        archive = keras.export.ExportArchive()
        archive.track(stylizer.model)
        for name, (function, specs) in graphs.items():
            archive.add_endpoint(name, function, input_signature=specs)
        raw = Path(scratch) / "saved_model"
        archive.write_out(str(raw), verbose=False)
        runs.write_json(raw / METADATA_FILE, {**info, "quantize": "none"})
        if saved_model:
            dest = out / "saved_model"
            with runs.atomic_path(dest) as tmp:
                shutil.copytree(raw, tmp)
                loaded = tf.saved_model.load(str(tmp))

                def call(name, **inputs):
                    return next(iter(loaded.signatures[name](**inputs).values())).numpy()

                results["saved_model"] = _checked(check(call), reference, images, "none",
                                                  tmp, dest, log)
        if tflite:
            converter = tf.lite.TFLiteConverter.from_saved_model(str(raw),
                                                                 signature_keys=list(graphs))
            for key, value in _converter_options(quantize, None).items():
                if key == "target_spec":
                    for field, setting in value.items():
                        setattr(converter.target_spec, field,
                                set(setting) if field == "supported_ops" else setting)
                else:
                    setattr(converter, key, value)
            try:
                model = converter.convert()
            except Exception as e:  # the converter raises many kinds of errors
                raise ExportError(f"LiteRT conversion failed ({type(e).__name__}: "
                                  f"{str(e)[:300]})") from e
            dest = out / ("translator" + ("" if quantize == "none" else f"_{quantize}")
                          + ".tflite")
            with runs.atomic_path(dest, suffix=".tflite") as tmp:
                tmp.write_bytes(add_tflite_metadata(model, info))
                from ai_edge_litert.interpreter import Interpreter

                interpreter = Interpreter(model_path=str(tmp), num_threads=os.cpu_count())

                def call(name, **inputs):
                    runner = interpreter.get_signature_runner(name)
                    return next(iter(runner(**inputs).values()))

                results["tflite"] = _checked(check(call), reference, images, quantize, tmp,
                                             dest, log)
    if onnx:
        results["onnx"] = _export_arbitrary_onnx(graphs, out, {**info, "quantize": "none"},
                                                 reference, check, images, log)
    return results


def _export_arbitrary_onnx(graphs, out: Path, info, reference, check, images, log) -> dict:
    import logging

    import tf2onnx

    written = []
    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)  # its optimizer logs (and survives) a traceback
    try:
        with contextlib.ExitStack() as stack:
            sessions = {}
            for name, (function, specs) in graphs.items():
                dest = out / ARBITRARY_ONNX[name]
                tmp = stack.enter_context(runs.atomic_path(dest, suffix=".onnx"))
                try:
                    with warnings.catch_warnings(), portable_graph("onnx"):
                        warnings.simplefilter("ignore")  # tf2onnx's numpy deprecations
                        tf2onnx.convert.from_function(tf.function(function),
                                                      input_signature=specs,
                                                      output_path=str(tmp))
                except Exception as e:  # tf2onnx raises many kinds of errors
                    raise ExportError(f"ONNX conversion of {name} failed "
                                      f"({type(e).__name__}: {str(e)[:300]})") from e
                add_onnx_metadata(tmp, {**info, "endpoint": name})
                sessions[name] = onnx_session(tmp)
                written.append(tmp)

            def call(name, **inputs):
                return sessions[name].run(None, inputs)[0]

            result = _checked(check(call), reference, images, "none", written[0],
                              out / ARBITRARY_ONNX["stylize"], log)
    finally:
        logger.setLevel(level)
    return result
