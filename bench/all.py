"""Every kstyle benchmark in one command, and one table of the figures.

Usage:

    python bench/all.py [--quick] [--json FILE]

Runs, one after the other so that no two share the cores (run it on an idle machine):

1. `bench/train_speed.py`: one training step per model, batch 1 at 256 px (CycleGAN also
   at 128 px with 6 blocks), in float32 and in `mixed_bfloat16` (`train.precision`):
   ms/step, images/s, peak memory.
2. `bench/inference_speed.py`: stylize one uint8 image with each translator network
   (pix2pix U-Net, CycleGAN 9-block ResNet, Johnson et al.'s fast stylizer, the mobile
   stylizer) in each format `kstyle export` writes (Keras, SavedModel, LiteRT float32 /
   fp16 / int8, ONNX): ms at 256, 512 and 1024 px, file size, peak memory.

`--quick` keeps the usual figures, in about 12 minutes on 2 cores: training without the
float32 CycleGAN at 256 px (about 12 s a step), inference at 256 and 512 px only, 3 timed
calls. Without it, 1024 px inference and the float32 CycleGAN make it several times
longer. Each part writes its JSON under `--out` (default
`bench/out/`); the table below is built from those files. The PyTorch and onnxruntime
figures the project compares against are printed for scale; they are not measured here.

This script prints figures; it asserts nothing. Tests never time things.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

TRAIN_CONFIGS = ["pix2pix", "pix2pix-bf16", "cyclegan-128", "cyclegan-128-bf16",
                 "cyclegan", "cyclegan-bf16", "cdae"]
QUICK_TRAIN_CONFIGS = ["pix2pix", "pix2pix-bf16", "cyclegan-128", "cyclegan-128-bf16",
                       "cyclegan-bf16", "cdae"]
INFERENCE_MODELS = ["unet", "resnet9", "fast", "mobile"]
INFERENCE_FORMATS = ["keras", "saved_model", "tflite", "tflite-fp16", "tflite-int8", "onnx"]

# What the project measures itself against (issue figures, same kind of machine).
REFERENCES = [
    "PyTorch reference training: pix2pix ~650-700 ms/step at 256 px; CycleGAN ~8.3-9.1 s/step "
    "at 256 px (target: 1.5x faster, i.e. <= ~430 ms and <= ~5.5-6.1 s).",
    "PyTorch reference inference (batch 1): U-Net ~112-117 / 305-328 ms, 9-block ResNet "
    "~400-410 ms / 1.92 s at 256 / 512 px.",
    "A feed-forward ONNX stylizer under onnxruntime: ~22-25 / 90-97 / 420-445 ms at 256 / "
    "512 / 1024 px (target: the 512 px LiteRT stylize faster).",
]


def _run(command: list[str]) -> float:
    print("$ " + " ".join(command), flush=True)
    start = time.time()
    subprocess.run(command, check=True)
    return time.time() - start


def train_table(report: dict) -> list[str]:
    lines = [f"{'training (batch 1)':26s} {'px':>5s} {'ms/step':>9s} {'images/s':>9s} "
             f"{'peak GiB':>9s}"]
    for r in report["results"]:
        if "error" in r:
            lines.append(f"{r['config']:26s} failed: {r['error'][:60]}")
            continue
        lines.append(f"{r['config']:26s} {r['size']:5d} {r['median_ms']:9.1f} "
                     f"{r['images_per_s']:9.2f} {r['peak_rss_gib']:9.2f}")
    return lines


def inference_table(report: dict) -> list[str]:
    sizes = report["sizes"]
    names = {"unet": "pix2pix U-Net", "resnet9": "CycleGAN ResNet-9",
             "fast": "fast stylizer (Johnson)", "mobile": "mobile stylizer"}
    head = f"{'stylize (batch 1)':26s} {'format':12s} " + " ".join(
        f"{f'{s} px':>9s}" for s in sizes) + f" {'MiB':>7s}"
    lines = [head]
    for row in report["rows"]:
        cells = " ".join(f"{row['ms'][str(s)]:9.1f}" if str(s) in row["ms"] else f"{'-':>9s}"
                         for s in sizes)
        mib = f"{row['file_mib']:7.1f}" if row["file_mib"] is not None else f"{'-':>7s}"
        line = f"{names.get(row['model'], row['model']):26s} {row['format']:12s} {cells} {mib}"
        if row["error"]:
            line += f"  failed: {row['error'][:50]}"
        lines.append(line)
    lines.append(f"(ms per image, median of {report['repeats']}; inference peak RSS "
                 f"{report['peak_rss_gib']:.2f} GiB)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="the usual subset (about 12 minutes on 2 cores)")
    parser.add_argument("--out", default=str(BENCH / "out"), help="folder for the JSON files")
    parser.add_argument("--json", help="also write the combined report to this file")
    parser.add_argument("--skip-train", action="store_true", help="inference only")
    parser.add_argument("--skip-inference", action="store_true", help="training only")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_json, infer_json = out / "all_train.json", out / "all_inference.json"
    seconds = {}
    if not args.skip_train:
        configs = QUICK_TRAIN_CONFIGS if args.quick else TRAIN_CONFIGS
        seconds["train"] = _run([sys.executable, str(BENCH / "train_speed.py"), "--configs",
                                 *configs, "--json", str(train_json)])
    if not args.skip_inference:
        sizes = ["256", "512"] if args.quick else ["256", "512", "1024"]
        repeats = "3" if args.quick else "5"
        seconds["inference"] = _run([
            sys.executable, str(BENCH / "inference_speed.py"), "--models", *INFERENCE_MODELS,
            "--formats", *INFERENCE_FORMATS, "--sizes", *sizes, "--repeats", repeats,
            "--json", str(infer_json)])

    lines = ["", "=" * 78, "kstyle benchmarks"]
    combined = {}
    if train_json.is_file() and not args.skip_train:
        combined["train"] = json.loads(train_json.read_text())
        lines += ["", *train_table(combined["train"])]
    if infer_json.is_file() and not args.skip_inference:
        combined["inference"] = json.loads(infer_json.read_text())
        lines += ["", *inference_table(combined["inference"])]
    lines += ["", "For scale (not measured here):", *(f"- {r}" for r in REFERENCES)]
    lines.append("wall time: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items()))
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(combined, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
