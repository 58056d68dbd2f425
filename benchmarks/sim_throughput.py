"""Simulation throughput of the C backend against a straightforward vectorised numpy simulator.

Network: 700 spike-source inputs -> 256 recurrent LIF -> 20 LIF (exponential synapses, dense),
1000 steps of 1 ms, batch 32, each input spiking with probability 5 % per step. Both simulators
implement the Discrete IR step order; their spike counts are compared. The last line printed is a
JSON object with `synaptic_events_per_s` and `speedup_vs_numpy`.

    python benchmarks/sim_throughput.py [--repeats N] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from snnc.ir.model import Connectivity, Initialiser, Readout  # noqa: E402
from snnc.runtime.artefact import RecordRequest  # noqa: E402
from snnc.runtime.encoding import preprocess_spikes  # noqa: E402

from snnc.api import build_compiled  # noqa: E402
from tests.backends.netbuild import exponential, lif, network, source  # noqa: E402

N_IN, N_HID, N_OUT = 700, 256, 20
STEPS, DT, BATCH, P_IN = 1000, 1.0, 32, 0.05
TAU_M, TAU_S, TH = 20.0, 5.0, 1.0


def build_net():  # noqa: ANN201
    return network(
        [
            ("x", "SpikeSource", "input", (N_IN,), {}),
            ("h", "LIF", "hidden", (N_HID,), {}),
            ("out", "LIF", "output", (N_OUT,), {"readout": Readout("spike_count")}),
        ],
        [
            (
                "x_to_h",
                "x",
                "h",
                Connectivity("dense"),
                Initialiser("normal", {"mean": 0.0055, "sd": 0.01}),
                "Exponential",
                {},
            ),
            (
                "h_to_h",
                "h",
                "h",
                Connectivity("dense"),
                Initialiser("normal", {"mean": 0.0, "sd": 0.02}),
                "Exponential",
                {},
            ),
            (
                "h_to_out",
                "h",
                "out",
                Connectivity("dense"),
                Initialiser("normal", {"mean": 0.06, "sd": 0.02}),
                "Exponential",
                {},
            ),
        ],
        [lif(), exponential(), source()],
        dt_ms=DT,
        duration=STEPS * DT,
        name="bench",
    )


def numpy_sim(
    raster: np.ndarray, w: dict[str, np.ndarray], dtype=np.float32
) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """raster [batch, steps, N_IN] bool. Returns spike counts of h [batch, N_HID] and out [batch, N_OUT]."""
    a, b = dtype(math.exp(-DT / TAU_M)), dtype(math.exp(-DT / TAU_S))
    wxh, whh, who = (w[k].astype(dtype) for k in ("x_to_h", "h_to_h", "h_to_out"))
    B = raster.shape[0]
    vh, vo = np.zeros((B, N_HID), dtype), np.zeros((B, N_OUT), dtype)
    ixh, ihh, iho = np.zeros((B, N_HID), dtype), np.zeros((B, N_HID), dtype), np.zeros((B, N_OUT), dtype)
    sx_prev = np.zeros((B, N_IN), dtype)
    sh_prev = np.zeros((B, N_HID), dtype)
    ch, co = np.zeros((B, N_HID)), np.zeros((B, N_OUT))
    xs = raster.astype(dtype)
    for k in range(STEPS):
        ixh += sx_prev @ wxh  # 1. deliver spikes of step k-1
        ihh += sh_prev @ whh
        iho += sh_prev @ who
        ih = ixh + ihh  # 2. inputs
        vh = ih + (vh - ih) * a  # 3. update
        vo = iho + (vo - iho) * a
        sh = vh >= TH  # 4. spike / reset
        so = vo >= TH
        vh[sh] = 0
        vo[so] = 0
        ixh *= b
        ihh *= b
        iho *= b
        ch += sh
        co += so
        sh_prev = sh.astype(dtype)
        sx_prev = xs[:, k]
    return ch, co


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="threads per batch (0: default)")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    raster = rng.random((BATCH, STEPS, N_IN)) < P_IN
    examples = []
    for b in range(BATCH):
        steps, ids = np.nonzero(raster[b])
        examples.append(preprocess_spikes(steps * DT, ids, N_IN))

    net = build_compiled(build_net(), batch_size=BATCH, seed=0)
    if args.threads:
        net.artefact.set_threads(args.threads)
    weights = net.weights
    rec = RecordRequest.of(spikes=["h"])

    res = net.run({"x": examples}, rec)  # warm-up (and the spike counts to compare)
    c_h = res.spikes["h"].sum(axis=1)
    c_out = res.readouts["out"]
    t_c = min(_time(lambda: net.run({"x": examples})) for _ in range(args.repeats))

    t_np = float("inf")
    for _ in range(max(1, args.repeats - 1)):
        t0 = time.perf_counter()
        n_h, n_out = numpy_sim(raster, weights)
        t_np = min(t_np, time.perf_counter() - t0)

    in_spikes = int(raster[:, : STEPS - 1].sum())  # spikes of the last step are never delivered
    hid_spikes = int(res.spikes["h"][:, : STEPS - 1].sum())
    events = in_spikes * N_HID + hid_spikes * (N_HID + N_OUT)
    exact = float(np.mean(c_h == n_h))
    rel = abs(c_h.sum() - n_h.sum()) / max(1.0, n_h.sum())
    print(
        f"input spikes {int(raster.sum())}, hidden spikes C {int(c_h.sum())} / numpy {int(n_h.sum())}, "
        f"output spikes C {int(c_out.sum())} / numpy {int(n_out.sum())}"
    )
    print(
        f"hidden rate {c_h.sum() / (BATCH * N_HID * STEPS) * 100:.2f} % per step; per-neuron counts identical for {exact * 100:.1f} %"
    )
    print(f"C backend {t_c * 1e3:.1f} ms, numpy {t_np * 1e3:.1f} ms for {BATCH} x {STEPS} steps")
    agree = rel < 0.02
    if not agree:
        print("WARNING: spike counts of C and numpy differ by more than 2 %")
    print(
        json.dumps(
            {
                "synaptic_events_per_s": events / t_c,
                "speedup_vs_numpy": t_np / t_c,
                "c_seconds": t_c,
                "numpy_seconds": t_np,
                "synaptic_events": events,
                "hidden_spikes_c": int(c_h.sum()),
                "hidden_spikes_numpy": int(n_h.sum()),
                "counts_agree": bool(agree),
                "threads": args.threads or os.cpu_count(),
            }
        )
    )


def _time(fn) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
