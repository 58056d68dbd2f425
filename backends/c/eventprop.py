"""EventProp in the C backend: specialise the `TrainingIR` and lay out what the templates print.

The discrete semantics are those of `snnc.passes.eventprop` (its docstring is the spec). Python makes
every decision here (STYLE.md #10): which populations keep a spike list, which values each spike
records, the C text of every jump, transmission, gradient and backward step; `eventprop.c.j2` and
two small hooks in `model.c.j2` only lay the strings out.

Forward, per population whose spikes matter to the backward pass, each batch row keeps one flat,
step-ordered list of its spikes (neuron id, step, recorded values, D slot) of capacity
`size * max_spikes`: a neuron's spikes past `max_spikes` are counted as overflow and dropped (no jump,
no gradient), so record memory grows with spikes, never with steps x neurons. Backward walks these
lists from the end, so every phase is event-driven except the dense per-neuron adjoint step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from snnc.backends.common import NetworkPlan
from snnc.ir import names
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.model import Network
from snnc.ir.symbols import TIMESTEP
from snnc.ir.training import PopulationGradient, TrainingIR

#: symbols the backward pass supplies at run time -> C locals of `eventprop.c.j2`
RUNTIME = {
    names.D: "snnc_D",
    names.DLP_DTS: "snnc_dlp",
    names.DL_DY: "snnc_dly",
    names.STEP: "snnc_kf",
    names.STEPS: "snnc_Kf",
    names.DURATION: "snnc_T",
    names.SPIKE_COUNT_SUM: "snnc_nsum",
    names.BATCH_SIZE: "snnc_B",
    names.IS_FIRST_SPIKE: "snnc_first",
    "t": "snnc_ts",
    names.SPIKE_TIME: "snnc_ts",
}
GRAD_KINDS = ("dense", "sparse", "one_to_one")


def _fail(message: str, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError(Diagnostic("E-C-EVENTPROP", message, None, hint))


def lam_local(state: str) -> str:
    return "al_" + state


def _number(expr: sympy.Basic, values: dict[str, float]) -> float:
    subs = {s: values[s.name] for s in expr.free_symbols if s.name in values}
    return float(sympy.N(sympy.sympify(expr).xreplace(subs), 17))


def _model_values(model, given: dict[str, float], dt: float) -> dict[str, float]:  # noqa: ANN001
    """A model's params (defaults, then overrides) and its Model-IR derived params, in order."""
    values = {k: float(p.value) for k, p in model.params.items()}
    values.update({k: float(v) for k, v in given.items()})
    values[TIMESTEP] = float(dt)
    for name, d in model.derived.items():
        values[name] = _number(d.expr, values)
    return values


def population_values(network: Network, pg: PopulationGradient, dt: float) -> dict[str, float]:
    """Numbers for every param symbol of a PopulationGradient (`tau_mem`, `tau__x_to_h`, `__decay__*`)."""
    pop = network.populations[pg.population]
    per_owner: dict[str, dict[str, float]] = {
        "neuron": _model_values(network.models[pop.model], pop.params, dt)
    }
    for proj in network.projections_to(pop.name):
        per_owner[proj.name] = _model_values(network.models[proj.synapse], proj.synapse_params, dt)
    values: dict[str, float] = {TIMESTEP: float(dt)}
    for symbol, owner, pname in pg.params:
        values[symbol] = per_owner[owner][pname]
    for name, expr in pg.derived:
        values[name] = _number(expr, values)
    return values


def specialise(expr: sympy.Basic, values: dict[str, float]) -> sympy.Expr:
    expr = sympy.sympify(expr)
    subs = {s: sympy.Float(values[s.name], 17) for s in expr.free_symbols if s.name in values}
    return expr.xreplace(subs)


@dataclass
class EventPropPlan:
    """The TrainingIR with every param replaced by its number, per population and projection."""

    max_spikes: int
    training: TrainingIR
    values: dict[str, dict[str, float]] = field(default_factory=dict)  # population -> symbol -> value
    list_pops: tuple[str, ...] = ()  # populations that keep a spike list

    def expr(self, pop: str, expr: sympy.Basic) -> sympy.Expr:
        return specialise(expr, self.values[pop])


def plan_eventprop(network: Network, plan: NetworkPlan) -> EventPropPlan | None:
    """None unless the network carries an EventProp TrainingIR."""
    tr = getattr(network, "training", None)
    if tr is None or getattr(tr, "algorithm", None) != "eventprop":
        return None
    values = {name: population_values(network, pg, plan.dt) for name, pg in tr.populations.items()}
    lists: list[str] = []
    for name, pg in tr.populations.items():
        if pg.theta is not None:
            lists.append(name)
    for proj in list(tr.weight_gradients) + list(tr.transmissions):
        pre = plan.projections[proj].pre
        if pre not in lists:
            lists.append(pre)
    for name in tr.weight_gradients:
        kind = plan.projections[name].kind
        if kind not in GRAD_KINDS:
            raise _fail(
                f"projection '{name}' is {kind}: the C backend computes EventProp gradients for "
                f"{', '.join(GRAD_KINDS)} connectivity only",
                hint="mark it `trainable = false` or use dense/sparse connectivity",
            )
    for name, pg in tr.populations.items():
        if pg.method != "exact" and pg.trajectory:
            bad = [s for s in pg.trajectory if s not in plan.populations[name].states]
            if bad:
                raise _fail(
                    f"population '{name}': the Euler backward step needs the synapse state '{bad[0]}' "
                    "every step, which the C backend does not record yet"
                )
    order = [p for p in plan.order if p in lists]
    return EventPropPlan(int(tr.max_spikes), tr, values, tuple(order))
