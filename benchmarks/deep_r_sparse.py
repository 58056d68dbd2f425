"""What Deep R on sparse (CSR) projections saves against Deep R on Dense ones, on an SHD-sized
recurrent layer (700 -> 256 recurrent LIF -> 20) at 10 % connectivity.

    python benchmarks/deep_r_sparse.py [--algorithm eventprop|eprop] [--rounds 3] [--batches 3]
        [--batch-size 32] [--duration 1000] [--threads 1] [--connectivity 0.1]

Two variants of one network train with `rewiring = deep_r(projections = (x_to_h, h_to_h), ...)`:
- dense: x_to_h and h_to_h are Dense; Deep R keeps `connectivity` of their synapses active under a
  mask (inactive weights held at 0), so every synapse is still simulated and differentiated;
- sparse: the same projections are `Sparse(p = connectivity)`; Deep R moves the stored synapses'
  column indices, so only they are simulated and differentiated.
EventProp uses `examples/shd_eventprop.snn` (its regulariser too); e-prop the same layers with
Delta synapses, an LI readout and sparse categorical cross-entropy. In both variants the initial
weights of x_to_h and h_to_h are scaled (mean / p, sd / sqrt(p)) so that each hidden neuron's summed
input keeps the dense network's mean and variance: unscaled, 10 % of the example's weights leave the
hidden layer silent, and a silent layer costs nothing to train. The hidden spikes per neuron and
trial are printed for each variant. Both variants train
on the same seeded SHD-shaped batches (`_synthetic_shd.py`), taking turns every round (dense,
sparse, sparse, dense, ...). Timed per batch: wall and CPU seconds of `Trainer.train` on one batch
(forward, backward, optimiser step, rewiring). Memory: the bytes of the arrays the artefact holds
per synapse (weights, structure, gradients, eligibilities) plus the optimiser's moments, after
training, and each variant's resident memory after one batch in a process of its own (`--rss`).

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "shd_eventprop.snn"
sys.path.insert(0, str(HERE))
from _paired import interleaved, shd_batch, spread, timed, variant  # noqa: E402

REWIRED = ("x_to_h", "h_to_h")
_NORMAL = re.compile(r"Normal\(mean = ([-0-9.e]+), sd = ([-0-9.e]+)\)")

EPROP = """
use std.{SpikeInput, LIF, LI, Delta}
network shd {
    input  x   = SpikeInput(700)
    hidden h   = LIF(256, tau_mem = 20 ms)
    output out = LI(20, tau_mem = 20 ms, readout = avg_var)
    x -> h   : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta()
    h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.1)), Delta()
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 0.1)), Delta()
}
train shd {
    algorithm  = eprop(c_reg = 0.001, f_target = 10 Hz, tau_reg = 500 ms)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.001)
    dt         = 1 ms
    duration   = 1000 ms
    batch_size = 32
    seed       = 1
}
"""


def sources(algorithm: str, p: float, duration: float) -> dict[str, str]:
    """The dense and the sparse variant of the network, both with Deep R on x_to_h and h_to_h."""
    base = EXAMPLE.read_text() if algorithm == "eventprop" else EPROP
    base = re.sub(r"duration(\s*)= 1000 ms", rf"duration\g<1>= {duration:g} ms", base)
    lines = {"x -> h   : Dense(", "h -> h   : Dense("}
    if not all(line in base for line in lines) or "    dt " not in base:
        raise SystemExit("the network text changed: update this benchmark")
    for line in lines:  # 1/p of the synapses: each neuron's summed input keeps its mean and variance
        at = base.index(line)
        end = base.index("\n", at)
        mean, sd = (float(v) for v in _NORMAL.search(base, at, end).groups())
        scaled = f"Normal(mean = {mean / p:.4g}, sd = {sd / math.sqrt(p):.4g})"
        base = base[:at] + _NORMAL.sub(scaled, base[at:end], 1) + base[end:]
    rewiring = "    rewiring       = deep_r(projections = (x_to_h, h_to_h){}, l1 = 1e-8)\n    dt "
    dense = base.replace("    dt ", rewiring.format(f", connectivity = {p:g}"), 1)
    sparse = base.replace("    dt ", rewiring.format(""), 1)
    for line in lines:
        sparse = sparse.replace(line, line.replace("Dense(", f"Sparse(p = {p:g}, "))
    return {"dense": dense, "sparse": sparse}


def synapse_bytes(trainer) -> dict[str, int]:  # noqa: ANN001
    """Bytes per role of the artefact's arrays owned by the rewired projections, and the optimiser's
    moments of their weights (the benchmark reads the C artefact's array table by manifest name)."""
    art = trainer.artefact
    out: dict[str, int] = {}
    for spec in art.manifest["arrays"]:
        if spec["owner"] in REWIRED and spec["name"] in art._arrays:
            key = spec["kind"]
            out[key] = out.get(key, 0) + int(art._arrays[spec["name"]].nbytes)
    moments = sum(
        int(arrays[name].nbytes)
        for arrays in trainer.optimiser._buffers().values()
        for name in REWIRED
        if name in arrays
    )
    out["optimiser"] = moments
    out["total"] = sum(out.values())
    return out


def hidden_rate(trainer, x: dict) -> float:  # noqa: ANN001
    """Spikes per hidden neuron and trial of one batch (its current weights)."""
    from snnc.runtime.artefact import RecordRequest

    spikes = trainer.artefact.run(x, RecordRequest.of(spikes=["h"])).spikes["h"]
    return float(spikes.sum() / (spikes.shape[0] * spikes.shape[2]))


def _resident_kib() -> int:
    """This process's resident memory now (KiB; Linux). Not the peak: compiling peaks above the
    arrays of a small network, and the arrays are what the variants differ in."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def _rss(args: argparse.Namespace, name: str) -> int:
    """Resident memory (KiB) of a process that has compiled and trained one batch of `name` only."""
    cmd = [sys.executable, __file__, "--only", name, "--algorithm", args.algorithm]
    cmd += ["--batch-size", str(args.batch_size), "--duration", str(args.duration)]
    cmd += ["--connectivity", str(args.connectivity)]
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return int(json.loads(run.stdout.splitlines()[-1])["rss_kib"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--algorithm", choices=("eventprop", "eprop"), default="eventprop")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=int, default=3, help="training batches per variant and round")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--duration", type=float, default=1000.0, help="ms per trial (1 ms steps)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--connectivity", type=float, default=0.1)
    ap.add_argument("--rss", action="store_true", help="also measure each variant's peak memory alone")
    ap.add_argument("--only", choices=("dense", "sparse"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    steps = int(args.duration)

    srcs = sources(args.algorithm, args.connectivity, args.duration)
    if args.only:  # a child of --rss: one variant, one batch
        trainer = variant(srcs[args.only], args.batch_size, args.threads)
        timed(trainer, *shd_batch(0, args.batch_size, steps))
        print(json.dumps({"rss_kib": _resident_kib()}))
        return

    trainers = {name: variant(src, args.batch_size, args.threads) for name, src in srcs.items()}
    data = [shd_batch(b, args.batch_size, steps) for b in range(args.batches + 1)]

    def report(r: int, medians: dict[str, dict[str, float]], ratios: dict[str, list[float]]) -> None:
        print(
            f"round {r + 1}: dense {medians['dense']['cpu']:.3f} s/batch CPU, sparse "
            f"{medians['sparse']['cpu']:.3f}; dense/sparse wall {ratios['wall'][-1]:.2f}, cpu {ratios['cpu'][-1]:.2f}",
            flush=True,
        )

    per_batch, ratios = interleaved(trainers, data, args.rounds, ("dense", "sparse"), report)
    summary = {name: {clock: spread(v) for clock, v in clocks.items()} for name, clocks in per_batch.items()}
    memory = {name: synapse_bytes(t) for name, t in trainers.items()}
    rates = {name: hidden_rate(t, data[0][0]) for name, t in trainers.items()}
    rewiring = trainers["sparse"].rewiring
    active = {
        "dense": {n: int(trainers["dense"].rewiring.masks[n].sum()) for n in REWIRED},
        "sparse": {n: int(rewiring.columns[n].size) for n in REWIRED},
    }
    for name in trainers:
        c = summary[name]["cpu"]
        print(
            f"{name:>6}: {c['median']:.3f} s/batch CPU (min {c['min']:.3f}, max {c['max']:.3f}); "
            f"active synapses {active[name]}; per-synapse arrays and moments {memory[name]['total'] / 2**20:.1f} MiB; "
            f"{rates[name]:.1f} hidden spikes per neuron and trial"
        )
    result = {
        "benchmark": "deep_r_sparse",
        "algorithm": args.algorithm,
        "connectivity": args.connectivity,
        "batch_size": args.batch_size,
        "steps": steps,
        "threads": args.threads,
        "active_synapses": active,
        "seconds_per_batch": summary,
        "ratio_dense_over_sparse_wall": spread(ratios["wall"]),
        "ratio_dense_over_sparse_cpu": spread(ratios["cpu"]),
        "synapse_bytes": memory,
        "hidden_spikes_per_neuron_and_trial": rates,
    }
    if args.rss:
        result["rss_kib_after_one_batch"] = {name: _rss(args, name) for name in trainers}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
