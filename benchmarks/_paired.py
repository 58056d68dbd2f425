"""Two variants of one SHD-shaped training batch timed side by side (delays_cost.py,
deep_r_sparse.py): the same synthetic batches, variants taking turns round by round (the order
reversed every other round), wall and CPU time per batch, and the ratio of two variants per round."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def variant(source: str, batch: int, threads: int):  # noqa: ANN201
    """A trainer of the `.snn` text `source` (seed 1) at this batch size and thread count."""
    import snnc

    net = snnc.compile(source, batch_size=batch, seed=1)
    net.set_threads(threads)
    return net.make_trainer(batch_size=batch)


def shd_batch(index: int, batch: int, steps: int | None = None) -> tuple[dict, dict]:
    """Synthetic SHD-shaped batch `index` (`_synthetic_shd.py`, seed 0), its first `steps` steps."""
    from _synthetic_shd import DT_MS, N_CHANNELS, make_batch, raster_to_times_ids
    from snnc.runtime.encoding import preprocess_spikes

    raster, labels = make_batch(index, batch, seed=0)
    if steps is not None:
        raster = raster[:, :steps]
    x = [preprocess_spikes(t, ids, N_CHANNELS) for t, ids in raster_to_times_ids(raster, DT_MS)]
    for example in x:
        _ = example.by_time  # cached per example: part of input conversion, not of training
    return {"x": x}, {"out": labels}


def timed(trainer: Any, x: dict, y: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of one training batch."""
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.train(x, y, 1, shuffle=False, callbacks=())
    return time.perf_counter() - wall, time.process_time() - cpu


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def interleaved(
    trainers: dict[str, Any],
    data: list[tuple[dict, dict]],
    rounds: int,
    ratio: tuple[str, str],
    report: Callable[[int, dict[str, dict[str, float]], dict[str, list[float]]], None],
) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[float]]]:
    """Each round times every trainer on `data[:-1]` (after one untimed batch each on `data[-1]`:
    first-touch allocations). Returns the per-batch seconds by trainer and clock, and per round the
    ratio of the median seconds of `ratio[0]` over `ratio[1]` by clock; `report(round, medians,
    ratios)` prints a round."""
    for trainer in trainers.values():
        timed(trainer, *data[-1])
    per_batch: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in trainers}
    ratios: dict[str, list[float]] = {"wall": [], "cpu": []}
    for r in range(rounds):
        order = list(trainers) if r % 2 == 0 else list(reversed(trainers))
        medians: dict[str, dict[str, float]] = {}
        for name in order:
            walls, cpus = zip(*(timed(trainers[name], *batch) for batch in data[:-1]), strict=True)
            per_batch[name]["wall"] += walls
            per_batch[name]["cpu"] += cpus
            medians[name] = {"wall": statistics.median(walls), "cpu": statistics.median(cpus)}
        for clock in ratios:
            ratios[clock].append(medians[ratio[0]][clock] / medians[ratio[1]][clock])
        report(r, medians, ratios)
    return per_batch, ratios
