"""Render a `NetworkPlan` into C source plus a manifest describing every array the code touches.

Python makes every decision here; the templates only lay out the strings and flat lists this module
hands them (STYLE.md #10). Local C names follow one scheme (see `snnc.backends.common.mangle`):
`u_<x>` current value of a user state/input/temp, `nu_<x>` its new value, `lp_<x>` a pointer into a
population's state array, `ys_/ny_/lpy_<proj>__<x>` the same for synapse state, `snnc_*` template
locals. No user name reaches C without `check_name`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import sympy
from snnc.backends.common import NetworkPlan, PopulationPlan, ProjectionPlan, mangle
from snnc.backends.templates import template_env
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.kernel import Role
from snnc.ir.symbols import TIME

from .printer import SnncCPrinter, UnmappedSymbolError, literal

ABI_VERSION = 2
#: spiking rows summed per pass over a dense projection's targets (see `snnc_on_pre_*`)
DENSE_UNROLL = 4
TEMPLATES = Path(__file__).parent / "templates"
CTYPES = {
    "scalar": None,
    "int32": "int32_t",
    "uint32": "uint32_t",
    "int64": "int64_t",
    "double": "double",
    # tables of one pointer per batch row, into arrays the runtime owns (no copy of the data)
    "ptr_double": "const double*",
    "ptr_int32": "const int32_t*",
}
#: each array kind's role in the kernel IR's vocabulary, unless an ArraySpec names its own
KIND_ROLES = {
    "state": Role.STATE,
    "synapse_state": Role.STATE,
    "internal": Role.COUNTER,
    "weight": Role.WEIGHT,
    "connectivity": Role.CONNECTIVITY,
    "readout": Role.READOUT,
    "ring": Role.SPIKE_LIST,
    "input": Role.INPUT,
    "record": Role.RECORD,
    "events": Role.SPIKE_LIST,
    "gradient": Role.GRADIENT,
}


@dataclass
class ArraySpec:
    """One array of the artefact. `shape` may contain "batch", "steps", "events" or "nnz".

    `role` (the kernel IR's vocabulary, `ir/kernel.py` `Role`; by default `KIND_ROLES[kind]`) is what
    the loader looks an array up by, with `owner` and `var`, instead of spelling its C name.
    """

    name: str
    dtype: str  # "scalar" | "int32" | "uint32" | "int64" | "double" | "ptr_double" | "ptr_int32"
    shape: tuple[Any, ...]
    kind: str  # state | synapse_state | internal | weight | connectivity | readout | ring | input | record | events
    owner: str  # population or projection name
    var: str | None = None
    init: float = 0.0
    comment: str = ""
    role: Role | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "kind": self.kind,
            "role": (self.role or KIND_ROLES[self.kind]).value,
            "owner": self.owner,
            "var": self.var,
            "init": self.init,
            "comment": self.comment,
        }


def _env() -> jinja2.Environment:
    return template_env(TEMPLATES)


class _Ctx:
    """Collects arrays while populations and projections are printed."""

    def __init__(self, plan: NetworkPlan, event_buffer: int) -> None:
        self.plan = plan
        self.arrays: list[ArraySpec] = []
        self.event_buffer = event_buffer

    def add(self, spec: ArraySpec) -> str:
        if any(a.name == spec.name for a in self.arrays):
            raise DiagnosticError(
                Diagnostic(
                    "E-C-NAME-CLASH",
                    f"two names of the network map to the same C array '{spec.name}'",
                    hint="names containing '__' can clash with snnc's mangling; rename one of them",
                )
            )
        self.arrays.append(spec)
        return spec.name

    def printer(self, names: dict[str, str]) -> SnncCPrinter:
        return SnncCPrinter({TIME: "snnc_t", **names}, self.plan.precision)

    def lit(self, value: float) -> str:
        return literal(value, self.plan.precision)


def _print(printer: SnncCPrinter, expr: sympy.Basic, where: str) -> str:
    try:
        return printer.doprint(expr)
    except UnmappedSymbolError as exc:
        raise DiagnosticError(
            Diagnostic(
                "E-C-UNSUPPORTED",
                f"{where}: {exc.args[0]} (the C backend cannot reach it from here)",
                hint="neuron updates may use the model's params, states, inputs and temps; synapse "
                "code may use the synapse's own params and states and `w`",
            )
        ) from None


def _population(ctx: _Ctx, pop: PopulationPlan, incoming: list[ProjectionPlan]) -> dict[str, Any]:
    n = pop.size
    names = {s: f"u_{s}" for s in pop.states}
    names.update({i: f"u_{i}" for i in pop.inputs})
    names.update({tname: f"u_{tname}" for tname, _ in pop.temps})
    pr = ctx.printer(names)
    where = f"population '{pop.name}' (model '{pop.model}')"

    states = []
    for s, init in pop.states.items():
        arr = ctx.add(
            ArraySpec(
                mangle("p", pop.name, s),
                "scalar",
                ("batch", n),
                "state",
                pop.name,
                s,
                init,
                f"{pop.name}.{s}",
            )
        )
        rec = ctx.add(
            ArraySpec(
                mangle("rv", pop.name, s),
                "scalar",
                ("batch", "steps", n),
                "record",
                pop.name,
                s,
                0.0,
                f"recorded {pop.name}.{s}",
            )
        )
        states.append({"name": s, "array": arr, "local": f"u_{s}", "ptr": f"lp_{s}", "rec": rec})
    flag = ctx.add(
        ArraySpec(
            mangle("q", pop.name, "flag"),
            "int32",
            ("batch", n),
            "internal",
            pop.name,
            "flag",
            0,
            "spiked this step",
            role=Role.SCRATCH,
        )
    )
    refrac = ctx.add(
        ArraySpec(
            mangle("q", pop.name, "refrac"),
            "int32",
            ("batch", n),
            "internal",
            pop.name,
            "refrac",
            0,
            "refractory countdown (steps)",
        )
    )
    ring_cnt = ctx.add(
        ArraySpec(
            mangle("sp", pop.name, "cnt"),
            "int32",
            ("batch", pop.ring),
            "ring",
            pop.name,
            None,
            0,
            f"spike counts, ring of {pop.ring} steps",
        )
    )
    ring_ids = ctx.add(
        ArraySpec(
            mangle("sp", pop.name, "ids"),
            "int32",
            ("batch", pop.ring, n),
            "ring",
            pop.name,
            None,
            0,
            "spiking neuron ids",
        )
    )
    rec_spikes = ctx.add(
        ArraySpec(
            mangle("rs", pop.name),
            "uint32",
            ("batch", "steps", (n + 31) // 32),
            "record",
            pop.name,
            None,
            0,
            "spike bitmask per step",
        )
    )

    ctx_pop: dict[str, Any] = {
        "name": pop.name,
        "model": pop.model,
        "size": n,
        "ring": pop.ring,
        "words": (n + 31) // 32,
        "generator": pop.generator,
        "states": states,
        "refrac": refrac,
        "flag": flag,
        "ring_cnt": ring_cnt,
        "ring_ids": ring_ids,
        "rec_spikes": rec_spikes,
        "refractory_steps": pop.refractory_steps,
        "inputs": [],
        "temps": [],
        "updates": [],
        "hold": [],
        "spike": None,
        "theta": None,
        "reset": [],
        "readout": None,
        "synapses": [],
        "events": None,
    }

    if pop.generator == "spike_source":
        # each trial's input spikes, sorted by time, read in place from the runtime's per-example
        # arrays (runtime/encoding.PreprocessedSpikes.by_time): one pointer per batch row
        for key, dtype, shape, doc, role in (
            ("cursor", "int64", ("batch",), "next spike of each trial", Role.COUNTER),
            ("end", "int64", ("batch",), "number of spikes of each trial", Role.INPUT),
            ("times", "ptr_double", ("batch",), "each trial's spike times (ms), sorted by time", Role.INPUT),
            (
                "ids",
                "ptr_int32",
                ("batch",),
                "each trial's spiking neurons, in the order of its times",
                Role.INPUT,
            ),
        ):
            spec = ArraySpec(mangle("in", pop.name, key), dtype, shape, "input", pop.name, key, 0, doc, role)
            ctx_pop[f"in_{key}"] = ctx.add(spec)
        ctx_pop["in_last"] = ctx.add(
            ArraySpec(
                mangle("q", pop.name, "last"),
                "int32",
                ("batch", n),
                "internal",
                pop.name,
                "last",
                -1,
                "last step each neuron fired (one event per step)",
            )
        )
        return ctx_pop
    if pop.generator == "poisson":
        ctx_pop["in_rate"] = ctx.add(
            ArraySpec(
                mangle("in", pop.name, "rate"),
                "scalar",
                ("batch", n),
                "input",
                pop.name,
                "rate",
                0,
                "rates (Hz)",
            )
        )
        return ctx_pop
    assert pop.generator is None, f"{where}: the frontend knows no generator '{pop.generator}'"

    # 2. inputs: sum of the outputs of every projection that targets each input
    for inp in pop.inputs:
        terms = []
        for pp in incoming:
            if pp.target == inp and pp.output is not None:
                syn_names = {s: mangle("ys", pp.name, s) for s in pp.states}
                terms.append(
                    "("
                    + _print(
                        ctx.printer(syn_names), pp.output, f"output of synapse '{pp.synapse}' in '{pp.name}'"
                    )
                    + ")"
                )
        ctx_pop["inputs"].append(
            {"local": f"u_{inp}", "expr": " + ".join(terms) if terms else ctx.lit(0.0), "name": inp}
        )
    # 3. update: temps in order, then all assignments from start-of-step values
    for tname, expr in pop.temps:
        ctx_pop["temps"].append({"local": f"u_{tname}", "expr": _print(pr, expr, where), "name": tname})
    reset_targets = {a.target for a in pop.reset}
    for a in pop.update:
        value = a.as_value(sympy.Symbol(a.target, real=True))
        ctx_pop["updates"].append(
            {
                "new": f"nu_{a.target}",
                "local": f"u_{a.target}",
                "expr": _print(pr, value, where),
                "name": a.target,
                "hold": (not pop.refractory_integrates) and a.target in reset_targets,
            }
        )
    # 4. spike and reset
    if pop.spike is not None:
        ctx_pop["spike"] = _print(pr, pop.spike, where)
        for a in pop.reset:
            value = a.as_value(sympy.Symbol(a.target, real=True))
            ctx_pop["reset"].append(
                {"local": f"u_{a.target}", "expr": _print(pr, value, where), "name": a.target}
            )
    ro = pop.readout
    if ro is not None:
        arr = ctx.add(
            ArraySpec(
                mangle("r", pop.name),
                "scalar",
                ("batch", n),
                "readout",
                pop.name,
                ro["var"],
                _readout_init(ro["kind"]),
                f"readout {ro['kind']}",
            )
        )
        kind = ro["kind"]
        var_local = f"u_{ro['var']}" if ro.get("var") else None
        # the frontend checks readouts: a var readout names a state, first_spike_time a threshold
        assert kind in ("spike_count", "first_spike_time") or ro.get("var") in names, f"{where}: {ro}"
        if kind == "first_spike_time":
            assert pop.theta is not None, f"{where}: first_spike_time without a threshold function"
            ctx_pop["theta"] = _print(pr, pop.theta, where)
        ctx_pop["readout"] = {"kind": kind, "array": arr, "var": var_local}
    if ctx.event_buffer > 0 and pop.spike is not None:
        ctx_pop["events"] = {
            "times": ctx.add(
                ArraySpec(
                    mangle("ev", pop.name, "times"),
                    "scalar",
                    ("batch", n, ctx.event_buffer),
                    "events",
                    pop.name,
                    "times",
                    0,
                    "per-neuron spike times (bounded)",
                )
            ),
            "count": ctx.add(
                ArraySpec(
                    mangle("ev", pop.name, "count"),
                    "int32",
                    ("batch", n),
                    "events",
                    pop.name,
                    "count",
                    0,
                    "spikes per neuron (may exceed the buffer: overflow)",
                )
            ),
            "max": ctx.event_buffer,
        }
    # synapse state kept per post neuron, updated in the same loop
    for pp in incoming:
        syn_names = {s: mangle("ys", pp.name, s) for s in pp.states}
        syn_names.update({tn: mangle("yt", pp.name, tn) for tn, _ in pp.temps})
        spr = ctx.printer(syn_names)
        swhere = f"synapse '{pp.synapse}' of projection '{pp.name}'"
        syn_states = []
        for s, init in pp.states.items():
            arr = ctx.add(
                ArraySpec(
                    mangle("y", pp.name, s),
                    "scalar",
                    ("batch", n),
                    "synapse_state",
                    pp.name,
                    s,
                    init,
                    f"{pp.name}.{s} (per post neuron)",
                )
            )
            syn_states.append(
                {
                    "array": arr,
                    "local": mangle("ys", pp.name, s),
                    "ptr": mangle("lpy", pp.name, s),
                    "new": mangle("ny", pp.name, s),
                    "init": ctx.lit(0.0),
                }
            )
        updates = []
        if not pp.impulse:
            for a in pp.update:
                value = a.as_value(sympy.Symbol(a.target, real=True))
                updates.append(
                    {
                        "new": mangle("ny", pp.name, a.target),
                        "ptr": mangle("lpy", pp.name, a.target),
                        "expr": _print(spr, value, swhere),
                    }
                )
        temps = (
            [{"local": mangle("yt", pp.name, tn), "expr": _print(spr, e, swhere)} for tn, e in pp.temps]
            if not pp.impulse
            else []
        )
        ctx_pop["synapses"].append(
            {"name": pp.name, "states": syn_states, "temps": temps, "updates": updates, "impulse": pp.impulse}
        )
    return ctx_pop


def _readout_init(kind: str) -> float:
    return {"max_var": float("-inf"), "first_spike_time": float("inf")}.get(kind, 0.0)


def _projection(ctx: _Ctx, pp: ProjectionPlan, pre: PopulationPlan) -> dict[str, Any]:
    syn_names = {s: mangle("lpy", pp.name, s) + "[snnc_j]" for s in pp.states}
    syn_names["w"] = "u_w"
    pr = ctx.printer(syn_names)
    stmts = []
    for a in pp.on_pre:
        assert a.target in pp.states, f"the frontend lets on_pre of '{pp.synapse}' assign states only"
        value = a.as_value(sympy.Symbol(a.target, real=True))
        stmts.append(f"{syn_names[a.target]} = {_print(pr, value, f'on_pre of synapse {pp.synapse!r}')};")
    # A single purely additive action (`s = s + g(w)`, g free of synapse state) lets dense delivery
    # sum the rows of all spiking neurons in registers before touching the state once.
    additive = None
    if len(pp.on_pre) == 1:
        a = pp.on_pre[0]
        target = sympy.Symbol(a.target, real=True)
        g = sympy.expand(a.as_value(target) - target)
        state_syms = {sympy.Symbol(s_, real=True) for s_ in pp.states}
        if not (g.free_symbols & state_syms):
            additive = {
                "ptr": mangle("lpy", pp.name, a.target),
                "expr": _print(pr, g, f"on_pre of synapse {pp.synapse!r}"),
            }
    out: dict[str, Any] = {
        "additive": additive,
        "unroll": DENSE_UNROLL,
        "name": pp.name,
        "pre": pp.pre,
        "post": pp.post,
        "kind": pp.kind,
        "synapse": pp.synapse,
        "num_pre": pp.num_pre,
        "num_post": pp.num_post,
        "delay": pp.delay_steps,
        "pre_ring": pre.ring,
        "pre_cnt": mangle("sp", pp.pre, "cnt"),
        "pre_ids": mangle("sp", pp.pre, "ids"),
        "states": [{"ptr": mangle("lpy", pp.name, s), "array": mangle("y", pp.name, s)} for s in pp.states],
        "on_pre": stmts,
        "geo": dict(pp.geometry),
        "weight": None,
        "pool_weight": None,
    }
    if pp.kind != "avg_pool2d":
        out["weight"] = ctx.add(
            ArraySpec(
                mangle("w", pp.name),
                "scalar",
                pp.weight_shape if pp.kind != "sparse" else ("nnz",),
                "weight",
                pp.name,
                None,
                0,
                f"weights of {pp.name} ({pp.kind})",
            )
        )
    else:
        out["pool_weight"] = ctx.lit(1.0 / (pp.geometry["KH"] * pp.geometry["KW"]))
    if pp.kind == "sparse":
        out["row_ptr"] = ctx.add(
            ArraySpec(
                mangle("c", pp.name, "row_ptr"),
                "int32",
                (pp.num_pre + 1,),
                "connectivity",
                pp.name,
                "row_ptr",
                0,
                "CSR row pointers",
            )
        )
        out["col_idx"] = ctx.add(
            ArraySpec(
                mangle("c", pp.name, "col_idx"),
                "int32",
                ("nnz",),
                "connectivity",
                pp.name,
                "col_idx",
                0,
                "CSR column indices",
            )
        )
    return out


@dataclass
class Rendered:
    code: str
    arrays: list[ArraySpec]
    manifest: dict[str, Any]


def render(plan: NetworkPlan, *, ir_hash: str = "", event_buffer: int = 0) -> Rendered:
    """Print the plan into one C translation unit and its manifest (the forward code e-prop extends)."""
    ctx = _Ctx(plan, event_buffer)
    ctx.add(
        ArraySpec(
            "q_example",
            "int64",
            ("batch",),
            "input",
            plan.name,
            "example",
            0,
            "global example index (keys the RNG)",
        )
    )
    pops = []
    for name in plan.order:
        incoming = [pp for pp in plan.projections.values() if pp.post == name]
        pops.append(_population(ctx, plan.populations[name], incoming))
    projs = [_projection(ctx, pp, plan.populations[pp.pre]) for pp in plan.projections.values()]
    scalar = "float" if plan.precision == "float" else "double"
    for a in ctx.arrays:
        a_ctype = CTYPES[a.dtype] or scalar
        a.comment = a.comment.replace("*/", "* /")
        a.ctype = a_ctype  # type: ignore[attr-defined]
    context = {
        "network": plan.name,
        "ir_hash": ir_hash,
        "abi": ABI_VERSION,
        "scalar": scalar,
        "dt": ctx.lit(plan.dt),
        "dt_double": repr(float(plan.dt)),
        "precision": plan.precision,
        "arrays": [{"name": a.name, "ctype": a.ctype, "comment": a.comment} for a in ctx.arrays],  # type: ignore[attr-defined]
        "populations": pops,
        "projections": projs,
        "lit0": ctx.lit(0.0),
        "lit1": ctx.lit(1.0),
    }
    code = _env().get_template("model.c.j2").render(**context)
    manifest = manifest_facts(plan, code, ir_hash=ir_hash, event_buffer=event_buffer)
    manifest["arrays"] = [a.as_json() for a in ctx.arrays]
    return Rendered(code, ctx.arrays, manifest)


def manifest_facts(plan: NetworkPlan, code: str, *, ir_hash: str, event_buffer: int) -> dict[str, Any]:
    """What a C manifest says besides its arrays: the network, its populations and projections."""
    return {
        "abi": ABI_VERSION,
        "network": plan.name,
        "ir_hash": ir_hash,
        "code_sha256": hashlib.sha256(code.encode()).hexdigest(),
        "dt": plan.dt,
        "num_steps": plan.num_steps,
        "duration": plan.duration,
        "precision": plan.precision,
        "seed": plan.seed,
        "event_buffer": event_buffer,
        "eventprop": None,
        "arrays": [],
        "populations": {
            p.name: {
                "model": p.model,
                "role": p.role,
                "shape": list(p.shape),
                "size": p.size,
                "generator": p.generator,
                "states": dict(p.states),
                "readout": p.readout,
                "ring": p.ring,
                "refractory_steps": p.refractory_steps,
            }
            for p in plan.populations.values()
        },
        "projections": {
            pp.name: {
                "pre": pp.pre,
                "post": pp.post,
                "kind": pp.kind,
                "synapse": pp.synapse,
                "delay_steps": pp.delay_steps,
                "weight_shape": list(pp.weight_shape),
                "trainable": pp.trainable,
                "states": dict(pp.states),
                "geometry": dict(pp.geometry),
            }
            for pp in plan.projections.values()
        },
    }
