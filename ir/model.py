"""The Model IR: what a `.snn` file means, after name resolution and checking (DESIGN.md §3).

All numbers are floats in snnc's base units (ms, mV, nA; see `units.py`). All expressions are sympy
expressions over symbols made by `symbols.sym`, so two references to the same name compare equal.

Reserved symbols inside model equations (never user-declared): `t` (time, ms), `dt` (the time step)
and, inside a synapse's `on_pre`, `w` (the connection's weight).

The IR is built from plain dataclasses. Passes never mutate their input; they return new objects
(`dataclasses.replace`) so that `--print-after` shows each stage faithfully.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .diagnostics import Span
from .units import DIMENSIONLESS, Dim

if TYPE_CHECKING:  # sympy loads on first use: a cached `snnc train` unpickles these classes without it
    import sympy

    from .gradient import GradientIR

    Expr = sympy.Expr


def __getattr__(name: str) -> Any:
    """`Expr` (sympy.Expr) is imported on first use, so that importing the IR classes is cheap."""
    if name == "Expr":
        import sympy

        return sympy.Expr
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------------
# Models (neuron and synapse), written by users or taken from the standard library
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A named constant of a model. `value` is the default; populations may override it."""

    name: str
    value: float
    dim: Dim = DIMENSIONLESS
    span: Span | None = None
    # Parameters that must be whole numbers (e.g. a count) are kept as floats but flagged.
    integer: bool = False


@dataclass(frozen=True)
class Derived:
    """A parameter computed once from params and `dt` (e.g. a decay factor `exp(-dt/tau)`)."""

    name: str
    expr: Expr
    dim: Dim = DIMENSIONLESS
    span: Span | None = None


@dataclass(frozen=True)
class State:
    """A per-neuron (or, for synapses, per-postsynaptic-neuron) variable that evolves in time."""

    name: str
    init: float
    dim: Dim = DIMENSIONLESS
    span: Span | None = None


@dataclass(frozen=True)
class Input:
    """A neuron input; each step it holds the sum of the outputs of the synapses that target it."""

    name: str
    dim: Dim = DIMENSIONLESS
    span: Span | None = None


@dataclass(frozen=True)
class Ode:
    """`d<state>/dt = rhs`."""

    state: str
    rhs: Expr
    span: Span | None = None


@dataclass(frozen=True)
class Assign:
    """`target op expr` with op one of `=`, `+=`, `-=`, `*=`, `/=`.

    Used for resets, synaptic `on_pre` actions and (in the Discrete IR) per-step updates.
    """

    target: str
    op: str
    expr: Expr
    span: Span | None = None

    def as_value(self, current: Expr) -> Expr:
        """The new value of the target, given its current value (normalises compound ops)."""
        return {
            "=": lambda: self.expr,
            "+=": lambda: current + self.expr,
            "-=": lambda: current - self.expr,
            "*=": lambda: current * self.expr,
            "/=": lambda: current / self.expr,
        }[self.op]()


@dataclass(frozen=True)
class Model:
    """A neuron or synapse model.

    Neuron: params, derived params, states, inputs, ODEs, spike condition, reset, refractory period.
    Synapse: params, states (kept per postsynaptic neuron and projection), ODEs, `on_pre` actions
    (which use the weight `w` and must be additive in it), and the `output` state that is summed into
    the target neuron's input. A synapse with no states (e.g. Delta) has `output_expr` instead: the
    summed weights of this step's spikes are delivered for exactly one step.
    """

    name: str
    kind: str  # "neuron" | "synapse"
    params: dict[str, Param] = field(default_factory=dict)
    derived: dict[str, Derived] = field(default_factory=dict)
    states: dict[str, State] = field(default_factory=dict)
    inputs: dict[str, Input] = field(default_factory=dict)
    odes: tuple[Ode, ...] = ()
    spike: sympy.Basic | None = None  # a sympy relational (or And/Or of them), e.g. v >= v_thresh
    reset: tuple[Assign, ...] = ()
    refractory: Expr | None = None  # refractory period (ms); no spikes while it runs
    refractory_integrates: bool = False  # if False, the reset targets are held during refractoriness
    on_pre: tuple[Assign, ...] = ()  # synapse only
    output: str | None = None  # synapse only: the state summed into the target's input
    impulse: bool = False  # synapse only: output is delivered for one step, then cleared (Delta)
    generator: str | None = (
        None  # input neurons: "spike_source" (spikes from data) | "poisson" (rates from data)
    )
    method: str | None = None  # user's integrator request: "exact" | "exponential_euler" | "euler"
    sub_steps: int = 1  # for "euler"
    source: str = "<unknown>"  # "std" for the standard library, else the file that defined it
    span: Span | None = None

    @property
    def is_neuron(self) -> bool:
        return self.kind == "neuron"

    @property
    def is_synapse(self) -> bool:
        return self.kind == "synapse"

    @property
    def spikes(self) -> bool:
        return self.spike is not None

    def ode_for(self, state: str) -> Ode | None:
        return next((o for o in self.odes if o.state == state), None)


def threshold_sides(cond: sympy.Basic | None) -> tuple[sympy.Expr, sympy.Expr] | None:
    """`v >= th` and `th <= v` -> (`v`, `th`): the side that rises through the other at a spike;
    None for compound conditions. The one place that reads a spike condition as a threshold."""
    import sympy

    if isinstance(cond, (sympy.GreaterThan, sympy.StrictGreaterThan)):
        return cond.lhs, cond.rhs
    if isinstance(cond, (sympy.LessThan, sympy.StrictLessThan)):
        return cond.rhs, cond.lhs
    return None


def threshold_function(cond: sympy.Basic | None) -> sympy.Expr | None:
    """`v >= th` -> `v - th` (crosses zero upwards at the spike); None for compound conditions."""
    sides = threshold_sides(cond)
    return None if sides is None else sides[0] - sides[1]


# --------------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------------

READOUTS = (
    "var",
    "avg_var",
    "avg_var_exp_weight",
    "max_var",
    "sum_var",
    "spike_count",
    "first_spike_time",
)
#: readouts that sum the variable over steps, and so may sum over a window of them only
WINDOWED_READOUTS = ("avg_var", "sum_var", "avg_var_exp_weight")
READOUT_WINDOW_OPTIONS = ("start", "stop")


@dataclass(frozen=True)
class Readout:
    """How an output population's activity becomes the network's output."""

    kind: str  # one of READOUTS
    var: str | None = None  # the state read (None for spike-based readouts)
    options: dict[str, Any] = field(default_factory=dict)
    span: Span | None = None

    @property
    def windowed(self) -> bool:
        return any(k in self.options for k in READOUT_WINDOW_OPTIONS)

    def window_steps(self, dt: float) -> tuple[int, int | None]:
        """Steps k with start <= k·dt < stop are summed (times in ms); stop None: to the trial's end."""
        start = max(0, math.ceil(self.options.get("start", 0.0) / dt - 1e-9))
        stop = self.options.get("stop")
        return start, None if stop is None else math.ceil(stop / dt - 1e-9)


@dataclass(frozen=True)
class TrainableParam:
    """A param the training changes: `tau_mem = Trainable(20 ms, per_neuron = true, min = 2 ms)`.

    Shared (one value for the population or projection) or per neuron (per post neuron for a
    synapse param); its values are clipped to [min, max] after every optimiser step, and its
    learning rate is the optimiser's times `lr_scale`."""

    name: str
    per_neuron: bool = False
    min: float | None = None
    max: float | None = None
    lr_scale: float = 1.0
    span: Span | None = None


@dataclass(frozen=True)
class Population:
    name: str
    model: str  # key into Network.models
    role: str  # "input" | "hidden" | "output"
    shape: tuple[int, ...]
    params: dict[str, float] = field(default_factory=dict)  # every param of the model, overrides applied
    inits: dict[str, float] = field(default_factory=dict)  # initial state values, overrides applied
    readout: Readout | None = None
    span: Span | None = None
    #: params given one value per neuron (`tau_mem = Uniform(10 ms, 30 ms)`, `bias = File("b.npy")`):
    #: drawn with the seed like weights; `params` then holds the model's default, which nothing reads
    param_inits: dict[str, Initialiser] = field(default_factory=dict)
    #: params training changes (their values: `params`, or `param_inits` when per neuron)
    trainable: dict[str, TrainableParam] = field(default_factory=dict)

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


@dataclass(frozen=True)
class Initialiser:
    """How a weight (or other per-synapse value) is initialised.

    kind: "constant" (value), "normal" (mean, sd), "uniform" (low, high), "file" (path, relative to
    the `.snn` file; a `.npy` array of the connection's weight shape).
    """

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    span: Span | None = None


@dataclass(frozen=True)
class Connectivity:
    """Which pre/post pairs are connected.

    kind: "dense"; "sparse" (args: p, the connection probability; drawn once with the seed);
    "one_to_one"; "conv2d" (args: filters, kernel (kh, kw), stride, padding "valid"|"same"; the
    pre population's shape is (H, W, C)); "avg_pool2d" (args: pool (ph, pw), stride; fixed weights).
    Each kind's arguments, geometry, draw and dense equivalent live in `ir/connectivity.py`.
    """

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    span: Span | None = None


@dataclass(frozen=True)
class Projection:
    """A connection from population `pre` to population `post` through a synapse model."""

    name: str  # unique, e.g. "x_to_h"
    pre: str
    post: str
    connectivity: Connectivity
    weight: Initialiser
    synapse: str  # key into Network.models (a synapse model)
    synapse_params: dict[str, float] = field(default_factory=dict)  # overrides applied
    target: str = "i_syn"  # the post model's input that receives the synapse output
    delay: float = 0.0  # axonal delay in ms (rounded to whole steps by discretisation)
    trainable: bool = True
    span: Span | None = None
    #: synapse params given one value per post neuron (`Exponential(tau = Normal(5 ms, 1 ms))`)
    synapse_param_inits: dict[str, Initialiser] = field(default_factory=dict)
    synapse_trainable: dict[str, TrainableParam] = field(default_factory=dict)
    #: a delay per connection that training changes (`delay = Trainable(Uniform(0 ms, 10 ms), max =
    #: 20 ms)`), drawn from `delay_init`; `delay` is then 0 and `delay_trainable.max` bounds it
    delay_trainable: TrainableParam | None = None
    delay_init: Initialiser | None = None

    @property
    def recurrent(self) -> bool:
        return self.pre == self.post


@dataclass(frozen=True)
class Call:
    """A named call with keyword options, as written in the training block: `adam(lr = 0.001)`."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    span: Span | None = None


@dataclass(frozen=True)
class TrainSpec:
    """The `train` block. Times in ms."""

    algorithm: Call  # eventprop(...) | eprop(...) | none()
    loss: Call | None = None
    optimizer: Call | None = None
    data: Call | None = None
    dt: float = 1.0
    duration: float = 100.0
    batch_size: int = 32
    epochs: int = 10
    validation_split: float = 0.0
    seed: int = 0
    regularisation: Call | None = None
    schedule: Call | None = None
    augment: tuple[Call, ...] = ()
    rewiring: Call | None = None  # deep_r(projections = (…), connectivity = …, l1 = …)
    options: dict[str, Any] = field(default_factory=dict)  # anything else written in the block
    span: Span | None = None

    @property
    def per_timestep_loss(self) -> bool:
        """`loss = sparse_categorical_crossentropy(per_timestep = true)`: the loss reads the readout's
        variable at every step, not the readout."""
        return self.loss is not None and bool(self.loss.args.get("per_timestep", False))


@dataclass(frozen=True)
class Network:
    """A whole compilation unit: the models it uses, populations, projections, and training spec.

    `stage` names the IR stage: "model" after lowering, "discrete" after `discretise`, "training"
    after a gradient pass, "optimised" after `simplify`. Later stages attach their data in `discrete`
    and `training` (see `discrete.py` and `training.py`).
    """

    name: str
    models: dict[str, Model]
    populations: dict[str, Population]
    projections: dict[str, Projection]
    train: TrainSpec | None = None
    dt: float = 1.0  # ms; from the train block, or the default for inference
    duration: float = 100.0  # ms
    stage: str = "model"
    discrete: dict[str, Any] = field(default_factory=dict)  # model name -> DiscreteModel
    training: GradientIR | None = None  # EventProp's or e-prop's payload after a gradient pass
    specialised: Any = None  # ir.specialised.Specialisation after `specialise`
    source_path: str = "<unknown>"
    span: Span | None = None

    @property
    def num_steps(self) -> int:
        return int(round(self.duration / self.dt))

    def inputs(self) -> list[Population]:
        return [p for p in self.populations.values() if p.role == "input"]

    def outputs(self) -> list[Population]:
        return [p for p in self.populations.values() if p.role == "output"]

    def upstream_of_outputs(self) -> set[str]:
        """The populations from which an output population can be reached (a gradient's path)."""
        reach = {p.name for p in self.outputs()}
        changed = True
        while changed:
            changed = False
            for proj in self.projections.values():
                if proj.post in reach and proj.pre not in reach:
                    reach.add(proj.pre)
                    changed = True
        return reach

    def projections_to(self, post: str) -> list[Projection]:
        return [p for p in self.projections.values() if p.post == post]

    def projections_from(self, pre: str) -> list[Projection]:
        return [p for p in self.projections.values() if p.pre == pre]


def _compact_repr(self: Any) -> str:
    from .printer import compact_repr

    return compact_repr(self)


# Readable reprs (no spans, no defaults, sympy as text); added after the fact so the classes above stay
# plain dataclasses. `dataclass(repr=True)` would have generated unreadable ones.
for _cls in (
    Param, Derived, State, Input, Ode, Assign, Model, Readout, Population, Initialiser,
    Connectivity, Projection, Call, TrainSpec, Network,
):  # fmt: skip
    _cls.__repr__ = _compact_repr  # type: ignore[method-assign]
