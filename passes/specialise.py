"""The `specialise` pass: params and derived params replaced by their numbers, once, per owner.

A population's step is its model's discrete step with the population's params (model defaults,
then overrides), the derived params computed from them in order, and `dt` substituted; a
projection's likewise with its synapse params. Substitution matches symbols, not names: only the
user's own param symbols are replaced, so a symbol a pass generated is never captured by a param of
the same spelling. Params that training changes stay symbolic (`trained_params`).

The result is `Network.specialised` (see `snnc.ir.specialised`); the stage becomes "specialised".
"""

from __future__ import annotations

import dataclasses

import sympy
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.discrete import DiscreteModel, delay_steps
from snnc.ir.eprop_ir import EpropIR
from snnc.ir.model import Assign, Model, Network
from snnc.ir.specialised import Specialisation, SpecialisedPopulation, SpecialisedProjection
from snnc.ir.symbols import TIMESTEP, sym

Values = dict[str, sympy.Expr]


def specialise(network: Network) -> Network:
    """Specialise every non-generator population and every projection of a discrete network."""
    trained = trained_params(network)
    populations = {}
    for pop in network.populations.values():
        model = network.models[pop.model]
        dm = network.discrete.get(pop.model)
        if dm is None or model.generator is not None:  # input generators have no step to specialise
            continue
        params = {**{k: p.value for k, p in model.params.items()}, **pop.params}
        kept = trained.get(pop.name, ())
        shared = tuple(k for k, t in pop.trainable.items() if not t.per_neuron and k not in kept)
        per_neuron = tuple(k for k in pop.param_inits if k not in kept) + shared
        values, derived = owner_values(
            dm, params, network.dt, keep=(*kept, *per_neuron), per_neuron=per_neuron, where=pop.model
        )
        if dm.refractory is not None and apply(dm.refractory, values).free_symbols & set(
            map(sym, per_neuron)
        ):
            raise _per_neuron_refractory(pop.param_inits, dm.refractory, pop.name)
        populations[pop.name] = SpecialisedPopulation(
            name=pop.name,
            model=pop.model,
            values=tuple(values.items()),
            kept=trained.get(pop.name, ()),
            temps=_temps(dm.temps, values),
            update=_assigns(dm.update, values),
            spike=apply(dm.spike, values),
            reset=_assigns(dm.reset, values),
            refractory_steps=_refractory_steps(model, dm, values, network.dt),
            refractory_integrates=dm.refractory_integrates,
            per_neuron=per_neuron,
            per_neuron_derived=derived,
            shared=shared,
        )
    projections = {}
    for proj in network.projections.values():
        dm = network.discrete[proj.synapse]
        syn = network.models[proj.synapse]
        params = {**{k: p.value for k, p in syn.params.items()}, **proj.synapse_params}
        shared = tuple(k for k, t in proj.synapse_trainable.items() if not t.per_neuron)
        per_neuron = tuple(proj.synapse_param_inits) + shared
        values, derived = owner_values(
            dm, params, network.dt, keep=per_neuron, per_neuron=per_neuron, where=proj.synapse
        )
        output = dm.output
        if output is None and syn.output is not None:
            output = sym(syn.output)
        projections[proj.name] = SpecialisedProjection(
            name=proj.name,
            synapse=proj.synapse,
            values=tuple(values.items()),
            delay_steps=delay_steps(proj.delay, network.dt),
            on_pre=_assigns(dm.on_pre, values),
            output=apply(output, values),
            temps=_temps(dm.temps, values),
            update=_assigns(dm.update, values),
            impulse=dm.impulse,
            per_neuron=per_neuron,
            per_neuron_derived=derived,
            shared=shared,
            max_delay_steps=(
                delay_steps(proj.delay_trainable.max, network.dt)
                if proj.delay_trainable is not None
                else None
            ),
        )
    return dataclasses.replace(
        network, stage="specialised", specialised=Specialisation(populations, projections)
    )


def trained_params(network: Network) -> dict[str, tuple[str, ...]]:
    """population -> the params e-prop changes, which stay symbolic: its output biases and the
    neuron params it trains (EventProp's trained params, and e-prop's synapse params, are per-neuron
    params, `per_neuron`: arrays of their projection read by the step)."""
    if not isinstance(network.training, EpropIR):
        return {}
    out: dict[str, tuple[str, ...]] = {
        name: ("bias",) for name, o in network.training.outputs.items() if o.bias is not None
    }
    for pe in network.training.params.values():
        if pe.projection is not None:
            continue
        out[pe.population] = (*out.get(pe.population, ()), pe.param)
    return out


def owner_values(
    dm: DiscreteModel,
    params: dict[str, float],
    dt: float,
    *,
    keep: tuple[str, ...] = (),
    per_neuron: tuple[str, ...] = (),
    where: str = "",
) -> tuple[Values, tuple[tuple[str, sympy.Expr], ...]]:
    """Params (except `keep`), `dt` and the derived params in order, each a number or, when it
    depends on a kept param, an expression over it; and the per-neuron derived params.

    A derived param over `per_neuron` params only (and earlier such derived ones) stays its own
    symbol, its expression listed apart: a per-neuron value computed once, not in every step."""
    values: Values = {k: sympy.Float(float(v), 17) for k, v in params.items() if k not in keep}
    values[TIMESTEP] = sympy.Float(float(dt), 17)
    own = {sym(k) for k in per_neuron}
    derived: list[tuple[str, sympy.Expr]] = []
    for name, expr in dm.derived:
        value = apply(expr, values)
        if value.free_symbols and value.free_symbols <= own:
            derived.append((name, value))
            own.add(sym(name))
            values[name] = sym(name)
            continue
        if value.free_symbols - {sym(k) for k in keep} - own:
            raise DiagnosticError(
                Diagnostic(
                    "E-DERIVED",
                    f"derived parameter '{name}' of model '{where}' does not evaluate to a number: {value}",
                )
            )
        # through a double, as the backends always did: the printed literals stay the same
        values[name] = sympy.Float(float(sympy.N(value, 17)), 17) if not value.free_symbols else value
    return values, tuple(derived)


def _per_neuron_refractory(inits: dict, refractory: sympy.Expr, pop: str) -> DiagnosticError:
    name = next((k for k in inits if sym(k) in sympy.sympify(refractory).free_symbols), None)
    span = inits[name].span if name is not None else None
    return DiagnosticError(
        Diagnostic(
            "E-REFRACTORY",
            f"population '{pop}': the refractory period cannot differ between neurons ('{name}' is per neuron)",
            span,
            "give it one number",
        )
    )


def apply(expr: sympy.Basic | None, values: Values) -> sympy.Basic | None:
    """`expr` with the user symbols named in `values` replaced by their values."""
    if expr is None:
        return None
    return sympy.sympify(expr).xreplace({sym(name): v for name, v in values.items()})


def _assigns(assigns: tuple[Assign, ...], values: Values) -> tuple[Assign, ...]:
    return tuple(Assign(a.target, a.op, apply(a.expr, values), a.span) for a in assigns)


def _temps(temps: tuple[tuple[str, sympy.Expr], ...], values: Values) -> tuple[tuple[str, sympy.Expr], ...]:
    return tuple((name, apply(expr, values)) for name, expr in temps)


def _refractory_steps(model: Model, dm: DiscreteModel, values: Values, dt: float) -> int:
    if dm.refractory is None:
        return 0
    period = apply(dm.refractory, values)
    if period.free_symbols:
        raise DiagnosticError(
            Diagnostic("E-REFRACTORY", f"refractory period of '{model.name}' must be constant", model.span)
        )
    return int(round(float(period) / dt))
