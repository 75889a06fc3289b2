"""Where a step's time goes, op by op, in kstyle and in the PyTorch reference, side by side.

Usage:

    python bench/op_profile.py --reference ../pytorch-CycleGAN-and-pix2pix \\
        --torch-python ../torchenv/bin/python [--workload cyclegan-128] [--steps 5]
        [--top 12] [--json FILE]

The workloads are `bench/peer_speed.py`'s (the same models, shapes and seeds: the
reference's own `Pix2PixModel` / `CycleGANModel` / `define_G`, kstyle's models driven by
`model.fit` or its generators under `tf.function`). Each side runs in its own process:
the first step and `--warmup` more untimed, then `--steps` steps under its framework's
profiler (TensorFlow's `tf.profiler.experimental`, read from the trace it writes;
`torch.profiler`). Each op's self time is summed and divided by the steps, then the ops
are put in a few groups (convolutions and matmuls, normalization, padding, the optimizer
update, data movement, the rest), so that the table says which kind of work makes the
difference between the two and what the same work costs in PyTorch on the same CPU. The
slowest single ops of each side follow.

A profiled step is slower than an unprofiled one (the profiler records every op), and the
two profilers do not count alike: PyTorch runs one op at a time, so its self times add up
to about the step; TensorFlow's executor runs independent ops at once on its inter-op
threads, each op's time is from its start to its end on the host trace, and their sum
exceeds the step (ops that overlap share the cores). So kstyle is profiled with one
inter-op thread by default (`--tf-inter-op 1`: one op at a time, each with all the cores,
as in PyTorch), which makes its step slower than TensorFlow's default but its ops' times
add up. The absolute figures are the profilers'; the step times to quote are
`bench/peer_speed.py`'s; what this adds is the split between groups.
It prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import re
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from peer_speed import WORKLOADS, _cpu, check_reference, check_torch_python  # noqa: E402

# (group, pattern on the op's type and name, lowercased); the first that matches wins.
# TensorFlow's ops are "scope/name:Type", PyTorch's "aten::name"; the optimizer is told
# by its scope (kstyle) or by an enclosing "Optimizer.step" (PyTorch, marked "optimizer/").
GROUPS = [
    ("optimizer update", r"optimizer/|adam|resourceapply|assignvariable|assignadd"),
    ("convolution / matmul", r"conv|einsum|matmul|mkldnn_convolution|addmm|aten::mm\b|bmm"),
    ("normalization", r"batchnorm|batch_norm|instance_norm|native_norm|rsqrt|moments"),
    ("padding", r"pad"),
    ("data movement", r"concat|aten::cat|slice|transpose|reshape|copy|stack|gather|"
                      r"aten::view|as_strided|select|clone|expand|permute|contiguous|split|"
                      r"identity|tile|unpack|pack"),
    ("activation", r"relu|tanh|sigmoid|leaky|elu"),
    ("reduction", r"\bsum|mean|reduce|\bmax\b|\bmin\b|abs|l1"),
]


def group_of(name: str) -> str:
    lowered = name.lower()
    for group, pattern in GROUPS:
        if re.search(pattern, lowered):
            return group
    return "other elementwise"


# --------------------------------------------------------------------------------------
# Workers: one side each, in its own process. Each returns {op: ms per step}.
# --------------------------------------------------------------------------------------


def _tensorflow_ops(logdir: str, steps: int) -> dict[str, float]:
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    ops: dict[str, float] = collections.Counter()
    for path in glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True):
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(path).read_bytes())
        for plane in space.planes:
            if plane.name != "/host:CPU":
                continue
            for line in plane.lines:
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    # Executor ops are "scope/name:Type"; "Class::Method" events are the
                    # runtime's own wrappers around them.
                    if ":" in name and "::" not in name and not name.startswith("$"):
                        scope, op_type = name.rsplit(":", 1)
                        if op_type.strip().startswith("__"):  # the step's function, around them
                            continue
                        # The optimizer by its scope; everything else by op type.
                        key = (f"optimizer/{op_type}" if re.search(r"optimizer|adam",
                                                                     scope.lower())
                               else op_type)
                        ops[key] += event.duration_ps / 1e9 / steps
    return dict(ops)


def kstyle_worker(name: str, warmup: int, steps: int, inter_op: int) -> dict[str, float]:
    import keras
    import tensorflow as tf

    if inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    workload = WORKLOADS[name]
    logdir = tempfile.mkdtemp(prefix="kstyle-op-profile-")
    if workload["task"] == "infer":
        from peer_speed import kstyle_forward

        step = kstyle_forward(workload)
        for _ in range(1 + warmup):
            step()
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            step()
        tf.profiler.experimental.stop()
        return _tensorflow_ops(logdir, steps)

    from peer_speed import kstyle_options
    from train_speed import _time_kstyle

    class Profile(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 1 + warmup:
                tf.profiler.experimental.start(logdir)

        def on_train_end(self, logs=None):
            tf.profiler.experimental.stop()

    _time_kstyle(False, workload["size"], 1 + warmup + steps, workload["model"],
                 kstyle_options(workload), callbacks=(Profile(),))
    return _tensorflow_ops(logdir, steps)


def reference_worker(name: str, reference: Path, warmup: int, steps: int) -> dict[str, float]:
    import torch
    from peer_speed import reference_forward, reference_trainer

    workload = WORKLOADS[name]
    step = (reference_trainer if workload["task"] == "train" else reference_forward)(
        workload, reference)
    for _ in range(1 + warmup):
        step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    ops: dict[str, float] = collections.Counter()
    for event in prof.events():
        if event.name.startswith(("Optimizer.", "ProfilerStep")) or event.self_cpu_time_total == 0:
            continue
        parent, in_optimizer = event.cpu_parent, False
        while parent is not None:
            if parent.name.startswith("Optimizer.step"):
                in_optimizer = True
                break
            parent = parent.cpu_parent
        key = f"optimizer/{event.name}" if in_optimizer else event.name
        ops[key] += event.self_cpu_time_total / 1000.0 / steps  # microseconds -> ms
    return dict(ops)


# --------------------------------------------------------------------------------------
# Parent.
# --------------------------------------------------------------------------------------


def _run(side: str, args) -> dict[str, float]:
    from train_speed import run_json_worker

    python = args.torch_python if side == "reference" else sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ops.json"
        command = [python, str(Path(__file__).resolve()), "--worker", side,
                   "--workload", args.workload, "--reference", str(args.reference),
                   "--warmup", str(args.warmup), "--steps", str(args.steps),
                   "--tf-inter-op", str(args.tf_inter_op), "--json", str(out)]
        result, wall_s = run_json_worker(command, out, f"{args.workload} / {side}")
    if "error" in result:
        raise SystemExit(f"{side} failed: {result['error']}")
    print(f"  {args.workload} / {side}: profiled in {wall_s:.0f} s", file=sys.stderr)
    return result


def table(reference: dict[str, float], kstyle: dict[str, float], top: int) -> str:
    groups = {side: collections.Counter() for side in ("reference", "kstyle")}
    for side, ops in (("reference", reference), ("kstyle", kstyle)):
        for op, ms in ops.items():
            groups[side][group_of(op)] += ms
    names = sorted(set(groups["reference"]) | set(groups["kstyle"]),
                   key=lambda g: -max(groups["reference"][g], groups["kstyle"][g]))
    total = {side: sum(groups[side].values()) for side in groups}
    lines = [f"{'group':22s} | {'reference ms':>12s} | {'share':>5s} | {'kstyle ms':>9s} | "
             f"{'share':>5s} | kstyle/ref", "-" * 75]
    for name in [*names, "all"]:
        r = total["reference"] if name == "all" else groups["reference"][name]
        k = total["kstyle"] if name == "all" else groups["kstyle"][name]
        ratio = f"{k / r:.2f}" if r > 0.05 else "-"
        lines.append(f"{name:22s} | {r:12.1f} | {100 * r / total['reference']:4.0f}% | "
                     f"{k:9.1f} | {100 * k / total['kstyle']:4.0f}% | {ratio}")
    for side, ops in (("reference", reference), ("kstyle", kstyle)):
        lines.append(f"\nslowest ops, {side} (ms per step, group):")
        for op, ms in sorted(ops.items(), key=lambda item: -item[1])[:top]:
            lines.append(f"  {ms:8.1f}  {op[:60]:60s} {group_of(op)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True,
                        help="a checkout of junyanz/pytorch-CycleGAN-and-pix2pix")
    parser.add_argument("--torch-python", default=sys.executable,
                        help="the Python of an environment with torch (default: this one)")
    parser.add_argument("--workload", choices=list(WORKLOADS), default="cyclegan-128")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after the first")
    parser.add_argument("--steps", type=int, default=5, help="profiled steps")
    parser.add_argument("--top", type=int, default=12, help="slowest single ops shown")
    parser.add_argument("--tf-inter-op", type=int, default=1,
                        help="TensorFlow's inter-op threads (default 1: one op at a time, "
                             "as PyTorch runs them, so that the ops' times add up to the "
                             "step; 0: TensorFlow's default)")
    parser.add_argument("--json", help="also write every op's ms per step to this file")
    parser.add_argument("--worker", choices=["reference", "kstyle"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warmup < 0 or args.steps < 1:
        parser.error("--steps must be at least 1, --warmup at least 0")
    check_reference(parser, args.reference)
    if args.worker == "kstyle":
        ops = kstyle_worker(args.workload, args.warmup, args.steps, args.tf_inter_op)
    elif args.worker == "reference":
        ops = reference_worker(args.workload, args.reference.resolve(), args.warmup,
                               args.steps)
    if args.worker:
        Path(args.json).write_text(json.dumps(ops))
        return 0
    check_torch_python(parser, args.torch_python)
    reference = _run("reference", args)
    kstyle = _run("kstyle", args)
    print(f"CPU: {_cpu()}")
    print(f"{args.workload}, float32, batch 1; {args.steps} profiled steps after "
          f"{1 + args.warmup} untimed; ms per step of ops' self time, as each profiler "
          f"counts it; TensorFlow inter-op threads: {args.tf_inter_op or 'default'}\n")
    print(table(reference, kstyle, args.top))
    if args.json:
        Path(args.json).write_text(json.dumps({"workload": args.workload, "cpu": _cpu(),
                                               "reference": reference, "kstyle": kstyle},
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
