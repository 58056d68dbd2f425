"""snnTorch -> NIR -> snnc (EventProp on Yin-Yang) -> NIR -> snnTorch: the README's worked example.

Builds a snnTorch network (Linear -> Synaptic -> Linear -> Synaptic), exports it to NIR, imports it
with `snnc import --spike-step 1e-4` (snnTorch's dt), trains it with `snnc train` (EventProp), exports
the trained network with `snnc export --checkpoint`, reads that back with snnTorch's `import_from_nir`,
and evaluates it in snnTorch on the same Yin-Yang test set. Needs the interop extra
(`pip install -e '.[interop]'`). Run from anywhere; it works in a temporary folder unless given one:

    python examples/nir_roundtrip.py [--epochs 40] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nir
import numpy as np
import snntorch as snn
import torch
from snnc.runtime.datasets.yinyang import yinyang
from snntorch import utils as snn_utils
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir

from snnc.cli import main as snnc

HIDDEN, DT_MS, STEPS = 100, 0.1, 300

TRAIN = """
train yy {{
    algorithm  = eventprop(max_spikes = 500)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.003)
    schedule   = exponential_decay(gamma = 0.97)
    data       = yinyang(train = 5000, test = 1000, t_min = 2 ms, t_max = 27 ms, bias = true)
    dt         = 0.1 ms
    duration   = 30 ms
    batch_size = 32
    epochs     = {epochs}
    seed       = 1
}}
"""


def synaptic(n: int, threshold: float = 1.0, **kw) -> snn.Synaptic:  # noqa: ANN003
    """Every parameter per neuron and NIR's reset (see README "NIR": what the exporter needs)."""
    return snn.Synaptic(
        alpha=torch.full((n,), 0.95),
        beta=torch.full((n,), 0.99),
        threshold=torch.full((n,), threshold),
        init_hidden=True,
        reset_mechanism="zero",
        reset_delay=False,
        **kw,
    )


def snntorch_model() -> torch.nn.Sequential:
    """5 inputs -> 100 spiking -> 3 outputs whose threshold is never reached (read by their maximum)."""
    torch.manual_seed(1)
    net = torch.nn.Sequential(
        torch.nn.Linear(5, HIDDEN, bias=False),
        synaptic(HIDDEN),
        torch.nn.Linear(HIDDEN, 3, bias=False),
        synaptic(3, threshold=1e6, output=True),
    )
    with torch.no_grad():
        net[0].weight.normal_(0.1, 0.05)
        net[2].weight.normal_(0.05, 0.01)
    return net


def snntorch_accuracy(net: torch.nn.Module, output: torch.nn.Module) -> float:
    """The Yin-Yang test set (snnc's: the same seed) in snnTorch, one batch of all examples: the
    class is the output with the largest membrane over the trial, as `readout = max_var` in snnc."""
    test = yinyang(train=1, test=1000, t_min=2.0, t_max=27.0, bias=True).test
    x = np.zeros((STEPS, len(test), test.num_neurons), np.float32)
    for e in range(len(test)):
        lo, hi = test.offsets[e], test.offsets[e + 1]
        steps = np.ceil(test.times[lo:hi] / DT_MS - 1e-6).astype(int)  # snnc emits at the first step >= t
        x[steps, e, test.ids[lo:hi]] = 1.0
    snn_utils.reset(net)
    peak = torch.full((len(test), 3), -torch.inf)
    with torch.no_grad():
        for row in x:
            net(torch.from_numpy(row))
            peak = torch.maximum(peak, output.mem)
    return float((peak.argmax(1).numpy() == test.labels).mean())


def run(folder: Path, epochs: int) -> dict[str, float]:
    net = snntorch_model()
    before = snntorch_accuracy(net, net[3])
    nir.write(str(folder / "yy.nir"), export_to_nir(net, torch.zeros(1, 5), ignore_dims=[0]))

    # snnTorch -> NIR -> .snn; then read the output by its maximum and append a train block
    assert snnc(["import", str(folder / "yy.nir"), "-o", str(folder / "yy.snn"), "--spike-step", "1e-4"]) == 0
    text = (folder / "yy.snn").read_text().replace("readout = spike_count", "readout = max_var")
    (folder / "yy.snn").write_text(text + TRAIN.format(epochs=epochs))

    assert snnc(["train", str(folder / "yy.snn"), "--out", str(folder / "run")]) == 0
    assert (
        snnc(
            [
                "export",
                str(folder / "yy.snn"),
                "--checkpoint",
                str(folder / "run"),
                "-o",
                str(folder / "trained.nir"),
            ]
        )
        == 0
    )

    back = import_from_nir(nir.read(str(folder / "trained.nir")))
    after = snntorch_accuracy(back, getattr(back, "3"))
    print(f"snnTorch test accuracy: {before:.3f} before, {after:.3f} after the snnc round trip")
    return {"before": before, "after": after}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument(
        "--out", type=Path, default=None, help="keep the files here (default: a temporary folder)"
    )
    args = parser.parse_args()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        run(args.out, args.epochs)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(Path(tmp), args.epochs)
