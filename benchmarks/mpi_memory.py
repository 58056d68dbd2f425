"""Resident memory per MPI rank when training on a cached SHD-shaped data set (issue 18, item 2).

    python benchmarks/mpi_memory.py [--ranks 1 2] [--examples 1024] [--data DIR] [--eager]

Writes `--examples` seeded SHD-shaped examples (`_synthetic_shd.py`: 700 channels, 1 s) as
`shd_train.h5` / `shd_test.h5` in the layout of the real files, builds snnc's cache of them once
(a folder of memory-mapped `.npy` arrays), compiles `examples/shd_eventprop.snn` once, then for each
rank count runs `mpirun -n N` of this script in worker mode: every rank loads the data set, trains
one epoch and tests, and reports its resident memory after loading (`VmRSS`), its peak (`VmHWM`) and
the epoch's wall time (data work included).
A rank maps the cache and reads only its share of each epoch, so the data's part of the peak falls
with N. `--eager` copies the whole training set into every rank first (what each rank held when
the cache was an `.npz`), for comparison.

Last line: one JSON object, per rank count the list of per-rank figures in MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SNN_FILE = HERE.parent / "examples" / "shd_eventprop.snn"


def write_h5(path: Path, examples: int, seed: int) -> None:
    """`examples` synthetic SHD examples in the real layout (vlen times in s, vlen units, labels)."""
    import h5py
    import numpy as np

    sys.path.insert(0, str(HERE))
    from _synthetic_shd import make_batch, raster_to_times_ids

    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (examples,), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (examples,), dtype=h5py.vlen_dtype(np.uint16))
        labels = np.zeros(examples, np.uint8)
        for b in range(0, examples, 32):
            raster, y = make_batch(b // 32, 32, seed)
            for k, (t, u) in enumerate(raster_to_times_ids(raster)[: examples - b]):
                order = np.argsort(t, kind="stable")
                times[b + k] = (t[order] / 1000.0).astype(np.float32)
                units[b + k] = u[order].astype(np.uint16)
                labels[b + k] = y[k]
        f.create_dataset("labels", data=labels)


def _status() -> dict[str, float]:
    """VmRSS and VmHWM of this process in MiB (Linux)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024.0
    return out


def worker(args: argparse.Namespace) -> None:
    import numpy as np
    from snnc.runtime.datasets import load_dataset
    from snnc.runtime.distributed import world
    from snnc.runtime.session import xy

    import snnc

    w = world()
    net = snnc.compile(SNN_FILE.read_text(), batch_size=32, seed=0)
    data = load_dataset("shd", {"path": str(args.data)})
    train = data.train
    if args.eager:  # every spike in memory, as the .npz cache gave them
        train = train.subset(np.arange(len(train)))
    loaded = _status()["VmRSS"]
    x, y = xy(net.network, train)
    w.barrier()
    start = time.perf_counter()
    net.train(x, y, num_epochs=1, callbacks=())
    epoch_s = time.perf_counter() - start
    tx, ty = xy(net.network, data.test)
    net.trainer.evaluate(tx, ty, callbacks=())  # the trainer's loop: each rank its share
    peak = _status()["VmHWM"]
    mine = {"rank": w.rank, "after_load_mib": round(loaded, 1), "peak_mib": round(peak, 1)}
    mine["epoch_s"] = round(epoch_s, 2)
    everyone = w.comm.gather(mine, root=0) if w.distributed else [mine]
    if w.rank == 0:
        print(json.dumps({"ranks": w.size, "per_rank": everyone}))


def _launch(args: argparse.Namespace, ranks: int) -> dict:
    me = [sys.executable, str(Path(__file__).resolve()), "--worker", "--data", str(args.data)]
    me += ["--eager"] if args.eager else []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if ranks > 1:
        mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
        if mpirun is None:
            sys.exit("mpi_memory: no mpirun on PATH (install Open MPI, and pip install 'snnc[mpi]')")
        version = subprocess.run([mpirun, "--version"], capture_output=True, text=True).stdout
        flags = ["--oversubscribe"] if "Open MPI" in version else []
        if flags and os.geteuid() == 0:
            flags.append("--allow-run-as-root")
        me = [mpirun, "-n", str(ranks), *flags, *me]
    out = subprocess.run(me, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"mpi_memory: {ranks} rank(s) failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--examples", type=int, default=1024)
    p.add_argument("--data", type=Path, default=Path("/tmp/snnc-mpi-memory"))
    p.add_argument("--eager", action="store_true", help="every rank copies the whole training set")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    args.data.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("shd_train.h5", args.examples, 0), ("shd_test.h5", 64, 1)):
        if not (args.data / name).is_file():
            write_h5(args.data / name, n, seed)
    from snnc.runtime.datasets import load_dataset

    import snnc

    load_dataset("shd", {"path": str(args.data)})  # builds the cache once, outside the measurement
    snnc.compile(SNN_FILE.read_text(), batch_size=32, seed=0)  # into the compile cache, once
    runs = [_launch(args, n) for n in args.ranks]
    for r in runs:
        peaks = ", ".join(f"{x['peak_mib']:.0f}" for x in r["per_rank"])
        epoch = max(x["epoch_s"] for x in r["per_rank"])
        print(f"{r['ranks']} rank(s): peak resident MiB per rank {peaks}; epoch {epoch:.1f} s")
    print(json.dumps({"eager": args.eager, "examples": args.examples, "runs": runs}))


if __name__ == "__main__":
    main()
