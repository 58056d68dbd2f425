"""tonic event arrays (structured numpy: t [µs], x, p, and y for 2-D sensors) as input spikes.

tonic itself is optional: only its array format is used. Neuron ids flatten (x, y, p) in C order of
`sensor_size` = (W, H, P) (or (W, P) / (W,) for 1-D sensors); times become ms.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from snnc.runtime.datasets.spikes import SpikeDataset


def event_ids(events: np.ndarray, sensor_size: Sequence[int]) -> np.ndarray:
    """Flat neuron id of each event: ((x * H) + y) * P + p."""
    names = events.dtype.names or ()
    if "t" not in names or "x" not in names:
        raise ValueError(f"tonic events need fields t and x (and y, p), got {names}")
    size = tuple(int(s) for s in sensor_size)
    if "y" not in names and len(size) == 2:  # a 1-D sensor written as (W, P)
        size = (size[0], 1, size[1])
    size = size + (1,) * (3 - len(size))
    w, h, p = size[:3]
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64) if "y" in names else np.zeros_like(x)
    pol = events["p"].astype(np.int64) if "p" in names else np.zeros_like(x)
    for name, v, n in (("x", x, w), ("y", y, h), ("p", pol, p)):
        if v.size and (v.min() < 0 or v.max() >= n):
            raise ValueError(f"event field {name} outside [0, {n}) of sensor_size {tuple(sensor_size)}")
    return (x * h + y) * p + pol


def from_tonic(
    events: Sequence[np.ndarray], labels, sensor_size: Sequence[int], time_scale: float = 1e-3
) -> SpikeDataset:
    """A `SpikeDataset` from tonic event arrays; `time_scale` turns their time unit (µs) into ms."""
    n = int(np.prod(sensor_size))
    examples = [(np.asarray(e["t"], np.float64) * time_scale, event_ids(e, sensor_size)) for e in events]
    return SpikeDataset.from_examples(examples, np.asarray(labels), n)
