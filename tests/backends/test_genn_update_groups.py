"""A generated GeNN module carries no custom update that nothing runs.

Every group in a module's `UPDATE_GROUPS` holds custom updates, every custom update's group is
listed, and the runtime (backends/genn/runtime.py) runs each listed group: found in its source (or,
for the per-step groups of online learning, run by its `_step_updates` from the module's
STEP_UPDATES) without pygenn, and observed during a training batch with a real pygenn. (The GeNN modules once
carried Adam updates that no runtime call ran and that ignored `optimizer = sgd(...)`.)
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from snnc.backends.genn import generate, have_pygenn, load_genn
from snnc.backends.genn import runtime as genn_runtime

from snnc.api import lower

from .genn_check import ttfs_regularised_source
from .test_genn_emit import LAYERS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.snn"))


def _groups_the_runtime_runs(module: SimpleNamespace) -> set[str]:
    """Groups named literally in a `custom_update("...")` call of the runtime, plus those its
    `_step_updates` runs from a module's STEP_UPDATES (after every step of a learning run)."""
    tree = ast.parse(inspect.getsource(genn_runtime))
    literal = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "custom_update"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert {"Reset", "GradientReduce"} <= literal, literal
    ran: list[str] = []
    art = SimpleNamespace(
        module=module,
        num_steps=1,
        _model=SimpleNamespace(custom_update=ran.append),
    )
    for s in range(1 + getattr(module, "EXTRA_STEPS", 0)):
        genn_runtime.GeNNArtefact._step_updates(art, s)
    return literal | set(ran)


def _networks() -> list:
    nets = [lower(path) for path in EXAMPLES]
    nets += [lower(LAYERS.replace("READOUT", "avg_var")), lower(ttfs_regularised_source(), duration=10.0)]
    nets += [dataclasses.replace(n, training=None) for n in nets[: len(EXAMPLES)]]
    return nets


def test_every_update_group_of_a_module_is_one_the_runtime_runs() -> None:
    seen = set()
    for network in _networks():
        _, _, ctx = generate(network)
        groups = {cu.group for cu in ctx.custom_updates}
        label = f"{network.name} ({ctx.training})"
        assert groups == set(ctx.update_groups), f"{label}: groups without updates or unlisted updates"
        module = SimpleNamespace(STEP_UPDATES=ctx.step_updates, EXTRA_STEPS=ctx.extra_steps)
        assert set(ctx.update_groups) <= _groups_the_runtime_runs(module), label
        seen |= groups
    # the networks above reach every group kind the backend makes
    assert {"Reset", "GradientReduce", "StepUpdate1"} <= seen


@pytest.mark.genn
@pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')")
@pytest.mark.parametrize("case", ["eventprop", "eventprop_regularised", "eprop"])
def test_a_training_batch_runs_every_listed_group(case: str, tmp_path: Path) -> None:
    if case == "eprop":
        network = lower(ROOT / "examples" / "eprop_digits.snn", duration=20.0)
    elif case == "eventprop":
        network = lower(ROOT / "examples" / "yinyang_eventprop.snn", duration=10.0)
    else:
        network = lower(ttfs_regularised_source(), duration=10.0)
    art = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=1)
    ran: list[str] = []
    run_group = art._model.custom_update
    art._model.custom_update = lambda group: (ran.append(group), run_group(group))[1]
    n_in = art.module.POPULATIONS["x"]["size"]
    rng = np.random.default_rng(0)
    ids = rng.integers(0, n_in, 20)
    inputs = {"x": [(np.sort(rng.uniform(0.0, art.num_steps * art.dt * 0.8, ids.size)), ids)]}
    n_out = art.module.POPULATIONS["out"]["size"]
    if case == "eprop":
        art.set_targets({"out": np.array([1])})
        art.run(inputs)
        art.backward({})
    else:
        art.run(inputs)
        art.backward({"out": rng.normal(size=(1, n_out))})
    assert set(ran) == set(art.module.UPDATE_GROUPS), f"ran {sorted(set(ran))}"
