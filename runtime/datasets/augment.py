"""Per-epoch augmentation of training spikes, as in Nowotny et al.'s EventProp SHD work.

`shift(max)`: every spike of an example moves by one random whole number of channels in
[-max, max]; spikes leaving [0, num_neurons) are dropped. `blend(n, p)`: with probability p an
example is replaced by a mix of itself and n-1 other examples of the same class, each aligned to the
first one's channel centre of mass and each spike kept with probability 1/n. Both apply to training
data only. `Augmenter(...)(data, epoch)` is the per-epoch hook; `from_calls` builds one from a train
block's `augment = (shift(max = 40), blend(n = 2, p = 0.5))`.

Every example draws from its own stream, keyed by (seed, epoch, step, example index), so augmenting
some examples (`only`: one MPI rank's share of the epoch) gives them exactly what augmenting the whole
set gives them, and the rank reads and holds no other examples. An example that blends others reads those others as the earlier steps left them,
computed on demand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from snnc.runtime.datasets.spikes import HeldExamples, SpikeDataset
from snnc.runtime.errors import RuntimeConfigError, check_args, unknown_name

Example = tuple[np.ndarray, np.ndarray]  # spike times, neuron ids


@dataclass(frozen=True)
class Source:
    """What a step reads: any example as the earlier steps left it, the labels and the channels."""

    example: Callable[[int], Example]
    labels: np.ndarray
    by_class: dict[int, np.ndarray]
    num_neurons: int


#: one step on one example: (index, its generator, what the step reads, the step's arguments)
Step = Callable[..., Example]


def shift_one(i: int, rng: np.random.Generator, source: Source, max: int = 40) -> Example:  # noqa: A002
    t, u = source.example(i)
    u = u + int(rng.integers(-max, max + 1))
    keep = (u >= 0) & (u < source.num_neurons)
    return t[keep], u[keep]


def blend_one(i: int, rng: np.random.Generator, source: Source, n: int = 2, p: float = 0.5) -> Example:
    t, u = source.example(i)
    members = source.by_class[int(source.labels[i])]
    if rng.random() >= p or len(members) < 2:
        return t, u
    others = rng.choice(members, n - 1, replace=True)
    centre = u.mean() if u.size else 0.0
    ts, us = [], []
    for tj, uj in [(t, u), *(source.example(int(j)) for j in others)]:
        if uj.size:
            uj = uj + int(round(centre - uj.mean()))
        keep = (rng.random(uj.size) < 1.0 / n) & (uj >= 0) & (uj < source.num_neurons)
        ts.append(tj[keep])
        us.append(uj[keep])
    return np.concatenate(ts), np.concatenate(us)


STEPS: dict[str, Step] = {"shift": shift_one, "blend": blend_one}
_ARGS = {"shift": ("max",), "blend": ("n", "p")}


def shift(data: SpikeDataset, rng: np.random.Generator, max: int = 40) -> SpikeDataset:  # noqa: A002
    """`shift` on every example, each from a child of `rng`."""
    return _apply(data, rng, shift_one, max=max)


def blend(data: SpikeDataset, rng: np.random.Generator, n: int = 2, p: float = 0.5) -> SpikeDataset:
    """`blend` on every example, each from a child of `rng`."""
    return _apply(data, rng, blend_one, n=n, p=p)


def _apply(data: SpikeDataset, rng: np.random.Generator, step: Step, **args: float) -> SpikeDataset:
    source = _source(data, data.example)
    out = [step(i, child, source, **args) for i, child in enumerate(rng.spawn(len(data)))]
    return SpikeDataset.from_examples(out, data.labels, data.num_neurons)


def _source(data: SpikeDataset, example: Callable[[int], Example]) -> Source:
    labels = np.asarray(data.labels)
    by_class = {int(c): np.nonzero(labels == c)[0] for c in np.unique(labels)}
    return Source(example, labels, by_class, data.num_neurons)


@dataclass
class Augmenter:
    """The per-epoch data hook: `aug(data, epoch)` returns that epoch's augmented training data."""

    steps: Sequence[tuple[str, dict]]
    seed: int = 0

    def __call__(
        self, data: SpikeDataset, epoch: int, only: Iterable[int] | None = None
    ) -> SpikeDataset | HeldExamples:
        """The epoch's data, every example augmented; with `only` (an MPI rank's share of the epoch),
        just those examples, held for the trainer to take (the others are never read, except as
        blend partners)."""
        memo: dict[tuple[int, int], Example] = {}

        def value(level: int, i: int) -> Example:  # example i after the first `level` steps
            if level == 0:
                return data.example(i)
            key = (level, i)
            if key not in memo:
                name, args = self.steps[level - 1]
                rng = np.random.default_rng([self.seed, epoch, 0xA06, level, i])
                source = sources[level - 1]
                memo[key] = STEPS[name](i, rng, source, **args)
            return memo[key]

        sources = [_source(data, lambda j, lv=level: value(lv, j)) for level in range(len(self.steps))]
        top = len(self.steps)
        if only is None:
            examples = [value(top, i) for i in range(len(data))]
            return SpikeDataset.from_examples(examples, data.labels, data.num_neurons)
        held = np.unique(np.fromiter((int(i) for i in only), dtype=np.int64))
        part = SpikeDataset.from_examples(
            [value(top, int(i)) for i in held], data.labels[held], data.num_neurons
        )
        return HeldExamples(len(data), held, part, data.labels)


def from_calls(calls: Sequence, seed: int = 0) -> Augmenter:
    """From `ir.model.Call`s; unknown names or arguments are diagnostics at the call's span."""
    steps = []
    for c in calls:
        if c.name not in STEPS:
            raise unknown_name("augmentation", c.name, STEPS, c.span)
        check_args("augmentation", c.name, c.args, _ARGS[c.name], c.span)
        for k, v in c.args.items():
            bad = not isinstance(v, (int, float)) or v < 0 or (k == "p" and v > 1) or (k == "n" and v < 1)
            if bad or (k in ("max", "n") and not float(v).is_integer()):
                raise RuntimeConfigError(
                    "E-AUGMENT-ARG", f"{c.name}(): {k} = {v!r} is not valid", None, c.span
                )
        steps.append((c.name, {k: (int(v) if k in ("max", "n") else float(v)) for k, v in c.args.items()}))
    return Augmenter(steps, seed)
