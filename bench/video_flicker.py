"""Flicker of stylized clips with temporal consistency on and off, per clip and model.

Usage:

    python bench/video_flicker.py [--model NAME=PATH ...] [--adain PATH --style IMAGE]
                                  [--clips FILE ...] [--frames N] [--json FILE]

Each model stylizes each clip twice with ``kstyle.inference.video.stylize_video``, as
``kstyle stylize clip.mp4`` does: frame by frame (``--no-temporal``) and with temporal
consistency (the default: statistics held over the clip, the previous result carried
along the optical flow). ``kstyle.inference.video.flicker`` then scores each result
against the clip, as ``kstyle eval --video`` does: the warping error of Lai et al. (ECCV
2018) and the mean distance from the input. The table gives both, and the ratios of
temporal to frame by frame: the issue's bar is a warping error at most 0.6x, with the
distance within 10%.

Clips: those in ../shared/data/video/ by default (``--frames N``: the first N frames of
each, re-encoded once; both runs read that copy). Models: ``--model NAME=PATH``, any run
folder or file ``kstyle.load`` reads (default: ``quickstart=saved_models/quickstart``, the
README's first model), and ``--adain PATH`` with ``--style IMAGE`` for an AdaIN model.

This script prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "video"


def cpu_name() -> str:
    if not os.path.exists("/proc/cpuinfo"):
        return "?"
    return next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                 if line.startswith("model name")), "?")


def first_frames(clip: Path, frames: int | None, folder: Path) -> Path:
    """``clip``, or a copy of its first ``frames`` frames."""
    from kstyle.data.video import clip_info, read_frames, write_video

    if not frames or clip_info(clip).frames <= frames:
        return clip
    short = folder / f"{clip.stem}_{frames}{clip.suffix}"
    write_video((f for _, f in zip(range(frames), read_frames(clip), strict=False)), clip,
                short, log=lambda *_: None)
    return short


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[],
                        help="NAME=PATH of a model kstyle.load reads (repeatable)")
    parser.add_argument("--adain", help="an AdaIN model (run folder or file)")
    parser.add_argument("--style", help="the style image for --adain")
    parser.add_argument("--clips", nargs="+", type=Path,
                        default=sorted(SHARED.glob("*.mp4")) if SHARED.is_dir() else [])
    parser.add_argument("--frames", type=int, help="the first N frames of each clip")
    parser.add_argument("--carry", type=float, default=0.5)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if not args.clips:
        parser.error(f"no clips: none in {SHARED}; give --clips")
    if bool(args.adain) != bool(args.style):
        parser.error("--adain and --style go together")

    import kstyle
    from kstyle.inference.video import flicker, stylize_video

    models = dict(m.split("=", 1) for m in args.model) or {
        "quickstart": str(ROOT / "saved_models" / "quickstart")}
    runs = [(name, kstyle.load(path), {}) for name, path in models.items()]
    if args.adain:
        runs.append((f"adain+{Path(args.style).stem}", kstyle.load(args.adain),
                     {"style": args.style}))
    print(f"kstyle video flicker: {os.cpu_count()} CPUs ({cpu_name()}), carry {args.carry}",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for clip in args.clips:
            source = first_frames(clip, args.frames, Path(folder))
            for name, stylizer, inputs in runs:
                scores = {}
                for temporal in (False, True):
                    out = Path(folder) / f"{clip.stem}_{name}_{temporal}.mp4"
                    start = time.perf_counter()
                    stylize_video(stylizer, source, out, temporal=temporal,
                                  carry=args.carry, progress=False, log=lambda *_: None,
                                  **inputs)
                    scores[temporal] = {**flicker(source, out),
                                        "seconds": time.perf_counter() - start}
                off, on = scores[False], scores[True]
                row = {"clip": clip.name, "model": name, "frames": on["frames"],
                       "off": off, "on": on,
                       "warping_ratio": on["warping_error"] / max(off["warping_error"], 1e-12),
                       "distance_ratio": on["input_distance"]
                       / max(off["input_distance"], 1e-12)}
                rows.append(row)
                print(f"{clip.name:22s} {name:28s} {row['frames']:4d} frames: warping error "
                      f"{off['warping_error']:.4f} -> {on['warping_error']:.4f} "
                      f"({row['warping_ratio']:.2f}x), distance from input "
                      f"{off['input_distance']:.3f} -> {on['input_distance']:.3f} "
                      f"({row['distance_ratio']:.2f}x)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
