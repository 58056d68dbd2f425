"""Per-epoch augmentation of training spikes, as in Nowotny et al.'s EventProp SHD work.

`shift(max)`: every spike of an example moves by one random whole number of channels in
[-max, max]; spikes leaving [0, num_neurons) are dropped. `blend(n, p)`: with probability p an
example is replaced by a mix of itself and n-1 other examples of the same class, each aligned to the
first one's channel centre of mass and each spike kept with probability 1/n. Both are seeded by
(seed, epoch) and apply to training data only. `Augmenter(...)(data, epoch)` is the per-epoch hook;
`from_calls` builds one from a train block's `augment = (shift(max = 40), blend(n = 2, p = 0.5))`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from snnc.runtime.datasets.spikes import SpikeDataset
from snnc.runtime.errors import RuntimeConfigError, check_args, unknown_name

Transform = Callable[[SpikeDataset, np.random.Generator], SpikeDataset]


def shift(data: SpikeDataset, rng: np.random.Generator, max: int = 40) -> SpikeDataset:  # noqa: A002
    offsets = rng.integers(-max, max + 1, len(data))
    ids = data.ids + np.repeat(offsets, np.diff(data.offsets))
    keep = (ids >= 0) & (ids < data.num_neurons)
    return _filtered(data, data.times, ids, keep)


def _filtered(data: SpikeDataset, times, ids, keep) -> SpikeDataset:
    example = np.repeat(np.arange(len(data)), np.diff(data.offsets))[keep]
    counts = np.bincount(example, minlength=len(data))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return SpikeDataset(times[keep], ids[keep], offsets, data.labels, data.num_neurons)


def blend(data: SpikeDataset, rng: np.random.Generator, n: int = 2, p: float = 0.5) -> SpikeDataset:
    labels = np.asarray(data.labels)
    by_class = {c: np.nonzero(labels == c)[0] for c in np.unique(labels)}
    examples = []
    for i in range(len(data)):
        t, u = data.example(i)
        if rng.random() >= p or len(by_class[labels[i]]) < 2:
            examples.append((t, u))
            continue
        others = rng.choice(by_class[labels[i]], n - 1, replace=True)
        centre = u.mean() if u.size else 0.0
        ts, us = [], []
        for j in (i, *others):
            tj, uj = data.example(int(j))
            if uj.size:
                uj = uj + int(round(centre - uj.mean()))
            keep = (rng.random(uj.size) < 1.0 / n) & (uj >= 0) & (uj < data.num_neurons)
            ts.append(tj[keep])
            us.append(uj[keep])
        examples.append((np.concatenate(ts), np.concatenate(us)))
    return SpikeDataset.from_examples(examples, labels, data.num_neurons)


AUGMENTATIONS: dict[str, Callable[..., SpikeDataset]] = {"shift": shift, "blend": blend}
_ARGS = {"shift": ("max",), "blend": ("n", "p")}


@dataclass
class Augmenter:
    """The per-epoch data hook: `aug(data, epoch)` returns that epoch's augmented training data."""

    steps: Sequence[tuple[str, dict]]
    seed: int = 0

    def __call__(self, data: SpikeDataset, epoch: int) -> SpikeDataset:
        rng = np.random.default_rng([self.seed, epoch, 0xA06])
        for name, args in self.steps:
            data = AUGMENTATIONS[name](data, rng, **args)
        return data


def from_calls(calls: Sequence, seed: int = 0) -> Augmenter:
    """From `ir.model.Call`s; unknown names or arguments are diagnostics at the call's span."""
    steps = []
    for c in calls:
        if c.name not in AUGMENTATIONS:
            raise unknown_name("augmentation", c.name, AUGMENTATIONS, c.span)
        check_args("augmentation", c.name, c.args, _ARGS[c.name], c.span)
        for k, v in c.args.items():
            bad = not isinstance(v, (int, float)) or v < 0 or (k == "p" and v > 1) or (k == "n" and v < 1)
            if bad or (k in ("max", "n") and not float(v).is_integer()):
                raise RuntimeConfigError(
                    "E-AUGMENT-ARG", f"{c.name}(): {k} = {v!r} is not valid", None, c.span
                )
        steps.append((c.name, {k: (int(v) if k in ("max", "n") else float(v)) for k, v in c.args.items()}))
    return Augmenter(steps, seed)
