"""What learnable delays cost: training time of `examples/shd_delays.snn` against the same network
without delays (issue 15: at most 1.5x).

    python benchmarks/delays_cost.py [--rounds 3] [--batches 4] [--batch-size 32] [--threads 1]

Both variants are compiled from the example's own text; the one without delays drops the two
`delay = Trainable(...)` arguments and keeps everything else (trainable per-neuron time constants,
the spike-count regulariser, EventProp, Adam). They train on the same seeded SHD-shaped batches
(`_synthetic_shd.py`: 700 channels, 1000 steps of 1 ms, 20 classes) from their own initial weights,
taking turns every round (with delays, without, without, with, ...) so that both see the same load.
Timed per batch: wall and CPU seconds of `Trainer.train` on one batch (forward, loss, backward,
optimiser step); input conversion and compilation are outside the timing.

Prints per variant the median seconds per batch with min and max, and the ratio with/without per
round; the last line is one JSON object (`ratio_wall`, `ratio_cpu`: median, min, max over rounds).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "shd_delays.snn"
sys.path.insert(0, str(HERE))
from _paired import interleaved, shd_batch, spread, variant  # noqa: E402

#: `, delay = Trainable(<one level of nested parentheses>)` as written in the example
_TRAINABLE_DELAY = re.compile(r",\s*delay\s*=\s*Trainable\((?:[^()]|\([^()]*\))*\)")


def sources() -> dict[str, str]:
    """The example as written and the same text without its learnable delays."""
    with_delays = EXAMPLE.read_text()
    without, n = _TRAINABLE_DELAY.subn("", with_delays)
    if n != 2:
        raise SystemExit(f"expected two learnable delays in {EXAMPLE}, found {n}: update this benchmark")
    return {"delays": with_delays, "no_delays": without}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=int, default=4, help="training batches per variant and round")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    trainers = {name: variant(src, args.batch_size, args.threads) for name, src in sources().items()}
    data = [shd_batch(b, args.batch_size) for b in range(args.batches + 1)]

    def report(r: int, medians: dict[str, dict[str, float]], ratios: dict[str, list[float]]) -> None:
        print(
            f"round {r + 1}: with delays {medians['delays']['wall']:.3f} s/batch, "
            f"without {medians['no_delays']['wall']:.3f} s/batch, "
            f"ratio wall {ratios['wall'][-1]:.2f}, cpu {ratios['cpu'][-1]:.2f}",
            flush=True,
        )

    per_batch, ratios = interleaved(trainers, data, args.rounds, ("delays", "no_delays"), report)
    summary = {name: {clock: spread(v) for clock, v in clocks.items()} for name, clocks in per_batch.items()}
    for name, clocks in summary.items():
        w = clocks["wall"]
        print(f"{name:>10}: {w['median']:.3f} s/batch wall (min {w['min']:.3f}, max {w['max']:.3f})")
    print(
        json.dumps(
            {
                "benchmark": "delays_cost",
                "batch_size": args.batch_size,
                "threads": args.threads,
                "seconds_per_batch": summary,
                "ratio_wall": spread(ratios["wall"]),
                "ratio_cpu": spread(ratios["cpu"]),
            }
        )
    )


if __name__ == "__main__":
    main()
