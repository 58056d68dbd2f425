"""The pygenn module's pieces that no kernel phase decides: input generators, projections, contexts.

Python decides everything here (STYLE.md #10) and the template only lays the strings out. The
neuron and synapse code of every population comes from the kernel (`kernel_printer.py`,
`backward_printer.py`, `learn_printer.py`); this module gives GeNN's own input models (spike times
from the data, Poisson rates), each projection's weight update model that delivers spikes
(`addToPost(g)`, into the post neuron's input `q_in__<P>`), a pass-through postsynaptic model, and
the contexts (`PopulationCtx`, `ProjectionCtx`) the printers fill.

GeNN names (all user names pass `check_name` and carry a prefix, so they never meet GeNN's own
`t`, `dt`, `id`, `batch`, `Isyn`, `inSyn`, `g` or a C keyword): see `kernel_printer.genn_var`;
`g` is the weight, `dg` its gradient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from snnc.backends.common import PopulationPlan, ProjectionPlan
from snnc.ir import names as ir_names
from snnc.ir.connectivity import kind_of
from snnc.ir.diagnostics import Diagnostic, DiagnosticError

from .models import GeNNModelSpec, Var

UNSUPPORTED = "E-GENN-UNSUPPORTED"


def fail(message: str, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError(Diagnostic(UNSUPPORTED, message, hint=hint))


@dataclass
class PopulationCtx:
    name: str
    size: int
    source: str  # IR entity comment
    model: GeNNModelSpec
    params: dict[str, str]  # param -> Python expression (may use build_model's arguments)
    var_init: dict[str, Any]  # GeNN var -> initial value (Python literal)
    egp_init: dict[str, str] = field(default_factory=dict)  # EGP -> Python expression
    generator: str | None = None
    readout: dict[str, Any] | None = None
    record_vars: list[str] = field(default_factory=list)  # GeNN var names of user states
    reset_vars: dict[str, Any] = field(default_factory=dict)  # var -> value restored per trial


@dataclass
class ProjectionCtx:
    name: str
    pre: str
    post: str
    source: str
    matrix_type: str
    wum: GeNNModelSpec
    psm: GeNNModelSpec
    wum_vars: dict[str, str]  # var -> Python expression of its initial value
    wum_var_refs: dict[str, str] = field(default_factory=dict)  # post neuron var refs
    wum_pre_var_refs: dict[str, str] = field(default_factory=dict)  # pre neuron var refs
    wum_pre_vars: dict[str, str] = field(default_factory=dict)  # presynaptic var -> initial value
    psm_vars: dict[str, float] = field(default_factory=dict)
    psm_var_refs: dict[str, str] = field(default_factory=dict)  # post neuron var refs
    wu_reset_vars: dict[str, float] = field(default_factory=dict)  # per-synapse state reset per trial
    connectivity: str = ""  # Python expression (init_sparse_connectivity...) or ""
    sparse_from: str | None = None  # "arrays" when set_sparse_connections is used
    delay_steps: int = 0  # axonal
    max_dendritic_delay: int = 0  # slots of GeNN's dendritic delay buffer (0: none)
    target_var: str = ""
    pre_target_var: str | None = None
    trainable: bool = False
    has_weights: bool = True
    conv: bool = False  # kernel weights; matrix type chosen per backend in build_model


def render_input(pop: PopulationPlan) -> PopulationCtx:
    """Input populations: a spike-time source (like mlGeNN's SpikeInput) or a Poisson source."""
    src = f"population {pop.name}: {pop.size} x {pop.model} (input generator {pop.generator})"
    if pop.generator == "poisson":
        model = GeNNModelSpec(
            "neuron",
            f"snnc_poisson_{pop.name}",
            src,
            vars=[Var("in_rate")],
            code={
                "sim_code": "",
                "threshold_condition_code": "gennrand_uniform() < in_rate * dt * 0.001",
            },
        )
        return PopulationCtx(pop.name, pop.size, src, model, {}, {"in_rate": 0.0}, generator="poisson")
    # spike_source: all spike times of the batch in one EGP, [q_start, q_end) per neuron and batch row
    eps = "1e-6 * dt"
    model = GeNNModelSpec(
        "neuron",
        f"snnc_spikes_{pop.name}",
        src,
        vars=[Var("q_start", "unsigned int"), Var("q_end", "unsigned int")],
        extra_global_params=[Var("in_times", "scalar*")],
        code={
            "sim_code": "",
            "threshold_condition_code": f"q_start != q_end && in_times[q_start] <= t + {eps}",
            # consume every spike due by now: a neuron emits at most one event per step (as in C)
            "reset_code": f"while (q_start != q_end && in_times[q_start] <= t + {eps}) {{\n    q_start++;\n}}",
        },
    )
    return PopulationCtx(
        pop.name,
        pop.size,
        src,
        model,
        {},
        {"q_start": 0, "q_end": 0},
        egp_init={"in_times": "np.zeros(max_input_spikes, dtype=SCALAR)"},
        generator="spike_source",
    )


def render_postsynaptic(pp: ProjectionPlan) -> tuple[GeNNModelSpec, dict[str, float]]:
    """A pass-through: GeNN sums the weights of arriving spikes into `inSyn`; the post neuron keeps
    the synapse state (as the C backend does), so EventProp records and e-prop can read it."""
    src = f"projection {pp.name}: synapse {pp.synapse}"
    spec = GeNNModelSpec(
        "postsynaptic",
        f"snnc_psm_{pp.name}",
        src,
        code={
            "sim_code": f"// {src}: this step's summed weights go to the post neuron\ninjectCurrent(inSyn);\ninSyn = 0.0;"
        },
    )
    return spec, {}


def synapse_var(name: str, projection: str) -> str:
    """`y_i__x_to_h`: the post neuron's var for state or temp `name` of `projection`'s synapse."""
    return ir_names.local("y", ir_names.coupled(name, projection))


def deliver_dendritic(s: ProjectionCtx, delay: str, num_steps: int, max_steps: int, setup: list[str]) -> None:
    """Deliver `s`'s spikes through GeNN's dendritic delay buffer (`addToPostDelay`) instead of an
    axonal delay: the synapse code then runs at the step after the spike, where a backward pass
    replaying the spike can read the post neuron's values `delay` steps back (a delayed var ref).
    `setup`: lines that compute `delay` (an expression of at most `max_steps`). An arrival after the
    trial's last step is dropped, as it never happens in the trial, so the buffer is empty when the
    next trial starts."""
    s.delay_steps = 0
    s.max_dendritic_delay = max_steps + 1
    step = "(int)round(t / dt)"
    s.wum.code["pre_spike_syn_code"] = "\n".join(
        [
            f"// {s.source}: a spike adds its weight to inSyn, arriving {delay} step(s) later",
            *setup,
            f"if ({step} >= 1 && {step} + {delay} < {num_steps}) {{",
            f"    addToPostDelay(g, {delay});",
            "}",
        ]
    )


def _conv_connectivity(pp: ProjectionPlan) -> str:
    g = pp.geometry
    args = {
        "conv_kh": g["KH"],
        "conv_kw": g["KW"],
        "conv_sh": g["STRIDE"],
        "conv_sw": g["STRIDE"],
        "conv_padh": g["PAD_T"],
        "conv_padw": g["PAD_L"],
        "conv_ih": g["H"],
        "conv_iw": g["W"],
        "conv_ic": g["C"],
        "conv_oh": g["OH"],
        "conv_ow": g["OW"],
        "conv_oc": g["F"],
    }
    return f'init_sparse_connectivity("Conv2D", {args!r})'


def render_projection(pp: ProjectionPlan, training: bool = False) -> ProjectionCtx:
    src = f"projection {pp.name}: {pp.pre} -> {pp.post}, {pp.kind}, synapse {pp.synapse}"
    psm, psm_vars = render_postsynaptic(pp)
    g_access = "VarAccess.READ_ONLY"
    wum = GeNNModelSpec(
        "weight_update",
        f"snnc_wum_{pp.name}",
        src,
        vars=[Var("g", "scalar", g_access)],
        code={
            "pre_spike_syn_code": "\n".join(
                [
                    f"// {src}: a spike adds its weight to inSyn",
                    "// (spikes still queued from the previous trial are dropped: every trial starts clean)",
                    f"if ((int)round(t / dt) >= {pp.delay_steps + 1}) {{",
                    "    addToPost(g);",
                    "}",
                ]
            )
        },
    )
    weights = f'weights["{pp.name}"]'
    ctx = ProjectionCtx(
        pp.name,
        pp.pre,
        pp.post,
        src,
        "DENSE",
        wum,
        psm,
        {"g": weights},
        psm_vars=psm_vars,
        delay_steps=pp.delay_steps,
        target_var=f"q_in__{pp.name}",
        trainable=pp.trainable,
    )
    if pp.kind == "dense":
        ctx.matrix_type = "DENSE"
    elif kind_of(pp.kind).layout in ("csr", "one_to_one") or pp.kind == "avg_pool2d":
        ctx.matrix_type = "SPARSE"
        ctx.sparse_from = "arrays"
    elif pp.kind == "conv2d":
        if training and pp.trainable:
            raise fail(
                f"projection '{pp.name}': training conv2d kernels is not supported by the genn backend yet",
                hint="use the c backend, or mark the projection fixed",
            )
        # procedural kernel connectivity where the backend has it (GPUs); GeNN's CPU backend has no
        # procedural connectivity, so there the same snippet builds SPARSE rows from the kernel
        ctx.matrix_type = "PROCEDURAL_KERNELG"
        ctx.connectivity = _conv_connectivity(pp)
        ctx.conv = True
    else:
        raise fail(f"projection '{pp.name}': connectivity '{pp.kind}' is not supported by the genn backend")
    if pp.kind == "avg_pool2d":
        ctx.trainable = False
    return ctx
