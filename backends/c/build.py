"""Compile generated C into a shared library, cached by content hash.

The cache key is sha256 of (code, flags, compiler identity), so a changed compiler or flag never
reuses a stale library. Where the printer also split the code into translation units (`units`),
they compile in parallel and link into the same library; the key is still the whole file's, which
is what `--emit c` writes and what is compiled instead when a unit fails. Builds write to a
temporary file and `os.replace` it into place, which is atomic: two processes compiling the same
model both succeed and one library wins. A cached library
that fails to load is rebuilt. Compiler failures become a `DiagnosticError` naming the generated file
and quoting the compiler's message (never a Python traceback).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from snnc.ir.diagnostics import Diagnostic, DiagnosticError

from snnc.cache import cache_dir

__all__ = ["build", "cache_dir", "compiler", "flags", "parallel_units"]

#: at most this many translation units of phases per library: beyond it each unit's fixed cost (the
#: compiler's start, the shared declarations, about 10 ms) outweighs what one more takes off
MAX_UNITS = 8

#: -std=c11 for the team's atomics (templates/team.c.j2); -pthread for its threads
BASE_FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-std=c11", "-pthread", "-fno-math-errno")
#: GCC vectorises a loop only when it needs at most 10 run-time alias checks (its default), and the
#: restrict pointers a phase loads from the struct of arrays do not spare it those checks: e-prop's
#: synapse loops (eligibilities, filtered trace and gradient of each synapse) stayed scalar, 7x
#: slower (eprop_digits at batch 1). Added where the compiler accepts it (`accepts`); same results,
#: as -std=c11 (ISO C, not gnu11) contracts no a*b+c into an FMA and vectorising reorders no sum.
VECTORISE_FLAG = "--param=vect-max-version-for-alias-checks=64"
#: GCC's unroll-and-jam (on at -O3) fuses a delivery's loop over spikes into the loop over post
#: neurons and then vectorises the weight rows with gathers: the forward pass of
#: benchmarks/sim_throughput.py ran 2.7x slower once its phases took restrict parameters
NO_JAM_FLAG = "-fno-loop-unroll-and-jam"
#: GCC's loop splitting (on at -O3) copies loops at a condition on the loop index and paths at
#: joins; on the kernels it only costs compile time: e-prop's digits.c compiled in 0.59 s instead of
#: 0.78 (evidence.c 0.46 instead of 0.72, best of 7 each, GCC 12) with the same training speed
#: (CPU time per example, digits e-prop, Yin-Yang and SHD-shaped EventProp, within +-5 %)
NO_SPLIT_FLAGS = ("-fno-split-loops", "-fno-split-paths")
#: tuning flags, each passed only where the compiler accepts it
TUNING_FLAGS = (VECTORISE_FLAG, NO_JAM_FLAG, *NO_SPLIT_FLAGS)


def compiler() -> list[str]:
    return shlex.split(os.environ.get("CC", "cc")) or ["cc"]


@functools.lru_cache(maxsize=8)
def compiler_version(cc: tuple[str, ...]) -> str:
    try:
        out = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DiagnosticError(
            Diagnostic(
                "E-CC-MISSING",
                f"cannot run the C compiler '{' '.join(cc)}': {exc}",
                hint="install a C compiler or point $CC at one",
            )
        ) from None
    return out.stdout.strip() or out.stderr.strip()


def _remembered(cc: tuple[str, ...], question: str, ask: Callable[[], bool]) -> bool:
    """A probe's answer, kept on disk per compiler and its version (`<cache>/compiler/<key>.json`):
    a new process would otherwise run the probes again, four compiler runs and about 0.1 s of a
    cold `snnc compile`. A missing, damaged or unwritable file only means asking again."""
    key = hashlib.sha256("\0".join([*cc, compiler_version(cc)]).encode()).hexdigest()[:16]
    path = cache_dir() / "compiler" / f"{key}.json"
    try:
        answers = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        answers = {}
    if not isinstance(answers, dict):
        answers = {}
    if isinstance(answers.get(question), bool):
        return answers[question]
    answers[question] = answer = ask()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, json.dumps(answers, sort_keys=True))
    except OSError:
        pass
    return answer


@functools.lru_cache(maxsize=8)
def accepts(cc: tuple[str, ...], flag: str) -> bool:
    """Whether the compiler takes `flag` (tried once per compiler on an empty translation unit)."""
    return _remembered(cc, flag, lambda: _flag_probe(cc, flag))


def _flag_probe(cc: tuple[str, ...], flag: str) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "flag.c"
        src.write_text("int snnc_flag_probe(void) { return 0; }\n")
        res = subprocess.run(
            [*cc, flag, "-Werror", "-fPIC", "-shared", str(src), "-o", str(Path(tmp) / "flag.so")],
            capture_output=True,
        )
        return res.returncode == 0


def flags(cc: tuple[str, ...]) -> list[str]:
    extra = shlex.split(os.environ.get("SNNC_CFLAGS", ""))
    return list(BASE_FLAGS) + [f for f in TUNING_FLAGS if accepts(cc, f)] + extra


@dataclass(frozen=True)
class BuildResult:
    library: Path
    source: Path
    key: str
    cached: bool


def parallel_units() -> int:
    """Into how many translation units to print the phases: one per core this process may run on,
    at most `MAX_UNITS`; 1 (the whole file) on one core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return 1 if cores < 2 else min(cores, MAX_UNITS)


def build(
    code: str,
    name: str = "model",
    *,
    directory: Path | None = None,
    units: Sequence[str] = (),
) -> BuildResult:
    """Compile `code` (or reuse the cached library); returns where the library and source live.

    `units`, when there are two or more, is the same code as translation units (the C printer's
    `print_units`): they compile in parallel instead of `code` as one."""
    cc = tuple(compiler())
    fl = flags(cc)
    key = hashlib.sha256(
        "\0".join([code, " ".join(fl), " ".join(cc), compiler_version(cc)]).encode()
    ).hexdigest()
    root = Path(directory) if directory is not None else cache_dir()
    entry = root / key[:2] / key
    stem = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)[:40] or "model"
    src = entry / f"{stem}.c"
    lib = entry / f"{stem}.so"
    try:
        entry.mkdir(parents=True, exist_ok=True)
        if not src.exists() or src.read_text() != code:
            _atomic_write(src, code)
        if lib.exists() and _loads(lib):
            return BuildResult(lib, src, key, True)
        if len(units) < 2 or not _compile_units(cc, fl, units, lib):
            _compile(cc, fl, src, lib)
    except OSError as exc:  # a user's folder that cannot hold the cache, not a bug in snnc
        raise DiagnosticError(
            Diagnostic(
                "E-CACHE",
                f"cannot write compiled models into {root}: {exc.strerror or exc}"
                + (f" ({exc.filename})" if exc.filename else ""),
                hint="point $SNNC_CACHE_DIR at a writable folder",
            )
        ) from None
    return BuildResult(lib, src, key, False)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _loads(lib: Path) -> bool:
    """A cache entry is good only if it loads and exports the entry point."""
    try:
        handle = ctypes.CDLL(str(lib))
        return hasattr(handle, "snnc_run")
    except OSError:
        return False


def _compile(cc: tuple[str, ...], fl: list[str], src: Path, lib: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=lib.parent, prefix=".tmp-", suffix=".so")
    os.close(fd)
    cmd = [*cc, *fl, str(src), "-o", tmp, "-lm"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        os.unlink(tmp)
        raise DiagnosticError(
            Diagnostic("E-CC-MISSING", f"cannot run the C compiler '{cc[0]}': {exc}", hint="set $CC")
        ) from None
    if res.returncode != 0:
        os.unlink(tmp)
        message = (res.stderr or res.stdout).strip()
        raise DiagnosticError(
            Diagnostic(
                "E-CC",
                f"the C compiler failed on generated file {src}:\n{message}",
                hint="this is a bug in snnc's C backend unless $CC/$SNNC_CFLAGS are unusual; "
                f"the command was: {' '.join(shlex.quote(c) for c in cmd)}",
            )
        )
    os.replace(tmp, lib)


def _compile_units(cc: tuple[str, ...], fl: list[str], units: Sequence[str], lib: Path) -> bool:
    """Compile each unit to an object file, all at once, and link them into `lib`; False if any step
    fails (the caller compiles the whole file, whose errors name the file the user can read)."""
    temps: list[str] = []

    def temp(suffix: str) -> str:
        fd, path = tempfile.mkstemp(dir=lib.parent, prefix=".tmp-", suffix=suffix)
        os.close(fd)
        temps.append(path)
        return path

    running: list[subprocess.Popen] = []
    try:
        objects = []
        for text in units:
            source = temp(".c")
            Path(source).write_text(text)
            objects.append(temp(".o"))
            running.append(
                subprocess.Popen(
                    [*cc, *fl, "-c", source, "-o", objects[-1]],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        if [proc.wait() for proc in running] != [0] * len(running):
            return False
        linked = temp(".so")
        res = subprocess.run([*cc, *fl, *objects, "-o", linked, "-lm"], capture_output=True)
        if res.returncode != 0:
            return False
        os.replace(linked, lib)
        return True
    except OSError:
        return False
    finally:
        for proc in running:  # none left behind when a later one could not start
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for path in temps:
            try:
                os.unlink(path)
            except OSError:
                pass
