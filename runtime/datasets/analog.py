"""Analog values (images, features) as rate-coded spike trains: the input of a converted ANN.

An `.npz` holds `x` ([examples, features...], the ANN's inputs as it was trained on them) and `y`
(labels); `test_x`/`test_y` optionally hold a test split, else `test_fraction` is split off after a
seeded shuffle (as `npz` does). Each value v becomes the rate r = clip(v / scale, 0, 1) spikes per
step of `dt`, over `duration`:

- "regular": the spike train of an integrate-and-fire neuron driven by the constant current r
  (reset by subtraction): a spike in step k when floor((k+1) r) > floor(k r). This is constant-
  current input coding, exact and deterministic.
- "poisson": a spike in each step with probability r (seeded).
- "few_spike": the binary digits of r in the first `k` steps (Stoeckl & Maass 2021; see
  frontend/few_spike.py): a spike in step j when what is left of r is >= 2^-(j+1), which it then loses.

A spike of step k has time k dt (input
populations emit a spike in the first step k with t <= k dt). `channels_first`: x is (C, H, W) per
example (ONNX, PyTorch) and is reordered to snnc's (H, W, C) before flattening.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from snnc.runtime.datasets.npzdata import data_file, held_out, num_classes
from snnc.runtime.datasets.spikes import Dataset, SpikeDataset
from snnc.runtime.errors import RuntimeConfigError

CODINGS = ("regular", "poisson", "few_spike")


def _error(message: str, hint: str | None = None) -> RuntimeConfigError:
    return RuntimeConfigError("E-DATASET-FILE", message, hint)


def read_analog(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an analog `.npz` (`x`, `y`, optional `test_x`, `test_y`), checked."""
    if not path.is_file():
        raise _error(f"no data file '{path}'")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError) as e:
        raise _error(
            f"cannot read '{path}' as .npz ({e})", "write one with numpy.savez(path, x=..., y=...)"
        ) from None
    for x_key, y_key in (("x", "y"), ("test_x", "test_y")):
        if x_key == "test_x" and x_key not in arrays:
            continue
        if x_key not in arrays:
            raise _error(f"'{path}' has no array 'x'", "an analog .npz holds x [examples, features...] and y")
        x = arrays[x_key]
        if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
            raise _error(f"'{path}': {x_key} must hold finite numbers")
        if y_key in arrays and len(arrays[y_key]) != len(x):
            raise _error(f"'{path}': {len(x)} examples in {x_key} but {len(arrays[y_key])} labels in {y_key}")
    return arrays


def snnc_order(x: np.ndarray, channels_first: bool) -> np.ndarray:
    """[examples, ...] -> [examples, features] in snnc's neuron order ((H, W, C) for images)."""
    if channels_first and x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)
    return x.reshape(len(x), -1)


def encode(
    values: np.ndarray,
    coding: str,
    scale: float,
    dt: float,
    duration: float,
    rng: np.random.Generator,
    k: int = 8,
) -> SpikeDataset:
    """[examples, features] -> spike trains (see the module docstring); labels are zeros."""
    rate = np.clip(values / scale, 0.0, 1.0)
    steps = int(round(duration / dt))
    index = np.arange(steps)[:, None]  # the step of each row of `fired`
    times, ids, offsets = [], [], [0]
    for row in rate:
        if coding == "few_spike":
            fired = np.zeros((steps, row.size), bool)
            left = row.copy()
            for j in range(min(k, steps)):
                fired[j] = left >= 2.0 ** -(j + 1)
                left -= fired[j] * 2.0 ** -(j + 1)
        elif coding == "regular":
            count = np.floor((index + 1) * row[None, :] + 1e-9)  # spikes by the end of each step
            fired = count > np.floor(index * row[None, :] + 1e-9)
        else:
            fired = rng.random((steps, row.size)) < row[None, :]
        step, neuron = np.nonzero(fired)
        times.append(step * dt)  # emitted in step `step`: the source takes spikes with t <= k dt
        ids.append(neuron)
        offsets.append(offsets[-1] + step.size)
    cat = lambda a, t: np.concatenate(a).astype(t) if a else np.zeros(0, t)  # noqa: E731
    n = values.shape[1]
    return SpikeDataset(
        cat(times, np.float64), cat(ids, np.int64), np.asarray(offsets), np.zeros(len(values), np.int64), n
    )


def analog(
    path: str | os.PathLike,
    coding: str = "regular",
    scale: float = 1.0,
    dt: float = 1.0,
    duration: float = 100.0,
    channels_first: bool = False,
    k: int = 8,
    test_fraction: float = 0.25,
    seed: int = 0,
    base_dir: str | None = None,
) -> Dataset:
    if coding not in CODINGS:
        raise RuntimeConfigError(
            "E-DATASET-ARG", f"analog: unknown coding '{coding}'", f"use one of {', '.join(CODINGS)}"
        )
    if not scale > 0 or not dt > 0 or not duration > 0:
        raise RuntimeConfigError("E-DATASET-ARG", "analog: scale, dt and duration must be positive")
    p = data_file(path, base_dir)
    arrays = read_analog(p)
    x = snnc_order(np.asarray(arrays["x"], np.float64), channels_first)
    y = np.asarray(arrays.get("y", np.zeros(len(x), np.int64)))
    rng = np.random.default_rng(seed)
    if "test_x" in arrays:
        tx = snnc_order(np.asarray(arrays["test_x"], np.float64), channels_first)
        ty = np.asarray(arrays.get("test_y", np.zeros(len(tx), np.int64)))
    else:
        train_idx, test_idx = held_out(len(x), test_fraction, rng, "analog")
        x, y, tx, ty = x[train_idx], y[train_idx], x[test_idx], y[test_idx]
    train = encode(x, coding, scale, dt, duration, rng, k).with_labels(y)
    test = encode(tx, coding, scale, dt, duration, rng, k).with_labels(ty)
    meta = {"path": str(p), "coding": coding, "scale": scale, "dt": dt, "duration": duration}
    return Dataset(p.stem, train, test, x.shape[1], num_classes(np.concatenate([y, ty])), meta)
