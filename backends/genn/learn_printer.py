"""Print a kernel's online learning (LEARN phases beside the forward step) for GeNN.

A kernel that learns online (`passes/schedule_eprop.py`) runs, per step k, learning phases between
and after the populations' forward steps: loops over neurons, reductions over a population, loops
over the synapses of a projection (some summing into their presynaptic neuron). GeNN runs one time
step as synapse code (S), spike delivery (D), neuron code (N), then whatever custom updates (C) the
runtime calls before the next step, so a loop can only run where GeNN puts its kind of code:

- a loop over the synapses of P becomes P's `synapse_dynamics_code` (S); a `+=` into a value per
  presynaptic neuron becomes `addToPre` into an additional input of the pre neuron, which only its
  neuron code of the same GeNN step reads;
- a loop over the neurons of p becomes p's neuron code (N), or a custom update over p (C) where that
  runs earlier; a reduction over p (`max`, sum) becomes a custom update with GeNN's neuron reduction;
- a loop over the spikes p emitted in the previous step reads p's spike flag before p's step; over
  those of d steps before that (a delayed projection), the flag's history, which p's neuron code
  shifts at the start of every step (`<flag>__d1` ... `<flag>__d<d + 1>`); a delayed projection
  then delivers through GeNN's dendritic delay buffer, so that its synapse code reads its pre
  neurons' vars as they are now.

Each learning loop runs at the earliest GeNN step `k + lag` whose slot of its kind comes after every
value it reads of step k (the forward phases stay at lag 0): the mapping of the kernel's phase order
onto GeNN's step order. A value read at a later GeNN step than it was made, and rewritten in between
by the next step, is read from a copy the holding population shifts at the start of every step
(`<var>__d1`, `<var>__d2`, ...). The runtime runs `EXTRA_STEPS` (the largest lag) more steps per
trial and the custom updates of `STEP_UPDATES` after the steps where their kernel step is one of the
trial's; every loop is guarded so that it runs for kernel steps 0..K-1 only, and the forward code
for GeNN steps below K only. What GeNN cannot order so (a loop that needs a value no slot can hold, a
forward step that would have to wait for a learning value) is refused by name (E-GENN-UNSUPPORTED).

Arrays: per-neuron values are vars of the population that holds them (a projection's value per
presynaptic neuron is held by the pre population, `<var>__<projection>`); per-synapse values are vars
of the projection's weight update model (the gradient `dg`, fixed feedback `b_fb`); the trained
per-neuron params are vars shared by the batch; a target per step is an extra global param
`t_<var>` [batch, steps, neuron], a target per trial a var `t_<var>` of every neuron of the trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
from snnc.backends.c.kernel_printer import INT_DTYPES
from snnc.ir import names as ir_names
from snnc.ir.kernel import (
    BATCH,
    STEP,
    Array,
    ElementRef,
    Entry,
    If,
    Kernel,
    Let,
    Loop,
    Neurons,
    Phase,
    PhaseKind,
    Role,
    Spikes,
    Stmt,
    Store,
    Synapses,
    walk,
)

from .kernel_printer import GENN_TYPES, NeuronCode, StatementPrinter, genn_var, shared_param
from .models import Var
from .params import filed_params
from .render import PopulationCtx, ProjectionCtx, deliver_dendritic, fail

#: GeNN's order within one time step: synapse code, spike delivery, neuron code, custom updates
SYN, DELIVER, NEU, CU = 0, 1, 2, 3
SLOT_NAMES = {SYN: "synapse code", DELIVER: "spike delivery", NEU: "neuron code", CU: "a custom update"}
#: the GeNN time step inside code strings (custom updates have no time: the runtime guards them)
NOW = "q_s"
#: the time step of the last neuron update, a var of populations whose custom updates read the step
STEP_VAR = "q_step"


@dataclass
class Group:
    """Statements that run together in one GeNN slot: a forward phase's code for one population or
    projection, or one top-level loop (a reduction: its initial store and loop) of a learning phase."""

    seq: int
    phase: Phase
    stmts: tuple[Stmt, ...]
    sub: int
    unit: str  # the population or projection whose code (or custom update) holds it
    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    lag: int = 0
    forward: bool = False
    kind: str = "loop"  # loop | reduce | spikes | zero | forward
    choices: tuple[int, ...] = ()  # slot kinds a learning loop may take (neuron loops: N or C)
    spike_delay: int = 0  # a loop over spikes: those of step k - 1 - spike_delay

    @property
    def name(self) -> str:
        return f"phase '{self.phase.name}'"


def _refs(expr: Any) -> set[str]:
    expr = sympy.sympify(expr)
    return {str(r.base.label) for r in expr.atoms(sympy.Indexed)}


def _access(stmts: tuple[Stmt, ...]) -> tuple[set[str], set[str]]:
    reads: set[str] = set()
    writes: set[str] = set()
    for st in walk(stmts):
        if isinstance(st, Let):
            reads |= _refs(st.expr)
        elif isinstance(st, Store):
            reads |= _refs(st.expr) | {
                str(r.base.label) for r in st.target.indices if isinstance(r, sympy.Indexed)
            }
            writes.add(st.target.array)
            if st.op != "=":
                reads.add(st.target.array)
        elif isinstance(st, If):
            reads |= _refs(st.cond)
    return reads, writes


def _flags_of(st: Stmt, rest: list[Stmt]) -> bool:
    """A loop over the neurons of p followed by a loop over p's spikes: one 0/1 value per neuron."""
    return (
        isinstance(st, Loop)
        and isinstance(st.space, Neurons)
        and bool(rest)
        and isinstance(rest[0], Loop)
        and isinstance(rest[0].space, Spikes)
        and rest[0].space.population == st.space.population
    )


def _step_text(lag: int, now: str = NOW) -> str:
    return now if lag == 0 else f"({now} - {lag})"


def _shifted(var: str, depth: int, note: str) -> list[str]:
    """Lines that move `var`'s history one step back at the start of a step: `<var>__d<m>` then
    holds its value of m steps ago, for m = 1 .. `depth` (`LearnPrinter.var(name, delay)`)."""
    lines = [f"// {note}", *[f"{var}__d{d} = {var}__d{d - 1};" for d in range(depth, 1, -1)]]
    return [*lines, f"{var}__d1 = {var};"]


class LearnPrinter:
    """Maps an online entry's learning phases onto the module's models (see the module docstring)."""

    def __init__(
        self,
        kernel: Kernel,
        entry: Entry,
        populations: dict[str, PopulationCtx],
        projections: dict[str, ProjectionCtx],
        initial: dict[str, np.ndarray],
    ) -> None:
        self.kernel = kernel
        self.entry = entry
        self.pops = populations
        self.projs = projections
        self.initial = initial  # PARAM / FEEDBACK array name -> its initial values
        self.arrays = {a.name: a for a in kernel.arrays}
        self.k = kernel.num_steps
        self.groups: list[Group] = []
        self.holders: dict[str, str] = {}  # array -> the population holding it per neuron
        self.accumulators: dict[str, str] = {}  # per-pre array summed by synapse code -> projection
        self.copies: dict[str, int] = {}  # array -> deepest delayed copy its holder keeps
        self.steps: dict[str, int] = {}  # population -> seq of its forward step
        self.custom: list[tuple[str, int]] = []  # (custom update group, lag), in the order they run
        self.arrays_out: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ grouping
    def build_groups(self) -> None:
        self._find_accumulators()
        seq = 0
        for name in self.entry.per_step:
            phase = self.kernel.phase(name)
            if phase.kind == PhaseKind.FORWARD:
                for unit, sub, stmts in self._forward_units(phase):
                    g = Group(seq, phase, stmts, sub, unit, forward=True, kind="forward")
                    g.reads, g.writes = _access(stmts)
                    if sub == NEU:
                        g.writes.add(f"spikes:{unit}")
                        self.steps.setdefault(unit, seq)
                    self.groups.append(g)
                    seq += 1
                continue
            body = list(phase.body)
            while body:
                st = body.pop(0)
                g = self._learn_group(seq, phase, st, body)
                self.groups.append(g)
                seq += 1

    def _forward_units(self, phase: Phase) -> list[tuple[str, int, tuple[Stmt, ...]]]:
        out: dict[tuple[str, int], list[Stmt]] = {}
        for st in phase.body:
            if isinstance(st, Loop) and isinstance(st.space, (Neurons,)):
                out.setdefault((st.space.population, NEU), []).append(st)
            elif isinstance(st, Loop):  # arrivals: GeNN's spike delivery of the projection
                out.setdefault((st.space.projection, DELIVER), []).append(st)
            else:  # EmitSpikes, Generate
                out.setdefault((st.population, NEU), []).append(st)
        return [(unit, sub, tuple(stmts)) for (unit, sub), stmts in out.items()]

    def _find_accumulators(self) -> None:
        """Per-presynaptic values that synapse loops sum into (`+=`) and neuron loops only zero."""
        summed: dict[str, str] = {}
        other: set[str] = set()
        for name in self.entry.per_step:
            for st in self.kernel.phase(name).body:
                if not isinstance(st, Loop):
                    continue
                for inner in walk(st.body):
                    if not isinstance(inner, Store):
                        continue
                    a = inner.target.array
                    if isinstance(st.space, Synapses) and inner.op == "+=" and len(inner.target.indices) == 2:
                        if tuple(inner.target.indices) == (BATCH, st.vars["i"]):
                            summed[a] = st.space.projection
                            continue
                    if isinstance(st.space, Neurons) and inner.expr.is_zero and inner.op == "=":
                        continue
                    other.add(a)
        self.accumulators = {a: p for a, p in summed.items() if a not in other}

    def _learn_group(self, seq: int, phase: Phase, st: Stmt, rest: list[Stmt]) -> Group:
        where = f"phase '{phase.name}'"
        if isinstance(st, Store) and len(st.target.indices) == 1 and rest:
            loop = rest.pop(0)  # a reduction: its initial value, then the loop over the population
            if not (isinstance(loop, Loop) and isinstance(loop.space, Neurons)):
                raise fail(f"{where}: a store to '{st.target.array}' outside a loop has no GeNN form")
            g = Group(seq, phase, (st, loop), CU, loop.space.population, kind="reduce")
        elif isinstance(st, Loop) and isinstance(st.space, Synapses):
            g = Group(seq, phase, (st,), SYN, st.space.projection)
        elif isinstance(st, Loop) and isinstance(st.space, Spikes) or _flags_of(st, rest):
            zero = None
            if not isinstance(st.space, Spikes):  # values per neuron first, then set at the spikes
                zero, st = st, rest.pop(0)
            back = sympy.sympify(STEP - 1 - st.space.step)
            if not (back.is_Integer and back >= 0):
                raise fail(
                    f"{where}: it reads the spikes of '{st.space.population}' of step {st.space.step}; "
                    "GeNN's neuron code keeps those of earlier steps only",
                    hint="use the c backend for this network",
                )
            g = Group(seq, phase, (*([zero] if zero else []), st), NEU, st.space.population, kind="spikes")
            g.spike_delay = int(back)
            g.reads.add(f"spikes:{st.space.population}")
        elif isinstance(st, Loop) and isinstance(st.space, Neurons):
            pop = st.space.population
            stores = [s for s in walk(st.body) if isinstance(s, Store)]
            if stores and all(s.target.array in self.accumulators for s in stores):
                g = Group(seq, phase, (st,), NEU, pop, kind="zero")  # GeNN zeroes its inputs itself
            else:
                g = Group(seq, phase, (st,), NEU, pop, choices=(NEU, CU))
        else:
            raise fail(f"{where}: a {type(st).__name__} of a learning phase has no GeNN form")
        reads, writes = _access(g.stmts)
        g.reads |= reads
        g.writes |= writes
        for loop in (s for s in g.stmts if isinstance(s, Loop)):
            self._note_holders(loop)
        return g

    def _note_holders(self, loop: Loop) -> None:
        """Which population holds each per-neuron array the loop touches (a projection's value per
        pre neuron is held by the pre population)."""
        if isinstance(loop.space, Synapses):
            info = self.kernel.projections[loop.space.projection]
            ends = {loop.vars["i"]: info.pre, loop.vars["j"]: info.post}
        else:
            ends = {v: loop.space.population for v in loop.vars.values()}
        for st in walk(loop.body):
            exprs = (
                [st.target, st.expr]
                if isinstance(st, Store)
                else [getattr(st, "expr", None), getattr(st, "cond", None)]
            )
            for e in exprs:
                if e is None:
                    continue
                for ref in sorted(sympy.sympify(e).atoms(sympy.Indexed), key=str):
                    a = self.arrays[str(ref.base.label)]
                    idx = tuple(ref.indices)
                    if len(idx) == 2 and idx[0] == BATCH and idx[1] in ends and len(a.shape) == 2:
                        self.holders.setdefault(a.name, ends[idx[1]])

    # ------------------------------------------------------------------ placement
    def _ordered(self, a: tuple, b: tuple) -> bool:
        """Whether position a = (time, sub, unit, lag, seq) runs before b in GeNN."""
        if (a[0], a[1]) != (b[0], b[1]):
            return (a[0], a[1]) < (b[0], b[1])
        if a[1] == DELIVER or (a[1] in (SYN, NEU) and a[2] != b[2]):
            return False  # different populations or projections in one slot: no order
        return (-a[3], a[4]) < (-b[3], b[4])

    @staticmethod
    def _pos(g: Group, offset: int = 0) -> tuple:
        """Where g runs for kernel step k + offset: (GeNN step - k, slot, unit, lag, kernel order)."""
        return (g.lag + offset, g.sub, g.unit, g.lag, g.seq)

    def place(self) -> None:
        last: dict[str, Group] = {}
        for g in self.groups:
            producers = [last[a] for a in sorted(g.reads) if a in last]
            if g.forward or g.kind in ("spikes", "zero"):
                g.lag = 0
                step = self.steps.get(g.unit)
                if g.kind == "spikes" and step is not None and step < g.seq and g.unit in self._stepped():
                    raise fail(
                        f"{g.name} reads the spikes '{g.unit}' emitted in the previous step after "
                        f"'{self.groups[step].phase.name}' has replaced them with this step's: GeNN keeps "
                        "one spike flag per neuron",
                        hint="use the c backend for this network",
                    )
            elif g.kind == "reduce":
                g.lag = self._earliest(g, producers, CU)
            else:
                options = g.choices or (g.sub,)
                best = None
                for sub in options:
                    if sub == CU and not self._custom_ok(g):
                        continue
                    lag = self._earliest(g, producers, sub)
                    if best is None or (lag, sub) < best:
                        best = (lag, sub)
                if best is None:
                    raise fail(f"{g.name}: a loop over '{g.unit}' that no GeNN slot can run")
                g.lag, g.sub = best
            for p in producers:
                if p.kind != "zero" and not self._ordered(self._pos(p), self._pos(g)):
                    raise fail(
                        f"{g.name} runs in {SLOT_NAMES[g.sub]} of '{g.unit}' at step k+{g.lag}, but reads what "
                        f"{p.name} computes later in GeNN's step order ({SLOT_NAMES[p.sub]} of '{p.unit}' at "
                        f"step k+{p.lag})",
                        hint="use the c backend for this network",
                    )
            for a in g.writes:
                last[a] = g

    def _stepped(self) -> set[str]:
        """Populations whose forward step this entry prints (not input generators)."""
        return {
            g.unit
            for g in self.groups
            if g.forward and g.sub == NEU and any(isinstance(st, Loop) for st in g.stmts)
        }

    def _custom_ok(self, g: Group) -> bool:
        """Custom updates read no per-step target and no synapse sums (GeNN gives them neither)."""
        return not any(
            a in self.accumulators or "steps" in self.arrays[a].shape for a in g.reads if a in self.arrays
        )

    def _reads_step(self, g: Group) -> bool:
        for st in walk(g.stmts):
            for e in (getattr(st, "expr", None), getattr(st, "cond", None)):
                if e is not None and STEP in sympy.sympify(e).free_symbols:
                    return True
        return False

    def _earliest(self, g: Group, producers: list[Group], sub: int) -> int:
        lag = 0
        for p in producers:
            if p.kind == "zero":
                continue
            same_slot_ok = sub == CU or (sub == p.sub and p.unit == g.unit)
            need = p.lag if (sub > p.sub or (sub == p.sub and same_slot_ok and p.seq < g.seq)) else p.lag + 1
            lag = max(lag, need)
        return lag

    # ------------------------------------------------------------------ versions and copies
    def check_reads(self) -> None:
        """Every read sees the value the kernel's order gives it: directly, or from a delayed copy."""
        writers: dict[str, list[Group]] = {}
        for g in self.groups:
            for a in g.writes:
                writers.setdefault(a, []).append(g)
        self.delays: dict[tuple[int, str], int] = {}
        for g in self.groups:
            for a in sorted(g.reads):
                ws = [w for w in writers.get(a, []) if w.kind != "zero"]
                if not ws or a.startswith("spikes:"):
                    continue
                before = [w for w in ws if w.seq < g.seq]
                prod, offset = (before[-1], 0) if before else (ws[-1], -1)
                p_pos, r_pos = self._pos(prod, offset), self._pos(g)
                between = []
                for w in ws:
                    for m in range(-3, 4):
                        w_pos = self._pos(w, m)
                        if w_pos in (p_pos, r_pos):
                            continue
                        if self._ordered(p_pos, w_pos) and self._ordered(w_pos, r_pos):
                            between.append(w_pos)  # overwritten before the read
                        elif w_pos[:2] == r_pos[:2] and not self._ordered(r_pos, w_pos):
                            between.append(w_pos)  # written beside the read, in no order
                if not between or a in self.accumulators:
                    if between:
                        raise fail(f"{g.name}: the sum '{a}' is overwritten before it is read")
                    continue
                holder = self._holder(a)
                if holder is None or any(w.sub != NEU or w.unit != holder for w in ws) or len(ws) > 1:
                    raise fail(
                        f"{g.name} reads '{a}' at step k+{g.lag}, after GeNN has overwritten it; no GeNN var "
                        "can keep that value",
                        hint="use the c backend for this network",
                    )
                t_read = g.lag - 1 if g.sub == SYN else g.lag
                d = t_read - (prod.lag + offset)
                if d < 1:
                    raise fail(f"{g.name}: '{a}' is read before the value it needs is made")
                self.delays[(g.seq, a)] = d
                self.copies[a] = max(self.copies.get(a, 0), d)

    def _holder(self, name: str) -> str | None:
        a = self.arrays[name]
        if a.owner in self.kernel.populations and len(a.shape) == 2:
            return a.owner
        return self.holders.get(name)

    # ------------------------------------------------------------------ names
    def var(self, name: str, delay: int = 0) -> str:
        """The GeNN var of a per-neuron array (and of its delayed copy)."""
        a = self.arrays[name]
        if a.owner in self.kernel.populations or a.role in (Role.STATE, Role.PARAM):
            base = genn_var(a, self.kernel)  # a synapse param: the post neuron's var the step reads
        elif name in self.accumulators:
            base = ir_names.local("q", a.var or a.name)
        else:
            prefix = {Role.ELIGIBILITY: "e", Role.GRADIENT: "g"}.get(a.role, "q")
            base = ir_names.local(prefix, a.var or a.name) + "__" + a.owner
        return base if delay == 0 else f"{base}__d{delay}"

    def wu_var(self, a: Array) -> str:
        if a.role == Role.GRADIENT:
            return "dg"
        if a.role == Role.FEEDBACK:
            return "b_fb"
        return ir_names.local("e" if a.role == Role.ELIGIBILITY else "q", a.var or a.name)

    # ------------------------------------------------------------------ printing
    def print_all(self) -> dict[str, Any]:
        self._deliver_delayed()
        self.build_groups()
        self.place()
        self.check_reads()
        lags = [g.lag for g in self.groups]
        by_unit: dict[tuple[int, str], list[Group]] = {}
        for g in self.groups:
            if g.forward or g.kind == "zero":
                continue
            by_unit.setdefault((g.sub, g.unit), []).append(g)
        for (sub, unit), groups in by_unit.items():
            groups.sort(key=lambda g: (-g.lag, g.seq))
            if sub == SYN:
                self._synapse(unit, groups)
        neu = {unit: gs for (sub, unit), gs in by_unit.items() if sub == NEU}
        self.step_vars = {g.unit for g in self.groups if g.sub == CU and self._reads_step(g)}
        for pop in self.pops:
            if (
                pop in neu
                or any(self._holder(a) == pop for a in self.copies)
                or pop in self.steps
                or pop in self.step_vars
            ):
                self._neuron(pop, neu.get(pop, []))
        customs = sorted(
            (g for g in self.groups if g.sub == CU), key=lambda g: (-g.lag, g.seq)
        )  # one GeNN group per loop, run in this order
        runs: list[list[Group]] = []
        for g in customs:  # neighbouring maps over one population (no reduction) share one update
            last = runs[-1][-1] if runs else None
            if (
                last is not None
                and "reduce" not in (g.kind, last.kind)
                and (g.unit, g.lag) == (last.unit, last.lag)
            ):
                runs[-1].append(g)
            else:
                runs.append([g])
        for run in runs:
            self._custom(run)
        self._declare()
        return {"extra_steps": max(lags, default=0), "custom": self.custom}

    def _deliver_delayed(self) -> None:
        """A projection with a fixed delay delivers through GeNN's dendritic delay buffer, not an
        axonal delay: its synapse code (the learning loops over its synapses) then reads its pre
        neurons' vars as they are now, where an axonal delay would have GeNN read them `delay` steps
        back; a loop over the delayed pre spikes reads their flags' history (`_spike_history`)."""
        for s in self.projs.values():
            if s.delay_steps > 0:
                deliver_dendritic(s, str(s.delay_steps), self.k, s.delay_steps, [])

    def _printer(self, pop: str) -> StatementPrinter:
        printer = StatementPrinter(self.kernel, NeuronCode(pop))
        printer.pr.step_text = NOW
        return printer

    def _overrides(self, g: Group, printer: StatementPrinter, loop: Loop | None) -> dict[ElementRef, str]:
        """The GeNN text of every array element the group reads or writes, in its slot."""
        pr = printer.pr
        out: dict[ElementRef, str] = {}
        info = self.kernel.projections.get(g.unit) if g.sub == SYN else None
        for st in walk(g.stmts):
            exprs = [getattr(st, "target", None), getattr(st, "expr", None), getattr(st, "cond", None)]
            for e in exprs:
                if e is None:
                    continue
                for ref in sorted(sympy.sympify(e).atoms(sympy.Indexed), key=str):
                    out[ref] = self._text(g, ref, info, loop, pr)
        return out

    def _text(self, g: Group, ref: sympy.Indexed, info: Any, loop: Loop | None, pr: Any) -> str:
        a = self.arrays[str(ref.base.label)]
        idx = tuple(ref.indices)
        d = self.delays.get((g.seq, a.name), 0)
        where = f"{g.name}: element {ref} of {a.role.value} array '{a.name}'"
        if info is not None:  # synapse code
            i, j, q = loop.vars["i"], loop.vars["j"], loop.vars["q"]
            if a.role == Role.WEIGHT and a.owner == g.unit and idx == (q,):
                return "g"
            if a.owner == g.unit and idx in ((BATCH, i, j), (i, j), (BATCH, q)):  # (b, q): a CSR slot
                return self.wu_var(a)
            if a.name in self.accumulators and idx == (BATCH, i):
                return self.var(a.name)  # only ever the target of addToPre
            if len(idx) == 2 and idx[0] == BATCH and idx[1] in (i, j) and self._holder(a.name):
                side = info.pre if idx[1] == i else info.post
                if self._holder(a.name) == side:
                    return self._ref(g.unit, "pre" if idx[1] == i else "post", self.var(a.name, d), a)
            raise fail(f"{where} is not a value GeNN synapse code can reach")
        neuron = (loop.vars.get("j") or loop.vars.get("i")) if loop is not None else None
        if len(idx) == 2 and idx == (BATCH, neuron) and self._holder(a.name) == g.unit:
            return self.var(a.name, d)
        if len(idx) == 1 and (idx == (neuron,) or shared_param(a, ref)) and a.role == Role.PARAM:
            return self.var(a.name, d)
        if a.shape == ("batch",) and idx == (BATCH,):
            if a.role == Role.TARGET:
                return ir_names.local("t", a.var)  # a var of every neuron of the trial
            if g.sub != CU:
                raise fail(
                    f"{g.name} reads '{a.name}', a reduction over '{a.owner}', in {SLOT_NAMES[g.sub]}: GeNN "
                    "holds reductions in custom updates, which cannot run this loop",
                    hint="use the c backend for this network",
                )
            return ir_names.local("q", a.var or a.name)  # a reduction's custom update var
        if a.role == Role.TARGET and a.shape[:2] == ("batch", "steps") and len(idx) == 3 and idx[2] == neuron:
            n = a.shape[2]
            step = pr.value(idx[1], True)
            return f"{ir_names.local('t', a.var)}[((uint64_t)batch * {self.k} + {step}) * {n} + id]"
        raise fail(f"{where} has no place in GeNN's code for '{g.unit}'")

    def _ref(self, proj: str, side: str, name: str, a: Array) -> str:
        s = self.projs[proj]
        refs = s.wum_pre_var_refs if side == "pre" else s.wum_var_refs
        spec = s.wum.pre_neuron_var_refs if side == "pre" else s.wum.post_neuron_var_refs
        local = name if side == "post" or name not in s.wum_var_refs else f"{name}__pre"
        if local not in refs:
            refs[local] = name
            spec.append(Var(local, GENN_TYPES.get(a.dtype, "scalar"), "VarAccessMode.READ_ONLY"))
        return local

    def _guard(self, lag: int) -> str:
        return f"{NOW} < {self.k}" if lag == 0 else f"{NOW} >= {lag} && {NOW} < {self.k + lag}"

    def _body(
        self, g: Group, printer: StatementPrinter, accumulate: dict[str, str] | None = None, now: str = NOW
    ) -> list[str]:
        lines: list[str] = []
        for st in g.stmts:
            loop = st if isinstance(st, Loop) else None
            printer.pr.overrides.update(self._overrides(g, printer, loop))
            printer.pr.step_text = _step_text(g.lag, now)
            body = loop.body if loop is not None else (st,)
            if loop is not None and isinstance(loop.space, Neurons):
                printer.pr.neuron = loop.vars["j"]
            for inner in body:
                if isinstance(inner, Store) and accumulate is not None and inner.target.array in accumulate:
                    lines.append(
                        f"addToPre({printer.pr.value(inner.expr, False)});  // into {accumulate[inner.target.array]}"
                    )
                else:
                    lines += printer.stmt(inner, 0)
        return lines

    def _synapse(self, proj: str, groups: list[Group]) -> None:
        s = self.projs[proj]
        printer = self._printer(self.kernel.projections[proj].post)
        accumulate = {}
        for a, p in self.accumulators.items():
            if p == proj:
                accumulate[a] = self.var(a)
                if s.pre_target_var not in (None, self.var(a)):
                    raise fail(f"projection '{proj}': two sums into its pre neurons, GeNN has one pre target")
                s.pre_target_var = self.var(a)
                pre = self.pops[self.kernel.projections[proj].pre]
                if all(v[0] != self.var(a) for v in pre.model.additional_input_vars):
                    pre.model.additional_input_vars.append((self.var(a), "scalar", 0.0))
        lines = [f"const int {NOW} = (int)round(t / dt);"]
        for g in groups:
            lines.append(
                f"if ({self._guard(g.lag)}) {{  // {g.phase.comment or g.phase.name}, step k = t/dt - {g.lag}"
            )
            lines += ["    " + line for line in self._body(g, printer, accumulate)]
            lines.append("}")
            stored = [st.target.array for st in walk(g.stmts) if isinstance(st, Store)]
            for a in dict.fromkeys(stored):  # in the order the code stores them
                arr = self.arrays[a]
                if a in accumulate:
                    continue
                self._wu_declare(s, arr)
        s.wum.code["synapse_dynamics_code"] = "\n".join(lines)

    def _wu_declare(self, s: ProjectionCtx, a: Array) -> None:
        name = self.wu_var(a)
        if any(v.name == name for v in s.wum.vars):
            return
        s.wum.vars.append(Var(name, GENN_TYPES.get(a.dtype, "scalar")))
        s.wum_vars[name] = "0.0"
        if a.role in (Role.ELIGIBILITY, Role.GRADIENT):
            s.wu_reset_vars[name] = 0.0

    def _neuron(self, pop: str, groups: list[Group]) -> None:
        p = self.pops[pop]
        m = p.model
        printer = self._printer(pop)
        forward = [line for line in m.code.get("sim_code", "").splitlines() if line.strip()]
        step_seq = self.steps.get(pop, -1)
        lines = [f"const int {NOW} = (int)round(t / dt);"]
        if pop in self.step_vars:
            m.vars.append(Var(STEP_VAR, "int"))
            p.var_init[STEP_VAR] = 0
            lines.append(f"{STEP_VAR} = {NOW};  // for the custom updates, which know no time")
        for a, depth in sorted(self.copies.items()):
            if self._holder(a) != pop:
                continue
            lines += _shifted(
                self.var(a), depth, f"{a}: the values of earlier steps, for code that runs later"
            )
        lines += self._spike_history(pop)
        early = [g for g in groups if g.lag > 0 or g.seq < step_seq]
        late = [g for g in groups if g not in early]
        for g in early:
            lines += self._neuron_group(g, printer)
        if forward:
            lines += [f"if ({NOW} < {self.k}) {{  // the forward step", *["    " + x for x in forward], "}"]
        for g in late:
            lines += self._neuron_group(g, printer)
        flag = self._flag(pop)
        if flag is not None and flag[1]:
            lines.append(f"{flag[0]} = 0;  // spiked in this step: set by the reset code")
        m.code["sim_code"] = "\n".join(lines)
        guard = m.code.get("threshold_condition_code", "").strip()
        if guard:
            m.code["threshold_condition_code"] = f"(int)round(t / dt) < {self.k} && ({guard})"

    def _spike_depth(self, pop: str) -> int:
        """How many steps of `pop`'s spike flags its neuron code keeps for loops over delayed spikes
        (0: none; the flag itself holds the previous step's)."""
        delays = [g.spike_delay for g in self.groups if g.kind == "spikes" and g.unit == pop]
        return max(delays, default=0)

    def _spike_history(self, pop: str) -> list[str]:
        """At the start of every step, before anything reads them: `<flag>__d<m>` takes the flag of
        step k - m (the flag itself still holds k - 1's), for m = 1 .. the deepest delay + 1, so a
        loop over the spikes of step k - 1 - d reads `<flag>__d<d + 1>`. Vars of the neurons, int."""
        depth = self._spike_depth(pop)
        if depth == 0:
            return []
        flag, _ = self._flag(pop)
        m = self.pops[pop].model
        for d in range(1, depth + 2):
            if all(v.name != f"{flag}__d{d}" for v in m.vars):
                m.vars.append(Var(f"{flag}__d{d}", "int"))
                self.pops[pop].var_init[f"{flag}__d{d}"] = 0
        return _shifted(
            flag, depth + 1, f"{flag}: the spikes of earlier steps, for loops over delayed spikes"
        )

    def _flag(self, pop: str) -> tuple[str, bool] | None:
        """The var that says whether `pop` spiked in the previous step, and whether it is ours."""
        if not any(g.kind == "spikes" and g.unit == pop for g in self.groups):
            return None
        for g in self.groups:
            if g.forward and g.unit == pop:
                for st in g.stmts:
                    if hasattr(st, "flag"):
                        return genn_var(self.arrays[st.flag], self.kernel), False
        return "q_spiked", True

    def _neuron_group(self, g: Group, printer: StatementPrinter) -> list[str]:
        guard = self._guard(g.lag)
        if g.kind == "spikes":
            flag, ours = self._flag(g.unit)
            if ours:
                m = self.pops[g.unit].model
                if all(v.name != flag for v in m.vars):
                    m.vars.append(Var(flag, "int"))
                    self.pops[g.unit].var_init[flag] = 0
                    reset = m.code.get("reset_code", "")
                    m.code["reset_code"] = f"{flag} = 1;\n{reset}" if reset else f"{flag} = 1;"
            lines = [f"if ({guard}) {{  // {g.phase.comment}"]
            for loop in g.stmts:
                printer.pr.overrides.update(self._overrides(g, printer, loop))
                if isinstance(loop.space, Spikes) and g.spike_delay:
                    printer.pr.neuron = loop.vars["i"]
                    d = g.spike_delay
                    lines.append(
                        f"    if ({NOW} >= {d + 1} && {flag}__d{d + 1} != 0) {{  // spiked {d + 1} steps ago"
                    )
                    lines += [line for st in loop.body for line in printer.stmt(st, 2)]
                    lines.append("    }")
                elif isinstance(loop.space, Spikes):
                    printer.pr.neuron = loop.vars["i"]
                    lines.append(f"    if ({NOW} >= 1 && {flag} != 0) {{  // spiked in the previous step")
                    lines += [line for st in loop.body for line in printer.stmt(st, 2)]
                    lines.append("    }")
                else:
                    printer.pr.neuron = loop.vars["j"]
                    lines += [line for st in loop.body for line in printer.stmt(st, 1)]
            return [*lines, "}"]
        lines = [f"if ({guard}) {{  // {g.phase.comment or g.phase.name}, step k = t/dt - {g.lag}"]
        lines += ["    " + line for line in self._body(g, printer)]
        return [*lines, "}"]

    def _custom(self, groups: list[Group]) -> None:
        g = groups[0]
        pop = g.unit
        index = len(self.custom) + 1
        group = f"StepUpdate{index}"
        cu_name = f"step{index}_{pop}"
        printer = self._printer(pop)
        refs: dict[str, str] = {}
        var_refs: list[Var] = []
        cu_vars: list[Var] = []
        cu_init: dict[str, float] = {}
        writes = set().union(*(x.writes for x in groups))
        if g.kind == "reduce":
            loop = g.stmts[-1]
            printer.pr.overrides.update(self._overrides(g, printer, loop))
            printer.pr.neuron = loop.vars["j"]
            printer.pr.step_text = _step_text(g.lag, STEP_VAR)
            init, (st,) = g.stmts[0], loop.body
            red = self.arrays[init.target.array]
            here = init.target
            name = ir_names.local("q", red.var or red.name)
            if isinstance(st.expr, sympy.Max) and init.expr == sympy.S.NegativeInfinity:
                access, x = "CustomUpdateVarAccess.REDUCE_NEURON_MAX", [a for a in st.expr.args if a != here]
            elif isinstance(st.expr, sympy.Add) and init.expr.is_zero:
                access, x = "CustomUpdateVarAccess.REDUCE_NEURON_SUM", [st.expr - here]
            else:
                raise fail(f"{g.name}: the reduction '{st}' is neither a max from -inf nor a sum from 0")
            code = [f"{name} = {printer.pr.value(sympy.Add(*x) if len(x) != 1 else x[0], False)};"]
            cu_vars.append(Var(name, "scalar", access))
            cu_init[name] = 0.0
            self.reductions[red.name] = (cu_name, name)
        else:
            code = [line for x in groups for line in self._body(x, printer, now=STEP_VAR)]
        text = "\n".join(code)
        if STEP_VAR in text:  # the step, which custom updates do not know, from the neurons' var
            refs[STEP_VAR] = f'create_var_ref(pops["{pop}"], "{STEP_VAR}")'
            var_refs.append(Var(STEP_VAR, "int", "VarAccessMode.READ_ONLY"))
        for ref, txt in sorted(printer.pr.overrides.items(), key=lambda kv: kv[1]):
            a = self.arrays[str(ref.base.label)]
            if txt in refs or txt in {v.name for v in cu_vars} or txt not in text:
                continue
            written = a.name in writes
            mode = "VarAccessMode.READ_WRITE" if written else "VarAccessMode.READ_ONLY"
            if a.name in self.reductions:
                owner, var = self.reductions[a.name]
                refs[txt] = f'create_var_ref(updates["{owner}"], "{var}")'
            else:
                refs[txt] = f'create_var_ref(pops["{pop}"], "{txt}")'
            var_refs.append(Var(txt, GENN_TYPES.get(a.dtype, "scalar"), mode))
        from .emit import CustomUpdateCtx

        self.custom_ctx.append(
            CustomUpdateCtx.of_code(
                cu_name,
                group,
                f"snnc_{cu_name}",
                f"population {pop}: {g.phase.comment or g.phase.name} (step k = t/dt - {g.lag})",
                text,
                var_refs,
                refs,
                model_vars=cu_vars,
                var_values=cu_init,
            )
        )
        self.custom.append((group, g.lag))

    def _neuron_declare(self, pop: str, a: Array, name: str) -> None:
        """A var (or, for a target per step, an extra global param) of population `pop`."""
        p = self.pops[pop]
        if any(v.name == name for v in p.model.vars + p.model.extra_global_params):
            return
        if a.role == Role.TARGET and "steps" in a.shape:
            p.model.extra_global_params.append(Var(name, "scalar*"))
            p.egp_init[name] = f"np.zeros(batch_size * {self.k} * {p.size}, dtype=SCALAR)"
            return
        p.model.vars.append(Var(name, GENN_TYPES.get(a.dtype, "scalar")))
        p.var_init[name] = 0 if a.dtype in INT_DTYPES else 0.0

    def _declare(self) -> None:
        """Vars of every per-neuron array the printed code names, copies and targets included."""
        for g in self.groups:
            if g.forward or g.kind == "zero":
                continue
            for a in sorted(g.reads | g.writes):
                if a.startswith("spikes:") or a in self.accumulators:
                    continue
                arr = self.arrays[a]
                holder = self._holder(a)
                if holder is not None:
                    self._neuron_declare(holder, arr, self.var(a))
                    for d in range(1, self.copies.get(a, 0) + 1):
                        self._neuron_declare(holder, arr, self.var(a, d))
                elif arr.role == Role.TARGET:
                    name = ir_names.local("t", arr.var)
                    self._neuron_declare(arr.owner, arr, name)
                elif arr.role == Role.FEEDBACK:
                    s = self.projs[arr.owner]
                    if all(v.name != "b_fb" for v in s.wum.vars):
                        s.wum.vars.append(Var("b_fb", "scalar", "VarAccess.READ_ONLY"))
                        key = f"{arr.owner}.feedback"
                        s.wum_vars["b_fb"] = f'weights["{key}"]'
                        self.arrays_out[key] = np.asarray(self.initial[a], dtype=np.float64).ravel()


def print_learning(
    kernel: Kernel,
    entry: Entry,
    populations: list[PopulationCtx],
    projections: list[ProjectionCtx],
    initial: dict[str, np.ndarray],
) -> tuple[dict[str, Any], list[Any], dict[str, np.ndarray]]:
    """Weave `entry`'s learning phases into the models. Returns the facts the runtime needs
    (`extra_steps`, the per-step custom update groups with their lag), the custom updates, and the
    arrays the module loads (initial trained params, fixed feedback)."""
    printer = LearnPrinter(
        kernel, entry, {p.name: p for p in populations}, {s.name: s for s in projections}, initial
    )
    printer.custom_ctx = []
    printer.reductions = {}
    facts = printer.print_all()
    facts["biases"] = _params(kernel, printer)
    _reset_accumulated(kernel, printer)
    return facts, printer.custom_ctx, printer.arrays_out


def _params(kernel: Kernel, printer: LearnPrinter) -> dict[str, dict[str, Any]]:
    """Trained per-neuron params (and a synapse param, held by the post neuron: `p_tau__<P>`), filed
    like weights as `params.filed_params` files EventProp's, from the printer's initial values and
    with the gradient vars its learning code accumulates into."""
    meta, arrays = filed_params(
        kernel, printer.pops, lambda a: printer.initial.get(a.name), lambda g: printer.var(g.name)
    )
    printer.arrays_out.update(arrays)
    return meta


def _reset_accumulated(kernel: Kernel, printer: LearnPrinter) -> None:
    """Eligibilities and gradients start every trial at zero (the Reset update), as the kernel's
    runtime contract says; their vars may come from the forward step's code as well as ours."""
    for a in kernel.arrays:
        if a.role not in (Role.ELIGIBILITY, Role.GRADIENT):
            continue
        holder = printer._holder(a.name)
        if holder is None:
            continue
        name = printer.var(a.name)
        if any(v.name == name for v in printer.pops[holder].model.vars):
            printer.pops[holder].reset_vars[name] = 0.0


__all__ = ["print_learning"]
