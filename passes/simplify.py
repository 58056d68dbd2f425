"""The `simplify` pass: make the per-step code cheap without changing what it computes.

Per discrete model, in this order: constant folding (numeric subexpressions evaluated), loop-invariant
hoisting (subexpressions of only params, derived params and dt move into derived params computed
once, `_inv0`...), common subexpressions of the step (`sympy.cse` into temps `_cse0`...), and removal
of derived params nothing uses; `needs_params` then lists the params the step still reads. States
are never removed: users may record any state. The gradient payload (`network.training`) is constant
folded statement by statement; while it is present no derived param is removed, since it may refer
to them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import sympy
from snnc.ir.discrete import DiscreteModel
from snnc.ir.model import Assign, Model, Network
from snnc.ir.symbols import RESERVED, dt, sym

Expr = sympy.Expr


def simplify(network: Network) -> Network:
    """Simplify every discrete model; stage becomes "optimised"."""
    keep_derived = network.training is not None
    discrete = {
        name: simplify_model(network.models[name], dm, keep_derived=keep_derived)
        if name in network.models
        else dm
        for name, dm in network.discrete.items()
    }
    training = network.training.map_expressions(fold) if network.training is not None else None
    return dataclasses.replace(network, stage="optimised", discrete=discrete, training=training)


def simplify_model(model: Model, dm: DiscreteModel, *, keep_derived: bool = False) -> DiscreteModel:
    used_names = (
        set(model.params)
        | set(model.states)
        | set(model.inputs)
        | set(RESERVED)
        | {n for n, _ in dm.derived}
        | {n for n, _ in dm.temps}
    )
    fresh = _fresh_names(used_names)
    invariant = {sym(n) for n in model.params} | {sym(n) for n, _ in dm.derived} | {dt}
    hoister = _InvariantHoister(invariant, lambda: next(fresh("_inv")))

    def step(e: Expr) -> Expr:
        return hoister(fold(e))

    temps = [(n, step(e)) for n, e in dm.temps]
    update = [dataclasses.replace(a, expr=step(a.expr)) for a in dm.update]
    temps, update = _cse(temps, update, fresh("_cse"))
    rest = dict(
        spike=step(dm.spike) if dm.spike is not None else None,
        reset=tuple(dataclasses.replace(a, expr=step(a.expr)) for a in dm.reset),
        refractory=step(dm.refractory) if dm.refractory is not None else None,
        on_pre=tuple(dataclasses.replace(a, expr=fold(a.expr)) for a in dm.on_pre),
        output=step(dm.output) if dm.output is not None else None,
    )
    derived = tuple((n, fold(e)) for n, e in dm.derived) + tuple(hoister.derived)  # after all `step`s
    new = dataclasses.replace(dm, derived=derived, temps=tuple(temps), update=tuple(update), **rest)
    if not keep_derived:
        new = dataclasses.replace(new, derived=_live_derived(new))
    return dataclasses.replace(new, needs_params=_needed_params(model, new))


# --------------------------------------------------------------------------------------------------
# constant folding
# --------------------------------------------------------------------------------------------------


def fold(e: sympy.Basic) -> sympy.Basic:
    """Evaluate numeric subexpressions (`exp(-1)`, `sqrt(2)`) to floats; symbols stay symbolic."""

    def numeric(x: sympy.Basic) -> bool:
        if isinstance(x, sympy.NumberSymbol):  # E, pi
            return True
        return isinstance(x, sympy.Expr) and not x.is_Atom and not x.free_symbols and x.is_finite is not False

    return e.replace(numeric, lambda x: x.evalf())


# --------------------------------------------------------------------------------------------------
# loop-invariant hoisting
# --------------------------------------------------------------------------------------------------


def _trivial(e: Expr) -> bool:
    """Not worth a name: an atom, or a number times an atom (`-dt`, `2*tau`)."""
    if e.is_Atom:
        return True
    if e.is_Mul and len(e.args) == 2 and e.args[0].is_Number and e.args[1].is_Atom:
        return True
    return False


class _InvariantHoister:
    """Replaces maximal subexpressions over params/derived/dt by derived params (reused if equal)."""

    def __init__(self, invariant: set[sympy.Symbol], new_name: Callable[[], str]):
        self.invariant = invariant
        self.new_name = new_name
        self.derived: list[tuple[str, Expr]] = []
        self._names: dict[Expr, sympy.Symbol] = {}

    def is_invariant(self, e: sympy.Basic) -> bool:
        return isinstance(e, sympy.Expr) and e.free_symbols <= self.invariant

    def name(self, e: Expr) -> Expr:
        if _trivial(e) or (-e).is_Atom:
            return e
        if e not in self._names:
            symbol = sym(self.new_name())
            self.derived.append((str(symbol), e))
            self._names[e] = symbol
        return self._names[e]

    def __call__(self, e: sympy.Basic) -> sympy.Basic:
        if self.is_invariant(e):
            return self.name(e)
        if e.is_Atom:
            return e
        if isinstance(e, (sympy.Add, sympy.Mul)):
            inv = [a for a in e.args if self.is_invariant(a)]
            var = [self(a) for a in e.args if not self.is_invariant(a)]
            if len(inv) > 1:
                inv = [self.name(e.func(*inv))]
            else:
                inv = [self.name(a) for a in inv]
            return e.func(*inv, *var)
        return e.func(*[self(a) for a in e.args])


# --------------------------------------------------------------------------------------------------
# common subexpressions
# --------------------------------------------------------------------------------------------------


def _fresh_names(used: set[str]) -> Callable[[str], Iterator[str]]:
    counters: dict[str, Iterator[str]] = {}

    def fresh(prefix: str) -> Iterator[str]:
        if prefix not in counters:

            def gen() -> Iterator[str]:
                k = 0
                while True:
                    name = f"{prefix}{k}"
                    k += 1
                    if name not in used:
                        used.add(name)
                        yield name

            counters[prefix] = gen()
        return counters[prefix]

    return fresh


def _cse(
    temps: list[tuple[str, Expr]], update: list[Assign], names: Iterator[str]
) -> tuple[list[tuple[str, Expr]], list[Assign]]:
    """sympy.cse over temps and updates; new temps are placed just before their first use."""
    exprs = [e for _, e in temps] + [a.expr for a in update]
    if not exprs:
        return temps, update
    symbols = (sym(n) for n in names)
    replacements, reduced = sympy.cse(exprs, symbols=symbols, order="none")
    # a name for `-x` or `dt/3` costs more to read than it saves: put those back inline
    trivial = {s: v for s, v in replacements if _trivial(v) or (-v).is_Atom}
    if trivial:
        replacements = [(s, v.xreplace(trivial)) for s, v in replacements if s not in trivial]
        reduced = [e.xreplace(trivial) for e in reduced]
    if not replacements:
        return temps, update
    pending = dict(replacements)
    out: list[tuple[str, Expr]] = []

    def emit_needed(e: sympy.Basic) -> None:
        for s in sorted(e.free_symbols & pending.keys(), key=str):
            if s in pending:
                value = pending.pop(s)
                emit_needed(value)
                out.append((str(s), value))

    # replacements come in dependency order; emit each before the first item that needs it
    for (name, _), e in zip(temps, reduced[: len(temps)], strict=True):
        emit_needed(e)
        out.append((name, e))
    new_update = []
    for a, e in zip(update, reduced[len(temps) :], strict=True):
        emit_needed(e)
        new_update.append(dataclasses.replace(a, expr=e))
    return out, new_update


# --------------------------------------------------------------------------------------------------
# dead derived params, params the step needs
# --------------------------------------------------------------------------------------------------


def _step_exprs(dm: DiscreteModel) -> list[sympy.Basic]:
    exprs: list[sympy.Basic] = [e for _, e in dm.temps] + [a.expr for a in dm.update]
    exprs += [a.expr for a in dm.reset] + [a.expr for a in dm.on_pre]
    exprs += [e for e in (dm.spike, dm.refractory, dm.output) if e is not None]
    return exprs


def _live_derived(dm: DiscreteModel) -> tuple[tuple[str, Expr], ...]:
    live = {str(s) for e in _step_exprs(dm) for s in e.free_symbols}
    for name, e in reversed(dm.derived):  # later derived may use earlier ones
        if name in live:
            live |= {str(s) for s in e.free_symbols}
    return tuple((n, e) for n, e in dm.derived if n in live)


def _needed_params(model: Model, dm: DiscreteModel) -> tuple[str, ...]:
    used = {str(s) for e in _step_exprs(dm) for s in e.free_symbols}
    used |= {str(s) for _, e in dm.derived for s in e.free_symbols}
    return tuple(p for p in model.params if p in used)
