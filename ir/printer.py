"""The one text form of the IR at every stage (STYLE.md #4): `--emit ir`, `--print-after`, golden tests.

The output is deterministic (declaration order as written, expressions in sympy's canonical string
form, floats with 12 significant digits) so two runs on the same source diff clean. Values carry
their units (`tau_mem = 20 ms`), using each param's dimension and snnc's base units.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sympy

from .discrete import DiscreteModel
from .model import Assign, Call, Connectivity, Initialiser, Model, Network, Population, Projection, TrainSpec
from .units import DIMENSIONLESS, Dim

INDENT = "  "


def expr(e: Any) -> str:
    """A stable string for a sympy expression (or anything else)."""
    if isinstance(e, sympy.Basic):
        return sympy.sstr(e)
    return value(e)


def number(x: float) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.12g}"


def quantity(x: float, dim: Dim = DIMENSIONLESS) -> str:
    """`20 ms`, `1.5 mV/ms`-style (base units), or the bare number when dimensionless."""
    return number(x) if dim.dimensionless else f"{number(x)} {dim}"


def value(v: Any) -> str:
    """Option values: numbers, strings, tuples, calls, nested dicts."""
    if isinstance(v, sympy.Basic):
        return expr(v)
    if isinstance(v, bool) or isinstance(v, (int, float)):
        return number(v)
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(value(x) for x in v) + ")"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, Call):
        return call(v)
    if v is None:
        return "none"
    return str(v)


def args(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {value(v)}" for k, v in d.items())


def call(c: Call | Initialiser | Connectivity) -> str:
    name = c.name if isinstance(c, Call) else c.kind
    a = c.args
    return f"{name}({args(a)})"


def assign(a: Assign) -> str:
    return f"{a.target} {a.op} {expr(a.expr)}"


def print_model(model: Model) -> list[str]:
    """The continuous-time model, one declaration a line."""
    head = f"{model.kind} {model.name}"
    tags = [f"source {model.source}"] if model.source != "<unknown>" else []
    if model.generator:
        tags.append(f"generator {model.generator}")
    if model.method:
        tags.append(
            f"method {model.method}" + (f"(sub_steps = {model.sub_steps})" if model.sub_steps > 1 else "")
        )
    lines = [head + " {" + (f"  // {', '.join(tags)}" if tags else "")]
    body: list[str] = []
    body += [
        f"param {p.name} = {quantity(p.value, p.dim)}" + (" (integer)" if p.integer else "")
        for p in model.params.values()
    ]
    body += [f"derived {d.name} = {expr(d.expr)}" for d in model.derived.values()]
    body += [f"state {s.name} = {quantity(s.init, s.dim)}" for s in model.states.values()]
    body += [
        f"input {i.name}" + ("" if i.dim.dimensionless else f" : {i.dim}") for i in model.inputs.values()
    ]
    body += [f"d{o.state}/dt = {expr(o.rhs)}" for o in model.odes]
    if model.spike is not None:
        body.append(f"spike when {expr(model.spike)}")
    if model.reset:
        body.append("reset { " + "; ".join(assign(a) for a in model.reset) + " }")
    if model.refractory is not None:
        mode = " (integrating)" if model.refractory_integrates else ""
        body.append(f"refractory {expr(model.refractory)}{mode}")
    if model.on_pre:
        body.append("on_pre { " + "; ".join(assign(a) for a in model.on_pre) + " }")
    if model.output is not None:
        body.append(f"output {model.output}" + (" (impulse)" if model.impulse else ""))
    lines += [INDENT + b for b in body]
    lines.append("}")
    return lines


def print_discrete(dm: DiscreteModel) -> list[str]:
    """The per-step form: chosen integrator and why, hoisted params, temps, simultaneous updates."""
    steps = f", {dm.sub_steps} sub-steps" if dm.sub_steps > 1 else ""
    lines = [f"discrete {dm.name}  // method: {dm.method}{steps}", f"{INDENT}// {dm.reason}"]
    needs = getattr(dm, "needs_params", None)
    if needs is not None:
        lines.append(f"{INDENT}uses params: {', '.join(needs) if needs else '(none)'}")
    lines += [f"{INDENT}derived {n} = {expr(e)}" for n, e in dm.derived]
    lines += [f"{INDENT}temp {n} = {expr(e)}" for n, e in dm.temps]
    lines += [f"{INDENT}update {assign(a)}" for a in dm.update]
    if dm.spike is not None:
        lines.append(f"{INDENT}spike when {expr(dm.spike)}")
    if dm.reset:
        lines.append(f"{INDENT}reset {{ " + "; ".join(assign(a) for a in dm.reset) + " }")
    if dm.refractory is not None:
        lines.append(
            f"{INDENT}refractory {expr(dm.refractory)}"
            + (" (integrating)" if dm.refractory_integrates else "")
        )
    if dm.on_pre:
        lines.append(f"{INDENT}on_pre {{ " + "; ".join(assign(a) for a in dm.on_pre) + " }")
    if dm.output is not None:
        lines.append(f"{INDENT}output {expr(dm.output)}" + (" (impulse)" if dm.impulse else ""))
    return lines


def print_population(pop: Population, model: Model | None) -> list[str]:
    shape = "x".join(str(s) for s in pop.shape)
    lines = [f"population {pop.name} = {pop.model}({shape})  // {pop.role}"]
    dims = {p.name: p.dim for p in model.params.values()} if model else {}
    sdims = {s.name: s.dim for s in model.states.values()} if model else {}
    if pop.params:
        lines.append(
            INDENT
            + "params "
            + ", ".join(
                f"{k} = per neuron {call(pop.param_inits[k])}"
                if k in pop.param_inits
                else f"{k} = {quantity(v, dims.get(k, DIMENSIONLESS))}"
                for k, v in pop.params.items()
            )
        )
    lines += _trainable_lines(pop.trainable)
    if pop.inits:
        lines.append(
            INDENT
            + "init "
            + ", ".join(f"{k} = {quantity(v, sdims.get(k, DIMENSIONLESS))}" for k, v in pop.inits.items())
        )
    if pop.readout is not None:
        r = pop.readout
        opts = f", {args(r.options)}" if r.options else ""
        lines.append(f"{INDENT}readout {r.kind}({r.var or ''}{opts})")
    return lines


def _trainable_lines(specs: dict) -> list[str]:
    out = []
    for name, t in specs.items():
        how = ["per neuron" if t.per_neuron else "shared"]
        if t.min is not None:
            how.append(f"min {number(t.min)}")
        if t.max is not None:
            how.append(f"max {number(t.max)}")
        if t.lr_scale != 1.0:
            how.append(f"lr x{number(t.lr_scale)}")
        out.append(f"{INDENT}trainable {name} ({', '.join(how)})")
    return out


def print_projection(proj: Projection, syn: Model | None) -> list[str]:
    dims = {p.name: p.dim for p in syn.params.values()} if syn else {}
    syn_args = ", ".join(
        f"{k} = per post neuron {call(proj.synapse_param_inits[k])}"
        if k in proj.synapse_param_inits
        else f"{k} = {quantity(v, dims.get(k, DIMENSIONLESS))}"
        for k, v in proj.synapse_params.items()
    )
    lines = [f"projection {proj.name}: {proj.pre} -> {proj.post}.{proj.target}"]
    lines.append(f"{INDENT}connectivity {call(proj.connectivity)}, weight {call(proj.weight)}")
    extra = []
    if proj.delay:
        extra.append(f"delay {number(proj.delay)} ms")
    if not proj.trainable:
        extra.append("fixed")
    lines.append(f"{INDENT}synapse {proj.synapse}({syn_args})" + (f", {', '.join(extra)}" if extra else ""))
    lines += _trainable_lines(proj.synapse_trainable)
    if proj.delay_trainable is not None:
        t = proj.delay_trainable
        how = f"per connection, init {call(proj.delay_init)}, min {number(t.min)} ms, max {number(t.max)} ms"
        how += f", lr x{number(t.lr_scale)}" if t.lr_scale != 1.0 else ""
        lines.append(f"{INDENT}trainable delay ({how})")
    return lines


def print_train(spec: TrainSpec) -> list[str]:
    lines = ["train {"]
    for key in ("algorithm", "loss", "optimizer", "data", "regularisation", "schedule"):
        c = getattr(spec, key)
        if c is not None:
            lines.append(f"{INDENT}{key} = {call(c)}")
    if spec.augment:
        lines.append(f"{INDENT}augment = " + ", ".join(call(c) for c in spec.augment))
    lines.append(f"{INDENT}dt = {number(spec.dt)} ms, duration = {number(spec.duration)} ms")
    lines.append(
        f"{INDENT}batch_size = {spec.batch_size}, epochs = {spec.epochs}, "
        f"validation_split = {number(spec.validation_split)}, seed = {spec.seed}"
    )
    if spec.options:
        lines.append(f"{INDENT}options {args(spec.options)}")
    lines.append("}")
    return lines


def print_network(network: Network) -> str:
    """The whole network at its stage, as text ending with a newline."""
    out = [
        f"network {network.name}  // stage: {network.stage}, dt = {number(network.dt)} ms, "
        f"duration = {number(network.duration)} ms ({network.num_steps} steps)"
    ]
    for name, model in network.models.items():
        out.append("")
        out += print_model(model)
        dm = network.discrete.get(name)
        if dm is not None:
            out += print_discrete(dm)
    if network.populations:
        out.append("")
    for pop in network.populations.values():
        out += print_population(pop, network.models.get(pop.model))
    if network.projections:
        out.append("")
    for proj in network.projections.values():
        out += print_projection(proj, network.models.get(proj.synapse))
    if network.train is not None:
        out.append("")
        out += print_train(network.train)
    training = network.training
    if training is not None:
        out.append("")
        text = training.to_text() if hasattr(training, "to_text") else repr(training)
        out += text.rstrip("\n").splitlines()
    return "\n".join(out) + "\n"


def compact_repr(obj: Any) -> str:
    """`__repr__` for IR dataclasses: no spans, no fields left at their default, sympy as text,
    and collections of named IR objects shown by their names (a Network's repr stays one line)."""
    parts = []
    for f in dataclasses.fields(obj):
        if f.name == "span":
            continue
        val = getattr(obj, f.name)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        if default is not dataclasses.MISSING and _same(val, default):
            continue
        parts.append(f"{f.name}={_short(val)}")
    return f"{type(obj).__name__}({', '.join(parts)})"


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # sympy relationals refuse truth values
        return False


def _short(val: Any) -> str:
    if isinstance(val, sympy.Basic):
        return sympy.sstr(val)
    if isinstance(val, dict):
        if val and all(dataclasses.is_dataclass(v) for v in val.values()):
            return "[" + ", ".join(str(k) for k in val) + "]"
        return "{" + ", ".join(f"{k!r}: {_short(v)}" for k, v in val.items()) + "}"
    if isinstance(val, tuple):
        inner = ", ".join(_short(v) for v in val)
        return f"({inner},)" if len(val) == 1 else f"({inner})"
    return repr(val)
