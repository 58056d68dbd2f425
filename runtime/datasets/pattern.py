"""Bellec et al. (2020) pattern generation: frozen Poisson input, targets that are sums of sines.

A memorisation task for e-prop and other online rules: one fixed input spike pattern (drawn once from
a seeded Poisson process) must drive the network's leaky readouts to follow `channels` target curves
over the whole trial, each a sum of `components` sinusoids with random frequency, amplitude and
phase. There is nothing to generalise to, so the test split is the training example itself; the
quality measure is the MSE relative to the target's variance (`normalised_mse`).

Units follow the `.snn` base units: times in ms, frequencies and rates per ms (so `10 Hz` written in
a train block arrives here as 0.01). Labels are per-step targets of shape [examples, steps, channels]
with steps = round(duration / dt), the layout the mse loss and a `var` readout expect.
"""

from __future__ import annotations

import numpy as np
from snnc.runtime.datasets.spikes import Dataset, SpikeDataset
from snnc.runtime.errors import RuntimeConfigError


def _arg_error(message: str) -> RuntimeConfigError:
    return RuntimeConfigError("E-DATASET-ARG", f"sine_pattern: {message}")


def sine_targets(
    channels: int, components: int, freq_min: float, freq_max: float, steps: int, dt: float, rng
) -> np.ndarray:
    """[steps, channels]: per channel, Σ_k A_k sin(2π f_k t + φ_k), A ~ U(0.5, 2), f ~ U(freq_min, freq_max)."""
    t = (np.arange(steps) + 1) * dt  # the value the readout should hold at the end of step k
    out = np.zeros((steps, channels))
    for c in range(channels):
        freq = rng.uniform(freq_min, freq_max, components)
        amp = rng.uniform(0.5, 2.0, components)
        phase = rng.uniform(0.0, 2.0 * np.pi, components)
        out[:, c] = (amp[None, :] * np.sin(2.0 * np.pi * freq[None, :] * t[:, None] + phase[None, :])).sum(1)
    return out


def sine_pattern(
    inputs: int = 20,
    channels: int = 3,
    components: int = 3,
    freq_min: float = 0.0005,
    freq_max: float = 0.002,
    input_rate: float = 0.01,
    duration: float = 1000.0,
    dt: float = 1.0,
    examples: int = 1,
    seed: int = 0,
) -> Dataset:
    """The pattern-generation task.

    inputs: input channels, each a frozen Poisson spike train at `input_rate` (per ms) over `duration`
    (ms); channels: target curves (= readout neurons); components: sinusoids summed per curve, with
    frequencies uniform in [freq_min, freq_max] (per ms); examples: copies of the one pattern in the
    training split (more examples = more updates per epoch); seed: input spikes and targets.
    """
    for name, value in (("inputs", inputs), ("channels", channels), ("components", components)):
        if int(value) != value or value < 1:
            raise _arg_error(f"{name} must be a positive integer, got {value}")
    if int(examples) != examples or examples < 1:
        raise _arg_error(f"examples must be a positive integer, got {examples}")
    if not 0.0 < freq_min <= freq_max:
        raise _arg_error(f"need 0 < freq_min <= freq_max, got {freq_min} and {freq_max}")
    if input_rate < 0.0:
        raise _arg_error(f"input_rate must not be negative, got {input_rate}")
    if duration <= 0.0 or dt <= 0.0:
        raise _arg_error(f"duration and dt must be positive, got {duration} and {dt}")
    steps = int(round(duration / dt))
    rng = np.random.default_rng(seed)
    # frozen Poisson input: at most one spike per channel and step, at the step's start time
    spiking = rng.random((steps, int(inputs))) < 1.0 - np.exp(-input_rate * dt)
    k, ids = np.nonzero(spiking)
    times = k * dt
    target = sine_targets(int(channels), int(components), freq_min, freq_max, steps, dt, rng)

    def split(n: int) -> SpikeDataset:
        spikes = SpikeDataset.from_examples([(times, ids)] * n, np.zeros(n, np.int64), int(inputs))
        return spikes.with_labels(np.repeat(target[None], n, axis=0))

    meta = {
        "seed": seed,
        "duration": duration,
        "dt": dt,
        "steps": steps,
        "target_variance": float(target.var()),
    }
    return Dataset("sine_pattern", split(int(examples)), split(1), int(inputs), None, meta)


def normalised_mse(prediction: np.ndarray, target: np.ndarray) -> float:
    """MSE divided by the target's variance: 1 for a constant at the mean, 0 for a perfect fit."""
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    return float(np.mean((prediction - target) ** 2) / target.var())
