"""GeNN's mapping of a projection with trainable per-connection delays (`passes/schedule_delays.py`).

The kernel keeps three things per such projection P, each of which GeNN holds in its own way:

- the delays in ms (PARAM `pp_<P>__delay`, shaped like the weights) become the synapse var
  `p_delay` (read-only, set by the runtime like the weights, filed as `delay_<P>`);
- each connection's ring offset (SCRATCH `dl_<P>__steps`, [connections]: its delay in whole steps
  times the post size, plus its post neuron, which the kernel's `prepare` phase computes once per
  batch from the ms, first storing the steps) is not kept: GeNN needs only the steps, computed where
  they are read as the local `l_delay_steps` of P's synapse code, from `p_delay`, printed from the
  prepare loop's first store; its later stores (the offset) only serve to check the rings' indices;
- the forward delay buffer (a ring of S slots of one value per post neuron, flat per trial: a spike
  of step k - 1 adds w to its post neuron's element of slot k + s, and step k applies slot k's sums
  through the synapse's on_pre) is GeNN's dendritic delay
  buffer: `addToPostDelay(g, l_delay_steps)` into the post neuron's input `q_in__P`, and the apply
  loop's on_pre becomes `state += c * q_in__P` at the top of the post neuron's sim code. The
  backward rings (a post neuron's values per step, read by each connection at its own arrival step)
  become the post vars those values are computed from, read `l_delay_steps` GeNN steps back
  (`backward_printer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
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
    Row,
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


#: stand-ins for a connection's delay in steps and its post neuron in `TrainedDelay.offset`
_S = sympy.Dummy("s", integer=True, nonnegative=True)
_J = sympy.Dummy("j", integer=True, nonnegative=True)


@dataclass(frozen=True)
class TrainedDelay:
    """The kernel's arrays of one projection's trainable delays."""

    projection: str
    param: Array  # delays in ms, per connection
    steps: Array  # per connection, what its rings are indexed by (its ring offset), once per batch
    expr: sympy.Expr  # the steps of connection q from `ref` (the prepare loop's first store)
    ref: sympy.Indexed  # param[q] in `expr`
    offset: sympy.Expr  # what `steps` ends up holding, in terms of the steps `_S` and post neuron `_J`
    max_steps: int  # the longest delay in steps (the rings have one slot more)
    post: int  # the post neurons: one ring slot holds one value per post neuron

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
        post = kernel.populations[kernel.projections[proj].post]
        expr, q, offset = _prepared(kernel, proj, param, steps)
        out[proj] = TrainedDelay(
            proj, param, steps, expr, param[q], offset, int(buffer.shape[1]) // post - 1, post
        )
    return out


def _prepared(
    kernel: Kernel, proj: str, param: Array, steps: Array
) -> tuple[sympy.Expr, sympy.Symbol, sympy.Expr]:
    """From the prepare loop over `proj`'s synapses that fills `steps`: its first store's value (the
    delay in steps, from `param` alone), the loop's q, and what the element holds after the later
    stores (the ring offset, in terms of `_S` and `_J`). Nothing else may write `steps`."""
    loops = [
        loop
        for phase in kernel.phases
        if phase.kind == PhaseKind.PREPARE
        for loop in phase.body
        if isinstance(loop, Loop) and loop.space == SynapseSpace(proj)
    ]
    writers = [
        st
        for phase in kernel.phases
        for st in walk(phase.body)
        if isinstance(st, Store) and st.target.array == steps.name
    ]
    if len(loops) != 1 or not loops[0].body or len(writers) != len(loops[0].body):
        raise fail(f"projection '{proj}': its delays in steps are not computed once per batch")
    q, j = loops[0].vars["q"], loops[0].vars["j"]
    stores = loops[0].body
    if not all(isinstance(st, Store) and st.op == "=" and tuple(st.target.indices) == (q,) for st in stores):
        raise fail(f"projection '{proj}': its delays in steps are not computed once per batch")
    if {r for r in stores[0].expr.atoms(sympy.Indexed)} != {param[q]}:
        raise fail(f"projection '{proj}': its delays in steps read more than its delays")
    offset: sympy.Expr = _S
    for st in stores[1:]:
        if {r for r in st.expr.atoms(sympy.Indexed)} - {steps[q]}:
            raise fail(f"projection '{proj}': its ring offsets read more than its delays in steps")
        offset = st.expr.xreplace({steps[q]: offset, j: _J})
    if offset.free_symbols - {_S, _J}:
        raise fail(f"projection '{proj}': its ring offsets depend on more than the delay and post neuron")
    return stores[0].expr, q, offset


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


def at_arrival(element: sympy.Expr, lets: dict[Local, sympy.Expr], td: TrainedDelay, row: Loop) -> bool:
    """Whether ring element `element` is post neuron j's in the slot of step k + s, ((k + s) mod S)
    · post + j, for every step k and delay s (what GeNN's read s steps back stands for), with `lets`
    the locals in scope (connection q's ring offset `td.steps[q]` among them) and `row` the loop over
    the connections (j, q) of a pre neuron. Evaluated at every k mod S, s and j (at the first, middle
    and last j only where that would be more than `_CHECKED` points: the wrap is linear in j)."""
    size = td.max_steps + 1
    j, q = row.vars["j"], row.vars["q"]
    lets = {x: td.offset.xreplace({_J: j}) if e == td.steps[q] else e for x, e in lets.items()}
    for _ in lets:  # the element in terms of k, s and j
        element = element.xreplace(lets)
    if element.free_symbols - {STEP, _S, j}:
        return False
    posts = (
        np.arange(td.post) if size * size * td.post <= _CHECKED else np.unique([0, td.post // 2, td.post - 1])
    )
    k, s, m = np.meshgrid(np.arange(size), np.arange(size), posts, indexing="ij")
    got = np.broadcast_to(sympy.lambdify((STEP, _S, j), element, "numpy")(k, s, m), k.shape)
    return bool(np.array_equal(got, (k + s) % size * td.post + m))


#: the most points (k mod S, s, j) `at_arrival` evaluates
_CHECKED = 1 << 22


def now_slot(td: TrainedDelay, j: sympy.Symbol) -> sympy.Expr:
    """Post neuron j's element of this step's ring slot, (k mod S) · post + j."""
    return sympy.Mod(STEP, td.max_steps + 1) * td.post + j


def _scatters_at_arrival(kernel: Kernel, scatter: Loop, td: TrainedDelay) -> bool:
    """The scatter adds each connection's weight to the post neuron's slot of its arrival step."""
    if scatter.space.step != STEP - 1:
        return False
    buffer = _one(kernel, td.projection, Role.SCRATCH, "delay_buffer")
    lets = {st.local: st.expr for st in walk(scatter.body) if isinstance(st, Let)}
    stores = [st for st in walk(scatter.body) if isinstance(st, Store)]
    rows = [st for st in walk(scatter.body) if isinstance(st, Loop) and isinstance(st.space, Row)]
    weights = {a.name for a in kernel.arrays if a.owner == td.projection and a.role == Role.WEIGHT}
    return (
        len(stores) == 1
        and len(rows) == 1
        and all(
            st.target.array == buffer.name
            and st.op == "+="
            and isinstance(st.expr, sympy.Indexed)
            and st.expr.base.label.name in weights
            and at_arrival(st.target.indices[1], lets, td, rows[0])
            for st in stores
        )
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
    here = now_slot(trained_delays(kernel)[proj], j)
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
            (batch, element) = st.expr.indices
            if batch != BATCH or sympy.expand(element - here) != 0:
                raise fail(
                    f"projection '{proj}': its delay buffer is read where GeNN's dendritic delays do not deliver"
                )
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


def check_prepare(kernel: Kernel, delays: dict[str, TrainedDelay]) -> None:
    """The kernel's prepare phases (once per batch, before the trials) hold only the ring offsets of
    trained delays, which GeNN computes per connection instead (`steps_line`); anything else there
    has no GeNN form and is refused by name rather than dropped."""
    for phase in kernel.phases:
        if phase.kind != PhaseKind.PREPARE:
            continue
        for st in phase.body:
            if not (
                isinstance(st, Loop)
                and isinstance(st.space, SynapseSpace)
                and st.space.projection in delays
                and all(
                    isinstance(x, Store) and x.target.array == delays[st.space.projection].steps.name
                    for x in st.body
                )
            ):
                raise fail(f"phase '{phase.name}': '{st}' of a prepare phase has no GeNN form")


def weave_forward(kernel: Kernel, projections: list[ProjectionCtx]) -> dict[str, dict[str, Any]]:
    """Each projection with trainable delays: the delays as a synapse var, its delivery through the
    dendritic delay buffer; returns the runtime's view of them (`DELAYS`: key -> projection, var,
    gradient's custom update, bounds and learning-rate scale)."""
    out: dict[str, dict[str, Any]] = {}
    trainable = kernel.interface.get("trainable_params", {})
    delays = trained_delays(kernel)
    check_prepare(kernel, delays)
    for proj, td in delays.items():
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
    "at_arrival",
    "check_prepare",
    "is_delivery",
    "now_slot",
    "steps_line",
    "trained_delays",
    "weave_forward",
]
