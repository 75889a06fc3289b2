"""Distribution over devices and hosts: ``train.distribute``'s strategies and workers."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

from kstyle.errors import RecipeError


def make_strategy(kind: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy of ``train.distribute``.

    ``"mirrored"`` replicates the model on every local GPU, or, without GPUs, on the
    CPU devices TensorFlow has been told about (at least one). ``"multi_worker"`` does the
    same across the processes (hosts) that ``$TF_CONFIG`` lists, each running the same
    ``kstyle fit`` (see :func:`worker_role`). Each replica gets its share of the batch;
    gradients are averaged over the global batch (see
    ``kstyle.optimizers.apply_gradients``).

    Raises:
        RecipeError: ``"multi_worker"`` without a usable ``$TF_CONFIG``.
    """
    if kind == "mirrored":
        devices = (tf.config.list_logical_devices("GPU")
                   or tf.config.list_logical_devices("CPU"))
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if kind == "multi_worker":
        worker_role()  # a clear error before TensorFlow's, when TF_CONFIG is wrong
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def worker_role() -> tuple[int, bool]:
    """``(task index, is chief)`` of this process in ``$TF_CONFIG``'s cluster.

    ``TF_CONFIG`` is TensorFlow's JSON cluster description, the same on every process but
    for ``task``: ``{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type":
    "worker", "index": 0}}``. The chief (a ``"chief"`` task, else worker 0) writes the run
    folder; the other workers train alongside it and write nothing there.

    Raises:
        RecipeError: ``$TF_CONFIG`` is missing or does not describe this task.
    """
    expected = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}\' (index 1 on the second host)')
    raw = os.environ.get("TF_CONFIG", "")
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
        if kind not in cluster or not 0 <= index < len(cluster[kind]):
            raise ValueError(f"task {kind} {index} is not in the cluster")
    except (ValueError, KeyError, TypeError) as e:
        problem = "is not set" if not raw else f"is not usable ({e})"
        raise RecipeError(
            f"train.distribute = 'multi_worker': $TF_CONFIG {problem}; every worker needs "
            f"it, e.g. {expected}") from None
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    return index, chief


def worker_scratch(worker: int, run_dir: Path, checkpoints: str) -> Path:
    """A non-chief worker's folder: it writes there, never into the chief's run folder (the
    caller deletes it when fit ends); it starts from a copy of the run's last checkpoint
    (``run_dir / checkpoints``), so that every worker resumes from the same step."""
    from kstyle.training.checkpoints import Checkpointer

    scratch = Path(tempfile.mkdtemp(prefix=f"kstyle-worker{worker}-"))
    latest = Checkpointer(None, run_dir / checkpoints).latest()
    if latest is not None:
        shutil.copytree(latest, scratch / checkpoints / latest.name)
    return scratch


def any_worker(strategy: tf.distribute.Strategy):
    """A function ``flag -> bool``: whether ``flag`` is true on any worker of ``strategy``.

    It is a collective: every worker calls it at the same point of the run (after the same
    step), and it returns the same answer on each. A multi-worker run asks it after every
    step whether a worker got a stop signal, so that all stop after the same step.
    """

    @tf.function
    def total(flag):
        return strategy.reduce(tf.distribute.ReduceOp.SUM,
                               strategy.run(tf.identity, args=(flag,)), axis=None)

    return lambda flag: float(total(tf.constant(1.0 if flag else 0.0))) > 0
