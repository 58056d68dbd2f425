"""Training speed and peak memory of snnc (EventProp, C backend) against snnTorch (BPTT, CPU torch).

Both sides train the same network, `examples/shd_eventprop.snn`: 700 spike inputs -> 256 recurrent
LIF (tau_mem 20 ms, v_thresh 1, reset to 0) -> 20 leaky integrators read out as mlGeNN's
`avg_var_exp_weight`, exponential synapses (tau 5 ms) on every projection, 1000 steps of 1 ms,
batch 32, sparse categorical cross-entropy, Adam (lr 1e-3), on seeded synthetic SHD-like spikes
(`_synthetic_shd.py`). snnTorch uses `snn.RSynaptic` (synaptic current + LIF with an all-to-all
recurrent linear layer) for the hidden layer, `snn.Synaptic` without threshold/reset for the
readout, and a fast-sigmoid surrogate gradient.

Each side runs in its own subprocess; so does an idle interpreter per side that only imports the
same libraries. Peak memory is each process's peak RSS (`os.wait4` rusage) minus its idle baseline.
Time per batch is the median wall time of `--batches` training batches after `--warmup` untimed ones
(compilation and model construction excluded on both sides; input conversion excluded on both
sides). The last line printed is a JSON object with `time_ratio_snntorch_over_snnc` and
`peak_memory_ratio_snntorch_over_snnc`.

    python benchmarks/vs_snntorch.py [--batches 5] [--warmup 1] [--threads N]

If the C backend's EventProp `backward` is not available, the snnc side falls back to forward
passes only and the JSON says `"snnc_mode": "forward-only"` (not a like-for-like comparison).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SNN_FILE = ROOT / "examples" / "shd_eventprop.snn"
sys.path.insert(0, str(HERE))

N_IN, N_HID, N_OUT = 700, 256, 20
TAU_MEM, TAU_SYN, V_THRESH, DT, STEPS = 20.0, 5.0, 1.0, 1.0, 1000
LR = 1e-3


# ------------------------------------------------------------------------------------------ workers
def _import_snnc() -> None:
    import numpy  # noqa: F401
    import snnc.runtime.encoding  # noqa: F401
    import snnc.runtime.trainer  # noqa: F401

    import snnc  # noqa: F401
    import snnc.api  # noqa: F401


def _import_snntorch() -> None:
    import numpy  # noqa: F401
    import snntorch  # noqa: F401
    import torch  # noqa: F401


_SETUP: dict = {}


def _proc_status_kib(field: str) -> int | None:
    """`VmHWM` / `VmRSS` of this process in KiB (Linux), None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _end_of_setup() -> None:
    """Note the peak so far (compilation / model construction), then restart the peak counter so
    the training phase's own peak can be read at the end (Linux `clear_refs` 5). The whole-process
    peak stays available as max(setup peak, training peak)."""
    import gc

    gc.collect()
    _SETUP["setup_peak_kib"] = _proc_status_kib("VmHWM")
    _SETUP["after_setup_rss_kib"] = _proc_status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _SETUP["peak_reset"] = True
    except OSError:
        _SETUP["peak_reset"] = False


def _batches(args: argparse.Namespace):  # noqa: ANN202
    from _synthetic_shd import make_batch

    for b in range(args.warmup + args.batches):
        yield b, make_batch(b, args.batch_size, args.seed)


def snn_source() -> str:
    """`examples/shd_eventprop.snn` without its spike-count regulariser (snnTorch trains without one)."""
    return re.sub(r"(?m)^\s*regularisation\s*=.*$", "", SNN_FILE.read_text())


def run_snnc(args: argparse.Namespace) -> dict:
    """EventProp training through the trainer, one batch per `train` call.

    Fallbacks, each labelled in `mode`: "eventprop-nonfinite" when the trainer stops on a NaN/Inf
    gradient (the same forward, loss, backward and Adam step by hand, non-finite gradient entries
    zeroed: the same work, but not a sound training run), and "forward-only" when the artefact has no
    `backward` or `--forward-only` is given.
    """
    import numpy as np
    from _synthetic_shd import raster_to_times_ids
    from snnc.runtime import driver
    from snnc.runtime.encoding import preprocess_spikes
    from snnc.runtime.losses import get_loss
    from snnc.runtime.optimisers import get_optimiser
    from snnc.runtime.trainer import Trainer

    import snnc

    t0 = time.perf_counter()
    net = snnc.compile(snn_source(), batch_size=args.batch_size, seed=args.seed)
    compile_s = time.perf_counter() - t0
    art = net.artefact
    art.set_threads(args.threads)
    trainer = Trainer(art, "sparse_categorical_crossentropy", get_optimiser("adam", {"lr": LR}))
    loss_fn = get_loss("sparse_categorical_crossentropy")
    _end_of_setup()

    def eventprop(x, labels) -> float:  # noqa: ANN001
        trainer.train(x, {"out": labels}, 1, shuffle=False, callbacks=())
        return trainer.history[-1]["train"]["loss"]

    def eventprop_nonfinite(x, labels) -> float:  # noqa: ANN001
        res = art.run(x)
        value, grad = loss_fn(res.readouts["out"], labels)
        grads = {
            k: np.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
            for k, g in art.backward({"out": grad}).items()
        }
        weights, live = driver.live_weights(art)
        trainer.optimiser.step(weights, grads)
        driver.commit_weights(art, weights, live)
        return value

    def forward_only(x, labels) -> float:  # noqa: ANN001
        return _cross_entropy(art.run(x).readouts["out"], labels)

    steps = {"eventprop": eventprop, "eventprop-nonfinite": eventprop_nonfinite, "forward-only": forward_only}
    mode = "forward-only" if args.forward_only else "eventprop"
    times, losses, notes = [], [], []
    for b, (raster, labels) in _batches(args):
        x = {"x": [preprocess_spikes(t, i, N_IN) for t, i in raster_to_times_ids(raster, DT)]}
        del raster
        for ex in x["x"]:
            _ = ex.by_time  # time-sorted spikes are cached per example: part of input conversion
        while True:
            t0 = time.perf_counter()
            try:
                loss = steps[mode](x, labels)
            except NotImplementedError as e:
                notes.append(f"batch {b}: {e}")
                mode = "forward-only"
                continue
            except FloatingPointError as e:  # the trainer's NumericalFaultError
                notes.append(f"batch {b}: {str(e).splitlines()[0]}")
                mode = "eventprop-nonfinite"
                continue
            break
        dt = time.perf_counter() - t0
        losses.append(float(loss))
        if b >= args.warmup:
            times.append(dt)
    return {
        "mode": mode,
        "compile_s": compile_s,
        "batch_s": times,
        "losses": losses,
        "notes": notes,
        "threads": args.threads,
        "record_mib": art.record_bytes() / 2**20 if hasattr(art, "record_bytes") else None,
    }


def _cross_entropy(y, labels) -> float:  # noqa: ANN001
    import numpy as np

    z = y - y.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def run_snntorch(args: argparse.Namespace) -> dict:
    """BPTT with a surrogate gradient over all 1000 steps, Adam."""
    import numpy as np
    import snntorch as snn
    import torch
    from snntorch import surrogate

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    alpha, beta = math.exp(-DT / TAU_SYN), math.exp(-DT / TAU_MEM)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc_in = torch.nn.Linear(N_IN, N_HID, bias=False)
            self.hidden = snn.RSynaptic(
                alpha,
                beta,
                threshold=V_THRESH,
                linear_features=N_HID,
                all_to_all=True,
                spike_grad=surrogate.fast_sigmoid(),
                reset_mechanism="zero",
            )
            self.fc_out = torch.nn.Linear(N_HID, N_OUT, bias=False)
            self.out = snn.Synaptic(alpha, beta, reset_mechanism="none", threshold=1e9)
            # the .snn file's initialisers, scaled by (1 - beta): snnTorch's mem = beta*mem + syn
            # settles at syn / (1 - beta) where snnc's exact dv/dt = (i - v)/tau settles at i
            g = 1.0 - beta
            with torch.no_grad():
                self.fc_in.weight.normal_(0.03 * g, 0.01 * g)
                self.hidden.recurrent.weight.normal_(0.0, 0.02 * g)
                self.hidden.recurrent.bias.zero_()
                self.fc_out.weight.normal_(0.0, 0.03 * g)
            self.hidden_spikes = 0.0

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [steps, batch, N_IN]
            spk, syn, mem = self.hidden.reset_mem()
            syn_o, mem_o = self.out.reset_mem()
            steps = x.shape[0]
            weights = torch.exp(-torch.arange(steps, dtype=x.dtype) * DT / (steps * DT)) / steps
            readout, count = 0.0, 0.0
            for k in range(steps):  # fc_in per step: hoisting it is 3x slower (slice backward)
                spk, syn, mem = self.hidden(self.fc_in(x[k]), spk, syn, mem)
                _, syn_o, mem_o = self.out(self.fc_out(spk), syn_o, mem_o)
                readout = readout + weights[k] * mem_o  # avg_var_exp_weight
                count = count + spk.detach().sum()
            self.hidden_spikes = float(count)
            return readout

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    _end_of_setup()
    times, losses, rates = [], [], []
    for b, (raster, labels) in _batches(args):
        x = torch.from_numpy(np.ascontiguousarray(raster.transpose(1, 0, 2))).to(torch.float32)
        del raster
        y = torch.from_numpy(labels)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        losses.append(loss.item())
        rates.append(net.hidden_spikes / (x.shape[0] * x.shape[1] * N_HID))
        if b >= args.warmup:
            times.append(dt)
    return {
        "mode": "bptt",
        "batch_s": times,
        "losses": losses,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "snntorch": snn.__version__,
        "hidden_rate_per_step": rates,
    }


def worker(args: argparse.Namespace) -> None:
    side, idle = args.worker, args.idle
    (_import_snnc if side == "snnc" else _import_snntorch)()
    out = {} if idle else (run_snnc if side == "snnc" else run_snntorch)(args)
    out.update(_SETUP, final_peak_kib=_proc_status_kib("VmHWM"))
    print(json.dumps(out))


# ------------------------------------------------------------------------------------------ parent
def _child(args: argparse.Namespace, side: str, idle: bool) -> tuple[dict, int]:
    """Run one worker process; returns (its JSON result, its peak RSS in KiB)."""
    cmd = [sys.executable, __file__, "--worker", side, *_forward(args)] + (["--idle"] if idle else [])
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=path)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{side} worker failed with exit code {proc.returncode}")
    return json.loads(stdout.strip().splitlines()[-1]), int(usage.ru_maxrss)


def _forward(args: argparse.Namespace) -> list[str]:
    return [
        f"--batches={args.batches}",
        f"--warmup={args.warmup}",
        f"--batch-size={args.batch_size}",
        f"--threads={args.threads}",
        f"--seed={args.seed}",
    ] + (["--forward-only"] if args.forward_only else [])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=5, help="timed training batches")
    ap.add_argument("--warmup", type=int, default=1, help="untimed batches before them")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for both sides")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--forward-only", action="store_true", help="snnc side runs forward passes only")
    ap.add_argument("--worker", choices=("snnc", "snntorch"), help=argparse.SUPPRESS)
    ap.add_argument("--idle", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return

    # compile once beforehand so the measured snnc process loads a cached library (no compiler run
    # inside it; snnTorch has no compile step either)
    _child(argparse.Namespace(**{**vars(args), "batches": 0, "warmup": 0}), "snnc", False)
    results = {}
    for side in ("snnc", "snntorch"):
        _, idle_kib = _child(args, side, True)
        res, wait_kib = _child(args, side, False)
        results[side] = r = _memory(res, wait_kib, idle_kib)
        r["mean_batch_s"] = statistics.mean(res["batch_s"])
        r["median_batch_s"] = statistics.median(res["batch_s"])
        print(
            f"{side:9s} {res['mode']:12s} {r['median_batch_s'] * 1e3:9.1f} ms/batch (median; mean {r['mean_batch_s'] * 1e3:.1f})  "
            f"peak RSS {r['peak_rss_mib']:7.1f} MiB (idle {r['idle_rss_mib']:6.1f}, "
            f"net {r['net_peak_mib']:7.1f}, training phase net {r['train_net_peak_mib']:7.1f})  "
            f"losses {', '.join(f'{v:.3f}' for v in res['losses'])}"
        )
    s, t = results["snnc"], results["snntorch"]
    for note in s.get("notes", []):
        print(f"snnc note: {note}")
    if s["mode"] == "forward-only":
        print("NOTE: snnc ran forward passes only; the ratios are not a training comparison")
    elif s["mode"] != "eventprop":
        print(
            "NOTE: snnc's gradients were not finite (zeroed); same work per batch, not a sound training run"
        )
    summary = {
        "time_ratio_snntorch_over_snnc": t["median_batch_s"] / s["median_batch_s"],
        "peak_memory_ratio_snntorch_over_snnc": t["net_peak_mib"] / s["net_peak_mib"],
        "train_phase_memory_ratio_snntorch_over_snnc": t["train_net_peak_mib"] / s["train_net_peak_mib"],
        "snnc_mode": s["mode"],
        "snnc_s_per_batch": s["median_batch_s"],
        "snntorch_s_per_batch": t["median_batch_s"],
        "snnc_mean_s_per_batch": s["mean_batch_s"],
        "snntorch_mean_s_per_batch": t["mean_batch_s"],
        "snnc_batch_s": s["batch_s"],
        "snntorch_batch_s": t["batch_s"],
    }
    for side, r in results.items():
        for key in (
            "net_peak_mib",
            "train_net_peak_mib",
            "peak_rss_mib",
            "setup_peak_rss_mib",
            "idle_rss_mib",
        ):
            summary[f"{side}_{key}"] = r[key]
    summary.update(
        snnc_compile_s=s["compile_s"],
        snnc_eventprop_record_mib=s.get("record_mib"),
        snnc_notes=s.get("notes", []),
        snnc_hidden_rate_per_step=s.get("hidden_rate_per_step"),
        snntorch_hidden_rate_per_step=t["hidden_rate_per_step"],
        batches=args.batches,
        warmup=args.warmup,
        batch_size=args.batch_size,
        threads=args.threads,
        torch=t["torch"],
        snntorch=t["snntorch"],
    )
    print(json.dumps(summary))


def _memory(res: dict, wait_kib: int, idle_kib: int) -> dict:
    """Peak RSS figures in MiB. The worker restarted its peak counter after setup, so the
    whole-process peak is max(setup peak, peak after that); `os.wait4`'s figure is the latter."""
    setup = res.get("setup_peak_kib") or 0
    train = max(wait_kib, res.get("final_peak_kib") or 0) if res.get("peak_reset") else wait_kib
    whole = max(setup, train)
    mib = 1.0 / 1024
    return {
        **res,
        "peak_rss_mib": whole * mib,
        "setup_peak_rss_mib": setup * mib,
        "idle_rss_mib": idle_kib * mib,
        "net_peak_mib": max(whole - idle_kib, 1) * mib,
        "train_net_peak_mib": max(train - idle_kib, 1) * mib,
    }


if __name__ == "__main__":
    main()
