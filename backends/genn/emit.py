"""The genn backend's entry points: plan -> GeNN model specs -> one pygenn module plus its weights.

`generate` returns the module text and the arrays it loads (weights and sparse structure, drawn in
Python with the network's seed exactly as the C backend draws them, so both backends start from the
same network). `emit_genn` writes `<name>_genn.py`, `<name>_genn_init.npz` and `manifest.json`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from snnc.backends.common import (
    NetworkPlan,
    PopulationPlan,
    dense_equivalent,
    draw_connectivity,
    draw_delays,
    draw_param_values,
    plan_network,
)
from snnc.backends.eprop_init import initial_arrays
from snnc.backends.templates import template_env
from snnc.ir import names as ir_names
from snnc.ir.connectivity import kind_of
from snnc.ir.kernel import Entry, Kernel, PhaseKind, Role
from snnc.ir.model import Network
from snnc.passes.schedule import schedule

from .backward_printer import print_backward
from .delay_printer import weave_forward
from .derived_printer import print_derived
from .kernel_printer import forward_entry, neuron_code, population_ctx
from .learn_printer import print_learning
from .models import GeNNModelSpec
from .params import trained_params
from .render import PopulationCtx, ProjectionCtx, fail, render_input, render_projection

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class CustomUpdateCtx:
    name: str
    group: str
    source: str
    model: GeNNModelSpec
    params: dict[str, float] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)
    var_refs: dict[str, str] = field(default_factory=dict)  # ref -> Python expression

    @classmethod
    def of_code(
        cls,
        name: str,
        group: str,
        model_name: str,
        source: str,
        code: str,
        var_refs: list[Any],
        refs: dict[str, str],
        model_vars: list[Any] | None = None,
        var_values: dict[str, Any] | None = None,
    ) -> CustomUpdateCtx:
        """The custom update `name` of `group` whose model `model_name` runs `code` over `var_refs`
        (bound to the Python expressions `refs`) and its own `model_vars` (initial `var_values`)."""
        spec = GeNNModelSpec(
            "custom_update",
            model_name,
            source,
            vars=list(model_vars or []),
            var_refs=var_refs,
            code={"update_code": code},
        )
        return cls(name, group, spec.source, spec, vars=dict(var_values or {}), var_refs=refs)


@dataclass
class ModuleCtx:
    """Everything the template needs; training renderers add to it."""

    plan: NetworkPlan
    populations: list[PopulationCtx]
    projections: list[ProjectionCtx]
    custom_updates: list[CustomUpdateCtx] = field(default_factory=list)
    update_groups: dict[str, str] = field(default_factory=dict)
    training: str | None = None
    max_spikes: int = 0
    #: the kernel learns during the forward pass (an entry with learning phases beside the steps)
    online: bool = False
    extra_steps: int = 0  # steps after the example that complete the learning of its last steps
    #: (custom update group, lag): run after GeNN step s of a learning run when lag <= s < K + lag
    step_updates: list[tuple[str, int]] = field(default_factory=list)
    #: output population -> {"label", "value", "per_step_var"}: the GeNN names of its targets
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: array key -> values: extra arrays the module loads besides the weights (random feedback)
    extra_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    #: trained params exposed like weights: "bias_<pop>" -> {population, var, gradient, shared, trainable}
    biases: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: trainable delays exposed like weights: "delay_<proj>" -> {projection, var, trainable}
    delays: dict[str, dict[str, Any]] = field(default_factory=dict)

    def population(self, name: str) -> PopulationCtx:
        return next(p for p in self.populations if p.name == name)

    def projection(self, name: str) -> ProjectionCtx:
        return next(p for p in self.projections if p.name == name)


def _env() -> jinja2.Environment:
    env = template_env(TEMPLATES)
    env.filters["py"] = _pyrepr
    return env


def build_context(network: Network, plan: NetworkPlan) -> ModuleCtx:
    """The module of the kernel the passes schedule: its forward steps as neuron code
    (`kernel_printer`), a reverse-time entry woven in by `backward_printer`, learning beside the
    forward step by `learn_printer`; GeNN's step order is the mapping of the kernel's phases."""
    kernel = _kernel(network, plan)
    entry = forward_entry(kernel)
    printed = neuron_code(kernel, entry)
    pops = []
    for p in plan.populations.values():
        if p.role == "input" or p.generator:
            pops.append(render_input(p))
        elif p.name in printed:
            pops.append(population_ctx(printed[p.name], p.size, p.model, _readout_meta(p)))
        else:
            raise fail(f"population '{p.name}': the kernel gives it no forward step")
    training = network.training is not None
    projs = [render_projection(pp, training) for pp in plan.projections.values()]
    ctx = ModuleCtx(plan, pops, projs, training=getattr(network.training, "algorithm", None))
    ctx.delays = weave_forward(kernel, ctx.projections)
    ctx.custom_updates += print_derived(kernel, entry, {p.name: p for p in ctx.populations})
    if any(e.steps == "backward" for e in kernel.entries):
        ctx.max_spikes = print_backward(kernel, ctx.populations, ctx.projections)
        ctx.update_groups["GradientReduce"] = (
            "after the backward pass: dg summed over the batch into dg_sum, dg zeroed"
        )
    if any(kernel.phase(name).kind == PhaseKind.LEARN for name in entry.per_step):
        _add_learning(ctx, kernel, entry, network)
    else:  # trained params filed like weights (online learning files its own: `learn_printer`)
        ctx.biases, params = trained_params(kernel, ctx.populations, draw_param_values(network, plan.seed))
        ctx.extra_arrays.update(params)
    if training:
        _add_gradient_reduce(ctx)
    _add_reset_updates(ctx)  # last: training adds per-trial state too
    # UPDATE_GROUPS names the groups the runtime runs, so none without a custom update in it
    used = {cu.group for cu in ctx.custom_updates}
    ctx.update_groups = {g: doc for g, doc in ctx.update_groups.items() if g in used}
    return ctx


def _kernel(network: Network, plan: NetworkPlan) -> Kernel:
    """The kernel the passes schedule, which GeNN prints (without the loss and optimiser phases,
    which it has no mapping for yet: the runtime computes those)."""
    return schedule(
        dataclasses.replace(network, dt=plan.dt), precision=plan.precision, learning=False, post_major=False
    )


def _add_learning(ctx: ModuleCtx, kernel: Kernel, entry: Entry, network: Network) -> None:
    """An entry that learns online: its learning phases woven into the models (`learn_printer`),
    and what the runtime needs to run them (steps, custom update groups, targets, trained params)."""
    initial = initial_arrays(network, kernel, ctx.plan.seed)
    facts, customs, arrays = print_learning(kernel, entry, ctx.populations, ctx.projections, initial)
    ctx.online = True
    ctx.custom_updates += customs
    ctx.extra_arrays.update(arrays)
    ctx.extra_steps = facts["extra_steps"]
    ctx.biases = facts["biases"]
    ctx.step_updates = facts["custom"]
    for group, lag in ctx.step_updates:
        ctx.update_groups[group] = (
            f"after GeNN step s of a learning run, for kernel step s - {lag} of the trial"
        )
    ctx.update_groups["GradientReduce"] = (
        f"after the K + {ctx.extra_steps} steps of a learning run: dg summed over the batch, dg zeroed"
    )
    for a in kernel.arrays:
        if a.role != Role.TARGET or a.owner not in ctx.plan.populations:
            continue
        t = ctx.targets.setdefault(a.owner, {"label": None, "value": None, "per_step_var": None})
        t["value" if "steps" in a.shape else "label"] = ir_names.local("t", a.var)
        readout = ctx.plan.populations[a.owner].readout or {}
        if "steps" in a.shape and readout.get("kind") == "var":
            t["per_step_var"] = readout.get("var")


def _readout_meta(pop: PopulationPlan) -> dict[str, Any] | None:
    ro = pop.readout
    return None if ro is None else {"kind": ro["kind"], "var": ro.get("var")}


def _add_gradient_reduce(ctx: ModuleCtx) -> None:
    """Per trained projection, `dg` summed over the batch into `dg_sum` ("GradientReduce", which also
    zeroes `dg`); the runtime pulls `dg_sum` and its numpy optimiser updates the weights."""
    from .models import Var

    delays = {m["projection"]: key for key, m in ctx.delays.items()}
    for s in ctx.projections:
        grads = [("dg", s.name)]  # the weights' gradient, then the delays' (filed as delay_<P>)
        if s.name in delays:
            grads.append((ir_names.local("g", "delay"), delays[s.name]))
        for var, key in grads:
            if not any(v.name == var for v in s.wum.vars):
                continue
            ctx.custom_updates.append(
                CustomUpdateCtx.of_code(
                    f"reduce_{key}",
                    "GradientReduce",
                    f"snnc_reduce_{key}",
                    f"projection {s.name}: {'gradient' if var == 'dg' else 'delay gradient'} summed over the "
                    "batch, then zeroed",
                    "dg_sum = dg;\ndg = 0.0;",
                    [Var("dg")],
                    {"dg": f'create_wu_var_ref(syns["{s.name}"], "{var}")'},
                    model_vars=[Var("dg_sum", "scalar", "CustomUpdateVarAccess.REDUCE_BATCH_SUM")],
                    var_values={"dg_sum": 0.0},
                )
            )


def _add_reset_updates(ctx: ModuleCtx) -> None:
    """One custom update per population ("Reset" group) that restores per-trial state on device."""
    from .models import Var

    for p in ctx.populations:
        if not p.reset_vars:
            continue
        types = {v.name: v.type for v in p.model.vars}
        lines = [f"// reset {p.name} to its initial state"]
        refs: dict[str, str] = {}
        model_refs = []
        for var, value in p.reset_vars.items():
            lines.append(f"{var} = {_code_value(value, types[var])};")
            refs[var] = f'create_var_ref(pops["{p.name}"], "{var}")'
            model_refs.append(Var(var, types[var]))
        ctx.custom_updates.append(
            CustomUpdateCtx.of_code(
                f"reset_{p.name}",
                "Reset",
                f"snnc_reset_{p.name}",
                f"population {p.name}: per-trial reset",
                "\n".join(lines),
                model_refs,
                refs,
            )
        )
    for s in ctx.projections:
        if not s.psm_vars and not s.wu_reset_vars:
            continue
        if s.psm_vars:
            lines = [f"// reset the synapse state of {s.name}"]
            lines += [f"{var} = {_code_value(value, 'scalar')};" for var, value in s.psm_vars.items()]
            ctx.custom_updates.append(
                CustomUpdateCtx.of_code(
                    f"reset_{s.name}",
                    "Reset",
                    f"snnc_reset_{s.name}",
                    f"projection {s.name}: per-trial reset of the synapse state",
                    "\n".join(lines),
                    [Var(var) for var in s.psm_vars],
                    {var: f'create_psm_var_ref(syns["{s.name}"], "{var}")' for var in s.psm_vars},
                )
            )
        if s.wu_reset_vars:
            lines = [f"// reset the eligibility state of {s.name}"]
            lines += [f"{var} = {_code_value(value, 'scalar')};" for var, value in s.wu_reset_vars.items()]
            ctx.custom_updates.append(
                CustomUpdateCtx.of_code(
                    f"reset_wu_{s.name}",
                    "Reset",
                    f"snnc_reset_wu_{s.name}",
                    f"projection {s.name}: per-trial reset of the per-synapse state",
                    "\n".join(lines),
                    [Var(var) for var in s.wu_reset_vars],
                    {var: f'create_wu_var_ref(syns["{s.name}"], "{var}")' for var in s.wu_reset_vars},
                )
            )
    ctx.update_groups["Reset"] = "restore every per-trial state before a batch"


def _code_value(value: Any, typ: str) -> str:
    from .printer import literal

    if typ == "scalar":
        return literal(float(value))
    return str(int(value))


def draw_arrays(network: Network, plan: NetworkPlan) -> dict[str, np.ndarray]:
    """Weights (flattened in GeNN's order) and sparse pre/post index arrays for every projection."""
    rng = np.random.default_rng(plan.seed)
    drawn = draw_connectivity(network, plan, rng)
    out: dict[str, np.ndarray] = {}
    for name, pp in plan.projections.items():
        arrays = drawn[name]
        if kind_of(pp.kind).layout == "csr":
            rp, ci = arrays["row_ptr"], arrays["col_idx"]
            out[f"{name}.pre"] = np.repeat(np.arange(pp.num_pre), np.diff(rp)).astype(np.uint32)
            out[f"{name}.post"] = ci.astype(np.uint32)
            out[name] = arrays["weight"].ravel()
        elif pp.kind == "one_to_one":
            out[f"{name}.pre"] = np.arange(pp.num_pre, dtype=np.uint32)
            out[f"{name}.post"] = np.arange(pp.num_post, dtype=np.uint32)
            out[name] = arrays["weight"].ravel()
        elif pp.kind == "avg_pool2d":
            m = dense_equivalent(pp, {})
            pre, post = np.nonzero(m)
            out[f"{name}.pre"] = pre.astype(np.uint32)
            out[f"{name}.post"] = post.astype(np.uint32)
            out[name] = m[pre, post]
        else:  # dense [pre][post] and conv2d kernels [KH][KW][C][F] are both row-major in GeNN
            out[name] = arrays["weight"].ravel()
    return out


def _initial_delays(
    network: Network, plan: NetworkPlan, ctx: ModuleCtx, arrays: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The trainable delays' initial values, drawn as the C backend draws them (`draw_delays`),
    flat in GeNN's order of the weights, filed under their keys (`delay_<projection>`)."""
    if not ctx.delays:
        return {}
    weights = {ir_names.array("w", m["projection"]): arrays[m["projection"]] for m in ctx.delays.values()}
    drawn = draw_delays(network, weights, plan.seed)
    return {
        key: drawn[ir_names.array("pp", m["projection"], "delay")].ravel() for key, m in ctx.delays.items()
    }


def _meta(ctx: ModuleCtx) -> tuple[dict, dict]:
    pops = {}
    for p in ctx.populations:
        plan = ctx.plan.populations[p.name]
        pops[p.name] = {
            "size": p.size,
            "shape": tuple(plan.shape),
            "role": plan.role,
            "generator": p.generator,
            "readout": p.readout,
            "record_vars": {v[2:]: v for v in p.record_vars},
            "reset_vars": p.reset_vars,
        }
    projs = {}
    for s in ctx.projections:
        pp = ctx.plan.projections[s.name]
        projs[s.name] = {
            "pre": s.pre,
            "post": s.post,
            "kind": pp.kind,
            "trainable": s.trainable,
            "weight_shape": tuple(pp.weight_shape),
            "gradient": "dg" if any(v.name == "dg" for v in s.wum.vars) else None,
        }
    return pops, projs


def render_module(
    ctx: ModuleCtx, network: Network, *, ir_hash: str, batch_size: int, weights_file: str
) -> str:
    models: list[GeNNModelSpec] = []
    for p in ctx.populations:
        models.append(p.model)
    for s in ctx.projections:
        models += [s.psm, s.wum]
    models += [cu.model for cu in ctx.custom_updates]
    pops_meta, projs_meta = _meta(ctx)
    return (
        _env()
        .get_template("model.py.j2")
        .render(
            name=ctx.plan.name,
            source_path=network.source_path,
            ir_hash=ir_hash,
            dt=repr(ctx.plan.dt),
            num_steps=ctx.plan.num_steps,
            duration=repr(ctx.plan.duration),
            precision=ctx.plan.precision,
            batch_size=batch_size,
            seed=ctx.plan.seed,
            training=repr(ctx.training),
            extra_steps=ctx.extra_steps,
            max_spikes=ctx.max_spikes,
            weights_file=weights_file,
            population_meta=_pyrepr(pops_meta),
            projection_meta=_pyrepr(projs_meta),
            update_groups=_pyrepr(ctx.update_groups),
            biases=_pyrepr(ctx.biases),
            delays=_pyrepr(ctx.delays),
            online=ctx.online,
            step_updates=_pyrepr(ctx.step_updates),
            targets=_pyrepr(ctx.targets),
            models=models,
            populations=ctx.populations,
            projections=ctx.projections,
            custom_updates=ctx.custom_updates,
            max_input_spikes=1_000_000,
        )
    )


def _pyrepr(obj: Any) -> str:
    """Python source for plain data; infinities become float("inf") so the module stays valid."""
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{_pyrepr(k)}: {_pyrepr(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        inner = ", ".join(_pyrepr(v) for v in obj)
        if isinstance(obj, list):
            return f"[{inner}]"
        return f"({inner},)" if len(obj) == 1 else f"({inner})"
    if isinstance(obj, float) and obj in (float("inf"), float("-inf")):
        return 'float("inf")' if obj > 0 else 'float("-inf")'
    if isinstance(obj, (np.integer, np.floating)):
        return repr(obj.item())
    return repr(obj)


def generate(
    network: Network, *, precision: str = "float", seed: int | None = None, batch_size: int | None = None
) -> tuple[str, dict[str, np.ndarray], ModuleCtx]:
    from snnc.backends.c.backend import ir_hash

    plan = plan_network(network, precision=precision, seed=seed)
    ctx = build_context(network, plan)
    arrays = {**draw_arrays(network, plan), **ctx.extra_arrays}
    arrays.update(_initial_delays(network, plan, ctx, arrays))
    if batch_size is None:
        batch_size = network.train.batch_size if network.train else 1
    code = render_module(
        ctx,
        network,
        ir_hash=ir_hash(network),
        batch_size=batch_size,
        weights_file=f"{plan.name}_genn_init.npz",
    )
    return code, arrays, ctx


def emit_genn(network: Network, out_dir: str | Path, **options: Any) -> list[Path]:
    """`--emit genn`: write the pygenn module, its initial weights and a manifest; returns the paths."""
    code, arrays, ctx = generate(network, **options)
    return write_module(Path(out_dir), code, arrays, ctx)


def write_module(out: Path, code: str, arrays: dict[str, np.ndarray], ctx: ModuleCtx) -> list[Path]:
    """Write a generated module into `out`: weights and manifest first, the module itself last, each
    through a temporary file of its own renamed into place, so a module file on disk always has its
    weights beside it (the cache relies on it) and two processes writing the same entry at once
    never meet in one temporary file (they did: one renamed it from under the other)."""
    out.mkdir(parents=True, exist_ok=True)
    module = out / f"{ctx.plan.name}_genn.py"
    npz = out / f"{ctx.plan.name}_genn_init.npz"
    _write_into(npz, lambda fh: np.savez(fh, **arrays))
    manifest = {
        "backend": "genn",
        "module": module.name,
        "weights": npz.name,
        "training": ctx.training,
        **({"online": True} if ctx.online else {}),
        "dt": ctx.plan.dt,
        "num_steps": ctx.plan.num_steps,
        "precision": ctx.plan.precision,
        "update_groups": ctx.update_groups,
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
    }
    m_path = out / "manifest.json"
    _write_into(m_path, lambda fh: fh.write((json.dumps(manifest, indent=2) + "\n").encode()))
    _write_into(module, lambda fh: fh.write(code.encode()))
    return [module, npz, m_path]


def _write_into(path: Path, fill: Callable[[Any], object]) -> None:
    """`fill` a temporary file beside `path` (binary), then rename it to `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
