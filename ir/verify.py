"""What "valid IR" means, in one place (STYLE.md #3); the pass manager runs it between passes.

`verify(network)` returns a list of problems (empty when the IR is fine), each naming the model,
population or projection and the offending symbol, so a pass that breaks an invariant is caught
right after it runs, not in generated C. Checks depend on the stage: the Model IR always, the
Discrete IR from stage "discrete" on.
"""

from __future__ import annotations

import sympy

from . import names
from .discrete import DiscreteModel
from .gradient import GradientIR
from .model import Model, Network
from .symbols import TIME, TIMESTEP, WEIGHT, sym, w

STAGES = ("model", "discrete", "training", "optimised")
OPS = ("=", "+=", "-=", "*=", "/=")


def verify(network: Network) -> list[str]:
    """All invariant violations of `network` at its stage, as readable sentences."""
    problems: list[str] = []
    if network.stage not in STAGES:
        problems.append(f"unknown stage '{network.stage}' (expected one of {', '.join(STAGES)})")
    for name, model in network.models.items():
        if name != model.name:
            problems.append(f"model stored under '{name}' is named '{model.name}'")
        problems += [f"model '{name}': {p}" for p in verify_model(model)]
    problems += _verify_wiring(network)
    if network.stage in ("discrete", "training", "optimised"):
        for name, model in network.models.items():
            dm = network.discrete.get(name)
            if dm is None:
                if model.generator is None:
                    problems.append(f"model '{name}' has no discrete form after discretise")
                continue
            problems += [f"discrete model '{name}': {p}" for p in verify_discrete(model, dm)]
        for name in network.discrete:
            if name not in network.models:
                problems.append(f"discrete model '{name}' has no model")
    if network.training is not None:
        problems += verify_gradient(network)
    return problems


def verify_gradient(network: Network) -> list[str]:
    """A gradient payload is a `GradientIR` whose statements use only symbols the network declares
    (a model's params, derived params, states, inputs and discrete temps; a synapse's seen from its
    post population through `names.coupled`), `t`, `dt`, or names from the generated namespace."""
    training = network.training
    if not isinstance(training, GradientIR):
        return [f"training payload {type(training).__name__} is not a GradientIR"]
    if network.stage == "model":
        return ["a gradient payload before discretise"]
    declared = _declared_names(network)
    problems = []
    for where, expr in training.expressions():
        extra = {s for s in expr.free_symbols if not str(s).startswith(names.SEP) and str(s) not in declared}
        if extra:
            problems.append(f"{training.algorithm}: {where} uses undeclared symbol(s) {_names(extra)}")
    return problems


def _declared_names(network: Network) -> set[str]:
    def own(model_name: str) -> set[str]:
        model = network.models.get(model_name)
        if model is None:
            return set()
        out = set(model.params) | set(model.derived) | set(model.states) | set(model.inputs)
        dm = network.discrete.get(model_name)
        if dm is not None:
            out |= {n for n, _ in dm.derived} | {n for n, _ in dm.temps}
        return out

    declared = {TIME, TIMESTEP, WEIGHT}
    for pop in network.populations.values():
        declared |= own(pop.model)
    for proj in network.projections.values():
        declared |= {names.coupled(n, proj.name) for n in own(proj.synapse)}
    return declared


def _names(symbols: set[sympy.Symbol]) -> str:
    return ", ".join(sorted(str(s) for s in symbols))


def _undeclared(expr: sympy.Basic | None, allowed: set[str], where: str) -> list[str]:
    if expr is None:
        return []
    extra = {s for s in expr.free_symbols if str(s) not in allowed}
    return [f"{where} uses undeclared symbol(s) {_names(extra)}"] if extra else []


def verify_model(model: Model) -> list[str]:
    """Every symbol declared, ODEs for declared states, synapse rules (on_pre additive in w)."""
    problems: list[str] = []
    if model.kind not in ("neuron", "synapse"):
        problems.append(f"kind '{model.kind}' is neither 'neuron' nor 'synapse'")
    declared = set(model.params) | set(model.derived) | set(model.states) | set(model.inputs)
    env = declared | {TIME, TIMESTEP}
    seen_derived: set[str] = set()
    for d in model.derived.values():
        problems += _undeclared(d.expr, set(model.params) | seen_derived | {TIMESTEP}, f"derived '{d.name}'")
        seen_derived.add(d.name)
    for ode in model.odes:
        if ode.state not in model.states:
            problems.append(f"ODE for '{ode.state}', which is not a state")
        problems += _undeclared(ode.rhs, env, f"d{ode.state}/dt")
    if len({o.state for o in model.odes}) != len(model.odes):
        problems.append("more than one ODE for the same state")
    problems += _undeclared(model.spike, env, "spike condition")
    problems += _undeclared(model.refractory, env, "refractory period")
    problems += _check_assigns(model.reset, model, env, "reset")
    problems += _check_assigns(model.on_pre, model, env | {WEIGHT}, "on_pre")
    states = {sym(n) for n in model.states}
    for a in model.on_pre:
        delta = a.as_value(sym(a.target)) - sym(a.target)
        slope = sympy.diff(delta, w)
        # additive: the jump is w times something that neither w nor the state changes, zero at w = 0
        if slope.has(w) or slope.free_symbols & states or sympy.expand(delta.subs(w, 0)) != 0:
            problems.append(f"on_pre '{a.target} {a.op} {a.expr}' is not additive in w")
    if model.is_synapse:
        if model.output is not None and model.output not in model.states:
            problems.append(f"output '{model.output}' is not a state")
    elif model.on_pre or model.output is not None:
        problems.append("a neuron model has on_pre or output")
    return problems


def _check_assigns(assigns, model: Model, env: set[str], where: str) -> list[str]:
    problems = []
    for a in assigns:
        if a.op not in OPS:
            problems.append(f"{where} uses operator '{a.op}'")
        if a.target not in model.states:
            problems.append(f"{where} assigns '{a.target}', which is not a state")
        problems += _undeclared(a.expr, env, f"{where} of '{a.target}'")
    return problems


def verify_discrete(model: Model, dm: DiscreteModel) -> list[str]:
    """Updates are `=` on states, temps defined before use, derived only from params/earlier/dt."""
    problems: list[str] = []
    if dm.name != model.name:
        problems.append(f"named '{dm.name}' but attached to model '{model.name}'")
    known = set(model.params) | {TIMESTEP}
    for name, expr in dm.derived:
        problems += _undeclared(expr, known, f"derived '{name}'")
        if name in known or name in model.states or name in model.inputs:
            problems.append(f"derived '{name}' clashes with another name")
        known.add(name)
    env = known | set(model.states) | set(model.inputs) | {TIME}
    for name, expr in dm.temps:
        problems += _undeclared(expr, env, f"temp '{name}'")
        if name in env:
            problems.append(f"temp '{name}' clashes with another name")
        env.add(name)
    targets = [a.target for a in dm.update]
    if len(set(targets)) != len(targets):
        problems.append("a state is updated twice in one step")
    for a in dm.update:
        if a.op != "=":
            problems.append(f"update of '{a.target}' uses '{a.op}' (must be '=')")
        if a.target not in model.states:
            problems.append(f"update assigns '{a.target}', which is not a state")
        problems += _undeclared(a.expr, env, f"update of '{a.target}'")
    step_env = known | set(model.states) | set(model.inputs) | {TIME}
    problems += _undeclared(dm.spike, step_env, "spike condition")
    problems += _undeclared(dm.refractory, step_env, "refractory period")
    problems += _check_assigns(dm.reset, model, step_env, "reset")
    problems += _check_assigns(dm.on_pre, model, step_env | {WEIGHT}, "on_pre")
    problems += _undeclared(dm.output, step_env, "output")
    if model.generator is None and model.odes and not dm.update and not dm.impulse:
        problems.append("has ODEs but no update")
    if dm.sub_steps < 1:
        problems.append(f"sub_steps is {dm.sub_steps}")
    return problems


def _verify_wiring(network: Network) -> list[str]:
    problems: list[str] = []
    for name, pop in network.populations.items():
        model = network.models.get(pop.model)
        if model is None:
            problems.append(f"population '{name}' uses unknown model '{pop.model}'")
        elif not model.is_neuron:
            problems.append(f"population '{name}' uses synapse model '{pop.model}'")
        else:
            extra = set(pop.params) - set(model.params)
            if extra:
                problems.append(f"population '{name}' sets unknown params {', '.join(sorted(extra))}")
        if any(s < 1 for s in pop.shape) or not pop.shape:
            problems.append(f"population '{name}' has shape {pop.shape}")
    for name, proj in network.projections.items():
        for end in (proj.pre, proj.post):
            if end not in network.populations:
                problems.append(f"projection '{name}' names unknown population '{end}'")
        syn = network.models.get(proj.synapse)
        if syn is None:
            problems.append(f"projection '{name}' uses unknown synapse model '{proj.synapse}'")
        elif not syn.is_synapse:
            problems.append(f"projection '{name}' uses neuron model '{proj.synapse}' as its synapse")
        post = network.populations.get(proj.post)
        post_model = network.models.get(post.model) if post is not None else None
        if post_model is not None and proj.target not in post_model.inputs:
            problems.append(
                f"projection '{name}' targets '{proj.target}', which is not an input of '{post_model.name}'"
            )
    return problems
