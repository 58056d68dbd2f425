"""The C printer of the kernel IR: what the C backend builds for a network without training (the
forward kernel, printed) runs it as the backend's template code did: the same spikes, and states and
readouts equal to rounding (the two sum a neuron's inputs in different orders; double precision,
same weights)."""

from __future__ import annotations

import numpy as np
import pytest
from snnc.backends.c.backend import generate
from snnc.backends.c.build import build
from snnc.backends.c.loader import NativeArtefact
from snnc.backends.c.render import render
from snnc.runtime.artefact import RecordRequest

from snnc.api import lower

SOURCE = """
use std.{SpikeInput, PoissonInput, LIF, LeakyIntegrate, Exponential}
network g {
    input  x   = SpikeInput(20)
    input  p   = PoissonInput(30)
    hidden h   = LIF(30, tau_mem = 10 ms, tau_refrac = 1 ms)
    output out = %s
    x -> h   : Dense(weight = Normal(mean = 0.8, sd = 0.5)), Exponential(tau = 5 ms)
    p -> h   : OneToOne(weight = Normal(mean = 0.5, sd = 0.1)), Exponential(tau = 5 ms)
    h -> h   : Sparse(p = 0.3, weight = Normal(mean = 0.1, sd = 0.2), delay = 1 ms), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.3, sd = 0.3)), Exponential(tau = 5 ms)
}
"""
STEPS, DT, ROWS = 60, 0.5, 3


def template_artefact(network, rows: int, precision: str) -> NativeArtefact:  # noqa: ANN001
    """The reference: the forward code of the C backend's own templates (model.c.j2), which the
    backend used for every network before it printed kernels, on the same initial weights."""
    _, static, plan = generate(network, precision=precision, seed=3)
    rendered = render(plan)
    return NativeArtefact(build(rendered.code, network.name).library, rendered.manifest, static, rows)


def kernel_artefact(network, rows: int, precision: str) -> NativeArtefact:  # noqa: ANN001
    """What the C backend builds for a network without training: the printed forward kernel."""
    rendered, static, _ = generate(network, precision=precision, seed=3)
    assert "Printed from the kernel IR" in rendered.code
    return NativeArtefact(build(rendered.code, network.name).library, rendered.manifest, static, rows)


def data(rows: int):  # noqa: ANN201
    rng = np.random.default_rng(5)
    spikes = []
    for _ in range(rows):
        times = np.sort(rng.uniform(0.0, 20.0, 40))
        spikes.append((np.round(times / DT) * DT, rng.integers(0, 20, 40)))
    return {"x": spikes, "p": rng.uniform(0.0, 200.0, (rows, 30))}


@pytest.mark.parametrize(
    "output",
    [
        "LeakyIntegrate(4, tau_mem = 10 ms, readout = avg_var_exp_weight)",
        "LeakyIntegrate(4, tau_mem = 10 ms, readout = max_var)",
        "LIF(4, tau_mem = 10 ms, v_thresh = 0.3, readout = first_spike_time)",
        "LIF(4, tau_mem = 10 ms, v_thresh = 0.3, readout = spike_count)",
    ],
)
def test_the_printed_forward_kernel_runs_as_the_c_backend(output: str) -> None:
    network = lower(SOURCE % output, dt=DT, duration=STEPS * DT)
    reference = template_artefact(network, ROWS, "double")
    printed = kernel_artefact(network, ROWS, "double")
    request = RecordRequest.of(spikes=["x", "p", "h", "out"], vars=[("h", "v"), ("out", "v")])
    want = reference.run(data(ROWS), request)
    got = printed.run(data(ROWS), request)
    assert want.spikes["h"].sum() > 20 and want.spikes["p"].any(), "the network must be active"
    for pop in ("x", "p", "h", "out"):
        np.testing.assert_array_equal(got.spikes[pop], want.spikes[pop], err_msg=pop)
    for key in want.vars:
        np.testing.assert_allclose(got.vars[key], want.vars[key], rtol=1e-13, atol=1e-15, err_msg=str(key))
    np.testing.assert_allclose(got.readouts["out"], want.readouts["out"], rtol=1e-13, atol=1e-15)
    again = printed.run(data(ROWS), request)  # per-trial state is reset by the kernel's reset phase
    np.testing.assert_array_equal(again.vars[("h", "v")], got.vars[("h", "v")])


CONV = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network c {
    input  x   = SpikeInput((7, 6, 2))
    hidden c   = LIF((4, 3, 3), tau_mem = 10 ms, v_thresh = 0.5)
    hidden p   = LIF((2, 1, 3), tau_mem = 10 ms, v_thresh = 0.2)
    output out = LeakyIntegrate(2, tau_mem = 10 ms, readout = avg_var)
    x -> c   : Conv2D(filters = 3, kernel = 3, stride = 2, padding = same, weight = Normal(mean = 0.4, sd = 0.3)), Exponential(tau = 5 ms)
    c -> p   : AvgPool2D(pool = 2), Exponential(tau = 5 ms)
    p -> out : Dense(weight = Normal(mean = 0.5, sd = 0.5)), Exponential(tau = 5 ms)
}
"""


def test_the_printed_kernel_delivers_through_convolutions_and_pools() -> None:
    network = lower(CONV, dt=DT, duration=STEPS * DT)
    reference = template_artefact(network, 2, "double")
    printed = kernel_artefact(network, 2, "double")
    rng = np.random.default_rng(1)
    x = [(np.round(np.sort(rng.uniform(0, 20, 150)) / DT) * DT, rng.integers(0, 84, 150)) for _ in range(2)]
    request = RecordRequest.of(spikes=["c", "p"], vars=[("c", "v"), ("p", "v"), ("out", "v")])
    want = reference.run({"x": x}, request)
    got = printed.run({"x": x}, request)
    assert want.spikes["c"].sum() > 10 and want.spikes["p"].any(), "the network must be active"
    for pop in ("c", "p"):
        np.testing.assert_array_equal(got.spikes[pop], want.spikes[pop], err_msg=pop)
    for key in want.vars:
        np.testing.assert_allclose(got.vars[key], want.vars[key], rtol=1e-13, atol=1e-15, err_msg=str(key))
