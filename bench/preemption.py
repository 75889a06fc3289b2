"""The grace period each shipped recipe needs: from SIGTERM to a saved checkpoint and exit.

Container runtimes and batch schedulers send SIGTERM, then SIGKILL after a grace period
(`docker stop`: 10 s; Kubernetes: `terminationGracePeriodSeconds`, 30 s by default; Slurm:
`KillWait`, 30 s). `kstyle fit` finishes the step it is on, writes a checkpoint and exits:
the grace period must cover one step and one checkpoint. This runs each recipe of
`recipes/` as shipped (its networks, image size and batch), on the built-in synthetic data
so that no download is needed (the fast stylizers with a generated style image and
random-weight VGG19), sends SIGTERM once a few steps are logged, and prints the time to
exit, the step time and the checkpoint size.

    python bench/preemption.py                       # every recipe
    python bench/preemption.py --recipes quickstart pix2pix
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fixtures(folder: Path) -> dict:
    """A style image and random VGG19 weights for the fast stylizers (no download here)."""
    import numpy as np
    from PIL import Image

    style = folder / "style.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(style)
    vgg = folder / "vgg19.weights.h5"
    subprocess.run([sys.executable, "-c",
                    "import keras, sys; keras.applications.VGG19(include_top=False, "
                    "weights=None).save_weights(sys.argv[1])", str(vgg)], check=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return {"style": style, "vgg": vgg}


def measure(recipe: Path, folder: Path, extra: dict, steps: int) -> dict:
    out = folder / recipe.stem
    sets = ["data.source=synthetic", "data.synthetic_count=64", "train.epochs=1000",
            "train.val_steps=0", "train.num_samples=0", f'train.out_dir="{out}"']
    if "fast_style" in recipe.stem:
        sets += [f'model.style="{extra["style"]}"', f'model.vgg_weights="{extra["vgg"]}"']
    command = [sys.executable, "-c", "from kstyle.cli import run; run()", "fit", "--quiet",
               str(recipe), *[a for s in sets for a in ("--set", s)]]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    log = out / "steps.csv"
    seen, times = 0, []  # (when a row appeared, its step): steps.csv logs every few steps
    while seen < steps:
        if proc.poll() is not None:
            raise SystemExit(f"{recipe.name}: fit ended early:\n{proc.stdout.read()}")
        rows = log.read_text().splitlines()[1:] if log.is_file() else []
        if len(rows) > seen:
            times.append((time.perf_counter(), int(rows[-1].split(",")[0])))
            seen = len(rows)
        time.sleep(0.05)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate()
    exit_seconds = time.perf_counter() - sent
    checkpoints = sorted((out / "checkpoints").glob("step_*"))
    size = sum(f.stat().st_size for f in checkpoints[-1].iterdir()) if checkpoints else 0
    gaps = [(t2 - t1) / (s2 - s1) for (t1, s1), (t2, s2) in zip(times, times[1:]) if s2 > s1]
    return {"recipe": recipe.stem, "exit_code": proc.returncode, "exit_s": exit_seconds,
            "step_s": statistics.median(gaps) if gaps else float("nan"),
            "checkpoint_mib": size / 2**20,
            "stopped": any(line.startswith("Stopped by SIGTERM") for line in output.splitlines())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", default=None,
                        help="recipe names (default: every file of recipes/)")
    parser.add_argument("--steps", type=int, default=3,
                        help="rows of steps.csv (logged every few steps) before SIGTERM")
    args = parser.parse_args(argv)
    names = args.recipes or sorted(p.stem for p in (REPO / "recipes").glob("*.toml"))
    with tempfile.TemporaryDirectory(prefix="kstyle-preemption-") as tmp:
        folder = Path(tmp)
        extra = fixtures(folder) if any("fast_style" in n for n in names) else {}
        rows = [measure(REPO / "recipes" / f"{name}.toml", folder, extra, args.steps)
                for name in names]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "unknown CPU")
    from kstyle.precision import choose

    precision, why = choose("auto")
    print(f"\nSIGTERM to exit, {os.cpu_count()} cores of {cpu}; train.precision as shipped: "
          f"{precision} ({why})")
    print(f"{'recipe':20} {'exit s':>7} {'step s':>7} {'ckpt MiB':>9} {'code':>5} saved")
    for r in rows:
        print(f"{r['recipe']:20} {r['exit_s']:7.1f} {r['step_s']:7.2f} "
              f"{r['checkpoint_mib']:9.1f} {r['exit_code']:5d} {'yes' if r['stopped'] else 'NO'}")


if __name__ == "__main__":
    main()
