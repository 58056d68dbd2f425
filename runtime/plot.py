"""`snnc plot DIR`: PNG training curves from `DIR/metrics.json`, spike rasters from recordings and
sweeps (`*.sweep.json`: a quantity against a setting, e.g. accuracy against timesteps).

Curves: one PNG per quantity in the per-epoch summaries (`loss.png`, `accuracy.png`, ...), the
training curve and, when present, the validation curve against the epoch (counted from 1 as
`snnc train` prints it; metrics.json counts from 0); a `"test"` value is drawn
as a dotted horizontal line. `null` entries (non-finite values, see `write_metrics_json`) leave gaps.

Spike recordings (the format this module defines and `save_spike_recording` writes): an `.npz` file
in `DIR` (any name; checkpoints and other `.npz` files without these arrays are skipped) holding

  - `times`    float [n_spikes], spike times in ms,
  - `ids`      int   [n_spikes], neuron indices within the population,
  - `examples` int   [n_spikes], optional, the example (trial) each spike belongs to (default 0),
  - `num_neurons` int scalar, optional, the population size (default max(ids) + 1),

loaded with `allow_pickle=False`. Each becomes `raster-<file stem>.png` with one panel per example
(at most `MAX_EXAMPLES`). matplotlib is an optional dependency (`pip install snnc[plot]`); it is
imported only here and drawn through its object API with the Agg canvas, so no display is needed.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from snnc.runtime.errors import RuntimeConfigError

MAX_EXAMPLES = 4
FIGSIZE = (6.4, 4.0)
DPI = 100


class PlotError(RuntimeConfigError):
    """A missing or unreadable input for `snnc plot`, or matplotlib not installed."""


# recordings ---------------------------------------------------------------------------------------
def save_spike_recording(
    path: str | os.PathLike,
    spikes: Sequence[tuple[np.ndarray, np.ndarray]],
    examples: Sequence[int] | None = None,
    num_neurons: int | None = None,
) -> Path:
    """Write per-example `(times_ms, ids)` pairs (a `SpikeRecorder`'s `spikes`) in the format above."""
    examples = list(range(len(spikes))) if examples is None else list(examples)
    if len(examples) != len(spikes):
        raise ValueError("one example index per (times, ids) pair")
    times = [np.asarray(t, dtype=np.float64).ravel() for t, _ in spikes]
    ids = [np.asarray(i, dtype=np.int64).ravel() for _, i in spikes]
    ex = [np.full(len(t), e, dtype=np.int64) for t, e in zip(times, examples, strict=True)]
    cat = lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dt)  # noqa: E731
    arrays = {"times": cat(times, np.float64), "ids": cat(ids, np.int64), "examples": cat(ex, np.int64)}
    if num_neurons is not None:
        arrays["num_neurons"] = np.int64(num_neurons)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def load_spike_recording(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The arrays of a spike recording, or None when `path` is not one (a checkpoint, say)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if "times" not in f.files or "ids" not in f.files:
                return None
            rec = {k: np.asarray(f[k]) for k in ("times", "ids", "examples", "num_neurons") if k in f.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise PlotError("E-PLOT-RECORDING", f"spike recording '{path}' is unreadable ({e})") from None
    times, ids = rec["times"].ravel(), rec["ids"].ravel()
    examples = rec.get("examples", np.zeros(len(times), np.int64)).ravel()
    if not (len(times) == len(ids) == len(examples)):
        raise PlotError(
            "E-PLOT-RECORDING", f"spike recording '{path}': times, ids and examples differ in length"
        )
    if times.dtype.kind not in "fiu" or ids.dtype.kind not in "iu" or examples.dtype.kind not in "iu":
        raise PlotError("E-PLOT-RECORDING", f"spike recording '{path}' holds non-numeric arrays")
    out = {
        "times": times.astype(np.float64),
        "ids": ids.astype(np.int64),
        "examples": examples.astype(np.int64),
    }
    if "num_neurons" in rec:
        out["num_neurons"] = rec["num_neurons"]
    return out


# metrics.json -------------------------------------------------------------------------------------
def load_metrics(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate `metrics.json`; a missing or malformed file raises `PlotError`."""
    path = Path(path)
    if not path.is_file():
        raise PlotError(
            "E-PLOT-NO-METRICS",
            f"no metrics.json in '{path.parent}'",
            "pass the --out folder of `snnc train`, which writes metrics.json there",
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PlotError("E-PLOT-METRICS", f"'{path}' is not valid JSON ({e})") from None
    epochs = doc.get("epochs") if isinstance(doc, Mapping) else None
    if not isinstance(epochs, list) or not all(isinstance(e, Mapping) for e in epochs):
        raise PlotError("E-PLOT-METRICS", f"'{path}' has no list of per-epoch results ('epochs')")
    if not epochs:
        raise PlotError("E-PLOT-METRICS", f"'{path}' holds no epochs yet", "train for at least one epoch")
    return doc


def _number(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def curves(doc: Mapping[str, Any]) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """quantity -> split ("train"/"validation") -> (epochs, values), from a metrics.json document."""
    out: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for i, rec in enumerate(doc["epochs"]):
        epoch = _number(rec.get("epoch", i))
        epoch = (float(i) if math.isnan(epoch) else epoch) + 1.0  # counted from 1, as `snnc train` prints
        for split in ("train", "validation"):
            values = rec.get(split)
            if not isinstance(values, Mapping):
                continue
            for name, v in values.items():
                xs, ys = out.setdefault(str(name), {}).setdefault(split, ([], []))
                xs.append(epoch)
                ys.append(_number(v))
    return out


def _filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "metric"


# drawing ------------------------------------------------------------------------------------------
def _figure(**kw: Any):  # noqa: ANN202
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(
            "E-PLOT-MATPLOTLIB",
            "snnc plot needs matplotlib, which is not installed",
            "pip install 'snnc[plot]' (or pip install matplotlib)",
        ) from None
    fig = Figure(figsize=kw.pop("figsize", FIGSIZE), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_curves(doc: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """One PNG per quantity: train and validation curves over epochs, test value dotted."""
    from matplotlib.ticker import MaxNLocator

    test = doc.get("test") if isinstance(doc.get("test"), Mapping) else {}
    written = []
    for name, splits in sorted(curves(doc).items()):
        fig = _figure()
        ax = fig.add_subplot()
        for split, style in (("train", "-o"), ("validation", "-s")):
            if split in splits:
                xs, ys = splits[split]
                ax.plot(xs, ys, style, markersize=3, label=split)
        if name in test and not math.isnan(_number(test[name])):
            ax.axhline(_number(test[name]), linestyle=":", color="k", label="test")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
        path = out_dir / f"{_filename(name)}.png"
        fig.savefig(path)
        written.append(path)
    return written


def plot_raster(rec: Mapping[str, np.ndarray], title: str, path: Path) -> Path:
    """Spike raster (time vs neuron) with one panel per example, at most `MAX_EXAMPLES`."""
    examples = sorted(set(rec["examples"].tolist()))[:MAX_EXAMPLES] or [0]
    n_neurons = int(rec["num_neurons"]) if "num_neurons" in rec else int(rec["ids"].max(initial=-1)) + 1
    fig = _figure(figsize=(FIGSIZE[0], 1.0 + 1.6 * len(examples)))
    axes = fig.subplots(len(examples), 1, sharex=True, squeeze=False)[:, 0]
    for ax, ex in zip(axes, examples, strict=True):
        keep = rec["examples"] == ex
        ax.scatter(rec["times"][keep], rec["ids"][keep], s=10, marker="|", linewidths=0.8, color="k")
        ax.set_ylim(-0.5, max(n_neurons, 1) - 0.5)
        ax.set_ylabel(f"example {ex}\nneuron")
    axes[0].set_title(f"{title} ({len(rec['times'])} spikes)")
    axes[-1].set_xlabel("time (ms)")
    fig.savefig(path)
    return path


# sweeps -------------------------------------------------------------------------------------------
SWEEP_SUFFIX = ".sweep.json"


def save_sweep(
    path: str | os.PathLike, x: str, y: str, series: Mapping[str, Sequence[tuple[float, float]]]
) -> Path:
    """Write a sweep: one or more curves of `y` against `x` (e.g. test accuracy against timesteps for
    each conversion method), as `{"x": ..., "y": ..., "series": {name: [[x, y], ...]}}`. `snnc plot`
    draws every `*.sweep.json` of its folder as `<stem>.png`."""
    path = Path(path)
    doc = {"x": x, "y": y, "series": {k: [[float(a), float(b)] for a, b in v] for k, v in series.items()}}
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return path


def load_sweep(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PlotError("E-PLOT-SWEEP", f"'{path}' is not valid JSON ({e})") from None
    series = doc.get("series") if isinstance(doc, Mapping) else None
    ok = isinstance(series, Mapping) and all(
        isinstance(pts, list) and all(isinstance(p, list) and len(p) == 2 for p in pts)
        for pts in series.values()
    )
    if not ok or not isinstance(doc.get("x"), str) or not isinstance(doc.get("y"), str):
        raise PlotError(
            "E-PLOT-SWEEP",
            f"'{path}' is not a sweep",
            'a sweep is {"x": label, "y": label, "series": {name: [[x, y], ...]}} (runtime/plot.save_sweep)',
        )
    return doc


def plot_sweep(doc: Mapping[str, Any], title: str, path: Path) -> Path:
    """Each series of a sweep as a line with markers, sorted by x."""
    fig = _figure()
    ax = fig.add_subplot()
    for name, points in doc["series"].items():
        pts = sorted((_number(a), _number(b)) for a, b in points)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", markersize=3, label=name)
    xs = [_number(p[0]) for pts in doc["series"].values() for p in pts]
    if xs and min(xs) > 0 and max(xs) >= 20 * min(xs):  # settings spanning decades: log axis
        ax.set_xscale("log")
    ax.set_xlabel(doc["x"])
    ax.set_ylabel(doc["y"])
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path)
    return path


def plot_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Plot everything `run_dir` holds; returns the PNGs written (into `out_dir`, default `run_dir/plots`).

    A folder of sweeps alone (no metrics.json, e.g. `examples/convert_digits.py`'s) is plotted too."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PlotError("E-PLOT-NO-DIR", f"no such folder: '{run_dir}'")
    sweeps = sorted(run_dir.glob("*" + SWEEP_SUFFIX))
    has_metrics = (run_dir / "metrics.json").is_file()
    doc = load_metrics(run_dir / "metrics.json") if has_metrics or not sweeps else None
    _figure()  # fail on a missing matplotlib before creating folders
    out = Path(out_dir) if out_dir is not None else run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = plot_curves(doc, out) if doc is not None else []
    for sweep in sweeps:
        stem = sweep.name[: -len(SWEEP_SUFFIX)]
        written.append(plot_sweep(load_sweep(sweep), stem, out / f"{_filename(stem)}.png"))
    for npz in sorted(run_dir.glob("*.npz")):
        rec = load_spike_recording(npz)
        if rec is not None:
            written.append(plot_raster(rec, npz.stem, out / f"raster-{_filename(npz.stem)}.png"))
    return written
