"""Training speed of the genn backend (GeNN on CUDA where it can) against the C backend on the CPU.

Both sides train `examples/shd_eventprop.snn` as written (700 spike inputs -> 256 recurrent LIF ->
20 leaky integrators read out as `avg_var_exp_weight`, exponential synapses, 1000 steps of 1 ms,
EventProp with its spike-count regulariser, Adam lr 1e-3, batch 32) from the same initial weights on
seeded synthetic SHD-shaped spikes (`_synthetic_shd.py`), one training batch per trainer call. Time
per batch is the median wall time of `--batches` batches after `--warmup` untimed ones (compilation,
GeNN's code generation and build, data generation and input conversion excluded); seconds per epoch
extrapolate it to the real SHD training set (8156 examples, ceil(8156 / batch size) batches).

GeNN's backend is CUDA when pygenn was built with it, else GeNN's single-threaded CPU backend (said
on stdout and in the JSON; that backend builds batch-1 models, so the runtime runs a batch as
consecutive trials); `--genn-backend` overrides. Without pygenn the script exits 1 with one sentence.

    python benchmarks/genn_gpu.py [--batches 20] [--warmup 1] [--threads N] [--genn-backend cuda]
                                  [--example examples/shd_delays.snn] [--precision double]

`--example` trains another SHD-shaped example instead (700 inputs, an `out` readout; e.g.
`examples/shd_delays.snn`, with trainable delays and time constants). The last line printed is a
JSON object with `genn_s_per_epoch`, `c_s_per_epoch`, the devices, the GeNN backend used and the
largest difference between the two sides' trained weights and params (`weight_differences`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SNN_FILE = ROOT / "examples" / "shd_eventprop.snn"
SHD_TRAIN_EXAMPLES = 8156
N_IN, DT = 700, 1.0
sys.path.insert(0, str(HERE))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def gpu_name() -> str | None:
    """The first NVIDIA GPU's name from nvidia-smi, or None where there is none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return names[0] if out.returncode == 0 and names else None


def genn_backend(requested: str | None) -> tuple[str, str | None]:
    """(GeNN backend to use, a note when it is not CUDA); exits 1 when pygenn does not import."""
    try:
        import pygenn  # noqa: F401
    except ImportError:
        raise SystemExit(
            "genn_gpu.py needs pygenn, which is not installed; see README 'Optional extras' (the genn extra)"
        ) from None
    if requested:
        return requested, None
    try:
        import pygenn.cuda_backend  # noqa: F401
    except ImportError:
        return "single_threaded_cpu", (
            "pygenn has no CUDA backend here (no GPU or built without CUDA): "
            "using GeNN's single-threaded CPU backend, so these are not GPU figures"
        )
    return "cuda", None


def batches(args: argparse.Namespace):  # noqa: ANN201
    """(batch index, inputs, labels) with inputs converted to the runtime's spike lists."""
    from _synthetic_shd import make_batch, raster_to_times_ids
    from snnc.runtime.encoding import preprocess_spikes

    for b in range(args.warmup + args.batches):
        raster, labels = make_batch(b, args.batch_size, args.seed)
        x = [preprocess_spikes(t, i, N_IN) for t, i in raster_to_times_ids(raster, DT)]
        for ex in x:
            _ = ex.by_time  # time-sorted spikes are cached per example: part of input conversion
        yield b, {"x": x}, {"out": labels}


def train(net, args: argparse.Namespace) -> dict:  # noqa: ANN001
    """`--batches` timed training steps (forward, loss, backward, Adam) after `--warmup` untimed ones."""
    trainer = net.make_trainer(batch_size=args.batch_size, seed=args.seed)
    times, losses = [], []
    for b, x, y in batches(args):
        t0 = time.perf_counter()
        trainer.train(x, y, 1, shuffle=False, callbacks=())
        dt = time.perf_counter() - t0
        losses.append(trainer.history[-1]["train"]["loss"])
        if b >= args.warmup:
            times.append(dt)
    median = statistics.median(times)
    return {
        "batch_s": times,
        "median_batch_s": median,
        "s_per_epoch": median * math.ceil(SHD_TRAIN_EXAMPLES / args.batch_size),
        "losses": losses,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=20, help="timed training batches per backend")
    ap.add_argument("--warmup", type=int, default=1, help="untimed batches before them")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of the C side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--example", type=Path, default=SNN_FILE, help="the .snn file both sides train")
    ap.add_argument("--precision", choices=("float", "double"), default="float")
    ap.add_argument(
        "--genn-backend", choices=("cuda", "single_threaded_cpu"), help="default: CUDA when pygenn has it"
    )
    args = ap.parse_args()
    if args.batches < 1 or args.warmup < 0 or args.batch_size < 1:
        raise SystemExit("--batches and --batch-size must be at least 1, --warmup at least 0")
    backend, note = genn_backend(args.genn_backend)
    if note:
        print(f"NOTE: {note}")

    from snnc.api import build_compiled, lower

    network = lower(args.example)
    t0 = time.perf_counter()
    c_net = build_compiled(
        network, backend="c", batch_size=args.batch_size, seed=args.seed, precision=args.precision
    )
    c_compile_s = time.perf_counter() - t0
    c_net.artefact.set_threads(args.threads)
    initial = c_net.weights

    with tempfile.TemporaryDirectory(prefix="snnc-genn-bench-") as build_dir:
        from snnc.backends.genn import load_genn
        from snnc.runtime.compiled import CompiledNetwork

        t0 = time.perf_counter()
        artefact = load_genn(
            network,
            batch_size=args.batch_size,
            seed=args.seed,
            backend=backend,
            out_dir=build_dir,
            precision=args.precision,
        )
        genn_build_s = time.perf_counter() - t0
        genn_net = CompiledNetwork(artefact, network=network)
        genn_net.set_weights(initial)
        genn = train(genn_net, args)
        genn_weights = genn_net.weights
        artefact.close()
    c = train(c_net, args)
    c_weights = c_net.weights
    differences = {k: float(abs(genn_weights[k] - c_weights[k]).max()) for k in sorted(c_weights)}

    per_epoch = math.ceil(SHD_TRAIN_EXAMPLES / args.batch_size)
    gpu = gpu_name()
    genn_device = gpu if backend == "cuda" else cpu_name()
    for side, r in (("genn", genn), ("c", c)):
        print(
            f"{side:5s} {r['median_batch_s'] * 1e3:9.1f} ms/batch (median of {args.batches}), "
            f"{r['s_per_epoch']:8.1f} s/epoch extrapolated ({per_epoch} batches of {args.batch_size}); "
            f"losses {', '.join(f'{v:.3f}' for v in r['losses'])}"
        )
    import pygenn

    summary = {
        "genn_s_per_epoch": genn["s_per_epoch"],
        "c_s_per_epoch": c["s_per_epoch"],
        "c_over_genn_time_ratio": c["median_batch_s"] / genn["median_batch_s"],
        "genn_backend": backend,
        "genn_device": genn_device,
        "c_device": cpu_name(),
        "gpu": gpu,
        "genn_s_per_batch": genn["median_batch_s"],
        "c_s_per_batch": c["median_batch_s"],
        "genn_batch_s": genn["batch_s"],
        "c_batch_s": c["batch_s"],
        "max_loss_difference": max(abs(a - b) for a, b in zip(genn["losses"], c["losses"], strict=True)),
        "weight_differences": differences,
        "example": str(args.example),
        "precision": args.precision,
        "genn_losses": genn["losses"],
        "c_losses": c["losses"],
        "batches_measured": args.batches,
        "warmup": args.warmup,
        "batch_size": args.batch_size,
        "batches_per_epoch": per_epoch,
        "train_examples_per_epoch": SHD_TRAIN_EXAMPLES,
        "c_threads": args.threads,
        "genn_build_s": genn_build_s,
        "c_compile_s": c_compile_s,
        "pygenn": getattr(pygenn, "__version__", None),
        "note": note,
    }
    print(json.dumps(summary))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
