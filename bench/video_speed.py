"""Frames per second of stylizing video, for each model kind, with temporal consistency on
and off; and the peak memory of a clip against one twice as long.

Usage:

    python bench/video_speed.py [--sizes 360 720] [--frames 40] [--kinds resnet unet adain]
    python bench/video_speed.py --memory [--frames 60]

The clip is the real one in ../shared/data/video/ (cockatoo_720p.mp4, its first
``--frames`` frames, resized to each height), else moving shapes drawn here. The models
have seeded random weights (the time does not depend on them): ``resnet``, CycleGAN's
9-block ResNet generator (64 filters, instance norm; the fast stylizers' shape);
``unet``, pix2pix's 8-level U-Net (64 filters, instance norm); ``adain``, the AdaIN
stylizer (VGG19 encoder to relu4_1, full decoder) with a style image. Each (kind, size,
temporal) runs ``kstyle.inference.video.stylize_video`` from file to file, as
``kstyle stylize clip.mp4`` does (decoding, the model, optical flow, encoding); the
figure is frames over wall time, after one untimed warm-up frame.

``--memory`` runs the ResNet at 360p on the clip and on the clip twice over, each in its
own process, and prints each one's peak resident memory: streaming means they should
agree.

This script prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "cockatoo_720p.mp4"


def cpu_name() -> str:
    if not os.path.exists("/proc/cpuinfo"):
        return "?"
    return next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                 if line.startswith("model name")), "?")


def make_clip(path: Path, height: int, frames: int, repeat: int = 1) -> str:
    """A clip of ``frames`` frames (``repeat`` times over) at ``height`` px, 16:9."""
    import cv2

    from kstyle.data.video import read_frames, write_video

    width = round(height * 16 / 9 / 2) * 2
    if SHARED.is_file():
        source = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)
                  for _, f in zip(range(frames), read_frames(SHARED), strict=False)]
        origin = "cockatoo_720p.mp4"
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from clips import moving_square

        source = [moving_square(t, height, width) for t in range(frames)]
        origin = "moving shapes"
    template = path.with_name(f"template_{height}.mp4")
    if not template.exists():
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from clips import write_clip

        write_clip(template, frames=2, size=(height, width), rate=20, audio=None)
    write_video([f for _ in range(repeat) for f in source], template, path, log=lambda *_: None)
    return origin


def stylizer_of(kind: str):
    import keras
    import numpy as np

    import kstyle
    from kstyle.nets import resnet_generator, unet_generator

    keras.utils.set_random_seed(0)
    if kind == "resnet":
        net = resnet_generator(base_filters=64, num_blocks=9, norm="instance")
        return kstyle.Stylizer.from_network(net, {"size_multiple": 4}), {}
    if kind == "unet":
        net = unet_generator(base_filters=64, num_downs=8, norm="instance")
        return kstyle.Stylizer.from_network(net, {"size_multiple": 256}), {}
    from kstyle.nets.adain import adain_decoder, adain_encoder, adain_stylizer

    net = adain_stylizer(adain_encoder(), adain_decoder(name="decoder"))
    style = np.random.default_rng(1).integers(0, 256, (256, 256, 3), np.uint8)
    return kstyle.Stylizer.from_network(net, {"kind": "adain"}), {"style": style}


def speed(kinds, sizes, frames) -> list[dict]:
    from kstyle.inference.video import stylize_video

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        clips = {h: Path(folder) / f"clip_{h}.mp4" for h in sizes}
        origin = {h: make_clip(clips[h], h, frames) for h in sizes}
        for kind in kinds:
            stylizer, inputs = stylizer_of(kind)
            for h in sizes:
                for temporal in (False, True):
                    # One frame first: tracing is not what is timed.
                    warm = Path(folder) / f"warm_{h}.mp4"
                    make_clip(warm, h, 1) if not warm.exists() else None
                    stylize_video(stylizer, warm, Path(folder) / "w.mp4", temporal=temporal,
                                  progress=False, log=lambda *_: None, **inputs)
                    start = time.perf_counter()
                    stylize_video(stylizer, clips[h], Path(folder) / "out.mp4",
                                  temporal=temporal, progress=False, log=lambda *_: None,
                                  **inputs)
                    seconds = time.perf_counter() - start
                    row = {"kind": kind, "height": h, "temporal": temporal, "frames": frames,
                           "fps": frames / seconds, "clip": origin[h]}
                    rows.append(row)
                    print(f"{kind:6s} {h:4d}p  temporal {'on ' if temporal else 'off'}: "
                          f"{row['fps']:6.2f} frames/s", flush=True)
    return rows


def memory_worker(frames: int, repeat: int) -> dict:
    from kstyle.inference.video import stylize_video

    stylizer, inputs = stylizer_of("resnet")
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        make_clip(clip, 360, frames, repeat)
        stylize_video(stylizer, clip, Path(folder) / "out.mp4", progress=False,
                      log=lambda *_: None, **inputs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"frames": frames * repeat, "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[360, 720])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--kinds", nargs="+", default=["resnet", "unet", "adain"],
                        choices=["resnet", "unet", "adain"])
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(memory_worker(*args.worker)))
        return
    print(f"kstyle video: {os.cpu_count()} CPUs ({cpu_name()})", flush=True)
    if args.memory:
        rows = []
        for repeat in (1, 2):
            done = subprocess.run([sys.executable, __file__, "--worker", str(args.frames),
                                   str(repeat)], capture_output=True, text=True)
            if done.returncode:
                print(f"failed: {done.stderr.strip()[-500:]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"resnet 360p, {row['frames']:4d} frames: peak {row['peak_gib']:.2f} GiB",
                  flush=True)
    else:
        rows = speed(args.kinds, args.sizes, args.frames)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
