"""Two runs on one folder: the second refuses at once, naming the first; a lock left by a
dead process is taken over."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import tiny_recipe
from test_signals import start_fit, wait_for_steps

from kstyle import lock
from kstyle.lock import RunLockedError
from kstyle.train import fit


def test_a_second_fit_of_a_running_folder_refuses_naming_the_first(tmp_path):
    out = tmp_path / "run"
    first = start_fit(out)
    try:
        wait_for_steps(out, first)
        checkpoints = sorted(os.listdir(out / "checkpoints"))
        with pytest.raises(RunLockedError) as error:
            fit(tiny_recipe(tmp_path, f'train.out_dir="{out}"'), verbose=0,
                log=lambda *_: None)
        message = str(error.value)
        assert f"process {first.pid} on host {socket.gethostname()}" in message
        # Nothing of the first run's was touched: its checkpoints are its own.
        assert set(checkpoints) <= set(os.listdir(out / "checkpoints"))
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 128 + signal.SIGTERM


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    out = tmp_path / "run"
    # A process that takes the lock and dies without releasing it.
    script = (f"from kstyle import lock; lock.acquire({str(out)!r}); import os; "
              "os.kill(os.getpid(), 9)")
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", script])
    assert dead.returncode == -signal.SIGKILL
    left = json.loads((out / ".lock").read_text())
    lines = []
    result = fit(tiny_recipe(tmp_path, f'train.out_dir="{out}"', "train.epochs=1"),
                 verbose=0, log=lines.append)
    assert result.step == 4
    assert any(f"took over the lock left by process {left['pid']}" in line for line in lines)
    assert (out / ".lock").read_text() == ""  # released when the fit ended
    assert lock.holder(out) is None


def test_export_refuses_a_folder_a_fit_is_writing(tmp_path, tiny_run):
    import shutil

    from kstyle.export import export_run

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    holder = subprocess.Popen([sys.executable, "-c", f"from kstyle import lock; "
                               f"lock.acquire({str(run)!r}); import time; time.sleep(60)"])
    try:
        deadline = time.time() + 30
        while lock.holder(run) is None and time.time() < deadline:
            time.sleep(0.1)
        with pytest.raises(RunLockedError, match=f"process {holder.pid}"):
            export_run(run, tflite=False)
    finally:
        holder.kill()
        holder.wait()
