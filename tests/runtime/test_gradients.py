"""EventProp gradients of the C backend against finite differences of the same simulated loss.

Every case runs the real forward pass (float64, small dt) and the trainer's loss functions
(`runtime/losses.py`); the FD slope is a least-squares fit over offsets in [-h, h] (see `gradcheck`).
Thresholds: cosine similarity >= 0.99 and relative error <= 5 % for every weight matrix. Models not
in std: ThetaLIF (adaptive threshold), Dendritic (two-compartment), QuadLIF (non-linear: the Euler
backward step on the recorded trajectory), CondLIF (a conductance input i_syn * (e_rev - v): the Euler
step on the trajectories of v and of the synapse state), RefracLIF (a refractory period that binds).
`-m slow` runs every case; the default run a fast subset.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import compare, compile_double, fd_gradients
from snnc.runtime.losses import get_loss

from tests.runtime.nonlinear_models import CONDUCTANCE, QUADRATIC

HEAD = "use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}\n"

# two neuron models that are not in the std library
ADAPTIVE = """
neuron ThetaLIF {
    param tau_m = 10 ms
    param tau_a = 30 ms
    param v_rest = -0.2
    param v_th = 1.0
    param beta = 0.3
    param r_in = 1.2
    state v = -0.2
    state a = 0.0
    input i_syn
    dv/dt = (v_rest - v + r_in * i_syn) / tau_m
    da/dt = -a / tau_a
    spike when v >= v_th + beta * a
    reset {
        v = v_rest
        a += 1
    }
}
"""
# LIF held for 5 ms after each spike: v ignores its input then, so neither does the adjoint
REFRACTORY = """
neuron RefracLIF {
    param tau_mem = 20 ms
    param v_th = 1.0
    param tau_refrac = 5 ms
    state v = 0.0
    input i_syn
    dv/dt = (i_syn - v) / tau_mem
    spike when v >= v_th
    reset { v = 0 }
    refractory = tau_refrac
}
"""
DENDRITE = """
neuron Dendritic {
    param tau_d = 4 ms
    param tau_s = 8 ms
    param v_th = 1.0
    state d = 0.0
    state v = 0.0
    input i_syn
    dd/dt = (i_syn - d) / tau_d
    dv/dt = (d - v) / tau_s
    spike when v >= v_th
    reset { v = v - v_th }
}
"""


def network(
    hidden: str, output: str, readout: str, loss: str, w_in: float = 3.0, w_out: float = 0.5, seed: int = 4
) -> str:
    return (
        HEAD
        + ADAPTIVE
        + DENDRITE
        + QUADRATIC
        + CONDUCTANCE
        + REFRACTORY
        + f"""
network g {{
    input  x   = SpikeInput(3)
    hidden h   = {hidden}(4)
    output out = {output}(2, readout = {readout})
    x -> h   : Dense(weight = Normal(mean = {w_in}, sd = 0.5)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = {w_out}, sd = 0.5)), Exponential(tau = 5 ms)
}}
train g {{
    algorithm = eventprop(max_spikes = 100)
    loss = {loss}
    seed = {seed}
}}
"""
    )


def inputs(seed: int, batch: int = 4, spikes: int = 3):
    rng = np.random.default_rng(seed)
    return [(np.sort(rng.uniform(1.0, 12.0, spikes)), rng.integers(0, 3, spikes)) for _ in range(batch)]


VALUE_LOSS = "sparse_categorical_crossentropy"
DT, H = 0.001, 0.02  # 20 ms trials; ±0.02 weight moves spikes by tens of steps
CASES = {
    # id: (hidden model, output model, readout, loss, seed, mean output weight)
    "lif-avg_var-scce": ("LIF", "LeakyIntegrate", "avg_var", VALUE_LOSS, 4, 0.5),
    "lif-avg_var_exp_weight-scce": ("LIF", "LeakyIntegrate", "avg_var_exp_weight", VALUE_LOSS, 4, 0.5),
    "lif-sum_var-scce": ("LIF", "LeakyIntegrate", "sum_var", VALUE_LOSS, 4, 0.5),
    "lif-max_var-scce": ("LIF", "LeakyIntegrate", "max_var", VALUE_LOSS, 4, 0.5),
    "lif-var-mse": ("LIF", "LeakyIntegrate", "var", "mse", 4, 0.5),
    "lif-ttfs-ttfs_crossentropy": ("LIF", "LIF", "first_spike_time", "ttfs_crossentropy", 4, 1.5),
    "lif-ttfs-relative_mse": ("LIF", "LIF", "first_spike_time", "relative_mse", 4, 1.5),
    "thetalif-avg_var-scce": ("ThetaLIF", "LeakyIntegrate", "avg_var", VALUE_LOSS, 4, 0.5),
    "dendritic-avg_var-scce": ("Dendritic", "LeakyIntegrate", "avg_var", VALUE_LOSS, 4, 0.5),
    "dendritic-ttfs-ttfs_crossentropy": ("Dendritic", "LIF", "first_spike_time", "ttfs_crossentropy", 4, 1.5),
    "thetalif-ttfs-relative_mse": ("ThetaLIF", "ThetaLIF", "first_spike_time", "relative_mse", 6, 1.5),
    # non-linear: the Euler backward step on the recorded trajectory
    "quadlif-avg_var-scce": ("QuadLIF", "LeakyIntegrate", "avg_var", VALUE_LOSS, 4, 0.5),
    "lif-quadlif-ttfs-ttfs_crossentropy": ("LIF", "QuadLIF", "first_spike_time", "ttfs_crossentropy", 4, 1.5),
    # a conductance input i_syn * (e_rev - v): Euler backward step on the recorded trajectory of v
    # and of the synapse state (recorded by the EventProp schedule for the backward step)
    "condlif-avg_var-scce": ("CondLIF", "LeakyIntegrate", "avg_var", VALUE_LOSS, 5, 0.5),
    "lif-condlif-ttfs-ttfs_crossentropy": ("LIF", "CondLIF", "first_spike_time", "ttfs_crossentropy", 4, 1.5),
    # a refractory period that binds: with these inputs some neurons would spike twice without it
    "refraclif-avg_var-scce": ("RefracLIF", "LeakyIntegrate", "avg_var", VALUE_LOSS, 4, 0.5),
    "refraclif-max_var-scce": ("RefracLIF", "LeakyIntegrate", "max_var", VALUE_LOSS, 4, 0.5),
    # readouts over a window of the trial (loss shaping, Nowotny et al. 2025; Bellec's recall period)
    "lif-avg_var_window-scce": (
        "LIF",
        "LeakyIntegrate",
        "avg_var(v, start = 6 ms, stop = 14 ms)",
        VALUE_LOSS,
        4,
        0.5,
    ),
    "lif-sum_var_window-scce": ("LIF", "LeakyIntegrate", "sum_var(v, stop = 10 ms)", VALUE_LOSS, 4, 0.5),
    # the exp weight counts from the window's start, in units of the window's length
    "lif-avg_var_exp_weight_window-scce": (
        "LIF",
        "LeakyIntegrate",
        "avg_var_exp_weight(v, start = 6 ms, stop = 14 ms)",
        VALUE_LOSS,
        4,
        0.5,
    ),
    "lif-avg_var_exp_weight_start-scce": (
        "LIF",
        "LeakyIntegrate",
        "avg_var_exp_weight(v, start = 4 ms)",
        VALUE_LOSS,
        4,
        0.5,
    ),
}
#: mean input weight where a case needs a stronger drive than the default 3.0
CASE_W_IN = {"refraclif-avg_var-scce": 4.0, "refraclif-max_var-scce": 4.0}
#: FD noise from quantised hidden spike times: in these cases it reaches ~5-6 % at dt = 0.001 (the
#: C gradient itself moves < 0.5 % between dt = 0.001 and 0.0005, the FD estimate by up to 10 %), so
#: they use a finer dt and, for ThetaLIF -> LI, more FD points
CASE_DT = {
    "thetalif-ttfs-relative_mse": 0.0005,
    "quadlif-avg_var-scce": 0.0005,
    "thetalif-avg_var-scce": 0.0005,
    "condlif-avg_var-scce": 0.0005,
    "lif-condlif-ttfs-ttfs_crossentropy": 0.0005,
}
CASE_POINTS = {"thetalif-avg_var-scce": 41}
FAST = {
    "lif-avg_var-scce",
    "lif-ttfs-ttfs_crossentropy",
    "dendritic-avg_var-scce",
    "refraclif-avg_var-scce",
    "lif-avg_var_window-scce",
    "lif-avg_var_exp_weight_window-scce",
}


def _targets(loss: str, seed: int, batch: int = 4, n: int = 2):
    rng = np.random.default_rng(seed + 100)
    if loss == "mse":
        return rng.normal(0.5, 0.3, (batch, n))
    return np.array([0, 1, 1, 0])[:batch]


@pytest.mark.parametrize(
    "case", [c if c in FAST else pytest.param(c, marks=pytest.mark.slow) for c in sorted(CASES)]
)
def test_eventprop_gradient_matches_finite_differences(case: str) -> None:
    hidden, output, readout, loss_name, seed, w_out = CASES[case]
    art = compile_double(
        network(hidden, output, readout, loss_name, w_in=CASE_W_IN.get(case, 3.0), w_out=w_out, seed=seed),
        dt=CASE_DT.get(case, DT),
        duration=20.0,
        batch_size=4,
    )
    x = inputs(seed)
    target = _targets(loss_name, seed)
    # sum_var sums 20000 steps: a temperature of K keeps the softmax out of saturation
    loss = get_loss(loss_name, {"temperature": 20000.0} if readout.startswith("sum_var") else None)
    if hasattr(loss, "t_nospike"):
        loss.t_nospike = 20.0

    def run():
        return art.run({"x": x})

    def value(res):
        return loss(res.readouts["out"], target)

    res = run()
    _, dl = value(res)
    grads = art.backward({"out": dl})
    fd = fd_gradients(art, value, run, h=H, points=CASE_POINTS.get(case, 15))
    for proj in ("x_to_h", "h_to_out"):
        cos, rel = compare(grads[proj], fd[proj])
        print(f"{case} {proj}: cos {cos:.5f} rel {rel:.4f}")
        assert np.linalg.norm(fd[proj]) > 0, f"{proj}: the loss does not depend on these weights here"
        assert cos >= 0.99 and rel <= 0.05, f"{proj}: cos {cos:.4f}, rel {rel:.4f}"


def test_the_refractory_case_really_holds_neurons() -> None:
    """The refractory FD case means something only if the period removes spikes there."""
    from gradcheck import spike_counts

    source = network("RefracLIF", "LeakyIntegrate", "avg_var", VALUE_LOSS, w_in=4.0, seed=4)
    counts = {}
    for refrac in ("5 ms", "0 ms"):
        art = compile_double(
            source.replace("param tau_refrac = 5 ms", f"param tau_refrac = {refrac}"),
            dt=DT,
            duration=20.0,
            batch_size=4,
        )
        art.run({"x": inputs(4)})
        counts[refrac] = spike_counts(art).sum()
    assert counts["5 ms"] < counts["0 ms"], counts


def test_a_per_timestep_cross_entropy_matches_finite_differences() -> None:
    """`sparse_categorical_crossentropy(per_timestep = true)` on an avg_var readout (mlGeNN's
    per_timestep_loss): the loss is the mean over steps of each step's cross-entropy of v, so the
    backward pass gets one dL/dv per step, and its gradient must match the FD of that loss."""
    from snnc.runtime.artefact import RecordRequest

    source = network(
        "LIF", "LeakyIntegrate", "avg_var", "sparse_categorical_crossentropy(per_timestep = true)", seed=4
    )
    art = compile_double(source, dt=DT, duration=20.0, batch_size=4)
    assert art.manifest["eventprop"]["outputs"]["out"]["per_step"]
    x, target = inputs(4), _targets(VALUE_LOSS, 4)
    loss = get_loss(VALUE_LOSS, {"per_timestep": True})
    record = RecordRequest.of(vars=[("out", "v")])

    def run():
        return art.run({"x": x}, record)

    def value(res):
        return loss(res.vars[("out", "v")], target)

    _, dl = value(run())
    assert dl.shape == (4, 20000, 2)
    grads = art.backward({"out": dl})
    fd = fd_gradients(art, value, run, h=H, points=15)
    per_trial = get_loss(VALUE_LOSS)(run().readouts["out"], target)[0]
    assert value(run())[0] != pytest.approx(per_trial)  # a different loss from the readout's
    for proj in ("x_to_h", "h_to_out"):
        cos, rel = compare(grads[proj], fd[proj])
        print(f"per-timestep {proj}: cos {cos:.5f} rel {rel:.4f}")
        assert np.linalg.norm(fd[proj]) > 0
        assert cos >= 0.99 and rel <= 0.05, f"{proj}: cos {cos:.4f}, rel {rel:.4f}"
