"""ANN-to-SNN conversion on scikit-learn's 8x8 digits: train an MLP and a small CNN with numpy (with
biases), write them as ONNX, convert them with each method and evaluate the spiking networks.

    python examples/convert_digits.py [OUT_DIR]      # from the repository root; default convert-out

The ANNs are the ones the tests train (tests/convert/ann.py). Each conversion is the command
`snnc convert OUT_DIR/<net>.onnx --data OUT_DIR/<data>.npz --method M --timesteps T -o ...`
followed by `snnc evaluate ... --no-checkpoint`; the table printed at the end is the README's. The
accuracies against timesteps go to OUT_DIR/accuracy_vs_timesteps.sweep.json, which `snnc plot
OUT_DIR` draws (OUT_DIR/plots/accuracy_vs_timesteps.png; needs matplotlib).
"""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snnc.runtime.plot import save_sweep  # noqa: E402

from snnc.cli import main  # noqa: E402
from tests.convert import ann  # noqa: E402

RUNS = [
    ("data_norm", 5),
    ("data_norm", 10),
    ("data_norm", 25),
    ("data_norm", 50),
    ("data_norm", 100),
    ("data_norm", 200),
    ("spike_norm", 200),
]
FEW_SPIKE = [4, 6, 8]


def snnc(*argv: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(argv))
    if code:
        raise SystemExit(f"snnc {' '.join(argv)} failed ({code})")
    return out.getvalue()


def accuracy(onnx_path: Path, data: Path, out: Path, *options: str) -> float:
    snnc("convert", str(onnx_path), "--data", str(data), "-o", str(out), *options)
    line = snnc("evaluate", str(out), "--no-checkpoint", "--quiet")
    return float(line.split("accuracy ")[1].split()[0])


def main_() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "convert-out")
    folder.mkdir(parents=True, exist_ok=True)
    x, y, tx, ty = ann.digits()
    mlp = ann.train_mlp(x, y, epochs=30, bias=True)
    cnn = ann.train_cnn(x, y, epochs=25, bias=True)
    img = lambda a: a.reshape(-1, 1, 8, 8)  # noqa: E731
    nets = {
        "mlp": (
            ann.mlp_onnx(mlp, folder / "mlp.onnx"),
            ann.save_data(folder / "digits.npz", x, y, tx, ty),
            np.mean(ann.mlp_logits(mlp, tx).argmax(1) == ty),
        ),
        "cnn": (
            ann.cnn_onnx(cnn, folder / "cnn.onnx"),
            ann.save_data(folder / "digits_img.npz", img(x), y, img(tx), ty),
            np.mean(ann.cnn_forward(cnn, tx)[-1].argmax(1) == ty),
        ),
    }
    sweep: dict[str, list[tuple[float, float]]] = {}
    print("| network | method | steps | test accuracy |")
    print("|---|---|---|---|")
    for name, (onnx_path, data, ann_acc) in nets.items():
        print(f"| {name} | ANN (numpy) | - | {100 * ann_acc:.2f} % |")
        sweep[f"{name} ANN"] = [(steps, ann_acc) for steps in sorted({s for _, s in RUNS})]
        for method, steps in RUNS:
            out = folder / f"{name}_{method}_{steps}.snn"
            acc = accuracy(onnx_path, data, out, "--method", method, "--timesteps", str(steps))
            print(f"| {name} | {method} | {steps} | {100 * acc:.2f} % |", flush=True)
            sweep.setdefault(f"{name} {method}", []).append((steps, acc))
        for k in FEW_SPIKE:
            out = folder / f"{name}_few_spike_{k}.snn"
            acc = accuracy(onnx_path, data, out, "--method", "few_spike", "--steps-per-layer", str(k))
            layers = 3 if name == "cnn" else 2
            print(f"| {name} | few_spike, K = {k} | {layers * k + 1} | {100 * acc:.2f} % |", flush=True)
            sweep.setdefault(f"{name} few_spike", []).append((layers * k + 1, acc))
    path = save_sweep(folder / "accuracy_vs_timesteps.sweep.json", "timesteps", "test accuracy", sweep)
    print(f"wrote {path}; draw it with: snnc plot {folder}")


if __name__ == "__main__":
    main_()
