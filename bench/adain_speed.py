"""Arbitrary style transfer (AdaIN) at inference: Keras, LiteRT and ONNX, full and light.

Usage:

    python bench/adain_speed.py [--sizes 256 512 1024] [--variants 1:1 1:0.5 0.25:0.25]
        [--repeats 3]

Each variant is `ENCODER:DECODER`, the widths `model.encoder_width` and
`model.decoder_width` (1:1 is the paper's VGG19 encoder and decoder; 1:0.5 the decoder of
`recipes/adain_cpu.toml`; 0.25:0.25 the light variant for phones). For each, a stylizer with
seeded random weights (speed does not depend on them) is written as an adain run folder
and exported by `kstyle export` (the same code and checks), then timed stylizing a square
uint8 image of each size with a style encoded beforehand, as an app that keeps a style's
statistics does:

- `keras`: `kstyle.load(run).stylize_array` with a `StyleCode`;
- `tflite`: the LiteRT file's `stylize_with_statistics` signature (one thread per CPU);
- `onnx`: `translator_stylize_with_statistics.onnx` under ONNX Runtime (one thread per CPU).

Also timed: encoding a 512 px style (Keras, LiteRT `encode_style`). Two untimed calls,
then the median of `--repeats`. The CPU is printed. It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Figures measured earlier on this kind of machine, printed for scale only.
REFERENCE_LINE = ("For scale (not measured here): a feed-forward ONNX stylizer (Magenta's "
                  "arbitrary-style lite transform) under onnxruntime ~22-25 / 90-97 / "
                  "420-445 ms at 256 / 512 / 1024 px on 2 cores.")


def _median_ms(function, repeats: int) -> float:
    for _ in range(2):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _write_run(folder: Path, encoder_width: float, width: float) -> Path:
    """An adain run folder holding a seeded random stylizer of those widths."""
    import keras
    import numpy as np
    from PIL import Image

    from kstyle import runs
    from kstyle.nets.adain import adain_decoder, adain_encoder, adain_stylizer

    keras.utils.set_random_seed(0)
    encoder = adain_encoder(width=encoder_width)
    stylizer = adain_stylizer(encoder, adain_decoder(
        width, features=encoder.output["relu4_1"].shape[-1], name="decoder"))
    folder.mkdir(parents=True)
    stylizer.save(folder / runs.TRANSLATOR_FILE)
    runs.write_json(folder / runs.RUN_FILE, {
        "kind": "adain", "name": folder.name, "direction": "a2b", "input_transform": "none",
        "input_transforms": {"a2b": "none"}, "image_size": 256, "size_multiple": 8,
        "value_range": [-1.0, 1.0], "translator": runs.TRANSLATOR_FILE,
        "translators": {"a2b": runs.TRANSLATOR_FILE}, "step": 0, "precision": "float32"})
    inputs = folder / "samples" / "inputs"
    inputs.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (64, 48, 3), np.uint8)).save(
            inputs / f"input_{i:02d}.png")
    return folder


def bench_variant(encoder_width: float, width: float, sizes, repeats: int, tmp: Path) -> dict:
    import numpy as np
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    import kstyle
    from kstyle.export import export_run

    run = _write_run(tmp / f"adain_{encoder_width}_{width}", encoder_width, width)
    export_run(run, saved_model=False, tflite=True, onnx=True, log=lambda *_: None)
    stylizer = kstyle.load(run)
    rng = np.random.default_rng(0)
    style = rng.integers(0, 256, (512, 512, 3), np.uint8)
    code = stylizer.encode_style(style, style_size=0)
    statistics_input = np.concatenate([code.mean.reshape(1, 1, -1),
                                       code.std.reshape(1, 1, -1)], axis=1)  # [1, 2, C]
    interpreter = Interpreter(model_path=str(run / "export" / "translator.tflite"),
                              num_threads=os.cpu_count())
    litert = interpreter.get_signature_runner("stylize_with_statistics")
    encode = interpreter.get_signature_runner("encode_style")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.log_severity_level = 3
    onnx = onnxruntime.InferenceSession(
        str(run / "export" / "translator_stylize_with_statistics.onnx"), options,
        providers=["CPUExecutionProvider"])
    strength = np.array(1.0, np.float32)
    result = {"encoder_width": encoder_width, "width": width,
              "parameters": stylizer.encoder.count_params() + stylizer.decoder.count_params(),
              "encode_512_ms": {
                  "keras": _median_ms(lambda: stylizer.encode_style(style, style_size=0),
                                      repeats),
                  "tflite": _median_ms(lambda: encode(style=style[None]), repeats)},
              "stylize_ms": {}}
    for size in sizes:
        image = rng.integers(0, 256, (1, size, size, 3), np.uint8)
        feeds = {"content": image, "statistics": statistics_input, "strength": strength}
        result["stylize_ms"][size] = {
            "keras": _median_ms(lambda x=image: stylizer.stylize_array(x[0], style=code), repeats),
            "tflite": _median_ms(lambda f=feeds: litert(**f), repeats),
            "onnx": _median_ms(lambda f=feeds: onnx.run(None, f), repeats)}
        print(f"  widths {encoder_width:g}:{width:g}, {size} px: " + ", ".join(
            f"{k} {v:.0f} ms" for k, v in result["stylize_ms"][size].items()),
            file=sys.stderr, flush=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1024])
    parser.add_argument("--variants", nargs="+", default=["1:1", "1:0.5", "0.25:0.25"],
                        help="ENCODER:DECODER widths")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    try:
        variants = [tuple(float(w) for w in v.split(":")) for v in args.variants]
    except ValueError:
        variants = [()]
    if (args.repeats < 1 or any(s < 8 for s in args.sizes)
            or any(len(v) != 2 or not 0 < v[0] <= 1 or v[1] <= 0 for v in variants)):
        parser.error("--repeats >= 1, --sizes >= 8, --variants ENCODER:DECODER with "
                     "0 < ENCODER <= 1 and DECODER > 0")

    from layer_profile import cpu_name

    with tempfile.TemporaryDirectory() as tmp:
        results = [bench_variant(e, d, args.sizes, args.repeats, Path(tmp))
                   for e, d in variants]
    print(f"AdaIN stylize, uint8 in and out, style statistics given, batch 1, float32, "
          f"{cpu_name()}, {os.cpu_count()} CPUs; median of {args.repeats}")
    header = ["widths enc:dec", "parameters", *(f"{s} px keras / litert / onnx ms"
                                               for s in args.sizes), "encode 512 px ms"]
    print(" | ".join(header))
    for r in results:
        cells = [f"{r['encoder_width']:g}:{r['width']:g}", f"{r['parameters']:,}"]
        cells += [" / ".join(f"{r['stylize_ms'][s][k]:.0f}" for k in ("keras", "tflite", "onnx"))
                  for s in args.sizes]
        cells.append(" / ".join(f"{r['encode_512_ms'][k]:.0f}" for k in ("keras", "tflite")))
        print(" | ".join(cells))
    print(REFERENCE_LINE)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
