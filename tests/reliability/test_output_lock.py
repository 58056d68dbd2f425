"""An output folder in use by another `snnc train` run is refused; a killed holder leaves no stale lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from snnc.cli import main
from snnc.outlock import LOCK_NAME
from tests.test_cli_train import write

fcntl = pytest.importorskip("fcntl")  # the lock is POSIX flock; Windows runs unlocked

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b"%d\\n" % os.getpid())
print("locked", flush=True)
time.sleep(600)
"""


def train(src: Path, out: Path, capsys) -> tuple[int, str]:
    rc = main(["train", str(src), "--out", str(out), "--epochs", "1", "--quiet"])
    return rc, capsys.readouterr().err


def test_a_folder_locked_by_this_process_is_refused(tmp_path, capsys):
    src, out = write(tmp_path), tmp_path / "run"
    out.mkdir()
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        rc, err = train(src, out, capsys)
    finally:
        os.close(fd)
    assert rc == 1, err
    assert f"error: output folder '{out}' is in use by another snnc train run" in err
    assert "another folder with --out" in err and "internal error" not in err
    assert not (out / "metrics.json").exists()


def test_the_run_proceeds_once_the_holder_is_killed(tmp_path, capsys):
    src, out = write(tmp_path), tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out / LOCK_NAME)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        rc, err = train(src, out, capsys)
        assert rc == 1, err
        assert f"output folder '{out}' is in use by another snnc train run (process {holder.pid})" in err
    finally:
        holder.kill()  # SIGKILL: no clean-up code runs in the holder
        holder.wait()
    assert (out / LOCK_NAME).exists()  # the file stays behind, its lock does not
    rc, err = train(src, out, capsys)
    assert rc == 0, err
    assert (out / "metrics.json").exists() and list(out.glob("epoch-*.npz"))


def test_the_lock_is_released_after_a_run(tmp_path, capsys):
    """The same process (a notebook, a test) may train into one folder twice in a row."""
    src, out = write(tmp_path), tmp_path / "run"
    assert train(src, out, capsys)[0] == 0
    fd = os.open(out / LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError if still held
    finally:
        os.close(fd)
    rc, err = train(src, out, capsys)
    assert rc == 0, err
