"""kstyle against the PyTorch reference, side by side: training steps, inference, memory.

Usage:

    python bench/peer_speed.py --reference ../pytorch-CycleGAN-and-pix2pix \\
        --torch-python ../torchenv/bin/python [--workloads NAME ...] [--rounds 3]
        [--warmup 2] [--steps N] [--json FILE]

Workloads, float32, batch 1, seeded random images in [-1, 1]:

- `pix2pix-256`: one pix2pix update at 256 px (U-Net 256 with dropout, batch norm,
  70x70 PatchGAN, vanilla GAN + 100 L1, Adam). The reference: its own `Pix2PixModel`
  (`create_model` with its default pix2pix options), `set_input` + `optimize_parameters`.
  kstyle: `Pix2Pix.build_from_options()` driven by `model.fit`.
- `cyclegan-256`: one CycleGAN update at 256 px (two 9-block ResNets, two PatchGANs,
  LSGAN, cycle and identity losses, 50-image pools), the reference's `CycleGANModel`
  against kstyle's `CycleGAN`; `cyclegan-128`: 6 blocks at 128 px.
- `unet-256`, `unet-512`, `resnet9-256`, `resnet9-512`: a generator's forward pass in
  inference mode (the reference's `define_G(..., 'unet_256', 'batch', use_dropout=True)`
  / `'resnet_9blocks', 'instance'` under `eval()` and `torch.inference_mode()`; kstyle's
  `unet_generator()` / `resnet_generator()` called with `training=False` inside a
  `tf.function`): the network alone, no image decoding or value mapping.

Every (workload, implementation) pair runs in its own process, so that peak memory is its
own and nothing is cached across runs; the pairs are interleaved (reference, kstyle,
kstyle, reference, ...) for `--rounds` rounds, so that a slow spell of the machine hits
both. A kstyle training step is timed from `on_train_batch_begin` to `on_train_batch_end`
(through to a NumPy loss); a reference step from `set_input` to the end of
`optimize_parameters`; an inference call through to a NumPy (kstyle) or finished (torch)
output. The first step of each process is its own column (kstyle: tracing of the step
function; the reference: its first iteration); then `--warmup` untimed steps, then
`--steps` timed ones. Reported per workload: the median step over all rounds' timed steps
and kstyle's ratio to the reference, the median first step, and the largest peak resident
memory (`ru_maxrss`) of each side's processes.

Each side uses its framework's default thread count (printed). The reference is
junyanz/pytorch-CycleGAN-and-pix2pix at e19f22f, set up as `bench/README.md` says; its
code is imported unchanged. This script prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SEED = 0
POOL = 4  # distinct random pairs each training run cycles through
TARGET = 0.8  # the speed target: kstyle at or below this ratio of the reference's time

WORKLOADS = {
    "pix2pix-256": dict(task="train", model="pix2pix", size=256, steps=20),
    "cyclegan-256": dict(task="train", model="cyclegan", size=256, steps=4),
    "cyclegan-128": dict(task="train", model="cyclegan", blocks=6, size=128, steps=10),
    "unet-256": dict(task="infer", net="unet", size=256, steps=10),
    "unet-512": dict(task="infer", net="unet", size=512, steps=5),
    "resnet9-256": dict(task="infer", net="resnet9", size=256, steps=5),
    "resnet9-512": dict(task="infer", net="resnet9", size=512, steps=3),
}
IMPLEMENTATIONS = ("reference", "kstyle")


def _images(count: int, size: int, channels_first: bool):
    import numpy as np

    rng = np.random.default_rng(SEED)
    images = rng.uniform(-1.0, 1.0, (count, 2, size, size, 3)).astype("float32")
    return images.transpose(0, 1, 4, 2, 3).copy() if channels_first else images


# --------------------------------------------------------------------------------------
# Workers: one (workload, implementation) in its own process; each returns step seconds.
# --------------------------------------------------------------------------------------


def _timed(step, total: int) -> list[float]:
    seconds = []
    for _ in range(total):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    return seconds


def reference_trainer(workload: dict, reference: Path):
    """The reference's own model for a training workload: a zero-argument step."""
    import torch

    sys.path.insert(0, str(BENCH_DIR))
    from reference_launcher import tolerate_missing_torchvision_ops

    tolerate_missing_torchvision_ops()
    torch.manual_seed(SEED)
    sys.path.insert(0, str(reference))
    from models import create_model
    from options.train_options import TrainOptions

    with tempfile.TemporaryDirectory() as tmp:
        argv = ["--dataroot", tmp, "--checkpoints_dir", tmp, "--name", "speed",
                "--gpu_ids", "-1", "--model", "cycle_gan" if workload["model"] == "cyclegan"
                else "pix2pix", "--crop_size", str(workload["size"]), "--display_id", "0",
                "--no_html"]
        if workload.get("blocks") == 6:
            argv += ["--netG", "resnet_6blocks"]
        sys.argv = ["train.py", *argv]
        with contextlib.redirect_stdout(io.StringIO()):  # its option and network listings
            opt = TrainOptions().parse()
            model = create_model(opt)
            model.setup(opt)
    pairs = torch.from_numpy(_images(POOL, workload["size"], channels_first=True))
    count = iter(range(1 << 62))

    def step():
        index = next(count) % POOL
        model.set_input({"A": pairs[index, 0:1], "B": pairs[index, 1:2], "A_paths": ["a"],
                         "B_paths": ["b"]})
        model.optimize_parameters()

    return step


def reference_forward(workload: dict, reference: Path):
    """The reference's generator for an inference workload: a zero-argument step."""
    import torch

    torch.manual_seed(SEED)
    sys.path.insert(0, str(reference))
    from models import networks

    if workload["net"] == "unet":
        net = networks.define_G(3, 3, 64, "unet_256", "batch", use_dropout=True, gpu_ids=[])
    else:
        net = networks.define_G(3, 3, 64, "resnet_9blocks", "instance", gpu_ids=[])
    net.eval()
    image = torch.from_numpy(_images(1, workload["size"], channels_first=True)[:, 0])

    def step():
        with torch.inference_mode():
            net(image)

    return step


def kstyle_forward(workload: dict):
    """kstyle's generator for an inference workload: a zero-argument step."""
    import keras
    import tensorflow as tf

    sys.path.insert(0, str(REPO_ROOT))
    from kstyle.nets import resnet_generator, unet_generator

    keras.utils.set_random_seed(SEED)
    net = unet_generator() if workload["net"] == "unet" else resnet_generator()
    forward = tf.function(lambda x: net(x, training=False))
    image = tf.constant(_images(1, workload["size"], channels_first=False)[:, 0])
    return lambda: forward(image).numpy()


def kstyle_options(workload: dict) -> dict | None:
    return {"num_blocks": workload["blocks"]} if "blocks" in workload else None


def _reference_train(workload: dict, reference: Path, total: int) -> list[float]:
    return _timed(reference_trainer(workload, reference), total)


def _reference_infer(workload: dict, reference: Path, total: int) -> list[float]:
    return _timed(reference_forward(workload, reference), total)


def _kstyle_train(workload: dict, total: int) -> list[float]:
    sys.path.insert(0, str(BENCH_DIR))
    from train_speed import _time_kstyle

    return _time_kstyle(False, workload["size"], total, workload["model"],
                        kstyle_options(workload))


def _kstyle_infer(workload: dict, total: int) -> list[float]:
    return _timed(kstyle_forward(workload), total)


def _threads(implementation: str) -> int:
    if implementation == "reference":
        import torch

        return torch.get_num_threads()
    import tensorflow as tf

    # 0 means TensorFlow's default: one intra-op thread per usable CPU.
    return tf.config.threading.get_intra_op_parallelism_threads() or len(
        os.sched_getaffinity(0))


def _framework(implementation: str) -> str:
    if implementation == "reference":
        import torch

        return f"torch {torch.__version__}"
    import keras
    import tensorflow as tf

    return f"TensorFlow {tf.__version__}, Keras {keras.__version__}"


def run_worker(name: str, implementation: str, reference: Path, warmup: int,
               steps: int) -> dict:
    workload = WORKLOADS[name]
    total = 1 + warmup + steps
    if implementation == "reference":
        runner = _reference_train if workload["task"] == "train" else _reference_infer
        seconds = runner(workload, reference, total)
    else:
        runner = _kstyle_train if workload["task"] == "train" else _kstyle_infer
        seconds = runner(workload, total)
    return {
        "workload": name,
        "implementation": implementation,
        "first_step_s": seconds[0],
        "step_ms": [1000.0 * s for s in seconds[1 + warmup:]],
        # Linux reports ru_maxrss in KiB.
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "threads": _threads(implementation),
        "framework": _framework(implementation),
    }


# --------------------------------------------------------------------------------------
# Parent: interleaves the workers and prints the table.
# --------------------------------------------------------------------------------------


def _run(name: str, implementation: str, args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(BENCH_DIR))
    from train_speed import run_json_worker

    python = args.torch_python if implementation == "reference" else sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        command = [python, str(Path(__file__).resolve()), "--worker", name,
                   "--impl", implementation, "--reference", str(args.reference),
                   "--warmup", str(args.warmup),
                   "--steps", str(args.steps or WORKLOADS[name]["steps"]),
                   "--json", str(result_file)]
        result, wall_s = run_json_worker(command, result_file, f"{name} / {implementation}")
        if "error" in result:
            return {"workload": name, "implementation": implementation, **result}
    result["wall_s"] = wall_s
    print(f"  {name} / {implementation}: median {statistics.median(result['step_ms']):.0f} ms,"
          f" first {result['first_step_s']:.1f} s, {wall_s:.0f} s in all", file=sys.stderr)
    return result


def _cpu() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), platform.machine())
    family = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                   if line.startswith("cpu family")), "?")
    number = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                   if line.startswith("model\t")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines()
                      if line.startswith("flags")), []))
    features = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model} (family {family} model {number}; {' '.join(features) or 'no AVX2'})"


def summarize(results: list[dict]) -> list[dict]:
    """One row per workload: medians, ratios and peak memory over every round."""
    rows = []
    for name in dict.fromkeys(r["workload"] for r in results):
        row = {"workload": name}
        for implementation in IMPLEMENTATIONS:
            runs = [r for r in results if r["workload"] == name
                    and r["implementation"] == implementation and "error" not in r]
            if not runs:
                continue
            row[implementation] = {
                "median_ms": statistics.median(ms for r in runs for ms in r["step_ms"]),
                "round_medians_ms": [statistics.median(r["step_ms"]) for r in runs],
                "first_step_s": statistics.median(r["first_step_s"] for r in runs),
                "peak_rss_gib": max(r["peak_rss_gib"] for r in runs),
                "rounds": len(runs),
            }
        ours, theirs = row.get("kstyle"), row.get("reference")
        if ours and theirs:
            row["ratio"] = ours["median_ms"] / theirs["median_ms"]
            row["first_step_ratio"] = ours["first_step_s"] / theirs["first_step_s"]
            row["rss_ratio"] = ours["peak_rss_gib"] / theirs["peak_rss_gib"]
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    header = ("workload", "reference ms", "kstyle ms", "kstyle/ref", "first step ref s",
              "kstyle s", "ratio", "peak RSS ref GiB", "kstyle GiB", "ratio")

    def cell(row, side, key, fmt):
        return format(row[side][key], fmt) if side in row else "failed"

    lines = []
    for row in rows:
        ratios = [format(row[k], ".2f") if k in row else "" for k in
                  ("ratio", "first_step_ratio", "rss_ratio")]
        lines.append((row["workload"],
                      cell(row, "reference", "median_ms", ",.0f"),
                      cell(row, "kstyle", "median_ms", ",.0f"), ratios[0],
                      cell(row, "reference", "first_step_s", ".2f"),
                      cell(row, "kstyle", "first_step_s", ".2f"), ratios[1],
                      cell(row, "reference", "peak_rss_gib", ".2f"),
                      cell(row, "kstyle", "peak_rss_gib", ".2f"), ratios[2]))
    widths = [max(len(str(line[i])) for line in (header, *lines)) for i in range(len(header))]

    def fmt(cells):
        return " | ".join([f"{cells[0]:<{widths[0]}}",
                           *(f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:]))])

    return "\n".join([fmt(header), "-+-".join("-" * w for w in widths),
                      *(fmt(line) for line in lines)])


def run_all(args: argparse.Namespace) -> list[dict]:
    sys.path.insert(0, str(BENCH_DIR))
    from train_speed import _busy_ticks

    names = args.workloads or list(WORKLOADS)
    results, busy_before, cpu_before, wall_before = [], _busy_ticks(), os.times(), time.monotonic()
    for round_index in range(args.rounds):
        print(f"round {round_index + 1} of {args.rounds}", file=sys.stderr)
        for index, name in enumerate(names):
            # Alternate which side goes first, so that neither always runs warmer.
            order = IMPLEMENTATIONS if (round_index + index) % 2 == 0 else IMPLEMENTATIONS[::-1]
            for implementation in order:
                results.append(_run(name, implementation, args))
    wall = time.monotonic() - wall_before
    busy_after, cpu_after = _busy_ticks(), os.times()

    frameworks = {r["implementation"]: (r["framework"], r["threads"])
                  for r in results if "error" not in r}
    print(f"CPU: {_cpu()}, {os.cpu_count()} CPUs; Python {platform.python_version()}")
    for implementation, (framework, threads) in frameworks.items():
        print(f"{implementation}: {framework}, {threads} threads")
    counts = ", ".join(f"{n} {args.steps or WORKLOADS[n]['steps']}" for n in names)
    print(f"float32, batch 1; per process: first step, {args.warmup} warmup steps, then "
          f"timed steps ({counts}); {args.rounds} rounds, interleaved")
    print()
    rows = summarize(results)
    print(table(rows))
    print()
    ratios = [row for row in rows if "ratio" in row]
    if ratios:
        met = [row["workload"] for row in ratios if row["ratio"] <= TARGET]
        print(f"At or below {TARGET}x the reference's step time: "
              f"{', '.join(met) if met else 'none'} ({len(met)} of {len(ratios)})")
    if busy_before is not None and busy_after is not None:
        # Busy CPU time of the machine minus this process tree's, as a share of all cores.
        busy_s = (busy_after - busy_before) / os.sysconf("SC_CLK_TCK")
        own_s = sum(cpu_after[:4]) - sum(cpu_before[:4])
        other = max(0.0, busy_s - own_s) / (wall * (os.cpu_count() or 1))
        if other > 0.05:
            print(f"Warning: other processes used {100 * other:.0f}% of the CPUs during the "
                  "run; the times are inflated.")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"cpu": _cpu(), "rows": rows, "runs": results}, indent=2) + "\n")
    return results


def check_reference(parser: argparse.ArgumentParser, reference: Path) -> None:
    """Stops with a usage error unless ``reference`` is a checkout of the reference."""
    if not (reference / "models" / "networks.py").is_file():
        parser.error(f"{reference} is not a checkout of pytorch-CycleGAN-and-pix2pix "
                     "(no models/networks.py); bench/README.md says how to get it")


def check_torch_python(parser: argparse.ArgumentParser, python: str) -> None:
    """Stops with a usage error unless ``python`` can import torch."""
    if subprocess.run([python, "-c", "import torch"], capture_output=True).returncode != 0:
        parser.error(f"{python} cannot import torch: pass --torch-python of an "
                     "environment that has it (bench/README.md)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True,
                        help="checkout of junyanz/pytorch-CycleGAN-and-pix2pix (e19f22f)")
    parser.add_argument("--torch-python", default=sys.executable,
                        help="Python of an environment with torch and torchvision "
                             "(default: this one)")
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS),
                        help="run only these (default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after the first")
    parser.add_argument("--steps", type=int, help="timed steps per process "
                        "(default: each workload's own)")
    parser.add_argument("--json", help="also write every figure to this JSON file")
    parser.add_argument("--worker", choices=list(WORKLOADS), help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or (args.steps is not None and args.steps < 1):
        parser.error("--rounds and --steps must be at least 1, --warmup at least 0")
    check_reference(parser, args.reference)

    if args.worker:
        result = run_worker(args.worker, args.impl, args.reference.resolve(), args.warmup,
                            args.steps or WORKLOADS[args.worker]["steps"])
        Path(args.json).write_text(json.dumps(result))
        return 0
    check_torch_python(parser, args.torch_python)
    results = run_all(args)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
