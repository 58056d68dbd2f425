"""One small hand-built network (input -> LIF through an exponential synapse) for IR tests."""

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
from snnc.ir.units import TIME, VOLTAGE

v, i, i_syn = sym("v"), sym("i"), sym("i_syn")


def lif() -> Model:
    return Model(
        "LIF",
        "neuron",
        params={
            "tau_mem": Param("tau_mem", 20.0, TIME),
            "v_thresh": Param("v_thresh", 1.0, VOLTAGE),
            "tau_refrac": Param("tau_refrac", 1.5, TIME),
        },
        states={"v": State("v", 0.0, VOLTAGE)},
        inputs={"i_syn": Input("i_syn")},
        odes=(Ode("v", (i_syn - v) / sym("tau_mem")),),
        spike=v >= sym("v_thresh"),
        reset=(Assign("v", "=", sympy.Integer(0)),),
        refractory=sym("tau_refrac"),
        source="std",
    )


def exponential() -> Model:
    return Model(
        "Exponential",
        "synapse",
        params={"tau": Param("tau", 5.0, TIME)},
        states={"i": State("i", 0.0)},
        odes=(Ode("i", -i / sym("tau")),),
        on_pre=(Assign("i", "+=", w),),
        output="i",
        source="std",
    )


def small_network(train: bool = True) -> Network:
    models = {
        "SpikeInput": Model("SpikeInput", "neuron", generator="spike_source", source="std"),
        "LIF": lif(),
        "Exponential": exponential(),
    }
    pops = {
        "x": Population("x", "SpikeInput", "input", (2,)),
        "out": Population(
            "out",
            "LIF",
            "output",
            (3,),
            params={"tau_mem": 10.0, "v_thresh": 1.0, "tau_refrac": 1.5},
            inits={"v": 0.0},
            readout=Readout("first_spike_time"),
        ),
    }
    projs = {
        "x_to_out": Projection(
            "x_to_out",
            "x",
            "out",
            Connectivity("dense"),
            Initialiser("normal", {"mean": 1.5, "sd": 0.78}),
            "Exponential",
            {"tau": 5.0},
        )
    }
    spec = TrainSpec(Call("none"), loss=Call("relative_mse", {"delta": 1.0}), dt=0.5, duration=20.0)
    return Network("small", models, pops, projs, train=spec if train else None, dt=0.5, duration=20.0)
