"""Lower one `neuron` or `synapse` declaration to an `ir.model.Model`, checking it on the way.

Scopes, so that every name means one thing:
- a param's value may use earlier params; a state's initial value may use params;
- a derived param may use params, earlier derived params and `dt`;
- equations (ODEs, spike condition, reset, refractory) see params, derived, states, inputs, `t`, `dt`;
- a synapse's `on_pre` also sees `w`, which takes the dimension of the state it is added to.

Param values and initial values are kept as sympy expressions over params too (`LoweredModel`), so a
population overriding `tau` also changes a param defined as `2 * tau`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from snnc.frontend import ast
from snnc.frontend import messages as M
from snnc.frontend.dims import UnknownUnit, describe, parse_unit
from snnc.frontend.exprs import UNKNOWN, Binding, ExprLowerer, Typed, same_dim
from snnc.frontend.reserved_names import check_model_names
from snnc.frontend.unparse import unparse
from snnc.ir import model as ir
from snnc.ir.diagnostics import DiagnosticBag, Span, did_you_mean
from snnc.ir.symbols import FUNCTIONS, RESERVED, TIMESTEP, WEIGHT, is_zero, sym
from snnc.ir.units import DIMENSIONLESS, TIME, UNITS, Dim

METHODS = ("exact", "exponential_euler", "euler")
GENERATORS = ("spike_source", "poisson")

_NEURON_ONLY = {
    ast.SpikeDecl: "spike when",
    ast.ResetDecl: "reset",
    ast.RefractoryDecl: "refractory",
    ast.GeneratorDecl: "generator",
}
_SYNAPSE_ONLY = {ast.OnPreDecl: "on_pre", ast.OutputDecl: "output"}
_SINGLE = (
    ast.SpikeDecl,
    ast.ResetDecl,
    ast.OnPreDecl,
    ast.OutputDecl,
    ast.RefractoryDecl,
    ast.MethodDecl,
    ast.GeneratorDecl,
)
_DECLS = (ast.ParamDecl, ast.DerivedDecl, ast.StateDecl, ast.InputDecl)
_WHAT = {ast.ParamDecl: "param", ast.DerivedDecl: "derived", ast.StateDecl: "state", ast.InputDecl: "input"}


@dataclass(frozen=True)
class LoweredModel:
    """The IR model plus what populations need to apply overrides."""

    model: ir.Model
    param_exprs: dict[str, sympy.Expr] = field(default_factory=dict)  # over earlier params
    init_exprs: dict[str, sympy.Expr] = field(default_factory=dict)  # over params


def evaluate(expr: sympy.Expr, params: dict[str, float]) -> float | None:
    """The value of a param-only expression for given param values (None if it is not constant)."""
    value = expr.subs({sym(k): v for k, v in params.items()})
    if value.free_symbols:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class _ModelLowerer:
    def __init__(self, decl: ast.ModelDecl, bag: DiagnosticBag, source: str):
        self.decl, self.bag, self.source = decl, bag, source
        self.kind = decl.kind
        self.params: dict[str, ir.Param] = {}
        self.param_exprs: dict[str, sympy.Expr] = {}
        self.derived: dict[str, ir.Derived] = {}
        self.states: dict[str, ir.State] = {}
        self.init_exprs: dict[str, sympy.Expr] = {}
        self.inputs: dict[str, ir.Input] = {}
        self.broken: set[str] = set()  # declarations with a reported error: their uses stay silent

    # ---------------------------------------------------------------------------------------------
    def run(self) -> LoweredModel:
        body = self.decl.body
        self.check_placement(body)
        check_model_names(self.decl, self.bag)
        self.check_names(body)
        for s in body:
            {
                ast.ParamDecl: self.param,
                ast.DerivedDecl: self.derived_param,
                ast.StateDecl: self.state,
                ast.InputDecl: self.input,
            }.get(type(s), lambda _s: None)(s)
        fields = self.equations(body)
        model = ir.Model(
            name=self.decl.name,
            kind=self.kind,
            params=self.params,
            derived=self.derived,
            states=self.states,
            inputs=self.inputs,
            source=self.source,
            span=self.decl.span,
            **fields,
        )
        if model.is_synapse:
            self.check_synapse(model)
        return LoweredModel(model, self.param_exprs, self.init_exprs)

    # ---------------------------------------------------------------------------------------------
    def check_placement(self, body: tuple[ast.ModelStmt, ...]) -> None:
        """Statements of the other model kind, and singular statements written twice."""
        seen: dict[type, Span] = {}
        wrong = _SYNAPSE_ONLY if self.kind == "neuron" else _NEURON_ONLY
        for s in body:
            if type(s) in wrong:
                self.bag.error(
                    M.MODEL_STMT,
                    f"'{wrong[type(s)]}' is not allowed in a {self.kind} model",
                    s.span,
                    f"'{wrong[type(s)]}' belongs in a {'synapse' if self.kind == 'neuron' else 'neuron'} model",
                )
            if isinstance(s, _SINGLE):
                if type(s) in seen:
                    self.bag.error(
                        M.DUPLICATE,
                        f"a {self.kind} model may have only one '{_stmt_word(s)}'",
                        s.span,
                        f"the first one is at {seen[type(s)]}",
                    )
                else:
                    seen[type(s)] = s.span

    def check_names(self, body: tuple[ast.ModelStmt, ...]) -> None:
        """Duplicates among params/derived/states/inputs, reserved names, shadowed functions."""
        first: dict[str, ast.ModelStmt] = {}
        for s in body:
            if not isinstance(s, _DECLS):
                continue
            what = _WHAT[type(s)]
            if s.name in RESERVED:
                self.bag.error(
                    M.RESERVED,
                    f"'{s.name}' is reserved and cannot be declared as a {what}",
                    s.span,
                    "'t' is the time, 'dt' the time step and 'w' the connection weight; choose another name",
                )
            elif s.name in FUNCTIONS:
                self.bag.error(
                    M.SHADOW,
                    f"{what} '{s.name}' would hide the function {s.name}()",
                    s.span,
                    f"rename it, e.g. '{s.name}_{what}' or 'my_{s.name}'",
                )
            if s.name in first:
                prev = first[s.name]
                self.bag.error(
                    M.DUPLICATE,
                    f"'{s.name}' is already declared in {self.kind} {self.decl.name}",
                    s.span,
                    f"the first declaration ({_WHAT[type(prev)]}) is at {prev.span}",
                )
            else:
                first[s.name] = s

    # ---------------------------------------------------------------------------------------------
    def _const_scope(self, *, with_dt: bool = False, derived: bool = False) -> dict[str, Binding]:
        scope = {n: Binding(sym(n), p.dim) for n, p in self.params.items()}
        if derived:
            scope.update({n: Binding(sym(n), d.dim) for n, d in self.derived.items()})
        if with_dt:
            scope[TIMESTEP] = Binding(sym(TIMESTEP), TIME)
        scope.update({n: Binding(sym(n), None) for n in self.broken})
        return scope

    def _later(self, reason: str) -> dict[str, str]:
        names = [s.name for s in self.decl.body if isinstance(s, _DECLS)] + list(RESERVED)
        return {n: reason for n in names}

    def param(self, s: ast.ParamDecl) -> None:
        if s.name in self.params or s.name in RESERVED:
            return
        low = ExprLowerer(self.bag, self._const_scope(), self._later("a param may only use earlier params"))
        r = low.number_expr(s.value)
        values = {n: p.value for n, p in self.params.items()}
        value = None if r is UNKNOWN else evaluate(r.expr, values)
        if value is None:
            if r is not UNKNOWN:
                self.bag.error(M.TYPE, f"param '{s.name}' must have a constant value", s.value.span)
            self.broken.add(s.name)
            return
        self.param_exprs[s.name] = r.expr
        integer = isinstance(s.value, ast.Number) and s.value.is_int and s.value.unit is None
        self.params[s.name] = ir.Param(s.name, value, r.dim or DIMENSIONLESS, s.span, integer=integer)

    def derived_param(self, s: ast.DerivedDecl) -> None:
        if s.name in self.derived or s.name in self.params or s.name in RESERVED:
            return
        scope = self._const_scope(with_dt=True, derived=True)
        reason = "a derived param may use params, earlier derived params and dt"
        r = ExprLowerer(self.bag, scope, self._later(reason)).number_expr(s.value)
        if r is not UNKNOWN:
            self.derived[s.name] = ir.Derived(s.name, r.expr, r.dim or DIMENSIONLESS, s.span)
        else:
            self.broken.add(s.name)

    def state(self, s: ast.StateDecl) -> None:
        if s.name in self.states or s.name in self.params or s.name in self.derived or s.name in RESERVED:
            return
        if s.value is None:
            self.bag.error(
                M.STATE_INIT,
                f"state '{s.name}' has no initial value",
                s.span,
                f"write 'state {s.name} = 0.0' (with a unit if it has one)",
            )
            self.states[s.name] = ir.State(s.name, 0.0, DIMENSIONLESS, s.span)
            self.broken.add(s.name)
            return
        low = ExprLowerer(self.bag, self._const_scope(), self._later("an initial value may only use params"))
        r = low.number_expr(s.value)
        value = None if r is UNKNOWN else evaluate(r.expr, {n: p.value for n, p in self.params.items()})
        if r is not UNKNOWN and value is None:
            self.bag.error(M.TYPE, f"the initial value of '{s.name}' must be constant", s.value.span)
        if value is not None:
            self.init_exprs[s.name] = r.expr
        else:
            self.broken.add(s.name)
        self.states[s.name] = ir.State(s.name, value or 0.0, r.dim or DIMENSIONLESS, s.span)

    def input(self, s: ast.InputDecl) -> None:
        if s.name in self.inputs or s.name in self.states or s.name in self.params or s.name in RESERVED:
            return
        dim = DIMENSIONLESS
        if s.unit:
            try:
                _, dim = parse_unit(s.unit)
            except UnknownUnit as err:
                self.bag.error(
                    M.UNDEFINED_UNIT, f"unknown unit '{err.name}'", s.span, did_you_mean(err.name, UNITS)
                )
            except ValueError as err:
                self.bag.error(M.UNDEFINED_UNIT, str(err), s.span)
        self.inputs[s.name] = ir.Input(s.name, dim, s.span)

    # ---------------------------------------------------------------------------------------------
    def _eq_scope(self) -> dict[str, Binding]:
        scope = self._const_scope(with_dt=True, derived=True)
        scope.update({n: Binding(sym(n), st.dim) for n, st in self.states.items()})
        scope.update({n: Binding(sym(n), i.dim) for n, i in self.inputs.items()})
        scope.update({n: Binding(sym(n), None) for n in self.broken})
        scope["t"] = Binding(sym("t"), TIME)
        return scope

    def equations(self, body: tuple[ast.ModelStmt, ...]) -> dict:
        scope = self._eq_scope()
        where = (
            "only inside a synapse's on_pre" if self.kind == "synapse" else "only in synapse models (on_pre)"
        )
        low = ExprLowerer(self.bag, scope, {WEIGHT: f"'w' (the connection weight) exists {where}"})
        out: dict = {}
        odes: list[ir.Ode] = []
        for s in body:
            if isinstance(s, ast.OdeDecl):
                ode = self.ode(s, low, odes)
                if ode is not None:
                    odes.append(ode)
            elif isinstance(s, ast.SpikeDecl) and "spike" not in out:
                r = low.condition(s.condition)
                out["spike"] = r.expr if r.dim is not None else None
            elif isinstance(s, ast.ResetDecl) and "reset" not in out:
                out["reset"] = self.assignments(s.body, low, "reset")
            elif isinstance(s, ast.OnPreDecl) and "on_pre" not in out and self.kind == "synapse":
                out["on_pre"] = self.assignments(s.body, None, "on_pre")
            elif isinstance(s, ast.OutputDecl) and "output" not in out and self.kind == "synapse":
                self.output(s, out)
            elif isinstance(s, ast.RefractoryDecl) and "refractory" not in out:
                self.refractory(s, low, out)
            elif isinstance(s, ast.MethodDecl) and "method" not in out:
                self.method(s, out)
            elif isinstance(s, ast.GeneratorDecl) and "generator" not in out:
                if s.kind not in GENERATORS:
                    self.bag.error(
                        M.UNDEFINED,
                        f"unknown generator '{s.kind}'",
                        s.span,
                        did_you_mean(s.kind, GENERATORS) or f"generators: {', '.join(GENERATORS)}",
                    )
                else:
                    out["generator"] = s.kind
        out["odes"] = tuple(odes)
        return out

    def ode(self, s: ast.OdeDecl, low: ExprLowerer, done: list[ir.Ode]) -> ir.Ode | None:
        state = self.states.get(s.state)
        if state is None:
            kind = next(
                (_WHAT[type(d)] for d in self.decl.body if isinstance(d, _DECLS) and d.name == s.state), None
            )
            if kind is not None:
                msg = f"d{s.state}/dt: '{s.state}' is a {kind}, not a state"
                hint = f"declare it as 'state {s.state} = ...' to let it evolve"
            else:
                msg = f"d{s.state}/dt: '{s.state}' is not a declared state"
                hint = did_you_mean(s.state, self.states) or f"declare it first: 'state {s.state} = 0.0'"
            self.bag.error(M.ODE_UNDECLARED, msg, s.span, hint)
            low.lower(s.rhs)  # still report errors inside the right-hand side
            return None
        if any(o.state == s.state for o in done):
            self.bag.error(M.DUPLICATE, f"'{s.state}' already has an ODE", s.span)
            return None
        r = low.number_expr(s.rhs)
        if r is UNKNOWN:
            return None
        need = state.dim / TIME
        if s.state not in self.broken and not same_dim(r, Typed(r.expr, need)):
            self.bag.error(
                M.DIM,
                f"'{unparse(s.rhs)}' has dimension {describe(r.dim)} but d{s.state}/dt needs {describe(need)}",
                s.rhs.span,
                f"'{s.state}' has dimension {describe(state.dim)}; divide by a time constant such as '20 ms'",
            )
        return ir.Ode(s.state, r.expr, s.span)

    def assignments(
        self, body: tuple[ast.AssignStmt, ...], low: ExprLowerer | None, block: str
    ) -> tuple[ir.Assign, ...]:
        out = []
        for a in body:
            state = self.states.get(a.target)
            if state is None:
                what = next(
                    (_WHAT[type(d)] for d in self.decl.body if isinstance(d, _DECLS) and d.name == a.target),
                    None,
                )
                if what is not None:
                    self.bag.error(
                        M.TYPE, f"{block}: cannot assign to {what} '{a.target}'; only states change", a.span
                    )
                else:
                    self.bag.error(
                        M.UNDEFINED,
                        f"{block}: '{a.target}' is not a state of {self.decl.name}",
                        a.span,
                        did_you_mean(a.target, self.states),
                    )
                continue
            lw = low
            if lw is None:  # on_pre: `w` has the dimension of the state it is added to
                scope = dict(self._eq_scope())
                scope[WEIGHT] = Binding(sym(WEIGHT), state.dim)
                lw = ExprLowerer(self.bag, scope)
            r = lw.number_expr(a.value)
            if r is UNKNOWN:
                continue
            need = state.dim if a.op in ("=", "+=", "-=") else DIMENSIONLESS
            if a.target not in self.broken and not same_dim(r, Typed(r.expr, need)):
                self.bag.error(
                    M.DIM,
                    f"{block}: '{a.target} {a.op} {unparse(a.value)}' assigns {describe(r.dim)} "
                    f"but '{a.target}' needs {describe(need)}",
                    a.value.span,
                )
                continue
            out.append(ir.Assign(a.target, a.op, r.expr, a.span))
        return tuple(out)

    def output(self, s: ast.OutputDecl, out: dict) -> None:
        if s.name not in self.states:
            self.bag.error(
                M.UNDEFINED,
                f"output '{s.name}' is not a state of synapse {self.decl.name}",
                s.span,
                did_you_mean(s.name, self.states),
            )
            return
        out["output"] = s.name
        out["impulse"] = s.impulse

    def refractory(self, s: ast.RefractoryDecl, low: ExprLowerer, out: dict) -> None:
        r = low.number_expr(s.period)
        if r is UNKNOWN:
            return
        if not same_dim(r, Typed(r.expr, TIME)):
            self.bag.error(
                M.DIM,
                f"the refractory period '{unparse(s.period)}' has dimension {describe(r.dim)}, "
                "but it must be a time",
                s.period.span,
                "write it with a unit, e.g. 'refractory = 2 ms'",
            )
            return
        bad = {str(x) for x in r.expr.free_symbols} - set(self.params) - set(self.derived) - {TIMESTEP}
        if bad:
            self.bag.error(
                M.TYPE,
                f"the refractory period may only use params, not {', '.join(sorted(bad))}",
                s.period.span,
            )
            return
        out["refractory"] = r.expr
        out["refractory_integrates"] = s.integrates

    def method(self, s: ast.MethodDecl, out: dict) -> None:
        if s.method not in METHODS:
            self.bag.error(
                M.UNDEFINED,
                f"unknown integration method '{s.method}'",
                s.span,
                did_you_mean(s.method, METHODS) or f"methods: {', '.join(METHODS)}",
            )
            return
        out["method"] = s.method
        for kw in s.kwargs:
            if kw.name != "sub_steps" or s.method != "euler":
                self.bag.error(
                    M.UNKNOWN_PARAM,
                    f"method {s.method} has no option '{kw.name}'",
                    kw.span,
                    "only 'euler' takes an option: euler(sub_steps = N)",
                )
                continue
            v = kw.value
            if not (
                isinstance(v, ast.Number) and v.unit is None and float(v.value).is_integer() and v.value >= 1
            ):
                self.bag.error(M.VALUE, "sub_steps must be a whole number of at least 1", kw.value.span)
                continue
            out["sub_steps"] = int(v.value)

    # ---------------------------------------------------------------------------------------------
    def check_synapse(self, model: ir.Model) -> None:
        """A synapse needs an output state; its on_pre must be additive in `w`."""
        if model.output is None and not any(isinstance(s, ast.OutputDecl) for s in self.decl.body):
            self.bag.error(
                M.SYNAPSE,
                f"synapse {model.name} has no output",
                self.decl.name_span or self.decl.span,
                "add 'output NAME' naming the state summed into the target's input",
            )
        w = sym(WEIGHT)
        uses_w = False
        state_syms = {sym(n) for n in model.states}
        for a in model.on_pre:
            current = sym(a.target)
            delta = sympy.expand(a.as_value(current) - current)
            uses_w = uses_w or w in delta.free_symbols
            coeff = sympy.diff(delta, w)
            if not is_zero(delta.subs(w, 0)) or w in coeff.free_symbols or coeff.free_symbols & state_syms:
                self.bag.error(
                    M.SYNAPSE,
                    f"on_pre: '{a.target} {a.op} ...' is not additive in the weight w",
                    a.span,
                    "each spike must add a multiple of w that does not depend on the state, e.g. 'i += w'",
                )
        if not uses_w:
            self.bag.warning(
                M.W_UNUSED_WEIGHT,
                f"synapse {model.name} never uses the weight w, so its weights have no effect",
                self.decl.name_span or self.decl.span,
                "add 'on_pre { STATE += w }'",
            )


def _stmt_word(s: ast.ModelStmt) -> str:
    return {
        ast.SpikeDecl: "spike when",
        ast.ResetDecl: "reset",
        ast.OnPreDecl: "on_pre",
        ast.OutputDecl: "output",
        ast.RefractoryDecl: "refractory",
        ast.MethodDecl: "method",
        ast.GeneratorDecl: "generator",
    }[type(s)]


def lower_model(decl: ast.ModelDecl, bag: DiagnosticBag, source: str) -> LoweredModel:
    """Lower and check one model declaration; errors go into `bag`."""
    return _ModelLowerer(decl, bag, source).run()


__all__ = ["LoweredModel", "lower_model", "evaluate", "METHODS", "GENERATORS", "Dim"]
