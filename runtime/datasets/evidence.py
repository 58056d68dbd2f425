"""Bellec et al. (2020)'s evidence-accumulation task (Fig. 3 of the e-prop paper), generated here.

An agent sees `cues` left/right cues, then a delay, then a recall cue, and must answer which side
had more cues. 4 groups of `group` input neurons: left cues, right cues, recall, background noise.
Trial layout (defaults, the paper's): `cues` slots of `gap` silence then `cue` of spikes from the
left or right group at `cue_rate`; a `delay` of background only; the last `recall` of the trial
the recall group fires at `cue_rate`. The noise group fires at `noise_rate` throughout. Duration
7 · (50 + 100) + 1050 + 150 = 2250 ms.

Each trial favours one side (chosen uniformly); each cue is on the favoured side with probability
`p_favoured` (0.7 in the paper); the label is the side with more cues (0 left, 1 right; `cues` is odd,
so there is no tie). The split is balanced exactly: a trial whose majority is not the label drawn for
it is mirrored (left and right swapped), which leaves the distribution given the label unchanged.

Units follow the `.snn` base units: times in ms, rates per ms (`40 Hz` arrives as 0.04). Spikes are
Bernoulli per `dt` step with probability 1 − exp(−rate·dt), at the step's start time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from snnc.runtime.datasets import spike_cache
from snnc.runtime.datasets.spikes import Dataset, SpikeDataset
from snnc.runtime.errors import RuntimeConfigError

LEFT, RIGHT, RECALL, NOISE = range(4)  # input groups, in neuron order


def _arg_error(message: str) -> RuntimeConfigError:
    return RuntimeConfigError("E-DATASET-ARG", f"evidence: {message}")


def trial_rates(
    sides: np.ndarray,
    group: int,
    cue: float,
    gap: float,
    delay: float,
    recall: float,
    cue_rate: float,
    noise_rate: float,
    dt: float,
) -> np.ndarray:
    """[steps, 4·group] firing rate (per ms) of every input neuron in every step of one trial."""
    slot = cue + gap
    steps = int(round((len(sides) * slot + delay + recall) / dt))
    t = np.arange(steps) * dt
    rates = np.zeros((steps, 4 * group))
    for c, side in enumerate(sides):
        on = (t >= c * slot + gap) & (t < (c + 1) * slot)
        rates[on, side * group : (side + 1) * group] = cue_rate
    rates[t >= steps * dt - recall, RECALL * group : (RECALL + 1) * group] = cue_rate
    rates[:, NOISE * group :] = noise_rate
    return rates


def _sides(n: int, rng: np.random.Generator, cues: int, p_favoured: float) -> tuple[np.ndarray, np.ndarray]:
    """(labels, cue sides [n, cues]): the first draws of a split's stream, before its spikes."""
    labels = rng.permutation(np.arange(n) % 2)  # exactly balanced
    favoured = rng.integers(0, 2, n)
    on_favoured = rng.random((n, cues)) < p_favoured
    sides = np.where(on_favoured, favoured[:, None], 1 - favoured[:, None])
    majority = (sides.sum(1) > cues // 2).astype(np.int64)
    return labels, np.where((majority != labels)[:, None], 1 - sides, sides)  # mirror to match the label


def _split(
    n: int, rng: np.random.Generator, cues: int, p_favoured: float, rates_of
) -> tuple[SpikeDataset, np.ndarray]:
    labels, sides = _sides(n, rng, cues, p_favoured)
    examples = []
    for s in sides:
        rates, dt = rates_of(s)
        k, ids = np.nonzero(rng.random(rates.shape) < 1.0 - np.exp(-rates * dt))
        examples.append((k * dt, ids))
    return SpikeDataset.from_examples(examples, labels.astype(np.int64), rates.shape[1]), sides


#: bump when the generator draws differently: older caches are then ignored
GENERATOR = 1


def _cache_folder(part: str, n: int, args: tuple) -> Path:
    from snnc.cache import cache_dir

    key = hashlib.sha256(repr((GENERATOR, part, n, *(float(a) for a in args))).encode()).hexdigest()[:16]
    return cache_dir() / "datasets" / f"evidence-{part}-{key}"


def evidence(
    cues: int = 7,
    cue: float = 100.0,
    gap: float = 50.0,
    delay: float = 1050.0,
    recall: float = 150.0,
    group: int = 10,
    cue_rate: float = 0.04,
    noise_rate: float = 0.01,
    p_favoured: float = 0.7,
    dt: float = 1.0,
    train: int = 2048,
    test: int = 512,
    seed: int = 0,
) -> Dataset:
    """The evidence-accumulation task: `train` and `test` trials, drawn from independent seeded streams.

    meta: "duration" (ms), "recall_start" (ms, where the answer is read), "steps", and "cue_sides"
    ({"train", "test"}: [trials, cues], 0 left, 1 right)."""
    for name, value in (("cues", cues), ("group", group), ("train", train), ("test", test)):
        if int(value) != value or value < 1:
            raise _arg_error(f"{name} must be a positive integer, got {value}")
    if int(cues) % 2 == 0:
        raise _arg_error(f"cues must be odd so that one side always has more, got {cues}")
    if min(cue, dt, recall) <= 0.0 or min(gap, delay) < 0.0:
        raise _arg_error("cue, recall and dt must be positive, gap and delay not negative")
    if min(cue_rate, noise_rate) < 0.0:
        raise _arg_error("rates must not be negative")
    if not 0.5 < p_favoured <= 1.0:
        raise _arg_error(f"p_favoured must lie in (0.5, 1], got {p_favoured}")
    duration = int(cues) * (cue + gap) + delay + recall

    def rates_of(sides: np.ndarray) -> tuple[np.ndarray, float]:
        return trial_rates(sides, int(group), cue, gap, delay, recall, cue_rate, noise_rate, dt), dt

    args = (cues, cue, gap, delay, recall, group, cue_rate, noise_rate, p_favoured, dt, seed)

    def drawn(n: int, k: int) -> SpikeDataset:
        return _split(n, np.random.default_rng([seed, k]), int(cues), p_favoured, rates_of)[0]

    splits = {}
    for k, (part, n) in enumerate((("train", int(train)), ("test", int(test)))):
        # the spikes are cached (drawing them took ~10 s for the example's 5120 trials); the sides,
        # the first draws of the same stream, are drawn again: a few microseconds
        _, sides = _sides(n, np.random.default_rng([seed, k]), int(cues), p_favoured)
        folder = _cache_folder(part, n, args)
        built = spike_cache.cached(
            [folder], lambda n=n, k=k: drawn(n, k), 4 * int(group), f"evidence({part})"
        )
        splits[part] = (built, sides)
    (train_set, train_sides), (test_set, test_sides) = splits["train"], splits["test"]
    meta = {
        "seed": seed,
        "duration": duration,
        "recall_start": duration - recall,
        "dt": dt,
        "steps": int(round(duration / dt)),
        "cue_sides": {"train": train_sides, "test": test_sides},
    }
    return Dataset("evidence", train_set, test_set, 4 * int(group), 2, meta)
