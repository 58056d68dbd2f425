"""e-prop in the C backend: plan the `EpropIR` into printed C and extra arrays, and build it.

The forward code (`model.c.j2`) is rendered unchanged; `templates/eprop.c.j2` is appended to the same
translation unit and defines `snnc_eprop_run(A, batch, steps, seed, learn)`, an online time loop that
steps input populations with the forward functions and hidden/output populations with their own
functions, which interleave the neuron update with the eligibility statements in exactly the order
`snnc.passes.eprop` documents. Its arrays extend the forward struct (`snnc_arrays` is the first
member of `snnc_eprop_arrays`), so the manifest's array list simply grows at the end.

Array kinds added to the manifest: "weight" (the output bias, owner `bias_<pop>`, trained like a
weight), "feedback" (fixed random feedback matrices, drawn with the seed), "eprop" (per-batch
eligibilities, traces, accumulators, scratch; zeroed by `reset`), "gradient" (per-batch ΔW), "target"
(labels or target values; set by the runtime before a learning run).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy
from snnc.backends.common import (
    NetworkPlan,
    PopulationPlan,
    ProjectionPlan,
    check_name,
    derived_values,
    mangle,
    neuron_values,
    substitute,
    update_with,
)
from snnc.backends.eprop_init import eprop_initial
from snnc.ir import names as ir_names
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.eprop_ir import EpropIR, HiddenEprop, OutputEprop, ProjectionEprop
from snnc.ir.kernel import Role
from snnc.ir.model import Network

from .printer import SnncCPrinter, UnmappedSymbolError, literal
from .render import CTYPES, ArraySpec, _env

CODE_UNSUPPORTED = "E-EPROP-C-UNSUPPORTED"


def is_eprop(network: Network) -> bool:
    return isinstance(getattr(network, "training", None), EpropIR)


def _error(message: str, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError(Diagnostic(CODE_UNSUPPORTED, message, None, hint))


class _Printer:
    """Prints sympy to C through an explicit name map; unmapped symbols are diagnostics."""

    def __init__(self, precision: str) -> None:
        self.precision = precision

    def __call__(self, expr: sympy.Basic, names: dict[str, str], where: str) -> str:
        try:
            return SnncCPrinter(names, self.precision).doprint(sympy.sympify(expr))
        except UnmappedSymbolError as exc:
            raise _error(f"e-prop, {where}: {exc.args[0]} (the C backend cannot reach it here)") from None

    def lit(self, value: float) -> str:
        return literal(value, self.precision)


def _syn_values(network: Network, proj_name: str, dt: float) -> dict[str, float]:
    """A projection's synapse params and derived params, renamed `<name>__<proj>` as in the IR."""
    proj = network.projections[proj_name]
    syn = network.models[proj.synapse]
    params = {**{k: p.value for k, p in syn.params.items()}, **proj.synapse_params}
    values = derived_values(network.discrete[proj.synapse], params, dt)
    return {ir_names.coupled(k, proj_name): v for k, v in values.items() if k != "dt"}


class _Planner:
    """Collects arrays and printed statements for the e-prop template."""

    def __init__(self, network: Network, plan: NetworkPlan, taken: set[str]) -> None:
        self.net, self.plan, self.ir = network, plan, network.training
        self.pr = _Printer(plan.precision)
        self.specs: list[ArraySpec] = []
        self.taken = set(taken)
        self.static: dict[str, np.ndarray] = {}
        self.initial = eprop_initial(network, plan.seed)  # biases and feedback, as every backend's

    def add(
        self,
        name: str,
        dtype: str,
        shape: tuple,
        kind: str,
        owner: str,
        var: str | None,
        comment: str,
        role: Role | None = None,
    ) -> str:
        if name in self.taken:
            raise DiagnosticError(
                Diagnostic(
                    "E-C-NAME-CLASH",
                    f"two names of the network map to the same C array '{name}'",
                    hint="names containing '__' can clash with snnc's mangling; rename one of them",
                )
            )
        self.taken.add(name)
        self.specs.append(ArraySpec(name, dtype, shape, kind, owner, var, 0.0, comment, role))
        return name

    # ------------------------------------------------------------------ projections
    def projection(self, pe: ProjectionEprop) -> dict[str, Any]:
        pp: ProjectionPlan = self.plan.projections[pe.projection]
        if pp.kind != "dense":
            raise _error(
                f"e-prop in the C backend trains dense projections only; '{pp.name}' is {pp.kind}",
                hint="make the projection Dense, or mark it not trainable",
            )
        pre = self.plan.populations[pp.pre]
        n_pre, n_post = pp.num_pre, pp.num_post
        values = {
            **neuron_values(self.net, pp.post, self.plan.dt),
            **_syn_values(self.net, pp.name, self.plan.dt),
        }
        post = self.plan.populations[pp.post]
        eligs = []
        index = {e.name: k for k, e in enumerate(pe.eligibilities)}
        for k, e in enumerate(pe.eligibilities):
            shape = ("batch", n_pre) if e.scope == "pre" else ("batch", n_pre, n_post)
            arr = self.add(mangle("ee", pp.name, f"e{k}"), "scalar", shape, "eprop", pp.name, e.name, e.name)
            new = None
            if e.scope == "pre":
                new = self.add(
                    mangle("en", pp.name, f"e{k}"),
                    "scalar",
                    shape,
                    "eprop",
                    pp.name,
                    e.name,
                    "next " + e.name,
                )
            eligs.append({"k": k, "array": arr, "new": new, "scope": e.scope, "name": e.name})
        # names: old values, start-of-step states (propagate) and pre-reset states (spike phase)
        start = self._state_names(post, pp.post, "u_")
        old = {e.name: f"snnc_eo{index[e.name]}" for e in pe.eligibilities}
        new_names = {e.name: f"snnc_en{index[e.name]}" for e in pe.eligibilities}
        prop_names = {**start, **old, ir_names.Z_PRE: "snnc_zp", ir_names.REFRACTORY: "snnc_rf"}
        prop = {a.target: substitute(a.expr, values) for a in pe.propagate}
        for e in eligs:
            e["propagate"] = self.pr(prop[e["name"]], prop_names, f"propagate of {e['name']}")
        out: dict[str, Any] = {
            "name": pp.name,
            "role": pe.role,
            "n_pre": n_pre,
            "n_post": n_post,
            "delay": pp.delay_steps,
            "pre_ring": pre.ring,
            "pre_cnt": mangle("sp", pp.pre, "cnt"),
            "pre_ids": mangle("sp", pp.pre, "ids"),
            "weight": mangle("w", pp.name),
            "zpre": self.add(
                mangle("ez", pp.name), "scalar", ("batch", n_pre), "eprop", pp.name, "z_pre", "z_pre"
            ),
            "grad": self.add(
                mangle("eg", pp.name), "scalar", ("batch", n_pre, n_post), "gradient", pp.name, None, "dW"
            ),
            "eligs": eligs,
            "pre_eligs": [e for e in eligs if e["scope"] == "pre"],
            "syn_eligs": [e for e in eligs if e["scope"] != "pre"],
        }
        spike = {**self._state_names(post, pp.post, "nu_"), **new_names}
        spike |= {
            ir_names.PSI: "snnc_psi",
            ir_names.Z: "snnc_zf",
            ir_names.LEARNING_SIGNAL: "snnc_L",
            ir_names.F_AVG: "snnc_fa",
            ir_names.ERROR: "snnc_E",
        }
        spike |= {pe.trace_name: "snnc_e", pe.filtered_name: "snnc_eb", ir_names.REFRACTORY: "snnc_rf"}
        where = f"projection '{pp.name}'"
        out["accumulate"] = self.pr(substitute(pe.accumulate, values), spike, where)
        if pe.role == "hidden":
            out["trace"] = self.pr(substitute(pe.trace, values), spike, where)
            out["filter"] = self.pr(substitute(pe.filter.expr, values), spike, where)
            out["ebar"] = self.add(
                mangle("ef", pp.name), "scalar", ("batch", n_pre, n_post), "eprop", pp.name, None, "ebar"
            )
            jumped = {a.target: self.pr(substitute(a.expr, values), spike, where) for a in pe.jump}
            for e in eligs:
                e["jump"] = jumped.get(e["name"])
                if e["jump"] is not None and e["scope"] == "pre":
                    raise _error(f"e-prop: eligibility {e['name']} is jumped but marked 'pre'")
        return out

    def _state_names(self, pop: PopulationPlan, name: str, prefix: str) -> dict[str, str]:
        names = {s: f"{prefix}{check_name(s)}" for s in pop.states}
        names |= {i: f"u_{check_name(i)}" for i in pop.inputs}
        for pp in self.plan.projections.values():
            if pp.post == name:
                names |= {ir_names.coupled(s, pp.name): mangle("ys", pp.name, s) for s in pp.states}
        return names

    # ------------------------------------------------------------------ populations
    def neuron(
        self, pop: PopulationPlan, update: tuple, temps: tuple, extra: dict[str, str]
    ) -> dict[str, Any]:
        """The forward pieces of a population (inputs, temps, update, spike, reset, synapses), printed."""
        names = {s: f"u_{s}" for s in pop.states} | {i: f"u_{i}" for i in pop.inputs}
        names |= {t: f"u_{t}" for t, _ in temps} | extra | {"t": "snnc_t"}
        where = f"population '{pop.name}' (model '{pop.model}')"
        incoming = [pp for pp in self.plan.projections.values() if pp.post == pop.name]
        inputs = []
        for inp in pop.inputs:
            terms = []
            for pp in incoming:
                if pp.target == inp and pp.output is not None:
                    syn = {s: mangle("ys", pp.name, s) for s in pp.states}
                    terms.append("(" + self.pr(pp.output, syn, f"output of '{pp.name}'") + ")")
            inputs.append({"local": f"u_{inp}", "expr": " + ".join(terms) or self.pr.lit(0.0)})
        resets = {a.target for a in pop.reset}
        nu = {s: f"nu_{s}" for s in pop.states}
        ctx: dict[str, Any] = {
            "name": pop.name,
            "size": pop.size,
            "ring": pop.ring,
            "words": (pop.size + 31) // 32,
            "states": [
                {"name": s, "array": mangle("p", pop.name, s), "rec": mangle("rv", pop.name, s)}
                for s in pop.states
            ],
            "inputs": inputs,
            "temps": [{"local": f"u_{t}", "expr": self.pr(e, names, where)} for t, e in temps],
            "updates": [],
            "refrac": mangle("q", pop.name, "refrac"),
            "flag": mangle("q", pop.name, "flag"),
            "ring_cnt": mangle("sp", pop.name, "cnt"),
            "ring_ids": mangle("sp", pop.name, "ids"),
            "rec_spikes": mangle("rs", pop.name),
            "refractory_steps": pop.refractory_steps,
            "spike": self.pr(pop.spike, {**names, **nu}, where) if pop.spike is not None else None,
            "reset": [],
            "synapses": [],
        }
        updated = {a.target for a in update}
        for a in update:
            value = a.as_value(sympy.Symbol(a.target, real=True))
            hold = (not pop.refractory_integrates) and a.target in resets
            ctx["updates"].append({"name": a.target, "expr": self.pr(value, names, where), "hold": hold})
        ctx["same"] = [s for s in pop.states if s not in updated]
        for a in pop.reset:  # sequential, on the pre-reset values (locals nu_x)
            value = a.as_value(sympy.Symbol(a.target, real=True))
            ctx["reset"].append({"name": a.target, "expr": self.pr(value, {**names, **nu}, where)})
        for pp in incoming:
            syn = {s: mangle("ys", pp.name, s) for s in pp.states} | {
                t: mangle("yt", pp.name, t) for t, _ in pp.temps
            }
            sw = f"synapse of '{pp.name}'"
            ctx["synapses"].append(
                {
                    "states": [
                        {
                            "array": mangle("y", pp.name, s),
                            "ptr": mangle("lpy", pp.name, s),
                            "local": mangle("ys", pp.name, s),
                        }
                        for s in pp.states
                    ],
                    "impulse": pp.impulse,
                    "temps": []
                    if pp.impulse
                    else [
                        {"local": mangle("yt", pp.name, t), "expr": self.pr(e, syn, sw)} for t, e in pp.temps
                    ],
                    "updates": []
                    if pp.impulse
                    else [
                        {
                            "new": mangle("ny", pp.name, a.target),
                            "ptr": mangle("lpy", pp.name, a.target),
                            "expr": self.pr(a.as_value(sympy.Symbol(a.target, real=True)), syn, sw),
                        }
                        for a in pp.update
                    ],
                }
            )
        return ctx

    def output(self, oe: OutputEprop) -> dict[str, Any]:
        pop = self.plan.populations[oe.population]
        ro = pop.readout or {}
        if ro.get("kind") not in ("var", "avg_var", "sum_var"):
            raise _error(f"e-prop readout '{ro.get('kind')}' of '{pop.name}' is not supported in C")
        extra: dict[str, str] = {}
        update, temps = pop.update, pop.temps
        bias = None
        if oe.bias is not None:
            # re-specialise the update with `bias` symbolic: it is a trained, per-neuron array
            values = neuron_values(self.net, pop.name, self.plan.dt, keep=("bias",))
            update, temps = update_with(pop.discrete, values)
            extra = {"bias": "snnc_bias"}
            arr = self.add(
                mangle("eb", pop.name),
                "scalar",
                (pop.size,),
                "weight",
                f"bias_{pop.name}",
                "bias",
                "output bias",
                role=Role.PARAM,
            )
            self.static[arr] = self.initial.biases[pop.name]
            bvals = neuron_values(self.net, pop.name, self.plan.dt)
            start = self._state_names(pop, pop.name, "u_")
            eligs = []
            for k, e in enumerate(oe.bias.eligibilities):
                eligs.append(
                    {
                        "k": k,
                        "array": self.add(
                            mangle("ee", f"bias_{pop.name}", f"e{k}"),
                            "scalar",
                            ("batch", pop.size),
                            "eprop",
                            f"bias_{pop.name}",
                            e.name,
                            e.name,
                        ),
                    }
                )
            old = {e.name: f"snnc_bo{k}" for k, e in enumerate(oe.bias.eligibilities)}
            new = {e.name: f"snnc_bn{k}" for k, e in enumerate(oe.bias.eligibilities)}
            prop = {a.target: a.expr for a in oe.bias.propagate}
            for k, e in enumerate(oe.bias.eligibilities):
                eligs[k]["propagate"] = self.pr(
                    substitute(prop[e.name], bvals), {**start, **old}, "output bias"
                )
            bias = {
                "array": arr,
                "eligs": eligs,
                "grad": self.add(
                    mangle("egb", pop.name),
                    "scalar",
                    ("batch", pop.size),
                    "gradient",
                    f"bias_{pop.name}",
                    None,
                    "dbias",
                ),
                "accumulate": self.pr(
                    substitute(oe.bias.accumulate, bvals), {**new, ir_names.ERROR: "snnc_E"}, "output bias"
                ),
            }
        ctx = self.neuron(pop, update, temps, extra)
        var = ro["var"]
        ctx["readout"] = {"kind": ro["kind"], "array": mangle("r", pop.name), "var": f"nu_{check_name(var)}"}
        ctx["bias"] = bias
        red_names = {name: f"snnc_red{i}" for i, (name, _, _) in enumerate(oe.reductions)}
        yv = {var: "snnc_yv[snnc_j]"}
        ctx["reductions"] = [
            {
                "local": red_names[name],
                "kind": kind,
                "expr": self.pr(expr, {**yv, **red_names}, "e-prop reduction"),
            }
            for name, kind, expr in oe.reductions
        ]
        ctx["error"] = self.pr(
            oe.error, {var: "snnc_yv[snnc_j]", **red_names, ir_names.Y_TRUE: "snnc_ytrue"}, "e-prop error"
        )
        ctx["loss"] = oe.loss
        ctx["error_start"] = oe.error_start_step
        ctx["yv"] = self.add(
            mangle("ey", pop.name),
            "scalar",
            ("batch", pop.size),
            "eprop",
            pop.name,
            var,
            "readout value this step",
        )
        ctx["E"] = self.add(
            mangle("eE", pop.name), "scalar", ("batch", pop.size), "eprop", pop.name, "E", "error this step"
        )
        ctx["label"] = self.add(
            mangle("et", pop.name),
            "int32",
            ("batch",),
            "target",
            pop.name,
            "label",
            "label (-1: none)",
        )
        ctx["tvalue"] = None
        if oe.loss != "sparse_categorical_crossentropy":
            ctx["tvalue"] = self.add(
                mangle("etv", pop.name),
                "scalar",
                ("batch", "steps", pop.size),
                "target",
                pop.name,
                "value",
                "targets per step",
            )
        ctx["projections"] = [
            self.projection(pe)
            for pe in self.ir.projections.values()
            if pe.role == "output" and pe.post == pop.name
        ]
        return ctx

    def hidden(self, he: HiddenEprop) -> dict[str, Any]:
        pop = self.plan.populations[he.population]
        ctx = self.neuron(pop, pop.update, pop.temps, {})
        values = neuron_values(self.net, pop.name, self.plan.dt)
        nu = {s: f"nu_{s}" for s in pop.states} | {
            ir_names.REFRACTORY: "snnc_rf",
            ir_names.Z: "snnc_zf",
            ir_names.F_AVG: "snnc_fa",
        }
        ctx["psi"] = self.pr(substitute(he.psi, values), nu, "pseudo-derivative")
        ctx["f_avg"] = self.pr(
            substitute(he.f_avg.expr, values), {**nu, ir_names.F_AVG: "snnc_fav[snnc_j]"}, "rate filter"
        )
        ctx["f_avg_array"] = self.add(
            mangle("ea", pop.name), "scalar", ("batch", pop.size), "eprop", pop.name, "f_avg", "filtered rate"
        )
        ctx["L"] = self.add(
            mangle("eL", pop.name), "scalar", ("batch", pop.size), "eprop", pop.name, "L", "learning signal"
        )
        terms = []
        for t in he.learning:
            pp = self.plan.projections[t.projection]
            if pp.kind != "dense":
                raise _error(f"e-prop feedback through '{pp.name}' needs a dense projection, not {pp.kind}")
            if t.feedback == "symmetric":
                matrix = mangle("w", pp.name)
            else:
                matrix = self.add(
                    mangle("eB", pp.name),
                    "scalar",
                    (pp.num_pre, pp.num_post),
                    "feedback",
                    pp.name,
                    None,
                    "random feedback",
                )
                self.static[matrix] = self.initial.feedback[pp.name]
            terms.append(
                {
                    "matrix": matrix,
                    "n_out": pp.num_post,
                    "errors": mangle("eE", t.output),
                    "scale": self.pr.lit(float(t.scale)),
                }
            )
        ctx["terms"] = terms
        ctx["projections"] = [
            self.projection(pe)
            for pe in self.ir.projections.values()
            if pe.role == "hidden" and pe.post == pop.name
        ]
        return ctx


def render_eprop(
    network: Network, plan: NetworkPlan, arrays: list[dict[str, Any]]
) -> tuple[str, list[ArraySpec], dict[str, np.ndarray], dict[str, Any]]:
    """(C code to append, extra array specs, extra static arrays, manifest["eprop"])."""
    planner = _Planner(network, plan, {a["name"] for a in arrays})
    ir: EpropIR = network.training
    outputs = [planner.output(oe) for oe in ir.outputs.values()]
    hidden = [planner.hidden(he) for he in ir.hidden.values()]
    inputs = [p.name for p in plan.populations.values() if p.generator is not None]
    scalar = "float" if plan.precision == "float" else "double"
    for a in planner.specs:
        a.ctype = CTYPES[a.dtype] or scalar  # type: ignore[attr-defined]
    eprojs = [pr for o in outputs for pr in o["projections"]] + [
        pr for h in hidden for pr in h["projections"]
    ]
    code = (
        _env()
        .get_template("eprop.c.j2")
        .render(
            extra=[
                {"name": a.name, "ctype": a.ctype, "comment": a.comment.replace("*/", "* /")}
                for a in planner.specs
            ],  # type: ignore[attr-defined]
            inputs=inputs,
            outputs=outputs,
            hidden=hidden,
            projections=eprojs,
            forward=list(plan.projections),
            rings=[{"cnt": mangle("sp", p.name, "cnt"), "ring": p.ring} for p in plan.populations.values()],
            lit0=planner.pr.lit(0.0),
            lit1=planner.pr.lit(1.0),
        )
    )
    info = {
        "options": {k: getattr(ir.options, k) for k in ir.options.__dataclass_fields__},
        "outputs": {
            o.population: {"loss": o.loss, "readout": o.readout, "var": o.var} for o in ir.outputs.values()
        },
        "projections": sorted(ir.projections),
        "biases": {f"bias_{o.population}": o.population for o in ir.outputs.values() if o.bias is not None},
    }
    return code, planner.specs, planner.static, info


def build_eprop_network(network: Network, **options: Any):  # noqa: ANN201
    """`backend.build_network` of an e-prop network (the forward code with the e-prop kernel)."""
    from .backend import build_network

    _require_eprop(network)
    return build_network(network, **options)


def generate_eprop(
    network: Network, **options: Any
) -> tuple[str, dict[str, Any], dict[str, np.ndarray], NetworkPlan]:
    """`backend.generate` of an e-prop network: code, manifest, static arrays and plan."""
    from .backend import generate

    _require_eprop(network)
    rendered, static, plan = generate(network, **options)
    return rendered.code, rendered.manifest, static, plan


def _require_eprop(network: Network) -> None:
    if not is_eprop(network):
        raise ValueError("the network carries no e-prop training IR; run the eprop pass")


__all__ = ["build_eprop_network", "generate_eprop", "is_eprop", "render_eprop"]
