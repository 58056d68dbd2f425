"""Lay out the EventProp arrays and C text for `eventprop.c.j2` and the forward hooks of `model.c.j2`.

Array kinds (see `loader.py`): `grad_state` arrays are reset before every forward run
(list lengths, per-neuron counts, overflow); `grad_buf` arrays are only allocated (lists, adjoints,
scratch, per-row gradients), since the C code writes them before it reads them.
"""

from __future__ import annotations

import math
from typing import Any

import sympy
from snnc.backends.common import NetworkPlan, mangle
from snnc.ir import names as ir_names
from snnc.ir.symbols import sym
from snnc.ir.training import executed_jump

from .eventprop import RUNTIME, EventPropPlan, lam_local


def _names(states: list[str], extra: dict[str, str] | None = None) -> dict[str, str]:
    out = dict(RUNTIME)
    out.update({ir_names.adjoint(s): lam_local(s) for s in states})
    out.update(extra or {})
    return out


def _arr(ctx, name, dtype, shape, kind, owner, comment, var=None, init=0.0) -> str:  # noqa: ANN001
    from .render import ArraySpec

    return ctx.add(ArraySpec(name, dtype, shape, kind, owner, var, init, comment))


def _state_local(pg, plan: NetworkPlan, coupled: str, pop_ctx: dict[str, Any]) -> str:  # noqa: ANN001
    """The forward C local holding a coupled state's value after `update`, before `reset`."""
    adj = next(a for a in pg.adjoints if a.state == coupled)
    if adj.owner == "neuron":
        return "snnc_pre_" + coupled
    pp = plan.projections[adj.owner]
    base, _ = ir_names.split_coupled(coupled)
    updated = any(u["new"] == mangle("ny", pp.name, base) for y in pop_ctx["synapses"] for u in y["updates"])
    return mangle("ny" if updated else "ys", pp.name, base)


def _rate_denominator(pg) -> sympy.Expr:  # noqa: ANN001
    """∇θ·f⁻ on the threshold surface, over coupled states (what the regulariser's r multiplies)."""
    x = [sym(s) for s in pg.states]
    rhs = dict(pg.system)
    theta = pg.theta.xreplace({sym(k): v for k, v in pg.inputs})
    denom = sum((sympy.diff(theta, xi) * rhs[str(xi)] for xi in x), sympy.S.Zero)
    if pg.on_threshold is not None:
        denom = denom.xreplace({sym(pg.on_threshold[0]): pg.on_threshold[1]})
    return sympy.expand(denom)


def build(ctx, plan: NetworkPlan, ep: EventPropPlan, pops_ctx: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: ANN001, C901
    """Add every EventProp array to `ctx`, set each population's forward hooks (`p["ep"]`) and
    return the context of `eventprop.c.j2`."""
    from .render import _print

    tr = ep.training
    by_name = {p["name"]: p for p in pops_ctx}
    # Spike lists hold a row's spikes in time order; their length per row ("log" in a shape) is set
    # by the runtime, which starts small and grows it (re-running the batch) when a row needs more,
    # so memory follows the spikes the data produce, not neurons x max_spikes.
    cap = {name: ("batch", "log") for name in ep.list_pops}
    lists: dict[str, dict[str, Any]] = {}
    for name in ep.list_pops:
        n = plan.populations[name].size
        pg = tr.populations.get(name)
        cap_arr = _arr(
            ctx,
            mangle("ep", name, "cap"),
            "int64",
            (1,),
            "log_size",
            name,
            "spike list capacity per row (set by the runtime)",
        )
        lst: dict[str, Any] = {
            "cap": f"A->{cap_arr}[0]",
            "cap_arr": cap_arr,
            "max": ep.max_spikes,
            "lid": _arr(
                ctx,
                mangle("ep", name, "lid"),
                "int32",
                cap[name],
                "grad_buf",
                name,
                "spike list: neuron",
            ),
            "lstep": _arr(
                ctx,
                mangle("ep", name, "lstep"),
                "int32",
                cap[name],
                "grad_buf",
                name,
                "spike list: step",
            ),
            "ln": _arr(
                ctx, mangle("ep", name, "ln"), "int64", ("batch",), "grad_state", name, "spike list length"
            ),
            "cnt": _arr(
                ctx,
                mangle("ep", name, "cnt"),
                "int32",
                ("batch", n),
                "grad_state",
                name,
                "spikes per neuron (with overflow)",
            ),
            "over": _arr(
                ctx,
                mangle("ep", name, "over"),
                "int64",
                ("batch",),
                "grad_state",
                name,
                "spikes past max_spikes",
            ),
            "D": None,
            "nth": None,
            "records": [],
            "pre_locals": [],
            "argmax": None,
        }
        if pg is not None and pg.theta is not None:
            lst["D"] = _arr(
                ctx, mangle("ep", name, "D"), "scalar", cap[name], "grad_buf", name, "D per spike"
            )
            if ir_names.IS_FIRST_SPIKE in {s.name for s in pg.dlp_dts.free_symbols}:
                lst["nth"] = _arr(
                    ctx,
                    mangle("ep", name, "nth"),
                    "int32",
                    cap[name],
                    "grad_buf",
                    name,
                    "index of the spike among the neuron's spikes",
                )
            pop_ctx = by_name[name]
            neuron_states = [
                s for s in pg.states if next(a for a in pg.adjoints if a.state == s).owner == "neuron"
            ]
            lst["pre_locals"] = [{"local": "snnc_pre_" + s, "src": f"u_{s}"} for s in neuron_states]
            names = {s: _state_local(pg, plan, s, pop_ctx) for s in pg.states}
            pr = ctx.printer(names)
            records = [(r.name, r.expr) for r in pg.records if r.name != ir_names.SPIKE_TIME]
            if pg.role == "hidden":  # the trainer's spike-count regulariser needs ∇θ·f⁻ at each spike
                lst["rate_denom"] = _rate_denominator(pg)
                have = {r for r, _ in records}
                records += [
                    (str(x), x)
                    for x in sorted(lst["rate_denom"].free_symbols, key=str)
                    if str(x) in pg.states and str(x) not in have
                ]
            for rec_name, rec_expr in records:
                expr = ep.expr(name, rec_expr)
                lst["records"].append(
                    {
                        "name": rec_name,
                        "local": "ar_" + rec_name,
                        "scratch": _arr(
                            ctx,
                            mangle("ep", name, "x", rec_name),
                            "scalar",
                            ("batch", n),
                            "grad_buf",
                            name,
                            f"{rec_name} this step",
                        ),
                        "arr": _arr(
                            ctx,
                            mangle("ep", name, "r", rec_name),
                            "scalar",
                            cap[name],
                            "grad_buf",
                            name,
                            f"{rec_name} per spike",
                        ),
                        "expr": _print(pr, expr, f"record '{rec_name}' of '{name}'"),
                    }
                )
        lists[name] = lst

    pops = []
    for name, pg in tr.populations.items():
        n = plan.populations[name].size
        extra = {r["name"]: r["local"] for r in lists.get(name, {}).get("records", [])}
        if pg.method != "exact":
            extra.update({s: f"u_{s}" for s in pg.trajectory})
        pr = ctx.printer(_names(list(pg.states), extra))
        where = f"EventProp of population '{name}'"
        states = [
            {
                "name": s,
                "lam": lam_local(s),
                "new": "an_" + s,
                "arr": _arr(
                    ctx,
                    mangle("ep", name, "l", s),
                    "scalar",
                    ("batch", n),
                    "grad_buf",
                    name,
                    f"adjoint of {s}",
                ),
            }
            for s in pg.states
        ]
        backward = [
            {
                "new": "an_" + ir_names.adjoint_state(a.target),
                "expr": _print(pr, ep.expr(name, a.expr), where),
            }
            for a in pg.backward
        ]
        traj = []
        if pg.method != "exact":
            for s in pg.trajectory:
                traj.append(
                    {
                        "local": f"u_{s}",
                        "arr": mangle("rv", name, s),
                        "init": ctx.lit(plan.populations[name].states[s]),
                    }
                )
        pc: dict[str, Any] = {
            "name": name,
            "size": n,
            "states": states,
            "backward": backward,
            "trajectory": traj,
            "drive": [],
            "dly": None,
            "dly_steps": False,
            "argmax": None,
            "jump": None,
        }
        ro = pg.readout
        if ro is not None:
            pc["dly_steps"] = ro.kind == "var"
            shape = ("batch", "steps", n) if pc["dly_steps"] else ("batch", n)
            pc["dly"] = _arr(
                ctx, mangle("ep", name, "dly"), "scalar", shape, "grad_buf", name, "dL/dy from the trainer"
            )
            if ro.kind == "max_var":
                pc["argmax"] = _arr(
                    ctx,
                    mangle("ep", name, "argmax"),
                    "int32",
                    ("batch", n),
                    "grad_buf",
                    name,
                    "step of the max_var maximum",
                )
            for target, expr in pg.drive:
                pc["drive"].append(
                    {
                        "lam": lam_local(ir_names.adjoint_state(target)),
                        "expr": _print(pr, ep.expr(name, expr), where),
                    }
                )
        if pg.theta is not None:
            lst = lists[name]
            reg = pg.regularisation
            jump = {
                "list": lst,
                "dlp": _print(pr, ep.expr(name, pg.dlp_dts), where),
                "assigns": [
                    {
                        "new": "an_" + ir_names.adjoint_state(a.target),
                        "lam": lam_local(ir_names.adjoint_state(a.target)),
                        "expr": _print(pr, ep.expr(name, a.expr), where),
                    }
                    for a in executed_jump(pg)
                ],
                "nsum": None,
                "rc": None,
                "rate_dlp": None,
            }
            if "rate_denom" in lst:
                jump["rc"] = _arr(
                    ctx,
                    mangle("ep", name, "rc"),
                    "scalar",
                    ("batch", n),
                    "grad_buf",
                    name,
                    "trainer's dL/d(spike count), applied as r at each spike",
                )
                jump["rate_dlp"] = _print(pr, -ep.expr(name, lst["rate_denom"]), where)
            if reg is not None:
                jump["nsum"] = _arr(
                    ctx,
                    mangle("ep", name, "nsum"),
                    "double",
                    (n,),
                    "grad_buf",
                    name,
                    "spike counts summed over the batch",
                )
            pc["jump"] = jump
        pops.append(pc)

    projs = []
    for pname, pp in plan.projections.items():
        tm = tr.transmissions.get(pname)
        wg = tr.weight_gradients.get(pname)
        if tm is None and wg is None:
            continue
        post = tr.populations[pp.post]
        pr = ctx.printer(_names(list(post.states)))
        where = f"EventProp of projection '{pname}'"
        pc = {
            "name": pname,
            "kind": pp.kind,
            "delay": pp.delay_steps,
            "num_pre": pp.num_pre,
            "num_post": pp.num_post,
            "pre_list": lists[pp.pre],
            "post_states": [{"lam": lam_local(s), "arr": mangle("ep", pp.post, "l", s)} for s in post.states],
            "weight": mangle("w", pname),
            "row_ptr": mangle("c", pname, "row_ptr") if pp.kind == "sparse" else None,
            "col_idx": mangle("c", pname, "col_idx") if pp.kind == "sparse" else None,
            "g": None,
            "e": None,
        }
        if tm is not None:
            pc["g"] = {
                "expr": _print(pr, ep.expr(pp.post, tm.g), where),
                "arr": _arr(
                    ctx,
                    mangle("ep", pname, "g"),
                    "scalar",
                    ("batch", pp.num_post),
                    "grad_buf",
                    pname,
                    "g per post neuron",
                ),
                "D": lists[pp.pre]["D"],
            }
        if wg is not None:
            wshape = ("batch", "nnz") if pp.kind == "sparse" else ("batch", *pp.weight_shape)
            pc["e"] = {
                "expr": _print(pr, ep.expr(pp.post, wg.expr), where),
                "arr": _arr(
                    ctx,
                    mangle("ep", pname, "e"),
                    "scalar",
                    ("batch", pp.num_post),
                    "grad_buf",
                    pname,
                    "dL/dw per arrival, per post",
                ),
                "grad": _arr(
                    ctx,
                    mangle("ep", pname, "grad"),
                    "scalar",
                    wshape,
                    "grad_buf",
                    pname,
                    "dL/dw per batch row",
                ),
                "size": None if pp.kind == "sparse" else math.prod(pp.weight_shape),
            }
        projs.append(pc)

    for name, lst in lists.items():
        by_name[name]["ep"] = lst
    for pc in pops:
        if pc["argmax"]:
            if not by_name[pc["name"]].get("ep"):
                by_name[pc["name"]]["ep"] = {"records": [], "pre_locals": [], "argmax": None, "lid": None}
            by_name[pc["name"]]["ep"]["argmax"] = pc["argmax"]
    return {"pops": pops, "projs": projs, "lists": lists, "max_spikes": ep.max_spikes}


def manifest(plan: NetworkPlan, ep: EventPropPlan, context: dict[str, Any]) -> dict[str, Any]:
    """What the runtime needs to drive `snnc_backward` (array names by role)."""
    return {
        "max_spikes": ep.max_spikes,
        "lists": {
            name: {"over": lst["over"], "cnt": lst["cnt"], "ln": lst["ln"], "cap": lst["cap_arr"]}
            for name, lst in context["lists"].items()
        },
        "outputs": {
            pc["name"]: {
                "dly": pc["dly"],
                "per_step": pc["dly_steps"],
                "readout": ep.training.populations[pc["name"]].readout.kind,
            }
            for pc in context["pops"]
            if pc["dly"]
        },
        "regularised": [pc["name"] for pc in context["pops"] if pc["jump"] and pc["jump"]["nsum"]],
        "count_grads": {
            pc["name"]: pc["jump"]["rc"] for pc in context["pops"] if pc["jump"] and pc["jump"]["rc"]
        },
        "gradients": {pc["name"]: pc["e"]["grad"] for pc in context["projs"] if pc["e"]},
        "trajectory": {
            pc["name"]: [t["arr"] for t in pc["trajectory"]] for pc in context["pops"] if pc["trajectory"]
        },
    }
