"""Symbolic e-prop derivation for one projection (or one output bias), from the discrete update.

The post neuron's state h (its own states plus the states of the projection's synapse) evolves as
`h_k = R(U(h_{k-1}, I_k), z_k)`: `U` is the discrete `update`, `R` the `reset`, `z_k = H(θ(h'_k))`
with `h'_k = U(...)` the pre-reset state. The eligibility vector `ε = dh/dW_ji` (Bellec et al. 2020,
with the recurrent paths dropped) is carried in two phases per step:

- propagate: `ε ← ∂U/∂h · ε + ∂U/∂I · dI/dW`, with `dI/dW` from the synapse's on_pre and output
  (`z_pre` the delivered presynaptic spike);
- jump (after the trace is read): `x⁺ = x' + z (R_x(h') − x')`, so
  `ε_x ← (1 − z) ε_x + z ∂R_x/∂h' ε + (R_x(h') − x') ψ ∂θ/∂h' ε`; for the membrane states (those on
  the rising side of the spike condition) Bellec leaves this path out: `ε_x` passes unchanged.

The trace is `e = ψ ∂θ/∂h' · ε` read between the two phases (pre-reset values).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sympy
from snnc.ir import names
from snnc.ir.diagnostics import Diagnostic, DiagnosticError, Span
from snnc.ir.discrete import DiscreteModel
from snnc.ir.eprop_ir import Eligibility
from snnc.ir.model import Assign, Model, threshold_sides
from snnc.ir.symbols import sym, w

Expr = sympy.Expr

Z_PRE = sym(names.Z_PRE)
Z = sym(names.Z)
PSI = sym(names.PSI)
REFRACTORY = sym(names.REFRACTORY)

#: sympy functions whose derivative is not usable for a gradient
NON_DIFFERENTIABLE = (
    sympy.Abs,
    sympy.Heaviside,
    sympy.Min,
    sympy.Max,
    sympy.sign,
    sympy.floor,
    sympy.ceiling,
    sympy.Piecewise,
)

CODE_NOSPIKE = "E-EPROP-NOSPIKE"
CODE_THRESHOLD = "E-EPROP-THRESHOLD"
CODE_NONDIFF = "E-EPROP-NONDIFF"
CODE_SPIKING_READOUT = "E-EPROP-READOUT"


@dataclass(frozen=True)
class Where:
    """What a diagnostic names: the model, the population, and a span to point at."""

    model: str
    population: str
    span: Span | None


@dataclass(frozen=True)
class Derivation:
    eligibilities: tuple[Eligibility, ...]
    propagate: tuple[Assign, ...]
    jump: tuple[Assign, ...] = ()
    trace: Expr | None = None
    eps_of: dict[str, sympy.Symbol] | None = None  # state name -> eps symbol
    params: tuple[tuple[str, str, str], ...] = ()
    derived: tuple[tuple[str, Expr], ...] = ()


@dataclass(frozen=True)
class Threshold:
    theta: Expr
    v_th: Expr
    membrane: tuple[str, ...]


def tidy(expr: Expr, around: Iterable[sympy.Symbol]) -> Expr:
    """Expanded and collected around the eligibility symbols: short, deterministic, comparable."""
    return sympy.collect(sympy.expand(expr), list(around))


def threshold(model: Model, disc: DiscreteModel, where: Where) -> Threshold:
    """θ (spike when θ >= 0), the ψ scale v_th, and the membrane states, from the spike condition."""
    cond = disc.spike
    if cond is None:
        raise DiagnosticError(
            Diagnostic(
                CODE_NOSPIKE,
                f"e-prop: model '{where.model}' of hidden population '{where.population}' has no spike "
                "condition, so it has no pseudo-derivative",
                where.span,
                hint="hidden populations trained with e-prop need `spike when ...`; use it as an output instead",
            )
        )
    sides = threshold_sides(cond)
    if sides is None:
        raise DiagnosticError(
            Diagnostic(
                CODE_THRESHOLD,
                f"e-prop: the spike condition '{cond}' of model '{where.model}' (population "
                f"'{where.population}') is not a single comparison `x >= threshold`",
                where.span,
                hint="write the spike condition as one comparison, e.g. `spike when v >= v_thresh`",
            )
        )
    rising, other = sides
    theta = sympy.expand(rising - other)
    states = [sym(s) for s in model.states]
    if not theta.free_symbols & set(states):
        raise DiagnosticError(
            Diagnostic(
                CODE_THRESHOLD,
                f"e-prop: the spike condition '{cond}' of model '{where.model}' (population "
                f"'{where.population}') does not depend on any state, so spikes have no gradient",
                where.span,
            )
        )
    check_differentiable(theta, states, where, "spike condition")
    v_th = sympy.simplify(-theta.xreplace({s: 0 for s in states}))
    if v_th == 0 or v_th.free_symbols & set(states):
        raise DiagnosticError(
            Diagnostic(
                CODE_THRESHOLD,
                f"e-prop: cannot find the threshold scale v_th of '{cond}' in model '{where.model}' "
                f"(population '{where.population}'): θ with all states at 0 is {sympy.sstr(-v_th)}",
                where.span,
                hint="the pseudo-derivative ψ = γ/v_th·max(0, 1-|v-A|/v_th) needs a non-zero base threshold",
            )
        )
    membrane = tuple(s for s in model.states if sym(s) in rising.free_symbols)
    return Threshold(theta, v_th, membrane)


def check_differentiable(expr: Expr, wrt: Iterable[sympy.Symbol], where: Where, what: str) -> None:
    """Raise a diagnostic naming the first non-differentiable term of `expr` that involves `wrt`."""
    wrt = set(wrt)
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, NON_DIFFERENTIABLE) and node.free_symbols & wrt:
            raise DiagnosticError(
                Diagnostic(
                    CODE_NONDIFF,
                    f"e-prop: the term '{sympy.sstr(node)}' in the {what} of model '{where.model}' "
                    f"(population '{where.population}') is not differentiable",
                    where.span,
                    hint="e-prop differentiates the discrete update; replace the term by a smooth one "
                    "(e.g. sigmoid instead of heaviside)",
                )
            )


def _substitute_temps(disc: DiscreteModel, expr: Expr, rename: dict) -> Expr:
    for name, value in reversed(disc.temps):
        expr = expr.xreplace({sym(name): value})
    return expr.xreplace(rename)


def _synapse_symbols(syn: Model, disc: DiscreteModel, proj: str) -> dict[sympy.Symbol, sympy.Symbol]:
    declared = list(syn.states) + list(syn.params) + [n for n, _ in disc.derived] + list(syn.derived)
    return {sym(n): sym(names.coupled(n, proj)) for n in declared}


def derive_weight(
    proj: str,
    target: str,
    post: Model,
    post_disc: DiscreteModel,
    syn: Model,
    syn_disc: DiscreteModel,
    where: Where,
    thr: Threshold | None,
    keep_reset_path: bool,
) -> Derivation:
    """Propagate, trace and jump of the eligibility of the weights of projection `proj`."""
    rename = _synapse_symbols(syn, syn_disc, proj)
    n_states = list(post.states)
    s_states = [] if syn_disc.impulse else list(syn.states)
    eps: dict[str, sympy.Symbol] = {x: sym(names.eligibility(proj, x)) for x in n_states}
    for s in s_states:
        eps[names.coupled(s, proj)] = sym(names.eligibility(proj, names.coupled(s, proj)))

    # deliver: s+ = on_pre(s) (impulse synapses start from zero), d s+ = J ds + ds+/dw z_pre
    after = {sym(s): (0 if syn_disc.impulse else sym(s)) for s in syn.states}
    for a in syn_disc.on_pre:
        after[sym(a.target)] = a.as_value(sym(a.target)).xreplace(after)
    check_differentiable(sympy.Add(*after.values()), [w], where, "on_pre action")
    d_after = {}
    for s, value in after.items():
        d = sympy.diff(value, w).xreplace({w: 0}) * Z_PRE
        for s2 in s_states:
            d += sympy.diff(value, sym(s2)) * eps[names.coupled(s2, proj)]
        d_after[s] = d
    # the input: output(s+), or the summed weights themselves for a stateless impulse synapse
    if syn_disc.output is None:
        d_input = Z_PRE
    else:
        # derivatives are read at the post-delivery values, which the state symbols stand for
        check_differentiable(syn_disc.output, list(after), where, "synapse output")
        d_input = sum((sympy.diff(syn_disc.output, s) * d_after[s] for s in after), sympy.S.Zero)
    d_input = d_input.xreplace(rename)

    propagate = _neuron_propagate(post_disc, n_states, eps, target, d_input, where)
    propagate += _synapse_propagate(syn_disc, s_states, eps, proj, d_after, rename, where)

    all_eps = list(eps.values())
    propagate = [Assign(a.target, "=", tidy(a.expr.xreplace(rename), [*all_eps, Z_PRE])) for a in propagate]
    trace, jump = _trace_and_jump(post_disc, n_states, eps, thr, keep_reset_path, where)
    eligibilities = tuple(Eligibility(e.name, x, "synapse") for x, e in eps.items())
    params = tuple(
        [(p, "neuron", p) for p in post.params] + [(names.coupled(p, proj), proj, p) for p in syn.params]
    )
    derived = tuple((names.coupled(n, proj), e.xreplace(rename)) for n, e in syn_disc.derived)
    return Derivation(eligibilities, tuple(propagate), tuple(jump), trace, eps, params, derived)


def _neuron_propagate(
    disc: DiscreteModel,
    n_states: list[str],
    eps: dict[str, sympy.Symbol],
    target: str,
    d_input: Expr,
    where: Where,
) -> list[Assign]:
    """`ε_x ← Σ_y ∂U_x/∂y ε_y + ∂U_x/∂I · dI` for the post neuron's states (`d_input` = dI, the
    derivative of its input `target`); refractory neurons that do not integrate hold their reset
    targets."""
    held = (
        {a.target for a in disc.reset}
        if disc.refractory is not None and not disc.refractory_integrates
        else set()
    )
    out: list[Assign] = []
    state_syms = [sym(x) for x in n_states]
    i_sym = sym(target)
    for x in n_states:
        a = disc.update_for(x)
        u = _substitute_temps(disc, a.expr, {}) if a is not None else sym(x)
        check_differentiable(u, [*state_syms, i_sym], where, f"update of '{x}'")
        d = sum((sympy.diff(u, y) * eps[y.name] for y in state_syms), sympy.S.Zero)
        d += sympy.diff(u, i_sym) * d_input
        if x in held:
            d = REFRACTORY * eps[x] + (1 - REFRACTORY) * d
        out.append(Assign(eps[x].name, "=", d))
    return out


def _synapse_propagate(
    disc: DiscreteModel,
    s_states: list[str],
    eps: dict[str, sympy.Symbol],
    proj: str,
    d_after: dict[sympy.Symbol, Expr],
    rename: dict[sympy.Symbol, sympy.Symbol],
    where: Where,
    param: tuple[sympy.Symbol, dict[sympy.Symbol, Expr]] | None = None,
) -> list[Assign]:
    """`ε_s ← Σ ∂U_s/∂s⁺ dε_s⁺` for the synapse's states (`d_after`: their derivatives after this
    step's delivery), plus `∂U_s/∂p` through derived params for a synapse param (`param`)."""
    extra = [param[0], *param[1]] if param is not None else []
    out: list[Assign] = []
    for s in s_states:
        a = disc.update_for(s)
        u = _substitute_temps(disc, a.expr, {}) if a is not None else sym(s)
        check_differentiable(u, [*d_after, *extra], where, f"synapse update of '{s}'")
        d = sum((sympy.diff(u, s2) * d_after[s2] for s2 in d_after), sympy.S.Zero)
        if param is not None:
            d += _chain(u, *param)
        out.append(Assign(eps[names.coupled(s, proj)].name, "=", d.xreplace(rename)))
    return out


def _trace_and_jump(
    disc: DiscreteModel,
    n_states: list[str],
    eps: dict[str, sympy.Symbol],
    thr: Threshold | None,
    keep_reset_path: bool,
    where: Where,
) -> tuple[Expr | None, list[Assign]]:
    """A hidden neuron's trace ψ·∂θ/∂h·ε and the eligibility's jump at its spikes (none for outputs)."""
    if thr is None:
        return None, []
    d_theta = sum((sympy.diff(thr.theta, sym(y)) * eps[y] for y in n_states), sympy.S.Zero)
    trace = tidy(PSI * d_theta, list(eps.values()))
    return trace, _jump(disc, n_states, eps, thr, d_theta, keep_reset_path, where)


def _jump(
    disc: DiscreteModel,
    n_states: list[str],
    eps: dict[str, sympy.Symbol],
    thr: Threshold,
    d_theta: Expr,
    keep_reset_path: bool,
    where: Where,
    p: sympy.Symbol | None = None,
    d_derived: dict[sympy.Symbol, Expr] | None = None,
) -> list[Assign]:
    """Eligibility at a (pseudo-)spike: the reset's derivative, through z and through ψ; for a
    param's eligibility (`p`) also z·∂R/∂p, the reset's own dependence on p, which a membrane state
    whose reset path is stopped still gets."""
    reset = {sym(x): sym(x) for x in n_states}
    for a in disc.reset:  # sequential, as the Discrete IR runs them
        reset[sym(a.target)] = a.as_value(sym(a.target)).xreplace(reset)
    d_derived = d_derived or {}
    out = []
    all_eps = list(eps.values())
    for x in n_states:
        xs = sym(x)
        r = reset[xs]
        stopped = x in thr.membrane and not keep_reset_path
        if r == xs or (stopped and p is None):
            continue
        extra = [p, *d_derived] if p is not None else []
        check_differentiable(r, [*reset, *extra], where, f"reset of '{x}'")
        direct = _chain(r, p, d_derived) if p is not None else sympy.S.Zero
        if stopped:
            if direct == 0:
                continue
            d = eps[x] + Z * direct
        else:
            via_z = sum((sympy.diff(r, y) * eps[y.name] for y in reset), sympy.S.Zero) + direct
            d = (1 - Z) * eps[x] + Z * via_z + (r - xs) * PSI * d_theta
        out.append(Assign(eps[x].name, "=", tidy(d, all_eps)))
    return out


def derive_bias(param: str, post: Model, post_disc: DiscreteModel, where: Where) -> Derivation:
    """Eligibility of the output states with respect to a per-neuron parameter (the readout bias):
    an output's param eligibility (`derive_param`), under the bias's own names."""
    return derive_param(param, post, post_disc, where, None, False, lambda _, x: names.bias_eligibility(x))


def _chain(expr: Expr, p: sympy.Symbol, d_derived: dict[sympy.Symbol, Expr]) -> Expr:
    """d expr / dp, through the derived params that depend on p."""
    return sympy.diff(expr, p) + sum((sympy.diff(expr, k) * v for k, v in d_derived.items()), sympy.S.Zero)


def _derived_chain(disc: DiscreteModel, p: sympy.Symbol) -> dict[sympy.Symbol, Expr]:
    """d(derived)/dp of the derived params that depend on p, in order (a derived param may use
    earlier ones)."""
    out: dict[sympy.Symbol, Expr] = {}
    for name, expr in disc.derived:
        d = _chain(expr, p, out)
        if d != 0:
            out[sym(name)] = d
    return out


def derive_param(
    param: str,
    post: Model,
    post_disc: DiscreteModel,
    where: Where,
    thr: Threshold | None,
    keep_reset_path: bool,
    eps_name: Callable[[str, str], str] = names.param_eligibility,
) -> Derivation:
    """Eligibility of a neuron's own states with respect to one of its params p, per neuron.

    Hidden neurons (`thr` given): `ε_p ← ∂U/∂h ε_p + ∂U/∂p` (the update's own dependence on p, also
    through derived params), trace `e_p = ψ (∂θ/∂h' ε_p + ∂θ/∂p)` (a trainable threshold enters
    here directly), and the jump of a weight's eligibility plus the reset's own dependence on p
    with z held: a membrane state, whose reset path D_t leaves out, gets `ε ← ε + z ∂R/∂p` (for
    `v ← v − ϑ z`: −z for ϑ, exactly what BPTT with the reset's z stopped sees). Output neurons
    (`thr` None): propagate only; their gradient is exact (`E · ε_var`)."""
    n_states = list(post.states)
    eps = {x: sym(eps_name(param, x)) for x in n_states}
    p = sym(param)
    d_derived = _derived_chain(post_disc, p)
    state_syms = [sym(x) for x in n_states]
    held = (
        {a.target for a in post_disc.reset}
        if thr is not None and post_disc.refractory is not None and not post_disc.refractory_integrates
        else set()
    )
    all_eps = list(eps.values())
    propagate = []
    for x in n_states:
        a = post_disc.update_for(x)
        u = _substitute_temps(post_disc, a.expr, {}) if a is not None else sym(x)
        check_differentiable(u, [*state_syms, p, *d_derived], where, f"update of '{x}'")
        d = sum((sympy.diff(u, y) * eps[y.name] for y in state_syms), sympy.S.Zero) + _chain(u, p, d_derived)
        if x in held:
            d = REFRACTORY * eps[x] + (1 - REFRACTORY) * d
        propagate.append(Assign(eps[x].name, "=", tidy(d, all_eps)))
    trace, jump = None, []
    if thr is not None:
        check_differentiable(thr.theta, [p, *d_derived], where, "spike condition")
        d_theta = sum((sympy.diff(thr.theta, y) * eps[y.name] for y in state_syms), sympy.S.Zero)
        d_theta += _chain(thr.theta, p, d_derived)
        trace = tidy(PSI * d_theta, all_eps)
        jump = _jump(post_disc, n_states, eps, thr, d_theta, keep_reset_path, where, p, d_derived)
    eligibilities = tuple(Eligibility(e.name, x, "neuron") for x, e in eps.items())
    return Derivation(
        eligibilities,
        tuple(propagate),
        tuple(jump),
        trace,
        eps_of=eps,
        params=tuple((q, "neuron", q) for q in post.params),
    )


def scopes(derivation: Derivation, pre_safe: set[sympy.Symbol]) -> tuple[Eligibility, ...]:
    """Mark eligibilities whose updates read only pre-side values (and each other) as scope "pre"."""
    rhs = {a.target: a.expr for a in derivation.propagate}
    jumped = {a.target for a in derivation.jump}
    pre = {e.name for e in derivation.eligibilities if e.name not in jumped}
    changed = True
    while changed:
        changed = False
        for name in sorted(pre):
            allowed = pre_safe | {sym(n) for n in pre} | {Z_PRE}
            if not rhs[name].free_symbols <= allowed:
                pre.discard(name)
                changed = True
    return tuple(
        Eligibility(e.name, e.state, "pre" if e.name in pre else e.scope) for e in derivation.eligibilities
    )


def derive_synapse_param(
    param: str,
    proj: str,
    target: str,
    post: Model,
    post_disc: DiscreteModel,
    syn: Model,
    syn_disc: DiscreteModel,
    where: Where,
    thr: Threshold | None,
    keep_reset_path: bool,
) -> Derivation:
    """Eligibility of the post neuron's states and of the synapse's own (per post neuron, the state
    of projection `proj`) with respect to a param p of the synapse, under its coupled name.

    p reaches the neuron only through the synapse: its update `s' = U_s(s⁺)` and its output
    `I = out(s⁺)` (`s⁺` after this step's delivery, which adds to s without reading p, so
    `dε_s⁺ = ε_s`). So `ε_s ← ∂U_s/∂s ε_s + ∂U_s/∂p`, `dI = ∂out/∂s ε_s + ∂out/∂p`, and the
    neuron's states take dI as a weight's eligibility takes dI/dW (`_neuron_propagate`). Trace and
    jump are a weight's: θ and the reset read the neuron's states only, not p (presynaptic spikes
    are inputs here, as in e-prop's weights: a recurrent path through z is left out)."""
    rename = _synapse_symbols(syn, syn_disc, proj)
    p = sym(param)
    d_derived = _derived_chain(syn_disc, p)
    symbol = names.coupled(param, proj)
    n_states = list(post.states)
    s_states = [] if syn_disc.impulse else list(syn.states)
    eps = {x: sym(names.param_eligibility(symbol, x)) for x in n_states}
    for s in s_states:
        eps[names.coupled(s, proj)] = sym(names.param_eligibility(symbol, names.coupled(s, proj)))
    syn_syms = [sym(s) for s in syn.states]
    after = {s: (0 if syn_disc.impulse else s) for s in syn_syms}
    for a in syn_disc.on_pre:
        after[sym(a.target)] = a.as_value(sym(a.target)).xreplace(after)
    for s, value in after.items():  # the frontend holds on_pre additive in w and checks.py keeps p out
        added = sympy.expand(value - (0 if syn_disc.impulse else s))
        if added.free_symbols & {*syn_syms, p, *d_derived}:
            raise AssertionError(f"e-prop: on_pre of '{syn.name}' does not only add to '{s}': {value}")
    d_after = {s: (sympy.S.Zero if syn_disc.impulse else eps[names.coupled(s.name, proj)]) for s in syn_syms}
    output = syn_disc.output if syn_disc.output is not None else (sym(syn.output) if syn.output else None)
    d_input = sympy.S.Zero
    if output is not None:
        check_differentiable(output, [*syn_syms, p, *d_derived], where, "synapse output")
        d_input = sum((sympy.diff(output, s) * d_after[s] for s in syn_syms), sympy.S.Zero)
        d_input += _chain(output, p, d_derived)
    propagate = _neuron_propagate(post_disc, n_states, eps, target, d_input.xreplace(rename), where)
    propagate += _synapse_propagate(syn_disc, s_states, eps, proj, d_after, rename, where, (p, d_derived))
    all_eps = list(eps.values())
    propagate = [Assign(a.target, "=", tidy(a.expr, all_eps)) for a in propagate]
    trace, jump = _trace_and_jump(post_disc, n_states, eps, thr, keep_reset_path, where)
    eligibilities = tuple(Eligibility(e.name, x, "neuron") for x, e in eps.items())
    derived = tuple((names.coupled(n, proj), e.xreplace(rename)) for n, e in syn_disc.derived)
    return Derivation(eligibilities, tuple(propagate), tuple(jump), trace, eps, derived=derived)
