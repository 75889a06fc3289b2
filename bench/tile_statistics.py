"""How far tiled stylizing is from one pass over the whole image, by the size of the copy
the whole-image statistics are measured on.

Usage:

    python bench/tile_statistics.py [--size 2048x1536] [--tile 512] [--stats 1024 768 592 512]

A photo (the first of ../shared/data/content, else seeded noise) resized to ``--size``
goes once through CycleGAN's ResNet generator (9 blocks, 64 filters, instance norm,
seeded random weights) in one pass, and once tiled for each statistics size (the long
side of the copy; ``0``: the whole image itself). The table gives the PSNR of each tiled
result against the one pass, and the copy's pixels as a multiple of one tile's.

This script prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "content"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="2048x1536")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--stats", type=int, nargs="+", default=[0, 1024, 768, 592, 512])
    args = parser.parse_args()

    import keras
    import numpy as np
    from PIL import Image

    from kstyle.nets import resnet_generator
    from kstyle.nets.tiling import TiledTranslator
    from kstyle.nets.uint8 import Uint8Translator

    width, height = map(int, args.size.split("x"))
    sources = sorted(SHARED.glob("*.jpg")) if SHARED.is_dir() else []
    if sources:
        photo = np.asarray(Image.open(sources[0]).convert("RGB").resize((width, height)))
    else:
        photo = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
    keras.utils.set_random_seed(0)
    net = resnet_generator(base_filters=64, num_blocks=9, norm="instance")
    whole = np.asarray(Uint8Translator(net, 4)(photo[None]))[0].astype(np.float64)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?") if os.path.exists("/proc/cpuinfo") \
        else "?"
    print(f"tiled vs one pass, {width}x{height} "
          f"({'real photo' if sources else 'noise'}), tiles of {args.tile} px, "
          f"{os.cpu_count()} CPUs ({cpu})")
    for stats in args.stats:
        size = stats or max(width, height)
        tiled = TiledTranslator(net, 4, tile=args.tile, overlap=64, stats_size=size)
        out = tiled(photo).astype(np.float64)
        mse = np.mean((out - whole) ** 2)
        psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
        scale = min(1.0, size / max(width, height))
        pixels = round(width * scale) * round(height * scale)
        print(f"statistics at {size:5d} px ({pixels / args.tile**2:5.2f} tiles): "
              f"PSNR {psnr:5.1f} dB against one pass", flush=True)


if __name__ == "__main__":
    main()
