"""A run folder's lock: one live process writes into a run at a time.

``<run>/.lock`` is held with ``flock`` for as long as a ``fit`` runs; the operating system
releases it when the process ends, however it ends (SIGKILL, a crash), so a lock is never
left held by a dead process. The file also says who holds it (process id, host, since
when, the command), for the message another process gets; it is emptied, never removed,
on release (removing it could let two processes lock two different files of one name).

``flock`` works between processes of one host and on most local file systems; on a network
file system (NFS) whether it holds across hosts depends on the server.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from kstyle.errors import KstyleError

LOCK_FILE = ".lock"

# Locks this process holds, by folder: a second Run of the same folder in this process
# (a script, a test) shares the lock instead of refusing itself.
_held: dict[str, int] = {}


class RunLockedError(KstyleError):
    """The run folder is in use by another live process."""


def _holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode("utf-8", "replace")
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return (f"process {holder.get('pid', '?')} on host {holder.get('host', '?')} (since "
            f"{since}: {holder.get('command', '?')})")


def acquire(folder: str | os.PathLike, log=print, what: str = "a fit") -> None:
    """Takes ``folder``'s lock for this process, or raises RunLockedError naming the holder.

    A lock file left by a process that is gone is taken over, with a line saying so.
    """
    folder = Path(folder)
    key = str(folder.resolve())
    if key in _held:
        return
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _holder(fd)
        os.close(fd)
        raise RunLockedError(
            f"{folder} is in use by {_describe(holder)}; {what} cannot write into it at the "
            "same time. Wait for it to finish or stop it (it saves a checkpoint), or set "
            "train.out_dir to another folder.") from None
    previous = _holder(fd)
    if previous:
        log(f"{folder}: took over the lock left by {_describe(previous)}, which is no "
            "longer running.")
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
          "command": " ".join(sys.argv)[:300]}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(me).encode())
    os.fsync(fd)
    _held[key] = fd


def release(folder: str | os.PathLike) -> None:
    """Empties and releases ``folder``'s lock, if this process holds it."""
    fd = _held.pop(str(Path(folder).resolve()), None)
    if fd is None:
        return
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def holder(folder: str | os.PathLike) -> dict | None:
    """Who holds ``folder``'s lock (a live process other than this one), or None."""
    path = Path(folder) / LOCK_FILE
    if not path.is_file() or str(Path(folder).resolve()) in _held:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _holder(fd) or {"pid": "?"}
    else:
        return None
    finally:
        os.close(fd)
