"""The EventProp schedule in the kernel IR means what the C backend computes: the kernel, run by a
plain interpreter (forward, then backward), gives the C artefact's weight gradients on the same
weights, inputs and dL/dy. (That those gradients are right is the finite-difference tests' job.)"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from snnc.ir.kernel import Role, kernel_to_text, verify_kernel
from snnc.passes.schedule_eventprop import eventprop_kernel

from snnc.api import build_compiled, lower

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ir"))
from kernel_interp import Interpreter  # noqa: E402

SOURCE = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network g {
    input  x   = SpikeInput(3)
    hidden h   = LIF(5, tau_mem = 10 ms)
    output out = %s
    x -> h   : Dense(weight = Normal(mean = 3.0, sd = 0.5)), Exponential(tau = 5 ms)
    h -> h   : Sparse(p = 0.5, weight = Normal(mean = 0.3, sd = 0.2), delay = 1 ms), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.5, sd = 0.5)), Exponential(tau = 5 ms)
}
train g {
    algorithm = eventprop(max_spikes = 20)
    loss = %s
    %s
    seed = 4
}
"""
STEPS, DT, ROWS = 60, 0.25, 2
OUTPUTS = {
    "avg_var_exp_weight": "LeakyIntegrate(2, tau_mem = 10 ms, readout = avg_var_exp_weight)",
    "max_var": "LeakyIntegrate(2, tau_mem = 10 ms, readout = max_var)",
    "first_spike_time": "LIF(2, tau_mem = 10 ms, v_thresh = 0.2, readout = first_spike_time)",
}
LOSS = {"first_spike_time": "ttfs_crossentropy"}
REGULARISER = "regularisation = spike_count(strength = 1e-3, nu = 1)"


def inputs() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    out = []
    for _ in range(ROWS):
        times = np.sort(rng.uniform(0.0, 8.0, 6))
        out.append((np.round(times / DT) * DT, rng.integers(0, 3, 6)))
    return out


def allocate(kernel, compiled, capacity: int) -> dict[str, np.ndarray]:  # noqa: ANN001
    sizes = {"batch": ROWS, "steps": STEPS, "events": capacity}
    arrays: dict[str, np.ndarray] = {}
    for proj, info in kernel.projections.items():
        if info.kind == "sparse":
            conn = compiled.artefact.connectivity(proj)
            arrays[f"c_{proj}__row_ptr"] = np.asarray(conn["row_ptr"])
            arrays[f"c_{proj}__col_idx"] = np.asarray(conn["col_idx"])
            sizes["nnz"] = len(conn["col_idx"])
    for a in kernel.arrays:
        if a.role == Role.WEIGHT:
            arrays[a.name] = np.asarray(compiled.weights[a.owner], dtype=float).ravel()
        elif a.role == Role.INPUT and a.var == "capacity":
            arrays[a.name] = np.array([capacity])
        elif a.role != Role.CONNECTIVITY:
            shape = tuple(sizes.get(d, d) for d in a.shape)
            arrays[a.name] = np.full(shape, a.init, dtype=float)
    return arrays


@pytest.mark.parametrize(
    ("readout", "regularise"),
    [  # ~12 s a case on 2 cores: the regularised and first-spike cases by default, all under `-m slow`
        pytest.param(r, "", marks=pytest.mark.slow) if r != "first_spike_time" else (r, "") for r in OUTPUTS
    ]
    + [("avg_var_exp_weight", REGULARISER)],
)
def test_the_eventprop_kernel_computes_what_the_c_backend_computes(readout: str, regularise: str) -> None:
    network = lower(
        SOURCE % (OUTPUTS[readout], LOSS.get(readout, "sparse_categorical_crossentropy"), regularise),
        dt=DT,
        duration=STEPS * DT,
    )
    kernel = eventprop_kernel(network, precision="double")
    assert verify_kernel(kernel) == []
    compiled = build_compiled(network, batch_size=ROWS, precision="double", seed=3)
    art = compiled.artefact
    x = inputs()
    art.run({"x": x})
    rng = np.random.default_rng(1)
    dl = rng.normal(size=(ROWS, 2))
    count = rng.normal(size=(ROWS, 5))
    c_grads = art.backward({"out": dl, "h.spike_count": count})

    arrays = allocate(kernel, compiled, capacity=5 * 20)
    interp = Interpreter(kernel, arrays)
    interp.run("run", rows=ROWS, steps=STEPS, inputs={"x": x})
    assert arrays["ep_h__length"].min() > 0, "the hidden layer must spike to test anything"
    arrays[kernel.find(Role.TARGET, "out", "dL_dy").name][...] = dl
    arrays[kernel.find(Role.TARGET, "h", "dL_dcount").name][...] = count
    if regularise:
        counts = arrays[kernel.find(Role.COUNTER, "h", "count").name]
        arrays[kernel.find(Role.TARGET, "h", "spike_count_sum").name][...] = counts.sum(axis=0)
        arrays[kernel.find(Role.TARGET, "h", "spike_count_trials").name][...] = ROWS  # the trials summed
    interp.run("backward", rows=ROWS, steps=STEPS, inputs={"x": x})

    shapes = art.weight_shapes()
    for proj, grad in c_grads.items():
        mine = arrays[kernel.find(Role.GRADIENT, proj).name].sum(axis=0).reshape(shapes[proj])
        assert np.abs(grad).max() > 0, proj
        np.testing.assert_allclose(mine, grad, rtol=1e-9, atol=1e-12, err_msg=proj)


def test_the_eventprop_kernel_prints_its_schedule() -> None:
    source = SOURCE % (OUTPUTS["avg_var_exp_weight"], "sparse_categorical_crossentropy", "")
    network = lower(source, dt=DT, duration=STEPS * DT)
    text = kernel_to_text(eventprop_kernel(network))
    assert "spike_list_h" in text and "jump_h" in text
    assert (
        "entry backward: before [reset_backward], backward steps [events_x_to_h, events_h_to_h, "
        "events_h_to_out, jump_h, adjoint_h, adjoint_out]" in text
    )
    assert "for e, i in events(h, step k - 4, newest first, cursor ep_h_to_h__cursor)" in text
