"""The initial arrays e-prop adds to a network, drawn in one place so that every backend starts the
same network: the C and GeNN backends both take their output biases and random feedback matrices
from `eprop_initial`, never from a draw of their own.

Streams: the i-th extra array (output biases first, in `EpropIR.outputs` order, then the random
feedback matrices, in `EpropIR.hidden` then `HiddenEprop.learning` order) draws from
`numpy.random.default_rng([seed, 0x5EED, i])`, independent of the weights' stream. This is the
numbering the C backend has always used, so results of earlier C runs stay reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from snnc.ir.eprop_ir import EpropIR
from snnc.ir.kernel import Kernel, Role
from snnc.ir.model import Network

from .common import draw_initialiser, draw_param_values

#: the second word of every extra-array stream (the weights draw from `default_rng(seed)`)
STREAM = 0x5EED


@dataclass(frozen=True)
class EpropInitial:
    """Initial values of the arrays e-prop adds: trained output biases, fixed feedback matrices and
    trained neuron params."""

    biases: dict[str, np.ndarray]  # output population -> its initial bias, one per neuron
    feedback: dict[str, np.ndarray]  # hidden -> output projection -> B [num_pre, num_post]
    #: (owner, param) -> the initial value(s) of a trained neuron or synapse param: one per neuron, or
    #: one for a shared param (drawn with the other per-neuron params, `draw_param_values`)
    params: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)


def eprop_initial(network: Network, seed: int) -> EpropInitial:
    """The output biases and random feedback matrices of a network carrying an `EpropIR`."""
    ir = network.training
    if not isinstance(ir, EpropIR):
        raise ValueError("the network carries no e-prop training IR; run the eprop pass")
    biases: dict[str, np.ndarray] = {}
    for oe in ir.outputs.values():
        if oe.bias is not None:
            pop = network.populations[oe.population]
            if "bias" in pop.param_inits:  # per-neuron initial biases (`bias = File("b.npy")`)
                biases[oe.population] = draw_param_values(network, seed)[(oe.population, "bias")]
            else:
                biases[oe.population] = np.full(pop.size, float(pop.params.get("bias", 0.0)))
    feedback: dict[str, np.ndarray] = {}
    for he in ir.hidden.values():
        for term in he.learning:
            if term.feedback != "random":
                continue
            proj = network.projections[term.projection]
            shape = (network.populations[proj.pre].size, network.populations[proj.post].size)
            rng = np.random.default_rng([seed, STREAM, len(biases) + len(feedback)])
            feedback[term.projection] = draw_initialiser(term.init, shape, rng)
    drawn = draw_param_values(network, seed) if ir.params else {}
    params = {(pe.owner, pe.param): drawn[(pe.owner, pe.param)] for pe in ir.params.values()}
    return EpropInitial(biases, feedback, params)


def initial_arrays(network: Network, kernel: Kernel, seed: int) -> dict[str, np.ndarray]:
    """Initial values of a kernel's trained params and fixed feedback matrices, by array name: what
    every backend loads, so that all of them start the same network."""
    if not isinstance(network.training, EpropIR):
        return {}
    initial = eprop_initial(network, seed)
    out = {kernel.find(Role.PARAM, pop, "bias").name: b for pop, b in initial.biases.items()}
    out |= {kernel.find(Role.FEEDBACK, proj).name: b for proj, b in initial.feedback.items()}
    out |= {kernel.find(Role.PARAM, pop, param).name: v for (pop, param), v in initial.params.items()}
    return out


__all__ = ["EpropInitial", "eprop_initial", "initial_arrays"]
