"""Data-parallel scaling: samples/s of EventProp training on 1, 2, … MPI ranks, and each batch's
communication share; then the model of `benchmarks/README.md` evaluated for many nodes.

    python benchmarks/mpi_scaling.py [--ranks 1 2] [--batches 6] [--warmup 1] [--batch-size 32]
                                     [--bandwidth-gbs 12.5] [--latency-us 2] [--nodes 64]

The network is `examples/shd_eventprop.snn` as written, its spike-count regulariser included (its
counts are summed over the ranks in a second, small allreduce per batch),
on seeded SHD-shaped batches (`_synthetic_shd.py`), the C backend with one thread per rank.
The library is compiled once beforehand; each rank count then runs as its own `mpirun -n N` of this
script in worker mode, and rank 0 reports. Timed per batch, after a barrier: the whole training step
of the global batch (each rank's share of forward, loss, backward; one allreduce; the Adam step), and
inside it the allreduce alone. Data generation and input conversion are outside the timing.

Last line: one JSON object (`runs`: per rank count `samples_per_s`, `s_per_batch`, `allreduce_s`,
`comm_share`, `speedup`; `model`: compute per sample, gradient bytes, the allreduce time and
efficiency at `--nodes` nodes, and the smallest global batch that keeps them >= 80 % efficient).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SNN_FILE = HERE.parent / "examples" / "shd_eventprop.snn"
DT = 1.0
N_IN = 700


def snn_source() -> str:
    return SNN_FILE.read_text()


# ------------------------------------------------------------------------------------- the model
def allreduce_seconds(nbytes: float, nodes: int, bandwidth: float, latency: float) -> float:
    """Ring allreduce (reduce-scatter + allgather): 2(N-1) steps, each moving nbytes/N per link."""
    if nodes <= 1:
        return 0.0
    return 2 * (nodes - 1) * (latency + nbytes / nodes / bandwidth)


def efficiency(per_sample: float, batch: int, nodes: int, t_allreduce: float) -> float:
    """Speed-up over one node divided by N. One node takes t1 = B·c per batch; N nodes take
    c·ceil(B/N) (the largest share) plus the allreduce: E = B·c / (N·(c·ceil(B/N) + t_ar))."""
    return batch * per_sample / (nodes * (per_sample * math.ceil(batch / nodes) + t_allreduce))


def min_batch(per_sample: float, nodes: int, t_allreduce: float, target: float = 0.8) -> int:
    """The smallest global batch at which `nodes` nodes reach `target` efficiency. For B = k·N,
    E = k·c / (k·c + t_ar) >= target  <=>  k >= t_ar·target / ((1 - target)·c)."""
    k = max(1, math.ceil(t_allreduce * target / ((1.0 - target) * per_sample) - 1e-12))
    return k * nodes


# ------------------------------------------------------------------------------------- the worker
def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE))
    import numpy as np
    from _synthetic_shd import make_batch, raster_to_times_ids
    from snnc.runtime import distributed
    from snnc.runtime.encoding import preprocess_spikes
    from snnc.runtime.optimisers import get_optimiser
    from snnc.runtime.trainer import Trainer

    import snnc

    world = distributed.world()
    net = snnc.compile(snn_source(), batch_size=args.batch_size, seed=args.seed)
    art = net.artefact
    if hasattr(art, "set_threads"):
        art.set_threads(1)
    trainer = Trainer(
        art, "sparse_categorical_crossentropy", get_optimiser("adam", {"lr": 1e-3}), args.batch_size
    )
    spent = [0.0]
    reduce = world.allreduce

    def timed(buffer):  # noqa: ANN001, ANN202
        t0 = time.perf_counter()
        reduce(buffer)
        spent[0] += time.perf_counter() - t0

    world.allreduce = timed  # type: ignore[method-assign]
    times, comm = [], []
    for b in range(args.warmup + args.batches):
        raster, labels = make_batch(b, args.batch_size, args.seed)
        lo, hi = world.share(len(labels))  # only this rank's rows are converted; the rest are placeholders
        x = [None] * len(labels)
        for i, (t, ids) in enumerate(raster_to_times_ids(raster[lo:hi], DT)):
            x[lo + i] = preprocess_spikes(t, ids, N_IN)
        del raster
        world.barrier()
        spent[0] = 0.0
        t0 = time.perf_counter()
        trainer.train({"x": x}, {"out": labels}, 1, shuffle=False, callbacks=())
        elapsed = time.perf_counter() - t0
        if b >= args.warmup:
            times.append(elapsed)
            comm.append(spent[0])
    nbytes = 8 * sum(int(np.prod(w.shape)) for w in art.get_weights().values())  # float64 buffer
    if world.rank == 0:
        s = statistics.median(times)
        c = statistics.median(comm)
        print(
            json.dumps(
                {
                    "ranks": world.size,
                    "batch_size": args.batch_size,
                    "s_per_batch": s,
                    "samples_per_s": args.batch_size / s,
                    "allreduce_s": c,
                    "comm_share": c / s,
                    "gradient_bytes": nbytes,
                    "batch_times": times,
                }
            )
        )


def _launch(args: argparse.Namespace, ranks: int) -> dict:
    me = [sys.executable, str(Path(__file__).resolve()), "--worker", "--batches", str(args.batches)]
    me += ["--warmup", str(args.warmup), "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if ranks > 1:
        mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
        if mpirun is None:
            sys.exit(
                "mpi_scaling: no mpirun on PATH (install Open MPI or MPICH, and pip install 'snnc[mpi]')"
            )
        flags = (
            ["--oversubscribe"]
            if "Open MPI" in subprocess.run([mpirun, "--version"], capture_output=True, text=True).stdout
            else []
        )
        if flags and os.geteuid() == 0:
            flags.append("--allow-run-as-root")
        me = [mpirun, "-n", str(ranks), *flags, *me]
    out = subprocess.run(me, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"mpi_scaling: {ranks} rank(s) failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bandwidth-gbs", type=float, default=12.5, help="per-link bandwidth, GB/s (100 Gb/s IB)")
    p.add_argument("--latency-us", type=float, default=2.0, help="per-message latency, µs")
    p.add_argument("--nodes", type=int, default=64)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    import snnc

    snnc.compile(snn_source(), batch_size=args.batch_size, seed=args.seed)  # into the cache, once
    runs = [_launch(args, n) for n in args.ranks]
    base = next((r for r in runs if r["ranks"] == 1), None)
    for r in runs:
        r["speedup"] = r["samples_per_s"] / base["samples_per_s"] if base else None
        print(
            f"{r['ranks']} rank(s): {r['samples_per_s']:.1f} samples/s, {r['s_per_batch'] * 1e3:.1f} ms/batch, "
            f"allreduce {r['allreduce_s'] * 1e3:.2f} ms ({100 * r['comm_share']:.1f} %)"
            + (f", speed-up {r['speedup']:.2f}x" if base else "")
        )
    model = {}
    if base:
        per_sample = base["s_per_batch"] / base["batch_size"]
        nbytes = max(r["gradient_bytes"] for r in runs)
        t_ar = allreduce_seconds(nbytes, args.nodes, args.bandwidth_gbs * 1e9, args.latency_us * 1e-6)
        model = {
            "per_sample_s": per_sample,
            "gradient_bytes": nbytes,
            "nodes": args.nodes,
            "bandwidth_gbs": args.bandwidth_gbs,
            "latency_us": args.latency_us,
            "allreduce_s": t_ar,
            "efficiency_at_batch": efficiency(per_sample, args.batch_size, args.nodes, t_ar),
            "min_batch_for_80_percent": min_batch(per_sample, args.nodes, t_ar),
        }
        print(
            f"model: {args.nodes} nodes, {nbytes / 1e6:.2f} MB of gradients, allreduce {t_ar * 1e3:.2f} ms; "
            f"efficiency at batch {args.batch_size}: {100 * model['efficiency_at_batch']:.0f} %; "
            f">= 80 % from a global batch of {model['min_batch_for_80_percent']}"
        )
    print(json.dumps({"runs": runs, "model": model}))


if __name__ == "__main__":
    main()
