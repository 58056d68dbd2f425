"""One `snnc train` run per output folder, held by an OS lock on a file inside the folder.

Two runs into the same `--out` would overwrite each other's checkpoints and metrics.json. The lock is
`fcntl.flock` on `<out>/.snnc-train.lock`: the kernel drops it when the holding process ends, however it
ends, so a killed run never leaves a stale lock behind (the file itself stays, unlocked, and is reused).
The file holds the holder's process id, for the message only. Where `fcntl` does not exist (Windows)
the folder is not locked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from snnc.ir.diagnostics import Diagnostic, DiagnosticError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".snnc-train.lock"


@contextmanager
def output_folder_lock(out: Path) -> Iterator[None]:
    """Hold `out`'s lock for the duration of the block; another run holding it is a user error."""
    if fcntl is None:
        yield
        return
    path = out / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise DiagnosticError(
            Diagnostic(
                "E-OUTPUT", f"cannot create the lock file '{path}' in output folder '{out}': {e.strerror}"
            )
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            raise DiagnosticError(
                Diagnostic(
                    "E-OUTPUT-IN-USE",
                    f"output folder '{out}' is in use by another snnc train run{holder}",
                    hint="wait for that run to finish, or train into another folder with --out",
                )
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _holder(fd: int) -> str:
    """The holder's process id as " (process N)" from the lock file; empty when it cannot be read."""
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (process {pid})" if pid.isdigit() else ""
