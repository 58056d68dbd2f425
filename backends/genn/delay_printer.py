"""GeNN's mapping of a projection with trainable per-connection delays (`passes/schedule_delays.py`).

The kernel keeps three things per such projection P, each of which GeNN holds in its own way:

- the delays in ms (PARAM `pp_<P>__delay`, shaped like the weights) become the synapse var
  `p_delay` (read-only, set by the runtime like the weights, filed as `delay_<P>`);
- the delays in whole steps (SCRATCH `dl_<P>__steps`, which a reset-phase loop over P's synapses
  computes once per trial from the ms) are computed where they are read: the local
  `l_delay_steps` of P's synapse code, from `p_delay`, printed from that loop's expression;
- the forward delay buffer (a ring of S slots per post neuron: a spike of step k - 1 adds w to slot
  k + s, and step k applies slot k's sum through the synapse's on_pre) is GeNN's dendritic delay
  buffer: `addToPostDelay(g, l_delay_steps)` into the post neuron's input `q_in__P`, and the apply
  loop's on_pre becomes `state += c * q_in__P` at the top of the post neuron's sim code. The
  backward rings (a post neuron's values per step, read by each connection at its own arrival step)
  become the post vars those values are computed from, read `l_delay_steps` GeNN steps back
  (`backward_printer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy
from snnc.ir import names as ir_names
from snnc.ir.kernel import (
    BATCH,
    STEP,
    Array,
    Kernel,
    Let,
    Local,
    Loop,
    Neurons,
    PhaseKind,
    Role,
    Spikes,
    Store,
    walk,
)
from snnc.ir.kernel import Synapses as SynapseSpace

from .kernel_printer import GeNNExprPrinter
from .models import Var
from .render import ProjectionCtx, deliver_dendritic, fail

#: the local that holds a connection's delay in steps in its synapse code
STEPS = "l_delay_steps"


@dataclass(frozen=True)
class TrainedDelay:
    """The kernel's arrays of one projection's trainable delays."""

    projection: str
    param: Array  # delays in ms, per connection
    steps: Array  # delays in steps, per trial and connection
    expr: sympy.Expr  # the steps of connection q from `ref` (the reset loop's store)
    ref: sympy.Indexed  # param[q] in `expr`
    max_steps: int  # the longest delay in steps (the rings have one slot more)

    @property
    def var(self) -> str:
        """The synapse var that holds the delays in ms."""
        return ir_names.local("p", self.param.var)

    @property
    def key(self) -> str:
        """Where the runtime files the delays and their gradient beside the weights."""
        return ir_names.param_key(self.param.var, self.projection)


def trained_delays(kernel: Kernel) -> dict[str, TrainedDelay]:
    """Every projection of `kernel` with trainable delays."""
    out: dict[str, TrainedDelay] = {}
    for param in kernel.arrays:
        if param.role != Role.PARAM or param.var != "delay" or param.owner not in kernel.projections:
            continue
        proj = param.owner
        steps = _one(kernel, proj, Role.SCRATCH, "delay_steps")
        buffer = _one(kernel, proj, Role.SCRATCH, "delay_buffer")
        stores = [
            st
            for phase in kernel.phases
            if phase.kind == PhaseKind.RESET
            for loop in phase.body
            if isinstance(loop, Loop) and loop.space == SynapseSpace(proj)
            for st in loop.body
            if isinstance(st, Store) and st.target.array == steps.name
        ]
        if len(stores) != 1 or tuple(stores[0].target.indices) != (BATCH, stores[0].target.indices[1]):
            raise fail(f"projection '{proj}': its delays in steps are not computed once per trial")
        q = stores[0].target.indices[1]
        reads = {r for r in stores[0].expr.atoms(sympy.Indexed)}
        if reads != {param[q]}:
            raise fail(f"projection '{proj}': its delays in steps read more than its delays")
        out[proj] = TrainedDelay(proj, param, steps, stores[0].expr, param[q], int(buffer.shape[1]) - 1)
    return out


def _one(kernel: Kernel, owner: str, role: Role, var: str) -> Array:
    found = [a for a in kernel.arrays if a.owner == owner and a.role == role and a.var == var]
    if len(found) != 1:
        raise fail(f"projection '{owner}': {len(found)} {role.value} arrays '{var}', GeNN maps one")
    return found[0]


def steps_line(kernel: Kernel, td: TrainedDelay) -> str:
    """`const int l_delay_steps = ...;`: the connection's delay in steps, from its var in ms."""
    pr = GeNNExprPrinter(kernel)
    pr.overrides[td.ref] = td.var
    return f"const int {STEPS} = {pr.value(td.expr, True)};  // round(d / dt), within [0, max]"


def at_arrival(slot: sympy.Expr, lets: dict[Local, sympy.Expr], td: TrainedDelay) -> bool:
    """Whether ring slot `slot` is (k + s) mod S for every step k and delay s (what GeNN's read s
    steps back stands for), with `lets` the locals in scope (k mod S and s among them)."""
    size = td.max_steps + 1
    now = [x for x, e in lets.items() if e == sympy.Mod(STEP, size)]
    steps = [
        x for x, e in lets.items() if isinstance(e, sympy.Indexed) and str(e.base.label) == td.steps.name
    ]
    inner = {x: e for x, e in lets.items() if x not in (*now, *steps)}
    for _ in inner:  # the slot in terms of k mod S and s
        slot = slot.xreplace(inner)
    if len(now) != 1 or len(steps) != 1 or slot.free_symbols - {now[0], steps[0]}:
        return False
    return all(
        slot.xreplace({now[0]: sympy.Integer(n), steps[0]: sympy.Integer(d)}) == (n + d) % size
        for n in range(size)
        for d in range(size)
    )


def now_slot(td: TrainedDelay) -> sympy.Expr:
    """The ring slot of this step, k mod S."""
    return sympy.Mod(STEP, td.max_steps + 1)


def _scatters_at_arrival(kernel: Kernel, scatter: Loop, td: TrainedDelay) -> bool:
    """The scatter adds each connection's weight to the post neuron's slot of its arrival step."""
    if scatter.space.step != STEP - 1:
        return False
    buffer = _one(kernel, td.projection, Role.SCRATCH, "delay_buffer")
    lets = {st.local: st.expr for st in walk(scatter.body) if isinstance(st, Let)}
    stores = [st for st in walk(scatter.body) if isinstance(st, Store)]
    weights = {a.name for a in kernel.arrays if a.owner == td.projection and a.role == Role.WEIGHT}
    return len(stores) == 1 and all(
        st.target.array == buffer.name
        and st.op == "+="
        and isinstance(st.expr, sympy.Indexed)
        and st.expr.base.label.name in weights
        and at_arrival(st.target.indices[1], lets, td)
        for st in stores
    )


def is_delivery(kernel: Kernel, body: tuple, delays: dict[str, TrainedDelay]) -> str | None:
    """The projection whose delay-buffer delivery `body` is (a scatter over the pre spikes of the last
    step into its buffer, then the post neurons' apply loop), else None."""
    loops = [st for st in body if isinstance(st, Loop)]
    if len(loops) != 2 or len(body) != 2:
        return None
    scatter, apply = loops
    if not (isinstance(scatter.space, Spikes) and isinstance(apply.space, Neurons)):
        return None
    for proj in delays:
        info = kernel.projections[proj]
        if scatter.space.population == info.pre and apply.space.population == info.post:
            buffer = _one(kernel, proj, Role.SCRATCH, "delay_buffer")
            if any(isinstance(st, Store) and st.target.array == buffer.name for st in apply.body):
                if not _scatters_at_arrival(kernel, scatter, delays[proj]):
                    raise fail(f"projection '{proj}': a delay buffer GeNN's dendritic delays cannot hold")
                return proj
    return None


def apply_lines(kernel: Kernel, proj: str, apply: Loop, pr: GeNNExprPrinter) -> list[str]:
    """The apply loop's on_pre stores as `state += c * q_in__P` (the dendritic buffer's sum)."""
    buffer = _one(kernel, proj, Role.SCRATCH, "delay_buffer")
    j = apply.vars["j"]
    lines = [
        f"// projection {proj}: this step's arrivals through the dendritic delay buffer, in q_in__{proj}"
    ]
    arrived: Local | None = None
    for st in apply.body:
        if (
            isinstance(st, Let)
            and isinstance(st.expr, sympy.Indexed)
            and st.expr.base.label.name == buffer.name
        ):
            arrived = st.local
        elif isinstance(st, Store) and st.target.array == buffer.name:
            continue  # the slot is emptied: GeNN empties its own buffer
        elif isinstance(st, Store) and arrived is not None and tuple(st.target.indices) == (BATCH, j):
            delta = st.expr if st.op == "+=" else st.expr - st.target
            coeff = sympy.diff(delta, arrived)
            if coeff.free_symbols or sympy.expand(delta - coeff * arrived) != 0:
                raise fail(f"projection '{proj}': delivery '{st.target} {st.op} {st.expr}' is not additive")
            pr.neuron = j
            scale = "" if coeff == 1 else f"{pr._print(coeff)} * "
            note = f"  // {st.comment}" if st.comment else ""
            lines.append(f"{pr._print(st.target)} += {scale}q_in__{proj};{note}")
        else:
            raise fail(f"projection '{proj}': '{st}' of its delayed delivery has no GeNN form")
    return lines


def weave_forward(kernel: Kernel, projections: list[ProjectionCtx]) -> dict[str, dict[str, Any]]:
    """Each projection with trainable delays: the delays as a synapse var, its delivery through the
    dendritic delay buffer; returns the runtime's view of them (`DELAYS`: key -> projection, var,
    gradient's custom update, bounds and learning-rate scale)."""
    out: dict[str, dict[str, Any]] = {}
    trainable = kernel.interface.get("trainable_params", {})
    for proj, td in trained_delays(kernel).items():
        s = next(p for p in projections if p.name == proj)
        s.wum.vars.append(Var(td.var, "scalar", "VarAccess.READ_ONLY"))
        s.wum_vars[td.var] = f'weights["{td.key}"]'
        deliver_dendritic(s, STEPS, kernel.num_steps, td.max_steps, [steps_line(kernel, td)])
        out[td.key] = {"projection": proj, "var": td.var}
        if td.key in trainable:
            out[td.key]["trainable"] = trainable[td.key]
    return out


__all__ = [
    "STEPS",
    "TrainedDelay",
    "apply_lines",
    "is_delivery",
    "steps_line",
    "trained_delays",
    "weave_forward",
]
