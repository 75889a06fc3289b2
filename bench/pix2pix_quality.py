"""pix2pix quality after a fixed number of steps: L1 / PSNR / SSIM, untrained vs trained.

Trains a recipe for exactly ``--steps`` steps into a temporary run folder, scoring the
translator on the held-back split before and after, and prints both rows.

    python bench/pix2pix_quality.py                              # quickstart, synthetic pairs
    python bench/pix2pix_quality.py --recipe recipes/pix2pix.toml \\
        --data ../shared/data/paired_person_outline --direction a2b --steps 500

Quality figures only; speed lives in bench/train_speed.py.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(REPO / "recipes" / "quickstart.toml"))
    parser.add_argument("--data", default=None, help="data.path override (a paired folder)")
    parser.add_argument("--direction", default=None, help="data.direction override")
    parser.add_argument("--steps", type=int, default=600, help="training steps")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="extra recipe overrides, table.key=value")
    parser.add_argument("--limit", type=int, default=None, help="score at most N val pairs")
    args = parser.parse_args(argv)

    from kstyle.evaluate import evaluate
    from kstyle.recipes import load_recipe
    from kstyle.train import Run

    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f'train.out_dir="{tmp}/run"', "train.epochs=1",
                     f"train.steps_per_epoch={args.steps}", "train.val_steps=0",
                     "train.lr_policy=constant", *args.overrides]
        if args.data:
            overrides.append(f'data.path="{args.data}"')
        if args.direction:
            overrides.append(f"data.direction={args.direction}")
        recipe = load_recipe(args.recipe, overrides)
        run = Run(recipe, log=lambda *_: None)
        run.save_translator()
        before = evaluate(run.dir, limit=args.limit)
        start = time.time()
        run.fit(verbose=0)
        seconds = time.time() - start
        after = evaluate(run.dir, limit=args.limit)

    m = recipe.model
    print(f"recipe {args.recipe}: {m.kind}, {recipe.data.image_size} px, base_filters "
          f"{m.base_filters}, norm {getattr(m, 'norm', '-')}, batch {recipe.data.batch_size}")
    print(f"data {after['data']} [{after['split']}], direction {recipe.data.direction}, "
          f"n = {after['n']} held-back pairs")
    print(f"{'model':<26}{'L1':>8}{'PSNR dB':>10}{'SSIM':>8}")
    for name, s in (("untrained", before), (f"after {args.steps} steps", after)):
        print(f"{name:<26}{s['l1']:>8.4f}{s['psnr']:>10.2f}{s['ssim']:>8.4f}")
    print(f"training took {seconds:.0f} s ({seconds / args.steps * 1000:.0f} ms/step)")


if __name__ == "__main__":
    main()
