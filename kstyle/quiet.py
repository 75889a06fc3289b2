"""Keeps TensorFlow's start-up noise off a user's terminal.

TensorFlow 2.20+ logs through absl from C++ ("WARNING: All log messages before
absl::InitializeLog() is called...", "Could not find cuda drivers", "failed call to
cuInit", oneDNN notices, grappler's "remapper failed"; LiteRT's "Created TensorFlow Lite
XNNPACK delegate"), straight to file descriptor 2;
``TF_CPP_MIN_LOG_LEVEL`` no longer silences it (tensorflow/tensorflow#100442). So the
command line routes descriptor 2 through a pipe and drops lines in absl's format
(``I0000 00:00:1796134992.529668   24306 port.cc:153] ...``) and that one warning; every
other line (kstyle's messages, Python warnings and tracebacks) goes through unchanged.
``kstyle --debug`` or ``KSTYLE_DEBUG=1`` turn the filter off.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    rb"STDERR|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] "
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)")

_LINE = re.compile(rb"[^\r\n]*[\r\n]")
_installed = False


def debug() -> bool:
    """``KSTYLE_DEBUG`` set to anything but empty or 0."""
    return os.environ.get("KSTYLE_DEBUG", "") not in ("", "0")


def filter_stderr() -> None:
    """From now on, lines written to descriptor 2 that match :data:`NOISE` are dropped."""
    global _installed
    if _installed or debug():
        return
    try:
        real = os.dup(2)
        read, write = os.pipe()
    except OSError:
        return  # no descriptor 2 (a daemon): nothing reaches a terminal anyway
    sys.stderr.flush()
    os.dup2(write, 2)
    os.close(write)
    _installed = True

    def forward():
        with os.fdopen(read, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                pending += chunk
                # Whole lines, ending in "\n" or in a progress bar's "\r", go on at once.
                lines = _LINE.findall(pending)
                pending = pending[sum(map(len, lines)):]
                kept = b"".join(line for line in lines if not NOISE.match(line))
                if kept:
                    os.write(real, kept)
            if pending and not NOISE.match(pending):
                os.write(real, pending)

    thread = threading.Thread(target=forward, name="kstyle-stderr", daemon=True)
    thread.start()

    def restore():
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(real, 2)  # closes the pipe's last write end: the thread sees its end
        thread.join(timeout=5)

    atexit.register(restore)
