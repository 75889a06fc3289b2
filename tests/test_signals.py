"""Preemption: a stop signal to a running `kstyle fit` finishes the step, writes a
checkpoint and exits with 128 + the signal; the same command resumes from there."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "recipes" / "quickstart.toml"


def start_fit(out, ignore_sigint=False):
    """`kstyle fit` of a tiny, long run (100 epochs of 4 steps) in a process of its own."""
    sets = [*TINY, "train.epochs=100", f'train.out_dir="{out}"']
    command = [sys.executable, "-c", "from kstyle.cli import main; main()", "fit", "--quiet",
               str(QUICKSTART), *[a for item in sets for a in ("--set", item)]]
    # A script's background job starts with SIGINT ignored; fit handles it anyway.
    restore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=restore,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def wait_for_steps(out, proc, steps=3, timeout=120):
    log = out / "steps.csv"
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        if log.is_file() and len(log.read_text().splitlines()) > steps:
            return
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the run logged no steps in time")


@pytest.mark.parametrize("signum, ignored", [
    (signal.SIGTERM, False),
    pytest.param(signal.SIGHUP, False, marks=pytest.mark.slow),
    pytest.param(signal.SIGINT, True, marks=pytest.mark.slow),
])
def test_a_stop_signal_saves_a_checkpoint_and_the_run_resumes(tmp_path, signum, ignored):
    from conftest import tiny_recipe

    from kstyle.train import fit

    out = tmp_path / "run"
    proc = start_fit(out, ignore_sigint=ignored)
    wait_for_steps(out, proc)
    proc.send_signal(signum)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, output
    name = signal.Signals(signum).name
    stopped = [line for line in output.splitlines() if line.startswith(f"Stopped by {name}")]
    assert stopped, output
    step = int(stopped[0].split(" at step ")[1].split(";")[0])
    assert (out / "checkpoints" / f"step_{step:08d}" / "state.json").is_file()
    assert "Traceback" not in output
    # The same run goes on from that step.
    epochs = step // 4 + 1
    resumed = fit(tiny_recipe(tmp_path, f"train.epochs={epochs}", f'train.out_dir="{out}"'),
                  verbose=0, log=lambda *_: None)
    assert resumed.resumed_from == step and resumed.step == 4 * epochs
