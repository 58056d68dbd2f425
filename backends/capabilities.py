"""What a backend can do, and the check that reads it before any code is generated.

Each backend declares one frozen `Capabilities`; `unsupported` compares a lowered network against it
and returns a located `Diagnostic` per refused combination, so `snnc check --backend NAME` and
`compile_network` report it at the projection or population, not after rendering half the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from snnc.ir.connectivity import dilated_or_grouped, explicit_padding, kind_of
from snnc.ir.diagnostics import Diagnostic, Span
from snnc.ir.discrete import delay_steps
from snnc.ir.model import Network, Projection

CODE = "E-BACKEND-UNSUPPORTED"


#: what `Capabilities.trainable_params` calls running a network without a gradient algorithm
INFERENCE = "inference"


@dataclass(frozen=True)
class Capabilities:
    #: the connectivity layouts it prints (ir/connectivity.py `layout`), so a new kind of a known
    #: layout needs no backend change
    connectivity: frozenset[str]
    gradients: frozenset[str]
    precisions: frozenset[str]
    generators: frozenset[str]
    #: gradient algorithm -> the layouts whose weights it trains (absent: all it has)
    trainable: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: gradient algorithms that cannot carry an axonal delay on a projection of the gradient path
    no_gradient_delays: frozenset[str] = frozenset()
    #: gradient algorithms whose backward step it prints only in exact form (no Euler step on the
    #: recorded trajectory of non-linear dynamics)
    exact_backward_only: frozenset[str] = frozenset()
    #: Conv2D padded by numbers (`padding = (1, 1)`, PyTorch/NIR style), not only "valid"/"same"
    explicit_padding: bool = False
    #: Conv2D with dilation or groups other than 1
    dilated_grouped_conv: bool = False
    #: params with one value per neuron (`tau_mem = Uniform(10 ms, 30 ms)`, `bias = File("b.npy")`)
    per_neuron_params: bool = False
    #: the gradient algorithms whose trained params (`tau_mem = Trainable(20 ms)`, shared or per
    #: neuron) it prints, and "inference" where it runs a network with them without training it
    trainable_params: frozenset[str] = frozenset()
    #: of those, the ones whose trained synapse params (`Exponential(tau = Trainable(5 ms))`) it
    #: prints: arrays per post neuron with their derived params computed once per trial
    trainable_synapse_params: frozenset[str] = frozenset()
    #: the layouts whose projections may have trainable per-connection delays
    #: (`delay = Trainable(Uniform(0 ms, 10 ms), max = 20 ms)`), trained with eventprop
    trainable_delays: frozenset[str] = frozenset()
    #: a per-timestep loss (`sparse_categorical_crossentropy(per_timestep = true)`): a dL/dy per step
    #: for a population whose readout sums its variable
    per_timestep_loss: bool = False
    #: the layouts whose synapses Deep R may move (`rewiring = deep_r(...)`): "dense" masks weights,
    #: "csr" needs a loader that lets the runtime rewrite a projection's column indices between batches
    rewired_layouts: frozenset[str] = frozenset({"dense"})
    #: e-prop's random feedback B (dense, every hidden-output pair) into a hidden population whose
    #: output projection is sparse: the signal is summed over all pairs, not the stored synapses
    sparse_random_feedback: bool = False


def unsupported(
    network: Network, backend: str, caps: Capabilities, *, precision: str | None = None
) -> list[Diagnostic]:
    """One diagnostic per combination of `network` that backend `backend` refuses."""
    out: list[Diagnostic] = []

    def refuse(message: str, span: Span | None, hint: str | None = None) -> None:
        out.append(Diagnostic(CODE, f"the {backend} backend {message}", span, hint=hint))

    if precision is not None and precision not in caps.precisions:
        refuse(f"has no precision '{precision}'", None, f"precisions: {_list(caps.precisions)}")
    for pop in network.populations.values():
        generator = network.models[pop.model].generator
        if generator is not None and generator not in caps.generators:
            refuse(f"has no input generator '{generator}' (population '{pop.name}')", pop.span)
    for proj in network.projections.values():
        kind = proj.connectivity.kind
        if kind_of(kind).layout not in caps.connectivity:
            refuse(f"has no connectivity '{kind}' (projection '{proj.name}')", _span(proj))
        elif kind == "conv2d" and explicit_padding(proj.connectivity.args) and not caps.explicit_padding:
            refuse(
                f'pads Conv2D only "valid" or "same"; projection \'{proj.name}\' has padding = '
                f"{tuple(proj.connectivity.args['padding'])}",
                _span(proj),
                'use padding = "valid" or "same", or the c backend',
            )
        if kind == "conv2d" and dilated_or_grouped(proj.connectivity.args) and not caps.dilated_grouped_conv:
            a = proj.connectivity.args
            refuse(
                f"prints Conv2D only with dilation 1 and groups 1; projection '{proj.name}' has "
                f"dilation = {tuple(a.get('dilation', (1, 1)))}, groups = {a.get('groups', 1)}",
                _span(proj),
                "use the c backend",
            )
    if not caps.per_neuron_params:
        skip = (_algorithm(network) or INFERENCE) in caps.trainable_params  # trained params' arrays
        for owner, inits in _per_neuron(network, skip_trainable=skip):
            for name, init in inits.items():
                refuse(
                    f"has no per-neuron params ('{name}' of {owner})",
                    init.span,
                    f"give {name} one number, or use the c backend",
                )
    if (_algorithm(network) or INFERENCE) not in caps.trainable_params:
        owners = [(f"population '{p.name}'", p.trainable) for p in network.populations.values()]
        owners += [(f"projection '{p.name}'", p.synapse_trainable) for p in network.projections.values()]
        algorithms = (
            f" with {_list(caps.trainable_params - {INFERENCE})} only" if caps.trainable_params else ""
        )
        for owner, specs in owners:
            for name, spec in specs.items():
                refuse(
                    f"cannot train params{algorithms} ('{name}' of {owner})", spec.span, "use the c backend"
                )
    elif (_algorithm(network) or INFERENCE) not in caps.trainable_synapse_params:
        for proj in network.projections.values():
            for name, spec in proj.synapse_trainable.items():
                refuse(
                    f"cannot train synapse params with {_algorithm(network) or INFERENCE} "
                    f"('{name}' of projection '{proj.name}'): they are arrays per post neuron whose "
                    "derived params it does not compute",
                    spec.span,
                    "give it a number, or use the c backend",
                )
    for proj in network.projections.values():
        if proj.delay_trainable is None:
            continue
        layout = kind_of(proj.connectivity.kind).layout
        if layout not in caps.trainable_delays:
            where = f"{proj.connectivity.kind} projections" if caps.trainable_delays else "projections"
            refuse(
                f"has no trainable delays on {where} ('{proj.name}')",
                proj.delay_trainable.span or proj.span,
                "give the delay one time (delay = 2 ms)"
                + (
                    ", or use dense or sparse connectivity"
                    if caps.trainable_delays
                    else ", or use the c backend"
                ),
            )
    rewiring = network.train.rewiring if network.train is not None else None
    for proj in _rewired(network):
        layout = kind_of(proj.connectivity.kind).layout
        if layout not in caps.rewired_layouts:
            refuse(
                f"cannot rewire {proj.connectivity.kind} projections with deep_r ('{proj.name}'): "
                f"it moves synapses of layout {_list(caps.rewired_layouts)} only",
                rewiring.span if rewiring is not None else None,
                "make the projection Dense, or use the c backend",
            )
    algorithm = _algorithm(network)
    if algorithm is None:
        return out
    if network.train.per_timestep_loss and not caps.per_timestep_loss:
        refuse("has no per-timestep loss", network.train.loss.span, "use the c backend, or a per-trial loss")
    if algorithm not in caps.gradients:
        refuse(f"cannot train with {algorithm}", network.train.algorithm.span)
        return out
    kinds = caps.trainable.get(algorithm)
    learning = [(p, "trains") for p in trained(network, algorithm)]
    learning += [(p, "sends feedback through") for p in feedback_only(network, algorithm)]
    for proj, verb in learning:
        if kinds is not None and kind_of(proj.connectivity.kind).layout not in kinds:
            refuse(
                f"{verb} projections of layout {_list(kinds)} with {algorithm}; '{proj.name}' is "
                f"{proj.connectivity.kind} (layout {kind_of(proj.connectivity.kind).layout})",
                proj.span or proj.connectivity.span,
                "mark it `trainable = false`, or use another connectivity or backend"
                if verb == "trains"
                else "make the projection Dense, or use another backend",
            )
    if algorithm == "eprop" and not caps.sparse_random_feedback:
        for he in network.training.hidden.values():
            for t in he.learning:
                proj = network.projections[t.projection]
                if t.feedback == "random" and kind_of(proj.connectivity.kind).layout == "csr":
                    refuse(
                        f"cannot send e-prop's random feedback (dense, every hidden-output pair) through "
                        f"sparse projection '{proj.name}'",
                        proj.span or proj.connectivity.span,
                        "use feedback = symmetric, make the projection Dense, or use the c backend",
                    )
    if algorithm in caps.no_gradient_delays:
        for proj in gradient_path(network, algorithm):
            if delay_steps(proj.delay, network.dt) > 0:
                refuse(
                    f"cannot train through delays with {algorithm}: projection '{proj.name}' has a delay",
                    proj.span,
                    "remove the delay, or use another backend",
                )
    if algorithm in caps.exact_backward_only:
        for name, pg in getattr(network.training, "populations", {}).items():
            if getattr(pg, "method", "exact") != "exact":
                pop = network.populations[name]
                refuse(
                    f"steps the {algorithm} adjoints back only in exact form; population '{name}' has "
                    f"non-linear dynamics ({pg.reason})",
                    pop.span or network.models[pop.model].span,
                    "use the c backend, which steps them back with Euler on the recorded trajectory",
                )
    return out


def _per_neuron(network: Network, skip_trainable: bool = False) -> list[tuple[str, dict]]:
    """(owner, per-neuron param initialisers) of every population and projection that has some
    (with `skip_trainable`, not those of trained params)."""
    out = [(f"population '{p.name}'", p.param_inits, p.trainable) for p in network.populations.values()]
    out += [
        (f"projection '{p.name}'", p.synapse_param_inits, p.synapse_trainable)
        for p in network.projections.values()
    ]
    out = [
        (owner, {k: v for k, v in inits.items() if not (skip_trainable and k in trainable)})
        for owner, inits, trainable in out
    ]
    return [(owner, inits) for owner, inits in out if inits]


def _rewired(network: Network) -> list[Projection]:
    """The projections a train block's `rewiring = deep_r(projections = …)` names (known ones)."""
    call = network.train.rewiring if network.train is not None else None
    if call is None or call.name != "deep_r":
        return []
    names = call.args.get("projections")
    names = (names,) if isinstance(names, str) else tuple(names or ())
    return [network.projections[n] for n in names if n in network.projections]


def _algorithm(network: Network) -> str | None:
    if network.train is None or network.training is None:
        return None
    return network.train.algorithm.name


def _span(proj: Projection) -> Span | None:
    return proj.connectivity.span or proj.span


def _list(names: frozenset[str]) -> str:
    return ", ".join(sorted(names))


def gradient_path(network: Network, algorithm: str) -> list[Projection]:
    """Projections the backward pass runs through: EventProp's into every population that reaches an
    output; e-prop's are the trained ones (its learning signal does not travel back through others)."""
    if algorithm == "eprop":
        return trained(network, algorithm)
    reach = network.upstream_of_outputs()
    return [
        p
        for p in network.projections.values()
        if p.post in reach and network.populations[p.post].role != "input"
    ]


def feedback_only(network: Network, algorithm: str) -> list[Projection]:
    """Untrained projections e-prop's learning signal is fed back through (its `feedback` terms
    read their weights or shape), which the backend must print like trained ones."""
    if algorithm != "eprop":
        return []
    names = {t.projection for he in network.training.hidden.values() for t in he.learning}
    ordered = trained(network, algorithm)
    return [p for p in network.projections.values() if p.name in names and p not in ordered]


def trained(network: Network, algorithm: str) -> list[Projection]:
    """Trainable projections whose weights `algorithm` computes gradients for."""
    if algorithm == "eprop":
        roles = ("hidden", "output")
        return [
            p
            for p in network.projections.values()
            if p.trainable and network.populations[p.post].role in roles
        ]
    return [p for p in gradient_path(network, algorithm) if p.trainable]
