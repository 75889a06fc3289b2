"""Neural style transfer speed: Gatys optimization steps and the fast stylizer's forward pass.

Usage:

    python bench/style_speed.py [--parts gatys converge fast losses] [--steps 10]
                                [--vgg-weights FILE] [--json FILE]

Parts:

- `gatys`: seconds per optimization step (``kstyle.models.gatys.Gatys``, Adam on the
  pixels, VGG19 to block5_conv1, the TensorFlow tutorial's form) at 256 and 512 px, XLA off
  and on; warmup steps (tracing, compilation) are not timed.
- `converge`: wall time and steps until the total loss falls to half its first value,
  at 256 px from the content image (a fixed target, comparable between code versions).
- `fast`: milliseconds per image of the fast stylizer's transformer (Johnson et al.:
  32 filters, 5 residual blocks, resize-conv), batch 1, through ``kstyle.Stylizer``
  (uint8 in and out, compiled), at 256, 512 and 1024 px.
- `losses`: final content and style losses of each shared content photo with each shared
  style after a fixed number of steps at 256 px.

Content and style images come from ../shared/data/ (content/tubingen.jpg and
styles/starry_night_vangogh.jpg) when it is there, else from seeded synthetic images.

VGG19 weights: `--vgg-weights FILE`, else $KSTYLE_VGG19_WEIGHTS, else random weights
written to a temporary file (no ImageNet weights can be downloaded offline; speed does
not depend on the weights, but the loss values and the convergence time do: the output
says which weights were used).

This script prints figures; it asserts nothing. Tests never time things.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared" / "data"
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REFERENCE_LINE = (
    "For scale (not measured here): one Gatys step in TensorFlow's tutorial form ~430-470 ms "
    "at 256 px and 1.6-1.75 s at 512 px (XLA 10-30% slower); a pre-trained feed-forward ONNX "
    "stylizer under onnxruntime ~22-25 ms at 256, 90-97 ms at 512, 420-445 ms at 1024 px.")


def _images(size: int):
    """(content, style) float [1, H, W, 3] in [-1, 1], content's long side `size`."""
    import numpy as np
    import tensorflow as tf

    from kstyle.data.images import read_image, to_float

    content_path = SHARED / "content" / "tubingen.jpg"
    style_path = SHARED / "styles" / "starry_night_vangogh.jpg"
    if content_path.is_file() and style_path.is_file():
        content, style = read_image(content_path), read_image(style_path)
        source = "shared tubingen.jpg / starry_night_vangogh.jpg"
    else:
        rng = np.random.default_rng(0)
        content = rng.integers(0, 256, (384, 512, 3), dtype=np.uint8)
        style = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
        source = "synthetic noise images (no ../shared/data)"

    def scaled(image):
        image = to_float(image[None])
        h, w = image.shape[1:3]
        s = size / max(h, w)
        return tf.image.resize(image, (round(h * s), round(w * s)), antialias=True)

    return scaled(content), scaled(style), source


def _gatys(weights: str):
    from kstyle.models.gatys import Gatys

    return Gatys.build_from_options(vgg_weights=weights)


def _step_function(gatys, content, style, jit: bool):
    """A compiled Gatys step from the content image, as `Gatys.transfer` runs it."""
    step, _ = gatys.optimization_step(content, content, [style], jit_compile=jit)
    return lambda: step()["loss"]


def bench_gatys(weights, steps, warmup):
    gatys = _gatys(weights)
    rows = []
    for size in (256, 512):
        content, style, _ = _images(size)
        for jit in (False, True):
            step = _step_function(gatys, content, style, jit)
            for _ in range(warmup):
                float(step())
            times = []
            for _ in range(steps):
                start = time.perf_counter()
                float(step())
                times.append(time.perf_counter() - start)
            median = statistics.median(times)
            rows.append({"size": size, "shape": list(content.shape[1:3]), "jit": jit,
                         "median_ms": 1000 * median, "steps_per_s": 1 / median})
            print(f"  gatys {size:4d} px {'xla' if jit else '   '}: "
                  f"{1000 * median:7.1f} ms/step  {1 / median:5.2f} steps/s", flush=True)
    return rows


def bench_converge(weights, max_steps):
    gatys = _gatys(weights)
    content, style, _ = _images(256)
    step = _step_function(gatys, content, style, jit=False)
    start = time.perf_counter()
    first = float(step())
    target = first / 2
    loss, n = first, 1
    while loss > target and n < max_steps:
        loss = float(step())
        n += 1
    seconds = time.perf_counter() - start
    reached = loss <= target
    print(f"  converge 256 px: loss {first:.4g} -> {loss:.4g} (target {target:.4g}) in {n} "
          f"steps, {seconds:.1f} s{'' if reached else ' (NOT reached)'}", flush=True)
    return {"first_loss": first, "target": target, "final_loss": loss, "steps": n,
            "seconds": seconds, "reached": reached}


def bench_fast(repeats):
    import numpy as np

    from kstyle.api import Stylizer
    from kstyle.nets.resnet import resnet_generator

    net = resnet_generator(base_filters=32, num_blocks=5, outer_kernel=9, upsample="resize",
                           name="transformer")
    translator = Stylizer.from_network(net, {"size_multiple": 4})
    rng = np.random.default_rng(0)
    rows = []
    for size in (256, 512, 1024):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        for _ in range(2):
            translator(image)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            translator(image)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        rows.append({"size": size, "median_ms": 1000 * median})
        print(f"  fast stylizer {size:4d} px: {1000 * median:7.1f} ms/image", flush=True)
    return rows


def bench_losses(weights, steps):
    from kstyle.data.images import list_images, read_image, to_float

    if not SHARED.is_dir():
        print("  losses: skipped, no ../shared/data")
        return []
    gatys = _gatys(weights)
    rows = []
    import tensorflow as tf

    def scaled(path):
        image = to_float(read_image(path)[None])
        h, w = image.shape[1:3]
        s = 256 / max(h, w)
        return tf.image.resize(image, (round(h * s), round(w * s)), antialias=True)

    for content_path in list_images(SHARED / "content"):
        for style_path in list_images(SHARED / "styles"):
            gatys.transfer(scaled(content_path), [scaled(style_path)], steps=steps, verbose=0)
            logs = gatys.last_logs
            rows.append({"content": Path(content_path).name, "style": Path(style_path).name,
                         **logs})
            print(f"  {Path(content_path).stem:28s} x {Path(style_path).stem:34s} "
                  f"content {logs['content_loss']:9.4g}  style {logs['style_loss']:9.4g}  "
                  f"total {logs['loss']:9.4g}", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=["gatys", "converge", "fast"],
                        choices=["gatys", "converge", "fast", "losses"])
    parser.add_argument("--steps", type=int, default=10, help="timed Gatys steps per config")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=10, help="timed fast-stylizer passes")
    parser.add_argument("--max-steps", type=int, default=300, help="converge: step limit")
    parser.add_argument("--loss-steps", type=int, default=50, help="losses: steps per pair")
    parser.add_argument("--vgg-weights", default=None, help="VGG19 weights file")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    import tensorflow as tf

    from kstyle.nets.vgg import VGG19_WEIGHTS_ENV

    weights = args.vgg_weights or os.environ.get(VGG19_WEIGHTS_ENV)
    tmp = None
    if not weights:
        import keras

        tmp = tempfile.TemporaryDirectory()
        weights = os.path.join(tmp.name, "vgg19_random.weights.h5")
        keras.applications.VGG19(include_top=False, weights=None).save_weights(weights)
        which = "RANDOM VGG19 weights (no ImageNet weights offline): losses are not ImageNet's"
    else:
        which = f"VGG19 weights from {weights}"
    print(f"kstyle style transfer bench: TF {tf.__version__}, {os.cpu_count()} CPUs; {which}; "
          f"images: {_images(64)[2]}", flush=True)
    results = {"weights": which}
    if "gatys" in args.parts:
        results["gatys"] = bench_gatys(weights, args.steps, args.warmup)
    if "converge" in args.parts:
        results["converge"] = bench_converge(weights, args.max_steps)
    if "fast" in args.parts:
        results["fast"] = bench_fast(args.repeats)
    if "losses" in args.parts:
        results["losses"] = bench_losses(weights, args.loss_steps)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    results["peak_rss_gib"] = peak
    print(f"peak RSS {peak:.2f} GiB\n{REFERENCE_LINE}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
