"""benchmarks/delays_cost.py compares the example with and without its learnable delays; what it
compares must stay that: the same text minus exactly the two `delay = Trainable(...)` arguments."""

from __future__ import annotations

import sys
from pathlib import Path

from snnc.api import lower

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import delays_cost  # noqa: E402


def test_the_variant_without_delays_is_the_example_without_its_learnable_delays() -> None:
    sources = delays_cost.sources()
    assert sources["delays"] == delays_cost.EXAMPLE.read_text()
    with_delays, without = (lower(sources[k]) for k in ("delays", "no_delays"))
    learnable = {n for n, p in with_delays.projections.items() if p.delay_trainable is not None}
    assert learnable == {"x_to_h", "h_to_h"}
    assert all(p.delay_trainable is None for p in without.projections.values())
    # everything else is the same network: populations, projections, trainable params, train block
    assert with_delays.populations.keys() == without.populations.keys()
    assert with_delays.projections.keys() == without.projections.keys()
    for name, pop in with_delays.populations.items():
        assert pop.trainable.keys() == without.populations[name].trainable.keys()
    assert with_delays.train.regularisation.args == without.train.regularisation.args
