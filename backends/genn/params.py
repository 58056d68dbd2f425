"""Params held in arrays (trained ones, and per-neuron ones: `tau_mem = Uniform(10 ms, 30 ms)`) of a
kernel without online learning (EventProp's, or a network simulated) as GeNN vars filed like weights.

A PARAM array (`pp_h__tau_mem` [neurons] or [1], a synapse's `pp_x_to_h__tau` per post neuron) is a
var of the population whose neurons read it (`kernel_printer.genn_var`: `p_tau_mem`,
`p_tau__x_to_h`), shared by the batch and initialised from the module's arrays; a trained one's
gradient per trial and neuron is the var the backward code accumulates into (`g_tau_mem`). The
runtime reads and sets the param like a weight under its key (`tau_mem_h`, `tau_x_to_h`) and sums
the gradient over the batch's rows, and over the neurons for a shared one (`runtime.py` `BIASES`):
the same sum the C backend's once-per-batch gather runs. The e-prop printer files its trained
params through the same `filed_params` (`learn_printer._params`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from snnc.ir import names as ir_names
from snnc.ir.kernel import Array, Kernel, Role

from .kernel_printer import genn_var, holder, per_post_neuron
from .render import PopulationCtx, fail


class PyExpr(str):
    """Python source written as is into the module (`weights["bias_out"]`)."""

    def __repr__(self) -> str:
        return str(self)


def filed_params(
    kernel: Kernel,
    populations: dict[str, PopulationCtx],
    initial: Callable[[Array], np.ndarray | None],
    gradient_var: Callable[[Array], str],
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """(key -> {population, var, gradient (if trained), shared, trainable}, key -> initial values)
    of every param array the printed models read and `initial` has values for (None: not filed);
    `gradient_var` names the var a trained one's gradient accumulates in."""
    meta: dict[str, dict[str, Any]] = {}
    arrays: dict[str, np.ndarray] = {}
    for a in kernel.arrays:
        if a.role != Role.PARAM or not (a.owner in kernel.populations or per_post_neuron(a, kernel)):
            continue
        p = populations[holder(a, kernel)]
        name = genn_var(a, kernel)
        if all(v.name != name for v in p.model.vars):
            continue
        values = initial(a)
        if values is None:
            continue
        key = ir_names.param_key(a.var, a.owner)
        shared = tuple(a.shape) == (1,)  # one value, held by every neuron's var
        p.var_init[name] = PyExpr(f'float(weights["{key}"][0])' if shared else f'weights["{key}"]')
        arrays[key] = np.asarray(values, dtype=np.float64).ravel()
        meta[key] = {"population": p.name, "var": name}
        grads = [g for g in kernel.arrays if g.role == Role.GRADIENT and (g.owner, g.var) == (a.owner, a.var)]
        if grads:  # none when the kernel only simulates
            meta[key]["gradient"] = gradient_var(grads[0])
        if shared:
            meta[key]["shared"] = True
        if key in kernel.interface.get("trainable_params", {}):  # bounds and lr scale of a Trainable
            meta[key]["trainable"] = kernel.interface["trainable_params"][key]
    return meta, arrays


def trained_params(
    kernel: Kernel, populations: list[PopulationCtx], drawn: dict[tuple[str, str], np.ndarray]
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """`filed_params` of a kernel without online learning, from `common.draw_param_values`' draws."""

    def initial(a: Array) -> np.ndarray:
        if (a.owner, a.var) not in drawn:
            raise fail(f"trained param '{ir_names.param_key(a.var, a.owner)}' has no initial values")
        return drawn[(a.owner, a.var)]

    pops = {p.name: p for p in populations}
    return filed_params(kernel, pops, initial, lambda g: genn_var(g, kernel))


__all__ = ["PyExpr", "filed_params", "trained_params"]
