"""TensorFlow's C++ log lines stay off the terminal; everything else reaches it."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WRITES = (b"WARNING: All log messages before absl::InitializeLog() is called are written to "
          b"STDERR\n"
          b"I0000 00:00:1796134992.529668   24306 cudart_stub.cc:31] Could not find cuda "
          b"drivers on your machine, GPU will not be used.\n"
          b"Error: data.path = 'x' does not exist\n"
          b"E0000 00:00:1796135083.629898   25019 cuda_platform.cc:52] failed call to cuInit\n"
          b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
          b"progress 1/2\rprogress 2/2\r")


def stderr_of(debug: bool) -> bytes:
    script = ("import os; from kstyle import quiet; quiet.filter_stderr(); "
              f"os.write(2, {WRITES!r})")
    env = {**os.environ, "KSTYLE_DEBUG": "1" if debug else ""}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, env=env,
                          cwd=REPO, check=True).stderr


def test_absl_lines_are_dropped_and_the_rest_kept_in_order():
    assert stderr_of(debug=False) == (b"Error: data.path = 'x' does not exist\n"
                                      b"progress 1/2\rprogress 2/2\r")


def test_a_library_that_writes_a_lot_while_holding_the_gil_does_not_hang():
    # As the LiteRT converter's diagnostics do: C code writing 1 MB to descriptor 2
    # without releasing the GIL (ctypes.PyDLL keeps it), then a line that must come through.
    script = ("import ctypes, os; from kstyle import quiet; quiet.filter_stderr(); "
              "data = b'I0000 00:00:1.5 1 x.cc:1] noise\\n' * 40000; "
              "ctypes.PyDLL(None).write(2, data, len(data)); os.write(2, b'done\\n')")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=REPO,
                          env={**os.environ, "KSTYLE_DEBUG": ""}, timeout=60, check=True)
    assert done.stderr == b"done\n"


def test_debug_keeps_everything():
    assert stderr_of(debug=True) == WRITES


def test_the_kstyle_command_prints_no_tensorflow_noise(tmp_path):
    from conftest import TINY

    sets = [*TINY, "train.epochs=1", f'train.out_dir="{tmp_path / "run"}"']
    command = [sys.executable, "-c", "from kstyle.cli import run; run()", "fit", "--quiet",
               str(REPO / "recipes" / "quickstart.toml"),
               *[a for item in sets for a in ("--set", item)]]
    env = {k: v for k, v in os.environ.items() if k not in ("KSTYLE_DEBUG",
                                                            "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "Done in" in output
    for noise in ("absl::InitializeLog", "cudart_stub", "cuInit", "oneDNN"):
        assert noise not in output


def test_the_filter_reads_a_megabyte_without_a_newline_in_one_pass():
    # Each byte is looked at a bounded number of times: a 1 MB line (a long recipe value
    # echoed back) passes through at once. The timeout is a guard against the quadratic
    # scan this replaced (minutes for 80 kB), not a measurement.
    from kstyle import quiet

    text = b"x" * 2**20 + b"\nI0000 00:00:1.5   7 a.cc:1] dropped\nkept"
    done = subprocess.run([sys.executable, "-c", quiet._FILTER,
                           quiet.NOISE.pattern.decode("latin-1")],
                          input=text, capture_output=True, timeout=60, check=True)
    assert done.stderr == b"x" * 2**20 + b"\nkept"
