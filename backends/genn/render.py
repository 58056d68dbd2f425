"""Render a `NetworkPlan` into the context of the pygenn module template (inference part).

Python decides everything here (STYLE.md #10): every GeNN code string is printed by `GeNNPrinter`
from the same specialised plan the C backend prints, and the template only lays the strings out.

GeNN names (all user names pass `check_name` and carry a prefix, so they never meet GeNN's own
`t`, `dt`, `id`, `batch`, `Isyn`, `inSyn`, `g` or a C keyword):
`u_<x>` a neuron state, input or temp; `y_<x>` a synapse (postsynaptic model) state; `n_<x>` the new
value of a state inside one step; `r_value` a readout; `q_*` internal per-neuron counters; `l_<adj>`
an adjoint; `ev_*` per-spike buffers (extra global params); `g` the weight; `dg` its gradient.

Step semantics (ir/discrete.py) in GeNN terms: a spike emitted by neuron update k-1-delay is
processed by the synapse update of step k (`addToPost`) into the postsynaptic model's `inSyn`; the
postsynaptic model's sim code (run before the neuron's) moves `inSyn` into the synapse states
(`on_pre`, additive in w), injects `output` into the target input and updates the synapse states;
then the neuron's sim code (temps, simultaneous update, readout), threshold and reset run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy
from snnc.backends.common import NetworkPlan, PopulationPlan, ProjectionPlan, check_name
from snnc.ir import names as ir_names
from snnc.ir.connectivity import kind_of
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.symbols import WEIGHT

from .models import GeNNModelSpec, Var
from .printer import GeNNPrinter, UnmappedSymbolError, literal

UNSUPPORTED = "E-GENN-UNSUPPORTED"


def fail(message: str, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError(Diagnostic(UNSUPPORTED, message, hint=hint))


def pr(names: dict[str, str], expr: sympy.Basic, where: str) -> str:
    """Print `expr` for GeNN; a symbol outside `names` is a diagnostic naming where it came from."""
    try:
        return GeNNPrinter(names).doprint(expr)
    except UnmappedSymbolError as exc:
        raise fail(f"{where}: {exc.args[0]} (the genn backend cannot reach it from here)") from None


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
    wum_pre_vars: dict[str, str] = field(default_factory=dict)  # presynaptic var -> initial value
    psm_vars: dict[str, float] = field(default_factory=dict)
    psm_var_refs: dict[str, str] = field(default_factory=dict)  # post neuron var refs
    wu_reset_vars: dict[str, float] = field(default_factory=dict)  # per-synapse state reset per trial
    connectivity: str = ""  # Python expression (init_sparse_connectivity...) or ""
    sparse_from: str | None = None  # "arrays" when set_sparse_connections is used
    delay_steps: int = 0
    target_var: str = ""
    pre_target_var: str | None = None
    trainable: bool = False
    has_weights: bool = True
    conv: bool = False  # kernel weights; matrix type chosen per backend in build_model


def neuron_names(pop: PopulationPlan) -> dict[str, str]:
    names = {check_name(s): f"u_{s}" for s in pop.states}
    names.update({check_name(i): f"u_{i}" for i in pop.inputs})
    names.update({check_name(t): f"u_{t}" for t, _ in pop.temps})
    return names


def _readout_init(kind: str) -> float:
    """0 for every readout: GeNN code has no infinities. max_var takes its first sample at step 0
    instead of starting from -inf; first_spike_time keeps a flag (`q_first`) and the runtime reports
    inf where it is still 0, as the C backend does."""
    del kind
    return 0.0


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


def render_neuron(
    pop: PopulationPlan,
    plan: NetworkPlan,
    incoming: list[ProjectionPlan] | None = None,
    trained: dict[str, float] | None = None,
) -> PopulationCtx:
    """Sim code (deliver, inputs, temps, simultaneous update, refractory hold, readout), threshold
    and reset; the synapse states of incoming projections live here, as in the C backend.

    Only e-prop networks render their neurons here (GeNN's e-prop weaves its code into these
    strings); every other network prints them from the kernel (`kernel_printer.py`, and
    `backward_printer.py` for a backward pass), which is where this function is headed too.

    `trained` maps params left symbolic in `pop`'s equations (a trained output bias) to their initial
    value: each becomes a per-neuron var `q_<param>` shared by the batch, set by the runtime."""
    incoming = incoming or []
    trained = trained or {}
    names = neuron_names(pop)
    names.update({check_name(k): f"q_{k}" for k in trained})
    where = f"population '{pop.name}' (model '{pop.model}')"
    dm = pop.discrete
    method = f"{dm.method}: {dm.reason}" if dm is not None else "discrete update"
    src = f"population {pop.name}: {pop.size} x {pop.model}"
    vars_ = [Var(f"u_{s}") for s in pop.states]
    init: dict[str, Any] = {f"u_{s}": v for s, v in pop.states.items()}
    reset_vars: dict[str, Any] = dict(init)
    for k, v in trained.items():  # like a weight: not per trial, so not reset
        vars_.append(Var(f"q_{k}", "scalar", "VarAccess.READ_ONLY"))
        init[f"q_{k}"] = float(v)
    refr = pop.refractory_steps > 0
    if refr:
        vars_ += [Var("q_refrac", "int"), Var("q_was_refr", "int")]
        init.update(q_refrac=0, q_was_refr=0)
        reset_vars.update(q_refrac=0, q_was_refr=0)
    syn = {pp.name: synapse_in_neuron(pp) for pp in incoming}
    for pp in incoming:
        for st, v in pp.states.items():
            var = synapse_names(pp)[st]
            vars_.append(Var(var))
            init[var] = v
            reset_vars[var] = v
    sim: list[str] = []
    for pp in incoming:
        sim += syn[pp.name][0]
    sim.append("// inputs: the sum of the outputs of the synapses targeting each")
    for inp in pop.inputs:
        terms = [syn[pp.name][1] for pp in incoming if pp.target == inp and syn[pp.name][1] is not None]
        sim.append(f"const scalar u_{inp} = {' + '.join(f'({t})' for t in terms) if terms else '0.0'};")
    sim.append(f"// {src}: Discrete IR update ({method})")
    if refr:
        sim += ["q_was_refr = q_refrac > 0 ? 1 : 0;", "if (q_was_refr) {", "    q_refrac--;", "}"]
    ro = pop.readout
    theta = pop.theta
    if ro is not None and ro["kind"] == "first_spike_time":
        assert theta is not None, f"{where}: the frontend checks first_spike_time has a threshold"
        vars_.append(Var("q_theta0"))  # a var, not a local: the reset code reads it
        init["q_theta0"] = 0.0
        sim.append(f"q_theta0 = {pr(names, theta, where)};  // threshold function before update")
    for tname, expr in pop.temps:
        sim.append(f"const scalar u_{tname} = {pr(names, expr, where)};  // temp {tname}")
    for a in pop.update:
        sim.append(f"const scalar n_{a.target} = {pr(names, a.expr, where)};  // update {a.target}")
    for pp in incoming:
        sim += syn[pp.name][2]
    reset_targets = {a.target for a in pop.reset}
    for a in pop.update:
        hold = refr and not pop.refractory_integrates and a.target in reset_targets
        if hold:
            sim.append(f"if (!q_was_refr) {{\n    u_{a.target} = n_{a.target};\n}}  // held while refractory")
        else:
            sim.append(f"u_{a.target} = n_{a.target};")
    for pp in incoming:
        sim += syn[pp.name][3]
    readout = None
    reset_code: list[str] = []
    if ro is not None:
        kind = ro["kind"]
        var = ro.get("var")
        rvar = f"u_{var}" if var else None
        assert kind in ("spike_count", "first_spike_time") or var in pop.states, f"{where}: {ro}"
        vars_.append(Var("r_value"))
        init["r_value"] = _readout_init(kind)
        reset_vars["r_value"] = _readout_init(kind)
        k_total = plan.num_steps
        sim.append(f"// readout {kind} (value after update, before reset)")
        if kind == "var":
            sim.append(f"r_value = {rvar};")
        elif kind == "avg_var":
            sim.append(f"r_value += {rvar} * {literal(1.0 / k_total)};")
        elif kind == "avg_var_exp_weight":
            sim.append(f"r_value += exp(-t / {literal(plan.duration)}) * {rvar} * {literal(1.0 / k_total)};")
        elif kind == "sum_var":
            sim.append(f"r_value += {rvar};")
        elif kind == "max_var":
            vars_.append(Var("q_argmax", "int"))  # the step of the maximum (EventProp drives it)
            init["q_argmax"] = 0
            reset_vars["q_argmax"] = 0
            sim.append(
                f"if ({rvar} > r_value || t < 0.5 * dt) {{\n    r_value = {rvar};\n    q_argmax = (int)round(t / dt);\n}}"
            )
        elif kind == "spike_count":
            reset_code.append("r_value += 1.0;  // readout spike_count")
        elif kind == "first_spike_time":
            vars_.append(Var("q_first", "int"))
            init["q_first"] = 0
            reset_vars["q_first"] = 0
            th1 = pr(names, theta, where)
            reset_code += [
                "// readout first_spike_time: threshold crossing interpolated within the step",
                "if (q_first == 0) {",
                f"    const scalar q_theta1 = {th1};",
                "    scalar q_frac = (q_theta0 < 0.0 && q_theta1 > q_theta0) ? q_theta0 / (q_theta0 - q_theta1) : 1.0;",
                "    q_frac = fmin(fmax(q_frac, 0.0), 1.0);",
                "    r_value = t + dt * q_frac;",
                "    q_first = 1;",
                "}",
            ]
        else:
            raise fail(f"{where}: readout '{kind}' is not supported by the genn backend")
        readout = {"kind": kind, "var": var}
    code = {"sim_code": "\n".join(sim)}
    if pop.spike is not None:
        cond = pr(names, pop.spike, where)
        code["threshold_condition_code"] = f"!q_was_refr && ({cond})" if refr else cond
        lines = [f"// reset of {pop.model}"]
        for a in pop.reset:
            rhs = pr(names, a.expr, where)
            op = a.op if a.op in ("=", "+=", "-=", "*=", "/=") else "="
            lines.append(f"u_{a.target} {op} {rhs};")
        if refr:
            lines.append(f"q_refrac = {pop.refractory_steps};")
        # readouts of the spike (first_spike_time, spike_count) see the state before the reset
        code["reset_code"] = "\n".join(reset_code + lines)
    model = GeNNModelSpec(
        "neuron",
        f"snnc_neuron_{pop.name}",
        src,
        vars=vars_,
        additional_input_vars=[(f"q_in__{pp.name}", "scalar", 0.0) for pp in incoming],
        code=code,
    )
    return PopulationCtx(
        pop.name,
        pop.size,
        src,
        model,
        {},
        init,
        readout=readout,
        record_vars=[f"u_{s}" for s in pop.states],
        reset_vars=reset_vars,
    )


def on_pre_coefficients(pp: ProjectionPlan) -> list[tuple[str, sympy.Expr]]:
    """`on_pre` as `state += c * w` per state: GeNN sums `w` into one `inSyn`, so each jumped
    state gets `c * inSyn`. A jump that is not `c * w` (c free of w and of the state) is refused."""
    w = sympy.Symbol(WEIGHT, real=True)
    out = []
    for a in pp.on_pre:
        s = sympy.Symbol(a.target, real=True)
        if a.op == "+=":
            jump = a.expr
        elif a.op == "-=":
            jump = -a.expr
        elif a.op == "=":
            jump = sympy.expand(a.expr - s)
        else:
            jump = None
        c = sympy.diff(jump, w) if jump is not None else None
        if c is None or c.free_symbols or sympy.simplify(jump - c * w) != 0:
            raise fail(
                f"projection '{pp.name}': on_pre '{a.target} {a.op} {a.expr}' is not a jump c*w that GeNN's "
                "inSyn can carry",
                hint="write the synapse's on_pre as `state += w` (times a constant)",
            )
        out.append((a.target, c))
    return out


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


def synapse_names(pp: ProjectionPlan) -> dict[str, str]:
    """A synapse state or temp `x` of projection P lives in the post neuron as `y_x__P`."""
    names = {check_name(st): synapse_var(st, pp.name) for st in pp.states}
    names.update({check_name(t): synapse_var(t, pp.name) for t, _ in pp.temps})
    return names


def synapse_in_neuron(pp: ProjectionPlan) -> tuple[list[str], str | None, list[str], list[str]]:
    """(deliver lines, output expression, update lines, commit lines) of P's synapse, in the post
    neuron's sim code; `q_in__P` holds the weights of the spikes delivered this step."""
    names = synapse_names(pp)
    where = f"projection '{pp.name}' (synapse '{pp.synapse}')"
    deliver = [f"// synapse {pp.synapse} of projection {pp.name}: deliver (on_pre, additive in w)"]
    for state, c in on_pre_coefficients(pp):
        coeff = pr(names, c, where)
        rhs = f"q_in__{pp.name}" if coeff == "1.0" else f"{coeff} * q_in__{pp.name}"
        deliver.append(f"{names[state]} += {rhs};")
    output = pr(names, pp.output, where) if pp.output is not None else None
    update: list[str] = []
    commit: list[str] = []
    if pp.impulse:
        commit.append(f"// synapse of {pp.name}: impulse, states cleared after use")
        commit += [f"{names[st]} = {literal(v)};" for st, v in pp.states.items()]
    else:
        for tname, expr in pp.temps:
            update.append(f"const scalar {names[tname]} = {pr(names, expr, where)};  // temp of {pp.name}")
        for a in pp.update:
            update.append(
                f"const scalar n_{names[a.target]} = {pr(names, a.expr, where)};  // update {a.target} of {pp.name}"
            )
        commit += [f"{names[a.target]} = n_{names[a.target]};" for a in pp.update]
    return deliver, output, update, commit


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
