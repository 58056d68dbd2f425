"""The symbolic algebra behind EventProp: coupled systems, adjoint ODEs, propagators, jumps.

Pure functions over sympy; `eventprop.py` decides what to apply where and turns failures into
diagnostics. A `Defeat` exception carries the offending term so the diagnostic can name it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from snnc.ir import names
from snnc.ir.model import Model, Network, Population, Projection, threshold_function
from snnc.ir.symbols import dt as DT
from snnc.ir.symbols import sym, w

from .exact import propagator
from .integrators import Unsupported

NON_SMOOTH = (sympy.Abs, sympy.Min, sympy.Max, sympy.Heaviside, sympy.sign, sympy.Piecewise, sympy.floor)


class Defeat(Exception):
    """The derivation cannot go on; `term` is what defeats it (shown to the user)."""

    def __init__(self, message: str, term: object = None, span=None):
        super().__init__(message)
        self.term = term
        self.span = span


def lam(state: str) -> sympy.Symbol:
    return sym(names.adjoint(state))


@dataclass
class Coupled:
    """One post neuron plus the synapse states of its incoming projections, as x' = f(x)."""

    population: str
    neuron: Model
    states: list[str]
    owners: dict[str, str]
    f_open: list[sympy.Expr]  # neuron rows keep input symbols (i_syn)
    inputs: dict[sympy.Symbol, sympy.Expr]  # input symbol -> sum of renamed synapse outputs
    jumps: dict[str, dict[str, sympy.Expr]]  # projection -> {state: per-unit-weight jump}
    params: list[tuple[str, str, str]]
    # neuron state -> its jump from this step's impulses (over the impulse synapses' coupled states)
    pulse: dict[str, sympy.Expr] = field(default_factory=dict)
    pulsed_by: tuple[str, ...] = ()  # the impulse projections `pulse` sums

    @property
    def x(self) -> list[sympy.Symbol]:
        return [sym(s) for s in self.states]

    @property
    def lams(self) -> sympy.Matrix:
        return sympy.Matrix([lam(s) for s in self.states])

    @property
    def f(self) -> sympy.Matrix:
        return sympy.Matrix([e.xreplace(self.inputs) for e in self.f_open])

    def jacobian(self) -> sympy.Matrix:
        return self.f.jacobian(self.x)

    def close(self, expr: sympy.Expr) -> sympy.Expr:
        return expr.xreplace(self.inputs)


def _synapse_rename(model: Model, proj: str) -> dict[sympy.Symbol, sympy.Symbol]:
    declared = list(model.params) + list(model.derived) + list(model.states)
    return {sym(n): sym(names.coupled(n, proj)) for n in declared}


def build_coupled(network: Network, pop: Population) -> Coupled:
    """x = (neuron states, synapse states per incoming projection); input = Σ synapse outputs."""
    neuron = network.models[pop.model]
    states = list(neuron.states)
    owners = {s: "neuron" for s in states}
    f_open: list[sympy.Expr] = []
    for s in neuron.states:
        ode = neuron.ode_for(s)
        f_open.append(sympy.sympify(ode.rhs) if ode is not None else sympy.S.Zero)
    params = [(p, "neuron", p) for p in list(neuron.params) + list(neuron.derived)]
    sums: dict[str, sympy.Expr] = {name: sympy.S.Zero for name in neuron.inputs}
    jumps: dict[str, dict[str, sympy.Expr]] = {}
    impulses: list[tuple[str, str, sympy.Expr]] = []  # (projection, target input, area per unit weight)
    for proj in network.projections_to(pop.name):
        syn = network.models[proj.synapse]
        if syn.output is None:
            raise Defeat(
                f"projection '{proj.name}' uses synapse model '{syn.name}', which has no output state; "
                "EventProp needs the state that spikes jump",
                syn.name,
                proj.span or syn.span,
            )
        ren = _synapse_rename(syn, proj.name)
        if syn.impulse:
            impulses.append((proj.name, proj.target, _impulse_area(syn, proj, ren)))
            params += [
                (names.coupled(p, proj.name), proj.name, p) for p in list(syn.params) + list(syn.derived)
            ]
            if proj.target not in sums:
                raise Defeat(
                    f"projection '{proj.name}' targets '{proj.target}', not an input of '{neuron.name}'"
                )
            continue
        for s in syn.states:
            name = names.coupled(s, proj.name)
            states.append(name)
            owners[name] = proj.name
            ode = syn.ode_for(s)
            f_open.append(sympy.sympify(ode.rhs).xreplace(ren) if ode is not None else sympy.S.Zero)
        params += [(names.coupled(p, proj.name), proj.name, p) for p in list(syn.params) + list(syn.derived)]
        if proj.target not in sums:
            raise Defeat(f"projection '{proj.name}' targets '{proj.target}', not an input of '{neuron.name}'")
        sums[proj.target] = sums[proj.target] + sym(names.coupled(syn.output, proj.name))
        jumps[proj.name] = on_pre_jump(syn, proj, ren)
    pulse: dict[str, sympy.Expr] = {}
    for proj_name, target, area in impulses:
        coeffs = _impulse_coefficients(neuron, f_open, target, proj_name)
        jumps[proj_name] = {s: sympy.expand(k * area) for s, k in coeffs.items()}
        if neuron.spikes:  # what the step's impulses of this projection add: (∂f/∂u)·dt·output
            syn = network.models[network.projections[proj_name].synapse]
            out = sym(names.coupled(syn.output, proj_name))
            for s, k in coeffs.items():
                pulse[s] = sympy.expand(pulse.get(s, sympy.S.Zero) + k * DT * out)
    inputs = {sym(k): v for k, v in sums.items()}
    pulsed_by = tuple(p for p, _, _ in impulses) if neuron.spikes else ()
    return Coupled(pop.name, neuron, states, owners, f_open, inputs, jumps, params, pulse, pulsed_by)


def _impulse_area(syn: Model, proj: Projection, ren: dict) -> sympy.Expr:
    """The area of an impulse synapse's pulse per unit weight: on_pre sets its output state to w·c,
    held for one step and cleared (ir/discrete.py), so the input carries w·c·dt: c·dt."""
    if proj.synapse_trainable:
        name = next(iter(proj.synapse_trainable))
        raise Defeat(
            f"param '{name}' of impulse synapse '{syn.name}' (projection '{proj.name}') has no EventProp "
            "gradient yet",
            name,
            proj.synapse_trainable[name].span or proj.span,
        )
    unit = on_pre_jump(syn, proj, ren)
    return unit.get(names.coupled(syn.output, proj.name), sympy.S.Zero) * DT


def _impulse_coefficients(
    neuron: Model, f_open: list[sympy.Expr], target: str, proj: str
) -> dict[str, sympy.Expr]:
    """∂f/∂u of each neuron state for an impulse into input u: in the limit of a short pulse of area
    A the states jump by (∂f/∂u)·A, which needs each neuron row affine in u with a coefficient free
    of the states and inputs (a current input, not a conductance)."""
    u = sym(target)
    out: dict[str, sympy.Expr] = {}
    for s, rhs in zip(neuron.states, f_open, strict=False):
        coeff = sympy.diff(rhs, u)
        if coeff.free_symbols & ({sym(x) for x in neuron.states} | {sym(i) for i in neuron.inputs}):
            ode = neuron.ode_for(s)
            raise Defeat(
                f"'d{s}/dt = {rhs}' multiplies input '{target}' by '{coeff}', which depends on the state: "
                f"the impulses of '{proj}' (a Delta synapse) have no jump to differentiate; use a synapse "
                "with a state (Exponential)",
                rhs,
                getattr(ode, "span", None),
            )
        if coeff != 0:
            out[s] = coeff
    if not out:
        raise Defeat(f"the impulses of '{proj}' move no state of '{neuron.name}'", proj)
    return out


def on_pre_jump(syn: Model, proj: Projection, ren: dict) -> dict[str, sympy.Expr]:
    """e per unit weight: each on_pre must add `w * c` with c free of w (additive in the weight)."""
    out: dict[str, sympy.Expr] = {}
    for a in syn.on_pre:
        cur = sym(a.target)
        delta = sympy.expand(a.as_value(cur) - cur)
        c = sympy.diff(delta, w)
        if (
            delta.xreplace({w: 0}) != 0
            or w in c.free_symbols
            or any(sym(s) in c.free_symbols for s in syn.states)
        ):
            raise Defeat(
                f"on_pre '{a.target} {a.op} {a.expr}' of synapse '{syn.name}' is not additive in the weight "
                "(it must add w times a constant)",
                a.expr,
                a.span,
            )
        out[names.coupled(a.target, proj.name)] = c.xreplace(ren)
    if not out:
        raise Defeat(f"synapse '{syn.name}' has no on_pre action, so its weight has no gradient", syn.name)
    return out


def theta_of(model: Model) -> sympy.Expr:
    """θ with `spike when` ⇔ θ >= 0 (upward crossing)."""
    cond = model.spike
    theta = threshold_function(cond)
    if theta is None:
        raise Defeat(f"spike condition '{cond}' is not a single comparison; EventProp needs θ(x) = 0", cond)
    bad = theta.atoms(*NON_SMOOTH)
    if bad:
        raise Defeat(f"spike condition uses non-differentiable '{sorted(map(str, bad))[0]}'", next(iter(bad)))
    return theta


def reset_map(model: Model) -> dict[sympy.Symbol, sympy.Expr]:
    """x⁺ = j(x⁻): the reset assignments run in order, each seeing the ones before it."""
    cur: dict[sympy.Symbol, sympy.Expr] = {sym(s): sym(s) for s in model.states}
    for a in model.reset:
        target = sym(a.target)
        expr = sympy.sympify(a.expr).xreplace(cur)
        bad = expr.atoms(*NON_SMOOTH)
        if bad:
            raise Defeat(
                f"reset '{a.target} {a.op} {a.expr}' is not differentiable (uses '{sorted(map(str, bad))[0]}')",
                a.expr,
                a.span,
            )
        cur[target] = a.__class__(a.target, a.op, expr).as_value(cur[target])
    return cur


def adjoint_rhs(c: Coupled, drive: dict[str, sympy.Expr]) -> list[sympy.Expr]:
    """-dλ/dt = (∂f/∂x)ᵀ λ + ∂l/∂x."""
    rhs = c.jacobian().T * c.lams
    return [sympy.expand(rhs[i] + drive.get(s, 0)) for i, s in enumerate(c.states)]


def is_linear(c: Coupled) -> tuple[bool, object]:
    """Linear with constant coefficients: the Jacobian is free of states, inputs and t."""
    A = c.jacobian()
    varying = set(c.x) | set(c.inputs) | {sym("t")}
    for entry in A:
        hit = entry.free_symbols & varying
        if hit or entry.atoms(sympy.DiracDelta):
            return False, entry
    return True, None


def _tidy_exp(expr: sympy.Expr) -> sympy.Expr:
    expr = sympy.expand(sympy.powsimp(sympy.expand(expr), combine="exp"))
    expr = expr.replace(lambda e: isinstance(e, sympy.exp), lambda e: sympy.exp(sympy.expand(e.args[0])))
    return sympy.expand(sympy.powsimp(sympy.expand(expr), combine="exp"))


def exact_backward(
    c: Coupled, drive_state: str | None = None
) -> tuple[sympy.Matrix, list[tuple[str, sympy.Expr]], sympy.Matrix | None]:
    """λ(t - dt) = (e^{A dt})ᵀ λ(t) + q·r: the forward propagator of `discretise`'s exact integrator,
    transposed, with each exp(-dt/τ) hoisted as `__decay__τ`. Raises `Defeat` where the exact
    integrator finds no closed form.

    With `drive_state`, also q = (1/dt)·∫₀^dt e^{Aᵀs} ds·e_state: how a readout drive spread evenly
    over the step (rate r per ms, r·dt per step) moves the adjoints, instead of arriving whole at
    the step's end (None where that has no closed form). EventProp's jumps and transmissions are
    continuous-time formulas; an integrated readout (avg_var, avg_var_exp_weight, sum_var) driving
    λ as a continuous source keeps λ_i/λ_v as those formulas assume. Added at the end of the step,
    the drive leaves λ_i behind λ_v by O(dt), which at dt = 1 ms turns the sign of transmissions
    like -λ_v/τ_m + λ_i/τ_s, small differences of large terms (benchmarks/README.md, "EventProp at
    dt = 1 ms")."""
    A = c.jacobian()
    n = len(c.states)
    try:
        P = propagator(A, c.states).T
    except Unsupported as err:
        raise Defeat(f"the adjoint system has {err.why}") from None
    q = None
    if drive_state is not None:  # e^{B dt} with B = [[Aᵀ, e], [0, 0]] holds ∫₀^dt e^{Aᵀs} ds·e
        B = sympy.zeros(n + 1, n + 1)
        B[:n, :n] = A.T
        B[c.states.index(drive_state), n] = 1
        try:
            q = propagator(B, [*c.states, "drive"])[:n, n] / DT
        except Unsupported:
            q = None
    derived: dict[sympy.Expr, sympy.Symbol] = {}
    hoisted: list[tuple[str, sympy.Expr]] = []

    def hoist(e: sympy.Expr) -> sympy.Expr:
        if e not in derived:
            arg = sympy.expand(e.args[0])
            m = sympy.Wild("m", exclude=[DT])
            match = arg.match(-DT / m)
            what = str(match[m]) if match and isinstance(match[m], sympy.Symbol) else str(len(hoisted))
            base = names.decay(what)
            derived[e] = sym(base)
            hoisted.append((base, e))
        return derived[e]

    def tidy(value: sympy.Expr, retry: bool = True) -> sympy.Expr:
        entry = value.replace(
            lambda e: isinstance(e, sympy.exp), lambda e: sympy.exp(sympy.expand(e.args[0]))
        )
        entry = sympy.cancel(
            entry.replace(lambda e: isinstance(e, sympy.exp) and DT in e.free_symbols, hoist)
        )
        if retry and DT in entry.free_symbols:  # an exp sympy did not leave as exp(-dt/tau): tidy and retry
            entry = _tidy_exp(value).replace(
                lambda e: isinstance(e, sympy.exp) and DT in e.free_symbols, hoist
            )
        return sympy.factor(sympy.cancel(entry))

    out = sympy.zeros(*P.shape)
    for i in range(P.rows):
        for j in range(P.cols):
            out[i, j] = tidy(P[i, j])
    if q is not None:
        q = sympy.Matrix([tidy(v, retry=False) for v in q])  # dt stays: (1 - e^{-dt/τ})·τ/dt
        if any(v.has(sympy.nan, sympy.zoo) for v in q):
            q = None
    return out, hoisted, q


def spike_jump(
    c: Coupled, theta: sympy.Expr, dlp: sympy.Expr, D: sympy.Expr, rate: sympy.Expr | None = None
) -> tuple[sympy.Matrix, sympy.Expr]:
    """λ⁻ = Jᵀλ⁺ + ∇θ/(∇θ·f⁻)·[λ⁺·(f⁺ − J f⁻) − ∂l_p/∂t_s − D]  (DESIGN.md §4).

    Inputs stay symbols in f (they are continuous across the reset: synapse states are not reset).
    Returns (λ⁻, ∇θ·f⁻) before the on-threshold substitution. With `rate`, that expression stands in
    for ∇θ·f⁻ in the division (the guarded jump the backends execute).
    """
    x = c.x
    jmap = reset_map(c.neuron)
    jvec = sympy.Matrix([c.close(jmap.get(s, s)) for s in x])
    J = jvec.jacobian(x)
    f_minus = sympy.Matrix(c.f_open)
    f_plus = f_minus.xreplace({s: jmap[s] for s in jmap})
    grad = sympy.Matrix([c.close(theta)]).jacobian(x).T
    denom = sympy.expand((grad.T * f_minus)[0])
    lp = c.lams
    bracket = (lp.T * (f_plus - J * f_minus))[0] - dlp - D
    lam_minus = J.T * lp + grad * (bracket / (denom if rate is None else rate))
    return lam_minus, denom


def impulse_spike(
    c: Coupled, theta: sympy.Expr, dlp: sympy.Expr, D: sympy.Expr
) -> tuple[sympy.Matrix, sympy.Expr, sympy.Expr]:
    """A spike the step's impulses cause (θ(x⁻ − Δx) < 0 ≤ θ(x⁻), Δx = `c.pulse`): snnc applies the
    whole pulse, then the reset, so the step maps x to j(x + Δx) and the spike time is the arrival's,
    whatever x was. Hence λ⁻ = Jᵀλ⁺ (no crossing rate), and the sensitivity of L to the arrival time,
    G = λ⁺·(J f(x⁻ − Δx) − f(j(x⁻))) + ∂l_p/∂t_s + D (−1 times the usual jump's bracket, with f⁻
    taken before the pulse), goes to the arriving spikes instead, each with its share w·(∇θ·e)/(∇θ·Δx).
    Returns (λ⁻, G/(∇θ·Δx), θ(x⁻ − Δx)); x⁻ is the recorded state (after the pulse, before reset)."""
    x = c.x
    jmap = reset_map(c.neuron)
    J = sympy.Matrix([c.close(jmap.get(s, s)) for s in x]).jacobian(x)
    pulse = sympy.Matrix([c.pulse.get(s, sympy.S.Zero) for s in c.states])
    before = {xi: xi - pulse[i] for i, xi in enumerate(x) if pulse[i] != 0}
    f_before = sympy.Matrix(c.f_open).xreplace(before)
    f_after = sympy.Matrix(c.f_open).xreplace({s: jmap[s] for s in jmap})
    G = (c.lams.T * (J * f_before - f_after))[0] + dlp + D
    grad = sympy.Matrix([c.close(theta)]).jacobian(x).T
    share = sympy.expand((grad.T * pulse)[0])
    return J.T * c.lams, sympy.expand(G) / share, c.close(theta).xreplace(before)


def solve_on_threshold(c: Coupled, theta: sympy.Expr) -> tuple[sympy.Symbol, sympy.Expr] | None:
    """At the spike θ(x⁻) = 0: solve for a neuron state θ is linear in (v = v_thresh for LIF)."""
    for s in c.neuron.states:
        s_ = sym(s)
        d = sympy.diff(theta, s_)
        if d != 0 and s_ not in d.free_symbols:
            return s_, sympy.solve(sympy.Eq(theta, 0), s_)[0]
    return None
