"""An interrupted stylize or export leaves nothing behind once run again, and a folder of
results goes on where it stopped; what a live process is writing is left alone."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from kstyle import runs
from kstyle.cli import main


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stylize_again_skips_finished_results_and_removes_dead_temporaries(tiny_run,
                                                                           tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(inputs / f"{i}.png")
    out = tmp_path / "out"
    out.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(out / "0.png")  # done before
    stale = out / f".1.png.p{dead_pid()}-abcdefgh.tmp.png"
    stale.write_bytes(b"half a png")
    live = out / f".2.png.p{os.getpid()}-abcdefgh.tmp.png"  # this process: alive
    live.write_bytes(b"being written")
    result = CliRunner().invoke(main, ["stylize", str(inputs), "--model", str(tiny_run),
                                       "--out", str(out), "--skip-existing"])
    assert result.exit_code == 0, result.output
    assert "0.png (already there)" in result.output
    assert np.asarray(Image.open(out / "0.png")).max() == 0  # left alone
    assert (out / "1.png").is_file() and (out / "2.png").is_file()
    assert not stale.exists() and live.exists()
    assert "left by an interrupted run" in result.output


def test_export_removes_what_a_killed_export_left(tiny_run, tmp_path):
    from kstyle.export import SCRATCH_PREFIX, export_run

    scratch = Path(tempfile.gettempdir()) / f"{SCRATCH_PREFIX}{dead_pid()}-zz"
    scratch.mkdir()
    (scratch / "raw.tflite").write_bytes(b"x" * 1000)
    out = tmp_path / "export"
    out.mkdir()
    half = out / f".translator.tflite.p{dead_pid()}-abcdefgh.tmp.tflite"
    half.write_bytes(b"half")
    lines = []
    export_run(tiny_run, out, saved_model=False, tflite=True, log=lines.append)
    assert not scratch.exists() and not half.exists()
    assert (out / "translator.tflite").is_file()
    assert not [p for p in out.iterdir() if runs._TEMPORARY.match(p.name)]


def test_an_output_path_that_cannot_be_written_is_one_line(tiny_run, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    photo = next((tiny_run / "samples" / "inputs").iterdir())
    for args in (["stylize", str(photo), "--model", str(tiny_run), "--out",
                  str(blocker / "sub" / "out.png")],
                 ["export", str(tiny_run), "--tflite", "--out", str(blocker / "export")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert str(blocker) in result.output and "Not a directory" in result.output
        assert "Traceback" not in result.output
