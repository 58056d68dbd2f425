"""Print a forward kernel (`snnc.ir.kernel`) as GeNN neuron models: GeNN's mapping of the phases.

GeNN runs one time step as: synapse updates (spikes of earlier steps call `addToPost(g)`), then per
neuron its sim code, threshold condition and reset code. The kernel's forward phases map onto that:

- a loop over the arrivals of projection P that adds `c * w` to synapse states of the post neuron
  becomes GeNN's delivery (`addToPost(g)` into the post neuron's input `q_in__P`, through a
  pass-through postsynaptic model, `render.render_projection`) and the first lines of the post
  neuron's sim code, `state += c * q_in__P` (`c` a number; a projection without weights, a pool,
  carries its constant in `g`);
- a projection's delay-buffer delivery (trainable delays: a scatter of the last step's spikes into
  a ring per post neuron, then an apply loop) becomes GeNN's dendritic delay buffer and the same
  `state += c * q_in__P` lines (`delay_printer.py`);
- a loop over the neurons of population p (its step) becomes p's sim code, statement by statement;
- `emit spikes of p where flag` becomes the threshold condition `flag != 0` (the step has already
  applied the reset and the refractory count, as in every backend);
- input generators keep GeNN's own input models (`render.render_input`);
- phases that file a step's spikes into a population's spike list (for a backward pass) are left
  out here: GeNN keeps each neuron's spikes in its own buffers, filled from the values the step
  stored for them (scratch vars `q_<record>`); `backward_printer.py` maps those phases and the
  backward ones;
- learning phases beside the forward step (an entry that learns online) are `learn_printer.py`'s;
- the reset phase gives the values the per-trial `Reset` custom update restores; a phase before the
  steps that computes values (derived params of per-neuron params) is `derived_printer.py`'s;
- recordings (optional [batch, steps, neuron] arrays) are the runtime's: it pulls the state vars
  after every step. A recording that a backward entry reads (a trajectory: a trained param's
  ∫ λ·∂f/∂p dt reads the states of every step) is an extra global param `rv_<var>` of the
  population that holds it, [batch][step][neuron] (`trajectories`), written by the forward steps'
  code and read back by the backward steps' (`backward_printer.py`; synapse code reads a post
  neuron's state at its step from a var the neuron code stages, `staged_var`). It costs batch × steps ×
  neurons values per recorded state, as the C backend's records do: 32 × 1000 × 256 floats (33 MB)
  per state of an SHD-sized hidden layer; examples/shd_delays.snn records three (v and both
  synapse currents, which ∂f/∂tau_mem reads), 98 MB at batch 32.
Anything else in a forward kernel is refused by name, so a new statement cannot be dropped silently.

Names: an array becomes the var of the population it belongs to: a neuron state `u_<s>`, a synapse
state `y_<s>__<P>` (held by the post neuron), the readout `r_value`, counters and scratch values
`q_<var>`, adjoints `a_<var>`, eligibilities `e_<var>`, gradients `g_<var>`, trained params `p_<var>`,
what the runtime supplies `t_<var>`, trajectories `rv_<var>`; a projection's param, gradient or
derived value per post neuron is held by the post neuron under its coupled name (`p_tau__x_to_h`);
locals print as `l_<name>`, indices as GeNN's `id`, `batch` and `t / dt`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import sympy
from snnc.backends.c.kernel_printer import INT_DTYPES, KernelExprPrinter, unique_local
from snnc.ir import names as ir_names
from snnc.ir.kernel import (
    BATCH,
    BATCH_SIZE,
    NUM_STEPS,
    STEP,
    Array,
    Arrivals,
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
    PhaseKind,
    Role,
    Spikes,
    Stmt,
    Store,
    walk,
)

from .models import GeNNModelSpec, Var
from .render import PopulationCtx, fail, synapse_var

#: GeNN's type of each kernel dtype a neuron var can have
GENN_TYPES = {"scalar": "scalar", "int32": "int", "uint32": "unsigned int"}


#: the roles of arrays a GeNN neuron model holds as vars
NEURON_ROLES = (
    Role.STATE,
    Role.READOUT,
    Role.COUNTER,
    Role.SCRATCH,
    Role.ADJOINT,
    Role.TARGET,
    Role.ELIGIBILITY,
    Role.GRADIENT,
    Role.PARAM,
)


def genn_var(array: Array, kernel: Kernel) -> str:
    """The GeNN var that holds `array` in the population it belongs to (see the module docstring).

    Two arrays of one population that would share a name (a value tapped at the start of the step
    and after the update, both of var `v`) keep it for the first in the kernel's order; the others
    are named after their array (`q_eu_h__v`), which is unique in the kernel."""
    name = _role_var(array, kernel)
    if array.owner in kernel.populations:
        for other in kernel.arrays:
            if other is array or other.name == array.name:
                break
            if (
                other.owner == array.owner
                and other.role in NEURON_ROLES
                and len(other.shape) == len(array.shape)
            ):
                if _role_var(other, kernel, strict=False) == name:
                    return ir_names.local("q", array.name)
    return name


def per_post_neuron(array: Array, kernel: Kernel) -> bool:
    """A projection's param, its gradient or a value derived from it, with one value per post neuron
    (or one, shared): `pp_<P>__tau`, `dp_<P>__P_i_i`. The post population holds it as a var, named
    after the projection so that two projections into one population (or the population's own
    `tau`) never share it. Trained delays are per connection: synapse vars (`delay_printer.py`)."""
    info = kernel.projections.get(array.owner)
    if info is None or array.role not in (Role.PARAM, Role.SCRATCH, Role.GRADIENT) or array.var is None:
        return False
    if array.var == "delay" and array.role != Role.SCRATCH and _trains_delays(kernel, array.owner):
        return False
    n = kernel.populations[info.post]
    return tuple(array.shape) in ((1,), (n,), ("batch", n))


def _trains_delays(kernel: Kernel, projection: str) -> bool:
    """Whether `projection` has trainable delays (then its `delay` param is theirs, not a synapse's)."""
    return any(a.owner == projection and a.var == "delay_steps" for a in kernel.arrays)


def _role_var(array: Array, kernel: Kernel, strict: bool = True) -> str | None:
    if per_post_neuron(array, kernel):
        prefix = {Role.PARAM: "p", Role.GRADIENT: "g"}.get(array.role, "q")
        return ir_names.local(prefix, ir_names.coupled(array.var, array.owner))
    if array.role == Role.RECORD and strict:
        return ir_names.local("rv", array.var)
    if array.role == Role.ELIGIBILITY:
        return ir_names.local("e", array.var or array.name)
    if array.role == Role.GRADIENT:
        return ir_names.local("g", array.var or array.name)
    if array.role == Role.PARAM:
        return ir_names.local("p", array.var or array.name)
    if not strict and array.role not in (
        Role.STATE,
        Role.READOUT,
        Role.COUNTER,
        Role.SCRATCH,
        Role.ADJOINT,
        Role.TARGET,
    ):
        return None
    if array.role == Role.STATE:
        if array.owner in kernel.populations:
            return ir_names.local("u", array.var)
        return synapse_var(array.var, array.owner)
    if array.role == Role.READOUT:
        return "r_value"
    if array.role in (Role.COUNTER, Role.SCRATCH):
        return ir_names.local("q", array.var)
    if array.role == Role.ADJOINT:
        return ir_names.local("a", array.var)
    if array.role == Role.TARGET:  # supplied by the runtime before the steps that read it
        return ir_names.local("t", array.var)
    raise fail(f"array '{array.name}' ({array.role.value}) has no place in a GeNN neuron model")


def holder(array: Array, kernel: Kernel) -> str:
    """The population whose neurons hold `array`: its owner, or a projection's post population."""
    return array.owner if array.owner in kernel.populations else kernel.projections[array.owner].post


def shared_param(array: Array, expr: sympy.Indexed) -> bool:
    """The one element of a shared trained param (`tp_h__v_thresh[0]`): GeNN holds it as a var of
    every neuron, all equal (the runtime sets it so, like a weight, and sums its gradient)."""
    return array.role == Role.PARAM and tuple(array.shape) == (1,) and tuple(expr.indices) == (0,)


def trajectories(kernel: Kernel) -> dict[str, Array]:
    """The recordings [batch, steps, neuron] that a backward entry reads, by name: GeNN keeps each
    as an extra global param of the population that holds it (see the module docstring)."""
    read: set[str] = set()
    for entry in kernel.entries:
        if entry.steps != "backward":
            continue
        for name in entry.per_step:
            for st in walk(kernel.phase(name).body):
                for expr in (getattr(st, "expr", None), getattr(st, "cond", None)):
                    if expr is not None:
                        read |= {str(r.base.label) for r in sympy.sympify(expr).atoms(sympy.Indexed)}
    out = {}
    for name in sorted(read):
        a = kernel.array(name)
        if a.role == Role.RECORD and len(a.shape) == 3 and a.shape[:2] == ("batch", "steps"):
            out[name] = a
    return out


class GeNNExprPrinter(KernelExprPrinter):
    """Kernel expressions in GeNN's terms: vars by name, `id`/`batch`, the step from `t`."""

    def __init__(self, kernel: Kernel) -> None:
        super().__init__(kernel, "double")  # unsuffixed literals: GeNN types them as `scalar`
        self.kernel = kernel
        self.vars: dict[str, Array] = {}  # GeNN var -> the array it holds
        self.neuron = Index("j")  # the index that stands for GeNN's `id` (the model's own neuron)
        self.step_text: str | None = None  # the step where it is not GeNN's time (backward steps)
        self.batch_size_text: str | None = None  # the trials of the batch, where code reads them
        self.reads_batch_size = False
        #: GeNN var -> the delay (steps, text) at which synapse code reads it: `var[d]`, the value
        #: the post neuron held d GeNN steps ago (a heterogeneously delayed var ref)
        self.delayed: dict[str, str] = {}
        self.trajectories = trajectories(kernel)
        self.egps: dict[str, Array] = {}  # extra global param -> the trajectory it holds
        #: synapse code: a trajectory of the post neuron at the step is the post var the neuron
        #: code staged for it (`staged_var`), read through a var ref like the post's other vars
        self.synapse = False

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        if isinstance(expr, Index):
            if expr == self.neuron:
                return "id" if self.int_mode else "((scalar)id)"
            if expr == STEP and self.step_text is not None:
                return self.step_text if self.int_mode else f"((scalar){self.step_text})"
            if expr == STEP:
                return "(int)round(t / dt)" if self.int_mode else "round(t / dt)"
            if expr == NUM_STEPS:
                return str(self.kernel.num_steps) if self.int_mode else f"{self.kernel.num_steps}.0"
            if expr == BATCH_SIZE and self.batch_size_text is not None:
                self.reads_batch_size = True
                return self.batch_size_text
            raise fail(f"index '{expr.name}' has no GeNN form outside an element")
        return super()._print_Symbol(expr)

    def _print_Indexed(self, expr: sympy.Indexed) -> str:
        if expr in self.overrides:
            return self.overrides[expr]
        array = self.arrays[str(expr.base.label)]
        if array.name in self.trajectories:
            return self._trajectory(expr, array)
        per_trial = array.shape[:1] == ("batch",) and len(array.shape) == 2
        if not (
            (per_trial and tuple(expr.indices) == (BATCH, self.neuron))
            or (len(array.shape) == 1 and tuple(expr.indices) == (self.neuron,))  # shared by the batch
            or shared_param(array, expr)
        ):
            shape = ", ".join(str(d) for d in array.shape)
            raise fail(
                f"element {expr} of {array.role.value} array '{array.name}' [{shape}] is not one neuron's "
                "value in one trial, which GeNN vars hold",
                hint="use the c backend for this network",
            )
        name = genn_var(array, self.kernel)
        self.vars[name] = array
        return f"{name}[{self.delayed[name]}]" if name in self.delayed else name

    def _trajectory(self, expr: sympy.Indexed, array: Array) -> str:
        """An element [b, step, neuron] of a trajectory: its extra global param at this trial's row."""
        b, step, neuron = expr.indices
        if self.synapse:
            if (b, step, neuron) != (BATCH, STEP, self.neuron):
                raise fail(
                    f"synapse code reads element {expr} of trajectory '{array.name}': GeNN stages a "
                    "post neuron's trajectory at the step of the spikes only",
                    hint="use the c backend for this network",
                )
            name = staged_var(array)
            self.vars[name] = array
            return f"{name}[{self.delayed[name]}]" if name in self.delayed else name
        if b != BATCH or neuron != self.neuron:
            raise fail(
                f"element {expr} of trajectory '{array.name}' is not one neuron's value in one trial, "
                "which GeNN code reads",
                hint="use the c backend for this network",
            )
        name = genn_var(array, self.kernel)
        self.egps[name] = array
        k, n = self.kernel.num_steps, array.shape[2]
        # 64-bit: batch x steps x neurons passes 2^32 on a large GPU run (GeNN's indices are 32-bit)
        return f"{name}[((uint64_t)batch * {k} + {self.index(step)}) * {n} + id]"

    def _print_Infinity(self, expr: sympy.Basic) -> str:
        return "(1.0 / 0.0)"  # GeNN's transpiler knows no INFINITY

    def _print_NegativeInfinity(self, expr: sympy.Basic) -> str:
        return "(-1.0 / 0.0)"


@dataclass
class NeuronCode:
    """What the kernel says about one population's GeNN neuron model."""

    population: str
    deliver: list[str] = field(default_factory=list)  # sim code lines before the step
    step: list[str] = field(default_factory=list)
    flag: str | None = None  # the var whose non-zero value is a spike
    vars: dict[str, Array] = field(default_factory=dict)
    egps: dict[str, Array] = field(default_factory=dict)  # trajectories (extra global params)
    reset: dict[str, float] = field(default_factory=dict)  # var -> value restored before a trial
    inputs: list[str] = field(default_factory=list)  # projections delivering into it (q_in__P)

    def genn_vars(self) -> list[Var]:
        """One var per array; a param is shared by the batch (the runtime sets it, like a weight)."""
        return [
            Var(name, GENN_TYPES[a.dtype], "VarAccess.READ_ONLY" if a.role == Role.PARAM else None)
            for name, a in self.vars.items()
        ]

    def var_init(self) -> dict[str, Any]:
        """Initial values; a non-finite one starts at 0 (GeNN writes initial values into C code)
        and the Reset update, which prints infinities GeNN's way, sets it before every trial."""
        out: dict[str, Any] = {}
        for name, a in self.vars.items():
            value = self.reset.get(name, a.init)
            if a.dtype in INT_DTYPES:
                out[name] = int(value)
            else:
                out[name] = float(value) if math.isfinite(value) else 0.0
        return out

    def code(self) -> dict[str, str]:
        out = {"sim_code": "\n".join([*self.deliver, *self.step])}
        if self.flag is not None:
            out["threshold_condition_code"] = f"{self.flag} != 0"
        return out


class StatementPrinter:
    """Statements of one neuron model's code; locals are unique across the model's code strings
    (GeNN runs them in one scope)."""

    def __init__(self, kernel: Kernel, code: NeuronCode) -> None:
        self.kernel = kernel
        self.code = code
        self.pr = GeNNExprPrinter(kernel)
        self.taken: set[str] = set()

    def local(self, local: Local) -> str:
        name = unique_local("l_", local, self.taken)
        self.pr.locals[local] = name
        return name

    def body(self, body: tuple[Stmt, ...], depth: int = 0) -> list[str]:
        lines: list[str] = []
        for st in body:
            lines += self.stmt(st, depth)
        self.code.vars.update(self.pr.vars)
        self.code.egps.update(self.pr.egps)
        return lines

    def stmt(self, st: Stmt, depth: int) -> list[str]:
        pad = "    " * depth
        note = f"  // {st.comment}" if getattr(st, "comment", "") else ""
        if isinstance(st, Let):
            as_int = self.pr.is_int(st.expr)
            text = self.pr.value(st.expr, as_int)
            if as_int:
                self.pr.int_locals.add(st.local)
            ctype = "int" if as_int else "scalar"
            return [f"{pad}const {ctype} {self.local(st.local)} = {text};{note}"]
        if isinstance(st, Store):
            target = self.pr._print(st.target)
            text = self.pr.value(st.expr, self.pr.arrays[st.target.array].dtype in INT_DTYPES)
            return [f"{pad}{target} {st.op} {text};{note}"]
        if isinstance(st, If):
            lines = [f"{pad}if ({self.pr._print(st.cond)}) {{", *self.body(st.body, depth + 1)]
            if st.orelse:
                lines += [f"{pad}}} else {{", *self.body(st.orelse, depth + 1)]
            return [*lines, f"{pad}}}"]
        raise fail(f"a {type(st).__name__} inside a neuron's step has no GeNN form")


def _delivery(kernel: Kernel, loop: Loop, pr: GeNNExprPrinter) -> list[str]:
    """`state += c * q_in__P` per store of an arrivals loop (each must add a multiple of w[q])."""
    proj = loop.space.projection
    j = loop.vars["j"]
    if j != Index("j"):
        raise fail(f"projection '{proj}': arrivals bind their post neuron as '{j}', not 'j'")
    lines = [f"// projection {proj}: this step's arrivals, summed by GeNN into q_in__{proj}"]
    for st in loop.body:
        if not isinstance(st, Store) or tuple(st.target.indices) != (BATCH, j):
            raise fail(f"projection '{proj}': a delivery GeNN cannot print ({st})")
        delta = st.expr if st.op == "+=" else st.expr - st.target if st.op == "=" else None
        weights = [r for r in (delta.atoms(sympy.Indexed) if delta is not None else ()) if r != st.target]
        if delta is None or any(pr.arrays[str(r.base.label)].role != Role.WEIGHT for r in weights):
            raise fail(f"projection '{proj}': delivery '{st.target} {st.op} {st.expr}' is not additive")
        coeff = sympy.diff(delta, weights[0]) if weights else sympy.S.One
        rest = sympy.expand(delta - coeff * weights[0]) if weights else sympy.S.Zero
        if len(weights) > 1 or coeff.free_symbols or rest != 0:
            raise fail(
                f"projection '{proj}': delivery '{st.target} {st.op} {st.expr}' is not a constant times "
                "the weight, which GeNN's addToPost carries",
                hint="write the synapse's on_pre as `state += w` (times a constant)",
            )
        target = pr._print(st.target)
        scale = "" if coeff == 1 else f"{pr._print(coeff)} * "
        lines.append(f"{target} += {scale}q_in__{proj};{f'  // {st.comment}' if st.comment else ''}")
    return lines


def keeps_spike_list(body: tuple[Stmt, ...], arrays: dict[str, Array]) -> bool:
    """A phase that only files this step's spikes into a population's spike list (and counts them):
    the backward pass reads that list, and GeNN keeps the same facts per neuron in its own way."""
    loops = [st for st in body if isinstance(st, Loop)]
    if not loops or not all(isinstance(st.space, Spikes) for st in loops):
        return False
    stores = [st for st in walk(body) if isinstance(st, Store)]
    return all(arrays[st.target.array].role in (Role.SPIKE_LIST, Role.COUNTER) for st in stores)


def _is_recording(loop: Loop, arrays: dict[str, Array]) -> bool:
    stores = [st for st in loop.body if isinstance(st, Store)]
    return bool(stores) and all(arrays[st.target.array].optional for st in stores)


def forward_entry(kernel: Kernel) -> Entry:
    """The entry GeNN's forward steps print: the one that learns online (its learning phases run
    beside the forward step, `learn_printer.py`), else the first that runs forward in time."""
    online = [e for e in kernel.entries if any(kernel.phase(p).kind == PhaseKind.LEARN for p in e.per_step)]
    if len(online) > 1:
        raise fail(f"entries {', '.join(e.name for e in online)} both learn online; GeNN prints one")
    return online[0] if online else next(e for e in kernel.entries if e.steps == "forward")


def neuron_code(kernel: Kernel, entry: Entry | None = None) -> dict[str, NeuronCode]:
    """Per non-input population, its GeNN neuron code from the forward phases of `entry` (default
    `forward_entry`) and the kernel's reset phases. Learning phases are `learn_printer.py`'s."""
    entry = entry or forward_entry(kernel)
    codes: dict[str, NeuronCode] = {}
    printers: dict[str, StatementPrinter] = {}

    def of(pop: str) -> StatementPrinter:
        if pop not in printers:
            codes[pop] = NeuronCode(pop)
            printers[pop] = StatementPrinter(kernel, codes[pop])
        return printers[pop]

    from .delay_printer import apply_lines, is_delivery, trained_delays

    arrays = {a.name: a for a in kernel.arrays}
    delays = trained_delays(kernel)
    kept = trajectories(kernel)
    generated = set()
    for phase in (kernel.phase(name) for name in entry.per_step):
        if phase.kind == PhaseKind.LEARN:
            continue  # learning beside the forward step: learn_printer.py maps it
        if phase.kind != PhaseKind.FORWARD:
            raise fail(f"phase '{phase.name}' ({phase.kind.value}) is not a forward phase GeNN prints here")
        if keeps_spike_list(phase.body, arrays):
            continue  # per-neuron buffers in GeNN: backward_printer.py maps these phases
        proj = is_delivery(kernel, phase.body, delays)
        if proj is not None:  # trainable delays: GeNN's dendritic delay buffer (delay_printer.py)
            p = of(kernel.projections[proj].post)
            p.code.deliver += apply_lines(kernel, proj, phase.body[1], p.pr)
            p.code.inputs.append(proj)
            p.code.vars.update(p.pr.vars)
            continue
        for st in phase.body:
            if isinstance(st, Generate):
                generated.add(st.population)
            elif isinstance(st, EmitSpikes):
                code = of(st.population).code
                code.flag = genn_var(arrays[st.flag], kernel)
                code.vars[code.flag] = arrays[st.flag]
            elif isinstance(st, Loop) and isinstance(st.space, Arrivals):
                post = kernel.projections[st.space.projection].post
                p = of(post)
                p.code.deliver += _delivery(kernel, st, p.pr)
                p.code.inputs.append(st.space.projection)
                p.code.vars.update(p.pr.vars)
            elif isinstance(st, Loop) and isinstance(st.space, Neurons):
                comment = phase.comment or phase.name
                if _is_recording(st, arrays):  # the runtime's, but for the trajectories
                    st = _trajectory_stores(st, kept)
                    if st is None:
                        continue
                    comment = "the trajectories the backward steps read"
                p = of(st.space.population)
                p.code.step.append(f"// {comment}")
                p.code.step += p.body(st.body)
            else:
                raise fail(f"phase '{phase.name}': a {type(st).__name__} has no GeNN form here")
    for phase in kernel.phases:
        if phase.kind == PhaseKind.RESET:  # its numbers; values computed per trial: derived_printer.py
            _collect_reset(kernel, arrays, phase.body, codes)
    for pop in generated:
        codes.pop(pop, None)
    return codes


def _trajectory_stores(loop: Loop, kept: dict[str, Array]) -> Loop | None:
    """A recording loop with only its stores into trajectories (None if it has none)."""
    body = tuple(st for st in loop.body if not isinstance(st, Store) or st.target.array in kept)
    return dataclasses.replace(loop, body=body) if any(isinstance(st, Store) for st in body) else None


def _collect_reset(
    kernel: Kernel, arrays: dict[str, Array], body: tuple[Stmt, ...], codes: dict[str, NeuronCode]
) -> None:
    for st in body:
        if isinstance(st, Loop) and isinstance(st.space, Neurons):
            _collect_reset(kernel, arrays, st.body, codes)
        elif isinstance(st, Store) and not st.expr.free_symbols:  # computed ones: derived_printer.py
            # only the vars the printed code uses (not a backward pass's)
            a = arrays[st.target.array]
            pop = holder(a, kernel) if a.role in NEURON_ROLES else None
            if pop in codes and genn_var(a, kernel) in codes[pop].vars:
                codes[pop].reset[genn_var(a, kernel)] = float(st.expr)


def population_ctx(code: NeuronCode, size: int, model: str, readout: dict[str, Any] | None) -> PopulationCtx:
    """The neuron population of the pygenn module: model spec, initial values, per-trial reset."""
    src = f"population {code.population}: {size} x {model}"
    spec = GeNNModelSpec(
        "neuron",
        f"snnc_neuron_{code.population}",
        src + " (printed from the kernel's forward step)",
        vars=code.genn_vars(),
        additional_input_vars=[(f"q_in__{proj}", "scalar", 0.0) for proj in code.inputs],
        code=code.code(),
    )
    states = [name for name, a in code.vars.items() if a.role == Role.STATE and a.owner == code.population]
    ctx = PopulationCtx(
        code.population,
        size,
        src,
        spec,
        {},
        code.var_init(),
        readout=readout,
        record_vars=states,
        reset_vars=dict(code.reset),
    )
    for name, a in code.egps.items():
        add_trajectory(ctx, name, a)
    return ctx


def staged_var(array: Array) -> str:
    """The var in which a population's neuron code stages trajectory `array` at the step the
    synapse code of the next GeNN step reads (`backward_printer.stage_trajectories`)."""
    return ir_names.local("rvs", array.var)


def add_trajectory(p: PopulationCtx, name: str, array: Array) -> None:
    """Extra global param `name` of population `p`: trajectory `array`, [batch][step][neuron]."""
    if any(v.name == name for v in p.model.extra_global_params):
        return
    p.model.extra_global_params.append(Var(name, "scalar*"))
    steps, n = "NUM_STEPS", array.shape[2]
    p.egp_init[name] = f"np.zeros(batch_size * {steps} * {n}, dtype=SCALAR)"
