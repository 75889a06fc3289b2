"""Crash safety: ``kstyle fit`` SIGKILLed at any moment resumes as if never stopped.

Each test trains a tiny recipe once without interruption, then trains it again in
another folder as a subprocess that is SIGKILLed at several points: right after a
checkpoint folder appears, while one (or the translator) is being written, and after
seeded random delays. After every kill the run folder must hold only complete
checkpoints and a loadable translator, and the next start must resume from the last
complete checkpoint. The run is then finished, and its final weights, optimizer
variables, random-generator states (and CycleGAN's image pools) must equal those of the
uninterrupted run, bit for bit. The subprocesses run TensorFlow on one thread with
deterministic ops (``TF_NUM_*_THREADS=1``, ``TF_DETERMINISTIC_OPS=1``): the comparison
is then exact on a CPU rather than up to the order of float additions.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

import kstyle.nets  # noqa: F401  (registers kstyle's layers, to load saved networks)
from kstyle import runs
from kstyle.training.checkpoints import Checkpointer

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_NUM_INTRAOP_THREADS": "1",
       "TF_NUM_INTEROP_THREADS": "1", "TF_DETERMINISTIC_OPS": "1", "CUDA_VISIBLE_DEVICES": ""}
# Dropout and a learning rate that decays from epoch 1 on: the RNG and the schedule
# have to come back right for the weights to match.
PIX2PIX = ("recipes/quickstart.toml", [
    "data.image_size=64", "data.load_size=72", "data.synthetic_count=16",
    "data.batch_size=2", "model.base_filters=4", "model.num_downs=6", "model.dropout=0.5",
    "model.d_base_filters=4", "model.d_layers=2", "train.epochs=3",
    "train.steps_per_epoch=6", "train.checkpoint_every=2", "train.num_samples=2",
    "train.val_steps=1", "train.lr_policy=linear_decay", "train.decay_start_epoch=1"])
CYCLEGAN = ("recipes/cyclegan.toml", [
    "data.source=synthetic", "data.image_size=32", "data.load_size=36",
    "data.synthetic_count=8", "model.base_filters=4",
    "model.num_blocks=1", "model.d_base_filters=4", "model.d_layers=2",
    "model.pool_size=3", "train.epochs=3", "train.steps_per_epoch=5",
    "train.checkpoint_every=2", "train.num_samples=2", "train.val_steps=1",
    "train.lr_policy=linear_decay", "train.decay_start_epoch=1"])
RESUMING = re.compile(r"Resuming .* at step (\d+)")
POLL_S = 0.002


def command(recipe, run_dir):
    path, overrides = recipe
    sets = [a for o in [*overrides, f'train.out_dir="{run_dir}"'] for a in ("--set", o)]
    return [sys.executable, "-m", "kstyle.cli", "fit", path, "--quiet", *sets]


def start(recipe, run_dir, log=None):
    """Starts ``kstyle fit`` into ``run_dir``; its output goes to ``log`` (by default
    ``run_dir``.log)."""
    log = log or run_dir.with_name(run_dir.name + ".log")
    with open(log, "w") as out:
        process = subprocess.Popen(command(recipe, run_dir), cwd=REPO, env=ENV, stdout=out,
                                   stderr=subprocess.STDOUT)
    process.log = log
    return process


def finish(process):
    """Waits for a started run to end; returns its output."""
    try:
        process.wait(timeout=300)
    finally:
        process.kill()
    out = process.log.read_text()
    assert process.returncode == 0, out
    return out


def run_to_end(recipe, run_dir):
    return finish(start(recipe, run_dir))


def checkpoint_steps(run_dir):
    return sorted(int(p.name[5:]) for p in (run_dir / "checkpoints").glob("step_*"))


def expected_resume_step(run_dir):
    """The step a restart must resume at: the last complete checkpoint, counting one
    caught between the two renames of a folder swap (see runs.clean_temporaries)."""
    folder = run_dir / "checkpoints"
    steps = [int(p.name[5:]) for p in folder.glob("step_*") if (p / "state.json").is_file()]
    for old in folder.glob(".step_*.tmp.old"):
        steps.append(int(old.name[6:14]))
    return max(steps, default=0)


# -- triggers: each polls the run folder and says when to kill


def after_new_checkpoint(run_dir, started):
    before = set(checkpoint_steps(run_dir))
    return lambda: bool(set(checkpoint_steps(run_dir)) - before)


def new_temporary(folder, pattern):
    """Fires when a temporary appears that the last killed run did not leave behind."""
    left = set(folder.glob(pattern))
    return lambda: any(p not in left and not p.name.endswith(".old")
                       for p in folder.glob(pattern))


def while_checkpoint_written(run_dir, started):
    return new_temporary(run_dir / "checkpoints", ".step_*.tmp*")


def while_translator_written(run_dir, started):
    return new_temporary(run_dir, ".translator.keras.*.tmp*")


def after_delay(seconds):
    def trigger(run_dir, started):
        # The clock starts with training (the step log growing: it gets a row every
        # step here), not with the seconds of importing TensorFlow and building the model.
        log = run_dir / "steps.csv"
        initial = log.stat().st_size if log.is_file() else -1
        begun = []

        def fire():
            if not begun and log.is_file() and log.stat().st_size > initial:
                begun.append(time.monotonic())
            return bool(begun) and time.monotonic() - begun[0] >= seconds
        return fire
    trigger.__name__ = f"after_{seconds:.2f}s_of_training"
    return trigger


def kill_at(recipe, run_dir, trigger, log):
    """Starts the run, SIGKILLs it when ``trigger`` fires; returns what happened."""
    process = start(recipe, run_dir, log)
    fire = trigger(run_dir, time.monotonic())
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if fire():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return "killed"
        time.sleep(POLL_S)
    if process.poll() is None:
        process.kill()
        pytest.fail(f"{trigger.__name__}: the run neither finished nor fired in 300 s")
    return "finished"


def assert_consistent(run_dir, networks):
    """Only whole checkpoints, and a translator and run.json that load."""
    for ckpt in (run_dir / "checkpoints").glob("step_*"):
        names = {p.name for p in ckpt.iterdir()}
        expected = {f"{n}.weights.h5" for n in networks} | {
            "optimizers.npz", Checkpointer.RNG_FILE, "state.json"}
        assert names == expected, f"{ckpt.name} holds {sorted(names)}"
        assert json.loads((ckpt / "state.json").read_text())["step"] == int(ckpt.name[5:])
        for npz in ("optimizers.npz", Checkpointer.RNG_FILE):
            with np.load(ckpt / npz) as arrays:
                assert arrays.files
    if (run_dir / runs.TRANSLATOR_FILE).exists():
        keras.saving.load_model(run_dir / runs.TRANSLATOR_FILE, safe_mode=True)
    if (run_dir / runs.RUN_FILE).exists():
        json.loads((run_dir / runs.RUN_FILE).read_text())


def arrays_of(ckpt):
    """Every array of a checkpoint folder, by file and name."""
    found = {}
    for path in sorted(ckpt.iterdir()):
        if path.suffix == ".h5":
            with h5py.File(path) as f:
                f.visititems(lambda name, obj, p=path: found.__setitem__(
                    f"{p.name}:{name}", obj[()]) if isinstance(obj, h5py.Dataset) else None)
        elif path.suffix == ".npz":
            with np.load(path) as npz:
                found.update({f"{path.name}:{k}": npz[k] for k in npz.files})
    return found


def crash_and_compare(tmp_path, recipe, networks, triggers, total_steps):
    # The uninterrupted run goes on beside the killed ones (each runs on one thread).
    reference = tmp_path / "uninterrupted"
    uninterrupted = start(recipe, reference)
    try:
        return kill_resume_and_compare(tmp_path, recipe, networks, triggers, total_steps,
                                       uninterrupted, reference)
    finally:
        uninterrupted.kill()


def kill_resume_and_compare(tmp_path, recipe, networks, triggers, total_steps, uninterrupted,
                            reference):
    run_dir = tmp_path / "killed"
    outcomes = []
    for i, trigger in enumerate(triggers):
        expected = expected_resume_step(run_dir)
        log = tmp_path / f"kill_{i}.log"
        what = kill_at(recipe, run_dir, trigger, log)
        text = log.read_text()
        started = RESUMING.search(text)
        # Every start resumes at the last complete checkpoint the previous one left.
        assert (int(started[1]) if started else 0) == expected, text
        if what == "finished":  # a random delay longer than the rest of the run
            assert "Done in" in text or "already finished" in text, text
        assert_consistent(run_dir, networks)
        temporaries = sorted(p.name for p in run_dir.rglob("*") if ".tmp" in p.name)
        outcomes.append(f"{trigger.__name__}: {what} (started at step {expected}; "
                        f"checkpoints now {checkpoint_steps(run_dir)}, resume at "
                        f"{expected_resume_step(run_dir)}; temporaries left: "
                        f"{temporaries or 'none'})")
        print(f"{recipe[0]}: {outcomes[-1]}", flush=True)
    expected = expected_resume_step(run_dir)
    text = run_to_end(recipe, run_dir)
    started = RESUMING.search(text)
    assert (int(started[1]) if started else 0) == expected, text
    outcomes.append(f"final run: resumed at step {expected}, finished")
    print(f"{recipe[0]}: {outcomes[-1]}", flush=True)

    assert_consistent(run_dir, networks)
    assert not [p for p in run_dir.rglob("*") if ".tmp" in p.name]
    assert runs.read_run_info(run_dir)["step"] == total_steps
    finish(uninterrupted)
    steps = [int(r.split(",")[0]) for r in (run_dir / "steps.csv").read_text().split()[1:]]
    assert steps == sorted(set(steps)), "steps.csv repeats steps after a resume"
    epochs = [r.split(",")[0] for r in (run_dir / "epochs.csv").read_text().split()[1:]]
    assert epochs == [str(e) for e in range(total_steps // int(
        json.loads((run_dir / runs.RUN_FILE).read_text())["steps_per_epoch"]))]
    last = f"step_{total_steps:08d}"
    got, want = arrays_of(run_dir / "checkpoints" / last), arrays_of(
        reference / "checkpoints" / last)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    return outcomes


@pytest.mark.slow
def test_killed_pix2pix_resumes_to_the_same_weights(tmp_path):
    rng = random.Random(0)
    # The triggers on events first: they fire whatever the speed of the machine.
    triggers = [after_new_checkpoint, while_checkpoint_written, while_translator_written,
                *(after_delay(rng.uniform(0.05, 1.0)) for _ in range(2))]
    outcomes = crash_and_compare(tmp_path, PIX2PIX, ["generator", "discriminator"],
                                 triggers, total_steps=18)
    assert sum("killed" in line for line in outcomes) >= 3


@pytest.mark.slow
def test_killed_cyclegan_resumes_with_its_image_pools(tmp_path):
    rng = random.Random(1)
    triggers = [while_checkpoint_written, after_new_checkpoint,
                after_delay(rng.uniform(0.05, 1.0))]
    networks = ["generator_ab", "generator_ba", "discriminator_a", "discriminator_b",
                "pools"]
    outcomes = crash_and_compare(tmp_path, CYCLEGAN, networks, triggers, total_steps=15)
    assert sum("killed" in line for line in outcomes) >= 2


# -- the folder swap of atomic_path, killed between its two renames

SWAP_KILL = """
import os, signal, sys
from kstyle import runs
real = os.replace
calls = []
def replace(src, dst):
    real(src, dst)
    calls.append(dst)
    if len(calls) == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
runs.os.replace = replace
with runs.atomic_path(sys.argv[1]) as tmp:
    tmp.mkdir()
    (tmp / "state.json").write_text('"new"')
"""


@pytest.mark.parametrize("kill_after", [1, 2])
def test_a_kill_inside_the_folder_swap_loses_nothing(tmp_path, kill_after):
    folder = tmp_path / "checkpoints"
    target = folder / "step_00000004"
    target.mkdir(parents=True)
    (target / "state.json").write_text('"old"')
    done = subprocess.run([sys.executable, "-c", SWAP_KILL, str(target), str(kill_after)],
                          cwd=REPO, env=ENV)
    assert done.returncode == -signal.SIGKILL
    # Killed after the first rename the target is gone, only temporaries are left.
    assert target.exists() == (kill_after == 2)
    assert any(p.name.endswith(".tmp.old") for p in folder.iterdir())
    assert Checkpointer(None, folder).latest() == (target if kill_after == 2 else None)

    report = runs.clean_temporaries(folder)
    assert [p.name for p in folder.iterdir()] == ["step_00000004"]
    assert (target / "state.json").read_text() == '"new"'
    assert report[-1].startswith("removed")


def test_clean_temporaries_removes_half_written_files_and_keeps_the_rest(tmp_path):
    (tmp_path / "run.json").write_text("{}")
    (tmp_path / ".run.json.abcd1234.tmp").write_text("{")
    (tmp_path / ".translator.keras.x_y_z_12.tmp.keras").write_text("half")
    half = tmp_path / ".step_00000006.qwertyui.tmp"
    half.mkdir()
    (half / "generator.weights.h5").write_text("half")
    (tmp_path / ".write_test").write_text("not ours")
    report = runs.clean_temporaries(tmp_path)
    assert len(report) == 3 and all(line.startswith("removed") for line in report)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".write_test", "run.json"]
