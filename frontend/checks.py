"""Whole-network checks that need populations, projections and the training block together.

Each check is one function taking the lowered network and a DiagnosticBag.

The recurrence rule (`check_cycles`):
- Simulation (no train block, or `algorithm = none`): any cycle is allowed, self-connections included.
  Spikes are delivered one step after they are emitted (ir/discrete.py), so even zero-delay loops
  are well defined.
- Every gradient algorithm: an output population may project only onto itself. Feedback from an
  output into other populations would make the readout drive its own inputs, which neither the
  EventProp adjoint nor e-prop's learning signal accounts for.
- eventprop: any other recurrence is allowed (the adjoint runs backwards through every projection).
- eprop: the only recurrence allowed is a hidden population's projection onto itself (`h -> h`, the
  recurrent weights of Bellec et al.); a loop through several populations, or an output
  self-connection, is rejected because the eligibility traces are local to one layer.
"""

from __future__ import annotations

from snnc.frontend import messages as M
from snnc.ir import model as ir
from snnc.ir import names
from snnc.ir.diagnostics import DiagnosticBag

#: algorithm -> loss -> readouts it works with
COMPATIBLE: dict[str, dict[str, tuple[str, ...]]] = {
    "eventprop": {
        "sparse_categorical_crossentropy": ("avg_var", "avg_var_exp_weight", "sum_var", "max_var"),
        "mse": ("var",),
        "ttfs_crossentropy": ("first_spike_time",),
        "relative_mse": ("first_spike_time",),
    },
    "eprop": {
        "sparse_categorical_crossentropy": ("sum_var", "avg_var"),
        "mse": ("var",),
    },
}
GRADIENT_ALGORITHMS = tuple(COMPATIBLE)


def _options(algorithm: str) -> str:
    return "; ".join(f"{loss} with {' | '.join(ros)}" for loss, ros in COMPATIBLE[algorithm].items())


def check_training(net: ir.Network, bag: DiagnosticBag) -> None:
    """Outputs need readouts, and loss and readouts must suit the algorithm."""
    train = net.train
    if train is None or train.algorithm.name not in COMPATIBLE:
        return
    algo = train.algorithm.name
    outputs = net.outputs()
    if not outputs:
        bag.error(
            M.READOUT,
            f"training with {algo} needs an output population",
            train.span,
            "declare one, e.g. 'output out = LIF(10, readout = avg_var)'",
        )
    if train.loss is None:
        bag.error(M.ALGO, f"training with {algo} needs a loss", train.span, f"valid: {_options(algo)}")
    elif train.loss.name not in COMPATIBLE[algo]:
        bag.error(
            M.ALGO,
            f"loss '{train.loss.name}' is not available with {algo}",
            train.loss.span,
            f"valid: {_options(algo)}",
        )
    for pop in outputs:
        if pop.readout is None:
            bag.error(
                M.READOUT,
                f"output population '{pop.name}' has no readout, which training with {algo} needs",
                pop.span,
                f"add e.g. 'readout = {next(iter(COMPATIBLE[algo][train.loss.name]))}'"
                if train.loss is not None and train.loss.name in COMPATIBLE[algo]
                else "add a readout, e.g. 'readout = avg_var'",
            )
            continue
        if train.loss is None or train.loss.name not in COMPATIBLE[algo]:
            continue
        allowed = COMPATIBLE[algo][train.loss.name]
        if pop.readout.kind not in allowed:
            bag.error(
                M.ALGO,
                f"readout {pop.readout.kind} of '{pop.name}' does not work with loss "
                f"{train.loss.name} under {algo}",
                pop.readout.span or pop.span,
                f"valid: {_options(algo)}",
            )


def _cycle_members(net: ir.Network) -> set[str]:
    """Populations on a cycle of length >= 2 (strongly connected components, Tarjan)."""
    graph: dict[str, set[str]] = {p: set() for p in net.populations}
    for proj in net.projections.values():
        if proj.pre != proj.post and proj.pre in graph:
            graph[proj.pre].add(proj.post)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    members: set[str] = set()
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for u in sorted(graph[v]):
            if u not in index:
                visit(u)
                low[v] = min(low[v], low[u])
            elif u in on_stack:
                low[v] = min(low[v], index[u])
        if low[v] == index[v]:
            comp = []
            while True:
                u = stack.pop()
                on_stack.discard(u)
                comp.append(u)
                if u == v:
                    break
            if len(comp) > 1:
                members.update(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return members


def check_cycles(net: ir.Network, bag: DiagnosticBag) -> None:
    """Apply the recurrence rule of the module docstring."""
    train = net.train
    if train is None or train.algorithm.name not in GRADIENT_ALGORITHMS:
        return
    algo = train.algorithm.name
    roles = {n: p.role for n, p in net.populations.items()}
    for proj in net.projections.values():
        if roles.get(proj.pre) == "output" and proj.post != proj.pre:
            bag.error(
                M.CYCLE,
                f"'{proj.pre} -> {proj.post}': feedback from output population '{proj.pre}' "
                f"cannot be trained with {algo}",
                proj.span,
                "outputs may only connect to themselves when training; remove this connection "
                "or make the population hidden",
            )
    if algo != "eprop":
        return
    in_cycle = _cycle_members(net)
    for proj in net.projections.values():
        if proj.recurrent and roles.get(proj.pre) == "output":
            bag.error(
                M.CYCLE,
                f"'{proj.pre} -> {proj.post}': e-prop supports recurrence only within hidden populations",
                proj.span,
            )
        elif not proj.recurrent and proj.pre in in_cycle and proj.post in in_cycle:
            if roles.get(proj.pre) == "output":
                continue  # already reported as output feedback
            bag.error(
                M.CYCLE,
                f"'{proj.pre} -> {proj.post}' closes a loop through several populations, "
                "which e-prop cannot train",
                proj.span,
                "e-prop allows recurrence only as a hidden population's connection to itself ('h -> h')",
            )


def check_readout_windows(net: ir.Network, bag: DiagnosticBag) -> None:
    """A readout window (`avg_var(v, start = …)`) must keep at least one step of the trial."""
    for pop in net.populations.values():
        ro = pop.readout
        if ro is None or not ro.windowed:
            continue
        start, stop = ro.window_steps(net.dt)
        if start >= net.num_steps:
            bag.error(
                M.VALUE,
                f"the readout window of '{pop.name}' starts at {ro.options['start']:g} ms, "
                f"when the trial of {net.num_steps * net.dt:g} ms has ended",
                ro.span,
                "start it before the trial's duration, or lengthen the trial",
            )


def check_per_neuron_params(net: ir.Network, bag: DiagnosticBag) -> None:
    """e-prop derives its eligibility traces with one value of each param per population (a trace
    kept per pre neuron decays with the post population's time constant), so per-neuron params are
    refused there; an output's `bias`, which e-prop trains per neuron, may start per neuron."""
    train = net.train
    if train is None or train.algorithm.name != "eprop":
        return
    owners = [
        (
            f"population '{p.name}'",
            {k: v for k, v in p.param_inits.items() if not _eprop_bias(net, p, k) and k not in p.trainable},
        )
        for p in net.populations.values()
    ]
    owners += [
        (
            f"projection '{p.name}'",
            {k: v for k, v in p.synapse_param_inits.items() if k not in p.synapse_trainable},
        )
        for p in net.projections.values()
    ]
    for owner, inits in owners:
        for name, init in inits.items():
            bag.error(
                M.ALGO,
                f"e-prop takes one value of '{name}' for {owner}, not one per neuron",
                init.span,
                "its eligibility traces are derived with one value per population; give it one "
                "number, or train with eventprop",
            )


def _eprop_bias(net: ir.Network, pop: ir.Population, name: str) -> bool:
    """An output's bias that e-prop trains (one value per neuron already)."""
    trained = net.train.algorithm.args.get("train_output_bias", True)
    return name == "bias" and pop.role == "output" and bool(trained)


def check_trainable_params(net: ir.Network, bag: DiagnosticBag) -> None:
    """`Trainable(...)` params: on the algorithm's gradient path (EventProp: any population or synapse
    that reaches an output; e-prop: a hidden or output population's neuron model, or the synapse of
    a projection into one), and not where the derivation does not follow them (a refractory period,
    a synapse's on_pre)."""
    trained = [(p, p.trainable, net.models[p.model], p.name) for p in net.populations.values()]
    trained += [(p, p.synapse_trainable, net.models[p.synapse], p.post) for p in net.projections.values()]
    train = net.train
    algorithm = train.algorithm.name if train is not None else None
    reach = net.upstream_of_outputs()
    for owner, specs, model, pop in trained:
        what = f"{'population' if isinstance(owner, ir.Population) else 'projection'} '{owner.name}'"
        for name, spec in specs.items():
            if algorithm == "eprop" and (problem := _eprop_param_problem(net, owner, name, what)):
                bag.error(M.ALGO, problem[0], spec.span, problem[1])
            elif algorithm == "eventprop" and (pop not in reach or net.populations[pop].role == "input"):
                bag.error(
                    M.ALGO,
                    f"'{name}' of {what} is Trainable, but population '{pop}' is not on EventProp's "
                    "gradient path (no output is reached from it)",
                    spec.span,
                )
            elif name in params_used_by(model, model.refractory):
                bag.error(
                    M.ALGO,
                    f"'{name}' of {what} sets the refractory period of {model.name}, which has no gradient",
                    spec.span,
                    "give it a number",
                )
            elif (
                not isinstance(owner, ir.Population)
                and owner.delay_trainable is not None
                and name == "delay"  # the key of the delays themselves (passes/schedule.py)
            ):
                bag.error(
                    M.ALGO,
                    f"'{name}' of {what}'s synapse is Trainable and so are its delays: both would be filed "
                    f"as '{names.param_key('delay', owner.name)}' (checkpoints, set_weights, the optimiser)",
                    spec.span,
                    f"rename the param '{name}' in synapse {model.name}",
                )
            elif not isinstance(owner, ir.Population) and any(
                name in params_used_by(model, a.expr) for a in model.on_pre
            ):
                bag.error(
                    M.ALGO,
                    f"'{name}' of {what} is used by {model.name}'s on_pre, whose dependence on it "
                    f"{'e-prop' if algorithm == 'eprop' else 'EventProp'} does not derive",
                    spec.span,
                )


def _eprop_param_problem(
    net: ir.Network, owner: ir.Population | ir.Projection, name: str, what: str
) -> tuple[str, str] | None:
    """Why e-prop cannot train param `name` of `owner`, with a hint; None where it can (a param of a
    hidden or output population's neuron model, or of the synapse of a projection into one; what
    its own equations do not allow, the eprop pass refuses at the term)."""
    if not isinstance(owner, ir.Population):
        return None
    if owner.role == "input":
        return (
            f"'{name}' of input {what} is Trainable, but e-prop trains no input population",
            "give it a number",
        )
    if name == "bias" and _eprop_bias(net, owner, name):
        return (
            f"e-prop trains the bias of output {what} already (train_output_bias)",
            "write the bias as a number, or set eprop(train_output_bias = false)",
        )
    return None


def params_used_by(model: ir.Model, expr: object) -> set[str]:
    """The names an expression reads, following derived params to the params they are made of."""
    if expr is None:
        return set()
    import sympy

    used, todo = set(), [str(s) for s in sympy.sympify(expr).free_symbols]
    while todo:
        name = todo.pop()
        if name not in used:
            used.add(name)
            if name in model.derived:
                todo += [str(s) for s in sympy.sympify(model.derived[name].expr).free_symbols]
    return used
