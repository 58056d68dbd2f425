"""Learnable delays in snnc and in mlGeNN: what each tool's delays cost against its own network
without them, and the two tools against each other, on the same CPU in one run.

    python benchmarks/delays_vs_mlgenn.py [--epochs 4] [--train 64] [--seed 1] [--threads 1]

Issue 15 asks that learnable delays cost at most 1.5x the same network without them. This puts that
ratio beside the peer's: mlGeNN's EventProp with learnable delays (Mészáros et al. 2025; its
`delay_learn_conns`), on pygenn's single-threaded CPU backend at batch 1, the only batch size that
backend runs. Four contestants train the SHD-shaped network of examples/shd_eventprop.snn (700 ->
256 recurrent LIF -> 20, Exponential synapses, EventProp, Adam, the spike-count regulariser) at
batch 1 on the same synthetic SHD batches (`_synthetic_shd.py`, seeded by --seed), from the same
initial weights:
  - `snnc`, `mlgenn`: without delays;
  - `snnc_delays`, `mlgenn_delays`: learnable delays on x -> h (initial Uniform(0, 20) ms, at most
    60 ms) and h -> h (Uniform(0, 10) ms, at most 30 ms), both tools from the same initial delays,
    learned with Adam at 0.1 ms per unit gradient step (snnc: `lr = 100` times the weights' 0.001).
Each epoch every contestant trains once, the order rotating, so all see the same load. mlGeNN runs
one compiled network per process, so each mlGeNN contestant lives in a child process of this script
(`--worker NAME`) that trains an epoch when told to and answers with its seconds.

Prints per contestant the median seconds per example (min, max over epochs), each tool's ratio with /
without delays, and mlGeNN over snnc with and without delays; the last line is one JSON object.
Without pygenn and ml_genn (built by hand, see vs_mlgenn.py) it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import vs_mlgenn  # noqa: E402

#: the learnable delays added to examples/shd_eventprop.snn, as in examples/shd_delays.snn
DELAYS = {
    "x_to_h": ("x -> h", "Trainable(Uniform(0 ms, 20 ms), max = 60 ms, lr = 100)", 60),
    "h_to_h": ("h -> h", "Trainable(Uniform(0 ms, 10 ms), max = 30 ms, lr = 100)", 30),
}
DELAY_LR = 0.1  # mlGeNN's Adam for delays: snnc's lr = 100 times Adam's 0.001
CONTESTANTS = ("snnc", "snnc_delays", "mlgenn", "mlgenn_delays")


def sources() -> dict[str, str]:
    """examples/shd_eventprop.snn as written and with learnable delays on x -> h and h -> h."""
    plain = vs_mlgenn.CASES["shd"][0].read_text()
    delayed = plain
    for head, trainable, _ in DELAYS.values():
        pattern = re.compile(re.escape(head) + r"(\s*:\s*Dense\(weight = \w+\([^()]*\))\)")
        delayed, n = pattern.subn(f"{head}\\g<1>,\n{' ' * 21}delay = {trainable})", delayed)
        if n != 1:
            raise SystemExit(
                f"expected one '{head} : Dense(weight = ...)' in shd_eventprop.snn: update this benchmark"
            )
    return {"snnc": plain, "snnc_delays": delayed}


def _snnc(source: str, threads: int, weights: dict[str, np.ndarray]):  # noqa: ANN202
    import snnc

    net = snnc.compile(source, batch_size=1, seed=1)
    net.set_threads(threads)
    net.set_weights({k: v for k, v in weights.items() if k in net.weights})
    return net, net.make_trainer(batch_size=1)


def _setup(seed: int, train: int) -> tuple[dict, dict, dict[str, np.ndarray], dict[str, str]]:
    """The data, the initial weights and delays (snnc's draw with `seed`) and the two snnc texts:
    the same in the parent and in each worker."""
    import snnc

    vs_mlgenn.EXAMPLE, vs_mlgenn.LR, vs_mlgenn.GAMMA, vs_mlgenn.DT, vs_mlgenn.STEPS = vs_mlgenn.CASES["shd"]
    texts = sources()
    probe = snnc.compile(texts["snnc_delays"], batch_size=1, seed=seed)
    weights = {k: np.array(v, dtype=np.float32) for k, v in probe.weights.items()}
    x, y, _, _ = vs_mlgenn._synthetic_shd(train, 1, seed)
    return x, y, weights, texts


def _worker(name: str, seed: int, train: int) -> int:
    """One mlGeNN contestant: trains an epoch per line read ("<epoch>"), prints its seconds."""
    x, y, weights, _ = _setup(seed, train)
    spikes, labels = vs_mlgenn._mlgenn_spikes(x["x"]), np.asarray(y["out"])
    delays = None
    if name == "mlgenn_delays":  # mlGeNN's delays are in steps, snnc's in ms
        delays = {n: (weights[f"delay_{n}"] / vs_mlgenn.DT, most) for n, (_, _, most) in DELAYS.items()}
    folder = tempfile.mkdtemp(prefix=f"delays_vs_mlgenn_{name}_")
    most_spikes = int(np.diff(x["x"].offsets).max())
    run = vs_mlgenn.MLGeNNShd(
        spikes, labels, weights, folder, most_spikes=most_spikes, delays=delays, delay_lr=DELAY_LR
    )
    print("ready", flush=True)
    for line in sys.stdin:
        seconds, _ = run.epoch(int(line))
        print(seconds, flush=True)
    return 0


class _Child:
    """A `--worker` process of this script, driven line by line."""

    def __init__(self, name: str, seed: int, train: int):
        cmd = [sys.executable, __file__, "--worker", name, "--seed", str(seed), "--train", str(train)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._answer()  # built and loaded

    def _answer(self) -> str:
        while True:  # GeNN's build prints to stdout too: the answer is the last line, a number or "ready"
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"an mlGeNN worker stopped (exit {self.proc.wait()})")
            line = line.strip()
            if line == "ready" or re.fullmatch(r"[0-9.e+-]+", line):
                return line

    def epoch(self, epoch: int) -> float:
        self.proc.stdin.write(f"{epoch}\n")
        self.proc.stdin.flush()
        return float(self._answer())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--train", type=int, default=64, help="training examples per epoch")
    ap.add_argument("--seed", type=int, default=1, help="data and initial weights")
    ap.add_argument("--threads", type=int, default=1, help="snnc's threads per batch")
    ap.add_argument("--worker", choices=("mlgenn", "mlgenn_delays"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    try:
        import ml_genn  # noqa: F401
        import pygenn  # noqa: F401
    except ImportError as err:
        print(f"skipped: this benchmark needs pygenn and ml_genn ({err}); see vs_mlgenn.py's docstring")
        print(json.dumps({"benchmark": "delays_vs_mlgenn", "skipped": str(err)}))
        return 0
    if args.worker:
        return _worker(args.worker, args.seed, args.train)

    x, y, weights, texts = _setup(args.seed, args.train)
    runs: dict[str, Any] = {name: _snnc(text, args.threads, weights) for name, text in texts.items()}
    children = {name: _Child(name, args.seed, args.train) for name in ("mlgenn", "mlgenn_delays")}
    seconds: dict[str, list[float]] = {name: [] for name in CONTESTANTS}
    for epoch in range(args.epochs):
        order = CONTESTANTS[epoch % 4 :] + CONTESTANTS[: epoch % 4]
        for name in order:
            if name in children:
                s = children[name].epoch(epoch)
            else:
                s, _ = vs_mlgenn._snnc_epoch(runs[name], x, y, epoch)
            seconds[name].append(s / args.train)
        print(
            f"epoch {epoch}: " + ", ".join(f"{n} {seconds[n][-1] * 1e3:.1f} ms/example" for n in CONTESTANTS),
            flush=True,
        )
    for child in children.values():
        child.close()

    summary = {name: vs_mlgenn._spread(values) for name, values in seconds.items()}
    per_epoch = {  # ratios within each epoch (the same load), then their spread
        "snnc_delays_over_snnc": ("snnc_delays", "snnc"),
        "mlgenn_delays_over_mlgenn": ("mlgenn_delays", "mlgenn"),
        "mlgenn_over_snnc": ("mlgenn", "snnc"),
        "mlgenn_delays_over_snnc_delays": ("mlgenn_delays", "snnc_delays"),
        "mlgenn_over_snnc_delays": ("mlgenn", "snnc_delays"),
    }
    ratios = {
        key: vs_mlgenn._spread([a / b for a, b in zip(seconds[top], seconds[bottom], strict=True)])
        for key, (top, bottom) in per_epoch.items()
    }
    for name in CONTESTANTS:
        s = summary[name]
        print(
            f"{name:14s} {s['median'] * 1e3:.2f} ms/example (min {s['min'] * 1e3:.2f}, max {s['max'] * 1e3:.2f})"
        )
    for key, r in ratios.items():
        print(f"{key}: {r['median']:.2f}x (epochs {r['min']:.2f}-{r['max']:.2f})")
    print(
        json.dumps(
            {
                "benchmark": "delays_vs_mlgenn",
                "epochs": args.epochs,
                "train_examples": args.train,
                "threads": args.threads,
                "seed": args.seed,
                "seconds_per_example": summary,
                "ratios": ratios,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
