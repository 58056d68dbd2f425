"""Print a kernel's backward entry for GeNN: GeNN's mapping of the reverse-time phases.

GeNN runs time forwards only, so a batch runs 2K GeNN steps: steps 0..K-1 are the kernel's `run`
entry, steps K..2K-1 its `backward` entry (backward step kb = 2K-1-s; the runtime resets the time to
0 per batch and runs the second half only when gradients are wanted). The kernel's pieces map so:

- a forward phase that files a population's spikes into its spike list (a loop over its spikes that
  stores into SPIKE_LIST arrays, counting per neuron up to a limit) becomes per-neuron buffers: at a
  spike, the reset code stores the spike time and every value the list stores (`ev_<var>`, extra
  global params [batch][neuron][limit]) at the neuron's own count `q_ns`, which counts past the limit
  so overflow stays visible. GeNN cannot append to one list per population; a neuron's own buffer,
  read newest first, holds the same spikes in the order the backward walk needs;
- replay: a neuron whose buffer holds a spike of forward step kb-1 re-emits it at backward step kb,
  so GeNN's synapse update handles it at kb-1, the step it belongs to (`q_bi` walks the buffer
  backwards: it is the cursor of the kernel's event loops; `q_jidx` is the replayed slot);
- a backward loop over the events of population p that walks a projection's row (dL/dw and
  D += w·g per synapse, from values computed once per post neuron) becomes the projection's
  `pre_spike_syn_code` in backward steps: the per-post values become locals of the synapse code
  (post neuron vars through var refs), `grad[q] += x` becomes `dg += x`, `D[e] += x` becomes
  `addToPre(x)` into the pre neuron's input `q_D`, and the weight is `g`;
- a projection with a delay of d steps walks the spikes of step kb - d at step kb: GeNN handles the
  replayed spike at its own step and reads the post vars the backward steps change d GeNN steps back
  (`a_v[d]`, a heterogeneously delayed var ref: the values of the arrival step), so its forward
  delivery goes through the dendritic delay buffer (`render.deliver_dendritic`) rather than an axonal
  delay, which would move the replayed spikes too. Trainable delays (`delay_printer.py`) read back by
  each connection's own delay what the kernel files per post neuron and step in rings;
- a backward loop over the events of p without a row (its own spikes: the jump) becomes the
  `if (q_jump)` block of p's backward sim code: the spike-list values it reads come from the buffers
  (`ev_<var>[q_off + q_jidx]`), its D from `q_D`, its rank among the neuron's spikes is `q_jidx`;
- a backward loop over the neurons of p becomes the rest of p's backward sim code;
- GeNN runs synapse updates before neuron updates, so every phase mapped onto synapse code must come
  before every phase mapped onto neuron code in the backward entry (checked, never assumed);
- the backward reset phase gives the values the per-trial `Reset` update restores (adjoints, and
  the gradients of trained params, which neuron vars hold per trial); the weights' gradients it
  zeroes are zeroed by `GradientReduce`, the event cursors are the buffers' `q_bi`; a phase the
  forward entry runs before its steps too (derived params) was printed with the forward code;
- a trajectory the backward steps read (`rv_<var>[batch, step, neuron]`, written by the forward
  steps: `kernel_printer.trajectories`: a trained param's ∫ λ·∂f/∂p dt, the Euler step of
  non-linear dynamics) is read from its extra global param at the step; synapse code, which reads
  the post neurons' states at its spikes' step, reads them from vars the post neurons' code stages
  at the end of every step (`stage_trajectories`), delayed like the adjoints;
- arrays the runtime supplies (role TARGET) are neuron vars `t_<var>` the runtime pushes before the
  backward steps, and the number of real trials of the batch (`B`) is the one-element `q_B`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from snnc.backends.c.kernel_printer import INT_DTYPES, unique_local
from snnc.ir import names as ir_names
from snnc.ir.kernel import (
    BATCH,
    STEP,
    Array,
    Entry,
    Events,
    If,
    Kernel,
    Let,
    Local,
    Loop,
    Neurons,
    Phase,
    PhaseKind,
    Role,
    Row,
    Spikes,
    Store,
    walk,
)

from .delay_printer import STEPS, at_arrival, now_slot, steps_line, trained_delays
from .kernel_printer import (
    GENN_TYPES,
    NEURON_ROLES,
    NeuronCode,
    StatementPrinter,
    add_trajectory,
    forward_entry,
    genn_var,
    holder,
    keeps_spike_list,
    per_post_neuron,
    staged_var,
    trajectories,
)
from .models import Var
from .render import PopulationCtx, ProjectionCtx, deliver_dendritic, fail

#: the spike-time buffer every replaying population keeps (the runtime reads it, with `q_ns`)
SPIKE_TIMES = ir_names.local("ev", ir_names.SPIKE_TIME)
#: GeNN's own bookkeeping of a replaying population (reset before every trial)
REPLAY_VARS = ("q_ns", "q_bi", "q_jump", "q_jidx")


@dataclass
class SpikeBuffer:
    """What a kernel's spike-list phase of one population becomes in GeNN."""

    population: str
    limit: int
    stores: dict[str, str] = field(default_factory=dict)  # buffer EGP -> value stored at a spike
    reads: dict[str, str] = field(default_factory=dict)  # spike-list array -> its text in backward code


def spike_buffer(kernel: Kernel, phase: Phase) -> SpikeBuffer:
    """The per-neuron buffers of a phase that files a population's spikes into its spike list."""
    arrays = {a.name: a for a in kernel.arrays}
    loop = next(st for st in phase.body if isinstance(st, Loop) and isinstance(st.space, Spikes))
    pop, i = loop.space.population, loop.vars["i"]
    count = limit = None
    for st in walk(loop.body):
        if isinstance(st, Let) and isinstance(st.expr, sympy.Indexed):
            a = arrays[str(st.expr.base.label)]
            if a.role == Role.COUNTER and tuple(st.expr.indices) == (BATCH, i):
                count = st.local  # the neuron's spikes so far: its next slot
        elif isinstance(st, If) and isinstance(st.cond, sympy.GreaterThan) and st.cond.lhs == count:
            if isinstance(st.cond.rhs, sympy.Integer):
                limit = int(st.cond.rhs)
    if count is None or limit is None:
        raise fail(f"phase '{phase.name}': a spike list without a per-neuron limit has no GeNN form")
    buf = SpikeBuffer(pop, limit, {SPIKE_TIMES: "t + dt"})
    for st in walk(loop.body):
        if not isinstance(st, Store) or arrays[st.target.array].role != Role.SPIKE_LIST:
            continue
        a, value = arrays[st.target.array], st.expr
        if value == i:
            buf.reads[a.name] = "id"
        elif value == STEP:
            buf.reads[a.name] = "q_kb"
        elif value == count:
            buf.reads[a.name] = "q_jidx"  # the spike's rank among its neuron's spikes
        elif value.is_zero:
            buf.reads[a.name] = "0.0"  # `q_D` where synapse code sums into it (addToPre)
        elif isinstance(value, sympy.Indexed) and tuple(value.indices) == (BATCH, i):
            egp = ir_names.local("ev", a.var)
            buf.stores[egp] = genn_var(arrays[str(value.base.label)], kernel)
            buf.reads[a.name] = f"{egp}[q_off + q_jidx]"
        else:
            raise fail(
                f"phase '{phase.name}': spike list '{a.name}' stores '{value}', which GeNN cannot buffer"
            )
    return buf


# --------------------------------------------------------------------------------------------------
# Replay: the buffers, the threshold and reset code of both halves
# --------------------------------------------------------------------------------------------------


def _fwd(k: int) -> str:
    return f"(int)round(t / dt) < {k}"


def _kb(k: int) -> str:
    return f"(2 * {k} - 1 - (int)round(t / dt))"


def add_replay(p: PopulationCtx, buf: SpikeBuffer, k: int) -> list[str]:
    """Buffers and replay for population `p`; returns the first lines of its backward sim code."""
    m, n, limit = p.model, p.size, buf.limit
    m.vars += [Var(v, "int") for v in REPLAY_VARS]
    for v in REPLAY_VARS:
        p.var_init[v] = 0
        p.reset_vars[v] = 0
    for egp in buf.stores:
        m.extra_global_params.append(Var(egp, "scalar*"))
        p.egp_init[egp] = f"np.zeros(batch_size * {n} * MAX_SPIKES, dtype=SCALAR)"
    guard = m.code.get("threshold_condition_code", "0")
    m.code["threshold_condition_code"] = (
        f"({_fwd(k)}) ? ({guard.strip() or '0'}) : "
        f"(q_bi >= 0 && fabs({SPIKE_TIMES}[((uint64_t)batch * {n} + id) * {limit} + q_bi] - {_kb(k)} * dt) < 0.5 * dt)"
    )
    forward_reset = m.code.get("reset_code", "")
    m.code["reset_code"] = "\n".join(
        [
            # GeNN runs the reset code in the sim code's scope: no name may be declared twice
            # 64-bit: batch x neurons x limit passes 2^32 on a large GPU run (GeNN's indices are 32-bit)
            f"const uint64_t q_roff = ((uint64_t)batch * {n} + id) * {limit};",
            f"if ({_fwd(k)}) {{",
            "    // the kernel's spike list, per neuron: this spike and what the backward pass reads of it",
            f"    if (q_ns < {limit}) {{",
            *[f"        {egp}[q_roff + q_ns] = {value};" for egp, value in buf.stores.items()],
            "    }",
            "    q_ns++;  // counts past the buffer too: overflow is reported, never silent",
            *["    " + line for line in forward_reset.splitlines()],
            "}",
            "else {",
            "    // backward: this replayed spike belongs to the next backward step",
            "    q_jump = 1;",
            "    q_jidx = q_bi;",
            "    q_bi--;",
            "}",
        ]
    )
    return [
        f"// first backward step: the newest spike, and the jump of one of forward step {k - 1}",
        f"if (q_kb == {k - 1}) {{",
        f"    q_bi = (q_ns < {limit} ? q_ns : {limit}) - 1;",
        "    q_jump = 0;",
        f"    if (q_bi >= 0 && {SPIKE_TIMES}[q_off + q_bi] > ({k} - 0.5) * dt) {{",
        "        q_jump = 1;",
        "        q_jidx = q_bi;",
        "        q_bi--;",
        "    }",
        "}",
    ]


# --------------------------------------------------------------------------------------------------
# The backward phases
# --------------------------------------------------------------------------------------------------


@dataclass
class _Neuron:
    """One population's backward sim code, printed by one printer (its locals share one scope)."""

    printer: StatementPrinter
    jump: list[str] = field(default_factory=list)
    step: list[str] = field(default_factory=list)


def _neuron(kernel: Kernel, neurons: dict[str, _Neuron], pop: str) -> _Neuron:
    if pop not in neurons:
        printer = StatementPrinter(kernel, NeuronCode(pop))
        printer.pr.step_text = "q_kb"
        printer.pr.batch_size_text = "q_B[0]"
        for a in kernel.arrays:  # the trials a regulariser's counts span: the runtime's `q_B` too
            if a.owner == pop and a.role == Role.TARGET and a.var == "spike_count_trials":
                printer.pr.overrides[a[0]] = "q_B[0]"
                printer.pr.reads_batch_size = True
        neurons[pop] = _Neuron(printer)
    return neurons[pop]


def _jump(kernel: Kernel, loop: Loop, buf: SpikeBuffer | None, summed: dict[str, str], into: _Neuron) -> None:
    """The jump at a neuron's replayed spike: the spike list's values from its buffers, and from
    `q_D` the one that synapse code summed into this step (`summed`: array -> population)."""
    pop = loop.space.population
    if buf is None or loop.space.step != STEP:
        raise fail(f"population '{pop}': its spikes are walked backwards but not filed in this step")
    e = loop.vars["e"]
    pr = into.printer.pr
    for name, text in buf.reads.items():
        pr.overrides[kernel.array(name)[BATCH, e]] = "q_D" if name in summed else text
    pr.neuron = loop.vars["i"]
    lines = into.printer.body(loop.body, 1)
    into.jump += [
        "if (q_jump) {  // the jump at this neuron's spike of step kb",
        *lines,
        "    q_jump = 0;",
        "}",
    ]


def _step(phase: Phase, loop: Loop, into: _Neuron) -> None:
    into.printer.pr.neuron = loop.vars["j"]
    into.step += [f"// {phase.comment or phase.name}", *into.printer.body(loop.body)]


def _synapse(
    kernel: Kernel,
    phase: Phase,
    loop: Loop,
    s: ProjectionCtx,
    summed: dict[str, str],
    written: dict[str, set[str]],
    staging: dict[str, dict[str, Array]],
) -> list[str]:
    """`pre_spike_syn_code` of backward steps: per-post locals, then dL/dw and D of the row.

    A projection with a delay of d steps walks the spikes of step kb - d at step kb: in GeNN the
    replayed spike of step n reads the post values of its arrival step n + d, which the post neuron
    held d GeNN steps earlier (`written`: the post vars the backward steps change, read delayed; the
    others hold still through the backward half). The forward delivery then goes through the
    dendritic delay buffer, so that the synapse code runs right after the spike in both halves.

    With trainable delays (`delay_printer.py`) d is each connection's own, and the per-post values
    the kernel files per step in rings (read at the connection's arrival slot) are computed by the
    synapse code from the post values d steps back, as they were at that step."""
    rows = [st for st in loop.body if isinstance(st, Loop) and isinstance(st.space, Row)]
    if len(rows) != 1:
        raise fail(f"phase '{phase.name}': an event loop GeNN cannot map onto synapse code")
    row = rows[0]
    post = kernel.projections[s.name].post
    td = trained_delays(kernel).get(s.name)
    lines: list[str] = []
    if td is None:
        delay = kernel.projections[s.name].delay_steps
        if len(loop.body) != 1 or loop.space.step != STEP - delay:
            raise fail(f"phase '{phase.name}': the spikes of step {loop.space.step} have no GeNN form")
        delay_text = str(delay) if delay else None
        per_post = loop.prologue
    else:
        if loop.space.step != STEP or phase.body[-1] is not loop:
            raise fail(f"phase '{phase.name}': the spikes of step {loop.space.step} have no GeNN form")
        delay_text = STEPS
        per_post = phase.body[:-1]  # the rings' values of this step, per post neuron
        lines.append(steps_line(kernel, td))
    printer = StatementPrinter(kernel, NeuronCode(post))
    printer.pr.synapse = True
    printer.taken.add(STEPS)  # declared above the body: no printed local may take its name
    # GeNN handles the spike of step kb one step later, and its arrival is `delay` steps later still
    kb = _kb(kernel.num_steps)
    printer.pr.step_text = kb if delay_text is None else f"({kb} + {delay_text})"
    if delay_text is not None:  # the post values as they were at the arrival: `delay` GeNN steps ago
        staged = {staged_var(a) for a in trajectories(kernel).values() if holder(a, kernel) == post}
        printer.pr.delayed = {name: delay_text for name in written.get(post, set()) | staged}
    reads = [r for st in walk(row.body) for r in _refs(st)]
    body: list[str] = []
    for pro in per_post:  # values per post neuron: GeNN computes them per synapse
        if not (isinstance(pro, Loop) and isinstance(pro.space, Neurons) and pro.space.population == post):
            raise fail(f"phase '{phase.name}': a per-post loop GeNN cannot map onto synapse code")
        printer.pr.neuron = pro.vars["j"]
        for st in pro.body:
            if isinstance(st, Let):
                body += printer.stmt(st, 0)
            elif isinstance(st, Store) and kernel.array(st.target.array).role == Role.SCRATCH:
                a = kernel.array(st.target.array)
                if td is not None and not _at(st.target.indices, now_slot(td, pro.vars["j"])):
                    raise fail(f"phase '{phase.name}': '{st}' is not a ring of per-post values GeNN can read")
                name = unique_local("l_", Local(a.var), printer.taken)
                body.append(f"const scalar {name} = {printer.pr.value(st.expr, False)};  // {a.var}")
                printer.pr.overrides.update({r: name for r in reads if str(r.base.label) == a.name})
            else:
                raise fail(f"phase '{phase.name}': '{st}' has no place in GeNN synapse code")
    printer.pr.overrides.update(
        {a[row.vars["q"]]: "g" for a in kernel.arrays if a.owner == s.name and a.role == Role.WEIGHT}
    )
    printer.pr.neuron = row.vars["j"]
    e = loop.vars["e"]
    if td is not None:  # each ring is read at the connection's arrival: GeNN reads back by its delay
        lets = {st.local: st.expr for st in (*loop.body, *row.body) if isinstance(st, Let)}
        rings = [
            r
            for r in reads
            if r in printer.pr.overrides and kernel.array(r.base.label.name).role == Role.SCRATCH
        ]
        if not rings or not all(
            len(r.indices) == 2 and r.indices[0] == BATCH and at_arrival(r.indices[1], lets, td, row)
            for r in rings
        ):
            raise fail(f"phase '{phase.name}': a ring read GeNN cannot map onto a read back in time")
    unkept: set[Local] = set()  # the ring offset and element of the arrival: GeNN reads back by STEPS
    for st in row.body:
        if isinstance(st, Let) and td is not None and st.expr == td.steps[row.vars["q"]]:
            unkept.add(st.local)  # the connection's ring offset: GeNN has l_delay_steps instead
            continue
        if isinstance(st, Let) and td is not None and not st.expr.atoms(sympy.Indexed):
            unkept.add(st.local)  # the ring element of the arrival: GeNN reads the post values d steps back
            continue
        if unkept & _unmapped_symbols(st, printer.pr.overrides):
            raise fail(f"phase '{phase.name}': '{st}' reads a delay ring's offset, which GeNN does not keep")
        if isinstance(st, Let):
            body += printer.stmt(st, 0)
            continue
        a = kernel.array(st.target.array) if isinstance(st, Store) else None
        if a is None or st.op != "+=":
            raise fail(f"phase '{phase.name}': '{st}' has no place in GeNN synapse code")
        value = printer.pr.value(st.expr, False)
        note = f"  // {st.comment}" if st.comment else ""
        if a.role == Role.GRADIENT and tuple(st.target.indices) == (BATCH, row.vars["q"]):
            var = "dg" if a.var is None else genn_var(a, kernel)  # the weights' dg, or the delays'
            body.append(f"{var} += {value};{note}")
            if not any(v.name == var for v in s.wum.vars):
                s.wum.vars.append(Var(var))
                s.wum_vars[var] = "0.0"
        elif a.role == Role.SPIKE_LIST and a.owner == s.pre and tuple(st.target.indices) == (BATCH, e):
            summed[a.name] = s.pre
            if sum(p == s.pre for p in summed.values()) > 1:
                raise fail(f"population '{s.pre}': two spike-list sums, GeNN has one q_D")
            body.append(f"addToPre({value});{note} (into the pre neuron's q_D)")
            s.pre_target_var = "q_D"
        else:
            raise fail(f"phase '{phase.name}': '{st}' has no place in GeNN synapse code")
    for name, a in printer.pr.vars.items():
        if a.role == Role.RECORD:  # a trajectory of the post neurons, staged by their neuron code
            staging.setdefault(post, {})[name] = a
        if holder(a, kernel) != post:
            raise fail(
                f"projection '{s.name}': the backward synapse code reads '{a.name}' of another population"
            )
        if name not in s.wum_var_refs:
            s.wum.post_neuron_var_refs.append(
                Var(name, GENN_TYPES.get(a.dtype, "scalar"), "VarAccessMode.READ_ONLY")
            )
            s.wum_var_refs[name] = name
    if delay_text is None:
        return [f"// {phase.comment or phase.name}", *lines, *body]
    k = kernel.num_steps
    if td is None:
        deliver_dendritic(s, delay_text, k, kernel.projections[s.name].delay_steps, [])
    return [
        f"// {phase.comment or phase.name}",
        *lines,
        f"if ({kb} + {delay_text} < {k}) {{  // an arrival within the trial",
        *["    " + line for line in body],
        "}",
    ]


def _unmapped_symbols(st: Let | Store, overrides: dict[sympy.Indexed, str]) -> set[sympy.Symbol]:
    """The symbols `st` prints: those of its elements GeNN prints as a name of their own are not."""
    hidden = {r: sympy.Dummy() for r in overrides}
    exprs = (st.expr, st.target) if isinstance(st, Store) else (st.expr,)
    return {x for e in exprs for x in e.xreplace(hidden).free_symbols}


def _at(indices: tuple, element: sympy.Expr) -> bool:
    """Whether `indices` are (batch, `element`) of a flat ring, in any equal form."""
    return len(indices) == 2 and indices[0] == BATCH and sympy.expand(indices[1] - element) == 0


def _refs(st: object) -> list[sympy.Indexed]:
    out: list[sympy.Indexed] = []
    for attr in ("expr", "target"):
        value = getattr(st, attr, None)
        if value is not None:
            out += list(value.atoms(sympy.Indexed))
    return out


def _synapse_phase(phase: Phase) -> Loop | None:
    """The event loop of a phase that walks a projection's rows (synapse code), else None; with
    trainable delays it comes after the loop that fills the rings of this step."""
    loops = [st for st in phase.body if isinstance(st, Loop)]
    if loops and isinstance(loops[-1].space, Events):
        if any(isinstance(st, Loop) and isinstance(st.space, Row) for st in loops[-1].body):
            return loops[-1]
    return None


def _written(kernel: Kernel, entry: Entry) -> dict[str, set[str]]:
    """Per population, the GeNN vars of its neuron model that the backward steps store into."""
    out: dict[str, set[str]] = {}
    for name in entry.per_step:
        for st in walk(kernel.phase(name).body):
            if isinstance(st, Store):
                a = kernel.array(st.target.array)
                if a.role in NEURON_ROLES and (
                    a.owner in kernel.populations or a.owner in kernel.projections
                ):
                    out.setdefault(holder(a, kernel), set()).add(genn_var(a, kernel))
    return out


def _reset(kernel: Kernel, entry: Entry, cursors: set[str]) -> dict[str, dict[str, float]]:
    """Per population, the GeNN vars the backward reset sets (restored by the Reset update)."""
    out: dict[str, dict[str, float]] = {}
    delays = trained_delays(kernel)
    printed = set(forward_entry(kernel).before)  # with the forward code (`kernel_printer`)
    for name in entry.before:
        if name in printed:
            continue
        for st in walk(kernel.phase(name).body):
            if not isinstance(st, Store):
                continue
            a = kernel.array(st.target.array)
            if (
                a.role == Role.ADJOINT
                or (a.role == Role.SCRATCH and a.owner in kernel.populations)
                or (a.role == Role.GRADIENT and _held_by_neurons(a, kernel))
            ):
                out.setdefault(holder(a, kernel), {})[genn_var(a, kernel)] = float(st.expr)
            elif a.role == Role.SCRATCH and a.owner in delays:
                continue  # a ring of per-post values: GeNN reads the post vars back in time instead
            elif a.role != Role.GRADIENT and a.name not in cursors:  # dg: GradientReduce; q_bi
                raise fail(f"phase '{name}': resetting '{a.name}' has no GeNN form")
    return out


def _held_by_neurons(a: Array, kernel: Kernel) -> bool:
    """A gradient of a trained param, per trial and neuron: a var of the neurons (not `dg`)."""
    return a.owner in kernel.populations or per_post_neuron(a, kernel)


def print_backward(kernel: Kernel, populations: list[PopulationCtx], projections: list[ProjectionCtx]) -> int:
    """Weave the kernel's backward entry into the module's models; returns the buffers' spike limit
    (0 without a backward entry)."""
    entry = next((e for e in kernel.entries if e.steps == "backward"), None)
    if entry is None:
        return 0
    k = kernel.num_steps
    pops = {p.name: p for p in populations}
    projs = {s.name: s for s in projections}
    # forward: the spike lists become per-neuron buffers (the forward printer leaves them to us)
    arrays = {a.name: a for a in kernel.arrays}
    buffers: dict[str, SpikeBuffer] = {}
    for phase in kernel.phases:
        if phase.kind == PhaseKind.FORWARD and keeps_spike_list(phase.body, arrays):
            buf = spike_buffer(kernel, phase)
            buffers[buf.population] = buf
    limits = {b.limit for b in buffers.values()}
    if len(limits) > 1:
        raise fail(f"spike lists with different per-neuron limits {sorted(limits)}: GeNN's buffers share one")
    # backward: synapse phases first, then neuron phases (GeNN's order within a step)
    neurons: dict[str, _Neuron] = {}
    synapse_code: dict[str, list[str]] = {}
    summed: dict[str, str] = {}  # spike-list array -> the population whose q_D sums into it
    staging: dict[str, dict[str, Array]] = {}  # population -> staged var -> the trajectory
    cursors: set[str] = set()
    seen_neuron = None
    written = _written(kernel, entry)
    for name in entry.per_step:
        phase = kernel.phase(name)
        loop = _synapse_phase(phase)
        if loop is not None:
            if seen_neuron is not None:
                raise fail(
                    f"phase '{name}' (synapse code) runs after '{seen_neuron}' (neuron code): GeNN runs "
                    "synapse updates first in every step"
                )
            proj = next(st.space.projection for st in loop.body if isinstance(st, Loop))
            if loop.space.population not in buffers:
                raise fail(f"phase '{name}': the spikes of '{loop.space.population}' are never filed")
            cursors.add(loop.space.cursor)
            synapse_code[proj] = synapse_code.get(proj, []) + _synapse(
                kernel, phase, loop, projs[proj], summed, written, staging
            )
            continue
        seen_neuron = name
        for st in phase.body:
            if isinstance(st, Loop) and isinstance(st.space, Events):
                cursors.add(st.space.cursor)
                pop = st.space.population
                _jump(kernel, st, buffers.get(pop), summed, _neuron(kernel, neurons, pop))
            elif isinstance(st, Loop) and isinstance(st.space, Neurons):
                _step(phase, st, _neuron(kernel, neurons, st.space.population))
            else:
                raise fail(f"phase '{name}': a {type(st).__name__} has no GeNN form in a backward step")
    resets = _reset(kernel, entry, cursors)
    for pop in sorted(set(buffers) | set(neurons), key=list(kernel.populations).index):
        _weave(pops[pop], k, buffers.get(pop), neurons.get(pop), pop in summed.values(), resets.get(pop, {}))
    for pop, staged in staging.items():
        stage_trajectories(kernel, pops[pop], staged)
    for proj, lines in synapse_code.items():
        _weave_synapse(projs[proj], k, lines)
    return limits.pop() if limits else 0


def _weave(
    p: PopulationCtx,
    k: int,
    buf: SpikeBuffer | None,
    bwd: _Neuron | None,
    transmits: bool,
    reset: dict[str, float],
) -> None:
    """Population `p` runs its forward code in steps < K and its backward code after them."""
    m = p.model
    start = add_replay(p, buf, k) if buf is not None else []
    if buf is None:  # no spikes to replay: never a spike in the backward half
        guard = m.code.get("threshold_condition_code", "").strip()
        if guard:
            m.code["threshold_condition_code"] = f"({_fwd(k)}) ? ({guard}) : 0"
    held = {v.name for v in m.vars}
    lines: list[str] = []
    if bwd is not None:
        lines = [*bwd.jump, *bwd.step]
        for name, a in bwd.printer.code.vars.items():
            if name not in held:  # adjoints, what the runtime supplies (role TARGET), param gradients
                access = "VarAccess.READ_ONLY" if a.role == Role.PARAM else None  # shared by the batch
                m.vars.append(Var(name, GENN_TYPES.get(a.dtype, "scalar"), access))
                p.var_init[name] = 0 if a.dtype in INT_DTYPES else 0.0
                held.add(name)
        for name, a in bwd.printer.code.egps.items():
            add_trajectory(p, name, a)
        if bwd.printer.pr.reads_batch_size:
            m.extra_global_params.append(Var("q_B", "scalar*"))
            p.egp_init["q_B"] = "np.ones(1, dtype=SCALAR)"
    p.reset_vars.update({var: value for var, value in reset.items() if var in held})
    if transmits:
        m.additional_input_vars.append(("q_D", "scalar", 0.0))
    backward = [f"const int q_kb = {_kb(k)};", *start, *lines]
    forward = [line for line in m.code.get("sim_code", "").splitlines() if line.strip()]
    halves = (
        [f"if ({_fwd(k)}) {{", *["    " + line for line in forward], "}", "else {"]
        if forward
        else [f"if ((int)round(t / dt) >= {k}) {{"]  # an input: nothing to do in forward steps
    )
    m.code["sim_code"] = "\n".join(
        [
            *([f"const uint64_t q_off = ((uint64_t)batch * {p.size} + id) * {buf.limit};"] if buf else []),
            *halves,
            *["    " + line for line in backward],
            "}",
        ]
    )


def stage_trajectories(kernel: Kernel, p: PopulationCtx, staged: dict[str, Array]) -> None:
    """Synapse code handles the spikes of backward step kb at the GeNN step after the neuron code
    of kb + 1 (and the first, kb = K - 1, after the last forward step's), and reads the post
    neurons' states at the end of step kb from their trajectories: the neuron code stages each at
    the end of every step into a var (`kernel_printer.staged_var`), which a delayed synapse reads
    d GeNN steps back like the adjoints (the states at the end of its arrival step kb + d)."""
    m, k = p.model, kernel.num_steps
    lines = [
        "// the trajectories the synapse code of the next step reads: the states at the end of its step",
        f"const int q__next = 2 * {k} - 2 - (int)round(t / dt);",
        f"if (q__next >= 0 && q__next < {k}) {{",
    ]
    for name, a in staged.items():
        m.vars.append(Var(name, "scalar"))
        p.var_init[name] = 0.0
        egp = genn_var(a, kernel)
        add_trajectory(p, egp, a)
        lines.append(f"    {name} = {egp}[((uint64_t)batch * {k} + q__next) * {p.size} + id];")
    lines.append("}")
    m.code["sim_code"] = "\n".join([m.code["sim_code"], *lines])


def _weave_synapse(s: ProjectionCtx, k: int, backward: list[str]) -> None:
    forward = s.wum.code["pre_spike_syn_code"]
    s.wum.code["pre_spike_syn_code"] = "\n".join(
        [
            f"if ({_fwd(k)}) {{",
            *["    " + line for line in forward.splitlines() if line.strip()],
            "}",
            "else {  // backward: this spike belongs to forward step 2K-1-(t/dt)",
            *["    " + line for line in backward],
            "}",
        ]
    )


__all__ = ["SPIKE_TIMES", "SpikeBuffer", "print_backward", "spike_buffer"]
