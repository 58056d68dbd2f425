"""∂L/∂p of trainable params under EventProp, derived from the model's own equations (DESIGN.md §4).

With λ = ∂L/∂x and ẋ = f(x, p) between spikes, a change δp moves the trajectory by δẋ = f_x δx +
f_p δp, so (with −λ̇ = f_xᵀλ + l_x) d(λ·δx)/dt = −l_x δx + λ·f_p δp between events: p contributes
`∫ λ·∂f/∂p dt`. At a spike t_s (θ(x⁻, p) = 0, x⁺ = j(x⁻, p)), δp moves the spike time by
δt_s = −∂θ/∂p δp / (∇θ·f⁻) and the reset by ∂j/∂p δp; with the bracket of the λ jump,
B = λ⁺·(f⁺ − J f⁻) − ∂l_p/∂t_s − D, the spike adds `λ⁺·∂j/∂p + ∂θ/∂p · B / (∇θ·f⁻)` (the λ jump's
derivation with δx⁻ replaced by δp). The division uses the same floored crossing rate as the
executed jump. A synapse param enters through its synapse's ODE in the coupled system of the post
population (its symbol `tau__x_to_h`), and the post population's adjoints carry it.
"""

from __future__ import annotations

import sympy
from snnc.ir import names
from snnc.ir.model import Network, Population
from snnc.ir.symbols import is_zero, sym
from snnc.ir.training import ParamGradient

from . import adjoint as adj


def trainable_symbols(network: Network, pop: Population) -> list[tuple[str, str, str, str]]:
    """(key, owner, param, symbol) of every trainable param whose gradient `pop`'s adjoints carry:
    the population's own, and its incoming projections' synapse params."""
    out = [(names.param_key(p, pop.name), pop.name, p, p) for p in pop.trainable]
    for proj in network.projections_to(pop.name):
        out += [
            (names.param_key(p, proj.name), proj.name, p, names.coupled(p, proj.name))
            for p in proj.synapse_trainable
        ]
    return out


def _inline_derived(expr: sympy.Expr, c: adj.Coupled, network: Network) -> sympy.Expr:
    """`expr` with the models' derived params written out, so ∂/∂p sees through them."""
    subs = {sym(n): d.expr for n, d in c.neuron.derived.items()}
    for proj in network.projections_to(c.population):
        syn = network.models[proj.synapse]
        ren = {sym(n): sym(names.coupled(n, proj.name)) for n in [*syn.params, *syn.derived, *syn.states]}
        subs |= {
            sym(names.coupled(n, proj.name)): sympy.sympify(d.expr).xreplace(ren)
            for n, d in syn.derived.items()
        }
    for _ in range(len(subs) + 1):  # derived params may use earlier ones
        new = sympy.sympify(expr).xreplace(subs)
        if new == expr:
            break
        expr = new
    return expr


def param_gradients(
    network: Network,
    pop: Population,
    c: adj.Coupled,
    theta: sympy.Expr | None,
    on_threshold: dict[sympy.Symbol, sympy.Expr],
    rate: sympy.Expr | None,
    dlp: sympy.Expr,
    D: sympy.Expr,
) -> list[ParamGradient]:
    """One `ParamGradient` per trainable param `pop`'s adjoints carry (see the module docstring)."""
    out = []
    f = sympy.Matrix([_inline_derived(e, c, network) for e in c.f])
    for key, owner, param, symbol in trainable_symbols(network, pop):
        p = sym(symbol)
        continuous = sympy.expand(
            sum((adj.lam(s) * sympy.diff(f[i], p) for i, s in enumerate(c.states)), sympy.S.Zero)
        )
        trajectory = tuple(s for s in c.states if sym(s) in continuous.free_symbols)
        jump = None
        if theta is not None:
            jump = _spike_term(c, network, theta, p, dlp, D, rate).xreplace(on_threshold)
            jump = None if is_zero(jump) else jump
        out.append(ParamGradient(key, pop.name, owner, param, symbol, continuous, jump, trajectory))
    return out


def _spike_term(
    c: adj.Coupled, network: Network, theta: sympy.Expr, p: sympy.Symbol, dlp: sympy.Expr, D: sympy.Expr, rate
) -> sympy.Expr:
    """λ⁺·∂j/∂p + ∂θ/∂p · [λ⁺·(f⁺ − J f⁻) − ∂l_p/∂t_s − D] / rate (rate: the floored ∇θ·f⁻)."""
    x = c.x
    jmap = adj.reset_map(c.neuron)
    jvec = sympy.Matrix([c.close(jmap.get(s, s)) for s in x])
    J = jvec.jacobian(x)
    f_minus = sympy.Matrix(c.f_open)
    f_plus = f_minus.xreplace({s: jmap[s] for s in jmap})
    lp = c.lams
    bracket = (lp.T * (f_plus - J * f_minus))[0] - dlp - D
    dj = sympy.Matrix([_inline_derived(e, c, network) for e in jvec]).diff(p)
    dtheta = sympy.diff(_inline_derived(c.close(theta), c, network), p)
    return sympy.expand((lp.T * dj)[0]) + dtheta * bracket / rate
