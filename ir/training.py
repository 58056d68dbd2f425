"""The Training IR: what a gradient pass (`eventprop`) adds to a network (DESIGN.md §3, §4).

`Network.training` holds one `TrainingIR`. Everything is a sympy expression over named symbols, so the
backends print it with their own printers and the tests evaluate it with `sympy.lambdify`.

Naming: every generated name is spelled by `snnc.ir.names` (which also says why none can equal a user
name); backends build and parse names only through it.
- a coupled state of post population p: the neuron's own states keep their names (`v`); the state of a
  synapse of incoming projection P is `<state>__<P>` (`i__x_to_h`); so are that synapse's params and
  derived params (`tau__x_to_h`). Neuron params keep their names (`tau_mem`).
- the adjoint of state s is `__lambda__<s>` (`__lambda__v`, `__lambda__i__x_to_h`); a hoisted backward
  decay factor exp(-dt/τ) is `__decay__<τ>` (`__decay__tau_mem`);
- symbols the backend supplies at run time: `__dlp_dts` (∂l_p/∂t_s of this spike), `__D` (the backward
  transmission `Σ_m w_nm g_m` over the spiking neuron's outgoing connections), `__dL_dy` (the trainer's
  loss gradient for this neuron and example), `__k` / `__K` (step index / number of steps), `__T`
  (duration), `__spike_count_sum` / `__batch_size` (regularisation), `__is_first_spike` (1 at a
  neuron's first spike); a spike's time is recorded as `__t_s`.

See `snnc.passes.eventprop` for the exact discrete-time semantics that backends must implement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from . import names
from .gradient import GradientIR
from .model import Assign

Expr = sympy.Expr


def _fmt(expr: object) -> str:
    return sympy.sstr(expr, order="lex") if isinstance(expr, sympy.Basic) else str(expr)


@dataclass(frozen=True)
class Adjoint:
    """The adjoint `name` (= ∂L/∂`state`) of one coupled state; starts at 0 at t = T."""

    name: str
    state: str
    owner: str  # "neuron" or the projection whose synapse owns the state


@dataclass(frozen=True)
class SpikeRecord:
    """A value the forward pass stores per spike in a per-neuron buffer (bounded by max_spikes).

    `expr` says how to compute it from the coupled states at the spike step (after `update`, before
    `reset`), e.g. `i_syn` = `i__x_to_h + i__h_to_h`.
    """

    name: str
    expr: Expr
    why: str = ""
    at: str = "end"  # "update": before the synapse states' own update (an impulse's pulse, not yet cleared)


@dataclass(frozen=True)
class ReadoutDrive:
    """How an output population's readout drives the adjoint of its read variable (or its spikes).

    `continuous` is ∂l/∂var(t) in continuous time; `step` is what the backend adds to `adjoint` at
    backward step k (the exact discrete adjoint of the readout sum, see eventprop's docstring);
    `spike` is ∂l_p/∂t_s for spike-time readouts.
    """

    population: str
    kind: str
    var: str | None
    adjoint: str | None
    continuous: Expr = sympy.S.Zero
    step: Expr = sympy.S.Zero
    spike: Expr = sympy.S.Zero
    when: str = "every step"
    note: str = ""


@dataclass(frozen=True)
class Regularisation:
    """mlGeNN's spike-count regulariser on a hidden population, as an effective ∂l_p/∂t_s."""

    population: str
    strength_upper: float
    strength_lower: float
    nu_upper: float
    rate: Expr  # r: what λ gains along ∇θ at every spike
    dlp_dts: Expr  # the equivalent ∂l_p/∂t_s = -(∇θ·f⁻)·r


@dataclass(frozen=True)
class WeightGradient:
    """`∂L/∂w_nm += expr` at every arrival (spike time + delay) of a spike of pre neuron n at post m."""

    projection: str
    pre: str
    post: str
    expr: Expr


@dataclass(frozen=True)
class ParamGradient:
    """∂L/∂p of a trainable param p (DESIGN.md §4): `∫ continuous dt` (Σ_s λ_s ∂f_s/∂p over the
    population's coupled states, on the forward trajectory) plus `jump` at each of its spikes
    (λ⁺·∂j/∂p + ∂θ/∂p·[λ⁺·(f⁺ − J f⁻) − ∂l_p/∂t_s − D]/(∇θ·f⁻): the reset's and the spike time's
    dependence on p), per neuron of `population`; a shared param sums them over its neurons."""

    key: str  # what the runtime files it under: `<param>_<owner>` (`tau_mem_h`, `tau_x_to_h`)
    population: str  # whose adjoints carry it (a synapse param: the post population)
    owner: str  # the population or projection the param belongs to
    param: str  # the user's param name
    symbol: str  # its symbol in the population's equations (`tau_mem`, `tau__x_to_h`)
    continuous: Expr
    jump: Expr | None = None
    trajectory: tuple[str, ...] = ()  # coupled states `continuous` reads (recorded every step)


@dataclass(frozen=True)
class DelayGradient:
    """`∂L/∂d_nm += expr` at every arrival s = t_s + d of a spike of pre neuron n at post m, for a
    projection with trainable delays: `expr = λ⁺·(f(x) − f(x + w e))` (an arrival later by δs leaves
    the state on its pre-jump trajectory for δs longer), with `w` the connection's weight; for f
    affine along e it is `w * per_weight` (`per_weight` is a per post neuron value, like `g`)."""

    projection: str
    pre: str
    post: str
    expr: Expr
    per_weight: Expr


@dataclass(frozen=True)
class Transmission:
    """Per post neuron m of `projection`: `g` such that the pre neuron's `D_n = Σ_m w_nm g_m`."""

    projection: str
    g: Expr
    jump: tuple[tuple[str, Expr], ...]  # e: the state(s) an incoming spike jumps, per unit weight
    # an impulse into a spiking population: ∇θ·e, so that at an arrival that causes the post spike
    # g = cause·(the post's `PopulationGradient.pulse_cause`) replaces `g`
    cause: Expr | None = None
    # per post neuron m, added to D_n once for each arrival, not scaled by w: a max_var readout whose
    # maximum sits at this arrival's jump moves with it (`passes/eventprop.py` `_max_follows`)
    arrival: Expr = sympy.S.Zero


@dataclass(frozen=True)
class PopulationGradient:
    """Everything the backward pass does for one non-input population on the gradient path."""

    population: str
    model: str
    role: str
    states: tuple[str, ...]  # coupled state names, neuron states first
    system: tuple[tuple[str, Expr], ...]  # f: d<state>/dt, inputs substituted by synapse outputs
    inputs: tuple[tuple[str, Expr], ...]  # neuron input -> sum of synapse outputs
    adjoints: tuple[Adjoint, ...]
    adjoint_odes: tuple[tuple[str, Expr], ...]  # -dλ/dt = (∂f/∂x)ᵀλ + ∂l/∂x
    method: str  # "exact" | "euler"
    reason: str
    derived: tuple[tuple[str, Expr], ...] = ()  # hoisted decay factors, once per population
    backward: tuple[Assign, ...] = ()  # one backward step, simultaneous, op "="
    drive: tuple[tuple[str, Expr], ...] = ()  # per-step drive added after `backward` (adjoint -> expr)
    trajectory: tuple[str, ...] = ()  # states the fallback needs every step (recorded forward)
    theta: Expr | None = None  # spike condition as θ(x) >= 0
    on_threshold: tuple[str, Expr] | None = None  # state solved from θ = 0, used in the jump
    jump: tuple[Assign, ...] = ()  # at an own spike, simultaneous, op "=" (the exact derivation)
    # What backends execute: `jump` with ∇θ·f⁻ replaced by max(rate, min_crossing_rate), the rate
    # being ∇θ·f⁻ on the threshold with the inputs the step's update read, recorded at the spike
    # (names.CROSSING_RATE_RECORD). In discrete time a neuron can cross threshold while ∇θ·f⁻ with
    # the inputs of the step's end is ~0 or negative (LIF whose i_syn decayed below v_thresh within
    # the step); dividing by it makes λ explode, and a floor alone still let it grow ~50x per spike
    # at dt = 1 ms.
    guarded_jump: tuple[Assign, ...] = ()
    min_crossing_rate: float = 0.0
    dlp_dts: Expr = sympy.S.Zero  # what the symbol `__dlp_dts` stands for at a spike of this population
    records: tuple[SpikeRecord, ...] = ()
    readout: ReadoutDrive | None = None
    regularisation: Regularisation | None = None
    params: tuple[tuple[str, str, str], ...] = ()  # symbol -> (owner, param name); owner "neuron"|proj
    # Impulses into a spiking population (`passes/adjoint.py` `impulse_spike`): Δx, the states' jump by
    # the step's impulses; a spike with `pulse_test` < 0 is the pulse's (θ(x⁻ − Δx) < 0), takes
    # `pulse_jump` (λ⁻ = Jᵀλ⁺) instead of the executed jump, and hands `pulse_cause` (G / ∇θ·Δx) to the
    # arrivals of its step (`Transmission.cause`).
    pulse: tuple[tuple[str, Expr], ...] = ()
    pulse_test: Expr | None = None
    pulse_jump: tuple[Assign, ...] = ()
    pulse_cause: Expr = sympy.S.Zero


@dataclass(frozen=True)
class TrainingIR(GradientIR):
    """EventProp's payload: per population its adjoint system, backward step and spike jump; per
    projection the transmission and the weight gradient."""

    algorithm: str  # "eventprop"
    max_spikes: int
    populations: dict[str, PopulationGradient] = field(default_factory=dict)
    transmissions: dict[str, Transmission] = field(default_factory=dict)  # by projection
    weight_gradients: dict[str, WeightGradient] = field(default_factory=dict)  # by projection
    notes: tuple[str, ...] = ()
    param_gradients: dict[str, ParamGradient] = field(default_factory=dict)  # by runtime key
    delay_gradients: dict[str, DelayGradient] = field(default_factory=dict)  # by projection

    def to_text(self) -> str:
        """Deterministic, diff-friendly text for `--print-after eventprop` and golden tests."""
        out = [f"training {self.algorithm} (max_spikes = {self.max_spikes}) {{"]
        for name in sorted(self.populations):
            out += ["  " + line for line in _population_text(self.populations[name])]
        for name in sorted(self.transmissions):
            tr = self.transmissions[name]
            e = ", ".join(f"{s}: {_fmt(c)}" for s, c in tr.jump)
            out.append(f"  transmit {name}: e = ({e}); g = {_fmt(tr.g)}; D_pre = sum_post w * g")
            if tr.cause is not None:
                out.append(f"    where the arrival causes the post spike: g = {_fmt(tr.cause)} * pulse_cause")
            if tr.arrival != 0:
                out.append(
                    f"    plus, once per arrival (the max_var maximum moves with it): {_fmt(tr.arrival)}"
                )
        for name in sorted(self.weight_gradients):
            wg = self.weight_gradients[name]
            out.append(f"  gradient {name} ({wg.pre} -> {wg.post}): dL/dw += {_fmt(wg.expr)} at each arrival")
        for name in sorted(self.delay_gradients):
            dg = self.delay_gradients[name]
            out.append(
                f"  gradient delay {name} ({dg.pre} -> {dg.post}, per connection): dL/dd += "
                f"{_fmt(dg.expr)} at each arrival (= w * ({_fmt(dg.per_weight)}))"
            )
        for key in sorted(self.param_gradients):
            pg = self.param_gradients[key]
            out.append(
                f"  gradient {key} (param {pg.param} of {pg.owner}, per neuron of {pg.population}): "
                f"dL/dp += dt * ({_fmt(pg.continuous)}) every step"
            )
            if pg.jump is not None:
                out.append(f"    and += {_fmt(pg.jump)} at each spike")
        for note in self.notes:
            out.append(f"  note: {note}")
        out.append("}")
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"TrainingIR({self.algorithm}, populations={sorted(self.populations)})"


def _population_text(pg: PopulationGradient) -> list[str]:
    out = [f"population {pg.population}: {pg.model} ({pg.role}) {{"]
    out.append("  states: " + ", ".join(pg.states))
    for name, expr in pg.inputs:
        out.append(f"  input {name} = {_fmt(expr)}")
    for state, rhs in pg.system:
        out.append(f"  d{state}/dt = {_fmt(rhs)}")
    for name, rhs in pg.adjoint_odes:
        out.append(f"  -d{name}/dt = {_fmt(rhs)}")
    out.append(f"  backward: {pg.method}  # {pg.reason}")
    for name, expr in pg.derived:
        out.append(f"    derived {name} = {_fmt(expr)}")
    for a in pg.backward:
        out.append(f"    {a.target} = {_fmt(a.expr)}")
    for name, expr in pg.drive:
        out.append(f"    {name} += {_fmt(expr)}")
    if pg.trajectory:
        out.append("    trajectory: " + ", ".join(pg.trajectory))
    if pg.theta is not None:
        out.append(f"  spike when {_fmt(pg.theta)} >= 0")
    if pg.on_threshold is not None:
        out.append(f"  on threshold: {pg.on_threshold[0]} = {_fmt(pg.on_threshold[1])}")
    if pg.jump:
        out.append("  jump at own spike:")
        for a in pg.jump:
            out.append(f"    {a.target} = {_fmt(a.expr)}")
        out.append(f"    where {names.DLP_DTS} = {_fmt(pg.dlp_dts)}")
    if pg.guarded_jump:
        out.append(
            f"  executed jump (divided by the recorded crossing rate, floored at {pg.min_crossing_rate:g} per ms):"
        )
        for a in pg.guarded_jump:
            out.append(f"    {a.target} = {_fmt(a.expr)}")
    if pg.pulse:
        out.append("  impulse-caused spike (" + ", ".join(f"d{s} = {_fmt(e)}" for s, e in pg.pulse) + "):")
        out.append(f"    when {_fmt(pg.pulse_test)} < 0")
        for a in pg.pulse_jump:
            out.append(f"    {a.target} = {_fmt(a.expr)}")
        out.append(f"    pulse_cause = {_fmt(pg.pulse_cause)}")
    for r in pg.records:
        out.append(f"  record per spike: {r.name} = {_fmt(r.expr)}" + (f"  # {r.why}" if r.why else ""))
    if pg.readout is not None:
        ro = pg.readout
        out.append(
            f"  readout {ro.kind}({ro.var or ''}): continuous dl/d{ro.var or 't_s'} = {_fmt(ro.continuous)}; "
            f"step {ro.adjoint or '-'} += {_fmt(ro.step)} ({ro.when}); dlp/dts = {_fmt(ro.spike)}"
        )
    if pg.regularisation is not None:
        rg = pg.regularisation
        out.append(f"  regularisation: r = {_fmt(rg.rate)}; {names.DLP_DTS} += {_fmt(rg.dlp_dts)}")
    out.append("}")
    return out


def executed_jump(pg: PopulationGradient) -> tuple[Assign, ...]:
    """The jump assignments a backend runs: the guarded form when the pass made one."""
    return pg.guarded_jump or pg.jump
