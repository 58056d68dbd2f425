"""EventProp through impulse (Delta) synapses (C backend) against central finite differences, float64.

An impulse synapse holds w·c for one step and clears it, so its input carries a pulse of area w·c·dt.
passes/adjoint.py takes the short-pulse limit: the post neuron's states jump by e·w with
e = (∂f/∂u)·c·dt (u the input it targets), which gives the weight gradient λ⁺·e at the arrival and the
transmission D = Σ w·g, g = −λ⁺·(∂f/∂x)·e, like any other jump; a jump of the read variable of an
output also moves its running loss, g −= (∂l/∂x)·e (passes/eventprop.py `_loss_jump`). The forward pass spreads the pulse over
its step, an O(dt) difference. `Pulse` keeps the area w·pulse fixed as dt shrinks (std Delta's area
w·dt would vanish with it); std `Delta` with weights 1000x larger (the same areas at dt = 0.001 ms)
gives the same figures. Impulses into a spiking population: see the last test here and
tests/runtime/test_gradients_delta_spiking.py. Same harness and thresholds as
tests/runtime/test_gradients.py (cos >= 0.99, rel. err. <= 5 %).
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_against_fd, compile_double
from snnc.runtime.losses import get_loss

PULSE = """
synapse Pulse {
    param pulse = 1 ms
    state i = 0.0
    on_pre { i += w * pulse / dt }
    output impulse i
}
"""


def _source(
    readout: str, recurrent: bool, loss: str = "sparse_categorical_crossentropy", syn: str = "Pulse"
) -> str:
    rec = "    h -> h   : Dense(weight = Normal(mean = 1.0, sd = 1.0)), Pulse\n" if recurrent else ""
    w_out = "Normal(mean = 3.0, sd = 3.0)" if syn == "Pulse" else "Normal(mean = 3000.0, sd = 3000.0)"
    return f"""use std.{{SpikeInput, LIF, LeakyIntegrate, Exponential, Delta}}
{PULSE}
network g {{
    input  x   = SpikeInput(3)
    hidden h   = LIF(4)
    output out = LeakyIntegrate(2, readout = {readout})
    x -> h   : Dense(weight = Normal(mean = 3.0, sd = 0.5)), Exponential(tau = 5 ms)
{rec}    h -> out : Dense(weight = {w_out}), {syn}
}}
train g {{
    algorithm = eventprop(max_spikes = 100)
    loss = {loss}
    seed = 4
}}
"""


CASES = {  # id: (readout, synapse)
    "pulse-avg_var": ("avg_var", "Pulse"),
    "pulse-avg_var_exp_weight": ("avg_var_exp_weight", "Pulse"),
    "pulse-var-mse": ("var", "Pulse"),
    "delta-avg_var": ("avg_var", "Delta"),
}
FAST = {"pulse-avg_var"}
DT, H = 0.001, 0.02


@pytest.mark.parametrize(
    "case", [c if c in FAST else pytest.param(c, marks=pytest.mark.slow) for c in sorted(CASES)]
)
def test_gradients_through_impulse_synapses_match_finite_differences(case: str) -> None:
    readout, syn = CASES[case]
    loss_name = "mse" if readout == "var" else "sparse_categorical_crossentropy"
    art = compile_double(_source(readout, False, loss_name, syn), dt=DT, duration=20.0, batch_size=4)
    rng = np.random.default_rng(4)
    x = [(np.sort(rng.uniform(1.0, 10.0, 3)), rng.integers(0, 3, 3)) for _ in range(4)]
    target = (
        np.random.default_rng(104).normal(0.5, 0.3, (4, 2)) if readout == "var" else np.array([0, 1, 1, 0])
    )
    loss = get_loss(loss_name)

    check_against_fd(art, x, target, loss, H, case)


def _max_var_case(falling: bool) -> tuple:
    """max_var of a leaky readout that hidden spikes jump. Rising: positive jumps, v decays between
    them, so each maximum sits right after an arrival (several hidden spikes per neuron, dt 0.2 µs).
    Falling: v rises toward a bias and negative jumps cut it, so the maximum sits right before the
    first arrival (dt 0.1 µs: only that one arrival's time moves the loss)."""
    src = _source("max_var", False)
    if falling:
        src = src.replace(
            "LeakyIntegrate(2, readout = max_var)",
            "LeakyIntegrate(2, bias = Uniform(1.0, 3.0), tau_mem = 5 ms, readout = max_var)",
        ).replace("Normal(mean = 3.0, sd = 3.0)), Pulse", "Normal(mean = -3.0, sd = 1.0)), Pulse")
        assert "mean = -3.0" in src
    dt, duration = (0.0001, 12.0) if falling else (0.0002, 40.0)
    art = compile_double(src, dt=dt, duration=duration, batch_size=4)
    rng = np.random.default_rng(4)
    x = [(np.sort(rng.uniform(1.0, 6.0, 8)), rng.integers(0, 3, 8)) for _ in range(4)]
    return art, x, np.array([0, 1, 1, 0])


@pytest.mark.parametrize(
    "falling", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["rising", "falling"]
)
def test_max_var_of_a_jumped_variable_matches_finite_differences(falling: bool) -> None:
    """The maximum moves with the arrival that makes it (passes/eventprop.py `_max_follows`)."""
    from snnc.runtime.artefact import RecordRequest

    art, x, target = _max_var_case(falling)
    res = art.run({"x": x}, record=RecordRequest(vars=frozenset({("out", "v")}), spikes=frozenset({"h"})))
    v, z = res.vars[("out", "v")], res.spikes["h"]
    for b, peaks in enumerate(
        v.argmax(1)
    ):  # each maximum beside an arrival (a spike of step k arrives at k + 1)
        for k in peaks:
            assert z[b, k if falling else k - 1].any(), (b, k)
    if not falling:
        assert z.sum(1).mean() >= 4 and z.sum(1).min() >= 3  # several spikes per hidden neuron
    # falling: the maxima come before any arrival, so the readout weights do not move them
    compared = ["x_to_h"] if falling else None
    check_against_fd(art, x, target, get_loss("sparse_categorical_crossentropy"), H, "max_var", compared)


@pytest.mark.slow
def test_the_max_var_arrival_term_binds(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    """Without the term that moves each maximum with its arrival (`Transmission.arrival`), the
    hidden layer's gradient points elsewhere; the readout weights' stays exact."""
    import sympy
    from gradcheck import compare, fd_gradients
    from snnc.passes import eventprop

    monkeypatch.setattr(eventprop, "_max_follows", lambda *args: sympy.S.Zero)
    monkeypatch.setenv("SNNC_CACHE_DIR", str(tmp_path))  # a build of its own, not the cached one
    art, x, target = _max_var_case(False)
    loss = get_loss("sparse_categorical_crossentropy")
    grads = art.backward({"out": loss(art.run({"x": x}).readouts["out"], target)[1]})
    fd = fd_gradients(art, lambda r: loss(r.readouts["out"], target), lambda: art.run({"x": x}), h=H)
    errors = {p: compare(grads[p], fd[p]) for p in grads}
    assert errors["x_to_h"][0] < 0.9 and errors["h_to_out"][0] > 0.99, errors


def test_max_var_of_a_jumped_variable_whose_rate_reads_another_state_is_refused() -> None:
    """The maximum moves with its arrival at dv/dt just after it, which must be a function of the
    maximum itself: an Exponential input beside the impulses makes it read i, not recorded there."""
    from snnc.ir.diagnostics import DiagnosticError

    from snnc.api import lower

    src = _source("max_var", False).replace(
        "    h -> out :", "    x -> out : Dense(weight = 1.0), Exponential(tau = 5 ms)\n    h -> out :"
    )
    with pytest.raises(DiagnosticError) as err:
        lower(src)
    (d,) = err.value.diagnostics
    assert "readout max_var reads 'v', which impulses jump" in d.message and "'i__x_to_out'" in d.message
    assert d.span is not None and d.span.line == 13


def test_max_var_with_trainable_delays_on_the_impulses_is_refused() -> None:
    from snnc.ir.diagnostics import DiagnosticError

    from snnc.api import lower

    src = _source("max_var", False).replace(
        "Dense(weight = Normal(mean = 3.0, sd = 3.0)), Pulse",
        "Dense(weight = Normal(mean = 3.0, sd = 3.0), delay = Trainable(Uniform(0 ms, 2 ms), max = 5 ms)), Pulse",
    )
    with pytest.raises(DiagnosticError) as err:
        lower(src)
    (d,) = err.value.diagnostics
    assert "the delays of 'h_to_out' train" in d.message and d.span is not None and d.span.line == 13


@pytest.mark.slow
def test_recurrent_impulses_into_a_spiking_layer_match_finite_differences() -> None:
    """The recurrent Pulse layer that missed FD by 5-24 % at dt = 0.001 ms and was refused: its
    impulses (w·pulse/τ_m ≈ 0.05) move crossings but cause none, so it converges in dt (6 % at
    0.001 ms, under 3 % at 0.0002 ms); spikes an impulse causes are tested in
    test_gradients_delta_spiking.py."""
    art = compile_double(_source("avg_var", True), dt=0.0002, duration=20.0, batch_size=4)
    rng = np.random.default_rng(4)
    x = [(np.sort(rng.uniform(1.0, 10.0, 3)), rng.integers(0, 3, 3)) for _ in range(4)]
    target = np.array([0, 1, 1, 0])
    loss = get_loss("sparse_categorical_crossentropy")

    check_against_fd(art, x, target, loss, H, "recurrent", ("x_to_h", "h_to_h"), nonzero=False)
