"""The C printer of the kernel IR: what the C backend builds for a network without training (the
forward kernel, printed) computes what the kernel means, as the reference interpreter
(tests/ir/kernel_interp.py) runs it: the same spikes (Poisson draws included), and states and
readouts equal to rounding (double precision, same weights)."""

from __future__ import annotations

import ctypes
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
from snnc.backends.c.backend import generate
from snnc.backends.c.build import build
from snnc.backends.c.kernel_printer import print_kernel
from snnc.backends.c.loader import NativeArtefact
from snnc.backends.c.manifest import ABI_VERSION
from snnc.ir.kernel import (
    BATCH,
    Array,
    Entry,
    Index,
    Let,
    Local,
    Loop,
    Neurons,
    Phase,
    PhaseKind,
    Role,
    Row,
    Store,
    Synapses,
    verify_kernel,
)
from snnc.passes.schedule_forward import forward_kernel
from snnc.runtime.artefact import RecordRequest

from snnc.api import lower

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ir"))
from kernel_interp import Interpreter  # noqa: E402

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


def interpreted(network, art: NativeArtefact, rows: int, inputs: dict, record: RecordRequest) -> dict:  # noqa: ANN001
    """The reference: the forward kernel run by the interpreter on the artefact's weights and seed."""
    kernel = forward_kernel(network, precision="double")
    sizes: dict[str, int] = {"batch": rows, "steps": STEPS}
    arrays: dict[str, np.ndarray] = {}
    for proj, info in kernel.projections.items():
        if info.layout == "csr":
            conn = art.connectivity(proj)
            arrays[f"c_{proj}__row_ptr"] = np.asarray(conn["row_ptr"])
            arrays[f"c_{proj}__col_idx"] = np.asarray(conn["col_idx"])
    for a in kernel.arrays:
        if a.role == Role.WEIGHT:
            arrays[a.name] = np.asarray(art.weights[a.owner], dtype=float).ravel()
        elif a.role == Role.INPUT and a.var == "example":
            arrays[a.name] = np.arange(rows)
        elif a.role != Role.CONNECTIVITY:
            arrays[a.name] = np.full(tuple(sizes.get(d, d) for d in a.shape), a.init, dtype=float)
    interp = Interpreter(kernel, arrays)
    interp.run("run", rows=rows, steps=STEPS, inputs=inputs, seed=int(art.manifest["seed"]))
    spikes = {}
    for pop in record.spikes:
        raster = np.zeros((rows, STEPS, kernel.populations[pop]), dtype=bool)
        for (name, b, k), ids in interp.spikes.items():
            if name == pop:
                raster[b, k, ids] = True
        spikes[pop] = raster
    out = {"spikes": spikes, "vars": {key: arrays[f"rv_{key[0]}__{key[1]}"] for key in record.vars}}
    out["readouts"] = {a.owner: arrays[a.name] for a in kernel.arrays if a.role == Role.READOUT}
    return out


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
    [  # the interpreter takes ~45 s a case on 2 cores: one by default, the rest under `-m slow`
        pytest.param(
            "LeakyIntegrate(4, tau_mem = 10 ms, readout = avg_var_exp_weight)", marks=pytest.mark.slow
        ),
        pytest.param("LeakyIntegrate(4, tau_mem = 10 ms, readout = max_var)", marks=pytest.mark.slow),
        "LIF(4, tau_mem = 10 ms, v_thresh = 0.3, readout = first_spike_time)",
        pytest.param(
            "LIF(4, tau_mem = 10 ms, v_thresh = 0.3, readout = spike_count)", marks=pytest.mark.slow
        ),
    ],
)
def test_the_printed_forward_kernel_runs_as_the_c_backend(output: str) -> None:
    network = lower(SOURCE % output, dt=DT, duration=STEPS * DT)
    printed = kernel_artefact(network, ROWS, "double")
    request = RecordRequest.of(spikes=["x", "p", "h", "out"], vars=[("h", "v"), ("out", "v")])
    want = interpreted(network, printed, ROWS, data(ROWS), request)
    got = printed.run(data(ROWS), request)
    assert want["spikes"]["h"].sum() > 20 and want["spikes"]["p"].any(), "the network must be active"
    for pop in ("x", "p", "h", "out"):
        np.testing.assert_array_equal(got.spikes[pop], want["spikes"][pop], err_msg=pop)
    for key in want["vars"]:
        np.testing.assert_allclose(got.vars[key], want["vars"][key], rtol=1e-12, atol=1e-14, err_msg=str(key))
    np.testing.assert_allclose(got.readouts["out"], want["readouts"]["out"], rtol=1e-12, atol=1e-14)
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
    printed = kernel_artefact(network, 2, "double")
    rng = np.random.default_rng(1)
    x = [(np.round(np.sort(rng.uniform(0, 20, 150)) / DT) * DT, rng.integers(0, 84, 150)) for _ in range(2)]
    request = RecordRequest.of(spikes=["c", "p"], vars=[("c", "v"), ("p", "v"), ("out", "v")])
    want = interpreted(network, printed, 2, {"x": x}, request)
    got = printed.run({"x": x}, request)
    assert want["spikes"]["c"].sum() > 10 and want["spikes"]["p"].any(), "the network must be active"
    for pop in ("c", "p"):
        np.testing.assert_array_equal(got.spikes[pop], want["spikes"][pop], err_msg=pop)
    for key in want["vars"]:
        np.testing.assert_allclose(got.vars[key], want["vars"][key], rtol=1e-12, atol=1e-14, err_msg=str(key))


class _Sums(NativeArtefact):
    """Runs the entry `sums` of a hand-made kernel instead of `run`."""

    def _entry(self, struct, steps: int, seed: int) -> int:  # noqa: ANN001
        self._lib.snnc_sums.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint64]
        return self._lib.snnc_sums(ctypes.byref(struct), self._batch, steps, seed)


def test_the_printed_synapse_loops_visit_every_synapse_once() -> None:
    """A phase that sums `w_ij * (i + 1)` into post neuron j over the synapses of a dense, a one-to-one
    and a sparse projection gives numpy's sums over the same weights and structure."""
    network = lower(SOURCE % "LeakyIntegrate(4, readout = avg_var)", dt=DT, duration=STEPS * DT)
    kernel = forward_kernel(network, precision="double")
    i, j, q = Index("i"), Index("j"), Index("q")
    sums, body = [], []
    for name, info in kernel.projections.items():
        total = Array(f"t_{name}__sum", Role.SCRATCH, name, ("batch", kernel.populations[info.post]))
        weight = kernel.find(Role.WEIGHT, name)
        sums.append(total)
        body.append(Loop(Synapses(name), (Store(total[BATCH, j], weight[q] * (i + 1), "+="),)))
    kernel = dataclasses.replace(
        kernel,
        arrays=(*kernel.arrays, *sums),
        phases=(*kernel.phases, Phase("sum_synapses", PhaseKind.REDUCE, tuple(body))),
        entries=(*kernel.entries, Entry("sums", after=("sum_synapses",))),
    )
    assert verify_kernel(kernel) == []
    code, arrays = print_kernel(kernel, precision="double", abi=ABI_VERSION)
    assert "for (int64_t snnc_q = c_h_to_h__row_ptr[snnc_i]" in code
    rendered, static, _ = generate(network, precision="double", seed=3)
    manifest = {**rendered.manifest, "arrays": arrays}
    art = _Sums(build(code, network.name).library, manifest, static, 2)
    art.run(data(2))
    for name, info in kernel.projections.items():
        n_pre, n_post = kernel.populations[info.pre], kernel.populations[info.post]
        w = np.asarray(art.weights[name], dtype=float).ravel()
        rank = np.arange(1.0, n_pre + 1)
        if info.kind == "dense":
            want = rank @ w.reshape(n_pre, n_post)
        elif info.kind == "one_to_one":
            want = rank * w
        else:
            conn = art.connectivity(name)
            want = np.zeros(n_post)
            for pre in range(n_pre):
                for slot in range(conn["row_ptr"][pre], conn["row_ptr"][pre + 1]):
                    want[conn["col_idx"][slot]] += w[slot] * (pre + 1)
        assert np.abs(want).max() > 0, name
        for row in range(2):
            np.testing.assert_allclose(art._arrays[f"t_{name}__sum"][row], want, rtol=1e-12, err_msg=name)


def test_a_store_through_a_local_of_the_loop_is_not_summed_in_a_register() -> None:
    """`t[b, o] += w[q]` in a row loop, where the local `o` is computed from `j` inside the loop, moves
    with the loop: it must stay a store per synapse, not one register sum added after the loop (the
    delay rings of passes/schedule_delays.py index their elements this way)."""
    network = lower(SOURCE % "LeakyIntegrate(4, readout = avg_var)", dt=DT, duration=STEPS * DT)
    kernel = forward_kernel(network, precision="double")
    i, j, q = Index("i"), Index("j"), Index("q")
    info = kernel.projections["x_to_h"]
    total = Array("t_x_to_h__sum", Role.SCRATCH, "x_to_h", ("batch", kernel.populations[info.post]))
    weight = kernel.find(Role.WEIGHT, "x_to_h")
    o = Local("__o", integer=True, nonnegative=True)
    row = Loop(Row("x_to_h", i), (Let(o, j), Store(total[BATCH, o], weight[q], "+=")), {"j": j, "q": q})
    kernel = dataclasses.replace(
        kernel,
        arrays=(*kernel.arrays, total),
        phases=(*kernel.phases, Phase("sum_rows", PhaseKind.REDUCE, (Loop(Neurons("x"), (row,), {"j": i}),))),
        entries=(*kernel.entries, Entry("sums", after=("sum_rows",))),
    )
    assert verify_kernel(kernel) == []
    code, _ = print_kernel(kernel, precision="double", abi=ABI_VERSION)
    phase = code[code.index("static void snnc_sum_rows(") :]
    phase = phase[: phase.index("\n}\n")]
    assert "snnc_sum" not in phase.replace("snnc_sum_rows", "")
    assert "t_x_to_h__sum[(snnc_b) * 30 + u_o] += w_x_to_h[snnc_q];" in phase
