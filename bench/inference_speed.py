"""Inference speed and file size of kstyle's translator networks, in every format kstyle runs.

Usage:

    python bench/inference_speed.py [--models unet resnet9 fast mobile]
                                    [--formats keras saved_model tflite tflite-fp16
                                               tflite-dynamic tflite-int8 onnx]
                                    [--sizes 256 512 1024] [--repeats 5] [--json FILE]

Models (built untrained, random weights from `keras.utils.set_random_seed(0)`; speed does
not depend on the weights):

- `unet`: `kstyle.nets.unet_generator()` defaults (pix2pix U-Net, 8 downsamplings, 64 base
  filters, batch norm), size multiple 256.
- `resnet9`: `kstyle.nets.resnet_generator()` defaults (CycleGAN, 9 residual blocks),
  size multiple 4.
- `fast`: the fast style transfer network (Johnson et al.: 32 filters, 5 residual blocks,
  9x9 outer kernels, resize-conv), size multiple 4.
- `mobile`: the light stylizer for phones (`kstyle.nets.mobile_stylizer()` defaults:
  separable convs, three downsamplings, pixel-shuffle head), size multiple 8.

Rows, one per model and format; every row times the same uint8 -> uint8 graph
(`kstyle.nets.uint8.Uint8Translator`: mirror padding to the size multiple, value mapping,
the network, cropping), as `kstyle.load` runs it and `kstyle export` writes it:

- `keras`: `kstyle.Stylizer.from_network(net).stylize_array` (a `tf.function` over the Keras model).
- `saved_model`: the exported SavedModel, loaded and run with TensorFlow
  (`kstyle.inference.exported.saved_model_call`).
- `tflite`, `tflite-fp16`, `tflite-dynamic`, `tflite-int8`: the exported LiteRT file,
  float32, float16 weights, int8 weights (dynamic range) and full int8 (calibrated on 8
  seeded random 256 px images), run by the LiteRT interpreter with one thread per CPU
  (`kstyle.inference.exported.litert_call`).
- `onnx`: the ONNX file `kstyle export --onnx` writes (float32), run by ONNX Runtime with
  one thread per CPU (`kstyle.inference.exported.onnx_call`); needs `pip install -e ".[onnx]"`.

Files are exported with the same converter settings as `kstyle export` into a temporary
folder. Each (model, format, size) gets one seeded random uint8 square image, batch 1:
2 untimed warmup calls, then `--repeats` timed calls; the table gives the median in ms.
Also reported: the file's size in MiB (`keras`: the network's `.keras` file, as a run saves
it; `saved_model`: the whole folder), the PSNR of the format's output against the Keras
model's at the first size (a sanity check: random weights make low-precision formats look
worse than trained ones do), the export time (JSON only) and the process's peak resident
memory (`ru_maxrss`) at the end. A format that fails to export or run prints
`failed: <reason>` in its row and the script goes on.

This script prints figures; it asserts nothing. Tests never time things.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODELS = ("unet", "resnet9", "fast", "mobile")
FORMATS = ("keras", "saved_model", "tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8",
           "onnx")
# Format -> the `quantize` option of `kstyle export` for .tflite files.
TFLITE_QUANTIZE = {"tflite": "none", "tflite-fp16": "fp16", "tflite-dynamic": "dynamic",
                   "tflite-int8": "int8"}
SIZE_MULTIPLE = {"unet": 256, "resnet9": 4, "fast": 4, "mobile": 8}
WARMUP = 2
CALIBRATION_IMAGES = 8
CALIBRATION_SIZE = 256

REFERENCE_LINE = (
    "For scale (not measured here): PyTorch reference inference (eval, batch 1) U-Net "
    "~112-117 ms at 256 / 305-328 ms at 512, 9-block ResNet ~400-410 ms / 1.92 s; a "
    "feed-forward ONNX stylizer under onnxruntime ~22-25 / 90-97 / 420-445 ms at "
    "256 / 512 / 1024 px.")


def _short(error: BaseException, limit: int = 110) -> str:
    """A one-line reason for a failure: the error's type and the line naming the ops that
    LiteRT lacks (e.g. "TF Select ops: Conv2D"), else its first non-empty line."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    ops = [ln for ln in lines if ln.lower().startswith(("tf select ops", "custom ops",
                                                         "flex ops"))]
    lines = ops or lines
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _size_mib(path: Path) -> float:
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    return path.stat().st_size / 2**20


def _psnr(a, b) -> float:
    import numpy as np

    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _jsonable(row: dict) -> dict:
    """`row` with an infinite PSNR (identical outputs) written as the string "inf"."""
    psnr = row["psnr_vs_keras_db"]
    return {**row, "psnr_vs_keras_db": "inf" if psnr == float("inf") else psnr}


def build_network(kind: str):
    """The untrained network of `kind`, seeded."""
    import keras

    from kstyle.nets import mobile_stylizer, resnet_generator, unet_generator
    from kstyle.nets.resnet import resnet_generator as resnet

    keras.utils.set_random_seed(0)
    if kind == "unet":
        return unet_generator()
    if kind == "resnet9":
        return resnet_generator()
    if kind == "mobile":
        return mobile_stylizer(name="transformer")
    return resnet(base_filters=32, num_blocks=5, outer_kernel=9, upsample="resize",
                  name="transformer")


def _calibration():
    import numpy as np

    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (CALIBRATION_SIZE, CALIBRATION_SIZE, 3), dtype=np.uint8)
            for _ in range(CALIBRATION_IMAGES)]


def prepare(fmt: str, net, translator, serving, folder: Path):
    """Exports `net` in `fmt` under `folder` and loads it: (run, file path).

    `run` maps uint8 [1, H, W, 3] to uint8 [1, H, W, 3].
    """
    from kstyle.export import convert_to_litert, convert_to_onnx, write_saved_model
    from kstyle.inference.exported import litert_call, onnx_call, saved_model_call

    inference = translator.inference
    stylize = inference.signature.main
    if fmt == "keras":
        path = folder / "translator.keras"
        net.save(path)
        return (lambda images: translator.stylize_array(images[0])[None]), path
    if fmt == "onnx":
        path = folder / "translator.onnx"
        convert_to_onnx(inference.functions("onnx")[stylize.name], stylize, path)
        call = onnx_call(path, [stylize.name], {})
    else:
        saved = folder / "saved_model"
        if not saved.is_dir():
            write_saved_model(inference, saved, "litert")  # as kstyle export traces
        if fmt == "saved_model":
            path, call = saved, saved_model_call(saved)
        else:
            quantize = TFLITE_QUANTIZE[fmt]
            path = folder / f"translator_{quantize}.tflite"
            path.write_bytes(convert_to_litert(saved, [stylize.name], quantize, _calibration))
            call = litert_call(path)
    return (lambda images: call(stylize.name, images=images)), path


def bench_format(kind, fmt, net, translator, serving, images, reference, repeats, folder):
    """One table row: export, then time each size."""
    import numpy as np

    row = {"model": kind, "format": fmt, "ms": {}, "file_mib": None, "export_s": None,
           "psnr_vs_keras_db": None, "error": None}
    start = time.perf_counter()
    try:
        run, path = prepare(fmt, net, translator, serving, folder)
    except Exception as e:  # a converter raises many kinds of errors: report, go on
        row["error"] = f"export: {_short(e)}"
        return row
    row["export_s"] = time.perf_counter() - start
    row["file_mib"] = _size_mib(path)
    for i, (size, image) in enumerate(images.items()):
        batch = image[None]
        try:
            for _ in range(WARMUP):
                out = np.asarray(run(batch))
            if out.shape != batch.shape or out.dtype != np.uint8:
                raise ValueError(f"returned {out.dtype} {out.shape} for uint8 {batch.shape}")
            if i == 0 and reference is not None:
                row["psnr_vs_keras_db"] = _psnr(out[0], reference)
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                np.asarray(run(batch))
                times.append(time.perf_counter() - t)
        except Exception as e:  # the runtime refuses the file or the shape: report, go on
            row["error"] = f"run at {size} px: {_short(e)}"
            break
        row["ms"][size] = 1000 * statistics.median(times)
    del run
    gc.collect()
    return row


def _progress(row, sizes):
    cells = [f"{row['ms'][s]:.1f} ms @ {s}" for s in sizes if s in row["ms"]]
    text = ", ".join(cells) if cells else ""
    if row["error"]:
        text += ("; " if text else "") + f"failed: {row['error']}"
    print(f"  {row['model']:8s} {row['format']:15s} {text}", flush=True)


def print_table(rows, sizes):
    size_cols = [f"{s} px" for s in sizes]
    header = (f"{'model':8s} {'format':15s} " + " ".join(f"{c:>9s}" for c in size_cols)
              + f" {'file MiB':>9s} {'PSNR dB':>8s}")
    print(header)
    print("-" * len(header))
    for row in rows:
        cells = [f"{row['ms'][s]:9.1f}" if s in row["ms"] else f"{'-':>9s}" for s in sizes]
        mib = f"{row['file_mib']:9.1f}" if row["file_mib"] is not None else f"{'-':>9s}"
        psnr = row["psnr_vs_keras_db"]
        psnr = (f"{'-':>8s}" if psnr is None or row["format"] == "keras"
                else f"{'inf':>8s}" if psnr == float("inf") else f"{psnr:8.1f}")
        line = f"{row['model']:8s} {row['format']:15s} " + " ".join(cells) + f" {mib} {psnr}"
        if row["error"]:
            line += f"  failed: {row['error']}"
        print(line)
    print("(ms: median per image, batch 1; PSNR: output vs the Keras model's at "
          f"{sizes[0]} px)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1024],
                        help="square image sides in pixels")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per size")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.repeats < 1 or any(s < 1 for s in args.sizes):
        parser.error("--repeats and --sizes must be positive")

    import keras
    import numpy as np
    import tensorflow as tf

    from kstyle.api import Stylizer
    from kstyle.nets.uint8 import Uint8Translator

    models = [m for m in MODELS if m in args.models]
    formats = [f for f in FORMATS if f in args.formats]
    sizes = list(dict.fromkeys(args.sizes))
    print(f"kstyle inference bench: TF {tf.__version__}, Keras {keras.__version__}, "
          f"{os.cpu_count()} CPUs; batch 1, {WARMUP} warmup + {args.repeats} timed calls",
          flush=True)
    rng = np.random.default_rng(0)
    images = {s: rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for s in sizes}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in models:
            try:
                net = build_network(kind)
                translator = Stylizer.from_network(net, {"size_multiple": SIZE_MULTIPLE[kind]})
                serving = Uint8Translator(net, SIZE_MULTIPLE[kind], "none")
                reference = translator.stylize_array(images[sizes[0]])
            except Exception as e:
                for fmt in formats:
                    row = {"model": kind, "format": fmt, "ms": {}, "file_mib": None,
                           "export_s": None, "psnr_vs_keras_db": None,
                           "error": f"build: {_short(e)}"}
                    rows.append(row)
                    _progress(row, sizes)
                continue
            for fmt in formats:
                folder = Path(tmp) / kind / fmt
                folder.mkdir(parents=True)
                row = bench_format(kind, fmt, net, translator, serving, images, reference,
                                   args.repeats, folder)
                rows.append(row)
                _progress(row, sizes)
            del net, translator, serving
            keras.backend.clear_session()
            gc.collect()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print()
    print_table(rows, sizes)
    print(f"peak RSS {peak:.2f} GiB")
    print(REFERENCE_LINE)
    if args.json:
        results = {"tensorflow": tf.__version__, "keras": keras.__version__,
                   "cpu_count": os.cpu_count(), "sizes": sizes, "repeats": args.repeats,
                   "warmup": WARMUP, "rows": [_jsonable(r) for r in rows],
                   "peak_rss_gib": peak}
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
