"""scikit-learn's 8×8 handwritten digits (1797 images, values 0–16) as spike trains.

A small, offline classification set for examples and tests. scikit-learn is the optional extra
`data` (`pip install snnc[data]`); without it this loader raises a clear error. The split is 3/4
train, 1/4 test after a seeded shuffle.

Encodings: "latency" gives each non-zero pixel one spike, brighter earlier:
t = t_min + (1 − v/16)(t_max − t_min); "rate" gives Poisson spikes at `max_rate · v/16` over
`duration` (seeded).
"""

from __future__ import annotations

import numpy as np
from snnc.runtime.datasets.spikes import Dataset, SpikeDataset
from snnc.runtime.errors import RuntimeConfigError

ENCODINGS = ("latency", "rate")


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise RuntimeConfigError(
            "E-DATASET-MISSING-EXTRA",
            "the 'digits' data set needs scikit-learn, which is not installed",
            "install the data extra: pip install 'snnc[data]'",
        ) from None
    d = load_digits()
    return np.asarray(d.data, dtype=np.float64), np.asarray(d.target, dtype=np.int64)


def _latency(pixels: np.ndarray, t_min: float, t_max: float) -> SpikeDataset:
    examples = []
    for row in pixels:
        on = np.nonzero(row > 0)[0]
        examples.append((t_min + (1.0 - row[on] / 16.0) * (t_max - t_min), on))
    return SpikeDataset.from_examples(examples, np.zeros(len(pixels), np.int64), pixels.shape[1])


def _rate(pixels: np.ndarray, max_rate: float, duration: float, rng: np.random.Generator) -> SpikeDataset:
    examples = []
    for row in pixels:
        counts = rng.poisson(max_rate * (row / 16.0) * duration / 1000.0)
        ids = np.repeat(np.arange(row.size), counts)
        times = rng.uniform(0.0, duration, ids.size)
        examples.append((times, ids))
    return SpikeDataset.from_examples(examples, np.zeros(len(pixels), np.int64), pixels.shape[1])


def digits(
    encoding: str = "latency",
    t_min: float = 0.0,
    t_max: float = 20.0,
    max_rate: float = 100.0,
    duration: float = 100.0,
    seed: int = 0,
    train: int | None = None,
    test: int | None = None,
) -> Dataset:
    """Train/test splits (3/4, 1/4), optionally cut to `train` and `test` examples."""
    if encoding not in ENCODINGS:
        raise RuntimeConfigError(
            "E-DATASET-ARG", f"digits: unknown encoding '{encoding}'", f"use one of {', '.join(ENCODINGS)}"
        )
    pixels, labels = _load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    n_train = (3 * len(labels)) // 4
    parts = {"train": order[:n_train], "test": order[n_train:]}
    for name, limit in (("train", train), ("test", test)):
        if limit is not None:
            if limit < 0 or limit > len(parts[name]):
                raise RuntimeConfigError(
                    "E-DATASET-ARG",
                    f"digits: {name} = {limit} but the {name} split has {len(parts[name])} examples",
                )
            parts[name] = parts[name][:limit]
    out = {}
    for name, idx in parts.items():
        if encoding == "latency":
            spikes = _latency(pixels[idx], t_min, t_max)
        else:
            spikes = _rate(pixels[idx], max_rate, duration, rng)
        out[name] = spikes.with_labels(labels[idx])
    meta = {"encoding": encoding, "seed": seed, "t_min": t_min, "t_max": t_max}
    if encoding == "rate":
        meta.update(max_rate=max_rate, duration=duration)
    return Dataset("digits", out["train"], out["test"], pixels.shape[1], 10, meta)
