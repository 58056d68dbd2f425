"""Seeded synthetic spike data shaped like the Spiking Heidelberg Digits (SHD) for benchmarks.

Real SHD is not needed to measure speed and memory, only data of the same shape and sparsity:
700 input channels, 1 s trials, 20 classes, a few percent of channels firing per millisecond. Each
class owns a template of three "formant" tracks (bands of channels sweeping linearly across the
cochlear axis during part of the trial); an example draws Bernoulli spikes from its class template,
shifted a little in time and channel, on top of a uniform background rate. Batches are generated one
at a time from `(seed, batch_index)`, so two processes see identical data and neither holds a whole
dataset in memory.
"""

from __future__ import annotations

import numpy as np

N_CHANNELS = 700
N_CLASSES = 20
STEPS = 1000
DT_MS = 1.0

_TRACKS = 3
_TRACK_HALF_WIDTH = 25  # channels either side of a track centre
_P_TRACK = 0.12  # spike probability per step inside an active track
_P_BACKGROUND = 0.01  # everywhere else


def class_templates(seed: int, n_classes: int = N_CLASSES, n_channels: int = N_CHANNELS) -> np.ndarray:
    """Per class and track: (start step fraction, end fraction, start channel, end channel) [classes, tracks, 4]."""
    rng = np.random.default_rng([seed, 0xC1A55])
    t0 = rng.uniform(0.05, 0.35, (n_classes, _TRACKS))
    t1 = t0 + rng.uniform(0.3, 0.6, (n_classes, _TRACKS))
    c0 = rng.uniform(0, n_channels, (n_classes, _TRACKS))
    c1 = np.clip(c0 + rng.normal(0, n_channels / 6, (n_classes, _TRACKS)), 0, n_channels - 1)
    return np.stack([t0, np.minimum(t1, 0.95), c0, c1], axis=-1)


def example_probability(
    template: np.ndarray, rng: np.random.Generator, steps: int, n_channels: int
) -> np.ndarray:
    """Spike probability [steps, channels] of one example of a class (jittered in time and channel)."""
    p = np.full((steps, n_channels), _P_BACKGROUND, dtype=np.float32)
    shift_t = rng.uniform(-0.05, 0.05)
    shift_c = rng.normal(0.0, 10.0)
    channels = np.arange(n_channels)
    for t0, t1, c0, c1 in template:
        k0, k1 = int((t0 + shift_t) * steps), int((t1 + shift_t) * steps)
        k0, k1 = max(k0, 0), min(k1, steps)
        if k1 <= k0:
            continue
        centre = np.linspace(c0, c1, k1 - k0) + shift_c
        inside = np.abs(channels[None, :] - centre[:, None]) <= _TRACK_HALF_WIDTH
        p[k0:k1][inside] = _P_TRACK
    return p


def make_batch(
    batch_index: int,
    batch_size: int = 32,
    seed: int = 0,
    *,
    steps: int = STEPS,
    n_channels: int = N_CHANNELS,
    n_classes: int = N_CLASSES,
) -> tuple[np.ndarray, np.ndarray]:
    """One batch: (raster bool [batch, steps, channels], labels int64 [batch]); the same for the
    same arguments in every process."""
    templates = class_templates(seed, n_classes, n_channels)
    rng = np.random.default_rng([seed, 1, batch_index])
    labels = rng.integers(0, n_classes, batch_size)
    raster = np.empty((batch_size, steps, n_channels), dtype=bool)
    for b, label in enumerate(labels):
        p = example_probability(templates[label], rng, steps, n_channels)
        raster[b] = rng.random((steps, n_channels), dtype=np.float32) < p
    return raster, labels.astype(np.int64)


def raster_to_times_ids(raster: np.ndarray, dt: float = DT_MS) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per example (spike times in ms, channel ids) from a [batch, steps, channels] raster."""
    out = []
    for example in raster:
        steps, ids = np.nonzero(example)
        out.append((steps * dt, ids))
    return out


if __name__ == "__main__":
    r, y = make_batch(0)
    print(f"raster {r.shape}, mean firing {r.mean() * 100:.2f} % per channel per step, labels {y[:8]}")
