"""EventProp for GeNN: the forward pass and the backward pass as one GeNN model run over 2K steps.

GeNN steps 0..K-1 are the forward pass of a batch, steps K..2K-1 its backward pass (backward step
kb = 2K-1-s; the runtime resets the model's time to 0 per batch and runs the backward half only
when gradients are wanted), so there is no one-batch lag (DESIGN.md §4), unlike mlGeNN's compiler.
What each piece does, following `snnc.passes.eventprop`'s discrete-time semantics:

- forward, at a spike (reset code, before the reset itself): the spike time (k+1)·dt and the values
  the jump needs go into per-neuron buffers `ev_<record>` (extra global params,
  [batch][neuron][max_spikes]); `q_ns` counts every spike, so overflow is visible to the runtime.
  Synapse states live in the post neuron (`y_<state>__<proj>`), so records read them directly.
- backward, replay: a neuron whose buffer holds a spike at time kb·dt (forward step kb-1) re-emits
  it at backward step kb, so GeNN's synapse update processes it at the next step, kb-1: the forward
  step it belongs to. The real spikes of the last forward step are processed at step K (kb = K-1).
- backward, synapse (`pre_spike_syn_code`): `dg += ∂L/∂w` and `addToPre(g * g_m)` (D of the
  presynaptic neuron, summed in its `q_D` input), both from the post neuron's λ⁺ (var references;
  the synapse update runs before the neuron update of the same step).
- backward, neuron (`sim_code`): the jump of a spike of forward step kb (D from this step's
  `q_D`, records from the buffer), then the readout drive, then the transposed propagator.
- custom updates: batch reduction of `dg` (which also zeroes it) and the spike-count reduction of the
  regulariser; `UPDATE_GROUPS` lists their order. The optimiser runs in numpy (runtime/optimisers.py).

Limits (diagnostics): delays on projections into the gradient path, the Euler fallback (non-linear
backward) and trainable conv2d kernels are not supported by this backend yet.
"""

from __future__ import annotations

import sympy
from snnc.backends.common import derived_values, specialise
from snnc.ir import names
from snnc.ir.model import Network
from snnc.ir.training import PopulationGradient, TrainingIR, executed_jump

from .emit import CustomUpdateCtx, ModuleCtx
from .models import GeNNModelSpec, Var
from .printer import literal
from .render import PopulationCtx, ProjectionCtx, fail, pr

#: the spike-time buffer every replaying population keeps (the runtime reads it too)
SPIKE_TIMES = names.local("ev", names.SPIKE_TIME)


def _param_values(network: Network, pg: PopulationGradient, dt: float) -> dict[str, float]:
    """Numbers for every param symbol of the coupled system (neuron and incoming synapses)."""
    pop = network.populations[pg.population]
    model = network.models[pop.model]
    values: dict[str, float] = {}
    for symbol, owner, name in pg.params:
        if owner == "neuron":
            value = pop.params.get(name, model.params[name].value if name in model.params else None)
        else:
            proj = network.projections[owner]
            syn = network.models[proj.synapse]
            value = proj.synapse_params.get(name, syn.params[name].value if name in syn.params else None)
        if value is None:
            raise fail(
                f"population '{pg.population}': no value for parameter '{symbol}' of the backward pass"
            )
        values[symbol] = float(value)
    # the model's own derived params (by their names), then the pass's hoisted decay factors
    dm = network.discrete.get(pop.model)
    if dm is not None:
        values.update(derived_values(dm, {**values}, dt))
    for name, expr in pg.derived:
        values[name] = float(sympy.N(specialise(expr, {**values, "dt": dt}), 17))
    values["dt"] = dt
    return values


def _offset(size: int, max_spikes: int) -> str:
    return f"const unsigned int q_off = (batch * {size} + id) * {max_spikes};"


def _add_replay(p: PopulationCtx, records: dict[str, str], k_total: int, max_spikes: int, guard: str) -> None:
    """Spike buffers and backward replay for a population (inputs and neurons alike).

    `records`: buffer name -> C expression evaluated at a forward spike; `guard` is the forward
    threshold condition, kept for steps < K.
    """
    m = p.model
    m.vars += [Var("q_ns", "int"), Var("q_bi", "int"), Var("q_jump", "int"), Var("q_jidx", "int")]
    for v in ("q_ns", "q_bi", "q_jump", "q_jidx"):
        p.var_init[v] = 0
        p.reset_vars[v] = 0
    for name in records:
        m.extra_global_params.append(Var(names.local("ev", name), "scalar*"))
        p.egp_init[names.local("ev", name)] = f"np.zeros(batch_size * {p.size} * MAX_SPIKES, dtype=SCALAR)"
    k = k_total
    kb = f"(2 * {k} - 1 - (int)round(t / dt))"
    phase = f"(int)round(t / dt) < {k}"
    m.code["threshold_condition_code"] = (
        f"({phase}) ? ({guard or '0'}) : "
        f"(q_bi >= 0 && fabs({SPIKE_TIMES}[(batch * {p.size} + id) * {max_spikes} + q_bi] - {kb} * dt) < 0.5 * dt)"
    )
    store = [f"    {names.local('ev', name)}[q_roff + q_ns] = {expr};" for name, expr in records.items()]
    forward_reset = m.code.get("reset_code", "")
    m.code["reset_code"] = "\n".join(
        [
            # GeNN runs the reset code in the sim code's scope: no name may be declared twice
            f"const unsigned int q_roff = (batch * {p.size} + id) * {max_spikes};",
            f"if ({phase}) {{",
            "    // EventProp forward: store this spike and the values its backward jump needs",
            f"    if (q_ns < {max_spikes}) {{",
            *["    " + line for line in store],
            "    }",
            "    q_ns++;  // counts past the buffer too: overflow is reported, never silent",
            *["    " + line for line in forward_reset.splitlines()],
            "}",
            "else {",
            "    // EventProp backward: this replayed spike belongs to the next backward step",
            "    q_jump = 1;",
            "    q_jidx = q_bi;",
            "    q_bi--;",
            "}",
        ]
    )
    start = [
        f"// EventProp backward, first step: skip (and jump for) the spikes of forward step {k - 1}",
        f"if ({kb} == {k - 1}) {{",
        f"    q_bi = (q_ns < {max_spikes} ? q_ns : {max_spikes}) - 1;",
        "    q_jump = 0;",
        f"    if (q_bi >= 0 && {SPIKE_TIMES}[q_off + q_bi] > ({k} - 0.5) * dt) {{",
        "        q_jump = 1;",
        "        q_jidx = q_bi;",
        "        q_bi--;",
        "    }",
        "}",
    ]
    p.backward_start = start


def _input_replay(p: PopulationCtx, k_total: int, max_spikes: int) -> None:
    guard = p.model.code.get("threshold_condition_code", "0")
    _add_replay(p, {names.SPIKE_TIME: "t + dt"}, k_total, max_spikes, guard)
    lines = [_offset(p.size, max_spikes), f"if ((int)round(t / dt) >= {k_total}) {{"]
    lines += ["    " + line for line in p.backward_start]
    lines.append("}")
    p.model.code["sim_code"] = "\n".join(lines)


def _neuron_backward(
    ctx: ModuleCtx, network: Network, tir: TrainingIR, pg: PopulationGradient, p: PopulationCtx
) -> None:
    plan = ctx.plan
    k = plan.num_steps
    mx = tir.max_spikes
    where = f"population '{pg.population}' (eventprop)"
    if pg.trajectory:
        raise fail(
            f"{where}: the non-linear backward pass (Euler on the recorded trajectory of "
            f"{', '.join(pg.trajectory)}) is not supported by the genn backend yet",
            hint="use the c backend for this model",
        )
    values = _param_values(network, pg, plan.dt)
    m = p.model
    lam = {a.name: names.local("l", a.name) for a in pg.adjoints}
    m.vars += [Var(v) for v in lam.values()] + [Var("q_dldy")]
    for v in list(lam.values()) + ["q_dldy"]:
        p.var_init[v] = 0.0
        p.reset_vars[v] = 0.0
    transmits = any(network.projections[t].pre == p.name for t in tir.transmissions)
    if transmits:
        m.additional_input_vars.append(("q_D", "scalar", 0.0))
    # records: the values the kernel's forward step stored for this step's spikes (scratch vars
    # `q_<record>`, before the reset), and the spike time
    pop_plan = plan.populations[pg.population]
    records: dict[str, str] = {}
    held = {v.name for v in m.vars}
    for rec in pg.records:
        if rec.name == names.SPIKE_TIME:
            records[rec.name] = "t + dt"
            continue
        var = names.local("q", rec.name)
        if var not in held:
            raise fail(f"{where}: the forward step stores no value of record '{rec.name}'")
        records[rec.name] = var
    spiking = pop_plan.spike is not None
    if spiking:
        _add_replay(p, records, k, mx, m.code.get("threshold_condition_code", "0"))
    else:
        p.backward_start = []
    # symbols of the backward code
    genn = dict(lam)
    genn.update({r: names.local("rec", r) for r in records})
    genn.update(
        {
            names.D: "q_D" if transmits else "0.0",  # no outgoing projection on the gradient path
            names.DLP_DTS: "q_dlp",
            names.DL_DY: "q_dldy",
            names.STEP: "q_kb",
            names.STEPS: literal(k),
            names.DURATION: literal(plan.duration),
            names.IS_FIRST_SPIKE: "(q_jidx == 0 ? 1.0 : 0.0)",
            names.SPIKE_COUNT_SUM: "((scalar)q_nsum)",
            names.BATCH_SIZE: "((scalar)q_batch)",
        }
    )
    bwd = ["// EventProp backward step kb: jump (own spike of forward step kb), drive, propagate"]
    bwd += [f"const int q_kb = 2 * {k} - 1 - (int)round(t / dt);"]
    bwd += p.backward_start
    if pg.jump:
        jump = ["if (q_jump) {"]
        jump += [
            f"    const scalar {names.local('rec', r)} = {names.local('ev', r)}[q_off + q_jidx];"
            for r in records
        ]
        dlp = specialise(pg.dlp_dts, values)
        if pg.readout is not None and pg.readout.kind == "var":
            raise fail(f"{where}: readout 'var' drives every step; not supported by the genn backend yet")
        jump.append(f"    const scalar q_dlp = {pr(genn, dlp, where)};")
        for a in executed_jump(pg):
            new = names.local("j", a.target)
            jump.append(f"    const scalar {new} = {pr(genn, specialise(a.expr, values), where)};")
        jump += [f"    {lam[a.target]} = {names.local('j', a.target)};" for a in executed_jump(pg)]
        jump += ["    q_jump = 0;", "}"]
        bwd += jump
    if pg.regularisation is not None:
        m.vars.append(Var("q_nsum", "int", "VarAccess.READ_ONLY"))
        p.var_init["q_nsum"] = 0
        m.params.append(Var("q_batch", "int"))
        p.params["q_batch"] = "batch_size"
        cu = GeNNModelSpec(
            "custom_update",
            f"snnc_count_{p.name}",
            f"population {p.name}: spike counts summed over the batch (regulariser)",
            var_refs=[
                Var("q_ns", "int", "VarAccessMode.READ_ONLY"),
                Var("q_nsum", "int", "VarAccessMode.REDUCE_SUM"),
            ],
            code={"update_code": "q_nsum = q_ns;"},
        )
        refs = {v: f'create_var_ref(pops["{p.name}"], "{v}")' for v in ("q_ns", "q_nsum")}
        ctx.custom_updates.append(
            CustomUpdateCtx(f"count_{p.name}", "SpikeCountReduce", cu.source, cu, var_refs=refs)
        )
    for adj, expr in pg.drive:
        expr = specialise(expr, values)
        if pg.readout is not None and pg.readout.kind == "max_var":
            bwd.append(
                f"if (q_kb == q_argmax) {{\n    {lam[adj]} += {pr(genn, expr, where)};  // readout drive\n}}"
            )
        else:
            bwd.append(f"{lam[adj]} += {pr(genn, expr, where)};  // readout {pg.readout.kind} drive")
    for a in pg.backward:
        bwd.append(
            f"const scalar {names.local('b', a.target)} = {pr(genn, specialise(a.expr, values), where)};"
        )
    bwd += [f"{lam[a.target]} = {names.local('b', a.target)};" for a in pg.backward]
    forward = m.code["sim_code"]
    m.code["sim_code"] = "\n".join(
        [
            *([_offset(p.size, mx)] if spiking else []),
            f"if ((int)round(t / dt) < {k}) {{",
            *["    " + line for line in forward.splitlines()],
            "}",
            "else {",
            *["    " + line for line in bwd],
            "}",
        ]
    )


def _synapse_backward(ctx: ModuleCtx, network: Network, tir: TrainingIR, s: ProjectionCtx) -> None:
    """Weight gradient and backward transmission in the synapse, from the post neuron's λ⁺."""
    k = ctx.plan.num_steps
    where = f"projection '{s.name}' (eventprop)"
    pg = tir.populations[s.post]
    values = _param_values(network, pg, ctx.plan.dt)
    lam = {a.name: names.local("l", a.name) for a in pg.adjoints}
    if s.delay_steps:
        raise fail(
            f"{where}: delays on the gradient path are not supported by the genn backend's EventProp yet"
        )
    grad = tir.weight_gradients.get(s.name)
    trans = tir.transmissions.get(s.name)
    used: set[str] = set()
    lines = [
        f"if ((int)round(t / dt) < {k}) {{",
        f"    if ((int)round(t / dt) >= {s.delay_steps + 1}) {{  // not a spike of the previous trial",
        "        addToPost(g);",
        "    }",
        "}",
        "else {",
        "    // EventProp backward: this spike belongs to forward step 2K-1-(t/dt)",
    ]
    if grad is not None and s.trainable:
        expr = specialise(grad.expr, values)
        used |= {x.name for x in expr.free_symbols}
        lines.append(f"    dg += {pr(lam, expr, where)};  // dL/dw ({s.name})")
        s.wum.vars.append(Var("dg"))
        s.wum_vars["dg"] = "0.0"
    if trans is not None:
        expr = specialise(trans.g, values)
        used |= {x.name for x in expr.free_symbols}
        lines.append(f"    addToPre(g * ({pr(lam, expr, where)}));  // D of the presynaptic neuron")
        s.pre_target_var = "q_D"
    lines.append("}")
    s.wum.code["pre_spike_syn_code"] = f"// {s.source}\n" + "\n".join(lines)
    for name in sorted(used):
        s.wum.post_neuron_var_refs.append(Var(lam[name], "scalar", "VarAccessMode.READ_ONLY"))
        s.wum_var_refs[lam[name]] = lam[name]


def add_eventprop(ctx: ModuleCtx, network: Network) -> None:
    """Extend the inference context with EventProp's buffers, backward code and custom updates."""
    tir: TrainingIR = network.training
    ctx.training = "eventprop"
    ctx.max_spikes = tir.max_spikes
    k = ctx.plan.num_steps
    # presynaptic populations of every gradient-path projection replay their spikes
    replay = {s.pre for s in ctx.projections if s.post in tir.populations and s.pre not in tir.populations}
    for name in sorted(replay):
        _input_replay(ctx.population(name), k, tir.max_spikes)
    for name, pg in tir.populations.items():
        _neuron_backward(ctx, network, tir, pg, ctx.population(name))
    for s in ctx.projections:
        if s.post in tir.populations:
            _synapse_backward(ctx, network, tir, s)
    ctx.update_groups.update(
        {
            "SpikeCountReduce": "after the forward pass: spike counts summed over the batch (regulariser)",
            "GradientReduce": "after the backward pass: dg summed over the batch into dg_sum, dg zeroed",
        }
    )
