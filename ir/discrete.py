"""The Discrete IR: per-timestep update rules, produced by the `discretise` pass (DESIGN.md §3).

`Network.discrete` maps each model name to a `DiscreteModel`. The semantics of one time step k
(time `t = k*dt` at its start) are fixed here, and every backend implements exactly this order:

1. **deliver**: for each projection, the presynaptic spikes emitted at step `k - 1 - delay_steps`
   apply the synapse's `on_pre` actions (with `w` the weight of each connection) to the synapse
   state of each connected postsynaptic neuron. `on_pre` is additive in `w`, so contributions sum.
2. **inputs**: each neuron input is the sum, over the projections that target it, of the synapse's
   `output` expression evaluated on the synapse state after delivery.
3. **update**: every neuron and synapse evaluates its `temps` in order and then its `update`
   assignments *simultaneously* (all right-hand sides see the values at the start of the step).
   While a neuron is refractory and `refractory_integrates` is False, its reset targets keep their
   values. Impulse synapses (`DiscreteModel.impulse`) clear their states instead of updating.
4. **spike**: a neuron that is not refractory and whose `spike` condition holds emits a spike; its
   `reset` assignments run in order, and its refractory countdown restarts from `refractory`.

Derived parameters (`derived`) are evaluated once per population, in order, from the model's params
(with population overrides) and `dt`; later ones may use earlier ones. Update expressions may use
params, derived params, states, inputs, `t` and `dt`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .model import Assign

Expr = sympy.Expr


@dataclass(frozen=True)
class DiscreteModel:
    name: str  # the model's name (key in Network.models)
    method: str  # the integrator chosen: "exact" | "exponential_euler" | "euler" | "none"
    reason: str  # why that integrator (printed in the IR), e.g. "linear system: matrix exponential"
    derived: tuple[tuple[str, Expr], ...] = ()  # once per population, in order
    temps: tuple[tuple[str, Expr], ...] = ()  # per step, in order, before `update`
    update: tuple[Assign, ...] = ()  # per step, simultaneous; op is always "="
    spike: sympy.Basic | None = None
    reset: tuple[Assign, ...] = ()
    refractory: Expr | None = None
    refractory_integrates: bool = False
    on_pre: tuple[Assign, ...] = ()  # synapse only
    output: Expr | None = None  # synapse only: what this step contributes to the target input
    impulse: bool = False  # synapse only: states cleared after each step
    sub_steps: int = 1  # how many sub-steps `update` already contains (for the printer)
    # the model params the step needs, set by `simplify` (None: all of them); states are never dropped
    needs_params: tuple[str, ...] | None = None

    def update_for(self, state: str) -> Assign | None:
        return next((a for a in self.update if a.target == state), None)


def delay_steps(delay_ms: float, dt: float) -> int:
    """Axonal delays are rounded to whole steps, as GeNN does."""
    return max(0, int(round(delay_ms / dt)))


def _compact_repr(self: DiscreteModel) -> str:
    from .printer import compact_repr

    return compact_repr(self)


DiscreteModel.__repr__ = _compact_repr  # type: ignore[method-assign]
