"""Peak memory of stylizing large photos tile by tile, with a ResNet and a U-Net model.

Usage:

    python bench/tile_memory.py [--models resnet unet] [--sizes 4000x3000 8000x6000 12000x9000]
                                [--tile 512] [--json FILE]

Each (model, size) runs in its own process, so that its peak resident memory (the
process's ``ru_maxrss``) is its own: the network is built (CycleGAN's 9-block ResNet
generator, 64 filters, instance norm; pix2pix's 8-level U-Net, 64 filters, instance
norm), a photo of that size is written as a PNG by the parent process (a real photo from
../shared/data/content resized to it when the folder is there, else seeded noise), and
``kstyle.stylize`` reads it, stylizes it in tiles of ``--tile`` px and writes the result,
as a user would. The
photo itself is ``width x height x 3`` bytes; the table gives the peak in GiB and as a
multiple of that.

This script prints figures; it asserts nothing. Tests never time or measure memory.
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

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "content"
MODELS = ("resnet", "unet")


def make_photo(width: int, height: int, folder: Path) -> Path:
    """The photo of a size, written once (in the parent process: making it is not what a
    worker's peak should count)."""
    import numpy as np
    from PIL import Image

    photo = folder / f"photo_{width}x{height}.png"
    if not photo.exists():
        sources = sorted(SHARED.glob("*.jpg")) if SHARED.is_dir() else []
        if sources:
            image = Image.open(sources[0]).convert("RGB").resize((width, height))
        else:
            image = Image.fromarray(np.random.default_rng(0).integers(
                0, 256, (height, width, 3), np.uint8))
        image.save(photo)
    return photo


def worker(model: str, width: int, height: int, tile: int, folder: Path) -> dict:
    import kstyle
    from kstyle.nets import resnet_generator, unet_generator

    photo = folder / f"photo_{width}x{height}.png"
    if model == "resnet":
        net, multiple = resnet_generator(base_filters=64, num_blocks=9, norm="instance"), 4
    else:
        net, multiple = unet_generator(base_filters=64, num_downs=8, norm="instance"), 256
    stylizer = kstyle.Stylizer.from_network(net, {"size_multiple": multiple}, tile=tile)
    start = time.perf_counter()
    kstyle.stylize(str(photo), model=stylizer, out=folder / f"out_{model}.png")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"model": model, "width": width, "height": height, "tile": tile,
            "peak_gib": peak / 2**30, "photo_gib": width * height * 3 / 2**30,
            "seconds": seconds, "source": "real photo" if SHARED.is_dir() else "noise"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--sizes", nargs="+", default=["4000x3000", "8000x6000",
                                                       "12000x9000"])
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        model, size, tile, folder = args.worker
        width, height = map(int, size.split("x"))
        print(json.dumps(worker(model, width, height, int(tile), Path(folder))))
        return
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?") if os.path.exists("/proc/cpuinfo") \
        else "?"
    print(f"kstyle tile memory: tiles of {args.tile} px, {os.cpu_count()} CPUs ({cpu})",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            make_photo(*map(int, size.split("x")), Path(folder))
            for model in args.models:
                done = subprocess.run(
                    [sys.executable, __file__, "--worker", model, size, str(args.tile),
                     folder], capture_output=True, text=True)
                if done.returncode:
                    print(f"{model} {size}: failed: {done.stderr.strip()[-500:]}", flush=True)
                    continue
                row = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(f"{model:7s} {size:>11s}: peak {row['peak_gib']:.2f} GiB "
                      f"({row['peak_gib'] / row['photo_gib']:.1f}x the photo), "
                      f"{row['seconds']:.0f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
