"""Lower a `train NET { key = value }` block to a TrainSpec, checking each setting's kind and range."""

from __future__ import annotations

from typing import Any

from snnc.frontend import ast
from snnc.frontend import messages as M
from snnc.frontend.dims import describe
from snnc.frontend.option_dims import check_option_units
from snnc.frontend.option_ranges import check_option_ranges
from snnc.frontend.unparse import unparse
from snnc.frontend.values import call, integer, literal, quantity
from snnc.ir import model as ir
from snnc.ir.diagnostics import DiagnosticBag, did_you_mean
from snnc.ir.units import TIME

#: accepted spellings -> the TrainSpec field
SPELLINGS = {
    "algorithm": "algorithm",
    "loss": "loss",
    "optimizer": "optimizer",
    "optimiser": "optimizer",
    "data": "data",
    "regularisation": "regularisation",
    "regularization": "regularisation",
    "schedule": "schedule",
    "dt": "dt",
    "duration": "duration",
    "batch_size": "batch_size",
    "epochs": "epochs",
    "validation_split": "validation_split",
    "seed": "seed",
    "augment": "augment",
    "rewiring": "rewiring",
}
ALGORITHMS = ("eventprop", "eprop", "none")
#: steps per trial (2^31 - 1): far beyond any trial that fits in memory, and far below int64's end
MAX_STEPS = 2**31 - 1
_CALLS = ("algorithm", "loss", "optimizer", "data", "regularisation", "schedule", "rewiring")


def _time(s: ast.Setting, bag: DiagnosticBag) -> float | None:
    q = quantity(s.value, bag)
    if q is None:
        return None
    value, dim, _ = q
    if dim != TIME:
        bag.error(
            M.DIM,
            f"{s.key} = {unparse(s.value)} has dimension {describe(dim)}, but {s.key} is a time",
            s.value.span,
            f"write it with a unit, e.g. '{s.key} = {unparse(s.value)} ms'",
        )
        return None
    if value <= 0:
        bag.error(M.VALUE, f"{s.key} must be positive", s.value.span)
        return None
    return value


#: the one regulariser and what it takes: EventProp folds it into its backward pass (strength, nu, or
#: mlGeNN's split names), the trainer applies it otherwise (strength, target)
REGULARISERS = {"spike_count": ("strength", "nu", "target", "lambda_upper", "lambda_lower", "nu_upper")}


def _regulariser_ok(c: ir.Call, s: ast.Setting, bag: DiagnosticBag) -> bool:
    """`spike_cnt(...)` and `spike_count(strenth = 1)` were ignored under EventProp."""
    if c.name not in REGULARISERS:
        hint = did_you_mean(c.name, REGULARISERS) or f"regularisers: {', '.join(REGULARISERS)}"
        bag.error("E-REGULARISER", f"unknown regulariser '{c.name}'", s.value.span, hint)
        return False
    known = REGULARISERS[c.name]
    for key in c.args:
        if key not in known:
            hint = did_you_mean(key, known) or f"'{c.name}' takes: {', '.join(known)}"
            bag.error("E-REGULARISER", f"regulariser '{c.name}' has no argument '{key}'", s.value.span, hint)
            return False
    return True


def _setting(field: str, s: ast.Setting, bag: DiagnosticBag) -> Any:
    if field in _CALLS or field == "augment":
        check_option_units(s.value, bag)
        check_option_ranges(s.value, bag)
    if field in _CALLS:
        c = call(s.value, bag)
        if c is not None and field == "regularisation" and not _regulariser_ok(c, s, bag):
            return None
        if c is not None and field == "algorithm" and c.name not in ALGORITHMS:
            hint = did_you_mean(c.name, ALGORITHMS) or f"algorithms: {', '.join(ALGORITHMS)}"
            bag.error(M.ALGO, f"unknown training algorithm '{c.name}'", s.value.span, hint)
            return None
        return c
    if field in ("dt", "duration"):
        return _time(s, bag)
    if field in ("batch_size", "epochs"):
        return integer(s.value, bag, field, minimum=1)
    if field == "seed":
        return integer(s.value, bag, field, minimum=0)
    if field == "validation_split":
        q = quantity(s.value, bag)
        if q is None:
            return None
        if not q[1].dimensionless or not 0 <= q[0] < 1:
            bag.error(
                M.VALUE,
                f"validation_split must be a fraction in [0, 1), not {unparse(s.value)}",
                s.value.span,
            )
            return None
        return q[0]
    # augment: a tuple of calls (a single call is accepted as a tuple of one)
    items = s.value.items if isinstance(s.value, ast.Tuple) else (s.value,)
    calls = [call(i, bag) for i in items]
    return None if any(c is None for c in calls) else tuple(calls)


def _check_steps(values: dict[str, Any], written: dict[str, ast.Setting], bag: DiagnosticBag) -> None:
    """A trial of at least one step and a step count the kernels can count: `dt = 1e30 ms` (no step)
    and `dt = 1e-300 ms` (more steps than int64 holds) ran no step and trained with exit code 0."""
    dt = values.get("dt", ir.TrainSpec.dt)
    duration = values.get("duration", ir.TrainSpec.duration)

    def span(first: str, then: str) -> Any:
        where = written.get(first) or written.get(then)
        return where.value.span if where is not None else None

    if dt > duration:
        bag.error(
            M.VALUE,
            f"dt = {dt:g} ms is longer than the trial's duration of {duration:g} ms: a trial needs at "
            "least one step",
            span("dt", "duration"),
            "make dt smaller than duration",
        )
    elif duration / dt > MAX_STEPS:  # dt = 1e-300 ms: a step count beyond int64 ran no step at all
        bag.error(
            M.VALUE,
            f"duration / dt = {duration / dt:.3g} steps per trial; snnc runs at most {MAX_STEPS} (2^31 - 1)",
            span("duration", "dt"),
            "make dt larger or duration shorter",
        )


#: data sets whose option puts each input spike no later than its value (a feature's latency)
LATEST_SPIKE = {"yinyang": "t_max", "digits": "t_max"}


def _check_latest_spike(values: dict[str, Any], written: dict[str, ast.Setting], bag: DiagnosticBag) -> None:
    """`yinyang(t_max = 27 ms)` with `duration = 15 ms`: every feature later than 15 ms was dropped
    and training went on with half its inputs (exit 0)."""
    data, setting = values.get("data"), written.get("data")
    option = LATEST_SPIKE.get(data.name) if data is not None else None
    if option is None or not isinstance(data.args.get(option), int | float):
        return
    if data.args.get("encoding", "latency") != "latency":  # digits(encoding = rate) has no latency
        return
    duration = values.get("duration", ir.TrainSpec.duration)
    latest = data.args[option]
    if latest <= duration:
        return
    kw = next(k for k in setting.value.kwargs if k.name == option)  # a call: `data` lowered to one
    bag.error(
        M.VALUE,
        f"{data.name}({option} = {unparse(kw.value)}) puts input spikes up to {latest:g} ms, but a trial "
        f"lasts {duration:g} ms: the later ones would never arrive",
        kw.value.span,
        f"make duration at least {latest:g} ms, or {option} shorter",
    )


def lower_train(decl: ast.TrainDecl, bag: DiagnosticBag) -> ir.TrainSpec | None:
    values: dict[str, Any] = {}
    options: dict[str, Any] = {}
    first: dict[str, ast.Setting] = {}
    for s in decl.settings:
        field = SPELLINGS.get(s.key)
        key = field or s.key
        if key in first:
            bag.error(
                M.DUPLICATE,
                f"'{s.key}' is set twice in train {decl.network}",
                s.span,
                f"the first setting ('{first[key].key}') is at {first[key].span}",
            )
            continue
        first[key] = s
        if field is None:
            bag.warning(
                M.W_UNKNOWN_SETTING,
                f"unknown training setting '{s.key}' (kept as an option)",
                s.span,
                did_you_mean(s.key, SPELLINGS) or f"settings: {', '.join(sorted(set(SPELLINGS.values())))}",
            )
            options[s.key] = literal(s.value, bag)
            continue
        value = _setting(field, s, bag)
        if value is not None:
            values[field] = value
    _check_steps(values, first, bag)
    _check_latest_spike(values, first, bag)
    algorithm = values.pop("algorithm", None)
    if algorithm is None:
        if "algorithm" not in first:
            algorithm = ir.Call("none", {}, decl.span)
        else:
            return None
    return ir.TrainSpec(algorithm=algorithm, options=options, span=decl.span, **values)
