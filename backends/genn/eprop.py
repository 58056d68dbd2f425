"""e-prop for GeNN: eligibility traces in the synapses, errors from per-step custom updates.

GeNN runs the synapse update of a step before its neuron update, while the e-prop order of
`snnc.passes.eprop` needs neuron values of the same step. So each piece runs as early as GeNN
allows and every pairing stays exact (no lagged errors, unlike mlGeNN):

- after each `step_time` the runtime calls the groups "EpropReduce1", "EpropReduce2", ... (max /
  sum over an output population, `OutputEprop.reductions`, one group each because a later one
  reads an earlier one) and "EpropError" (`q_E` = E of this step, 0 before
  `error_start_step`);
- synapse update of GeNN step s (`synapse_dynamics_code`, every synapse):
  (i) hidden projections: the spike-phase gradient of step s-2: `dW += accumulate` with
      L_{s-2} (`q_L`), `e_{s-2}` (`e_pend`), `f_avg_{s-2}` (`q_favg_prev`), then `ebar = filter`;
  (ii) hidden projections: the trace `e_{s-1}` and the jump of step s-1 (ψ and z of that step,
      `q_psi`, `q_z`, pre-reset states `h_<state>`), before any propagation;
      output projections: `dW += E_{s-1} · eps_{s-1}` and, for the learning signal,
      `addToPre(B · E_{s-1})` into the hidden neuron's `q_fb__<P>` input;
  (iii) `propagate` of step s with start-of-step neuron states, `refractory` of step s and
      `z_pre` (a presynaptic var set when the presynaptic neuron spikes);
- neuron update of step s: the model's update; for hidden neurons `q_L` = L_{s-1} from the
  feedback just summed, ψ, z, f_avg; for outputs `y_true` of step s (`ev_ytrue`) and the output
  bias eligibility (its gradient `dbias` pairs E_{s-1} with eps_{s-1} first).
The runtime runs K + 2 steps per batch; in the last two the neurons are frozen and only the
pending gradient terms complete. Eligibilities are kept per synapse even where the IR says one
per presynaptic neuron suffices (scope "pre"): simpler, exact, more memory.

Limits (diagnostics): delays on trained projections, propagate rules that read synapse states,
and a trained output bias (the bias is a literal of the generated code; its gradient `dbias` is
computed and exposed, applying it needs a rebuild).
"""

from __future__ import annotations

import dataclasses

import sympy
from snnc.backends.common import derived_values, neuron_values, specialise, update_with
from snnc.backends.eprop_init import eprop_initial
from snnc.ir import names as ir_names
from snnc.ir.eprop_ir import EpropIR, HiddenEprop, OutputEprop, ProjectionEprop
from snnc.ir.model import Network
from snnc.ir.names import param_key

from .emit import CustomUpdateCtx, ModuleCtx
from .models import GeNNModelSpec, Var
from .render import PopulationCtx, ProjectionCtx, fail, pr, render_neuron


def _values(network: Network, pop_name: str, pe: ProjectionEprop | None, dt: float) -> dict[str, float]:
    pop = network.populations[pop_name]
    model = network.models[pop.model]
    params = {k: p.value for k, p in model.params.items()}
    params.update(pop.params)
    values = derived_values(network.discrete[pop.model], params, dt)
    if pe is not None:
        for symbol, owner, name in pe.params:
            if owner == "neuron":
                values[symbol] = float(params[name])
            else:
                proj = network.projections[owner]
                syn = network.models[proj.synapse]
                values[symbol] = float(proj.synapse_params.get(name, syn.params[name].value))
        for name, expr in pe.derived:
            values[name] = float(sympy.N(specialise(expr, {**values, "dt": dt}), 17))
    values["dt"] = dt
    return values


def _reduction_update(population: str, reduction: str) -> str:
    """The custom update computing `reduction` over `population` (`eprop_out__max__v`)."""
    return ir_names.local(f"eprop_{population}", reduction)


def _step() -> str:
    return "const int q_k = (int)round(t / dt);"


def _freeze_neuron(p: PopulationCtx, k: int) -> None:
    """Neurons only update for the K steps of the example; the flush steps leave them alone."""
    m = p.model
    body = m.code["sim_code"]
    m.code["sim_code"] = "\n".join(
        [_step(), f"if (q_k < {k}) {{", *["    " + line for line in body.splitlines()], "}"]
    )
    if "threshold_condition_code" in m.code:
        m.code["threshold_condition_code"] = (
            f"(int)round(t / dt) < {k} && ({m.code['threshold_condition_code']})"
        )


def _hidden_neuron(ctx: ModuleCtx, network: Network, he: HiddenEprop, p: PopulationCtx, eir: EpropIR) -> None:
    plan = ctx.plan
    pop = plan.populations[he.population]
    where = f"population '{he.population}' (eprop)"
    values = _values(network, he.population, None, plan.dt)
    m = p.model
    names = {s: f"u_{s}" for s in pop.states}
    names.update({i: f"u_{i}" for i in pop.inputs})
    refr = "(q_was_refr ? 1.0 : 0.0)" if pop.refractory_steps > 0 else "0.0"
    names[ir_names.REFRACTORY] = refr
    new_vars = ["q_psi", "q_z", "q_L", "q_favg", "q_favg_prev"] + [f"h_{s}" for s in pop.states]
    m.vars += [Var(v) for v in new_vars]
    for v in new_vars:
        p.var_init[v] = 0.0
        p.reset_vars[v] = 0.0
    for term in he.learning:
        m.additional_input_vars.append((f"q_fb__{term.projection}", "scalar", 0.0))
    ls_names = {ir_names.feedback(t.projection): f"q_fb__{t.projection}" for t in he.learning}
    spike = pr(names, pop.spike, where)
    lines = [
        "// e-prop (hidden): learning signal of the previous step, then psi, z, f_avg of this one",
        f"q_L = {pr(ls_names, specialise(he.learning_signal, values), where)};",
        *[f"h_{s} = u_{s};  // pre-reset value for the synapses' trace and jump" for s in pop.states],
        f"q_psi = {pr(names, specialise(he.psi, values), where)};",
        f"q_z = ({'!q_was_refr && ' if pop.refractory_steps > 0 else ''}({spike})) ? 1.0 : 0.0;",
        "q_favg_prev = q_favg;",
        f"q_favg = {pr({ir_names.F_AVG: 'q_favg', ir_names.Z: 'q_z'}, specialise(he.f_avg.expr, values), where)};",
    ]
    m.code["sim_code"] += "\n" + "\n".join(lines)


def _output_neuron(ctx: ModuleCtx, network: Network, oe: OutputEprop, p: PopulationCtx) -> None:
    plan = ctx.plan
    k = plan.num_steps
    m = p.model
    where = f"population '{oe.population}' (eprop)"
    new = ["q_E", "q_ytrue", "q_err_on"]
    m.vars += [Var(v) for v in new]
    m.extra_global_params.append(Var("ev_ytrue", "scalar*"))
    p.egp_init["ev_ytrue"] = f"np.zeros(batch_size * {k} * {p.size}, dtype=SCALAR)"
    for v in new:
        p.var_init[v] = 0.0
        p.reset_vars[v] = 0.0
    lines = [
        "// e-prop (output): this step's target, and whether errors count yet",
        f"q_ytrue = q_k < {k} ? ev_ytrue[(batch * {k} + q_k) * {p.size} + id] : 0.0;",
        f"q_err_on = (int)round(t / dt) >= {oe.error_start_step} ? 1.0 : 0.0;",
    ]
    pop = plan.populations[oe.population]
    if oe.bias is not None:
        pe = oe.bias
        values = _values(network, oe.population, pe, plan.dt)
        names = {s: f"u_{s}" for s in pop.states}
        names.update({i: f"u_{i}" for i in pop.inputs})
        for e in pe.eligibilities:
            names[e.name] = ir_names.local("b", e.name)
            m.vars.append(Var(names[e.name]))
            p.var_init[names[e.name]] = 0.0
            p.reset_vars[names[e.name]] = 0.0
        m.vars.append(Var("dbias"))
        p.var_init["dbias"] = 0.0
        names[ir_names.ERROR] = "q_E"
        # the gradient of the last example step is completed in the first flush step
        body = m.code["sim_code"]
        m.code["sim_code"] = "\n".join(
            [
                "// e-prop output bias: dbias pairs E and eps of the previous step",
                f"if ((int)round(t / dt) >= 1 && (int)round(t / dt) <= {k}) {{",
                f"    dbias += {pr(names, specialise(pe.accumulate, values), where)};",
                "}",
                body,
            ]
        )
        lines += [
            f"const scalar {ir_names.local('n', a.target)} = {pr(names, specialise(a.expr, values), where)};"
            for a in pe.propagate
        ]
        lines += [f"{names[a.target]} = {ir_names.local('n', a.target)};" for a in pe.propagate]
    m.code["sim_code"] += "\n" + "\n".join(lines)
    # per-step reductions and the error, as custom updates over the population
    names = {s: f"u_{s}" for s in pop.states}
    names[ir_names.Y_TRUE] = "q_ytrue"
    reads: list[str] = []
    for i, (rname, kind, expr) in enumerate(oe.reductions):
        used = sorted({names[s.name] for s in expr.free_symbols if s.name in names})
        prev = [r for r, _, _ in oe.reductions[:i]]
        rnames = {**names, **{r: ir_names.local("q", r) for r in prev}, rname: ir_names.local("q", rname)}
        access = (
            "CustomUpdateVarAccess.REDUCE_NEURON_MAX"
            if kind == "max"
            else "CustomUpdateVarAccess.REDUCE_NEURON_SUM"
        )
        spec = GeNNModelSpec(
            "custom_update",
            "snnc_reduce_" + _reduction_update(oe.population, rname),
            f"population {oe.population}: e-prop reduction {rname} ({kind} over the population)",
            vars=[Var(ir_names.local("q", rname), "scalar", access)],
            var_refs=[Var(v, "scalar", "VarAccessMode.READ_ONLY") for v in used]
            + [Var(ir_names.local("q", r), "scalar", "VarAccessMode.READ_ONLY") for r in prev],
            code={"update_code": f"{ir_names.local('q', rname)} = {pr(rnames, expr, where)};"},
        )
        refs = {v: f'create_var_ref(pops["{oe.population}"], "{v}")' for v in used}
        refs.update(
            {
                ir_names.local("q", r): f'create_var_ref(updates["{_reduction_update(oe.population, r)}"], '
                f'"{ir_names.local("q", r)}")'
                for r in prev
            }
        )
        ctx.custom_updates.append(
            CustomUpdateCtx(
                _reduction_update(oe.population, rname),
                f"EpropReduce{i + 1}",  # one group each: a later reduction reads an earlier one
                spec.source,
                spec,
                vars={ir_names.local("q", rname): 0.0},
                var_refs=refs,
            )
        )
        reads.append(rname)
    enames = {**names, **{r: ir_names.local("q", r) for r in reads}}
    used = sorted({names[s.name] for s in oe.error.free_symbols if s.name in names})
    spec = GeNNModelSpec(
        "custom_update",
        f"snnc_error_{oe.population}",
        f"population {oe.population}: e-prop error E ({oe.loss})",
        var_refs=[Var(v, "scalar", "VarAccessMode.READ_ONLY") for v in used if v != "q_E"]
        + [Var("q_err_on", "scalar", "VarAccessMode.READ_ONLY")]
        + [Var(ir_names.local("q", r), "scalar", "VarAccessMode.READ_ONLY") for r in reads]
        + [Var("q_E")],
        code={"update_code": f"q_E = q_err_on * ({pr(enames, oe.error, where)});"},
    )
    refs = {v: f'create_var_ref(pops["{oe.population}"], "{v}")' for v in used + ["q_err_on", "q_E"]}
    refs.update(
        {
            ir_names.local("q", r): f'create_var_ref(updates["{_reduction_update(oe.population, r)}"], '
            f'"{ir_names.local("q", r)}")'
            for r in reads
        }
    )
    ctx.custom_updates.append(
        CustomUpdateCtx(f"error_{oe.population}", "EpropError", spec.source, spec, var_refs=refs)
    )


def _projection(
    ctx: ModuleCtx, network: Network, pe: ProjectionEprop, s: ProjectionCtx, eir: EpropIR
) -> None:
    plan = ctx.plan
    k = plan.num_steps
    where = f"projection '{pe.projection}' (eprop)"
    if pe.delay_steps:
        raise fail(
            f"{where}: delays on trained projections are not supported by the genn backend's e-prop yet"
        )
    values = _values(network, pe.post, pe, plan.dt)
    post = plan.populations[pe.post]
    wum = s.wum
    refs: dict[str, str] = {}
    names: dict[str, str] = {}
    for state in post.states:  # start-of-step neuron states
        names[state] = f"u_{state}"
    # at step 0 the spike flag may still hold the previous trial's last spike (pre vars are not reset)
    names[ir_names.Z_PRE] = "(q_s > 0 ? z_pre : 0.0)"
    names[ir_names.REFRACTORY] = "(q_refrac > 0 ? 1.0 : 0.0)" if post.refractory_steps > 0 else "0.0"
    wum.pre_vars.append(Var("z_pre"))
    wum.code["pre_dynamics_code"] = "z_pre = 0.0;  // the spike of the previous step has been delivered"
    wum.code["pre_spike_code"] = "z_pre = 1.0;  // delivered to the synapses in the next step"
    s.wum_pre_vars["z_pre"] = "0.0"
    for e in pe.eligibilities:
        names[e.name] = ir_names.local("q", e.name)
        wum.vars.append(Var(names[e.name]))
        s.wum_vars[names[e.name]] = "0.0"
        s.wu_reset_vars[names[e.name]] = 0.0
    wum.vars.append(Var("dg"))
    s.wum_vars["dg"] = "0.0"
    syn_states = {
        x.name
        for a in pe.propagate
        for x in a.expr.free_symbols
        if ir_names.is_coupled(x.name) and x.name not in names
    }
    if syn_states:
        raise fail(
            f"{where}: e-prop rules that read synapse states ({', '.join(sorted(syn_states))}) are not supported by the genn backend yet"
        )
    lines = [f"// {s.source}: e-prop", "const int q_s = (int)round(t / dt);"]
    if pe.role == "hidden":
        ebar = ir_names.local("q", pe.filtered_name)
        wum.vars += [Var("e_pend"), Var(ebar)]
        for v in ("e_pend", ebar):
            s.wum_vars[v] = "0.0"
            s.wu_reset_vars[v] = 0.0
        late = dict(names)
        late.update(
            {
                ir_names.LEARNING_SIGNAL: "q_L",
                ir_names.F_AVG: "q_favg_prev",
                pe.trace_name: "e_pend",
                pe.filtered_name: ebar,
            }
        )
        lines += [
            "if (q_s >= 2) {  // (i) the spike-phase gradient of step s-2",
            f"    dg += {pr(late, specialise(pe.accumulate, values), where)};",
            f"    {ebar} = {pr(late, specialise(pe.filter.expr, values), where)};",
            "}",
        ]
        now = dict(names)
        now.update({st: f"h_{st}" for st in post.states})
        now.update({ir_names.PSI: "q_psi", ir_names.Z: "q_z"})
        lines += [f"if (q_s >= 1 && q_s <= {k}) {{  // (ii) trace and jump of step s-1"]
        lines.append(f"    e_pend = {pr(now, specialise(pe.trace, values), where)};")
        for a in pe.jump:
            new = ir_names.local("j", a.target)
            lines.append(f"    const scalar {new} = {pr(now, specialise(a.expr, values), where)};")
        lines += [f"    {names[a.target]} = {ir_names.local('j', a.target)};" for a in pe.jump]
        lines.append("}")
        for v in ["q_L", "q_favg_prev", "q_psi", "q_z"] + [f"h_{st}" for st in post.states]:
            refs[v] = v
    else:
        out_names = dict(names)
        out_names[ir_names.ERROR] = "q_E"
        lines += [
            f"if (q_s >= 1 && q_s <= {k}) {{  // (ii) gradient of step s-1 and the learning signal",
            f"    dg += {pr(out_names, specialise(pe.accumulate, values), where)};",
        ]
        refs["q_E"] = "q_E"
        for he in eir.hidden.values():
            for term in he.learning:
                if term.projection == pe.projection:
                    if term.feedback == "random":
                        wum.vars.append(Var("b_fb", "scalar", "VarAccess.READ_ONLY"))
                        s.wum_vars["b_fb"] = f'weights["{pe.projection}.feedback"]'  # see add_eprop
                        lines.append("    addToPre(b_fb * q_E);  // random feedback B")
                    else:
                        lines.append("    addToPre(g * q_E);  // symmetric feedback B = W^T")
                    s.pre_target_var = f"q_fb__{pe.projection}"
        lines.append("}")
    lines += [f"if (q_s < {k}) {{  // (iii) propagate with this step's update"]
    for a in pe.propagate:
        new = ir_names.local("n", a.target)
        lines.append(f"    const scalar {new} = {pr(names, specialise(a.expr, values), where)};")
    lines += [f"    {names[a.target]} = {ir_names.local('n', a.target)};" for a in pe.propagate]
    lines.append("}")
    for state in post.states:
        refs[f"u_{state}"] = f"u_{state}"
    if post.refractory_steps > 0:
        refs["q_refrac"] = "q_refrac"
    used = "\n".join(lines)
    for var in sorted(refs):
        if var in used:
            typ = "int" if var == "q_refrac" else "scalar"
            wum.post_neuron_var_refs.append(Var(var, typ, "VarAccessMode.READ_ONLY"))
            s.wum_var_refs[var] = refs[var]
    wum.code["synapse_dynamics_code"] = used


def _train_output_biases(ctx: ModuleCtx, network: Network, eir: EpropIR) -> None:
    """Outputs whose bias e-prop trains: render them again with `bias` a var (`q_bias`) instead of
    a literal folded into the update, and list it in `ctx.biases` so the runtime can read, set and
    train it like a weight (`bias_<pop>`, its gradient the neuron var `dbias`)."""
    for name, oe in eir.outputs.items():
        if oe.bias is None:
            continue
        plan = ctx.plan.populations[name]
        init = float(network.populations[name].params.get("bias", 0.0))
        update, temps = update_with(plan.discrete, neuron_values(network, name, ctx.plan.dt, keep=("bias",)))
        symbolic = dataclasses.replace(plan, update=update, temps=temps)
        incoming = [pp for pp in ctx.plan.projections.values() if pp.post == name]
        i = next(i for i, p in enumerate(ctx.populations) if p.name == name)
        ctx.populations[i] = render_neuron(symbolic, ctx.plan, incoming, trained={"bias": init})
        ctx.biases[param_key("bias", name)] = {
            "population": name,
            "var": "q_bias",
            "gradient": "dbias",
            "init": init,
        }


def add_eprop(ctx: ModuleCtx, network: Network) -> None:
    """Extend the inference context with e-prop's eligibilities, errors and custom updates."""
    eir: EpropIR = network.training
    ctx.training = "eprop"
    k = ctx.plan.num_steps
    _train_output_biases(ctx, network, eir)  # first: it renders those outputs again
    ctx.eprop_outputs = {
        o.population: {"loss": o.loss, "readout": o.readout, "var": o.var} for o in eir.outputs.values()
    }
    for p in ctx.populations:
        if p.generator is None:
            _freeze_neuron(p, k)
        elif p.generator == "poisson":
            m = p.model
            m.code["threshold_condition_code"] = (
                f"(int)round(t / dt) < {k} && {m.code['threshold_condition_code']}"
            )
    for name, he in eir.hidden.items():
        _hidden_neuron(ctx, network, he, ctx.population(name), eir)
    for name, oe in eir.outputs.items():
        _output_neuron(ctx, network, oe, ctx.population(name))
    for name, pe in eir.projections.items():
        _projection(ctx, network, pe, ctx.projection(name), eir)
    for proj, matrix in eprop_initial(network, ctx.plan.seed).feedback.items():
        ctx.extra_arrays[f"{proj}.feedback"] = matrix.ravel()  # the C backend's B, [pre][post]
    ctx.update_groups.update(
        {
            **{
                f"EpropReduce{i + 1}": f"after every step: reduction {i + 1} over each output population (in order)"
                for i in range(max((len(o.reductions) for o in eir.outputs.values()), default=0))
            },
            "EpropError": "after every step, then: the error E of each output neuron",
            "GradientReduce": "after the K + 2 steps of a batch: dg summed over the batch, dg zeroed",
        }
    )
    ctx.extra_steps = 2
