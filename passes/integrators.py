"""The integrator registry: ways to turn a model's ODEs into one time step, in order of preference.

Modelled on brian2's state updaters: each integrator either returns the per-step update or raises
`Unsupported` naming the term that defeats it, so `discretise` can print why the preferred method
was refused. `exact` (matrix exponential, in `passes/exact.py`) comes first, then exponential Euler,
then forward Euler with sub-steps, which always applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import sympy
from snnc.ir.model import Assign, Model
from snnc.ir.symbols import RESERVED, dt, sym, t
from sympy.codegen.cfunctions import expm1

Expr = sympy.Expr

#: diagnostic code for an integrator request the model cannot satisfy
METHOD_CODE = "E-METHOD"


class Unsupported(Exception):
    """Raised by an integrator that cannot handle a system; the message names the offending term."""

    def __init__(self, method: str, why: str):
        super().__init__(why)
        self.method = method
        self.why = why


@dataclass(frozen=True)
class OdeSystem:
    """A model's ODEs with every symbol classified, as the integrators need them."""

    model: Model
    states: tuple[str, ...]  # states that have an ODE, in ODE order
    rhs: dict[str, Expr]
    constants: frozenset[sympy.Symbol]  # params, the model's derived params, dt
    held: frozenset[sympy.Symbol]  # inputs and states without an ODE: constant over one step

    @classmethod
    def of(cls, model: Model) -> OdeSystem:
        consts = {sym(n) for n in model.params} | {sym(n) for n in model.derived} | {dt}
        ode_states = tuple(o.state for o in model.odes)
        held = {sym(n) for n in model.inputs} | {sym(n) for n in model.states if n not in ode_states}
        return cls(
            model, ode_states, {o.state: o.rhs for o in model.odes}, frozenset(consts), frozenset(held)
        )

    @property
    def state_symbols(self) -> list[sympy.Symbol]:
        return [sym(s) for s in self.states]

    def is_constant(self, expr: Expr) -> bool:
        """True if `expr` depends only on params, derived params and dt (loop invariant)."""
        return expr.free_symbols <= self.constants


@dataclass
class Integration:
    """What an integrator produces for one model."""

    method: str
    reason: str
    derived: list[tuple[str, Expr]] = field(default_factory=list)
    temps: list[tuple[str, Expr]] = field(default_factory=list)
    update: list[Assign] = field(default_factory=list)
    output: Expr | None = None  # set by integrators that know the step-average of the output state
    sub_steps: int = 1


class Integrator(Protocol):
    name: str

    def integrate(self, system: OdeSystem, names: Names, sub_steps: int = 1) -> Integration:
        """Return the per-step update or raise `Unsupported` naming the term that defeats it."""
        ...


class Names:
    """Hands out fresh, readable names that clash with nothing the model declares."""

    def __init__(self, model: Model):
        self.used: set[str] = (
            set(model.params) | set(model.derived) | set(model.states) | set(model.inputs) | set(RESERVED)
        )

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.used:
            name = f"{base}_{k}"
            k += 1
        self.used.add(name)
        return name


class Hoister:
    """Turns loop-invariant coefficients into named derived params (`P_v_v = exp(-dt/tau_mem)`).

    Numbers and single symbols stay inline; an expression already hoisted is reused by name.
    Earlier derived expressions are substituted into later ones so `1 - exp(-dt/tau)` reads
    `1 - P_v_v`.
    """

    def __init__(self, names: Names):
        self.names = names
        self.derived: list[tuple[str, Expr]] = []
        self._by_expr: dict[Expr, sympy.Symbol] = {}

    def __call__(self, base: str, expr: Expr) -> Expr:
        if expr.is_Number or expr.is_Symbol or (-expr).is_Symbol:
            return expr
        if expr in self._by_expr:
            return self._by_expr[expr]
        if -expr in self._by_expr:
            return -self._by_expr[-expr]
        reused = expr.xreplace(dict(self._by_expr))
        name = self.names.fresh(base)
        self.derived.append((name, reused))
        self._by_expr[expr] = sym(name)
        return sym(name)


def term_with(expr: Expr, symbol: sympy.Symbol) -> Expr:
    """The additive term of `expr` that contains `symbol` (for messages that name the culprit)."""
    for term in sympy.Add.make_args(sympy.expand(expr)):
        if term.has(symbol):
            return term
    return expr


def phi(a: Expr) -> Expr:
    """(exp(a*dt) - 1)/a, with its a -> 0 limit dt guarded unless a is known to be non-zero."""
    if a == 0:
        return dt
    value = (sympy.exp(a * dt) - 1) / a
    if a.is_zero is False:
        return value
    return sympy.Piecewise((dt, sympy.Eq(a, 0)), (value, True))


# --------------------------------------------------------------------------------------------------
# exponential Euler: x' = a*x + b per state, a and b may depend on other states and inputs
# --------------------------------------------------------------------------------------------------


class ExponentialEuler:
    """Each state's ODE is linear in that state: `x += (exp(a dt) - 1)/a * (a x + b)`.

    Exact when a and b are constant over the step; brian2 calls it `exponential_euler`.
    """

    name = "exponential_euler"

    def integrate(self, system: OdeSystem, names: Names, sub_steps: int = 1) -> Integration:
        split: dict[str, tuple[Expr, Expr]] = {}
        for s in system.states:
            x, rhs = sym(s), system.rhs[s]
            a = sympy.diff(rhs, x)
            if a.has(x):
                raise Unsupported(self.name, f"d{s}/dt is not linear in {s}: term `{term_with(rhs, x)}`")
            split[s] = (a, rhs.subs(x, 0))
        hoist = Hoister(names)
        temps: list[tuple[str, Expr]] = []
        update: list[Assign] = []
        for s, (a, b) in split.items():
            x = sym(s)
            if a == 0:
                update.append(Assign(s, "=", x + dt * b))
                continue
            if system.is_constant(a):
                decay, gain = hoist(f"P_{s}_{s}", sympy.exp(a * dt)), hoist(f"F_{s}", phi(a))
            else:
                a_sym = a
                if not (a.is_Symbol or a.is_Number):
                    a_name = names.fresh(f"_a_{s}")
                    temps.append((a_name, a))
                    a_sym = sym(a_name)
                decay = sympy.exp(a_sym * dt)
                gain_name = names.fresh(f"_phi_{s}")
                guarded = sympy.Piecewise((dt, sympy.Eq(a_sym, 0)), (expm1(a_sym * dt) / a_sym, True))
                temps.append((gain_name, guarded))
                gain = sym(gain_name)
            update.append(Assign(s, "=", decay * x + gain * b))
        return Integration(
            self.name,
            "each ODE is linear in its own state (x' = a*x + b): exponential Euler",
            hoist.derived,
            temps,
            update,
        )


# --------------------------------------------------------------------------------------------------
# forward Euler with sub-steps: always applies
# --------------------------------------------------------------------------------------------------


class Euler:
    """Forward Euler, `sub_steps` steps of dt/sub_steps per time step; inputs held over the step."""

    name = "euler"

    def integrate(self, system: OdeSystem, names: Names, sub_steps: int = 1) -> Integration:
        n = max(1, int(sub_steps))
        h = dt / n
        current: dict[sympy.Symbol, Expr] = {sym(s): sym(s) for s in system.states}
        temps: list[tuple[str, Expr]] = []
        for k in range(n):
            mapping = dict(current)
            if k:
                mapping[t] = t + k * h
            new = {sym(s): current[sym(s)] + h * system.rhs[s].xreplace(mapping) for s in system.states}
            if k == n - 1:
                current = new
                break
            for s in system.states:
                name = names.fresh(f"_{s}_{k + 1}")
                temps.append((name, new[sym(s)]))
                current[sym(s)] = sym(name)
        update = [Assign(s, "=", current[sym(s)]) for s in system.states]
        steps = f" with {n} sub-steps" if n > 1 else ""
        return Integration(self.name, f"forward Euler{steps}", [], temps, update, sub_steps=n)


#: integrators in order of preference; `exact` registers itself first (see `register`)
INTEGRATORS: dict[str, Integrator] = {}


def register(integrator: Integrator, *, first: bool = False) -> None:
    """Add an integrator; `first=True` puts it ahead of the others in the preference order."""
    INTEGRATORS.pop(integrator.name, None)
    rest = dict(INTEGRATORS) if first else {}
    if first:
        INTEGRATORS.clear()
    INTEGRATORS[integrator.name] = integrator
    INTEGRATORS.update(rest)


def preference() -> list[Integrator]:
    """Integrators in the order `discretise` tries them."""
    from snnc.passes import exact  # noqa: F401  (registers `exact` first)

    return list(INTEGRATORS.values())


register(ExponentialEuler())
register(Euler())

__all__ = [
    "INTEGRATORS",
    "METHOD_CODE",
    "Euler",
    "ExponentialEuler",
    "Hoister",
    "Integration",
    "Integrator",
    "Names",
    "OdeSystem",
    "Unsupported",
    "phi",
    "preference",
    "register",
    "term_with",
]
