"""Keeps TensorFlow's start-up noise off a user's terminal.

TensorFlow 2.20+ logs through absl from C++ ("WARNING: All log messages before
absl::InitializeLog() is called...", "Could not find cuda drivers", "failed call to
cuInit", oneDNN notices, grappler's "remapper failed"; LiteRT's "Created TensorFlow Lite
XNNPACK delegate"), straight to file descriptor 2;
``TF_CPP_MIN_LOG_LEVEL`` no longer silences it (tensorflow/tensorflow#100442). So the
command line routes descriptor 2 through a pipe and drops lines in absl's format
(``I0000 00:00:1796134992.529668   24306 port.cc:153] ...``) and that one warning; every
other line (kstyle's messages, Python warnings and tracebacks) goes through unchanged. The
filter is a child process (see ``_FILTER``), never a thread of this one.
``kstyle --debug`` or ``KSTYLE_DEBUG=1`` turn the filter off.
"""

from __future__ import annotations

import atexit
import os
import re
import subprocess
import sys

NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    rb"STDERR|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] "
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)")

_installed = False


def debug() -> bool:
    """``KSTYLE_DEBUG`` set to anything but empty or 0."""
    return os.environ.get("KSTYLE_DEBUG", "") not in ("", "0")


#: The filter, run as its own small Python process: a thread of this process would need
#: the GIL to read the pipe, and a C++ library that writes more than a pipe holds while it
#: keeps the GIL (the LiteRT converter's diagnostics run to hundreds of kB) would then
#: block forever. It ignores Ctrl-C and SIGTERM (meant for kstyle, which still has things
#: to say) and ends when the last write end closes. Each byte is looked at a bounded number
#: of times, however long a line is.
_FILTER = r"""
import os, re, signal, sys
for name in ("SIGINT", "SIGTERM", "SIGHUP"):
    if hasattr(signal, name):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
noise, line = re.compile(sys.argv[1].encode("latin-1")), re.compile(rb"[^\r\n]*[\r\n]")
pending = []  # the pieces of the line not ended yet: joined once, when it ends
while chunk := os.read(0, 65536):
    cut = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
    if cut < 0:
        pending.append(chunk)
        continue
    text = b"".join(pending) + chunk[:cut + 1]
    pending = [chunk[cut + 1:]]
    # whole lines, ending in "\n" or a progress bar's "\r"
    kept = b"".join(x for x in line.findall(text) if not noise.match(x))
    if kept:
        os.write(2, kept)
rest = b"".join(pending)
if rest and not noise.match(rest):
    os.write(2, rest)
"""


def filter_stderr() -> None:
    """From now on, lines written to descriptor 2 that match :data:`NOISE` are dropped."""
    global _installed
    if _installed or debug():
        return
    sys.stderr.flush()
    try:
        real = os.dup(2)
        process = subprocess.Popen([sys.executable, "-c", _FILTER,
                                    NOISE.pattern.decode("latin-1")],
                                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    except OSError:
        return  # no descriptor 2 (a daemon), or no interpreter to run: leave it as it is
    os.dup2(process.stdin.fileno(), 2)
    process.stdin.close()  # descriptor 2 is now the pipe's only write end here
    _installed = True

    def restore():
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(real, 2)  # closes the pipe's last write end: the filter sees its end
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    atexit.register(restore)
