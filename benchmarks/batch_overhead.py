"""The fixed cost per training batch: what a batch costs outside the generated C code.

    python benchmarks/batch_overhead.py [--rounds 5] [--batches 200] [--threads 1] [--clock cpu]

Trains examples/yinyang_eventprop.snn (EventProp) and examples/eprop_digits.snn (e-prop) at batch 1
and batch 32 through the `Trainer` (the loop `snnc train` runs), timing the calls into the library
(`snnc_run`, `snnc_backward`, ...) separately. The fixed cost per batch is (wall time - time inside
the library) / batches: Python, ctypes, numpy loss and optimiser, allocations. Cases take turns
round by round; every round starts from the same weights. Prints the median, min and max per case
in microseconds; the last line is one JSON object. `--clock cpu` times the CPU time of the calling
thread instead of the wall clock (with `--threads 1` the library runs on that thread): on a machine
other programs keep busy, time spent waiting for a core then counts for neither side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASES = {"yinyang": "yinyang_eventprop.snn", "digits": "eprop_digits.snn"}
ENTRIES = (
    "snnc_run",
    "snnc_backward",
    "snnc_eprop_run",
    "snnc_learn",
    "snnc_loss",
    "snnc_gather",
    "snnc_step",
    "snnc_train",
)


#: the clock both the epoch and the library calls are timed with (`--clock`)
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}
clock = time.perf_counter


class TimedLibrary:
    """Wraps a `ctypes.CDLL` so that calls of the entry points add their time to `seconds`."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._lib, name)
        if name not in ENTRIES:
            return fn

        def timed(*args: Any) -> Any:
            begin = clock()
            try:
                return fn(*args)
            finally:
                self.seconds += clock() - begin

        return timed


def _case(example: str, batch: int, batches: int, threads: int) -> dict[str, Any]:
    from snnc.runtime.session import load_data, xy

    import snnc

    net = snnc.compile(str(ROOT / "examples" / example), batch_size=batch, threads=threads)
    x, y = xy(net.network, load_data(net.network).train)
    n = min(batch * batches, len(next(iter(y.values()))))
    xs = {k: v.subset(range(n)) for k, v in x.items()}
    ys = {k: v[:n] for k, v in y.items()}
    lib = TimedLibrary(net.artefact._lib)
    net.artefact._lib = lib
    return {"net": net, "trainer": net.make_trainer(batch_size=batch), "x": xs, "y": ys,
            "weights": net.weights, "lib": lib, "batches": -(-n // batch)}  # fmt: skip


def _epoch(case: dict[str, Any]) -> tuple[float, float]:
    case["net"].set_weights(case["weights"])
    case["lib"].seconds = 0.0
    begin = clock()
    case["trainer"].train(case["x"], case["y"], 1, callbacks=[])
    wall = clock() - begin
    return wall, case["lib"].seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batches", type=int, default=200, help="batches per timed epoch (at most)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = ap.parse_args()
    global clock
    clock = CLOCKS[args.clock]

    cases = {
        f"{name}_b{batch}": _case(
            example, batch, args.batches if batch == 1 else args.batches // 8, args.threads
        )
        for name, example in CASES.items()
        for batch in (1, 32)
    }
    for case in cases.values():
        _epoch(case)  # warm-up: spike lists grow, pages fault in
    fixed: dict[str, list[float]] = {k: [] for k in cases}
    inside: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(args.rounds):
        names = list(cases) if r % 2 == 0 else list(reversed(cases))
        for name in names:
            wall, lib = _epoch(cases[name])
            fixed[name].append((wall - lib) / cases[name]["batches"] * 1e6)
            inside[name].append(lib / cases[name]["batches"] * 1e6)
    result: dict[str, Any] = {"rounds": args.rounds, "threads": args.threads, "clock": args.clock}
    for name in cases:
        f, c = fixed[name], inside[name]
        result[name] = {
            "fixed_us_per_batch": round(statistics.median(f), 1),
            "fixed_min": round(min(f), 1),
            "fixed_max": round(max(f), 1),
            "library_us_per_batch": round(statistics.median(c), 1),
            "batches": cases[name]["batches"],
        }
        print(
            f"{name:<12} fixed {statistics.median(f):8.1f} us/batch (min {min(f):.1f}, max {max(f):.1f})"
            f"   in the library {statistics.median(c):9.1f} us/batch"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
