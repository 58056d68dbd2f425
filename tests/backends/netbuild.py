"""Hand-built Model + Discrete IR for backend tests (independent of the frontend and discretise)."""

from __future__ import annotations

import sympy
from snnc.ir.discrete import DiscreteModel
from snnc.ir.model import (
    Assign,
    Connectivity,
    Initialiser,
    Input,
    Model,
    Network,
    Param,
    Population,
    Projection,
    Readout,
    State,
)
from snnc.ir.symbols import dt, sym, w

v, i_syn, i, alpha, beta = sym("v"), sym("i_syn"), sym("i"), sym("alpha"), sym("beta")


def lif(
    refractory: float | None = None, relative_reset: bool = False, name: str = "LIF"
) -> tuple[Model, DiscreteModel]:
    params = {
        "tau_mem": Param("tau_mem", 20.0),
        "v_thresh": Param("v_thresh", 1.0),
        "v_reset": Param("v_reset", 0.0),
    }
    reset = (Assign("v", "-=", sym("v_thresh")),) if relative_reset else (Assign("v", "=", sym("v_reset")),)
    ref = sympy.Float(refractory) if refractory is not None else None
    model = Model(
        name,
        "neuron",
        params=params,
        states={"v": State("v", 0.0)},
        inputs={"i_syn": Input("i_syn")},
        spike=v >= sym("v_thresh"),
        reset=reset,
        refractory=ref,
    )
    disc = DiscreteModel(
        name,
        "exact",
        "linear",
        derived=(("alpha", sympy.exp(-dt / sym("tau_mem"))),),
        update=(Assign("v", "=", i_syn + (v - i_syn) * alpha),),
        spike=v >= sym("v_thresh"),
        reset=reset,
        refractory=ref,
    )
    return model, disc


def exponential(name: str = "Exponential") -> tuple[Model, DiscreteModel]:
    model = Model(
        name,
        "synapse",
        params={"tau": Param("tau", 5.0)},
        states={"i": State("i", 0.0)},
        on_pre=(Assign("i", "+=", w),),
        output="i",
    )
    disc = DiscreteModel(
        name,
        "exact",
        "linear",
        derived=(("beta", sympy.exp(-dt / sym("tau"))),),
        update=(Assign("i", "=", i * beta),),
        on_pre=(Assign("i", "+=", w),),
        output=i,
    )
    return model, disc


def delta(name: str = "Delta") -> tuple[Model, DiscreteModel]:
    model = Model(
        name,
        "synapse",
        states={"i": State("i", 0.0)},
        on_pre=(Assign("i", "+=", w),),
        output="i",
        impulse=True,
    )
    disc = DiscreteModel(name, "none", "impulse", on_pre=(Assign("i", "+=", w),), output=i, impulse=True)
    return model, disc


def source(generator: str = "spike_source", name: str = "SpikeSource") -> tuple[Model, DiscreteModel]:
    return Model(name, "neuron", generator=generator), DiscreteModel(name, "none", "input")


def network(
    pops: list[tuple[str, str, str, tuple[int, ...], dict]],
    projs: list[tuple[str, str, str, Connectivity, Initialiser, str, dict]],
    models: list[tuple[Model, DiscreteModel]],
    *,
    dt_ms: float = 1.0,
    duration: float = 100.0,
    name: str = "net",
) -> Network:
    """pops: (name, model, role, shape, extra); projs: (name, pre, post, conn, init, synapse, extra)."""
    mdict = {m.name: m for m, _ in models}
    disc = {d.name: d for _, d in models}
    populations = {}
    for pname, model, role, shape, extra in pops:
        m = mdict[model]
        params = {k: p.value for k, p in m.params.items()} | extra.get("params", {})
        populations[pname] = Population(
            pname,
            model,
            role,
            shape,
            params=params,
            inits=extra.get("inits", {}),
            readout=extra.get("readout"),
        )
    projections = {}
    for pname, pre, post, conn, init, syn, extra in projs:
        sm = mdict[syn]
        projections[pname] = Projection(
            pname,
            pre,
            post,
            conn,
            init,
            syn,
            synapse_params={k: p.value for k, p in sm.params.items()} | extra.get("params", {}),
            delay=extra.get("delay", 0.0),
        )
    return Network(
        name, mdict, populations, projections, dt=dt_ms, duration=duration, stage="discrete", discrete=disc
    )


def dense(value: float = 1.0) -> tuple[Connectivity, Initialiser]:
    return Connectivity("dense"), Initialiser("constant", {"value": value})


__all__ = [
    "lif",
    "exponential",
    "delta",
    "source",
    "network",
    "dense",
    "Readout",
    "Connectivity",
    "Initialiser",
]
