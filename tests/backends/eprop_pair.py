"""The same e-prop batch through a GeNN module and the C artefact, for tests that compare them."""

from __future__ import annotations

from typing import Any

import numpy as np


def gradients_on_both(genn: Any, c: Any, batch: int, n_in: int, n_out: int, spikes: int) -> tuple[dict, dict]:
    """Seeded random input rows (`spikes` per row over the first 80 % of the trial) and per-step
    targets, run and differentiated on both; returns (GeNN's gradients, C's)."""
    rng = np.random.default_rng(0)
    steps = c.num_steps
    rows = []
    for _ in range(batch):
        ids = rng.integers(0, n_in, spikes)
        rows.append((np.sort(rng.uniform(0, steps * c.dt * 0.8, ids.size)), ids))
    targets = {"out": rng.normal(size=(batch, steps, n_out))}
    out = []
    for art in (genn, c):
        art.set_targets(targets)
        art.run({"x": rows})
        out.append(art.backward({}))
    return out[0], out[1]
