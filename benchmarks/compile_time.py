"""How long `snnc compile FILE` takes, cold and cached, as a whole command and inside the process.

    python benchmarks/compile_time.py [--rounds 3] [--example examples/yinyang_eventprop.snn ...]

For each example (default: every `examples/*.snn`) and round, runs `snnc compile FILE --timings` in a
fresh process twice: cold (the compile cache emptied: no library, no compiled network; the parser's
tables, the compiler's probes and the compiled templates kept, as after any earlier compile with
this snnc) and then cached. Each run is timed as a whole command (wall clock and CPU time of the
process and its compilers, from `os.wait4`) and by its own `--timings` total. Examples take turns
within a round. Prints the median, min and max per example; the last line is one JSON object.

Runs with the interpreter running this script and a cache folder of its own (a temporary one,
or `--cache DIR`), with bytecode written as an installed package writes it
(PYTHONDONTWRITEBYTECODE unset). The issue's goal: cached <= 0.3 s inside, <= 0.6 s whole; cold <= 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: what a cold run keeps: snnc's own tables, not what it compiled from the examples
KEPT = ("parser", "compiler", "templates")


def run(example: Path, cache: Path) -> dict[str, float]:
    """One `snnc compile --timings` in a fresh process: wall, CPU and its --timings total (s)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["SNNC_CACHE_DIR"] = str(cache)
    argv = [sys.executable, "-m", "snnc", "compile", str(example), "--timings"]
    read, write = os.pipe()
    begin = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: stderr (the timings) into the pipe, stdout dropped
        os.dup2(write, 2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.execve(sys.executable, argv, env)
    os.close(write)
    err = b""
    while chunk := os.read(read, 65536):
        err += chunk
    os.close(read)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - begin
    text = err.decode()
    if status != 0:
        raise SystemExit(f"snnc compile {example} failed:\n{text}")
    total = re.search(r"^total\s+([\d.]+)", text, re.M)
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,  # its compilers' included: it waited for them
        "timings": float(total.group(1)) / 1e3 if total else float("nan"),
    }


def empty(cache: Path) -> None:
    """The compile cache emptied, snnc's own tables kept."""
    for entry in cache.iterdir() if cache.exists() else ():
        if entry.name not in KEPT:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--example", action="append", type=Path, help="a .snn file (repeatable)")
    ap.add_argument("--cache", type=Path, help="the cache folder (default: a temporary one)")
    args = ap.parse_args()
    examples = args.example or sorted((ROOT / "examples").glob("*.snn"))
    cache = args.cache or Path(tempfile.mkdtemp(prefix="snnc-compile-time-"))
    try:
        run(examples[0], cache)  # the parser's tables, probes and templates, made once
        results: dict[str, dict[str, dict[str, list[float]]]] = {}
        for r in range(args.rounds):
            for example in examples if r % 2 == 0 else examples[::-1]:
                per = results.setdefault(example.name, {"cold": {}, "cached": {}})
                empty(cache)
                for mode in ("cold", "cached"):
                    for clock, value in run(example, cache).items():
                        per[mode].setdefault(clock, []).append(value)
    finally:
        if args.cache is None:
            shutil.rmtree(cache, ignore_errors=True)
    summary = {
        name: {mode: {clock: spread(v) for clock, v in clocks.items()} for mode, clocks in per.items()}
        for name, per in results.items()
    }
    print(f"{args.rounds} rounds; median (min-max) seconds")
    print(f"{'example':<24} {'mode':<7} {'wall':<18} {'cpu':<18} {'--timings':<18}")
    for name, per in summary.items():
        for mode, clocks in per.items():
            cells = [f"{c['median']:.2f} ({c['min']:.2f}-{c['max']:.2f})" for c in clocks.values()]
            print(f"{name:<24} {mode:<7} " + " ".join(f"{cell:<18}" for cell in cells))
    print(json.dumps({"rounds": args.rounds, "examples": summary}))


if __name__ == "__main__":
    main()
