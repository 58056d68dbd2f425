"""IR-facing code every backend shares: name checks and mangling, per-population specialisation,
connectivity geometry, and initial values drawn with the seed.

A backend turns a discretised `Network` into a `NetworkPlan` (plain numbers and sympy expressions
with params already substituted) and then only has to print it. Nothing here knows about C.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import sympy
from snnc.ir import names
from snnc.ir.connectivity import kind_of, require_fits
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.discrete import DiscreteModel, delay_steps
from snnc.ir.model import Assign, Network, Population, threshold_function
from snnc.ir.symbols import TIMESTEP

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_name(name: str) -> str:
    """User names are identifiers by grammar; assert it before anything reaches generated code."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"refusing to emit a non-identifier name into generated code: {name!r}")
    return name


def mangle(kind: str, *parts: str) -> str:
    """`mangle("p", "h", "v") == "p_h__v"`: a fixed prefix plus `__`-joined checked user names.

    Prefixes: `u` user locals, `p` neuron state, `y` synapse state, `w` weights, `c` connectivity,
    `r` readouts, `sp` spike ring, `in` input data, `rv`/`rs` recorded values/spikes, `q` internal
    per-neuron counters, `ev` per-neuron event buffers.
    No C keyword, libc name or template local starts with one of these followed by `_`.
    Injective (`snnc.ir.names.array`, which the kernel's schedule passes use too).
    """
    return names.array(kind, *(check_name(p) for p in parts))


# --------------------------------------------------------------------------------------------------
# Specialised populations and projections
# --------------------------------------------------------------------------------------------------


@dataclass
class PopulationPlan:
    name: str
    model: str
    role: str
    shape: tuple[int, ...]
    size: int
    generator: str | None  # "spike_source" | "poisson" | None
    states: dict[str, float]  # state -> initial value
    inputs: tuple[str, ...]
    temps: tuple[tuple[str, sympy.Expr], ...]  # params substituted
    update: tuple[Assign, ...]  # params substituted, op "="
    spike: sympy.Basic | None
    theta: sympy.Expr | None  # spike condition as "crosses zero upwards" (for interpolation)
    reset: tuple[Assign, ...]
    refractory_steps: int
    refractory_integrates: bool
    readout: dict[str, Any] | None  # {"kind", "var", "options"}
    ring: int = 1  # spike ring slots (max outgoing delay + 1)
    discrete: DiscreteModel | None = None


@dataclass
class ProjectionPlan:
    name: str
    pre: str
    post: str
    kind: str  # dense | sparse | one_to_one | conv2d | avg_pool2d
    num_pre: int
    num_post: int
    delay_steps: int
    target: str  # the post input receiving the output
    synapse: str
    states: dict[str, float]  # synapse state -> initial value (kept per post neuron)
    on_pre: tuple[Assign, ...]  # params substituted; may use `w`
    output: sympy.Expr | None  # over synapse states, params substituted
    update: tuple[Assign, ...]
    temps: tuple[tuple[str, sympy.Expr], ...]
    impulse: bool
    trainable: bool
    geometry: dict[str, int] = field(default_factory=dict)  # conv / pool geometry
    weight_shape: tuple[int, ...] = ()


@dataclass
class NetworkPlan:
    name: str
    dt: float
    num_steps: int
    duration: float
    precision: str  # "float" | "double"
    seed: int
    populations: dict[str, PopulationPlan]
    projections: dict[str, ProjectionPlan]
    order: tuple[str, ...]  # population update order


def _error(code: str, message: str, span=None, hint: str | None = None) -> DiagnosticError:  # noqa: ANN001
    return DiagnosticError(Diagnostic(code, message, span, hint))


def derived_values(dm: DiscreteModel, params: dict[str, float], dt: float) -> dict[str, float]:
    """Evaluate the model's derived params once, in order (later ones may use earlier ones)."""
    values: dict[str, float] = {**{k: float(v) for k, v in params.items()}, TIMESTEP: float(dt)}
    for name, expr in dm.derived:
        subs = {s: values[s.name] for s in expr.free_symbols if s.name in values}
        value = sympy.sympify(expr).xreplace(subs)
        try:
            values[name] = float(sympy.N(value, 17))
        except TypeError:
            raise _error(
                "E-DERIVED",
                f"derived parameter '{name}' of model '{dm.name}' does not evaluate to a number: {value}",
            ) from None
    return values


def specialise(expr: sympy.Basic, values: dict[str, float]) -> sympy.Basic:
    """Substitute param/derived/dt values (keeps states, inputs, temps, `t`, `w` symbolic)."""
    if expr is None:
        return None
    expr = sympy.sympify(expr)
    subs = {s: sympy.Float(values[s.name], 17) for s in expr.free_symbols if s.name in values}
    return expr.xreplace(subs)


def _assigns(assigns, values) -> tuple[Assign, ...]:  # noqa: ANN001
    return tuple(Assign(a.target, a.op, specialise(a.expr, values), a.span) for a in assigns)


def _readout(pop: Population) -> dict[str, Any] | None:
    if pop.readout is None:
        return None
    return {"kind": pop.readout.kind, "var": pop.readout.var, "options": dict(pop.readout.options)}


def plan_network(
    network: Network, *, dt: float | None = None, precision: str = "float", seed: int | None = None
) -> NetworkPlan:
    """Specialise every population and projection of a discretised network."""
    if precision not in ("float", "double"):
        raise ValueError("precision must be 'float' or 'double'")
    dt = float(network.dt if dt is None else dt)
    seed = int(seed if seed is not None else (network.train.seed if network.train else 0))
    for name, model in network.models.items():
        if name not in network.discrete:
            raise _error(
                "E-NOT-DISCRETE",
                f"model '{name}' has no discrete form; run the discretise pass first",
                model.span,
            )

    pops: dict[str, PopulationPlan] = {}
    for pop in network.populations.values():
        check_name(pop.name)
        model = network.models[pop.model]
        dm: DiscreteModel = network.discrete[pop.model]
        values = derived_values(dm, pop.params, dt)
        refr = 0
        if dm.refractory is not None:
            r = specialise(dm.refractory, values)
            assert not r.free_symbols, f"the frontend lets refractory periods use params only: {r}"
            refr = int(round(float(r) / dt))
        for n in list(model.states) + list(model.inputs):
            check_name(n)
        pops[pop.name] = PopulationPlan(
            name=pop.name,
            model=pop.model,
            role=pop.role,
            shape=tuple(pop.shape),
            size=pop.size,
            generator=model.generator,
            states={s: float(pop.inits.get(s, st.init)) for s, st in model.states.items()},
            inputs=tuple(model.inputs),
            temps=tuple((n, specialise(e, values)) for n, e in dm.temps),
            update=_assigns(dm.update, values),
            spike=specialise(dm.spike, values),
            theta=threshold_function(specialise(dm.spike, values)),
            reset=_assigns(dm.reset, values),
            refractory_steps=refr,
            refractory_integrates=dm.refractory_integrates,
            readout=_readout(pop),
            discrete=dm,
        )

    projs: dict[str, ProjectionPlan] = {}
    for proj in network.projections.values():
        check_name(proj.name)
        pre, post = network.populations[proj.pre], network.populations[proj.post]
        syn = network.models[proj.synapse]
        dm = network.discrete[proj.synapse]
        values = derived_values(
            dm, {**{k: p.value for k, p in syn.params.items()}, **proj.synapse_params}, dt
        )
        assert proj.target in network.models[post.model].inputs, "ir.verify checks projection targets"
        require_fits(proj, pre.shape, post.shape)  # the frontend's check, for a Network built in Python
        kind = proj.connectivity.kind
        conn = kind_of(kind)
        geo = conn.geometry(proj.connectivity.args, tuple(pre.shape))
        for s in syn.states:
            check_name(s)
        output = dm.output
        if output is None and syn.output is not None:
            output = sympy.Symbol(syn.output, real=True)
        projs[proj.name] = ProjectionPlan(
            name=proj.name,
            pre=proj.pre,
            post=proj.post,
            kind=kind,
            num_pre=pre.size,
            num_post=post.size,
            delay_steps=delay_steps(proj.delay, dt),
            target=proj.target,
            synapse=proj.synapse,
            states={s: float(st.init) for s, st in syn.states.items()},
            on_pre=_assigns(dm.on_pre, values),
            output=specialise(output, values),
            update=_assigns(dm.update, values),
            temps=tuple((n, specialise(e, values)) for n, e in dm.temps),
            impulse=dm.impulse,
            trainable=proj.trainable and conn.trainable,
            geometry=geo,
            weight_shape=conn.weight_shape(pre.size, post.size, geo),
        )
        pops[proj.pre].ring = max(pops[proj.pre].ring, projs[proj.name].delay_steps + 1)

    duration = float(network.duration)
    return NetworkPlan(
        name=network.name,
        dt=dt,
        num_steps=int(round(duration / dt)),
        duration=duration,
        precision=precision,
        seed=seed,
        populations=pops,
        projections=projs,
        order=tuple(pops),
    )


# --------------------------------------------------------------------------------------------------
# Initial values (drawn in Python with numpy's seeded Generator)
# --------------------------------------------------------------------------------------------------


def draw_initialiser(
    init, shape: tuple[int, ...], rng: np.random.Generator, base_dir: str = "."
) -> np.ndarray:  # noqa: ANN001
    kind, args = init.kind, init.args
    if kind == "constant":
        return np.full(shape, float(args.get("value", 0.0)))
    if kind == "normal":
        return rng.normal(float(args.get("mean", 0.0)), float(args.get("sd", 1.0)), size=shape)
    if kind == "uniform":
        return rng.uniform(float(args.get("low", 0.0)), float(args.get("high", 1.0)), size=shape)
    if kind == "file":
        import os

        path = os.path.join(base_dir, str(args["path"]))
        try:  # never unpickle: a weight file is data, not code
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise _error("E-WEIGHT-FILE", f"cannot read weight file '{path}': {exc}", init.span) from None
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
            raise _error("E-WEIGHT-FILE", f"weight file '{path}' is not a numeric .npy array", init.span)
        if int(np.prod(arr.shape)) != int(np.prod(shape)):
            raise _error(
                "E-WEIGHT-FILE",
                f"weight file '{path}' has shape {arr.shape}, expected {shape}",
                init.span,
            )
        return np.asarray(arr, dtype=np.float64).reshape(shape)
    raise _error("E-INITIALISER", f"unknown initialiser '{kind}'", init.span)


def _source_dir(network: Network) -> str:
    """The folder `File(...)` paths of the network's source are relative to."""
    import os

    return os.path.dirname(network.source_path) if network.source_path not in ("<unknown>", "") else "."


def draw_connectivity(
    network: Network, plan: NetworkPlan, rng: np.random.Generator
) -> dict[str, dict[str, np.ndarray]]:
    """Weights (float64; the runtime casts) and sparse structure for every projection, in order."""
    base = _source_dir(network)
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, pp in plan.projections.items():
        proj = network.projections[name]
        weights = partial(draw_initialiser, proj.weight, rng=rng, base_dir=base)
        arrays = kind_of(pp.kind).draw(
            proj.connectivity.args, pp.num_pre, pp.num_post, pp.geometry, rng, weights
        )
        if "weight" in arrays:
            pp.weight_shape = tuple(arrays["weight"].shape)  # a sparse one is known only now
        out[name] = arrays
    return out


def draw_param_values(network: Network, seed: int) -> dict[tuple[str, str], np.ndarray]:
    """(owner, param) -> the values of a per-neuron param (float64; one per neuron, or per post
    neuron for a projection's synapse param). Each is drawn from its own stream, keyed by the seed
    and its owner and name, so weights draw exactly as they would without them."""
    import zlib

    base = _source_dir(network)
    owners = [(p.name, p.size, p.param_inits) for p in network.populations.values()]
    owners += [
        (p.name, network.populations[p.post].size, p.synapse_param_inits)
        for p in network.projections.values()
    ]
    out: dict[tuple[str, str], np.ndarray] = {}
    for owner, size, inits in owners:
        for param, init in inits.items():
            rng = np.random.default_rng([int(seed), 0x9A7A, zlib.crc32(f"{owner}.{param}".encode())])
            out[(owner, param)] = draw_initialiser(init, (size,), rng, base)
    shared = [(p.name, p.params, p.trainable) for p in network.populations.values()]
    shared += [(p.name, p.synapse_params, p.synapse_trainable) for p in network.projections.values()]
    for owner, values, trainable in shared:  # a shared trained param: one value
        for param, spec in trainable.items():
            if not spec.per_neuron:
                out[(owner, param)] = np.array([float(values[param])])
    return out


def draw_delays(network: Network, static: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """The initial delays (ms, one per connection, shaped like the weights in `static`) of every
    projection with trainable delays, clipped to [min, max]; each from its own stream keyed by the
    seed and the projection, so weights and params draw exactly as they would without them."""
    import zlib

    base = _source_dir(network)
    out: dict[str, np.ndarray] = {}
    for proj in network.projections.values():
        t = proj.delay_trainable
        if t is None:
            continue
        shape = static[mangle("w", proj.name)].shape
        rng = np.random.default_rng([int(seed), 0xDE1A, zlib.crc32(proj.name.encode())])
        values = draw_initialiser(proj.delay_init, shape, rng, base)
        out[mangle("pp", proj.name, "delay")] = np.clip(values, t.min, t.max)
    return out


def dense_equivalent(pp: ProjectionPlan, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The [pre][post] matrix a projection is equivalent to (for tests, export and debugging)."""
    return kind_of(pp.kind).dense_equivalent(arrays, pp.num_pre, pp.num_post, pp.geometry)


__all__ = [
    "NetworkPlan",
    "PopulationPlan",
    "ProjectionPlan",
    "check_name",
    "dense_equivalent",
    "derived_values",
    "draw_connectivity",
    "draw_delays",
    "draw_param_values",
    "mangle",
    "plan_network",
    "specialise",
    "threshold_function",
]
