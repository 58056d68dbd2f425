"""Hand-built Model IR for the eventprop tests (the frontend may not exist yet)."""

from __future__ import annotations

import sympy
from snnc.ir.model import (
    Assign,
    Call,
    Connectivity,
    Initialiser,
    Input,
    Model,
    Network,
    Ode,
    Param,
    Population,
    Projection,
    Readout,
    State,
    TrainSpec,
)
from snnc.ir.symbols import sym, w

v, i_syn, i = sym("v"), sym("i_syn"), sym("i")


def lif(name: str = "LIF", reset: tuple[Assign, ...] | None = None, rhs=None, spike=None, extra=()) -> Model:
    tau_mem, v_thresh = sym("tau_mem"), sym("v_thresh")
    return Model(
        name,
        "neuron",
        params={"tau_mem": Param("tau_mem", 20.0), "v_thresh": Param("v_thresh", 1.0)}
        | {p.name: p for p in extra if isinstance(p, Param)},
        states={"v": State("v", 0.0)} | {s.name: s for s in extra if isinstance(s, State)},
        inputs={"i_syn": Input("i_syn")},
        odes=(Ode("v", rhs if rhs is not None else (i_syn - v) / tau_mem),)
        + tuple(o for o in extra if isinstance(o, Ode)),
        spike=spike if spike is not None else v >= v_thresh,
        reset=reset if reset is not None else (Assign("v", "=", sympy.Integer(0)),),
    )


def leaky_integrate() -> Model:
    tau_mem, bias = sym("tau_mem"), sym("bias")
    return Model(
        "LeakyIntegrate",
        "neuron",
        params={"tau_mem": Param("tau_mem", 20.0), "bias": Param("bias", 0.0)},
        states={"v": State("v", 0.0)},
        inputs={"i_syn": Input("i_syn")},
        odes=(Ode("v", (i_syn + bias - v) / tau_mem),),
    )


def exponential(on_pre=None) -> Model:
    tau = sym("tau")
    return Model(
        "Exponential",
        "synapse",
        params={"tau": Param("tau", 5.0)},
        states={"i": State("i", 0.0)},
        odes=(Ode("i", -i / tau),),
        on_pre=on_pre if on_pre is not None else (Assign("i", "+=", w),),
        output="i",
    )


def spike_source() -> Model:
    return Model("SpikeInput", "neuron", generator="spike_source")


def network(
    hidden: Model | None = None,
    output: Model | None = None,
    readout: str = "first_spike_time",
    synapse: Model | None = None,
    algorithm: Call | None = None,
    regularisation: Call | None = None,
) -> Network:
    hidden = hidden or lif()
    output = output or lif("LIFOut")
    synapse = synapse or exponential()
    models = {"SpikeInput": spike_source(), hidden.name: hidden, output.name: output, synapse.name: synapse}
    var = None if readout == "first_spike_time" else "v"
    pops = {
        "x": Population("x", "SpikeInput", "input", (2,)),
        "h": Population("h", hidden.name, "hidden", (3,)),
        "out": Population("out", output.name, "output", (2,), readout=Readout(readout, var)),
    }
    dense, init = Connectivity("dense"), Initialiser("constant", {"value": 1.0})
    projs = {
        "x_to_h": Projection("x_to_h", "x", "h", dense, init, synapse.name),
        "h_to_out": Projection("h_to_out", "h", "out", dense, init, synapse.name),
    }
    train = TrainSpec(
        algorithm=algorithm or Call("eventprop", {"max_spikes": 50}),
        loss=Call("mse"),
        regularisation=regularisation,
    )
    return Network("net", models, pops, projs, train=train, dt=0.1, duration=30.0)
