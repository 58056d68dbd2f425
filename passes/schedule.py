"""The schedule stage: lower a discretised network, with its gradient algorithm if it has one, into
the one kernel IR every backend prints (`snnc.ir.kernel`). Which schedule runs is the passes'
decision, so a backend and `snnc compile --emit kernel` always see the same kernel."""

from __future__ import annotations

import dataclasses
from typing import Any

from snnc.ir.eprop_ir import EpropIR
from snnc.ir.kernel import Kernel
from snnc.ir.model import Network
from snnc.ir.names import param_key

from .schedule_eprop import eprop_kernel
from .schedule_eventprop import eventprop_kernel
from .schedule_forward import forward_kernel
from .schedule_learning import with_learning


def schedule(
    network: Network,
    precision: str = "float",
    event_buffer: int = 0,
    learning: bool = True,
    post_major: bool = True,
) -> Kernel:
    """The verified kernel of a network: forward only, EventProp's forward and backward, or
    e-prop's online learning beside the forward step. With `learning`, an EventProp or e-prop
    kernel also computes its loss and optimiser step where `schedule_learning` can (a backend that
    cannot print once-per-batch phases yet asks without). With `post_major`, e-prop's learning loops
    walk sparse projections into hidden populations post neuron by post neuron (`schedule_eprop`); a
    backend that lays out its per-synapse arrays itself (GeNN) asks without. Its `interface` tells a
    loader how to drive it."""
    if isinstance(network.training, EpropIR):
        kernel = eprop_kernel(network, precision=precision, event_buffer=event_buffer, post_major=post_major)
    elif getattr(network.training, "algorithm", None) == "eventprop":
        kernel = eventprop_kernel(network, precision=precision, event_buffer=event_buffer)
    else:
        return forward_kernel(network, precision=precision, event_buffer=event_buffer)
    kernel = with_learning(kernel, network) if learning else kernel
    trainable = trainable_params(network)
    if not trainable:
        return kernel
    return dataclasses.replace(kernel, interface={**kernel.interface, "trainable_params": trainable})


def trainable_params(network: Network) -> dict[str, dict[str, Any]]:
    """key -> bounds and learning-rate scale of every trainable param and delay, for the optimiser."""
    owners = [(p.name, p.trainable) for p in network.populations.values()]
    owners += [(p.name, p.synapse_trainable) for p in network.projections.values()]
    owners += [
        (p.name, {"delay": p.delay_trainable}) for p in network.projections.values() if p.delay_trainable
    ]
    return {
        param_key(name, owner): {
            "min": t.min,
            "max": t.max,
            "lr_scale": t.lr_scale,
            "per_neuron": t.per_neuron,
        }
        for owner, specs in owners
        for name, t in specs.items()
    }
