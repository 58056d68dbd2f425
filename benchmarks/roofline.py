"""Achieved synaptic events and neuron updates per second against what this machine's memory
bandwidth allows (issue 14's roofline line), for the SHD-shaped network of
examples/shd_eventprop.snn.

    python benchmarks/roofline.py [--batches 4] [--rounds 3] [--threads 1,2]

1. **Bandwidth.** A small C probe (compiled here with `$CC` or `cc`, `-O3 -march=native -fopenmp`)
   sums a float array: 256 MiB (main memory) and 1 MiB per thread (each thread's share stays in its
   own L2 cache), with 1 and with `--threads` threads. Best of several passes, GB/s.
2. **Work.** One forward pass of each synthetic SHD-shaped batch (`_synthetic_shd.py`, batch 32,
   700 -> 256 recurrent LIF -> 20, 1000 steps of 1 ms) with the hidden spikes recorded. Synaptic
   events per batch: each spike times its fan-out (input: 256; hidden: 256 + 20). Neuron updates:
   (256 + 20) neurons x 1000 steps x 32 trials. EventProp's backward pass visits each spike's row
   once more and steps each neuron's adjoints once more, so training does twice that work.
3. **Bytes, at least.** Forward, a synaptic event reads its weight (4 B; the post neuron's input
   row stays in cache). Backward, it adds into its weight's per-trial gradient (read and write,
   8 B) and, on a projection whose pre neurons are hidden (the adjoint's transmission), reads the
   weight again (4 B). A neuron update reads and writes each of its states (8 B per state: v and
   one synaptic current per incoming projection; the adjoints likewise backward). The ceiling is
   then bytes / bandwidth, per clock of bandwidth (main memory, L2).
4. **Achieved.** Seconds per batch of `net.artefact.run` (simulation) and of `Trainer.train` on one
   batch (forward, loss, backward, Adam), median over `--rounds` x `--batches`, per thread count.

Prints events/s, updates/s, the time those bytes take at each bandwidth, and the achieved rate as a
fraction of each ceiling's (bound time / achieved time: 100 % runs at the ceiling; above 100 % of the
memory's means the data stayed in cache); the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _paired import shd_batch, timed  # noqa: E402

EXAMPLE = HERE.parent / "examples" / "shd_eventprop.snn"
BATCH = 32

PROBE_C = r"""
#include <stdint.h>
#include <omp.h>
/* seconds per pass of `passes` passes summing a[0:n) with `threads` threads, best of `repeats`:
 * each thread sums its own block every pass, so a block that fits the thread's cache stays there */
double snnc_read_seconds(const float* a, int64_t n, int passes, int repeats, int threads, float* sink) {
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        float total = 0.0f;
        const double t = omp_get_wtime();
        #pragma omp parallel num_threads(threads) reduction(+:total)
        {
            const int nt = omp_get_num_threads(), id = omp_get_thread_num();
            const int64_t lo = n * id / nt, hi = n * (id + 1) / nt;
            for (int p = 0; p < passes; p++) {
                __asm__ volatile("" : : "r"(a) : "memory");  /* read the block again every pass */
                float s = 0.0f;
                #pragma omp simd reduction(+:s)
                for (int64_t i = lo; i < hi; i++) s += a[i];
                total += s;
            }
        }
        const double dt = (omp_get_wtime() - t) / passes;
        if (dt < best) best = dt;
        *sink += total;
    }
    return best;
}
"""


@functools.cache
def _probe() -> ctypes.CDLL:
    """The bandwidth probe, compiled into a scratch folder once per process."""
    folder = Path(tempfile.mkdtemp(prefix="snnc_roofline_"))
    src, lib = folder / "probe.c", folder / "probe.so"
    src.write_text(PROBE_C)
    cc = os.environ.get("CC", "cc").split()
    cmd = [*cc, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", str(src), "-o", str(lib)]
    subprocess.run(cmd, check=True)
    # OpenMP's threads spin for a while after each parallel region by default: right after the probe
    # they took the second core from snnc's team (simulation on two threads measured 1.1x one thread
    # instead of 2x). libgomp reads this once, when the probe loads it.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    probe = ctypes.CDLL(str(lib))
    probe.snnc_read_seconds.restype = ctypes.c_double
    probe.snnc_read_seconds.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_float),
    ]
    return probe


def bandwidth(threads: int, nbytes: int, passes: int, repeats: int = 5) -> float:
    """Read bandwidth in GB/s (1e9 B/s) over an array of `nbytes` with `threads` threads."""
    probe = _probe()
    a = np.ones(nbytes // 4, dtype=np.float32)
    sink = ctypes.c_float(0.0)
    best = probe.snnc_read_seconds(a.ctypes.data, a.size, passes, repeats, threads, ctypes.byref(sink))
    return nbytes / best / 1e9


def work(net, data) -> dict[str, float]:  # noqa: ANN001
    """Synaptic events, neuron updates and bytes (at least) of one forward pass, mean per batch."""
    from snnc.runtime.artefact import RecordRequest

    net_ir = net.network
    fan_out = {p: 0 for p in net_ir.populations}
    states = {p: len(net.artefact.manifest["populations"][p]["states"]) for p in net_ir.populations}
    hidden_pre = set()
    for proj in net_ir.projections.values():
        fan_out[proj.pre] += int(np.prod(net_ir.populations[proj.post].shape))
        states[proj.post] += 1  # its synaptic current (Exponential synapses throughout)
        if net_ir.populations[proj.pre].role != "input":
            hidden_pre.add(proj.name)
    neurons = {p: int(np.prod(pop.shape)) for p, pop in net_ir.populations.items() if pop.role != "input"}
    steps = net.artefact.num_steps
    events, fwd_bytes, bwd_bytes = [], [], []
    for x, _ in data:
        spikes = net.artefact.run(x, RecordRequest.of(spikes=["h"])).spikes
        counts = {"x": sum(ex.spike_times.size for ex in x["x"]), "h": int(spikes["h"].sum())}
        ev = sum(counts[p] * fan_out[p] for p in counts)
        ev_hidden = sum(
            counts[proj.pre] * int(np.prod(net_ir.populations[proj.post].shape))
            for proj in net_ir.projections.values()
            if proj.name in hidden_pre
        )
        events.append(ev)
        updates_bytes = sum(neurons[p] * states[p] * 8 for p in neurons) * steps * BATCH
        fwd_bytes.append(4 * ev + updates_bytes)
        bwd_bytes.append(8 * ev + 4 * ev_hidden + updates_bytes)
    updates = sum(neurons.values()) * steps * BATCH
    return {
        "synaptic_events": statistics.mean(events),
        "neuron_updates": float(updates),
        "forward_bytes": statistics.mean(fwd_bytes),
        "backward_bytes": statistics.mean(bwd_bytes),
    }


def _median_seconds(fn, data, rounds: int) -> float:  # noqa: ANN001
    fn(*data[-1])  # first touch
    return statistics.median(fn(*batch) for _ in range(rounds) for batch in data[:-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    args = ap.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]

    import snnc

    net = snnc.compile(str(EXAMPLE), batch_size=BATCH, seed=1)
    trainer = net.make_trainer(batch_size=BATCH)
    data = [shd_batch(b, BATCH) for b in range(args.batches + 1)]
    w = work(net, data[:-1])

    def simulate(x, y) -> float:  # noqa: ANN001
        begin = time.perf_counter()
        net.artefact.run(x)
        return time.perf_counter() - begin

    def train(x, y) -> float:  # noqa: ANN001
        return timed(trainer, x, y)[0]

    rows = []
    for threads in thread_counts:
        dram = bandwidth(threads, 256 << 20, 2)
        l2 = bandwidth(threads, threads << 20, 300)
        net.set_threads(threads)
        weights = net.weights
        for what, fn, bytes_, passes in (
            ("simulation", simulate, w["forward_bytes"], 1),
            ("training", train, w["forward_bytes"] + w["backward_bytes"], 2),
        ):
            seconds = _median_seconds(fn, data, args.rounds)
            net.set_weights(weights)  # every round trains from the same start
            row = {
                "threads": threads,
                "what": what,
                "seconds_per_batch": seconds,
                "synaptic_events_per_s": passes * w["synaptic_events"] / seconds,
                "neuron_updates_per_s": passes * w["neuron_updates"] / seconds,
                "bytes_per_batch": bytes_,
                "dram_gbs": dram,
                "l2_gbs": l2,
                "dram_bound_s": bytes_ / (dram * 1e9),
                "l2_bound_s": bytes_ / (l2 * 1e9),
            }
            row["of_dram_roofline"] = row["dram_bound_s"] / seconds
            row["of_l2_roofline"] = row["l2_bound_s"] / seconds
            rows.append(row)
            print(
                f"{threads} thread(s), {what}: {seconds * 1e3:.1f} ms/batch; "
                f"{row['synaptic_events_per_s'] / 1e9:.2f} G synaptic events/s, "
                f"{row['neuron_updates_per_s'] / 1e9:.3f} G neuron updates/s; "
                f"{bytes_ / 1e6:.0f} MB moved at least, which take {row['dram_bound_s'] * 1e3:.1f} ms at the "
                f"memory's {dram:.1f} GB/s and {row['l2_bound_s'] * 1e3:.1f} ms at L2's {l2:.1f} GB/s: "
                f"{row['of_l2_roofline']:.0%} of the L2 ceiling's rate, {row['of_dram_roofline']:.0%} of the memory's",
                flush=True,
            )
    print(
        json.dumps(
            {"benchmark": "roofline", "example": EXAMPLE.name, "batch": BATCH, "work": w, "rows": rows}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
