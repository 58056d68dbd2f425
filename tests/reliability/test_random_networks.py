"""End to end on random valid networks: compiled, simulated and trained for one batch on the C backend.

Each structure (`random_networks.structure`: standard-library and generated models, dense, sparse and
one-to-one connectivity, delays, recurrence, readouts, EventProp or e-prop) is lowered and compiled
once; each of its networks then gets its own random weights (fresh draws of random distributions,
set through the API as a user would), its own seed, inputs and labels, and is simulated and trained
for one batch. Allowed: success, or a diagnostic about the model (a NaN or overflow must be one that
names the projection, and for a gradient the population and step where the forward pass first went
non-finite, or that it stayed finite). Not allowed: a traceback, an internal error. The default run
is 200 networks (20 structures of 10 networks, fixed seed; under a minute on 2 cores, most of it sympy deriving the
gradients and the compiler); `-m slow` draws 150 more structures.
"""

from __future__ import annotations

import collections
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from snnc.ir.diagnostics import DiagnosticError

from snnc.api import build_compiled, lower

sys.path.insert(0, str(Path(__file__).resolve().parent))

from random_networks import Structure, batch, source, structure  # noqa: E402

#: diagnostics that mean a bug in snnc, not in the user's model
BUG_CODES = {"E-INTERNAL", "E-CC", "E-CC-MISSING"}


def _check(err: DiagnosticError) -> str:
    d = err.diagnostics[0]
    assert d.code not in BUG_CODES and d.message, [f"{x.code}: {x.message}" for x in err.diagnostics]
    if d.code == "E-NUMERICS":
        assert "projection '" in d.message, d.message
        if "in the gradient" in d.message:  # located: where the forward pass went bad, or not there
            located = "population '" in d.message and " at step " in d.message
            assert located or "backward pass produced it" in (d.hint or ""), (d.message, d.hint)
    return d.code


def _weights(net, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Fresh weights of every trained projection: a random normal distribution per projection."""
    return {
        name: rng.normal(rng.uniform(-0.5, 2.0), rng.uniform(0.05, 1.0), np.shape(w)).astype(
            np.asarray(w).dtype
        )
        for name, w in net.weights.items()
    }


def networks_of(s: Structure, rng: np.random.Generator, count: int, cache: Path) -> list[str]:
    """Outcomes ("ran" or a diagnostic code) of `count` networks of structure `s`."""
    try:
        network = lower(source(s, rng))
        net = build_compiled(network, seed=int(rng.integers(0, 2**31)), cache_dir=cache)
    except DiagnosticError as err:
        return [_check(err)] * count
    outcomes = []
    for _ in range(count):
        net.set_weights(_weights(net, rng))
        x, y = batch(s, rng)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                result = net.run(x)
                for values in result.readouts.values():
                    assert np.asarray(values).shape[0] == s.batch_size
                net.train(x, y, 1, callbacks=(), seed=int(rng.integers(0, 2**31)))
            loss = net.trainer.history[-1]["train"]["loss"]
            assert np.isfinite(loss), f"a non-finite loss ({loss}) that no diagnostic reported"
            outcomes.append("ran")
        except DiagnosticError as err:
            outcomes.append(_check(err))
    return outcomes


def run_property(seed: int, structures: int, per_structure: int, cache: Path) -> collections.Counter:
    rng = np.random.default_rng(seed)
    drawn = [structure(rng) for _ in range(structures)]
    outcomes: collections.Counter = collections.Counter()
    for s in drawn:
        outcomes.update(networks_of(s, rng, per_structure, cache))
    algorithms = {s.algorithm for s in drawn}
    generated = sum("neuron Gen" in s.text for s in drawn)
    assert algorithms == {"eventprop", "eprop"} and generated > 0, (algorithms, generated)
    return outcomes


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("random-networks-cache")


def test_200_random_networks_compile_simulate_and_train(cache):
    outcomes = run_property(seed=19, structures=20, per_structure=10, cache=cache)
    assert sum(outcomes.values()) == 200
    assert outcomes["ran"] >= 180, outcomes  # the property is exercised, not skipped by diagnostics


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_many_more_random_networks(cache, seed):
    outcomes = run_property(seed=1000 + seed, structures=30, per_structure=10, cache=cache)
    assert outcomes["ran"] >= 0.8 * sum(outcomes.values()), outcomes
