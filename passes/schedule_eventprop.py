"""Lower EventProp (the `TrainingIR` of `snnc.passes.eventprop`) into the kernel IR.

The derivation pass says *what* the backward pass computes; this pass says *when and where*, once,
for every backend (the semantics are in `snnc.passes.eventprop`'s docstring):

- forward: every population whose spikes the backward pass reads keeps a spike list per trial
  (`spike_list_<pop>` after its step): neuron, step, the values the jump needs (recorded after the
  update, before the reset, through `schedule_forward` taps), a `D` slot and the spike's rank among
  its neuron's spikes. A neuron's spikes past `max_spikes` are counted as overflow and dropped; a
  list full at its capacity (the runtime's, which grows it and runs the batch again) counts on, so a
  backward pass never reads a truncated list;
- backward, for k = K-1 .. 0 (entry `backward`): per projection, at the recorded spikes of its pre
  population of step k - delay, g and dL/dw per post neuron (once per step with spikes), then
  dL/dw and D_n over the row of every spike (`events_<proj>`); per spiking population, the jump of
  every spike of step k (`jump_<pop>`); per population, the readout drive and the backward step of
  every neuron (`adjoint_<pop>`);
- the trainer's inputs are TARGET arrays (dL/dy, dL/d(spike count), the batch's spike counts), and
  dL/dw is a GRADIENT array per trial, which the runtime sums.

Every generated name is an `ir.names.array` name with prefix `ep` or a `Local`, so none can equal a
user's symbol. Locals are named by position (`__lambda0` is the adjoint of the population's first
coupled state, the comment says which): a printer orders the terms of a sum by their symbols' names,
and float sums of three or more terms depend on that order, so a schedule whose names followed the
user's would make the gradients depend on how the user spells a state.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sympy
from snnc.ir import names
from snnc.ir.connectivity import kind_of
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.kernel import (
    BATCH,
    BATCH_SIZE,
    NUM_STEPS,
    STEP,
    Array,
    Entry,
    Events,
    If,
    Index,
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
    Stmt,
    Store,
    prune_lets,
    verify_kernel,
)
from snnc.ir.model import Network
from snnc.ir.names import array as array_name
from snnc.ir.symbols import TIME, TIMESTEP, is_zero, sym
from snnc.ir.training import PopulationGradient, TrainingIR, executed_jump

from . import schedule_delays
from .schedule_forward import DERIVED_COMMENT, DERIVED_PHASE, J, Tap, schedule_forward
from .specialise import specialise

PRE, EV, Q, M = Index("i"), Index("e"), Index("q"), Index("m")
ZERO = sympy.Float(0.0)


def _fail(message: str, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError(Diagnostic("EV-EVENTPROP-SCHEDULE", message, None, hint))


@dataclass
class SpikeList:
    """The arrays of one population's spike list (all [batch, events] but the counters)."""

    population: str
    id: Array
    step: Array
    capacity: Array
    length: Array
    count: Array
    overflow: Array
    D: Array | None = None
    nth: Array | None = None
    records: dict[str, tuple[Array, Array]] = field(default_factory=dict)  # name -> (scratch, list)


@dataclass
class _Builder:
    network: Network
    training: TrainingIR
    arrays: list[Array] = field(default_factory=list)
    taps: dict[str, list[Tap]] = field(default_factory=dict)
    lists: dict[str, SpikeList] = field(default_factory=dict)
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    #: population -> param symbol -> its element for a neuron index (a per-neuron param or derived
    #: param, or a trained shared param's one element)
    per_neuron: dict[str, dict[str, Callable[[Index], sympy.Expr]]] = field(default_factory=dict)
    derived: list[Stmt] = field(default_factory=list)  # per-neuron `pg.derived`, once per trial
    cursors: dict[str, str] = field(default_factory=dict)  # cursor array -> the population it walks
    param_grads: dict[str, Array] = field(default_factory=dict)  # ParamGradient key -> its array

    def add(self, array: Array) -> Array:
        self.arrays.append(array)
        return array

    def arrays_by_name(self) -> dict[str, Array]:
        return {a.name: a for a in self.arrays}

    def size(self, population: str) -> int:
        return self.network.populations[population].size

    def expr(self, population: str, expr: sympy.Basic, neuron: Index = J) -> sympy.Expr:
        """A TrainingIR expression of `population` with every param replaced by its number, or by
        its element for neuron `neuron` when it has one value per neuron."""
        values, arrays = self.values[population], self.per_neuron.get(population, {})
        expr = sympy.sympify(expr)
        subs: dict[sympy.Basic, sympy.Expr] = {}
        for s in expr.free_symbols:
            if s.name in values:
                subs[s] = sympy.Float(values[s.name], 17)
            elif s.name in arrays:
                subs[s] = arrays[s.name](neuron)
        return expr.xreplace(subs)


def eventprop_kernel(network: Network, precision: str = "float", event_buffer: int = 0) -> Kernel:
    """Specialise a network with an EventProp TrainingIR and schedule its forward and backward
    passes; the kernel is verified (an invalid one is an internal error, never the user's)."""
    kernel = schedule_eventprop(specialise(network), precision=precision, event_buffer=event_buffer)
    problems = verify_kernel(kernel)
    if problems:
        raise AssertionError("the EventProp schedule made an invalid kernel:\n" + "\n".join(problems))
    return dataclasses.replace(
        kernel, interface={**kernel.interface, "eventprop": eventprop_interface(kernel, network.training)}
    )


def eventprop_interface(kernel: Kernel, training: TrainingIR) -> dict[str, Any]:
    """What a loader needs to drive the `backward` entry: array names found by role, owner and var
    (spike lists and their counters, each output's dL/dy, recorded trajectories, gradients)."""

    def named(role: Role, var: str | None = None) -> dict[str, str]:
        return {a.owner: a.name for a in kernel.arrays if a.role == role and (var is None or a.var == var)}

    lists = {
        pop: {
            "over": kernel.find(Role.COUNTER, pop, "overflow").name,
            "cnt": kernel.find(Role.COUNTER, pop, "count").name,
            "ln": kernel.find(Role.COUNTER, pop, "length").name,
            "cap": cap,
        }
        for pop, cap in named(Role.INPUT, "capacity").items()
    }
    outputs = {
        pop: {
            "dly": name,
            "per_step": "steps" in kernel.array(name).shape,
            "readout": training.populations[pop].readout.kind,
        }
        for pop, name in named(Role.TARGET, "dL_dy").items()
    }
    trials = named(Role.TARGET, "spike_count_trials")
    trajectory = {
        pop: [kernel.find(Role.RECORD, pop, s).name for s in recorded(training, pg)]
        for pop, pg in training.populations.items()
        if recorded(training, pg)
    }
    return {
        "max_spikes": int(training.max_spikes),
        "lists": lists,
        "outputs": outputs,
        "regularised": {
            pop: {"nsum": name, "cnt": lists[pop]["cnt"], "ntrials": trials[pop]}
            for pop, name in named(Role.TARGET, "spike_count_sum").items()
        },
        "count_grads": named(Role.TARGET, "dL_dcount"),
        "gradients": {
            (names.param_key(a.var, a.owner) if a.var else a.owner): a.name
            for a in kernel.arrays
            if a.role == Role.GRADIENT
        },
        "trajectory": trajectory,
    }


def schedule_eventprop(network: Network, precision: str = "float", event_buffer: int = 0) -> Kernel:
    tr = network.training
    if not isinstance(tr, TrainingIR) or tr.algorithm != "eventprop":
        raise ValueError("schedule_eventprop needs a network with an EventProp TrainingIR")
    b = _Builder(network, tr)
    b.values = {name: _values(network, pg) for name, pg in tr.populations.items()}
    for pg in tr.populations.values():
        _per_neuron_values(b, pg)
    _param_gradient_arrays(b)
    for pop in _list_populations(network, tr):
        _spike_list(b, pop)
    for name, pg in tr.populations.items():
        _trajectory_taps(b, pg)
        _readout_arrays(b, name, pg)
    forward = schedule_forward(network, precision=precision, event_buffer=event_buffer, taps=b.taps)
    known = {a.name: a for a in forward.arrays}
    adjoints = {
        name: {
            s: b.add(
                Array(array_name("ep", name, "l", s), Role.ADJOINT, name, ("batch", b.size(name)), var=s)
            )
            for s in pg.states
        }
        for name, pg in tr.populations.items()
    }
    projections = [
        p
        for p in network.projections.values()
        if p.name in tr.weight_gradients or p.name in tr.transmissions or p.name in tr.delay_gradients
    ]
    events = [
        (_events_learnable if p.name in tr.delay_gradients else _events)(b, p.name, adjoints, known)
        for p in projections
    ]
    jumps = [
        _jump(b, name, pg, adjoints[name]) for name, pg in tr.populations.items() if pg.theta is not None
    ]
    steps = [_adjoint_step(b, name, pg, adjoints[name]) for name, pg in tr.populations.items()]
    lists = [_append(b, sl) for sl in b.lists.values()]
    reset_lists = Phase("reset_spike_lists", PhaseKind.RESET, _reset_lists(b), "empty spike lists")
    reset_backward = Phase(
        "reset_backward", PhaseKind.RESET, _reset_backward(b, adjoints, projections), "adjoints 0 at T"
    )
    run = forward.entries[0]
    forward, run, derived = _with_derived(forward, run, b.derived)
    per_step = list(run.per_step)
    for phase in lists:  # right after the phase that makes the population's spikes of the step
        owner = phase.name.removeprefix("spike_list_")
        maker = next(p for p in per_step if p in (f"step_{owner}", f"generate_{owner}"))
        per_step.insert(per_step.index(maker) + 1, phase.name)
    backward_phases = [_pruned(p) for p in (*events, *jumps, *steps)]
    return dataclasses.replace(
        forward,
        arrays=(*forward.arrays, *b.arrays),
        phases=(*forward.phases, reset_lists, *lists, reset_backward, *backward_phases),
        entries=(
            dataclasses.replace(run, before=(*run.before, reset_lists.name), per_step=tuple(per_step)),
            Entry(
                "backward",
                before=(*derived, reset_backward.name),
                per_step=tuple(p.name for p in backward_phases),
                steps="backward",
                prepare=run.prepare,  # the delays' ring offsets, if the run had to make them
            ),
        ),
    )


def _pruned(phase: Phase) -> Phase:
    """The phase without locals nothing reads (an adjoint a jump does not use, say)."""
    return dataclasses.replace(phase, body=prune_lets(phase.body))


# --------------------------------------------------------------------------------------------------
# What the schedule needs to know
# --------------------------------------------------------------------------------------------------


def _values(network: Network, pg: PopulationGradient) -> dict[str, float]:
    """Numbers for every param symbol of a PopulationGradient (`tau_mem`, `tau__x_to_h`, `__decay__*`),
    read from the specialised network (params, then derived params, through a double); a param
    with one value per neuron, and what is derived from it, has none (`_per_neuron_values`)."""
    spec = network.specialised
    values: dict[str, float] = {TIMESTEP: float(network.dt)}
    for symbol, owner, pname in pg.params:
        owner_spec = spec.populations[pg.population] if owner == "neuron" else spec.projections[owner]
        value = dict(owner_spec.values).get(pname)
        if value is not None and not sympy.sympify(value).free_symbols:
            values[symbol] = float(value)
    for name, expr in pg.derived:
        value = _numbers(expr, values)
        if not value.free_symbols:
            values[name] = float(sympy.N(value, 17))
    return values


def _per_neuron_values(b: _Builder, pg: PopulationGradient) -> None:
    """The arrays of `pg`'s per-neuron params (the forward schedule's `pp_`/`dp_` arrays), and one
    per derived param of the backward step over them (`__decay__tau_mem`), computed once per trial."""
    spec, pop = b.network.specialised, pg.population
    n = b.size(pop)
    arrays: dict[str, Callable[[Index], sympy.Expr]] = {}
    for symbol, owner, pname in pg.params:
        owner = pop if owner == "neuron" else owner
        owner_spec = spec.populations[pop] if owner == pop else spec.projections[owner]
        if pname in owner_spec.shared:
            a = Array(array_name("pp", owner, pname), Role.PARAM, owner, (1,))
            arrays[symbol] = lambda _, a=a: a[0]
        elif pname in owner_spec.per_neuron:
            a = Array(array_name("pp", owner, pname), Role.PARAM, owner, (n,))
            arrays[symbol] = lambda i, a=a: a[i]
        elif pname in dict(owner_spec.per_neuron_derived):
            a = Array(array_name("dp", owner, pname), Role.SCRATCH, owner, ("batch", n))
            arrays[symbol] = lambda i, a=a: a[BATCH, i]
    b.per_neuron[pop] = arrays
    stmts: list[Stmt] = []
    for k, (name, expr) in enumerate(pg.derived):
        if name in b.values[pop]:
            continue
        a = b.add(
            Array(
                array_name("ep", pop, "dp", str(k)),
                Role.SCRATCH,
                pop,
                ("batch", n),
                var=name,
                comment=f"{name} per neuron, once per trial",
            )
        )
        stmts.append(Store(a[BATCH, J], b.expr(pop, expr), comment=f"{name} = {expr}"))
        arrays[name] = lambda i, a=a: a[BATCH, i]
    if stmts:
        b.derived.append(Loop(Neurons(pop), tuple(stmts), {"j": J}, comment=f"backward step of {pop}"))


def _with_derived(forward: Kernel, run: Entry, stmts: list[Stmt]) -> tuple[Kernel, Entry, tuple[str, ...]]:
    """The forward kernel with the backward pass's per-neuron derived params joined to its
    `derived_params` phase (made if it has none), and the phases both entries run before their steps."""
    have = any(p.name == DERIVED_PHASE for p in forward.phases)
    if not stmts:
        return forward, run, (DERIVED_PHASE,) if have else ()
    if have:
        phases = tuple(
            dataclasses.replace(p, body=(*p.body, *stmts)) if p.name == DERIVED_PHASE else p
            for p in forward.phases
        )
    else:
        phase = Phase(DERIVED_PHASE, PhaseKind.RESET, tuple(stmts), DERIVED_COMMENT)
        phases = (forward.phases[0], phase, *forward.phases[1:])
        run = dataclasses.replace(run, before=(*run.before, DERIVED_PHASE))
    return dataclasses.replace(forward, phases=phases), run, (DERIVED_PHASE,)


def _numbers(expr: sympy.Basic, values: dict[str, float]) -> sympy.Expr:
    """`expr` with every symbol named in `values` replaced by its number (17 digits)."""
    expr = sympy.sympify(expr)
    return expr.xreplace({s: sympy.Float(values[s.name], 17) for s in expr.free_symbols if s.name in values})


def _list_populations(network: Network, tr: TrainingIR) -> list[str]:
    """Populations whose spikes the backward pass reads: every spiking population on the gradient
    path, and the pre population of every projection with a gradient or a transmission."""
    keep = {name for name, pg in tr.populations.items() if pg.theta is not None}
    for proj in [*tr.weight_gradients, *tr.transmissions, *tr.delay_gradients]:
        keep.add(network.projections[proj].pre)
    return [p for p in network.populations if p in keep]


def recorded(tr: TrainingIR, pg: PopulationGradient) -> tuple[str, ...]:
    """The states of `pg` whose trajectory the backward pass reads: the Euler fallback's, and
    those a trainable param's ∫ λ·∂f/∂p dt reads."""
    states = list(pg.trajectory) if pg.method != "exact" else []
    for p in tr.param_gradients.values():
        if p.population == pg.population:
            states += [s for s in p.trajectory if s not in states]
    return tuple(states)


def _trajectory_taps(b: _Builder, pg: PopulationGradient) -> None:
    """The Euler fallback (and a trainable param's gradient) reads the trajectory of the states
    its Jacobian (∂f/∂p) depends on: a neuron state
    from the forward pass's recording of it (`rv_<pop>__<state>`, the state at the end of each step),
    a synapse state from a recording of the same name and shape that a tap fills at the end of each
    step (after the synapse's own update; synapse states have no reset)."""
    model = b.network.models[b.network.populations[pg.population].model]
    n = b.size(pg.population)
    for s in recorded(b.training, pg):
        if s in model.states:
            continue
        rec = b.add(
            Array(
                array_name("rv", pg.population, s),
                Role.RECORD,
                pg.population,
                ("batch", "steps", n),
                var=s,
                comment=f"trajectory of {s} (the backward Euler step reads it)",
                optional=True,
            )
        )
        b.taps.setdefault(pg.population, []).append(
            Tap(rec[BATCH, STEP, J], sym(s), "end", comment=f"trajectory of {s}")
        )


def _trajectory_env(b: _Builder, pop: str, pg: PopulationGradient, neuron: Index) -> dict:
    """Each trajectory state of `pop` as its recording at step k (`rv_<pop>__<state>`, the state at
    the end of the step: the forward recording of a neuron state, `_trajectory_taps`' of a synapse
    state), for neuron index `neuron`."""
    shape = ("batch", "steps", b.size(pop))
    return {
        sym(s): Array(array_name("rv", pop, s), Role.RECORD, pop, shape)[BATCH, STEP, neuron]
        for s in pg.trajectory
    }


def _start_env(b: _Builder, pop: str, states: tuple[str, ...], neuron: Index) -> dict:
    """Each state as it was at the start of step k (the end of step k - 1; its initial value at
    k = 0), from its trajectory recording."""
    net = b.network
    shape = ("batch", "steps", b.size(pop))
    out = {}
    for s in states:
        base, proj = names.split_coupled(s)
        if proj is None:
            init = net.populations[pop].inits.get(s, net.models[net.populations[pop].model].states[s].init)
        else:
            init = net.models[net.projections[proj].synapse].states[base].init
        rec = Array(array_name("rv", pop, s), Role.RECORD, pop, shape)[BATCH, STEP - 1, neuron]
        out[sym(s)] = sympy.Piecewise((sympy.Float(float(init)), sympy.Eq(STEP, 0)), (rec, True))
    return out


def _param_gradient_arrays(b: _Builder) -> None:
    """dL/dp per trial and neuron of the population whose adjoints carry it (the runtime sums)."""
    for key, p in b.training.param_gradients.items():
        b.param_grads[key] = b.add(
            Array(
                array_name("ep", p.owner, "pgrad", p.param),
                Role.GRADIENT,
                p.owner,
                ("batch", b.size(p.population)),
                var=p.param,
                comment=f"dL/d{p.param} per trial and neuron of {p.population}",
            )
        )


def _of(b: _Builder, pop: str) -> list:
    return [p for p in b.training.param_gradients.values() if p.population == pop]


def _records(pg: PopulationGradient) -> list[tuple[str, sympy.Expr, str]]:
    """The values each spike records for its jump, and where in the step (the spike time is the
    step's, not recorded)."""
    return [(r.name, r.expr, r.at) for r in pg.records if r.name != names.SPIKE_TIME]


# --------------------------------------------------------------------------------------------------
# Forward: spike lists and what each spike records
# --------------------------------------------------------------------------------------------------


def _spike_list(b: _Builder, pop: str) -> None:
    n = b.size(pop)
    events = ("batch", "events")

    def counter(key: str, shape: tuple, dtype: str, comment: str) -> Array:
        return b.add(
            Array(array_name("ep", pop, key), Role.COUNTER, pop, shape, dtype, var=key, comment=comment)
        )

    sl = SpikeList(
        pop,
        id=b.add(Array(array_name("ep", pop, "id"), Role.SPIKE_LIST, pop, events, "int32", var="id")),
        step=b.add(Array(array_name("ep", pop, "step"), Role.SPIKE_LIST, pop, events, "int32", var="step")),
        capacity=b.add(
            Array(
                array_name("ep", pop, "capacity"),
                Role.INPUT,
                pop,
                (1,),
                "int64",
                var="capacity",
                comment="spike list capacity per trial (the runtime's; it grows the list when a trial needs more)",
            )
        ),
        length=counter(
            "length", ("batch",), "int64", "spikes listed (may pass the capacity: then the batch runs again)"
        ),
        count=counter("count", ("batch", n), "int32", "spikes per neuron, overflow included"),
        overflow=counter("overflow", ("batch",), "int64", "spikes past max_spikes, dropped"),
    )
    pg = b.training.populations.get(pop)
    if pg is not None and pg.theta is not None:
        sl.D = b.add(
            Array(
                array_name("ep", pop, "D"), Role.SPIKE_LIST, pop, events, var="D", comment="Σ w g per spike"
            )
        )
        if names.IS_FIRST_SPIKE in {s.name for s in pg.dlp_dts.free_symbols}:
            sl.nth = b.add(
                Array(
                    array_name("ep", pop, "nth"),
                    Role.SPIKE_LIST,
                    pop,
                    events,
                    "int32",
                    var="nth",
                    comment="rank of the spike among its neuron's spikes",
                )
            )
        for rec, expr, at in _records(pg):
            scratch = b.add(
                Array(
                    array_name("ep", pop, "x", rec),
                    Role.SCRATCH,
                    pop,
                    ("batch", n),
                    var=rec,
                    comment=f"{rec} this step",
                )
            )
            listed = b.add(
                Array(
                    array_name("ep", pop, "r", rec),
                    Role.SPIKE_LIST,
                    pop,
                    events,
                    var=rec,
                    comment=f"{rec} per spike",
                )
            )
            sl.records[rec] = (scratch, listed)
            b.taps.setdefault(pop, []).append(
                Tap(scratch[BATCH, J], b.expr(pop, expr), at, comment=f"record {rec}")
            )
    b.lists[pop] = sl


def _append(b: _Builder, sl: SpikeList) -> Phase:
    """This step's spikes of the population onto its list, in emission order."""
    cap, c, n = Local("__capacity"), Local("__count"), Local("__slot")
    stored: list[Stmt] = [Store(sl.id[BATCH, n], PRE), Store(sl.step[BATCH, n], STEP)]
    if sl.D is not None:
        stored.append(Store(sl.D[BATCH, n], ZERO))
    if sl.nth is not None:
        stored.append(Store(sl.nth[BATCH, n], c))
    stored += [
        Store(listed[BATCH, n], scratch[BATCH, PRE], comment=rec)
        for rec, (scratch, listed) in sl.records.items()
    ]
    limit = b.training.max_spikes
    body = (
        Let(c, sl.count[BATCH, PRE]),
        Store(sl.count[BATCH, PRE], c + 1),
        If(
            c >= limit,
            (Store(sl.overflow[BATCH], sympy.Integer(1), "+=", f"past max_spikes = {limit}"),),
            (
                Let(n, sl.length[BATCH]),
                Store(sl.length[BATCH], n + 1),
                If(n < cap, tuple(stored)),
            ),
        ),
    )
    loop = Loop(
        Spikes(sl.population, STEP), body, {"i": PRE}, comment=f"the spikes of {sl.population} this step"
    )
    return Phase(
        f"spike_list_{sl.population}",
        PhaseKind.FORWARD,
        (Let(cap, sl.capacity[0]), loop),
        f"EventProp: the spikes of {sl.population} and what the backward pass reads of them",
    )


def _readout_arrays(b: _Builder, name: str, pg: PopulationGradient) -> None:
    n = b.size(name)
    ro = pg.readout
    if ro is not None:
        shape = ("batch", "steps", n) if ro.kind == "var" else ("batch", n)
        b.add(
            Array(
                array_name("ep", name, "dly"),
                Role.TARGET,
                name,
                shape,
                var="dL_dy",
                comment="dL/dy from the trainer",
            )
        )
        if ro.kind == "max_var":
            argmax = b.add(
                Array(
                    array_name("ep", name, "argmax"),
                    Role.COUNTER,
                    name,
                    ("batch", n),
                    "int32",
                    var="argmax",
                    comment="step of the max_var maximum",
                )
            )
            readout = Array(array_name("r", name), Role.READOUT, name, ("batch", n))
            here = (BATCH, J)
            b.taps.setdefault(name, []).append(
                Tap(
                    argmax[here],
                    sympy.Piecewise((STEP, sym(ro.var) > readout[here]), (argmax[here], True)),
                    "update",
                    comment="the step of the maximum so far",
                )
            )
    if pg.theta is not None and pg.role == "hidden":
        b.add(
            Array(
                array_name("ep", name, "rc"),
                Role.TARGET,
                name,
                ("batch", n),
                var="dL_dcount",
                comment="the trainer's dL/d(spike count), applied as r at each spike",
            )
        )
    if pg.theta is not None and pg.regularisation is not None:
        b.add(
            Array(
                array_name("ep", name, "nsum"),
                Role.TARGET,
                name,
                (n,),
                "double",
                var="spike_count_sum",
                comment="spike counts summed over the batch",
            )
        )
        b.add(
            Array(
                array_name("ep", name, "ntrials"),
                Role.TARGET,
                name,
                (1,),
                "double",
                var="spike_count_trials",
                comment="the trials those counts were summed over (every rank's, under MPI)",
            )
        )


def _reset_lists(b: _Builder) -> tuple[Stmt, ...]:
    body: list[Stmt] = []
    for sl in b.lists.values():
        body += [Store(sl.length[BATCH], sympy.Integer(0)), Store(sl.overflow[BATCH], sympy.Integer(0))]
        body.append(Loop(Neurons(sl.population), (Store(sl.count[BATCH, J], sympy.Integer(0)),), {"j": J}))
    for a in b.arrays:
        if a.var == "argmax":
            body.append(Loop(Neurons(a.owner), (Store(a[BATCH, J], sympy.Integer(0)),), {"j": J}))
    return tuple(body)


# --------------------------------------------------------------------------------------------------
# Backward
# --------------------------------------------------------------------------------------------------


def _find(b: _Builder, owner: str, var: str) -> Array | None:
    return next((a for a in b.arrays if a.owner == owner and a.var == var), None)


def _cursor(b: _Builder, owner: str, pop: str) -> Array:
    cursor = b.add(
        Array(
            array_name("ep", owner, "cursor"),
            Role.COUNTER,
            owner,
            ("batch",),
            "int64",
            var="event_cursor",
            comment=f"where the walk over the spikes of {pop} stopped",
        )
    )
    b.cursors[cursor.name] = pop
    return cursor


def _last_slot(sl: SpikeList) -> sympy.Expr:
    length, cap = sl.length[BATCH], sl.capacity[0]
    return sympy.Piecewise((length - 1, length < cap), (cap - 1, True))


def _env(b: _Builder, lam: dict[str, sympy.Expr]) -> dict[sympy.Symbol, sympy.Expr]:
    """What the TrainingIR's run-time symbols stand for in the kernel (see `snnc.ir.training`)."""
    dt = sympy.Float(b.network.dt, 17)
    env: dict[sympy.Symbol, sympy.Expr] = {sym(names.adjoint(s)): v for s, v in lam.items()}
    env[sym(names.STEP)] = STEP
    env[sym(names.STEPS)] = NUM_STEPS
    env[sym(names.DURATION)] = NUM_STEPS * dt
    env[sym(names.BATCH_SIZE)] = BATCH_SIZE
    env[sym(TIME)] = (STEP + 1) * dt
    env[sym(names.SPIKE_TIME)] = (STEP + 1) * dt
    return env


def _lowered(
    b: _Builder, pop: str, expr: sympy.Basic, env: dict, where: str, neuron: Index = J
) -> sympy.Expr:
    out = b.expr(pop, expr, neuron).xreplace(env)
    labels = {r.base.label for r in out.atoms(sympy.Indexed)}
    left = sorted(
        str(s) for s in out.free_symbols - labels if not isinstance(s, (Local, Index, sympy.Indexed))
    )
    if left:
        raise AssertionError(f"{where}: no kernel value for {', '.join(left)}")
    return out


def _lam_locals(
    pg: PopulationGradient, arrays: dict[str, Array], here: tuple
) -> tuple[list[Stmt], dict[str, Local]]:
    lets, lam = [], {}
    for n, s in enumerate(pg.states):
        lam[s] = Local(f"__lambda{n}")
        lets.append(Let(lam[s], arrays[s][here], f"adjoint of {s}"))
    return lets, lam


def _drive_after(b: _Builder, pop: str, pg: PopulationGradient, env: dict, exprs: list) -> list[Stmt]:
    """`names.DRIVE_AFTER` for post neuron M, if one of `exprs` reads it: the readout's per-step
    drive of sample k + 1 (the first an arrival at (k+1)·dt reaches), 0 past the last sample."""
    symbol = sym(names.DRIVE_AFTER)
    if pg.readout is None or not any(symbol in sympy.sympify(e).free_symbols for e in exprs):
        return []
    dly_array, argmax = _find(b, pop, "dL_dy"), _find(b, pop, "argmax")
    nxt = STEP + 1
    if len(dly_array.shape) == 3:
        dly = dly_array[BATCH, sympy.Piecewise((nxt, nxt < NUM_STEPS), (NUM_STEPS - 1, True)), M]
    elif argmax is not None:
        dly = sympy.Piecewise((dly_array[BATCH, M], sympy.Eq(argmax[BATCH, M], nxt)), (ZERO, True))
    else:
        dly = dly_array[BATCH, M]
    local, value = Local("__dly_after"), Local("__drive_after")
    step = sympy.sympify(pg.readout.step).xreplace({sym(names.STEP): sym(names.STEP) + 1})
    drive = _lowered(b, pop, step.xreplace({sym(names.DL_DY): local}), env, f"drive after of {pop}", M)
    env[symbol] = value
    return [
        Let(local, dly, "dL/dy of the next sample"),
        Let(value, sympy.Piecewise((drive, nxt < NUM_STEPS), (ZERO, True)), "its readout drive"),
    ]


def _events(b: _Builder, proj_name: str, adjoints: dict, known: dict[str, Array]) -> Phase:
    """g and dL/dw per post neuron, then dL/dw and D over the row of every pre spike of step k - delay."""
    net, tr = b.network, b.training
    proj = net.projections[proj_name]
    post = tr.populations[proj.post]
    sl = b.lists[proj.pre]
    tm, wg = tr.transmissions.get(proj_name), tr.weight_gradients.get(proj_name)
    n_post = b.size(proj.post)
    lets, lam = _lam_locals(post, adjoints[proj.post], (BATCH, M))
    env = _env(b, lam)
    if post.method != "exact":  # g and dL/dw read the post states the spike arrives at (end of step k)
        env.update(_trajectory_env(b, proj.post, post, M))
    prologue: list[Stmt] = list(lets)
    prologue += _drive_after(b, proj.post, post, env, [tm.g if tm is not None else 0])
    body: list[Stmt] = []
    weight = _weight(net, proj_name, known)
    if tm is not None:
        g = _per_post(b, proj_name, "g", n_post, "g per post neuron")
        value = _lowered(b, proj.post, tm.g, env, f"g of {proj_name}", M)
        if tm.cause is not None:  # the post spike these arrivals cause, at the next step
            cause, step = _cause_arrays(b, proj.post)
            caused = cause[BATCH, M] * _lowered(b, proj.post, tm.cause, env, f"cause of {proj_name}", M)
            value = sympy.Piecewise((caused, sympy.Eq(step[BATCH, M], STEP + 1)), (value, True))
        prologue.append(Store(g[BATCH, M], value))
        if tm.arrival != 0:  # a max_var maximum that moves with this arrival (`Transmission.arrival`)
            h = _per_post(b, proj_name, "h", n_post, "per arrival, not scaled by w")
            env[sym(names.MAX_VALUE)] = known[array_name("r", proj.post)][BATCH, M]  # the maximum
            argmax, dly = _find(b, proj.post, "argmax")[BATCH, M], _find(b, proj.post, "dL_dy")[BATCH, M]
            beside = sympy.Or(sympy.Eq(argmax, STEP), sympy.Eq(argmax, STEP + 1))
            env[sym(names.MAX_AT_ARRIVAL)] = sympy.Piecewise((dly, beside), (ZERO, True))
            arrival = _lowered(b, proj.post, tm.arrival, env, f"arrival term of {proj_name}", M)
            prologue.append(Store(h[BATCH, M], arrival))
            body.append(Store(sl.D[BATCH, EV], weight * g[BATCH, J] + h[BATCH, J], "+=", "D_n += w g + h"))
        else:
            body.append(Store(sl.D[BATCH, EV], weight * g[BATCH, J], "+=", "D_n += w g"))
    if wg is not None:
        e = _per_post(b, proj_name, "e", n_post, "dL/dw per arrival, per post neuron")
        kind = kind_of(proj.connectivity.kind)
        pre = net.populations[proj.pre]
        geometry = kind.geometry(proj.connectivity.args, tuple(pre.shape))
        shape = kind.weight_shape(pre.size, n_post, geometry)
        size = "nnz" if shape == (-1,) else math.prod(shape)
        grad = b.add(
            Array(
                array_name("ep", proj_name, "grad"),
                Role.GRADIENT,
                proj_name,
                ("batch", size),
                comment="dL/dw per trial, flat like the weights",
            )
        )
        prologue.append(Store(e[BATCH, M], _lowered(b, proj.post, wg.expr, env, f"dL/dw of {proj_name}", M)))
        body.insert(0, Store(grad[BATCH, Q], e[BATCH, J], "+=", "dL/dw"))
    cursor = _cursor(b, proj_name, proj.pre)
    delay = net.specialised.projections[proj_name].delay_steps
    loop = Loop(
        Events(proj.pre, STEP - delay, cursor.name),
        (Loop(Row(proj_name, PRE), tuple(body), {"j": J, "q": Q}),),
        {"e": EV, "i": PRE},
        comment=f"the spikes of {proj.pre} of step k" + (f" - {delay}" if delay else ""),
        prologue=(
            Loop(Neurons(proj.post), tuple(prologue), {"j": M}, comment="from λ+ of the post neurons"),
        ),
    )
    return Phase(
        f"events_{proj_name}",
        PhaseKind.BACKWARD,
        (loop,),
        f"EventProp: transmission and dL/dw of {proj_name}",
    )


def _events_learnable(b: _Builder, proj_name: str, adjoints: dict, known: dict[str, Array]) -> Phase:
    """The backward events of a projection with trainable delays: each connection reads the post
    values of its own arrival step from rings (`snnc.passes.schedule_delays`)."""
    net, tr = b.network, b.training
    proj = net.projections[proj_name]
    post = tr.populations[proj.post]
    tm, wg, dg = (d.get(proj_name) for d in (tr.transmissions, tr.weight_gradients, tr.delay_gradients))
    if tm is not None and not is_zero(sympy.expand(tm.g - dg.per_weight)):
        raise AssertionError(f"{proj_name}: the delay gradient's g differs from the transmission's")
    lets, lam = _lam_locals(post, adjoints[proj.post], (BATCH, M))
    env = _env(b, lam)
    if post.method != "exact":  # g and dL/dw read the post states at the arrival (end of step k)
        env.update(_trajectory_env(b, proj.post, post, M))
    per_post = {"g": dg.per_weight, **({"e": wg.expr} if wg is not None else {})}
    lets = lets + _drive_after(b, proj.post, post, env, [dg.per_weight])

    def lowered(expr: sympy.Expr, key: str) -> sympy.Expr:
        return _lowered(b, proj.post, expr, env, f"{key} of {proj_name}", M)

    weight = known[array_name("w", proj_name)]
    shape = ("batch", schedule_delays.flat_size(weight))
    cursor = _cursor(b, proj_name, proj.pre)
    body, new = schedule_delays.backward_events(b, proj, known, per_post, lets, shape, cursor.name, lowered)
    for array in new:
        b.add(array)
    return Phase(
        f"events_{proj_name}",
        PhaseKind.BACKWARD,
        body,
        f"EventProp: transmission, dL/dw and dL/d(delay) of {proj_name} at each connection's arrival",
    )


def _per_post(b: _Builder, projection: str, var: str, n_post: int, comment: str) -> Array:
    """A value per post neuron of a projection, computed once per step with pre spikes."""
    name = array_name("ep", projection, var)
    return b.add(Array(name, Role.SCRATCH, projection, ("batch", n_post), var=var, comment=comment))


def _weight(net: Network, proj_name: str, known: dict[str, Array]) -> sympy.Expr:
    name = array_name("w", proj_name)
    if name in known:
        return known[name][Q]
    proj = net.projections[proj_name]
    fixed = kind_of(proj.connectivity.kind).fixed_weight(proj.connectivity.args)
    return sympy.Rational(fixed.numerator, fixed.denominator)


def _jump(b: _Builder, name: str, pg: PopulationGradient, adjoints: dict[str, Array]) -> Phase:
    """The jump of every spike of this step, from λ+ and what the spike recorded."""
    sl = b.lists[name]
    lets, lam = _lam_locals(pg, adjoints, (BATCH, PRE))
    env = _env(b, lam)
    body: list[Stmt] = list(lets)
    for n, (rec, (_, listed)) in enumerate(sl.records.items()):
        local = Local(f"__record{n}")
        body.append(Let(local, listed[BATCH, EV], f"record {rec}"))
        env[sym(rec)] = local
    D, dly, first, nsum, dlp = (Local(n) for n in ("__D", "__dly", "__first", "__nsum", "__dlp"))
    body.append(Let(D, sl.D[BATCH, EV], "Σ w g over the spike's row"))
    env[sym(names.D)] = D
    dly_array = _find(b, name, "dL_dy")
    if dly_array is not None and len(dly_array.shape) == 2:
        body.append(Let(dly, dly_array[BATCH, PRE], "dL/dy"))
        env[sym(names.DL_DY)] = dly
    else:
        env[sym(names.DL_DY)] = ZERO
    if sl.nth is not None:
        body.append(
            Let(first, sympy.Piecewise((1, sympy.Eq(sl.nth[BATCH, EV], 0)), (0, True)), "first spike?")
        )
        env[sym(names.IS_FIRST_SPIKE)] = first
    else:
        env[sym(names.IS_FIRST_SPIKE)] = ZERO
    nsum_array = _find(b, name, "spike_count_sum")
    if nsum_array is not None:
        body.append(Let(nsum, nsum_array[PRE]))
        env[sym(names.SPIKE_COUNT_SUM)] = nsum
        # the regulariser's batch is the trials the counts span, which under MPI is not this call's
        trials = Local("__trials")
        body.append(Let(trials, _find(b, name, "spike_count_trials")[0], "trials of the batch"))
        env[sym(names.BATCH_SIZE)] = trials
    else:
        env[sym(names.SPIKE_COUNT_SUM)] = ZERO
    value = _lowered(b, name, pg.dlp_dts, env, f"dl_p/dt_s of {name}", PRE)
    rc = _find(b, name, "dL_dcount")
    if rc is not None:
        # the crossing rate the jump divides by (recorded at every spike): r per spike, as the
        # compiled regulariser's dl_p/dt_s gives
        rate = _lowered(b, name, -sym(names.CROSSING_RATE_RECORD), env, f"spike-count drive of {name}", PRE)
        body.append(Let(Local("__rc"), rc[BATCH, PRE], "dL/d(spike count)"))
        value = value + rate * Local("__rc")
    body.append(Let(dlp, value, "dl_p/dt_s"))
    env[sym(names.DLP_DTS)] = dlp
    for p in _of(b, name):  # with λ⁺, before the jump
        if p.jump is not None:
            value = _lowered(b, name, p.jump, env, f"dL/d{p.param} at a spike of {name}", PRE)
            body.append(Store(b.param_grads[p.key][BATCH, PRE], value, "+=", f"dL/d{p.param}: spike term"))
    jumps = {a.target: a.expr for a in executed_jump(pg)}
    caused = None
    if pg.pulse:
        caused = Local("__caused")
        body += _pulse_cause(b, name, pg, env, caused)
    new = []
    for state in pg.states:
        target = names.adjoint(state)
        value = jumps.get(target, sym(target))
        if caused is not None:
            pulsed = next((a.expr for a in pg.pulse_jump if a.target == target), sym(target))
            value = sympy.Piecewise((pulsed, sympy.Eq(caused, 1)), (value, True))
        if value == sym(target):
            continue
        local = Local(f"__jumped{pg.states.index(state)}")
        body.append(
            Let(local, _lowered(b, name, value, env, f"jump of {name}", PRE), f"λ of {state} after the jump")
        )
        new.append((state, local))
    body += [Store(adjoints[s][BATCH, PRE], local) for s, local in new]
    cursor = _cursor(b, name, name)
    loop = Loop(
        Events(name, STEP, cursor.name),
        tuple(body),
        {"e": EV, "i": PRE},
        comment=f"the spikes of {name} of step k",
    )
    return Phase(f"jump_{name}", PhaseKind.BACKWARD, (loop,), f"EventProp: jumps at the spikes of {name}")


def _cause_arrays(b: _Builder, pop: str) -> tuple[Array, Array]:
    """Per neuron of a population with impulse inputs: G/(∇θ·Δx) of its newest impulse-caused spike
    and that spike's step, which the arrivals of the step read at the next backward step."""
    found = _find(b, pop, "pulse_cause"), _find(b, pop, "pulse_step")
    if found[0] is not None:
        return found
    shape = ("batch", b.size(pop))
    return (
        b.add(
            Array(
                array_name("ep", pop, "pulse_cause"),
                Role.SCRATCH,
                pop,
                shape,
                var="pulse_cause",
                comment="G / (∇θ·Δx) of the newest spike an impulse caused",
            )
        ),
        b.add(
            Array(
                array_name("ep", pop, "pulse_step"),
                Role.SCRATCH,
                pop,
                shape,
                var="pulse_step",
                comment="the step of that spike, a whole number (0: none; no arrival precedes step 0)",
            )
        ),
    )


def _pulse_cause(b: _Builder, name: str, pg: PopulationGradient, env: dict, caused: Local) -> list[Stmt]:
    """Whether this spike is the pulse's (θ(x⁻ − Δx) < 0) and, if so, what it hands its arrivals."""
    cause, step = _cause_arrays(b, name)
    test = _lowered(b, name, pg.pulse_test, env, f"impulse test of {name}", PRE)
    value = _lowered(b, name, pg.pulse_cause, env, f"impulse cause of {name}", PRE)
    return [
        Let(caused, sympy.Piecewise((1, test < 0), (0, True)), "caused by this step's impulses?"),
        Store(
            cause[BATCH, PRE],
            sympy.Piecewise((value, sympy.Eq(caused, 1)), (ZERO, True)),
            comment="G / ∇θ·Δx",
        ),
        Store(step[BATCH, PRE], sympy.Piecewise((STEP, sympy.Eq(caused, 1)), (0, True))),
    ]


def _adjoint_step(b: _Builder, name: str, pg: PopulationGradient, adjoints: dict[str, Array]) -> Phase:
    """The readout drive of step k, then the backward step from (k+1)·dt to k·dt."""
    here = (BATCH, J)
    lets, lam = _lam_locals(pg, adjoints, here)
    body: list[Stmt] = list(lets)
    env = _env(b, lam)
    if pg.method != "exact":  # the Euler fallback's Jacobian, on the state at the end of step k
        env.update(_trajectory_env(b, name, pg, J))
    ro = pg.readout
    spread = any(sym(names.DL_DY) in sympy.sympify(a.expr).free_symbols for a in pg.backward)
    if ro is not None and (pg.drive or spread):  # spread: the drive sits inside the backward step
        dly_array = _find(b, name, "dL_dy")
        argmax = _find(b, name, "argmax")
        dly = Local("__dly")
        if len(dly_array.shape) == 3:
            value = dly_array[BATCH, STEP, J]
        elif argmax is not None:
            value = sympy.Piecewise((dly_array[here], sympy.Eq(argmax[here], STEP)), (ZERO, True))
        else:
            value = dly_array[here]
        body.append(Let(dly, value, "dL/dy of this step"))
        env[sym(names.DL_DY)] = dly
        for target, expr in pg.drive:
            state = names.adjoint_state(target)
            driven = Local(f"__driven{pg.states.index(state)}")
            body.append(
                Let(driven, lam[state] + _lowered(b, name, expr, env, f"drive of {name}"), "readout drive")
            )
            lam[state] = driven
            env[sym(names.adjoint(state))] = driven
    new = []
    for a in pg.backward:
        state = names.adjoint_state(a.target)
        local = Local(f"__back{pg.states.index(state)}")
        body.append(
            Let(local, _lowered(b, name, a.expr, env, f"backward step of {name}"), f"λ of {state} at k·dt")
        )
        new.append((state, local))
    if any(p.continuous != 0 for p in _of(b, name)):  # ∫ λ·∂f/∂p dt, left Riemann sum: λ(k·dt), x(k·dt)
        at_k = _env(b, dict(new))
        at_k.update(_start_env(b, name, recorded(b.training, pg), J))
        dt = sympy.Float(b.network.dt, 17)
        for p in (p for p in _of(b, name) if p.continuous != 0):
            value = _lowered(b, name, p.continuous, at_k, f"dL/d{p.param} of {name}")
            body.append(Store(b.param_grads[p.key][here], dt * value, "+=", f"dL/d{p.param}: ∫ λ·∂f/∂p dt"))
    body += [Store(adjoints[s][here], local) for s, local in new]
    return Phase(
        f"adjoint_{name}",
        PhaseKind.BACKWARD,
        (Loop(Neurons(name), tuple(body), {"j": J}),),
        f"EventProp: readout drive and backward step of {name} ({pg.method})",
    )


def _reset_backward(b: _Builder, adjoints: dict, projections: list) -> tuple[Stmt, ...]:
    body: list[Stmt] = []
    for name, arrays in adjoints.items():
        body.append(Loop(Neurons(name), tuple(Store(a[BATCH, J], ZERO) for a in arrays.values()), {"j": J}))
    for proj in projections:
        grad = next(
            (a for a in b.arrays if a.owner == proj.name and a.role == Role.GRADIENT and a.var is None), None
        )
        if grad is not None:
            row = Loop(Row(proj.name, PRE), (Store(grad[BATCH, Q], ZERO),), {"j": J, "q": Q})
            body.append(Loop(Neurons(proj.pre), (row,), {"j": PRE}))
    for a in b.arrays:
        if a.role == Role.GRADIENT and a.var == "delay" and a.owner in b.training.delay_gradients:
            row = Loop(Row(a.owner, PRE), (Store(a[BATCH, Q], ZERO),), {"j": J, "q": Q})
            body.append(Loop(Neurons(b.network.projections[a.owner].pre), (row,), {"j": PRE}))
        elif a.var == "pulse_step":
            body.append(Loop(Neurons(a.owner), (Store(a[BATCH, J], sympy.Integer(0)),), {"j": J}))
        elif a.var is not None and a.var.startswith("ring_"):
            body += schedule_delays.clear(a, "no arrival after T")
    for key, grad in b.param_grads.items():
        pop = b.training.param_gradients[key].population
        body.append(Loop(Neurons(pop), (Store(grad[BATCH, J], ZERO),), {"j": J}))
    for cursor, pop in b.cursors.items():
        body.append(
            Store(b.arrays_by_name()[cursor][BATCH], _last_slot(b.lists[pop]), "=", "the newest spike")
        )
    return tuple(body)
