"""The schedule stage: lower a discretised network, with its gradient algorithm if it has one, into
the one kernel IR every backend prints (`snnc.ir.kernel`). Which schedule runs is the passes'
decision, so a backend and `snnc compile --emit kernel` always see the same kernel."""

from __future__ import annotations

from snnc.ir.eprop_ir import EpropIR
from snnc.ir.kernel import Kernel
from snnc.ir.model import Network

from .schedule_eprop import eprop_kernel
from .schedule_eventprop import eventprop_kernel
from .schedule_forward import forward_kernel


def schedule(network: Network, precision: str = "float", event_buffer: int = 0) -> Kernel:
    """The verified kernel of a network: forward only, EventProp's forward and backward, or
    e-prop's online learning beside the forward step."""
    if isinstance(network.training, EpropIR):
        return eprop_kernel(network, precision=precision, event_buffer=event_buffer)
    if getattr(network.training, "algorithm", None) == "eventprop":
        return eventprop_kernel(network, precision=precision, event_buffer=event_buffer)
    return forward_kernel(network, precision=precision, event_buffer=event_buffer)
