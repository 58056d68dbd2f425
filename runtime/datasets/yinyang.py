"""The Yin-Yang data set (Kriener et al. 2021), generated as the paper's reference code does.

Points (x, y) are drawn uniformly in [0, 2 r_big]² and kept if inside the big circle; each example
first draws its class uniformly from {yin, yang, dot} and then rejection-samples a point of that
class, so the classes are balanced in expectation. Features are (x, y, 1 − x, 1 − y). The draws use
`np.random.RandomState(seed)` in the reference order, so the same seed gives the same points as the
reference implementation: its published sets are train seed 42 (5000), validation 41 and test 40
(1000 each), so `yinyang(seed=42)` reproduces the published train and test sets exactly.

Each feature becomes one spike: t = t_min + v · (t_max − t_min), with an optional bias neuron firing
at t_min (as in mlGeNN's `generate_yin_yang_dataset`).
"""

from __future__ import annotations

import numpy as np
from snnc.runtime.datasets.spikes import Dataset, SpikeDataset

CLASS_NAMES = ("yin", "yang", "dot")


def _which_class(x: float, y: float, r_small: float, r_big: float) -> int:
    d_right = np.hypot(x - 1.5 * r_big, y - r_big)
    d_left = np.hypot(x - 0.5 * r_big, y - r_big)
    if d_right < r_small or d_left < r_small:
        return 2
    is_yin = d_right <= r_small or (r_small < d_left <= 0.5 * r_big) or (y > r_big and d_right > 0.5 * r_big)
    return int(is_yin)


def yinyang_points(
    size: int, seed: int, r_small: float = 0.1, r_big: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Features [size, 4] (x, y, 1 − x, 1 − y) and labels [size] (0 yin, 1 yang, 2 dot)."""
    if size < 0:
        raise ValueError("size must not be negative")
    if not 0 < r_small < 0.5 * r_big:
        raise ValueError("need 0 < r_small < r_big / 2")
    rng = np.random.RandomState(seed)
    features = np.empty((size, 4))
    labels = np.empty(size, dtype=np.int64)
    for i in range(size):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * r_big
            if np.hypot(x - r_big, y - r_big) > r_big:
                continue
            if _which_class(x, y, r_small, r_big) == goal:
                break
        features[i] = (x, y, 1.0 - x, 1.0 - y)
        labels[i] = goal
    return features, labels


def encode_yinyang(features: np.ndarray, t_min: float, t_max: float, bias: bool = False) -> SpikeDataset:
    """One spike per feature (and one bias spike at t_min first, if asked) per example."""
    if not t_max > t_min:
        raise ValueError("t_max must be later than t_min")
    n, f = features.shape
    times = t_min + features * (t_max - t_min)
    if bias:
        times = np.concatenate([np.full((n, 1), float(t_min)), times], axis=1)
    width = times.shape[1]
    ids = np.tile(np.arange(width), n)
    offsets = np.arange(n + 1) * width
    return SpikeDataset(times.reshape(-1), ids, offsets, np.zeros(n, np.int64), width)


def yinyang(
    train: int = 5000,
    test: int = 1000,
    t_min: float = 0.0,
    t_max: float = 30.0,
    seed: int = 42,
    bias: bool = False,
    r_small: float = 0.1,
    r_big: float = 0.5,
) -> Dataset:
    """Train and test sets; the test set is drawn with `seed − 2`, the reference's convention."""
    if train < 1 or test < 0:
        raise ValueError("yinyang needs train >= 1 and test >= 0")
    splits = {}
    for name, size, s in (("train", train, seed), ("test", test, (seed - 2) % 2**32)):
        features, labels = yinyang_points(size, s, r_small, r_big)
        spikes = encode_yinyang(features, t_min, t_max, bias)
        splits[name] = spikes.with_labels(labels)
        splits[name + "_features"] = features
    return Dataset(
        name="yinyang",
        train=splits["train"],
        test=splits["test"],
        num_inputs=splits["train"].num_neurons,
        num_classes=3,
        meta={
            "t_min": t_min,
            "t_max": t_max,
            "seed": seed,
            "bias": bias,
            "train_features": splits["train_features"],
            "test_features": splits["test_features"],
        },
    )
