"""Lower a specialised network's forward step into the kernel IR (`snnc.ir.kernel`).

This is the Discrete IR's step order (`snnc.ir.discrete`, items 1-4) written once, as data, for every
backend: per step, each projection delivers the spikes emitted `1 + delay` steps ago (`deliver_<P>`
phases, in declaration order), then each population steps (`generate_<pop>` for input generators,
`step_<pop>` for models). Inside a step a neuron reads its states and the synapse states of its
incoming projections, sums the synapse outputs into its inputs, evaluates temps and the simultaneous
update (reset targets held while refractory), updates its readout, spikes when not refractory and the
condition holds, resets, and counts down its refractory period; the synapse states then take their own
update (or are cleared, for impulse synapses). Spiking neurons are flagged and emitted in increasing
order, and states and spikes are stored in the optional recording arrays.

Locals holding a user's state, input or temp keep its name (`v`, `i_syn`); every other name the
schedule makes contains `__` (`v__new`, `__spiked`, array names such as `p_h__v`), which user names
cannot, so no generated name equals a user's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from snnc.ir import names
from snnc.ir.connectivity import kind_of
from snnc.ir.kernel import (
    BATCH,
    NUM_STEPS,
    STEP,
    Array,
    Arrivals,
    ElementRef,
    EmitSpikes,
    Entry,
    Generate,
    If,
    Index,
    Kernel,
    Let,
    Local,
    Loop,
    Neurons,
    Phase,
    PhaseKind,
    ProjectionInfo,
    Role,
    Spikes,
    Stmt,
    Store,
)
from snnc.ir.model import Network, Population, Projection, Readout, threshold_function
from snnc.ir.names import array as array_name
from snnc.ir.specialised import SpecialisedPopulation, SpecialisedProjection
from snnc.ir.symbols import TIME, WEIGHT, sym

from . import schedule_delays

#: initial value of each readout's accumulator
READOUT_INIT = {"max_var": float("-inf"), "first_spike_time": float("inf")}
J = Index("j")
Q = Index("q")  # a synapse's weight slot in an arrival loop


@dataclass(frozen=True)
class Tap:
    """A value a gradient schedule needs from inside a population's forward step, stored per neuron.

    `expr` is over the population's IR names: its states (after `update`, before `reset`), inputs
    and temps, the coupled synapse states `<state>__<projection>` (`names.coupled`), `names.Z` (1 if
    the neuron spikes in this step) and `names.REFRACTORY` (1 while it is refractory). `at` is
    "update" (after the update, before the readout and the spike; synapse states before their own
    update) or "end" (after the synapse states' update, which the env then holds; `Z` is known only
    here). `target` is an element of an array the gradient schedule declares, usually `a[BATCH, J]`."""

    target: ElementRef
    expr: sympy.Expr
    at: str = "end"
    op: str = "="
    comment: str = ""


def ring_slots(network: Network, population: str) -> int:
    """How many steps of spikes a population keeps: its longest outgoing delay, plus one."""
    delays = [
        network.specialised.projections[p.name].delay_steps for p in network.projections_from(population)
    ]
    return max(delays, default=0) + 1


@dataclass
class _Builder:
    network: Network
    event_buffer: int = 0
    taps: dict[str, list[Tap]] = field(default_factory=dict)
    arrays: list[Array] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    derived: list[Stmt] = field(default_factory=list)  # per-neuron derived params, once per trial
    prepare: list[Stmt] = field(default_factory=list)  # once per batch, before the trials (delays)
    param_envs: dict[str, dict[sympy.Symbol, sympy.Expr]] = field(default_factory=dict)
    resets: list[Stmt] = field(default_factory=list)  # more of the reset phase (delay buffers)

    def add(self, array: Array) -> Array:
        self.arrays.append(array)
        return array

    def get(self, name: str) -> Array:
        return next(a for a in self.arrays if a.name == name)


def forward_kernel(network: Network, precision: str = "float", event_buffer: int = 0) -> Kernel:
    """Specialise a discretised network and schedule its forward step; the kernel is verified, since
    a kernel a backend prints must never be an invalid one (an internal error, not a user's)."""
    from snnc.ir.kernel import verify_kernel

    from .specialise import specialise

    kernel = schedule_forward(specialise(network), precision=precision, event_buffer=event_buffer)
    problems = verify_kernel(kernel)
    if problems:
        raise AssertionError("the forward schedule made an invalid kernel:\n" + "\n".join(problems))
    return kernel


def schedule_forward(
    network: Network,
    precision: str = "float",
    event_buffer: int = 0,
    taps: dict[str, list[Tap]] | None = None,
) -> Kernel:
    """The forward kernel of a specialised network: arrays, the deliver/step phases and entry `run`.

    `event_buffer` > 0 keeps each spiking neuron's first `event_buffer` spike times per trial, and
    counts its spikes past them (the runtime reports the overflow). `taps` (per population) are the
    values a gradient schedule stores from inside the neuron loop; their arrays are the caller's to
    declare in the kernel it returns."""
    if network.specialised is None:
        raise ValueError("schedule_forward needs the specialise pass to have run")
    b = _Builder(network, event_buffer, taps=dict(taps or {}))
    b.add(
        Array(
            "q_example",
            Role.INPUT,
            network.name,
            ("batch",),
            "int64",
            var="example",
            comment="global example index (keys the RNG)",
        )
    )
    weights = {p.name: _projection_arrays(b, p) for p in network.projections.values()}
    for proj in network.projections.values():
        b.phases.append(_deliver(b, proj, weights[proj.name]))
    for pop in network.populations.values():
        b.phases.append(_population(b, pop))
    reset_body = (*_reset_body(b), *b.resets)
    reset = Phase("reset", PhaseKind.RESET, reset_body, "every per-trial array to its initial value")
    before: tuple[Phase, ...] = (reset,)
    if b.derived:
        before += (Phase(DERIVED_PHASE, PhaseKind.RESET, tuple(b.derived), DERIVED_COMMENT),)
    per_step = tuple(p.name for p in b.phases)
    first = (Phase(PREPARE_PHASE, PhaseKind.PREPARE, tuple(b.prepare), PREPARE_COMMENT),) if b.prepare else ()
    projections = {
        p.name: ProjectionInfo(
            p.pre,
            p.post,
            p.connectivity.kind,
            network.specialised.projections[p.name].delay_steps,
            kind_of(p.connectivity.kind).geometry(p.connectivity.args, network.populations[p.pre].shape),
            kind_of(p.connectivity.kind).layout,
        )
        for p in network.projections.values()
    }
    return Kernel(
        name=network.name,
        dt=float(network.dt),
        num_steps=network.num_steps,
        precision=precision,
        populations={p.name: p.size for p in network.populations.values()},
        projections=projections,
        arrays=tuple(b.arrays),
        phases=(*first, *before, *b.phases),
        entries=(
            Entry(
                "run",
                before=tuple(p.name for p in before),
                per_step=per_step,
                prepare=tuple(p.name for p in first),
            ),
        ),
    )


#: the reset phase that computes per-neuron derived params (`exp(-dt/tau_mem[j])`) once per trial
DERIVED_PHASE = "derived_params"
DERIVED_COMMENT = "derived params of per-neuron params, once per trial (not every step)"
#: the phase that computes, once per batch, what every trial reads alike (trained delays as ring offsets)
PREPARE_PHASE = "prepare"
PREPARE_COMMENT = "once per batch, before the trials: what every trial reads alike"


def params_env(b: _Builder, owner: str) -> dict[sympy.Symbol, sympy.Expr]:
    """The per-neuron params and derived params of a population or (per post neuron) a projection,
    as elements for neuron `J`; their arrays are declared, and the derived ones' computation queued
    for the `derived_params` phase, on first use."""
    if owner in b.param_envs:
        return b.param_envs[owner]
    net = b.network
    if owner in net.populations:
        spec, pop = net.specialised.populations.get(owner), owner
    else:
        spec, pop = net.specialised.projections[owner], net.projections[owner].post
    env: dict[sympy.Symbol, sympy.Expr] = {}
    if spec is None:
        return env
    n = net.populations[pop].size
    for param in spec.per_neuron:
        shared = param in spec.shared
        a = b.add(
            Array(
                array_name("pp", owner, param),
                Role.PARAM,
                owner,
                (1,) if shared else (n,),
                var=param,
                comment="trained, shared" if shared else "per neuron",
            )
        )
        env[sym(param)] = a[0] if shared else a[J]
    stmts = []
    for name, expr in spec.per_neuron_derived:
        a = b.add(
            Array(
                array_name("dp", owner, name),
                Role.SCRATCH,
                owner,
                ("batch", n),
                var=name,
                comment="derived per neuron, once per trial",
            )
        )
        stmts.append(Store(a[BATCH, J], sympy.sympify(expr).xreplace(env), comment=f"derived {name}"))
        env[sym(name)] = a[BATCH, J]
    if stmts:
        b.derived.append(Loop(Neurons(pop), tuple(stmts), {"j": J}, comment=f"of {owner}"))
    b.param_envs[owner] = env
    return env


# --------------------------------------------------------------------------------------------------
# Projections: weights, structure, synapse state and delivery
# --------------------------------------------------------------------------------------------------


def _projection_arrays(b: _Builder, proj: Projection) -> sympy.Expr:
    """Declare the projection's weights and structure; return the weight of synapse (i, j, q)."""
    net = b.network
    kind = kind_of(proj.connectivity.kind)
    pre, post = net.populations[proj.pre], net.populations[proj.post]
    fixed = kind.fixed_weight(proj.connectivity.args)
    if fixed is not None:
        return sympy.Rational(fixed.numerator, fixed.denominator)
    geometry = kind.geometry(proj.connectivity.args, tuple(pre.shape))
    shape: tuple[int | str, ...] = kind.weight_shape(pre.size, post.size, geometry)
    if shape == (-1,):  # drawn structure: CSR rows
        shape = ("nnz",)
        for key, size in (("row_ptr", pre.size + 1), ("col_idx", "nnz")):
            b.add(
                Array(
                    array_name("c", proj.name, key), Role.CONNECTIVITY, proj.name, (size,), "int32", var=key
                )
            )
    weight = b.add(
        Array(array_name("w", proj.name), Role.WEIGHT, proj.name, shape, comment=f"{kind.kind} weights")
    )
    return sympy.IndexedBase(weight.name)[Q]  # the printer maps q to the slot of the layout


def _synapse_state(b: _Builder, proj: Projection, state: str) -> Array:
    name = array_name("y", proj.name, state)
    for a in b.arrays:
        if a.name == name:
            return a
    init = float(b.network.models[proj.synapse].states[state].init)
    size = b.network.populations[proj.post].size
    return b.add(
        Array(name, Role.STATE, proj.name, ("batch", size), init=init, var=state, comment="per post neuron")
    )


def _deliver(b: _Builder, proj: Projection, weight: sympy.Expr) -> Phase:
    sp: SpecialisedProjection = b.network.specialised.projections[proj.name]
    syn = b.network.models[proj.synapse]
    states = {s: _synapse_state(b, proj, s) for s in syn.states}
    env = {**params_env(b, proj.name), **{sym(s): a[BATCH, J] for s, a in states.items()}}
    if proj.delay_trainable is not None:
        body = schedule_delays.deliver(b, proj, weight, states, env, sp.on_pre)
        comment = f"projection {proj.name}: trainable delays, at most {sp.max_delay_steps} step(s)"
        return Phase(f"deliver_{proj.name}", PhaseKind.FORWARD, body, comment)
    env[sym(WEIGHT)] = weight
    body = tuple(
        Store(
            states[a.target][BATCH, J],
            a.as_value(sym(a.target)).xreplace(env),
            comment=f"on_pre {a.target} {a.op} {a.expr}",
        )
        for a in sp.on_pre
    )
    loop = Loop(
        Arrivals(proj.name),
        body,
        comment=f"the spikes of {proj.pre} emitted {1 + sp.delay_steps} step(s) ago",
    )
    where = f"{proj.pre} -> {proj.post}, {proj.connectivity.kind}, synapse {proj.synapse}"
    comment = f"projection {proj.name}: {where}, delay {sp.delay_steps} step(s)"
    return Phase(f"deliver_{proj.name}", PhaseKind.FORWARD, (loop,), comment)


# --------------------------------------------------------------------------------------------------
# Populations
# --------------------------------------------------------------------------------------------------


def _population(b: _Builder, pop: Population) -> Phase:
    net = b.network
    model = net.models[pop.model]
    n = pop.size
    slots = ring_slots(net, pop.name)
    b.add(Array(array_name("sp", pop.name, "cnt"), Role.SPIKE_LIST, pop.name, ("batch", slots), "int32"))
    b.add(Array(array_name("sp", pop.name, "ids"), Role.SPIKE_LIST, pop.name, ("batch", slots, n), "int32"))
    # the spike raster, one bit per neuron and step: `EmitSpikes` and `Generate` fill it when asked
    b.add(
        Array(
            array_name("rs", pop.name),
            Role.RECORD,
            pop.name,
            ("batch", "steps", (n + 31) // 32),
            "uint32",
            comment="spike bitmask per step",
            optional=True,
        )
    )
    if model.generator is not None:
        return _generator(b, pop, model.generator)
    sp: SpecialisedPopulation = net.specialised.populations[pop.name]
    dm = net.discrete.get(pop.model)
    how = f": Discrete IR update ({dm.method}: {dm.reason})" if dm is not None else ""
    return Phase(
        f"step_{pop.name}",
        PhaseKind.FORWARD,
        _step(b, pop, sp),
        f"population {pop.name}: {n} x {pop.model}{how}",
    )


def _generator(b: _Builder, pop: Population, kind: str) -> Phase:
    if kind == "spike_source":
        for key, dtype in (("end", "int64"), ("times", "double"), ("ids", "int32")):
            b.add(Array(array_name("in", pop.name, key), Role.INPUT, pop.name, ("batch",), dtype, var=key))
        b.add(
            Array(
                array_name("in", pop.name, "cursor"),
                Role.COUNTER,
                pop.name,
                ("batch",),
                "int64",
                var="cursor",
                comment="next input spike of each trial",
            )
        )
        b.add(
            Array(
                array_name("q", pop.name, "last"),
                Role.COUNTER,
                pop.name,
                ("batch", pop.size),
                "int32",
                init=-1,
                var="last",
            )
        )
    else:
        b.add(
            Array(array_name("in", pop.name, "rate"), Role.INPUT, pop.name, ("batch", pop.size), var="rate")
        )
    return Phase(
        f"generate_{pop.name}", PhaseKind.FORWARD, (Generate(pop.name, kind),), f"input generator {kind}"
    )


def _step(b: _Builder, pop: Population, sp: SpecialisedPopulation) -> tuple[Stmt, ...]:
    net = b.network
    model = net.models[pop.model]
    n = pop.size
    here = (BATCH, J)
    states = {
        s: b.add(
            Array(
                array_name("p", pop.name, s),
                Role.STATE,
                pop.name,
                ("batch", n),
                init=float(pop.inits.get(s, st.init)),
                var=s,
            )
        )
        for s, st in model.states.items()
    }
    refrac = b.add(
        Array(
            array_name("q", pop.name, "refrac"), Role.COUNTER, pop.name, ("batch", n), "int32", var="refrac"
        )
    )
    flag = b.add(
        Array(array_name("q", pop.name, "flag"), Role.SCRATCH, pop.name, ("batch", n), "int32", var="flag")
    )
    body: list[Stmt] = []
    env: dict[sympy.Symbol, sympy.Expr] = {sym(TIME): STEP * sympy.Float(net.dt, 17)}
    env.update(params_env(b, pop.name))
    for param in sp.kept:  # a param training changes: one value per neuron (or one), read from its array
        shared = param in pop.trainable and not pop.trainable[param].per_neuron
        kept = b.add(
            Array(
                array_name("tp", pop.name, param),
                Role.PARAM,
                pop.name,
                (1,) if shared else (n,),
                var=param,
                comment="trained, shared" if shared else "trained",
            )
        )
        env[sym(param)] = kept[0] if shared else kept[J]
    for s, a in states.items():
        body.append(Let(Local(s), a[here], f"{pop.name}.{s}"))
        env[sym(s)] = Local(s)
    incoming = net.projections_to(pop.name)
    syn_env: dict[str, dict[sympy.Symbol, sympy.Expr]] = {}
    for proj in incoming:
        local_env = {}
        for s in net.models[proj.synapse].states:
            local = Local(array_name("ys", proj.name, s))
            body.append(Let(local, _synapse_state(b, proj, s)[here], f"{proj.name}.{s}"))
            local_env[sym(s)] = local
        syn_env[proj.name] = local_env
    for inp in model.inputs:
        terms = [
            net.specialised.projections[p.name].output.xreplace({**params_env(b, p.name), **syn_env[p.name]})
            for p in incoming
            if p.target == inp and net.specialised.projections[p.name].output is not None
        ]
        body.append(Let(Local(inp), sympy.Add(*terms), f"input {inp}"))
        env[sym(inp)] = Local(inp)
    theta = threshold_function(sp.spike)
    readout = pop.readout
    if readout is not None and readout.kind == "first_spike_time":
        body.append(Let(Local("__theta0"), theta.xreplace(env), "threshold function before the update"))
    for name, expr in sp.temps:
        body.append(Let(Local(name), expr.xreplace(env), f"temp {name}"))
        env[sym(name)] = Local(name)
    new = {}
    for a in sp.update:
        new[a.target] = Local(f"{a.target}__new")
        body.append(Let(new[a.target], a.as_value(sym(a.target)).xreplace(env), f"update {a.target}"))
    countdown, is_refractory = Local("__countdown"), Local("__refractory")
    body.append(Let(countdown, refrac[here], "refractory steps left"))
    body.append(Let(is_refractory, sympy.Piecewise((1, countdown > 0), (0, True))))
    held = {a.target for a in sp.reset} if not sp.refractory_integrates else set()
    after_update = dict(env)
    for s, value in new.items():
        local = Local(f"{s}__held" if s in held else f"{s}__updated")
        if s in held:
            value = sympy.Piecewise((Local(s), sympy.Eq(is_refractory, 1)), (value, True))
        body.append(Let(local, value, "held while refractory" if s in held else ""))
        after_update[sym(s)] = local
    tap_env = dict(after_update)
    tap_env[sym(names.REFRACTORY)] = is_refractory
    for proj in incoming:
        tap_env.update({sym(names.coupled(str(k), proj.name)): v for k, v in syn_env[proj.name].items()})
    body += _taps(b.taps.get(pop.name, []), "update", tap_env)
    body += _readout(b, pop, after_update, theta)
    spiked = Local("__spiked")
    if sp.spike is not None:
        cond = sympy.And(sympy.Eq(is_refractory, 0), sp.spike.xreplace(after_update))
        body.append(Let(spiked, sympy.Piecewise((1, cond), (0, True))))
    else:
        body.append(Let(spiked, sympy.S.Zero))
    if readout is not None and readout.kind == "first_spike_time":
        body += _first_spike_time(b, pop, after_update, theta, spiked)
    if readout is not None and readout.kind == "spike_count":
        body.append(Store(b.get(array_name("r", pop.name))[here], spiked, "+=", "readout spike_count"))
    final = dict(after_update)
    for a in sp.reset:
        local = Local(f"{a.target}__reset")
        value = a.as_value(sym(a.target)).xreplace(final)
        body.append(Let(local, sympy.Piecewise((value, sympy.Eq(spiked, 1)), (final[sym(a.target)], True))))
        final[sym(a.target)] = local
    steps = sympy.Integer(sp.refractory_steps)
    body.append(
        Store(refrac[here], sympy.Piecewise((steps, sympy.Eq(spiked, 1)), (countdown - is_refractory, True)))
    )
    body.append(Store(flag[here], spiked))
    for s, a in states.items():
        body.append(Store(a[here], final[sym(s)]))
    tap_env[sym(names.Z)] = spiked
    for proj in incoming:
        stmts, updated = _synapse_update(b, proj, syn_env[proj.name])
        body += stmts
        tap_env.update({sym(names.coupled(str(k), proj.name)): v for k, v in updated.items()})
    body += _taps(b.taps.get(pop.name, []), "end", tap_env)
    loop = Loop(Neurons(pop.name), tuple(body), {"j": J})
    events = _event_buffer(b, pop) if b.event_buffer > 0 and sp.spike is not None else ()
    return (loop, EmitSpikes(pop.name, flag.name), *events, *_recording(b, pop, states))


def _event_buffer(b: _Builder, pop: Population) -> tuple[Stmt, ...]:
    """Each spike's time into its neuron's bounded buffer; the count goes on past the buffer, so
    an overflow is reported, never silent."""
    size = b.event_buffer
    times = b.add(
        Array(
            array_name("ev", pop.name, "times"),
            Role.SPIKE_LIST,
            pop.name,
            ("batch", pop.size, size),
            var="times",
            comment="per-neuron spike times (bounded)",
        )
    )
    count = b.add(
        Array(
            array_name("ev", pop.name, "count"),
            Role.SPIKE_LIST,
            pop.name,
            ("batch", pop.size),
            "int32",
            var="count",
            comment="spikes per neuron (may exceed the buffer: overflow)",
        )
    )
    i, seen = Index("i"), Local("__seen")
    body = (
        Let(seen, count[BATCH, i]),
        If(seen < size, (Store(times[BATCH, i, seen], STEP * sympy.Float(b.network.dt, 17)),)),
        Store(count[BATCH, i], seen + 1),
    )
    return (Loop(Spikes(pop.name, STEP), body, {"i": i}, comment="spike times for gradient passes"),)


def _taps(taps: list[Tap], at: str, env: dict[sympy.Symbol, sympy.Expr]) -> list[Stmt]:
    return [Store(t.target, sympy.sympify(t.expr).xreplace(env), t.op, t.comment) for t in taps if t.at == at]


def _synapse_update(
    b: _Builder, proj: Projection, env: dict[sympy.Symbol, sympy.Expr]
) -> tuple[list[Stmt], dict[sympy.Symbol, sympy.Expr]]:
    """The synapse states' own update, and each state's value after it (a local, or unchanged)."""
    sp = b.network.specialised.projections[proj.name]
    here = (BATCH, J)
    if sp.impulse:
        return [
            Store(_synapse_state(b, proj, s)[here], sympy.Float(0.0), comment="impulse: cleared after use")
            for s in b.network.models[proj.synapse].states
        ], {sym(s): sympy.Float(0.0) for s in b.network.models[proj.synapse].states}
    out: list[Stmt] = []
    after = dict(env)
    env = {**params_env(b, proj.name), **env}
    for name, expr in sp.temps:
        local = Local(array_name("yt", proj.name, name))
        out.append(Let(local, expr.xreplace(env)))
        env[sym(name)] = local
    values = [(a.target, a.as_value(sym(a.target)).xreplace(env)) for a in sp.update]
    for target, value in values:  # simultaneous: every right-hand side read before any store
        out.append(Let(Local(array_name("ny", proj.name, target)), value))
    for target, _ in values:
        out.append(Store(_synapse_state(b, proj, target)[here], Local(array_name("ny", proj.name, target))))
        after[sym(target)] = Local(array_name("ny", proj.name, target))
    return out, after


def _readout(b: _Builder, pop: Population, env: dict, theta: sympy.Expr | None) -> list[Stmt]:
    ro = pop.readout
    if ro is None or ro.kind in ("first_spike_time", "spike_count"):
        if ro is not None:
            b.add(_readout_array(pop))
        return []
    r = b.add(_readout_array(pop))
    here = (BATCH, J)
    value = env[sym(ro.var)]
    mean = 1 / sympy.Float(1.0) / NUM_STEPS
    note = f"readout {ro.kind}({ro.var})"
    if ro.kind == "var":
        return [Store(r[here], value, comment=note)]
    if ro.windowed:
        return _windowed_readout(b, ro, r[here], value, note)
    if ro.kind == "avg_var":
        return [Store(r[here], value * mean, "+=", note)]
    if ro.kind == "avg_var_exp_weight":
        return [Store(r[here], sympy.exp(-STEP / NUM_STEPS) * value * mean, "+=", note)]
    if ro.kind == "sum_var":
        return [Store(r[here], value, "+=", note)]
    if ro.kind == "max_var":
        return [Store(r[here], sympy.Max(value, r[here]), comment=note)]
    raise ValueError(f"no forward schedule for readout '{ro.kind}'")


def _windowed_readout(b: _Builder, ro: Readout, here: sympy.Expr, value: sympy.Expr, note: str) -> list[Stmt]:
    """avg_var, sum_var or avg_var_exp_weight over the steps of the window [start, stop) only
    (ir/model.py `window_steps`); the exp weight counts from the window's start in units of its
    length, so the whole trial as a window is the unwindowed readout."""
    start, stop = ro.window_steps(b.network.dt)
    end = NUM_STEPS if stop is None else sympy.Min(stop, NUM_STEPS)
    scale = 1 / sympy.Float(1.0) / (end - start) if ro.kind != "sum_var" else sympy.S.One
    if ro.kind == "avg_var_exp_weight":
        scale = scale * sympy.exp(-(STEP - start) / (end - start))
    inside = sympy.And(STEP >= start, STEP < end)
    note += f" over steps [{start}, {'K' if stop is None else stop})"
    return [If(inside, (Store(here, value * scale, "+=", note),))]


def _readout_array(pop: Population) -> Array:
    ro = pop.readout
    return Array(
        array_name("r", pop.name),
        Role.READOUT,
        pop.name,
        ("batch", pop.size),
        init=READOUT_INIT.get(ro.kind, 0.0),
        var=ro.var,
        comment=f"readout {ro.kind}",
    )


def _first_spike_time(
    b: _Builder, pop: Population, env: dict, theta: sympy.Expr, spiked: Local
) -> list[Stmt]:
    """The threshold crossing interpolated linearly within the step; only the first spike counts."""
    r = b.get(array_name("r", pop.name))[BATCH, J]
    theta0, theta1, frac = Local("__theta0"), Local("__theta1"), Local("__crossing")
    crossing = sympy.Piecewise(
        (theta0 / (theta0 - theta1), sympy.And(theta0 < 0, theta1 > theta0)), (sympy.Float(1.0), True)
    )
    dt = sympy.Float(b.network.dt, 17)
    return [
        Let(theta1, theta.xreplace(env)),
        Let(frac, sympy.Min(sympy.Max(crossing, 0), 1)),
        Store(
            r,
            sympy.Piecewise(
                (STEP * dt + dt * frac, sympy.And(sympy.Eq(spiked, 1), sympy.Eq(r, sympy.oo))), (r, True)
            ),
            comment="readout first_spike_time: the crossing interpolated within the step",
        ),
    ]


def _recording(b: _Builder, pop: Population, states: dict[str, Array]) -> tuple[Stmt, ...]:
    """States at the end of the step into the optional [batch, steps, neuron] recordings."""
    out = []
    for s, a in states.items():
        rec = b.add(
            Array(
                array_name("rv", pop.name, s),
                Role.RECORD,
                pop.name,
                ("batch", "steps", pop.size),
                var=s,
                comment=f"recorded {pop.name}.{s}",
                optional=True,
            )
        )
        out.append(Loop(Neurons(pop.name), (Store(rec[BATCH, STEP, J], a[BATCH, J]),), {"j": J}))
    return tuple(out)


def _reset_body(b: _Builder) -> tuple[Stmt, ...]:
    """Every per-trial array of a population back to its initial value."""
    body = []
    for a in b.arrays:
        if (
            a.role in (Role.STATE, Role.COUNTER, Role.READOUT)
            and a.shape[:1] == ("batch",)
            and len(a.shape) == 2
        ):
            owner = a.owner if a.owner in b.network.populations else b.network.projections[a.owner].post
            init = sympy.Integer(int(a.init)) if a.dtype != "scalar" else sympy.Float(a.init)
            body.append(Loop(Neurons(owner), (Store(a[BATCH, J], init),), {"j": J}))
    return tuple(body)
