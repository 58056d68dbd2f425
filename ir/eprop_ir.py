"""The e-prop Training IR: what the `eprop` pass adds to a network (DESIGN.md §3, §4).

`Network.training` holds one `EpropIR` after `eprop`. Every expression is a sympy expression over
named symbols, so backends print it with their own printers and tests evaluate it with `lambdify`.
The per-step order a backend must follow is documented in `snnc.passes.eprop`.

Naming: every generated name is spelled by `snnc.ir.names` (which also says why none can equal a user
name); for a projection `P` into population `h`:
- the post neuron's states keep their names (`v`, `a`); a state of P's synapse is the coupled name
  `<state>__P` (`i__x_to_h`), and so are that synapse's params and derived params (`P_i_i__x_to_h`);
- the eligibility of (coupled) state `s` with respect to the weight `W_ji` of P is `__eps__P__<s>`
  (`__eps__x_to_h__v`, `__eps__x_to_h__i__x_to_h`); with respect to an output's bias `__eps_bias__<s>`;
- the eligibility trace is `__e__P`, its low-pass filtered version `__ebar__P`, the gradient
  accumulator `__dW__P` (`__dbias__<pop>` for an output bias, whose weight the runtime calls `bias_<pop>`);
- per-neuron values a projection's statements read, always those of its post neuron: `__z` (its own
  spike this step, 0 or 1), `__refractory` (1 while it is refractory in this step), `__psi` (its
  pseudo-derivative this step, `HiddenEprop.psi`), `__L` (its learning signal,
  `HiddenEprop.learning_signal`), `__f_avg` (its filtered firing rate), `__E` (an output neuron's
  error, `OutputEprop.error`); `__z_pre` is the presynaptic spike delivered this step;
- symbols the backend supplies: `__y_true` (the target of an output neuron this step), `__fb__P`
  (`Σ_k B_jk E_k` over the output neurons k of the hidden -> output projection P, with B the current
  weights `__W__P` or the fixed matrix `__B__P`) and the reductions named in `OutputEprop.reductions`
  (`__max__<var>`, `__sumexp__<var>`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from . import names
from .gradient import GradientIR
from .model import Assign, Initialiser

Expr = sympy.Expr


def _fmt(expr: object) -> str:
    return sympy.sstr(expr, order="lex") if isinstance(expr, sympy.Basic) else str(expr)


@dataclass(frozen=True)
class EpropOptions:
    """The options of `eprop(...)`, mirroring mlGeNN's EPropCompiler. Times in ms, rates in 1/ms."""

    example_timesteps: int
    gamma: float = 0.3
    feedback: str = "symmetric"  # "symmetric" | "random"
    c_reg: float = 0.001
    f_target: float = 0.01  # 10 Hz in base units (1/ms)
    tau_reg: float = 500.0
    train_output_bias: bool = True
    reset_state: bool = True  # reset neuron, synapse and eligibility state between examples
    error_start: float = 0.0  # ms; errors before this time are zero
    keep_reset_path: bool = False  # True: keep the reset's path through ψ in D_t (not Bellec's choice)
    w_min: float | None = None
    w_max: float | None = None


@dataclass(frozen=True)
class Eligibility:
    """One component of an eligibility vector: `name` = d`state`/dW_ji (or d`state`/d bias).

    `scope` is "pre" when its updates never read anything of the post neuron (then one value per
    presynaptic neuron suffices, like mlGeNN's ZFilter), else "synapse" (one per connection).
    """

    name: str
    state: str
    scope: str


@dataclass(frozen=True)
class ProjectionEprop:
    """The eligibility derivation for one trainable projection.

    role "hidden": the post population spikes; `propagate`, then (at the spike phase) `trace`,
    `accumulate`, `filter`, `jump`. role "output": the post population is a readout; `propagate`,
    then `accumulate` (the exact gradient: dW += E · d var/dW).
    """

    projection: str
    pre: str
    post: str
    role: str  # "hidden" | "output"
    eligibilities: tuple[Eligibility, ...]
    propagate: tuple[Assign, ...]  # simultaneous; start-of-step values (see passes/eprop.py)
    trace: Expr | None = None  # __e__P, at the spike phase, before reset
    accumulate: Expr = sympy.S.Zero  # __dW__P += accumulate (uses __ebar__P from before `filter`)
    filter: Assign | None = None  # __ebar__P = kappa * __ebar__P + __e__P
    jump: tuple[Assign, ...] = ()  # simultaneous; pre-reset values, psi and z of this step
    delay_steps: int = 0
    params: tuple[tuple[str, str, str], ...] = ()  # symbol -> (owner, name): owner "neuron" | P
    derived: tuple[tuple[str, Expr], ...] = ()  # renamed synapse derived params, in order
    kind: str = "weight"  # "weight" (__dW__P) | "bias" (__dbias__<pop>, the output bias)

    @property
    def gradient(self) -> str:
        return (
            names.bias_gradient(self.post) if self.kind == "bias" else names.weight_gradient(self.projection)
        )

    @property
    def trace_name(self) -> str:
        return names.trace(self.projection)

    @property
    def filtered_name(self) -> str:
        return names.filtered_trace(self.projection)


@dataclass(frozen=True)
class ParamEprop:
    """The eligibility derivation for one trained param of a neuron model (`tau_mem = Trainable(...)`),
    or of the synapse of a projection into `population` (`projection` set: `Exponential(tau =
    Trainable(5 ms))`, one value per post neuron or shared, read as its coupled name `tau__x_to_h`).

    role "hidden": per neuron, `propagate`, then at the spike phase `trace`, `accumulate` (with the
    learning signal L and the filtered trace of step t-1, as a weight's), `filter`, `jump`. role
    "output": `propagate`, then `accumulate` = E · d var/dp (exact). `per_neuron`: one value per
    neuron (else one for the population, whose gradient is the sum over its neurons)."""

    population: str
    param: str
    role: str  # "hidden" | "output"
    per_neuron: bool
    eligibilities: tuple[Eligibility, ...]
    propagate: tuple[Assign, ...]
    trace: Expr | None = None
    accumulate: Expr = sympy.S.Zero
    filter: Assign | None = None
    jump: tuple[Assign, ...] = ()
    projection: str | None = None  # a synapse param's projection (into `population`)

    @property
    def owner(self) -> str:
        """Whose param it is: the population's, or the projection's."""
        return self.projection or self.population

    @property
    def symbol(self) -> str:
        """Its name in the population's equations: `tau_mem`, or a synapse's coupled `tau__x_to_h`."""
        return names.coupled(self.param, self.projection) if self.projection else self.param

    @property
    def key(self) -> str:
        return names.param_key(self.param, self.owner)

    @property
    def gradient(self) -> str:
        return names.param_gradient(self.param, self.owner)

    @property
    def trace_name(self) -> str:
        return names.param_trace(self.symbol)

    @property
    def filtered_name(self) -> str:
        return names.filtered_param_trace(self.symbol)


@dataclass(frozen=True)
class LearningTerm:
    """`c · __fb__P` in a hidden population's learning signal; `__fb__P = Σ_k B_jk E_k` over `output`."""

    projection: str  # the hidden -> output projection
    output: str
    feedback: str  # "symmetric" (B = Wᵀ, current weights) | "random" (fixed matrix `matrix`)
    matrix: str  # `__W__P` for symmetric, `__B__P` for random
    scale: Expr  # c = d var_k / d (W z_pre): the readout's input gain
    init: Initialiser | None = None  # how a random matrix is drawn (once, with the seed)


@dataclass(frozen=True)
class HiddenEprop:
    """Per hidden population: threshold, pseudo-derivative, learning signal, regularisation."""

    population: str
    model: str
    theta: Expr  # spike when theta >= 0, theta = v - A
    v_th: Expr  # the threshold scale in ψ (theta with all states set to 0, negated)
    psi: Expr  # γ/v_th · max(0, 1 - |θ|/v_th) · (1 - refractory)
    membrane: tuple[str, ...]  # states whose reset path D_t leaves out (empty with keep_reset_path)
    kappa: Expr  # the readout's per-step decay used to filter e
    learning: tuple[LearningTerm, ...]
    f_avg: Assign  # f_avg = alpha_reg * f_avg + (1 - alpha_reg) * z
    regularisation: Expr  # the factor of e in the gradient: c_reg (f_avg - f_target dt)

    @property
    def learning_signal(self) -> Expr:
        return sympy.Add(
            *[t.scale * sympy.Symbol(names.feedback(t.projection), real=True) for t in self.learning]
        )


@dataclass(frozen=True)
class OutputEprop:
    """Per output population: the readout value y, its error E, the bias gradient."""

    population: str
    model: str
    readout: str
    var: str
    loss: str  # "sparse_categorical_crossentropy" | "mean_square_error"
    reductions: tuple[tuple[str, str, Expr], ...]  # (name, "max" | "sum", expr) over the population
    y: Expr
    error: Expr  # E, zero outside steps [error_start_step, error_stop_step)
    error_start_step: int = 0
    bias: ProjectionEprop | None = None  # the bias's eligibility (role "output"), if trained
    error_stop_step: int | None = None  # None: to the trial's end


@dataclass(frozen=True)
class EpropIR(GradientIR):
    """e-prop's payload: per hidden population its pseudo-derivative and learning signal, per output
    its error, per trained projection its eligibility propagation."""

    algorithm: str
    options: EpropOptions
    hidden: dict[str, HiddenEprop] = field(default_factory=dict)
    outputs: dict[str, OutputEprop] = field(default_factory=dict)
    projections: dict[str, ProjectionEprop] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    params: dict[str, ParamEprop] = field(default_factory=dict)  # by key (`tau_mem_h`)

    def to_text(self) -> str:
        """Deterministic, diff-friendly text for `--print-after eprop` and golden tests."""
        o = self.options
        opts = ", ".join(f"{k} = {getattr(o, k)}" for k in o.__dataclass_fields__)
        out = [f"training {self.algorithm} ({opts}) {{"]
        for name in sorted(self.outputs):
            out += ["  " + line for line in _output_text(self.outputs[name])]
        for name in sorted(self.hidden):
            out += ["  " + line for line in _hidden_text(self.hidden[name])]
        for name in sorted(self.projections):
            out += ["  " + line for line in _projection_text(self.projections[name])]
        for key in sorted(self.params):
            out += ["  " + line for line in _param_text(self.params[key])]
        for note in self.notes:
            out.append(f"  note: {note}")
        out.append("}")
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"EpropIR(hidden={sorted(self.hidden)}, outputs={sorted(self.outputs)}, projections={sorted(self.projections)})"


def _output_text(oe: OutputEprop) -> list[str]:
    out = [f"output {oe.population}: {oe.model}, readout {oe.readout}({oe.var}), loss {oe.loss} {{"]
    for name, kind, expr in oe.reductions:
        out.append(f"  {name} = {kind} over population of {_fmt(expr)}")
    out.append(f"  y = {_fmt(oe.y)}")
    window = f"zero before step {oe.error_start_step}"
    if oe.error_stop_step is not None:
        window += f" and from step {oe.error_stop_step}"
    out.append(f"  {names.ERROR} = {_fmt(oe.error)}  ({window})")
    if oe.bias is not None:
        out += ["  " + line for line in _projection_text(oe.bias)]
    out.append("}")
    return out


def _hidden_text(he: HiddenEprop) -> list[str]:
    out = [f"hidden {he.population}: {he.model} {{"]
    out.append(f"  theta = {_fmt(he.theta)}  (spike when theta >= 0); v_th = {_fmt(he.v_th)}")
    out.append(f"  psi = {_fmt(he.psi)}")
    out.append("  reset path left out for: " + (", ".join(he.membrane) or "(none)"))
    out.append(f"  kappa = {_fmt(he.kappa)}")
    for t in he.learning:
        init = f", init {t.init.kind}{t.init.args}" if t.init is not None else ""
        out.append(
            f"  {names.feedback(t.projection)} = sum_k {t.matrix}[j, k] * {names.output_error(t.output)}[k]  "
            f"({t.feedback}{init})"
        )
    out.append(f"  {names.LEARNING_SIGNAL} = {_fmt(he.learning_signal)}")
    out.append(
        "    (each term scaled by its readout's input gain d var/d(W z_pre): 1 - kappa for a leaky one)"
    )
    out.append(f"  {he.f_avg.target} = {_fmt(he.f_avg.expr)}")
    out.append(f"  regularisation factor = {_fmt(he.regularisation)}")
    out.append("}")
    return out


def _projection_text(pe: ProjectionEprop) -> list[str]:
    out = [f"projection {pe.projection} ({pe.pre} -> {pe.post}, {pe.role}, delay {pe.delay_steps}) {{"]
    wrt = "dbias" if pe.kind == "bias" else "dW"
    out.append(
        "  eligibility: " + ", ".join(f"{e.name} = d{e.state}/{wrt} ({e.scope})" for e in pe.eligibilities)
    )
    for name, expr in pe.derived:
        out.append(f"  derived {name} = {_fmt(expr)}")
    out.append("  propagate (with update, simultaneous):")
    for a in pe.propagate:
        out.append(f"    {a.target} = {_fmt(a.expr)}")
    if pe.trace is not None:
        out.append(f"  {pe.trace_name} = {_fmt(pe.trace)}")
    out.append(f"  {pe.gradient} += {_fmt(pe.accumulate)}")
    if pe.role == "hidden":
        out.append(
            f"    (pairs L of step t with {pe.filtered_name} of step t-1, before this step's filter: a "
            "spike reaches its targets one step after it is emitted, so this is the chain rule of "
            "snnc's own dynamics; Bellec et al.'s sum_t L_t ebar_t has z_t drive y_t)"
        )
    return out + _filter_and_jump(pe)


def _filter_and_jump(pe) -> list[str]:  # noqa: ANN001 - a projection's or a param's e-prop
    """The closing lines both printouts share: the trace's filter, the jump at a spike, the brace."""
    out = [f"  {pe.filter.target} = {_fmt(pe.filter.expr)}"] if pe.filter is not None else []
    if pe.jump:
        out.append("  jump (spike phase, before reset, simultaneous):")
        out += [f"    {a.target} = {_fmt(a.expr)}" for a in pe.jump]
    return [*out, "}"]


def _param_text(pe: ParamEprop) -> list[str]:
    kind = "per neuron" if pe.per_neuron else "shared: dL/dp summed over the neurons"
    of = f"synapse of {pe.projection} (into {pe.population})" if pe.projection else pe.population
    out = [f"param {pe.param} of {of} ({pe.role}, {kind}) {{"]
    out.append("  eligibility: " + ", ".join(f"{e.name} = d{e.state}/d{pe.param}" for e in pe.eligibilities))
    out.append("  propagate (with update, simultaneous):")
    for a in pe.propagate:
        out.append(f"    {a.target} = {_fmt(a.expr)}")
    if pe.trace is not None:
        out.append(f"  {pe.trace_name} = {_fmt(pe.trace)}")
    out.append(f"  {pe.gradient} += {_fmt(pe.accumulate)}")
    if pe.role == "hidden":
        out.append(f"    (pairs L of step t with {pe.filtered_name} of step t-1, as for the weights)")
    return out + _filter_and_jump(pe)
