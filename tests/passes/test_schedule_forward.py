"""The forward schedule in the kernel IR means what the C backend computes: the kernel, run by a plain
interpreter, gives the C artefact's membrane traces, spikes and readouts on the same weights and inputs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from snnc.ir.kernel import Role, kernel_to_text, verify_kernel
from snnc.passes.schedule_forward import schedule_forward
from snnc.passes.specialise import specialise
from snnc.runtime.artefact import RecordRequest

from snnc.api import build_compiled, lower

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ir"))
from kernel_interp import Interpreter  # noqa: E402

SOURCE = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network g {
    input  x   = SpikeInput(3)
    hidden h   = LIF(5, tau_mem = 10 ms, tau_refrac = 2 ms)
    output out = %s
    x -> h   : Dense(weight = Normal(mean = 3.0, sd = 0.5)), Exponential(tau = 5 ms)
    h -> h   : Sparse(p = 0.5, weight = Normal(mean = 0.3, sd = 0.2), delay = 1 ms), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.5, sd = 0.5)), Exponential(tau = 5 ms)
}
"""
STEPS, DT = 40, 0.5


def inputs(rows: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    out = []
    for _ in range(rows):
        times = np.sort(rng.uniform(0.0, 12.0, 6))
        out.append((np.round(times / DT) * DT, rng.integers(0, 3, 6)))
    return out


def allocate(kernel, compiled, rows: int) -> dict[str, np.ndarray]:  # noqa: ANN001
    sizes = {"batch": rows, "steps": STEPS}
    arrays: dict[str, np.ndarray] = {}
    for proj in kernel.projections:
        if kernel.projections[proj].kind == "sparse":
            conn = compiled.artefact.connectivity(proj)
            arrays[f"c_{proj}__row_ptr"] = np.asarray(conn["row_ptr"])
            arrays[f"c_{proj}__col_idx"] = np.asarray(conn["col_idx"])
            sizes["nnz"] = len(conn["col_idx"])
    for a in kernel.arrays:
        if a.role == Role.WEIGHT:
            arrays[a.name] = np.asarray(compiled.weights[a.owner], dtype=float).ravel()
        elif a.role != Role.CONNECTIVITY:
            shape = tuple(sizes.get(d, d) for d in a.shape)
            arrays[a.name] = np.full(shape, a.init, dtype=float)
    return arrays


@pytest.mark.parametrize(
    "output",
    [
        *(f"LeakyIntegrate(2, tau_mem = 10 ms, readout = {r})" for r in ("avg_var", "max_var", "sum_var")),
        *(f"LeakyIntegrate(2, tau_mem = 10 ms, readout = {r})" for r in ("avg_var_exp_weight", "var")),
        "LIF(2, tau_mem = 10 ms, v_thresh = 0.2, readout = spike_count)",
        "LIF(2, tau_mem = 10 ms, v_thresh = 0.2, readout = first_spike_time)",
    ],
)
def test_the_forward_kernel_computes_what_the_c_backend_computes(output: str) -> None:
    network = lower(SOURCE % output, dt=DT, duration=STEPS * DT)
    kernel = schedule_forward(specialise(network))
    assert verify_kernel(kernel) == []
    compiled = build_compiled(network, batch_size=2, precision="double", seed=3)
    x = inputs(2)
    res = compiled.run({"x": x}, RecordRequest.of(spikes=["h"], vars=[("h", "v"), ("out", "v")]))

    arrays = allocate(kernel, compiled, rows=2)
    interp = Interpreter(kernel, arrays)
    interp.run("run", rows=2, steps=STEPS, inputs={"x": x})

    h_spikes = np.zeros((2, STEPS, 5), dtype=bool)
    for (pop, b, k), ids in interp.spikes.items():
        if pop == "h":
            h_spikes[b, k, ids] = True
    assert h_spikes.any(), "the test network must spike to test anything"
    np.testing.assert_array_equal(h_spikes, res.spikes["h"])
    np.testing.assert_allclose(arrays["rv_h__v"], res.vars[("h", "v")], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(arrays["rv_out__v"], res.vars[("out", "v")], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(arrays["r_out"], res.readouts["out"], rtol=1e-12, atol=1e-12)
    if "first_spike_time" in output:
        assert np.isfinite(arrays["r_out"]).any(), "some output neuron must spike"


def test_the_forward_kernel_prints_its_schedule() -> None:
    network = lower(SOURCE % "LeakyIntegrate(2, readout = avg_var)", dt=DT, duration=STEPS * DT)
    text = kernel_to_text(schedule_forward(specialise(network)))
    assert (
        "entry run: before [reset], forward steps [deliver_x_to_h, deliver_h_to_h, deliver_h_to_out, generate_x, step_h, step_out]"
        in text
    )
    assert "projection h_to_h: h -> h, sparse, delay 2" in text
    assert "emit spikes of h where q_h__flag" in text
