"""Times one training step of each kstyle model, and of TensorFlow's pix2pix tutorial.

Usage:

    python bench/train_speed.py [--configs NAME ...] [--steps N] [--warmup 3] [--json FILE]

Each configuration runs in its own subprocess, one after the other, so that peak memory is
per configuration, XLA caches do not carry over and two runs never share the cores:

- `pix2pix`, `pix2pix-xla`: `Pix2Pix.build_from_options()` (U-Net with 8 downsamplings and
  64 base filters, batch norm, 70x70 PatchGAN, vanilla GAN loss, lambda_l1=100) compiled
  with `jit_compile=False` / `True` and driven by `model.fit`, as users train it. A
  callback times each batch from `on_train_batch_begin` to `on_train_batch_end`.
- `tutorial`, `tutorial-xla`: the `train_step` of TensorFlow's pix2pix tutorial
  (`bench/tutorial_pix2pix.py`) under `tf.function(jit_compile=False / True)`, called in
  a Python loop, each step timed from fetching its batch to having its loss as a NumPy
  value: the yardstick for pix2pix.
- `cyclegan`, `cyclegan-xla`: the reference CycleGAN at 256 px (two 9-block ResNet
  generators, two 70x70 PatchGANs, LSGAN, 50-image pools); `cyclegan-128`: 128 px with
  6 blocks, the setting a CPU user can afford; `cut-128`, `fastcut-128`: CUT and FastCUT
  at the same size with the same generator (one generator, one PatchGAN, PatchNCE).
- `cdae`, `cdae-xla`: the cross-domain autoencoder GAN at 256 px (when registered).
- `pix2pix-bf16`, `cyclegan-bf16`, `cyclegan-128-bf16`: the same models built under the
  `mixed_bfloat16` dtype policy, as `kstyle fit` does for `train.precision`.

All read batch-1 pairs of seeded random images in [-1, 1] from the same repeated,
in-memory `tf.data` pipeline (batched with `drop_remainder=True` and prefetched, like
`kstyle.data`). The first `--warmup` steps (tracing, XLA compilation) are not timed.
Reported per configuration: median and mean ms/step over the timed steps, images/s from
the median, and the process's peak resident memory (`ru_maxrss`).

This script prints figures; it asserts nothing. Tests never time things.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent

BATCH_SIZE = 1
SEED = 0
POOL = 4  # Distinct random pairs the dataset cycles through.

# name -> what to time: implementation, model kind and options, jit_compile, size, steps.
CONFIGS = {
    "pix2pix": dict(impl="kstyle", kind="pix2pix", jit=False, size=256, steps=40),
    "pix2pix-xla": dict(impl="kstyle", kind="pix2pix", jit=True, size=256, steps=40),
    "tutorial": dict(impl="tutorial", jit=False, size=256, steps=40),
    "tutorial-xla": dict(impl="tutorial", jit=True, size=256, steps=40),
    "cyclegan": dict(impl="kstyle", kind="cyclegan", jit=False, size=256, steps=8),
    "cyclegan-xla": dict(impl="kstyle", kind="cyclegan", jit=True, size=256, steps=8),
    "cyclegan-128": dict(impl="kstyle", kind="cyclegan", options={"num_blocks": 6},
                         jit=False, size=128, steps=20),
    "cut-128": dict(impl="kstyle", kind="cut", options={"num_blocks": 6}, jit=False,
                    size=128, steps=20),
    "fastcut-128": dict(impl="kstyle", kind="fastcut", options={"num_blocks": 6}, jit=False,
                        size=128, steps=20),
    "pix2pix-bf16": dict(impl="kstyle", kind="pix2pix", jit=False, size=256, steps=40,
                         precision="mixed_bfloat16"),
    "cyclegan-bf16": dict(impl="kstyle", kind="cyclegan", jit=False, size=256, steps=8,
                          precision="mixed_bfloat16"),
    "cyclegan-128-bf16": dict(impl="kstyle", kind="cyclegan", options={"num_blocks": 6},
                              jit=False, size=128, steps=20, precision="mixed_bfloat16"),
    "cdae": dict(impl="kstyle", kind="cdae", jit=False, size=256, steps=15),
    "cdae-xla": dict(impl="kstyle", kind="cdae", jit=True, size=256, steps=15),
}

# Figures measured elsewhere on this kind of machine, printed for scale only.
REFERENCE_LINE = (
    "For scale (not measured here): PyTorch reference pix2pix iteration ~650-700 ms "
    "(1.4-1.5 img/s, 1.4 GiB); TF tutorial step ~645 ms without XLA, ~740 ms with; "
    "PyTorch reference CycleGAN iteration at 256 px ~8.3-9.1 s (0.11-0.12 img/s, 3.2 GiB)."
)


# --------------------------------------------------------------------------------------
# Worker: one configuration, in its own process.
# --------------------------------------------------------------------------------------


def _dataset(size: int):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(SEED)
    shape = (POOL, size, size, 3)
    real_a = rng.uniform(-1.0, 1.0, shape).astype("float32")
    real_b = rng.uniform(-1.0, 1.0, shape).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((real_a, real_b)).repeat()
    return ds.batch(BATCH_SIZE, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _time_kstyle(jit_compile: bool, size: int, total: int, kind: str = "pix2pix",
                 options: dict | None = None, precision: str = "float32",
                 callbacks: tuple = ()) -> list[float]:
    import keras

    sys.path.insert(0, str(REPO_ROOT))
    from kstyle.models import KINDS, get_model_class
    from kstyle.optimizers import FusedAdam

    class BatchTimer(keras.callbacks.Callback):
        """Seconds from `on_train_batch_begin` to `on_train_batch_end`, per batch."""

        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self._start = 0.0

        def on_train_batch_begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            # Reading a logged value waits for the step, should dispatch ever be async.
            float(logs["g_loss"])
            self.seconds.append(time.perf_counter() - self._start)

    from kstyle.precision import dtype_policy

    with dtype_policy(precision):  # as `kstyle fit` builds it for train.precision
        # The kind's own options (fastcut's defaults are not cut's).
        model = get_model_class(kind).from_options(KINDS[kind](**(options or {})))
    model.compile(
        g_optimizer=FusedAdam(2e-4, beta_1=0.5),
        d_optimizer=FusedAdam(2e-4, beta_1=0.5),
        jit_compile=jit_compile)
    # As `kstyle fit` builds it: optimizer slots and per-replica state exist before the
    # first step, so that the step is traced once (a step that creates variables is
    # traced twice by tf.function).
    model.build_optimizers()
    model.build_state(size)
    timer = BatchTimer()
    model.fit(_dataset(size), epochs=1, steps_per_epoch=total, callbacks=[timer, *callbacks],
              verbose=0)
    return timer.seconds


def _time_tutorial(jit_compile: bool, size: int, total: int) -> list[float]:
    import tensorflow as tf

    if size != 256:
        raise ValueError(f"the tutorial's networks take 256x256 images only, got {size}.")
    sys.path.insert(0, str(BENCH_DIR))
    import tutorial_pix2pix

    train_step = tutorial_pix2pix.make_train_step(jit_compile=jit_compile)
    seconds = []
    iterator = iter(_dataset(size))
    for step in range(total):
        start = time.perf_counter()
        input_image, target = next(iterator)
        losses = train_step(input_image, target, tf.constant(step, tf.int64))
        losses[0].numpy()
        seconds.append(time.perf_counter() - start)
    return seconds


def _busy_ticks() -> int | None:
    # Non-idle time of all cores since boot, in clock ticks (Linux only).
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle, iowait = fields[3], fields[4]
    return sum(fields[:8]) - idle - iowait


def run_worker(name: str, warmup: int, steps: int, size: int | None = None) -> dict:
    """Times configuration `name` in this process and returns its figures."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(SEED)
    config = CONFIGS[name]
    implementation, jit_compile = config["impl"], config["jit"]
    size = size or config["size"]
    busy_before, own_before, wall_before = _busy_ticks(), os.times(), time.monotonic()
    if implementation == "kstyle":
        seconds = _time_kstyle(jit_compile, size, warmup + steps, config["kind"],
                               config.get("options"), config.get("precision", "float32"))
    else:
        seconds = _time_tutorial(jit_compile, size, warmup + steps)
    busy_after, own_after, wall = _busy_ticks(), os.times(), time.monotonic() - wall_before
    other_cpu_share = None
    if busy_before is not None and busy_after is not None:
        # CPU time the whole machine spent busy minus this process's own, as a share of
        # all cores over the run: how much other processes competed with it.
        busy_s = (busy_after - busy_before) / os.sysconf("SC_CLK_TCK")
        own_s = (own_after.user + own_after.system) - (own_before.user + own_before.system)
        other_cpu_share = max(0.0, busy_s - own_s) / (wall * (os.cpu_count() or 1))
    timed_ms = [1000.0 * s for s in seconds[warmup:]]
    median_ms = statistics.median(timed_ms)
    return {
        "config": name,
        "implementation": implementation,
        "jit_compile": jit_compile,
        "size": size,
        "batch_size": BATCH_SIZE,
        "warmup": warmup,
        "steps": steps,
        "median_ms": median_ms,
        "mean_ms": statistics.fmean(timed_ms),
        "images_per_s": 1000.0 * BATCH_SIZE / median_ms,
        # Linux reports ru_maxrss in KiB.
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "first_step_s": seconds[0],
        "other_cpu_share": other_cpu_share,
        "step_ms": timed_ms,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


# --------------------------------------------------------------------------------------
# Parent: runs every configuration and prints the table.
# --------------------------------------------------------------------------------------


def run_json_worker(command: list[str], result_file: Path, label: str) -> tuple[dict, float]:
    """Runs a worker process that writes its figures to ``result_file`` as JSON.

    Returns ``(figures, seconds)``; when it fails, the figures are ``{"error",
    "stderr_tail"}`` and the tail of its stderr is printed.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    wall_s = time.perf_counter() - start
    if proc.returncode != 0 or not result_file.exists():
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        print(f"  {label}: failed (exit {proc.returncode})\n{tail}", file=sys.stderr)
        return {"error": f"exit {proc.returncode}", "stderr_tail": tail}, wall_s
    return json.loads(result_file.read_text()), wall_s


def _run_config(name: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        command = [
            sys.executable, str(Path(__file__).resolve()), "--worker", name,
            "--steps", str(args.steps or CONFIGS[name]["steps"]),
            "--warmup", str(args.warmup), "--json", str(result_file),
        ]
        if args.size:
            command += ["--size", str(args.size)]
        result, wall_s = run_json_worker(command, result_file, name)
        if "error" in result:
            return {"config": name, **result}
    result["wall_s"] = wall_s
    print(f"  {name}: done in {wall_s:.0f} s", file=sys.stderr)
    return result


def _available(name: str) -> bool:
    """Whether a configuration's model kind is registered in this checkout."""
    kind = CONFIGS[name].get("kind")
    if kind is None:
        return True
    sys.path.insert(0, str(REPO_ROOT))
    from kstyle.models import KINDS

    return kind in KINDS


def _cpu_count() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return f"{os.cpu_count()} (usable: {usable})" if usable else str(os.cpu_count())


def _table(results: list[dict]) -> str:
    header = ("config", "px", "ms/step median", "mean", "images/s", "peak RSS GiB")
    rows = []
    for r in results:
        if "error" in r:
            rows.append((r["config"], "", "failed", "", "", ""))
        else:
            rows.append((r["config"], str(r["size"]), f"{r['median_ms']:.1f}",
                         f"{r['mean_ms']:.1f}", f"{r['images_per_s']:.2f}",
                         f"{r['peak_rss_gib']:.2f}"))
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]

    def line(cells):
        first = f"{cells[0]:<{widths[0]}}"
        rest = [f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:])]
        return " | ".join([first, *rest])

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def _ratios(results: list[dict]) -> list[str]:
    by_name = {r["config"]: r for r in results if "error" not in r}
    lines = []
    for suffix, label in (("", "without XLA"), ("-xla", "with XLA")):
        ours, theirs = by_name.get(f"pix2pix{suffix}"), by_name.get(f"tutorial{suffix}")
        if ours and theirs:
            ratio = ours["median_ms"] / theirs["median_ms"]
            verdict = "slower" if ratio > 1 else "faster"
            lines.append(f"kstyle pix2pix / tutorial, {label}: {ratio:.2f}x median step time "
                         f"(kstyle {abs(ratio - 1) * 100:.0f}% {verdict})")
    return lines


def run_all(args: argparse.Namespace) -> list[dict]:
    """Runs the selected configurations one after the other and prints the report."""
    names = args.configs or [n for n in CONFIGS if _available(n)]
    print(f"training step, batch {BATCH_SIZE}, {args.warmup} warmup steps, then "
          f"{args.steps or 'per-config'} timed steps: {', '.join(names)}", file=sys.stderr)
    results = [_run_config(name, args) for name in names]

    print(f"TensorFlow {metadata.version('tensorflow')}, Keras {metadata.version('keras')}, "
          f"Python {platform.python_version()}, CPUs {_cpu_count()}, "
          f"{platform.machine()}")
    print(f"batch {BATCH_SIZE}, random images (seed {SEED}), {args.warmup} warmup steps; "
          "timed steps: " + ", ".join(f"{r['config']} {r.get('steps', '?')}" for r in results))
    print()
    print(_table(results))
    print()
    for line in _ratios(results):
        print(line)
    print(REFERENCE_LINE)
    busy = [r for r in results if (r.get("other_cpu_share") or 0.0) > 0.05]
    if busy:
        shares = ", ".join(f"{r['config']} {100 * r['other_cpu_share']:.0f}%" for r in busy)
        print(f"Warning: other processes used the CPUs during some runs ({shares} of all "
              "cores); those figures are inflated.")

    if args.json:
        report = {
            "tensorflow": metadata.version("tensorflow"),
            "keras": metadata.version("keras"),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "results": results,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per config (default: each config's own)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--size", type=int, default=None,
                        help="image height and width (default: each config's own)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS),
                        help="run only these configurations (default: all)")
    parser.add_argument("--worker", choices=list(CONFIGS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if (args.steps is not None and args.steps < 1) or args.warmup < 1:
        parser.error("--steps and --warmup must be at least 1")

    if args.worker:
        result = run_worker(args.worker, args.warmup, args.steps, args.size)
        Path(args.json).write_text(json.dumps(result))
        return 0
    results = run_all(args)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
