"""The `discretise` pass: continuous-time models become per-step updates (Model IR -> Discrete IR).

For every model it tries the integrators of `passes/integrators.py` in order of preference (exact,
exponential Euler, Euler), or the one the user asked for with `method`, and records which one it
chose and why the better ones were refused. The step semantics are fixed in `ir/discrete.py`.
Results are cached by model content: the standard models appear in nearly every network.
"""

from __future__ import annotations

import dataclasses

import sympy
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.discrete import DiscreteModel
from snnc.ir.model import Model, Network

from .integrators import INTEGRATORS, METHOD_CODE, Integration, Names, OdeSystem, Unsupported, preference

_CACHE: dict[tuple, DiscreteModel] = {}


def discretise(network: Network) -> Network:
    """Attach a `DiscreteModel` to every model of the network; stage becomes "discrete"."""
    discrete = {name: discretise_model(model) for name, model in network.models.items()}
    return dataclasses.replace(network, stage="discrete", discrete=discrete)


def discretise_model(model: Model) -> DiscreteModel:
    """The per-step form of one model (cached by content, so repeated std models cost nothing)."""
    key = _content_key(model)
    hit = _CACHE.get(key)
    if hit is None:
        hit = _CACHE[key] = _discretise(model)
    return hit


def _discretise(model: Model) -> DiscreteModel:
    common = dict(
        name=model.name,
        spike=model.spike,
        reset=model.reset,
        refractory=model.refractory,
        refractory_integrates=model.refractory_integrates,
        on_pre=model.on_pre,
        impulse=model.impulse,
        derived=tuple((d.name, d.expr) for d in model.derived.values()),
    )
    out_state = sympy.Symbol(model.output, real=True) if model.is_synapse and model.output else None
    if model.generator is not None:
        return DiscreteModel(
            method="none", reason=f"generator ({model.generator}): spikes come from data", **common
        )
    if model.impulse:
        return DiscreteModel(
            method="none",
            reason="impulse synapse: delivered for exactly one step, then cleared",
            output=out_state,
            **common,
        )
    if not model.odes:
        return DiscreteModel(
            method="none", reason="no ODEs: states change only at events", output=out_state, **common
        )
    result = _integrate(model)
    held = [s for s in model.states if model.ode_for(s) is None]
    reason = result.reason + (f"; held constant between events: {', '.join(held)}" if held else "")
    output = out_state
    if out_state is not None and result.output is not None:
        output = result.output
        reason += f"; output is the step average of {model.output}"
    common["derived"] = common["derived"] + tuple(result.derived)
    return DiscreteModel(
        method=result.method,
        reason=reason,
        temps=tuple(result.temps),
        update=tuple(result.update),
        output=output,
        sub_steps=result.sub_steps,
        **common,
    )


def _integrate(model: Model) -> Integration:
    system = OdeSystem.of(model)
    if model.method is not None:
        integrator = {i.name: i for i in preference()}.get(model.method)
        if integrator is None:
            raise DiagnosticError(
                Diagnostic(
                    METHOD_CODE,
                    f"unknown integration method '{model.method}' in model '{model.name}'",
                    model.span,
                    hint="methods are: " + ", ".join(INTEGRATORS),
                )
            )
        try:
            result = integrator.integrate(system, Names(model), model.sub_steps)
        except Unsupported as err:
            raise DiagnosticError(
                Diagnostic(
                    METHOD_CODE,
                    f"method '{model.method}' cannot integrate model '{model.name}': {err.why}",
                    _ode_span(model, err.why) or model.span,
                    hint="remove `method` to let snnc choose, or use `method = euler`",
                )
            ) from None
        result.reason = f"requested: {result.reason}"
        return result
    refused: list[str] = []
    for integrator in preference():
        try:
            result = integrator.integrate(system, Names(model), model.sub_steps)
        except Unsupported as err:
            refused.append(f"{integrator.name} refused: {err.why}")
            continue
        result.reason = "; ".join([*refused, result.reason])
        return result
    raise AssertionError("euler always applies")  # pragma: no cover


def _ode_span(model: Model, why: str):
    for ode in model.odes:
        if f"d{ode.state}/dt" in why:
            return ode.span
    return None


def _content_key(model: Model) -> tuple:
    """Everything that affects the discrete form, as printable text (spans excluded)."""
    s = sympy.srepr
    return (
        model.name,
        model.kind,
        tuple((p.name, p.value) for p in model.params.values()),
        tuple((d.name, s(d.expr)) for d in model.derived.values()),
        tuple((st.name, st.init) for st in model.states.values()),
        tuple(model.inputs),
        tuple((o.state, s(o.rhs)) for o in model.odes),
        s(model.spike) if model.spike is not None else None,
        tuple((a.target, a.op, s(a.expr)) for a in model.reset),
        s(model.refractory) if model.refractory is not None else None,
        model.refractory_integrates,
        tuple((a.target, a.op, s(a.expr)) for a in model.on_pre),
        model.output,
        model.impulse,
        model.generator,
        model.method,
        model.sub_steps,
        model.span,
    )
