"""Hand-built Model IR for the standard models and a few others (until tests can parse `.snn` sources)."""

from __future__ import annotations

import sympy
from snnc.ir.model import Assign, Input, Model, Ode, Param, State
from snnc.ir.symbols import sym
from snnc.ir.units import CURRENT, DIMENSIONLESS, TIME, VOLTAGE

v, i, i_syn, a = sym("v"), sym("i"), sym("i_syn"), sym("a")
tau_mem, tau, tau_syn, v_thresh, v_reset = (
    sym(n) for n in ("tau_mem", "tau", "tau_syn", "v_thresh", "v_reset")
)
relative_reset, tau_refrac, bias, beta, tau_adapt = (
    sym(n) for n in ("relative_reset", "tau_refrac", "bias", "beta", "tau_adapt")
)


def params(**values: float) -> dict[str, Param]:
    return {n: Param(n, val, TIME if n.startswith("tau") else DIMENSIONLESS) for n, val in values.items()}


def lif(**extra) -> Model:
    return Model(
        "LIF",
        "neuron",
        params=params(tau_mem=20.0, v_thresh=1.0, v_reset=0.0, relative_reset=0.0, tau_refrac=0.0),
        states={"v": State("v", 0.0, VOLTAGE)},
        inputs={"i_syn": Input("i_syn", CURRENT)},
        odes=(Ode("v", (i_syn - v) / tau_mem),),
        spike=v >= v_thresh,
        reset=(Assign("v", "=", relative_reset * (v - v_thresh) + (1 - relative_reset) * v_reset),),
        refractory=tau_refrac,
        **extra,
    )


def alif() -> Model:
    return Model(
        "ALIF",
        "neuron",
        params=params(tau_mem=20.0, v_thresh=1.0, tau_adapt=200.0, beta=0.0174),
        states={"v": State("v", 0.0, VOLTAGE), "a": State("a", 0.0)},
        inputs={"i_syn": Input("i_syn", CURRENT)},
        odes=(Ode("v", (i_syn - v) / tau_mem), Ode("a", -a / tau_adapt)),
        spike=v >= v_thresh + beta * a,
        reset=(Assign("v", "=", v - v_thresh), Assign("a", "+=", sympy.Integer(1))),
    )


def leaky_integrate() -> Model:
    return Model(
        "LeakyIntegrate",
        "neuron",
        params=params(tau_mem=20.0, bias=0.0),
        states={"v": State("v", 0.0, VOLTAGE)},
        inputs={"i_syn": Input("i_syn", CURRENT)},
        odes=(Ode("v", (i_syn + bias - v) / tau_mem),),
    )


def integrate_fire() -> Model:
    return Model(
        "IntegrateFire",
        "neuron",
        params=params(tau_mem=20.0, v_thresh=1.0),
        states={"v": State("v", 0.0, VOLTAGE)},
        inputs={"i_syn": Input("i_syn", CURRENT)},
        odes=(Ode("v", i_syn / tau_mem),),
        spike=v >= v_thresh,
        reset=(Assign("v", "=", sympy.Integer(0)),),
    )


def exponential() -> Model:
    return Model(
        "Exponential",
        "synapse",
        params=params(tau=5.0),
        states={"i": State("i", 0.0, CURRENT)},
        odes=(Ode("i", -i / tau),),
        on_pre=(Assign("i", "+=", sym("w")),),
        output="i",
    )


def delta() -> Model:
    return Model(
        "Delta",
        "synapse",
        states={"i": State("i", 0.0, CURRENT)},
        on_pre=(Assign("i", "+=", sym("w")),),
        output="i",
        impulse=True,
    )


def spike_input() -> Model:
    return Model("SpikeInput", "neuron", generator="spike_source")


def coupled() -> Model:
    """LIF with its own exponential current: v driven by state i (a coupled 2-state linear system)."""
    return Model(
        "CurrLIF",
        "neuron",
        params=params(tau_mem=20.0, tau_syn=5.0, v_thresh=1.0),
        states={"v": State("v", 0.0, VOLTAGE), "i": State("i", 0.0, CURRENT)},
        inputs={"i_syn": Input("i_syn", CURRENT)},
        odes=(Ode("v", (i - v) / tau_mem), Ode("i", (i_syn - i) / tau_syn)),
        spike=v >= v_thresh,
        reset=(Assign("v", "=", sympy.Integer(0)),),
    )


def quadratic(**extra) -> Model:
    return Model(
        "Quadratic",
        "neuron",
        params=params(v_thresh=1.0),
        states={"v": State("v", 0.0, VOLTAGE)},
        inputs={"i_syn": Input("i_syn", CURRENT)},
        odes=(Ode("v", v**2 - i_syn),),
        spike=v >= v_thresh,
        reset=(Assign("v", "=", sympy.Integer(0)),),
        **extra,
    )


def conductance() -> Model:
    """A conductance input multiplies v: linear in v, but not with constant coefficients."""
    g, e_rev = sym("g"), sym("e_rev")
    return Model(
        "Conductance",
        "neuron",
        params=params(e_rev=2.0, tau_mem=20.0),
        states={"v": State("v", 0.0, VOLTAGE)},
        inputs={"g": Input("g")},
        odes=(Ode("v", g * (e_rev - v) - v / tau_mem),),
    )


def alpha() -> Model:
    """An alpha synapse: two coupled states with equal time constants (a Jordan block)."""
    x = sym("x")
    return Model(
        "Alpha",
        "synapse",
        params=params(tau=5.0),
        states={"x": State("x", 0.0), "i": State("i", 0.0, CURRENT)},
        odes=(Ode("x", -x / tau), Ode("i", (x - i) / tau)),
        on_pre=(Assign("x", "+=", sym("w")),),
        output="i",
    )
