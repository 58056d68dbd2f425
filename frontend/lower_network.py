"""Lower a `network` block: populations (model, shape, overrides, readout) and projections.

Models are looked up through a `ModelTable` (see `lower.py`), which lowers each model once and records
which ones the network uses, so `Network.models` holds exactly those.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from snnc.frontend import ast
from snnc.frontend import messages as M
from snnc.frontend.checks import params_used_by
from snnc.frontend.connectivity import (
    INITIALISERS,
    bind_args,
    check_fit,
    check_weight_file,
    connectivity_args,
)
from snnc.frontend.dims import describe
from snnc.frontend.finite_params import check_finite_params
from snnc.frontend.lower_model import LoweredModel, evaluate
from snnc.frontend.param_ranges import check_param_ranges, out_of_range, param_ranges, unit_of
from snnc.frontend.unparse import unparse
from snnc.frontend.values import integer, quantity
from snnc.ir import model as ir
from snnc.ir.connectivity import CALLS
from snnc.ir.diagnostics import DiagnosticBag, Span, did_you_mean
from snnc.ir.units import TIME, Dim

DEFAULT_SYNAPSE = "Delta"
SPIKE_READOUTS = ("spike_count", "first_spike_time")


class ModelLookup(Protocol):
    def get(self, name: str, span: Span | None, kind: str) -> LoweredModel | None: ...


# --------------------------------------------------------------------------------------------------
# Overrides shared by populations (neuron params/states) and synapses (synapse params)
# --------------------------------------------------------------------------------------------------


def apply_overrides(
    lm: LoweredModel,
    kwargs: list[ast.Keyword],
    bag: DiagnosticBag,
    owner: str,
    allow_states: bool = True,
    base_dir: str = ".",
    per_neuron: dict[str, ir.Initialiser] | None = None,
    trainable: dict[str, ir.TrainableParam] | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """Every param and initial value of the model with the keyword overrides applied (dims checked).

    A param given an initialiser (`Normal`, `Uniform`, `File`) goes into `per_neuron` (one value per
    neuron, drawn like weights); `Constant(v)` is the number v."""
    model = lm.model
    p_over: dict[str, float] = {}
    s_over: dict[str, float] = {}
    seen: set[str] = set()
    for kw in kwargs:
        if kw.name in seen:
            bag.error(M.DUPLICATE, f"{owner}: '{kw.name}' is given twice", kw.span)
            continue
        seen.add(kw.name)
        target: ir.Param | ir.State | None = model.params.get(kw.name)
        if target is None and allow_states:
            target = model.states.get(kw.name)
        if target is None:
            known = list(model.params) + (list(model.states) if allow_states else [])
            hint = did_you_mean(kw.name, known) or (
                f"{model.name} has {', '.join(known)}" if known else f"{model.name} has no parameters"
            )
            bag.error(M.UNKNOWN_PARAM, f"{model.name} has no parameter '{kw.name}'", kw.span, hint)
            continue
        if isinstance(kw.value, ast.Call) and kw.value.func == TRAINABLE:
            spec = _trainable(kw, target, model, bag, base_dir, owner, trainable)
            if spec is None:
                continue
            tp, init = spec
            trainable[kw.name] = tp  # type: ignore[index]
            if tp.per_neuron:
                per_neuron[kw.name] = init  # type: ignore[index]
            else:
                p_over[kw.name] = init.args["value"]
            continue
        if isinstance(kw.value, ast.Call) and kw.value.func in INITIALISERS:
            init = _param_initialiser(kw, target, model, bag, base_dir, owner, per_neuron)
            if init is None:
                continue
            if init.kind != "constant":
                per_neuron[kw.name] = init  # type: ignore[index]
                continue
            p_over[kw.name] = init.args["value"]
            continue
        q = quantity(kw.value, bag)
        if q is None:
            continue
        value, dim, zero = q
        if dim != target.dim and not zero:
            bag.error(
                M.DIM,
                f"'{kw.name} = {unparse(kw.value)}' has dimension {describe(dim)}, "
                f"but {model.name}.{kw.name} is {describe(target.dim)}",
                kw.value.span,
                f"the default is {_value_text(target)}",
            )
            continue
        (p_over if isinstance(target, ir.Param) else s_over)[kw.name] = value
    params: dict[str, float] = {}
    for name, p in model.params.items():
        if name in p_over:
            params[name] = p_over[name]
        else:
            v = evaluate(lm.param_exprs.get(name, p.value), params) if name in lm.param_exprs else None
            params[name] = p.value if v is None else v
    inits: dict[str, float] = {}
    for name, s in model.states.items():
        if name in s_over:
            inits[name] = s_over[name]
        elif name in lm.init_exprs:
            v = evaluate(lm.init_exprs[name], params)
            inits[name] = s.init if v is None else v
        else:
            inits[name] = s.init
    return params, inits


def _param_dim_ok(
    q: tuple[float, Dim, bool],
    arg: ast.Expr,
    target: ir.Param,
    model: ir.Model,
    param: str,
    bag: DiagnosticBag,
    label: str | None = None,
    hint: str | None = None,
) -> bool:
    """Whether a number given for `model.param` has its dimension (a literal 0 fits any); else an
    error at `arg` naming both dimensions. `label` names the number (default: its text)."""
    _, dim, zero = q
    if dim == target.dim or zero:
        return True
    what = label or f"'{unparse(arg)}'"
    bag.error(
        M.DIM,
        f"{what} has dimension {describe(dim)}, but {model.name}.{param} is {describe(target.dim)}",
        arg.span,
        hint,
    )
    return False


def _param_initialiser(
    kw: ast.Keyword,
    target: ir.Param | ir.State,
    model: ir.Model,
    bag: DiagnosticBag,
    base_dir: str,
    owner: str,
    per_neuron: dict[str, ir.Initialiser] | None,
) -> ir.Initialiser | None:
    """`tau_mem = Uniform(10 ms, 30 ms)`: an initialiser whose numbers have the param's dimension."""
    e = kw.value
    if not isinstance(target, ir.Param) or per_neuron is None:
        what = "initial values" if isinstance(target, ir.State) else f"{model.name}'s params"
        bag.error(
            M.TYPE,
            f"{owner}: '{kw.name}' takes a number here; {what} have no per-neuron values",
            e.span,
            "per-neuron values (Normal, Uniform, File) are for a population's or synapse's params",
        )
        return None

    def dim_ok(q: tuple[float, Dim, bool], arg: ast.Expr) -> bool:
        hint = f"the default is {_value_text(target)}"
        return _param_dim_ok(q, arg, target, model, kw.name, bag, hint=hint)

    return initialiser(e, bag, None, base_dir, dim_ok=dim_ok, what=f"{model.name}.{kw.name}")


TRAINABLE = "Trainable"
_TRAINABLE_ARGS = ("init", "per_neuron", "min", "max", "lr")


def _trainable(
    kw: ast.Keyword,
    target: ir.Param | ir.State,
    model: ir.Model,
    bag: DiagnosticBag,
    base_dir: str,
    owner: str,
    trainable: dict[str, ir.TrainableParam] | None,
) -> tuple[ir.TrainableParam, ir.Initialiser] | None:
    """`Trainable(init, per_neuron = true, min = 2 ms, max = 200 ms, lr = 0.1)`: the param's
    initial value(s) (a number or an initialiser; an initialiser other than Constant makes it per
    neuron), bounds in its unit and a learning-rate scale."""
    e: ast.Call = kw.value  # type: ignore[assignment]
    if not isinstance(target, ir.Param) or trainable is None:
        bag.error(M.TYPE, f"{owner}: '{kw.name}' is not a param, so it cannot be Trainable", e.span)
        return None
    given: dict[str, ast.Expr] = dict(zip(_TRAINABLE_ARGS[:1], e.args, strict=False))
    if len(e.args) > 1:
        bag.error(M.ARGCOUNT, "Trainable() takes one positional argument (the initial value)", e.args[1].span)
        return None
    for k in e.kwargs:
        if k.name not in _TRAINABLE_ARGS or k.name in given:
            hint = did_you_mean(k.name, _TRAINABLE_ARGS) or f"arguments: {', '.join(_TRAINABLE_ARGS)}"
            bag.error(
                M.UNKNOWN_PARAM,
                f"Trainable() has no argument '{k.name}' (or it is given twice)",
                k.span,
                hint,
            )
            return None
        given[k.name] = k.value
    if "init" not in given:
        bag.error(
            M.ARGCOUNT, "Trainable() needs an initial value", e.span, f"e.g. Trainable({_value_text(target)})"
        )
        return None
    value = given["init"]
    inner = ast.Keyword(kw.name, value, kw.span)
    if isinstance(value, ast.Call) and value.func in INITIALISERS:
        init = _param_initialiser(inner, target, model, bag, base_dir, owner, {})
    else:
        q = quantity(value, bag)
        if q is None or not _param_dim_ok(q, value, target, model, kw.name, bag):
            return None
        init = ir.Initialiser("constant", {"value": q[0]}, value.span)
    if init is None:
        return None
    per_neuron = init.kind != "constant"
    if "per_neuron" in given:
        flag = given["per_neuron"]
        if not isinstance(flag, ast.Bool):
            bag.error(M.TYPE, f"per_neuron must be true or false, not '{unparse(flag)}'", flag.span)
            return None
        if per_neuron and not flag.value:
            bag.error(
                M.VALUE,
                f"'{kw.name}' is shared (per_neuron = false) but its initial value is {init.kind}, "
                "one value per neuron",
                flag.span,
                "give a shared param one number",
            )
            return None
        per_neuron = flag.value
    bounds: dict[str, float | None] = {"min": None, "max": None}
    for name in bounds:
        if name not in given:
            continue
        q = quantity(given[name], bag)
        label = f"bound {name} = {unparse(given[name])}"
        if q is None or not _param_dim_ok(q, given[name], target, model, kw.name, bag, label):
            return None
        bounds[name] = q[0]
    if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
        bag.error(
            M.VALUE,
            f"Trainable(): min ({bounds['min']:g}) is above max ({bounds['max']:g})",
            given["min"].span,
        )
        return None
    lr = 1.0
    if "lr" in given:
        q = quantity(given["lr"], bag)
        if q is None:
            return None
        if not q[1].dimensionless or q[0] <= 0:
            bag.error(
                M.VALUE, "Trainable(): lr is a positive number (a scale of the optimiser's)", given["lr"].span
            )
            return None
        lr = q[0]
    spec = ir.TrainableParam(kw.name, per_neuron, bounds["min"], bounds["max"], lr, e.span)
    return spec, init


def check_param_files(
    per_neuron: dict[str, ir.Initialiser],
    size: int,
    owner: str,
    bag: DiagnosticBag,
    model: ir.Model | None = None,
) -> None:
    """A `File(...)` param holds one number per neuron: a numeric array of `size` finite values,
    each in the param's range where snnc knows one (`param_ranges`)."""
    ranges = param_ranges(model) if model is not None else {}
    import numpy as np

    for name, init in per_neuron.items():
        if init.kind != "file":
            continue
        path = init.args["path"]
        try:  # never unpickled: a param file is data, not code
            values = np.load(init.args["resolved"], allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            bag.error(M.WEIGHT_FILE, f"cannot read param file '{path}': {exc}", init.span)
            continue
        if not isinstance(values, np.ndarray) or values.dtype.kind not in "biuf":
            bag.error(
                M.WEIGHT_FILE,
                f"param file '{path}' is not a numeric .npy array ({getattr(values, 'dtype', '?')})",
                init.span,
            )
        elif values.size != size:
            bag.error(
                M.WEIGHT_FILE,
                f"param file '{path}' holds {values.size} values {list(values.shape)}, but {owner} has "
                f"{size} neurons, one '{name}' each",
                init.span,
                f"save an array of {size} values (in the param's base unit: ms for times)",
            )
        elif not np.all(np.isfinite(values)):
            bag.error(M.WEIGHT_FILE, f"param file '{path}' holds values that are not finite", init.span)
        elif name in ranges and (bad := out_of_range(values, ranges[name])):
            r = ranges[name]
            bag.error(
                M.VALUE,
                f"param file '{path}' holds {bad} value(s) of {name} outside its range: {name} is "
                f"{r.what} of {model.name} and must be {r.wanted(unit_of(model.params[name]))} (in "
                "the param's base unit)",
                init.span,
            )


def _value_text(x: ir.Param | ir.State) -> str:
    v = x.value if isinstance(x, ir.Param) else x.init
    from snnc.frontend.dims import unit_text

    unit = "" if x.dim.dimensionless else " " + unit_text(x.dim)
    return f"{v:g}{unit}"


# --------------------------------------------------------------------------------------------------
# Populations
# --------------------------------------------------------------------------------------------------


def population_shape(call: ast.Call, bag: DiagnosticBag) -> tuple[int, ...] | None:
    if not call.args:
        bag.error(
            M.ARGCOUNT,
            f"{call.func}(...) needs a shape",
            call.span,
            f"e.g. {call.func}(100) or {call.func}((28, 28, 1))",
        )
        return None
    if len(call.args) > 1:
        bag.error(
            M.ARGCOUNT,
            f"{call.func}(...) takes one positional argument (the shape), {len(call.args)} given",
            call.args[1].span,
            "write a multi-dimensional shape as a tuple: (28, 28, 1); other arguments need names",
        )
    e = call.args[0]
    items = e.items if isinstance(e, ast.Tuple) else (e,)
    if not items:
        bag.error(M.SHAPE, "a shape needs at least one dimension", e.span)
        return None
    dims = [integer(i, bag, "a shape entry", minimum=1) for i in items]
    return None if any(d is None for d in dims) else tuple(dims)  # type: ignore[arg-type]


def readout_options(kind: str, kwargs: list[ast.Keyword], bag: DiagnosticBag) -> dict[str, Any] | None:
    """A readout's keyword options: `start`/`stop` (times) bound the window of the summing readouts
    (`avg_var(v, start = 2100 ms)`: Bellec et al.'s answer read in the recall period). None after an error."""
    options: dict[str, Any] = {}
    for k in kwargs:
        if k.name not in ir.READOUT_WINDOW_OPTIONS:
            hint = did_you_mean(k.name, ir.READOUT_WINDOW_OPTIONS) or "readout options: start, stop (times)"
            bag.error(M.UNKNOWN_PARAM, f"readout {kind} has no option '{k.name}'", k.span, hint)
            return None
        if kind not in ir.WINDOWED_READOUTS:
            bag.error(
                M.READOUT,
                f"readout {kind} has no time window; '{k.name}' applies to {', '.join(ir.WINDOWED_READOUTS)}",
                k.span,
            )
            return None
        q = quantity(k.value, bag)
        if q is None:
            return None
        if (q[1] != TIME and not q[2]) or q[0] < 0:
            bag.error(
                M.DIM,
                f"readout option {k.name} = {unparse(k.value)} must be a time, not negative",
                k.value.span,
                f"e.g. {k.name} = 100 ms",
            )
            return None
        options[k.name] = float(q[0])
    if options.get("start", 0.0) >= options.get("stop", float("inf")):
        bag.error(M.VALUE, f"readout {kind}: start must come before stop", kwargs[-1].span)
        return None
    return options


def readout(kw: ast.Keyword, role: str, model: ir.Model, bag: DiagnosticBag, pop: str) -> ir.Readout | None:
    """`readout = kind` or `readout = kind(var, option = ...)`."""
    e = kw.value
    if isinstance(e, ast.Name):
        kind, var_expr, options = e.id, None, {}
    elif isinstance(e, ast.Call):
        kind = e.func
        if len(e.args) > 1:
            bag.error(M.ARGCOUNT, f"readout {kind}(...) takes at most one variable", e.span)
            return None
        var_expr = e.args[0] if e.args else None
        options = readout_options(kind, e.kwargs, bag)
        if options is None:
            return None
    else:
        bag.error(M.READOUT, f"a readout is a name such as avg_var, not '{unparse(e)}'", e.span)
        return None
    if kind not in ir.READOUTS:
        hint = did_you_mean(kind, ir.READOUTS) or f"readouts: {', '.join(ir.READOUTS)}"
        bag.error(M.READOUT, f"unknown readout '{kind}'", e.span, hint)
        return None
    if role != "output":
        bag.error(
            M.READOUT,
            f"population '{pop}' is {role}; only output populations have a readout",
            kw.span,
            f"declare it as 'output {pop} = ...' or remove the readout",
        )
        return None
    if kind in SPIKE_READOUTS:
        if not model.spikes:
            bag.error(
                M.READOUT,
                f"readout {kind} needs a spiking model, but {model.name} never spikes",
                e.span,
                "use a var-based readout such as avg_var, or a model with 'spike when'",
            )
            return None
        if var_expr is not None:
            bag.error(M.READOUT, f"readout {kind} reads spikes and takes no variable", var_expr.span)
            return None
        if kind == "first_spike_time" and ir.threshold_function(model.spike) is None:
            bag.error(
                M.READOUT,
                f"readout first_spike_time needs a spike condition that is one comparison, "
                f"but {model.name} spikes on a compound condition",
                e.span,
                "the spike time is interpolated where 'spike when x >= threshold' becomes true; "
                "give the model a single comparison",
            )
            return None
        return ir.Readout(kind, None, options, kw.span)
    if var_expr is None:
        if "v" not in model.states:
            bag.error(
                M.READOUT,
                f"readout {kind} needs a variable, and {model.name} has no state 'v'",
                e.span,
                f"name one: {kind}({next(iter(model.states), 'STATE')})",
            )
            return None
        return ir.Readout(kind, "v", options, kw.span)
    if not isinstance(var_expr, ast.Name) or var_expr.id not in model.states:
        name = unparse(var_expr)
        bag.error(
            M.UNDEFINED,
            f"readout {kind}({name}): '{name}' is not a state of {model.name}",
            var_expr.span,
            did_you_mean(name, model.states),
        )
        return None
    return ir.Readout(kind, var_expr.id, options, kw.span)


def lower_population(
    decl: ast.PopulationDecl, models: ModelLookup, bag: DiagnosticBag, base_dir: str = "."
) -> ir.Population | None:
    call = decl.model
    lm = models.get(call.func, call.func_span or call.span, "neuron")
    shape = population_shape(call, bag)
    if lm is None:
        return None
    model = lm.model
    check_role(decl, model, bag)
    kwargs = [k for k in call.kwargs if k.name != "readout"]
    readouts = [k for k in call.kwargs if k.name == "readout"]
    for extra in readouts[1:]:
        bag.error(M.DUPLICATE, f"population '{decl.name}' has two readouts", extra.span)
    per_neuron: dict[str, ir.Initialiser] = {}
    trainable: dict[str, ir.TrainableParam] = {}
    params, inits = apply_overrides(
        lm,
        kwargs,
        bag,
        f"population '{decl.name}'",
        base_dir=base_dir,
        per_neuron=per_neuron,
        trainable=trainable,
    )
    ro = readout(readouts[0], decl.role, model, bag, decl.name) if readouts else None
    if shape is None or (readouts and ro is None):
        return None  # after an error: connections to it are skipped rather than reported again
    size = 1
    for d in shape:
        size *= d
    owner = f"population '{decl.name}'"
    check_param_files(per_neuron, size, owner, bag, model)
    _check_refractory(model, per_neuron, decl.name, bag)
    out = check_param_ranges(model, params, kwargs, per_neuron, owner, bag, decl.span, trainable)
    check_finite_params(model, params, kwargs, owner, bag, skip=[*per_neuron, *out])
    return ir.Population(
        decl.name,
        model.name,
        decl.role,
        shape,
        params,
        inits,
        ro,
        decl.span,
        param_inits=per_neuron,
        trainable=trainable,
    )


def _check_refractory(
    model: ir.Model, per_neuron: dict[str, ir.Initialiser], pop: str, bag: DiagnosticBag
) -> None:
    """A refractory period is counted in whole steps shared by the population: not per neuron."""
    if model.refractory is None or not per_neuron:
        return
    for name in sorted(params_used_by(model, model.refractory) & set(per_neuron)):
        bag.error(
            M.TYPE,
            f"population '{pop}': '{name}' sets the refractory period of {model.name}, which cannot "
            "differ between neurons",
            per_neuron[name].span,
            f"give {name} one number",
        )


def check_role(decl: ast.PopulationDecl, model: ir.Model, bag: DiagnosticBag) -> None:
    """Input populations need a generator model (SpikeInput, PoissonInput); others must not have one."""
    span = decl.model.func_span or decl.model.span
    if decl.role == "input" and model.generator is None:
        bag.error(
            M.ROLE,
            f"input population '{decl.name}' uses {model.name}, which does not generate spikes from data",
            span,
            "use SpikeInput or PoissonInput (models with a 'generator'), or make it hidden",
        )
    elif decl.role != "input" and model.generator is not None:
        bag.error(
            M.ROLE,
            f"{decl.role} population '{decl.name}' uses the input model {model.name}",
            span,
            f"declare it as 'input {decl.name} = {model.name}(...)'",
        )


# --------------------------------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------------------------------


def initialiser(
    e: ast.Expr,
    bag: DiagnosticBag,
    w_dim: Dim | None,
    base_dir: str,
    *,
    dim_ok: Callable[[tuple[float, Dim, bool], ast.Expr], bool] | None = None,
    what: str = "weight",
) -> ir.Initialiser | None:
    """`Normal(mean, sd)`, `Uniform(low, high)`, `Constant(value)`, a number, or `File("w.npy")`.

    `dim_ok` checks each number's dimension (default: a weight's, against `w_dim`)."""
    import os

    if dim_ok is None:

        def dim_ok(q: tuple[float, Dim, bool], arg: ast.Expr) -> bool:
            return _weight_dim_ok(q, w_dim, arg, bag)

    if isinstance(e, ast.Number | ast.UnaryOp | ast.BinOp):
        q = quantity(e, bag)
        if q is None or not dim_ok(q, e):
            return None
        return ir.Initialiser("constant", {"value": q[0]}, e.span)
    if not isinstance(e, ast.Call) or e.func not in INITIALISERS:
        name = e.func if isinstance(e, ast.Call) else unparse(e)
        hint = did_you_mean(name, INITIALISERS) or f"initialisers: {', '.join(INITIALISERS)}, or a number"
        bag.error(M.UNDEFINED, f"unknown {what} initialiser '{name}'", e.span, hint)
        return None
    kind, names = INITIALISERS[e.func]
    given = dict(zip(names, e.args, strict=False))
    if len(e.args) > len(names):
        bag.error(
            M.ARGCOUNT,
            f"{e.func}() takes {len(names)} argument(s), {len(e.args)} given",
            e.span,
            f"arguments: {', '.join(names)}",
        )
        return None
    for kw in e.kwargs:
        if kw.name not in names:
            bag.error(
                M.UNKNOWN_PARAM,
                f"{e.func}() has no argument '{kw.name}'",
                kw.span,
                did_you_mean(kw.name, names) or f"arguments: {', '.join(names)}",
            )
            return None
        if kw.name in given:
            bag.error(M.DUPLICATE, f"{e.func}(): '{kw.name}' given twice", kw.span)
            return None
        given[kw.name] = kw.value
    missing = [n for n in names if n not in given]
    if missing:
        bag.error(
            M.ARGCOUNT,
            f"{e.func}() needs {', '.join(missing)}",
            e.span,
            f"e.g. {e.func}({', '.join(f'{n} = ...' for n in names)})",
        )
        return None
    if kind == "file":
        return _file_initialiser(
            e, given["path"], bag, base_dir, os, "weight" if what == "weight" else "param"
        )
    args: dict[str, float] = {}
    for n in names:
        q = quantity(given[n], bag)
        if q is None or not dim_ok(q, given[n]):
            return None
        args[n] = q[0]
    if kind == "normal" and args["sd"] < 0:
        bag.error(M.VALUE, f"Normal(): sd must not be negative, not {args['sd']:g}", given["sd"].span)
        return None
    if kind == "uniform" and args["low"] > args["high"]:
        bag.error(M.VALUE, f"Uniform(): low ({args['low']:g}) is above high ({args['high']:g})", e.span)
        return None
    return ir.Initialiser(kind, args, e.span)


def _file_initialiser(
    e: ast.Call, path_expr: ast.Expr, bag: DiagnosticBag, base_dir: str, os, what: str = "weight"
) -> ir.Initialiser | None:
    if not isinstance(path_expr, ast.String):
        bag.error(M.TYPE, f'File() takes a path in quotes, e.g. File("{what}s.npy")', path_expr.span)
        return None
    path = path_expr.value
    if not path.endswith(".npy"):
        bag.error(M.FILE, f"{what} file '{path}' must be a .npy array", path_expr.span)
        return None
    resolved = os.path.normpath(os.path.join(base_dir, path))
    if not os.path.isfile(resolved):
        bag.error(
            M.FILE,
            f"{what} file '{path}' not found (looked for {resolved})",
            path_expr.span,
            "paths are relative to the .snn file",
        )
        return None
    return ir.Initialiser("file", {"path": path, "resolved": resolved}, e.span)


def _weight_dim_ok(q: tuple[float, Dim, bool], w_dim: Dim | None, e: ast.Expr, bag: DiagnosticBag) -> bool:
    """A weight written with a unit must have the dimension of the synapse state it is added to."""
    _, dim, zero = q
    # a dimensionless synapse state is unit-agnostic (std Exponential), so any weight unit fits it
    if dim.dimensionless or zero or w_dim is None or w_dim.dimensionless or dim == w_dim:
        return True
    bag.error(
        M.DIM,
        f"weight '{unparse(e)}' has dimension {describe(dim)}, but the synapse adds w to a state "
        f"of dimension {describe(w_dim)}",
        e.span,
    )
    return False


def weight_dim(synapse: ir.Model) -> Dim | None:
    """The dimension of `w`: that of the state its on_pre adds it to."""
    return next((synapse.states[a.target].dim for a in synapse.on_pre if a.target in synapse.states), None)


def _is_trainable(e: ast.Expr) -> bool:
    return isinstance(e, ast.Call) and e.func == TRAINABLE


_DELAY_ARGS = ("init", "min", "max", "lr")


def trainable_delay(
    e: ast.Call, bag: DiagnosticBag, base_dir: str
) -> tuple[ir.TrainableParam, ir.Initialiser] | None:
    """`delay = Trainable(Uniform(0 ms, 10 ms), max = 20 ms, min = 0 ms, lr = 0.1)`: one delay per
    connection, drawn from the initialiser; `max` is required (it sizes the delay buffer), `min`
    defaults to 0, `lr` scales the optimiser's learning rate."""
    given: dict[str, ast.Expr] = dict(zip(_DELAY_ARGS[:1], e.args, strict=False))
    if len(e.args) > 1:
        bag.error(M.ARGCOUNT, "Trainable() takes one positional argument (the initial delay)", e.args[1].span)
        return None
    for k in e.kwargs:
        if k.name not in _DELAY_ARGS or k.name in given:
            hint = (
                did_you_mean(k.name, _DELAY_ARGS)
                or f"arguments of a trainable delay: {', '.join(_DELAY_ARGS)}"
            )
            bag.error(
                M.UNKNOWN_PARAM,
                f"Trainable() has no argument '{k.name}' (or it is given twice)",
                k.span,
                hint,
            )
            return None
        given[k.name] = k.value
    if "init" not in given or "max" not in given:
        bag.error(
            M.ARGCOUNT,
            f"a trainable delay needs {'an initial value' if 'init' not in given else 'a maximum'}",
            e.span,
            "e.g. delay = Trainable(Uniform(0 ms, 10 ms), max = 20 ms): max sizes the delay buffer",
        )
        return None

    def time_ok(q: tuple[float, Dim, bool], arg: ast.Expr) -> bool:
        if q[1] != TIME and not q[2]:
            bag.error(
                M.DIM,
                f"delay '{unparse(arg)}' has dimension {describe(q[1])}, but it must be a time",
                arg.span,
                "e.g. 'delay = Trainable(2 ms, max = 20 ms)'",
            )
            return False
        return True

    init = initialiser(given["init"], bag, None, base_dir, dim_ok=time_ok, what="delay")
    bounds: dict[str, float] = {"min": 0.0}
    for name in ("min", "max"):
        if name in given:
            q = quantity(given[name], bag)
            if q is None or not time_ok(q, given[name]):
                return None
            bounds[name] = q[0]
    if init is None:
        return None
    if bounds["min"] < 0 or bounds["max"] < bounds["min"]:
        bad = given["min"] if bounds["min"] < 0 else given["max"]
        bag.error(
            M.VALUE,
            f"a trainable delay needs 0 <= min <= max (min {bounds['min']:g} ms, max {bounds['max']:g} ms)",
            bad.span,
        )
        return None
    lr = 1.0
    if "lr" in given:
        q = quantity(given["lr"], bag)
        if q is None:
            return None
        if not q[1].dimensionless or q[0] <= 0:
            bag.error(
                M.VALUE, "Trainable(): lr is a positive number (a scale of the optimiser's)", given["lr"].span
            )
            return None
        lr = q[0]
    return ir.TrainableParam("delay", True, bounds["min"], bounds["max"], lr, e.span), init


def conn_common(
    common: dict[str, ast.Keyword],
    post_model: ir.Model,
    bag: DiagnosticBag,
    decl: ast.ConnectionDecl,
    base_dir: str = ".",
) -> dict[str, Any] | None:
    """delay (a time, or `Trainable(...)` per connection: `trainable_delay`), target, trainable."""
    out: dict[str, Any] = {"delay": 0.0, "trainable": True, "delay_trainable": None}
    ok = True
    if "delay" in common and _is_trainable(common["delay"].value):
        learnable = trainable_delay(common["delay"].value, bag, base_dir)
        ok = learnable is not None
        out["delay_trainable"] = learnable
    elif "delay" in common:
        kw = common["delay"]
        q = quantity(kw.value, bag)
        if q is None:
            ok = False
        elif q[1] != TIME and not q[2]:
            bag.error(
                M.DIM,
                f"delay '{unparse(kw.value)}' has dimension {describe(q[1])}, but it must be a time",
                kw.value.span,
                "e.g. 'delay = 1 ms'",
            )
            ok = False
        elif q[0] < 0:
            bag.error(M.VALUE, "a delay cannot be negative", kw.value.span)
            ok = False
        else:
            out["delay"] = q[0]
    if "trainable" in common:
        v = common["trainable"].value
        if not isinstance(v, ast.Bool):
            bag.error(M.TYPE, f"trainable must be true or false, not '{unparse(v)}'", v.span)
            ok = False
        else:
            out["trainable"] = v.value
    inputs = list(post_model.inputs)
    if "target" in common:
        v = common["target"].value
        name = v.id if isinstance(v, ast.Name) else v.value if isinstance(v, ast.String) else None
        if name not in post_model.inputs:
            bag.error(
                M.TARGET,
                f"{post_model.name} has no input '{name or unparse(v)}'",
                v.span,
                did_you_mean(name or "", inputs)
                or f"inputs of {post_model.name}: {', '.join(inputs) or 'none'}",
            )
            ok = False
        else:
            out["target"] = name
    elif len(inputs) == 1:
        out["target"] = inputs[0]
    else:
        span = decl.post_span or decl.span
        if not inputs:
            bag.error(
                M.TARGET,
                f"'{decl.post}' uses {post_model.name}, which has no input to connect to",
                span,
                f"add 'input i_syn' to {post_model.name}",
            )
        else:
            bag.error(
                M.TARGET,
                f"{post_model.name} has several inputs ({', '.join(inputs)}); say which one",
                span,
                f"add 'target = {inputs[0]}' to the connectivity",
            )
        ok = False
    return out if ok else None


def lower_connection(
    decl: ast.ConnectionDecl,
    pops: dict[str, ir.Population],
    models: ModelLookup,
    bag: DiagnosticBag,
    base_dir: str,
    name: str,
) -> ir.Projection | None:
    """`pre -> post : Conn(args), Synapse(args)` -> Projection (None after errors)."""
    ok = True
    for end, span in ((decl.pre, decl.pre_span), (decl.post, decl.post_span)):
        if end not in pops:
            bag.error(
                M.UNDEFINED, f"undefined population '{end}'", span or decl.span, did_you_mean(end, pops)
            )
            ok = False
    post = pops.get(decl.post)
    if post is not None and post.role == "input":
        bag.error(
            M.CONN_INPUT,
            f"'{decl.post}' is an input population and cannot receive connections",
            decl.post_span or decl.span,
            "input populations are driven by data only",
        )
        ok = False
    conn = decl.connectivity
    kind = CALLS.get(conn.func)
    if kind is None:
        hint = did_you_mean(conn.func, CALLS) or f"connectivities: {', '.join(CALLS)}"
        bag.error(M.UNDEFINED, f"unknown connectivity '{conn.func}'", conn.func_span or conn.span, hint)
        return None
    syn_call = decl.synapse
    syn_name = syn_call.func if syn_call is not None else DEFAULT_SYNAPSE
    syn_span = (syn_call.func_span or syn_call.span) if syn_call is not None else decl.span
    syn = models.get(syn_name, syn_span, "synapse")
    bound = bind_args(conn, kind, bag)
    if bound is None or syn is None or not ok or post is None:
        return None
    args, common = bound
    cargs = connectivity_args(kind, args, bag)
    if cargs is None:
        return None
    pre = pops[decl.pre]
    fits = check_fit(kind, cargs, args, pre.shape, post.shape, conn.span, bag)
    if syn_call is not None and syn_call.args:
        bag.error(M.ARGCOUNT, f"synapse {syn_name}(...) takes named parameters only", syn_call.args[0].span)
    syn_per_neuron: dict[str, ir.Initialiser] = {}
    syn_trainable: dict[str, ir.TrainableParam] = {}
    syn_params, _ = apply_overrides(
        syn,
        list(syn_call.kwargs) if syn_call else [],
        bag,
        f"synapse {syn_name}",
        allow_states=False,
        base_dir=base_dir,
        per_neuron=syn_per_neuron,
        trainable=syn_trainable,
    )
    check_param_files(syn_per_neuron, post.size, f"post population '{post.name}'", bag, syn.model)
    syn_kwargs = list(syn_call.kwargs) if syn_call else []
    out = check_param_ranges(
        syn.model,
        syn_params,
        syn_kwargs,
        syn_per_neuron,
        f"synapse {syn_name}",
        bag,
        decl.span,
        syn_trainable,
    )
    check_finite_params(
        syn.model, syn_params, syn_kwargs, f"synapse {syn_name}", bag, skip=[*syn_per_neuron, *out]
    )
    post_model = models.get(post.model, None, "neuron")
    if post_model is None:
        return None
    extra = conn_common(common, post_model.model, bag, decl, base_dir)
    w_dim = weight_dim(syn.model)
    fixed = kind.fixed_weight(cargs)
    if fixed is not None:
        if "weight" in common:
            bag.error(
                M.TYPE,
                f"{kind.call} has fixed weights ({fixed} each); remove 'weight'",
                common["weight"].span,
            )
            return None
        weight = ir.Initialiser("constant", {"value": float(fixed)}, conn.span)
    elif "weight" in common:
        weight = initialiser(common["weight"].value, bag, w_dim, base_dir)
    else:
        weight = ir.Initialiser("constant", {"value": 1.0}, conn.span)
    if extra is None or weight is None:
        return None
    if weight.kind == "file" and fits:
        check_weight_file(weight, kind, cargs, pre.shape, post.shape, bag)
    _check_output_dim(syn.model, post_model.model, extra["target"], decl, bag)
    trainable = extra["trainable"] and kind.trainable
    return ir.Projection(
        name=name,
        pre=decl.pre,
        post=decl.post,
        connectivity=ir.Connectivity(kind.kind, cargs, conn.span),
        weight=weight,
        synapse=syn.model.name,
        synapse_params=syn_params,
        target=extra["target"],
        delay=extra["delay"],
        trainable=trainable,
        span=decl.span,
        synapse_param_inits=syn_per_neuron,
        synapse_trainable=syn_trainable,
        delay_trainable=extra["delay_trainable"][0] if extra["delay_trainable"] else None,
        delay_init=extra["delay_trainable"][1] if extra["delay_trainable"] else None,
    )


def _check_output_dim(
    syn: ir.Model, post: ir.Model, target: str, decl: ast.ConnectionDecl, bag: DiagnosticBag
) -> None:
    """The synapse output feeds the target input: dimensions must agree when both have one.

    A dimensionless synapse (like std Exponential, `state i = 0.0`) is unit-agnostic and fits any input.
    """
    if syn.output is None or syn.output not in syn.states:
        return
    out_dim = syn.states[syn.output].dim
    in_dim = post.inputs[target].dim
    if out_dim.dimensionless or in_dim.dimensionless or out_dim == in_dim:
        return
    bag.error(
        M.DIM,
        f"synapse {syn.name} outputs {describe(out_dim)}, but input '{target}' of {post.name} "
        f"takes {describe(in_dim)}",
        decl.synapse.span if decl.synapse else decl.span,
    )


def projection_name(pre: str, post: str, taken: set[str]) -> str:
    """`pre_to_post`, then `pre_to_post_2`, `_3` ... for repeated pairs."""
    base = f"{pre}_to_{post}"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name
