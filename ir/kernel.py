"""The kernel IR: what runs, and nothing about why (DESIGN.md §5).

The schedule passes lower a trained network into one `Kernel`; every backend prints it. A kernel is
- **arrays**, each with a role (state, weight, gradient, spike list, record, eligibility, feedback,
  target, readout, ...), an owner (population or projection), a shape, a dtype and an initial value.
  The manifest and the loaders find arrays by (role, owner, var), never by a spelled C name;
- **phases** (reset, forward step, backward step, per-step learning, reduction, loss, update), each a list of
  statements: `Let` a local, `Store` into an array element, `If`, and `Loop` over an index space
  (the neurons of a population, the synapses of a projection by pre neuron or by post neuron, the
  spikes of a population at a step,
  the arrivals of a projection's delayed spikes, the recorded spike events of a population);
- **entry points** (run, backward, learn, loss, update): which phases run before, inside (forward or
  backward in time) and after the time loop, for every batch row, which run once per batch after
  every row (an optimiser step over the rows' summed gradients), and which once before the first row
  (what every row reads alike: trained delays as ring offsets). An entry may instead chain other
  entries: each trial then runs their per-trial parts one after the other, in one pass over the
  batch (a training batch's forward pass, loss and backward pass: handed to the threads once, not three times).

Arrays are row-major; an element is addressed by one index per dimension or by its flat offset (a
synapse's weight slot `q`). Statements are sympy expressions over array elements (`ElementRef`, a
sympy `Indexed`) and locals
(`Local`, `Index`), which are their own symbol classes: a generated local can never be equal to a
user's symbol, and a printer gives every one a unique identifier. The kernel says nothing about
EventProp or e-prop; a printer never learns that a phase is a backward pass, only that it runs its
steps in reverse order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import sympy

Expr = sympy.Expr


class Role(str, Enum):
    """What an array is for; the runtime reads and writes arrays by role."""

    STATE = "state"  # a neuron or synapse state, per trial and neuron
    PARAM = "param"  # a trained per-neuron parameter (e.g. an output bias)
    WEIGHT = "weight"  # a projection's weights
    CONNECTIVITY = "connectivity"  # sparse structure (row pointers, column indices)
    GRADIENT = "gradient"  # dL/d(weight or param), accumulated per trial
    OPTIMISER = "optimiser"  # optimiser moments kept beside a trained array
    ADJOINT = "adjoint"  # λ = dL/d(state), per trial and neuron
    ELIGIBILITY = "eligibility"  # e-prop eligibility vectors and filtered traces
    FEEDBACK = "feedback"  # e-prop's feedback matrix B
    TARGET = "target"  # per-step or per-trial targets the loss compares with
    READOUT = "readout"  # what an output population reports (avg_var, first_spike_time, ...)
    INPUT = "input"  # data the runtime supplies (input spike times and ids, rates)
    SPIKE_LIST = "spike_list"  # spikes in emission order (for delivery or the backward pass)
    RECORD = "record"  # a value stored per spike or per step for a later phase or the user
    COUNTER = "counter"  # integer bookkeeping (refractory steps, spike counts, cursors)
    SCRATCH = "scratch"  # a value passed between phases within one step
    LOSS = "loss"  # each trial's loss value and whether it was classified right, which the runtime reads


#: dims that are known only when the artefact is loaded or data arrives
SYMBOLIC_DIMS = ("batch", "steps", "events", "nnz")
DTYPES = ("scalar", "double", "int32", "uint32", "int64")
GENERATORS = ("spike_source", "poisson")
#: roles the kernel only reads: the runtime or the optimiser writes them
READ_ONLY = frozenset({Role.WEIGHT, Role.CONNECTIVITY, Role.FEEDBACK, Role.TARGET, Role.INPUT, Role.PARAM})


@dataclass(frozen=True)
class Array:
    """One array of the artefact; `var` is the IR name it holds (a state, a param), if any."""

    name: str
    role: Role
    owner: str
    shape: tuple[int | str, ...]
    dtype: str = "scalar"
    init: float = 0.0
    var: str | None = None
    comment: str = ""
    optional: bool = (
        False  # allocated only when the runtime asks (recordings): stores to it are skipped otherwise
    )

    def __getitem__(self, index: object) -> ElementRef:
        index = index if isinstance(index, tuple) else (index,)
        return ElementRef(sympy.IndexedBase(self.name), *index)


class ElementRef(sympy.Indexed):
    """An element of a kernel array, inside a statement's expression."""

    @property
    def array(self) -> str:
        return str(self.base.label)


class Local(sympy.Symbol):
    """A value computed in a statement and read by later ones in the same scope."""


class Index(sympy.Symbol):
    """A loop variable (integer); bound by a `Loop` or by an entry point (batch row, step)."""

    def __new__(cls, name: str) -> Index:
        return super().__new__(cls, name, integer=True, nonnegative=True)


#: bound by every entry point: the batch row, the time step, the number of steps of this run and
#: the number of trials of the batch
BATCH = Index("b")
STEP = Index("k")
NUM_STEPS = Index("K")
BATCH_SIZE = Index("B")


# --------------------------------------------------------------------------------------------------
# Index spaces: what a loop runs over, and the variables it binds
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Neurons:
    """Every neuron `j` of a population."""

    population: str

    def binds(self) -> tuple[str, ...]:
        return ("j",)


@dataclass(frozen=True)
class Synapses:
    """Every synapse of a projection: pre neuron `i`, post neuron `j`, weight slot `q`."""

    projection: str

    def binds(self) -> tuple[str, ...]:
        return ("i", "j", "q")


@dataclass(frozen=True)
class PostSynapses:
    """Every synapse of a CSR projection, post neuron `j` outermost: pre neuron `i`, weight slot `q`
    and `s`, its position in this post-major order. `ptr` ([post + 1]), `pre` and `slot` ([nnz]) are
    int32 arrays that a prepare phase fills from the CSR arrays: the synapses of post neuron `j` are
    positions `ptr[j]` to `ptr[j + 1]`, synapse `s` has pre neuron `pre[s]` and weight slot `slot[s]`.
    An array indexed by `s` keeps each post neuron's synapses together, so a loop over them reads the
    post neuron's values once and gathers only the pre neuron's (e-prop's learning loops)."""

    projection: str
    ptr: str
    pre: str
    slot: str

    def binds(self) -> tuple[str, ...]:
        return ("i", "j", "q", "s")


@dataclass(frozen=True)
class Spikes:
    """The neurons `i` of a population that spiked at step `step` (in emission order)."""

    population: str
    step: Expr

    def binds(self) -> tuple[str, ...]:
        return ("i",)


@dataclass(frozen=True)
class Arrivals:
    """The synapses (`i`, `j`, `q`) whose pre spike, emitted at `k - 1 - delay`, arrives at step `k`."""

    projection: str

    def binds(self) -> tuple[str, ...]:
        return ("i", "j", "q")


@dataclass(frozen=True)
class Events:
    """The recorded spike events `e` (slot in the row's spike list, neuron `i`) of a population at
    step `step`, newest first. The population's spike list is its arrays of role SPIKE_LIST with
    vars `id` and `step` (shape [batch, events]; the INPUT array with var `capacity` holds the
    events dimension) and the COUNTER `length`. `cursor` (a COUNTER [batch]) is where the previous
    visit of this loop stopped: the loop must be visited at non-increasing steps within a trial,
    with the cursor first set to the last filled slot (min(length, capacity) - 1), so a backend
    walks each list once per trial (its index, not a search)."""

    population: str
    step: Expr
    cursor: str

    def binds(self) -> tuple[str, ...]:
        return ("e", "i")


@dataclass(frozen=True)
class Row:
    """The synapses (post neuron `j`, weight slot `q`) of a projection that leave pre neuron `pre`."""

    projection: str
    pre: Expr

    def binds(self) -> tuple[str, ...]:
        return ("j", "q")


@dataclass(frozen=True)
class Trials:
    """The real trials `b` of the batch (0 .. B - 1): a once-per-batch phase's sum over rows."""

    def binds(self) -> tuple[str, ...]:
        return ("b",)


@dataclass(frozen=True)
class Elements:
    """Every element `q` of an array (flat, row-major; after its batch dimension if it has one): the
    weights or params an optimiser updates, one trial's gradient."""

    array: str

    def binds(self) -> tuple[str, ...]:
        return ("q",)


@dataclass(frozen=True)
class Slots:
    """Every slot `r` (0 .. count - 1) of a ring a projection keeps per post neuron and step (its
    trainable delays' buffers, `snnc.passes.schedule_delays`)."""

    projection: str
    count: int

    def binds(self) -> tuple[str, ...]:
        return ("r",)


Space = Neurons | Synapses | PostSynapses | Spikes | Arrivals | Events | Row | Trials | Elements | Slots


# --------------------------------------------------------------------------------------------------
# Statements
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Let:
    """`local = expr`, visible to the statements after it in the same body and nested bodies."""

    local: Local
    expr: Expr
    comment: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "expr", sympy.sympify(self.expr))


@dataclass(frozen=True)
class Store:
    """`target op expr` with op `=` or `+=`; `target` is an element of a writable array."""

    target: ElementRef
    expr: Expr
    op: str = "="
    comment: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "expr", sympy.sympify(self.expr))


@dataclass(frozen=True)
class If:
    cond: sympy.Basic
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "cond", sympy.sympify(self.cond))


@dataclass(frozen=True)
class Loop:
    """Run `body` for every point of `space`; `vars` maps each bound name to its `Index`.

    `prologue` runs once before the first point, and only if there is one (work shared by every
    point of a sparse space, e.g. per post neuron values needed only at steps with spikes); its
    locals are visible in `body`, the loop's indices are not bound in it. `independent`: see below."""

    space: Space
    body: tuple[Stmt, ...]
    vars: dict[str, Index] = field(default_factory=dict)
    comment: str = ""
    prologue: tuple[Stmt, ...] = ()
    #: the points write disjoint elements and read none that another point writes, so a printer may
    #: run them in any order or at once (vectorised) where the compiler cannot prove it
    independent: bool = False

    def __post_init__(self) -> None:
        if not self.vars:  # default: fresh indices named after the space's bindings
            object.__setattr__(self, "vars", {n: Index(n) for n in self.space.binds()})


@dataclass(frozen=True)
class EmitSpikes:
    """The neurons `j` of `population` whose `flag[b, j]` is set, in increasing `j`, become its spike
    list of this step: what `Spikes(population, step)` and `Arrivals` loops later read. Spike lists
    are empty when a trial starts, and a backend keeps as many steps of them as the longest delay of
    the population's outgoing projections needs."""

    population: str
    flag: str  # an int32 array [batch, size] of the population


@dataclass(frozen=True)
class Generate:
    """An input generator's spikes of this step become the population's spike list: `spike_source`
    replays the data's spike times (at most one event per neuron and step), `poisson` draws from
    per-neuron rates with a counter-based generator (seed, example, neuron, step)."""

    population: str
    kind: str


Stmt = Let | Store | If | Loop | EmitSpikes | Generate


class PhaseKind(str, Enum):
    RESET = "reset"  # once per trial, before the time loop
    FORWARD = "forward"  # once per step, steps in increasing order
    BACKWARD = "backward"  # once per step, steps in decreasing order
    LEARN = "learn"  # once per step beside the forward step (online rules)
    REDUCE = "reduce"  # once per trial, after the time loop
    LOSS = "loss"  # once per trial after the forward pass: loss value and dL/dy from readout and label
    UPDATE = "update"  # once per batch, after every trial: sums over trials, optimiser steps
    PREPARE = "prepare"  # once per batch, before the first trial: what every trial reads alike


@dataclass(frozen=True)
class Phase:
    name: str
    kind: PhaseKind
    body: tuple[Stmt, ...]
    comment: str = ""


@dataclass(frozen=True)
class Entry:
    """An entry point: once for the batch, `prepare` (values every trial reads alike, from arrays
    without a batch dimension, so they are not recomputed per trial); for each batch row, `before`,
    then `steps` over time running `per_step`, then `after`; then, once for the batch, `once` (update
    phases, which loop over the trials themselves).

    An entry with a `chain` runs the `prepare` phases of the named entries (each once, in order), then,
    for each batch row, their per-trial parts (before, time loop, after) in order, all for that row
    before the next row starts; then its own `once`. This is only equal to calling those entries one
    after the other when no chained phase reads what another row wrote in an earlier entry of the
    chain (a sum over the batch): the pass that builds a chain must know that. A chained entry has no
    `once` and no chain of its own; a chain has no `prepare` of its own."""

    name: str
    before: tuple[str, ...] = ()
    per_step: tuple[str, ...] = ()
    steps: str = "forward"  # "forward" | "backward"
    after: tuple[str, ...] = ()
    once: tuple[str, ...] = ()
    chain: tuple[str, ...] = ()
    prepare: tuple[str, ...] = ()

    def phases(self) -> tuple[str, ...]:
        return self.prepare + self.before + self.per_step + self.after + self.once


@dataclass(frozen=True)
class ProjectionInfo:
    """What loops over a projection need: its ends, connectivity kind and layout (how its synapses
    are stored: dense, csr, one_to_one, window; see ir/connectivity.py), delay in steps and, for
    window kinds (conv2d, avg_pool2d), their geometry. Printers loop by layout, never by kind."""

    pre: str
    post: str
    kind: str
    delay_steps: int = 0
    geometry: dict[str, int] = field(default_factory=dict)  # window kinds: see ir/connectivity.py
    layout: str = "dense"


@dataclass(frozen=True)
class Kernel:
    name: str
    dt: float
    num_steps: int
    precision: str
    populations: dict[str, int]  # population -> number of neurons
    projections: dict[str, ProjectionInfo]
    arrays: tuple[Array, ...]
    phases: tuple[Phase, ...]
    entries: tuple[Entry, ...]
    #: what a runtime needs to drive the entries beyond the arrays' roles (JSON data: array names
    #: found by role for each loop the runtime runs, output readouts, spike-list capacities). The
    #: schedule passes write it and a backend copies it into its manifest without reading it.
    interface: dict[str, Any] = field(default_factory=dict)

    def array(self, name: str) -> Array:
        for a in self.arrays:
            if a.name == name:
                return a
        raise KeyError(name)

    def find(self, role: Role, owner: str, var: str | None = None) -> Array:
        """The one array with this role and owner (and var): how loaders look arrays up."""
        found = [
            a for a in self.arrays if a.role == role and a.owner == owner and (var is None or a.var == var)
        ]
        if len(found) != 1:
            raise KeyError(f"{len(found)} arrays with role {role.value}, owner {owner}, var {var}")
        return found[0]

    def phase(self, name: str) -> Phase:
        for p in self.phases:
            if p.name == name:
                return p
        raise KeyError(name)


def trial_element(array: Array, b: sympy.Expr, q: sympy.Expr) -> sympy.Expr:
    """Element `q` (flat, row-major, as `Elements` counts) of trial `b`'s row of a per-trial array:
    `array[b, q]`, or one flat offset where the array keeps more dimensions (e-prop's [batch, pre,
    post])."""
    if len(array.shape) <= 2:
        return array[b, q]
    rest = array.shape[1:]
    if not all(isinstance(d, int) for d in rest):
        raise AssertionError(f"kernel IR: {array.name} has symbolic dims {rest}")
    return array[b * math.prod(rest) + q]


# --------------------------------------------------------------------------------------------------
# Verification (STYLE.md #3): one readable sentence per broken invariant
# --------------------------------------------------------------------------------------------------


def walk(body: tuple[Stmt, ...]) -> Iterator[Stmt]:
    """Every statement of a body, nested ones included, in order."""
    for st in body:
        yield st
        if isinstance(st, Loop):
            yield from walk(st.prologue)
            yield from walk(st.body)
        elif isinstance(st, If):
            yield from walk(st.body)
            yield from walk(st.orelse)


def verify_kernel(kernel: Kernel) -> list[str]:
    problems: list[str] = []
    names = [a.name for a in kernel.arrays]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"array '{dup}' is declared more than once")
    for a in kernel.arrays:
        problems += [f"array '{a.name}': {p}" for p in _verify_array(a, kernel)]
    phase_names = [p.name for p in kernel.phases]
    for dup in sorted({n for n in phase_names if phase_names.count(n) > 1}):
        problems.append(f"phase '{dup}' is declared more than once")
    problems += _verify_code_names(phase_names, [e.name for e in kernel.entries])
    arrays = {a.name: a for a in kernel.arrays}
    for phase in kernel.phases:
        scope = {BATCH, NUM_STEPS, BATCH_SIZE} | (
            {STEP} if phase.kind in (PhaseKind.FORWARD, PhaseKind.BACKWARD, PhaseKind.LEARN) else set()
        )
        if phase.kind in (PhaseKind.UPDATE, PhaseKind.PREPARE):  # once per batch: no trial of its own
            scope = {NUM_STEPS, BATCH_SIZE}
        writable = _WRITABLE.get(phase.kind, frozenset())
        problems += [
            f"phase '{phase.name}': {p}"
            for p in _verify_body(phase.body, scope, arrays, kernel, writable=writable)
        ]
    for entry in kernel.entries:
        problems += [f"entry '{entry.name}': {p}" for p in _verify_entry(entry, kernel)]
    return problems


def _verify_array(a: Array, kernel: Kernel) -> list[str]:
    problems = []
    if a.owner not in kernel.populations and a.owner not in kernel.projections and a.owner != kernel.name:
        problems.append(f"owner '{a.owner}' is neither a population, a projection nor the network")
    if a.dtype not in DTYPES:
        problems.append(f"dtype '{a.dtype}' is not one of {', '.join(DTYPES)}")
    for d in a.shape:
        if not (isinstance(d, int) and d >= 0) and d not in SYMBOLIC_DIMS:
            problems.append(f"dimension {d!r} is neither a size nor one of {', '.join(SYMBOLIC_DIMS)}")
    return problems


_PER_STEP = (PhaseKind.FORWARD, PhaseKind.BACKWARD, PhaseKind.LEARN)
_ALLOWED = {
    "before": (PhaseKind.RESET,),
    "per_step": _PER_STEP,
    "after": (PhaseKind.REDUCE, PhaseKind.LOSS),
    "once": (PhaseKind.UPDATE,),
    "prepare": (PhaseKind.PREPARE,),
}
#: read-only roles that one kind of phase writes: a loss phase the dL/dy (a TARGET of the backward
#: pass) the runtime would otherwise give; an update phase the weights and params it steps
_WRITABLE = {
    PhaseKind.LOSS: frozenset({Role.TARGET}),
    PhaseKind.UPDATE: frozenset({Role.WEIGHT, Role.PARAM}),
}


def _verify_code_names(phases: list[str], entries: list[str]) -> list[str]:
    """Phases and entries become functions of one namespace in printed code (`snnc_<name>` in C):
    their names begin with a letter, so that what a printer adds beside them can begin with an
    underscore (`snnc__trial_<entry>`) and never equal one; and no phase is named like an entry."""
    problems = [
        f"{what} name '{name}' does not begin with a letter"
        for what, names in (("phase", phases), ("entry", entries))
        for name in names
        if not name[:1].isalpha()
    ]
    problems += [f"phase '{name}' is named like an entry" for name in sorted(set(phases) & set(entries))]
    return problems


def _verify_entry(entry: Entry, kernel: Kernel) -> list[str]:
    problems = []
    if entry.chain:
        if entry.before or entry.per_step or entry.after:
            problems.append("chains entries and has per-trial phases of its own")
        if entry.prepare:
            problems.append("chains entries and has prepare phases of its own (its entries' run first)")
        entries = {e.name: e for e in kernel.entries}
        for name in entry.chain:
            link = entries.get(name)
            if link is None:
                problems.append(f"chains unknown entry '{name}'")
            elif link.chain or link.once:
                problems.append(
                    f"chains entry '{name}', which runs {'a chain' if link.chain else 'once per batch'}"
                )
    if entry.steps not in ("forward", "backward"):
        problems.append(f"steps '{entry.steps}' is neither 'forward' nor 'backward'")
    known = {p.name: p for p in kernel.phases}
    for slot in ("prepare", "before", "per_step", "after", "once"):
        for name in getattr(entry, slot):
            phase = known.get(name)
            if phase is None:
                problems.append(f"runs unknown phase '{name}'")
            elif phase.kind not in _ALLOWED[slot]:
                problems.append(f"runs {phase.kind.value} phase '{name}' in its '{slot}' slot")
            elif slot == "per_step" and (phase.kind == PhaseKind.BACKWARD) != (entry.steps == "backward"):
                problems.append(f"runs {phase.kind.value} phase '{name}' in a {entry.steps} time loop")
    return problems


def _verify_body(
    body: tuple[Stmt, ...],
    scope: set[sympy.Symbol],
    arrays: dict[str, Array],
    kernel: Kernel,
    writable: frozenset[Role] = frozenset(),
) -> list[str]:
    """`writable`: read-only roles this phase may store to (a loss phase's dL/dy)."""
    problems: list[str] = []
    scope = set(scope)
    for st in body:
        if isinstance(st, Let):
            problems += _verify_expr(st.expr, scope, arrays, f"let {st.local}")
            if st.local in scope:
                problems.append(f"local '{st.local}' is defined twice in one scope")
            scope.add(st.local)
        elif isinstance(st, Store):
            where = f"store to {st.target}"
            if not isinstance(st.target, ElementRef):
                problems.append(f"{where}: the target is not an array element")
                continue
            if st.op not in ("=", "+="):
                problems.append(f"{where}: operator '{st.op}' is neither '=' nor '+='")
            target = arrays.get(st.target.array)
            if target is not None and target.role in READ_ONLY - writable:
                problems.append(
                    f"{where}: '{target.name}' is a {target.role.value} array, read-only in a kernel"
                )
            problems += _verify_expr(st.target, scope, arrays, where)
            problems += _verify_expr(st.expr, scope, arrays, where)
        elif isinstance(st, If):
            problems += _verify_expr(st.cond, scope, arrays, "if condition")
            problems += _verify_body(st.body, scope, arrays, kernel, writable)
            problems += _verify_body(st.orelse, scope, arrays, kernel, writable)
        elif isinstance(st, Loop):
            problems += _verify_space(st, scope, arrays, kernel)
            if st.prologue and not isinstance(st.space, Events):
                problems.append(f"a prologue on a loop over {type(st.space).__name__} (only Events)")
            problems += _verify_body(st.prologue, scope, arrays, kernel, writable)
            inner = scope | set(st.vars.values()) | _lets(st.prologue)
            problems += _verify_body(st.body, inner, arrays, kernel, writable)
        elif isinstance(st, (EmitSpikes, Generate)):
            if st.population not in kernel.populations:
                problems.append(f"{type(st).__name__} of unknown population '{st.population}'")
            if isinstance(st, EmitSpikes) and st.flag not in arrays:
                problems.append(f"spikes of '{st.population}' flagged in undeclared array '{st.flag}'")
            if isinstance(st, Generate) and st.kind not in GENERATORS:
                problems.append(f"unknown generator '{st.kind}' (known: {', '.join(GENERATORS)})")
        else:
            problems.append(f"{type(st).__name__} is not a kernel statement")
    return problems


def _lets(body: tuple[Stmt, ...]) -> set[sympy.Symbol]:
    return {st.local for st in body if isinstance(st, Let)}


def _verify_space(
    loop: Loop, scope: set[sympy.Symbol], arrays: dict[str, Array], kernel: Kernel
) -> list[str]:
    space = loop.space
    problems = []
    if set(loop.vars) != set(space.binds()):
        problems.append(f"loop over {space} binds {sorted(loop.vars)}, expected {sorted(space.binds())}")
    if isinstance(space, Trials):
        return problems
    if isinstance(space, Elements):
        if space.array not in arrays:
            problems.append(f"loop over the elements of undeclared array '{space.array}'")
        return problems
    owner = getattr(space, "population", None) or getattr(space, "projection", None)
    if owner not in kernel.populations and owner not in kernel.projections:
        problems.append(f"loop over unknown population or projection '{owner}'")
    if isinstance(space, (Spikes, Events)):
        problems += _verify_expr(space.step, scope, arrays, f"spikes of '{space.population}'")
    if isinstance(space, Events):
        have = {a.var for a in arrays.values() if a.owner == space.population and a.role == Role.SPIKE_LIST}
        for var in ("id", "step"):
            if var not in have:
                problems.append(f"events of '{space.population}' without a spike list '{var}' array")
        cursor = arrays.get(space.cursor)
        if cursor is None or cursor.role != Role.COUNTER:
            problems.append(f"events of '{space.population}': cursor '{space.cursor}' is not a counter array")
    if isinstance(space, Row):
        problems += _verify_expr(space.pre, scope, arrays, f"row of '{space.projection}'")
    if isinstance(space, PostSynapses):
        info = kernel.projections.get(space.projection)
        if info is not None and info.layout != "csr":
            problems.append(
                f"post-major loop over '{space.projection}', whose layout is {info.layout}, not csr"
            )
        for name in (space.ptr, space.pre, space.slot):
            if name not in arrays or arrays[name].dtype != "int32":
                problems.append(f"post-major loop over '{space.projection}': no int32 array '{name}'")
    return problems


def _verify_expr(
    expr: sympy.Basic, scope: set[sympy.Symbol], arrays: dict[str, Array], where: str
) -> list[str]:
    problems = []
    refs = expr.atoms(sympy.Indexed)
    for ref in sorted(refs, key=str):
        name = str(ref.base.label)
        array = arrays.get(name)
        if array is None:
            problems.append(f"{where}: reads undeclared array '{name}'")
        elif len(ref.indices) not in (1, len(array.shape)):  # one index: the row-major flat offset
            problems.append(
                f"{where}: '{name}' has {len(array.shape)} dimension(s), indexed with {len(ref.indices)}"
            )
    labels = {r.base.label for r in refs}
    free = {s for s in expr.free_symbols if s not in labels and not isinstance(s, sympy.Indexed)}
    for s in sorted(free - scope, key=str):
        kind = "index" if isinstance(s, Index) else "local" if isinstance(s, Local) else "symbol"
        problems.append(f"{where}: {kind} '{s}' is not bound here")
    return problems


# --------------------------------------------------------------------------------------------------
# Dead locals
# --------------------------------------------------------------------------------------------------


def _reads(st: Stmt) -> set[sympy.Basic]:
    out: set[sympy.Basic] = set()
    for inner in walk((st,)):
        for expr in (
            getattr(inner, "expr", None),
            getattr(inner, "cond", None),
            getattr(inner, "target", None),
        ):
            if expr is not None:
                out |= expr.free_symbols
        if isinstance(inner, Loop):
            for expr in (getattr(inner.space, "step", None), getattr(inner.space, "pre", None)):
                if expr is not None:
                    out |= sympy.sympify(expr).free_symbols
    return out


def prune_lets(body: tuple[Stmt, ...], later: frozenset = frozenset()) -> tuple[Stmt, ...]:
    """`body` without the `Let`s that neither it nor `later` (what runs after it) reads."""
    out: list[Stmt] = []
    needed: set[sympy.Basic] = set(later)
    for st in reversed(body):
        if isinstance(st, Let) and st.local not in needed:
            continue
        if isinstance(st, Loop):
            inner = prune_lets(st.body)
            reads = frozenset().union(*(_reads(x) for x in inner)) if inner else frozenset()
            st = dataclasses.replace(st, body=inner, prologue=prune_lets(st.prologue, reads))
        elif isinstance(st, If):
            st = dataclasses.replace(st, body=prune_lets(st.body), orelse=prune_lets(st.orelse))
        needed |= _reads(st)
        out.append(st)
    return tuple(reversed(out))


# --------------------------------------------------------------------------------------------------
# Text form (`--print-after schedule`, golden tests)
# --------------------------------------------------------------------------------------------------


def _fmt(expr: object) -> str:
    return sympy.sstr(expr, order="lex") if isinstance(expr, sympy.Basic) else str(expr)


def _space(space: Space) -> str:
    if isinstance(space, PostSynapses):
        return f"synapses({space.projection}, post-major: {space.ptr}, {space.pre}, {space.slot})"
    if isinstance(space, Spikes):
        return f"spikes({space.population}, step {_fmt(space.step)})"
    if isinstance(space, Events):
        return f"events({space.population}, step {_fmt(space.step)}, newest first, cursor {space.cursor})"
    if isinstance(space, Row):
        return f"row({space.projection}, pre {_fmt(space.pre)})"
    if isinstance(space, Trials):
        return "trials(B)"
    if isinstance(space, Elements):
        return f"elements({space.array})"
    owner = getattr(space, "population", None) or getattr(space, "projection", None)
    return f"{type(space).__name__.lower()}({owner})"


def _body(body: tuple[Stmt, ...], depth: int) -> list[str]:
    pad = "  " * depth
    lines: list[str] = []
    for st in body:
        note = f"  // {st.comment}" if getattr(st, "comment", "") else ""
        if isinstance(st, Let):
            lines.append(f"{pad}let {st.local} = {_fmt(st.expr)}{note}")
        elif isinstance(st, Store):
            lines.append(f"{pad}{_fmt(st.target)} {st.op} {_fmt(st.expr)}{note}")
        elif isinstance(st, EmitSpikes):
            lines.append(f"{pad}emit spikes of {st.population} where {st.flag}")
        elif isinstance(st, Generate):
            lines.append(f"{pad}generate spikes of {st.population}: {st.kind}")
        elif isinstance(st, If):
            lines.append(f"{pad}if {_fmt(st.cond)} {{")
            lines += _body(st.body, depth + 1)
            if st.orelse:
                lines.append(f"{pad}}} else {{")
                lines += _body(st.orelse, depth + 1)
            lines.append(f"{pad}}}")
        else:
            bound = ", ".join(str(st.vars[n]) for n in st.space.binds())
            lines.append(f"{pad}for {bound} in {_space(st.space)} {{{note}")
            if st.prologue:
                lines.append(f"{pad}  once, before the first {{")
                lines += _body(st.prologue, depth + 2)
                lines.append(f"{pad}  }}")
            lines += _body(st.body, depth + 1)
            lines.append(f"{pad}}}")
    return lines


def kernel_to_text(kernel: Kernel) -> str:
    """Deterministic, diff-friendly text of a kernel."""
    lines = [f"kernel {kernel.name}  // dt {kernel.dt} ms, {kernel.num_steps} steps, {kernel.precision}"]
    for name, size in kernel.populations.items():
        lines.append(f"  population {name}[{size}]")
    for name, p in kernel.projections.items():
        lines.append(f"  projection {name}: {p.pre} -> {p.post}, {p.kind}, delay {p.delay_steps}")
    for a in kernel.arrays:
        shape = ", ".join(str(d) for d in a.shape)
        var = f" ({a.var})" if a.var else ""
        var += ", optional" if a.optional else ""
        note = f"  // {a.comment}" if a.comment else ""
        lines.append(
            f"  array {a.name}: {a.role.value} of {a.owner}{var}, {a.dtype}[{shape}] = {a.init!r}{note}"
        )
    for phase in kernel.phases:
        note = f"  // {phase.comment}" if phase.comment else ""
        lines.append(f"  phase {phase.name} ({phase.kind.value}) {{{note}")
        lines += _body(phase.body, 2)
        lines.append("  }")
    for e in kernel.entries:
        once = f", once [{', '.join(e.once)}]" if e.once else ""
        if e.chain:
            lines.append(f"  entry {e.name}: for each trial, entries [{', '.join(e.chain)}]{once}")
            continue
        first = f"first once [{', '.join(e.prepare)}], " if e.prepare else ""
        lines.append(
            f"  entry {e.name}: {first}before [{', '.join(e.before)}], {e.steps} steps "
            f"[{', '.join(e.per_step)}], after [{', '.join(e.after)}]{once}"
        )
    return "\n".join(lines) + "\n"


__all__ = [
    "BATCH",
    "BATCH_SIZE",
    "NUM_STEPS",
    "STEP",
    "Array",
    "Arrivals",
    "ElementRef",
    "EmitSpikes",
    "Entry",
    "Events",
    "Generate",
    "If",
    "Index",
    "Kernel",
    "Let",
    "Local",
    "Loop",
    "Neurons",
    "Phase",
    "PhaseKind",
    "ProjectionInfo",
    "Role",
    "Row",
    "Elements",
    "Spikes",
    "Store",
    "Synapses",
    "PostSynapses",
    "Trials",
    "kernel_to_text",
    "prune_lets",
    "verify_kernel",
    "walk",
]
