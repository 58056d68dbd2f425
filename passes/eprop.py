"""The `eprop` pass: e-prop learning rules derived from each model's discrete update (DESIGN.md §4).

Bellec et al. 2020 (Nat. Commun. 11:3625), with mlGeNN's EPropCompiler conventions for the options,
the pseudo-derivative, the filtered traces, the learning signal and the firing-rate regulariser. The
eligibility algebra itself lives in `eprop_derive.py`; this module walks the network, reads the
options and assembles the `EpropIR` (`ir/eprop_ir.py`), attached as `network.training`.

Per-step order a backend must implement (step k; it extends `ir/discrete.py`'s four phases):

1. deliver and inputs, as in the Discrete IR. `z_pre` of projection P is the presynaptic spike
   emitted at step `k - 1 - delay_steps` (the spike delivered in this step).
2. update. Alongside the neuron/synapse update, every projection's `propagate` runs, simultaneously,
   with every symbol at the value the update itself reads: neuron states at the start of the step
   (after step k-1's reset), synapse states after this step's delivery, inputs of this step,
   `refractory` = 1 if the neuron is refractory in this step (cannot spike in it), else 0.
3. outputs: for each output population, after its update, evaluate `reductions` (max / sum over
   the population's neurons), then `y`, then `E` (0 outside [`error_start_step`, `error_stop_step`):
   `error_start` and a windowed readout's `start`/`stop`). Then each output
   projection does `dW__P += accumulate` (E times the eligibility just propagated), and the output
   bias likewise (`dbias__pop`). Nothing here reads this step's hidden spikes: they reach outputs at
   step k+1.
4. learning signal: `fb__P = Σ_k B_jk E_k` for every hidden -> output projection P (B = the current
   weights transposed for symmetric feedback, the fixed random matrix for random feedback), then
   `L = HiddenEprop.learning_signal` per hidden neuron.
5. spike phase of each hidden neuron, with its states still at their PRE-RESET values h'_k:
   z = spike condition and not refractory; `psi` from `HiddenEprop.psi` (0 while refractory);
   `f_avg` = its `f_avg` update (with this step's z). Then for every incoming projection, in order:
   `e__P = trace`; `dW__P += accumulate` (reads `L`, `ebar__P` from BEFORE this step's filter, `e__P`
   and `f_avg`); `ebar__P = filter` (κ·ebar + e); `jump` (simultaneous; pre-reset states, `psi`, `z`).
   Then every trained param of the population (`EpropIR.params`, role "hidden": its own, then those
   of the synapses of its incoming projections) does the same five, per neuron. Only then does the
   neuron's reset run (the Discrete IR's reset). An output's trained params propagate with its
   projections in step 3 and accumulate `E · ε_var` there.
6. after the last step of an example, and if `reset_state`: all states, eligibilities, `ebar`,
   `f_avg` return to their initial values (eligibilities and traces to 0); `dW` and `dbias` are summed
   over the batch and handed to the optimiser at the end of the batch; weights are then clamped to
   [w_min, w_max] where given.

Why `ebar` from before the filter in step 5: a hidden spike at step k first moves the readout at step
k+1, so the error at step k pairs with traces up to step k-1 (exact for the readout path).
Differences from mlGeNN, on purpose: κ is the readout's own per-step decay (mlGeNN uses the hidden
tau_mem for both z̄ and ē); errors are not lagged by one step (mlGeNN computes E from the previous
step's softmax); the bias gradient is exact (mlGeNN adds E). mlGeNN's ALIF eligibility is Bellec's,
which is exact for `a_t = ρ a_{t-1} + z_{t-1}`; an ALIF whose reset `a += 1` runs after the decay
(std ALIF) gets the exact rule for that model, where ψ z̄ enters ε_a scaled by ρ.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import sympy
from snnc.ir import names
from snnc.ir.diagnostics import Diagnostic, DiagnosticError, did_you_mean
from snnc.ir.discrete import delay_steps
from snnc.ir.eprop_ir import (
    EpropIR,
    EpropOptions,
    HiddenEprop,
    LearningTerm,
    OutputEprop,
    ParamEprop,
    ProjectionEprop,
)
from snnc.ir.model import Assign, Initialiser, Network, Population, Projection
from snnc.ir.symbols import sym

from . import eprop_derive as D
from .manager import Pass
from .pipeline import register_gradient_pass

CODE_OPTION = "E-EPROP-OPTION"
CODE_NO_OUTPUT = "E-EPROP-NOOUTPUT"
CODE_READOUT = "E-EPROP-READOUT"
CODE_TRAINED_FILTER = "E-EPROP-PARAM"

SUPPORTED_READOUTS = ("var", "avg_var", "sum_var")
LOSSES = {
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "mse": "mean_square_error",
    "mean_square_error": "mean_square_error",
}

E, L, F_AVG, Y_TRUE = sym(names.ERROR), sym(names.LEARNING_SIGNAL), sym(names.F_AVG), sym(names.Y_TRUE)


def eprop(network: Network) -> Network:
    """Derive e-prop eligibility traces and gradients; stage becomes "training".

    Runs after `discretise` (the pipeline's order): the rules are derived from the discrete update."""
    if not network.discrete:
        raise ValueError("the eprop pass needs a discretised network: run the discretise pass first")
    return dataclasses.replace(network, training=derive(network), stage="training")


def read_options(network: Network) -> EpropOptions:
    """`eprop(...)` options from the training block, checked; unknown names get a diagnostic."""
    args: dict[str, Any] = dict(network.train.algorithm.args) if network.train is not None else {}
    span = network.train.algorithm.span if network.train is not None else None
    fields = {f.name for f in dataclasses.fields(EpropOptions)} - {"example_timesteps"}
    unknown = sorted(set(args) - fields)
    if unknown:
        raise DiagnosticError(
            Diagnostic(
                CODE_OPTION,
                f"unknown e-prop option '{unknown[0]}'",
                span,
                hint=did_you_mean(unknown[0], fields) or "options: " + ", ".join(sorted(fields)),
            )
        )
    if args.get("feedback", "symmetric") not in ("symmetric", "random"):
        raise DiagnosticError(
            Diagnostic(
                CODE_OPTION, f"e-prop feedback must be symmetric or random, not '{args['feedback']}'", span
            )
        )
    for key in ("gamma", "tau_reg"):
        if key in args and not (isinstance(args[key], int | float) and args[key] > 0):
            raise DiagnosticError(
                Diagnostic(CODE_OPTION, f"e-prop option {key} must be a positive number", span)
            )
    return EpropOptions(example_timesteps=network.num_steps, **args)


def derive(network: Network) -> EpropIR:
    """The whole `EpropIR` of a discretised network."""
    opts = read_options(network)
    outputs = {p.name: _output(network, p, opts) for p in network.outputs()}
    projections: dict[str, ProjectionEprop] = {}
    thresholds: dict[str, D.Threshold] = {}
    for proj in network.projections.values():
        if not proj.trainable:
            continue
        post = network.populations[proj.post]
        if post.role == "hidden":
            if post.name not in thresholds:
                thresholds[post.name] = D.threshold(
                    network.models[post.model], network.discrete[post.model], _where(network, post)
                )
            projections[proj.name] = _projection(network, proj, "hidden", thresholds[post.name], opts)
        elif post.role == "output":
            projections[proj.name] = _projection(network, proj, "output", None, opts)
    hidden = {}
    for pop in network.populations.values():
        if pop.role == "hidden":
            if pop.name not in thresholds:
                thresholds[pop.name] = D.threshold(
                    network.models[pop.model], network.discrete[pop.model], _where(network, pop)
                )
            hidden[pop.name] = _hidden(network, pop, thresholds[pop.name], projections, opts)
    # fill in each hidden projection's filter and gradient now that kappa is known
    for name, pe in list(projections.items()):
        if pe.role == "hidden":
            he = hidden[pe.post]
            ebar, e = sym(pe.filtered_name), sym(pe.trace_name)
            projections[name] = dataclasses.replace(
                pe,
                filter=Assign(pe.filtered_name, "=", he.kappa * ebar + e),
                accumulate=L * ebar + he.regularisation * e,
            )
    params = {}
    for pop in network.populations.values():
        for name, spec in pop.trainable.items():
            pe = _param(network, pop, name, spec.per_neuron, thresholds.get(pop.name), hidden, outputs, opts)
            params[pe.key] = pe
    for proj in network.projections.values():
        for name, spec in proj.synapse_trainable.items():
            pe = _synapse_param(
                network, proj, name, spec.per_neuron, thresholds.get(proj.post), hidden, outputs, opts
            )
            params[pe.key] = pe
    notes = (
        "reset path of the membrane states left out of D_t (Bellec et al. 2020)"
        if not opts.keep_reset_path
        else "reset path kept in D_t (keep_reset_path = true)",
    )
    return EpropIR("eprop", opts, hidden, outputs, projections, notes, params)


def _param(
    network: Network,
    pop: Population,
    param: str,
    per_neuron: bool,
    thr: D.Threshold | None,
    hidden: dict[str, HiddenEprop],
    outputs: dict[str, OutputEprop],
    opts: EpropOptions,
) -> ParamEprop:
    """A trained neuron param: e-prop's eligibility in a hidden population (filtered and paired with
    L like a weight's trace), the exact gradient E · d var/dp in an output population."""
    model = network.models[pop.model]
    role = "hidden" if pop.name in hidden else "output"
    der = D.derive_param(
        param,
        model,
        network.discrete[pop.model],
        _where(network, pop),
        thr if role == "hidden" else None,
        opts.keep_reset_path,
    )
    pe = ParamEprop(
        pop.name, param, role, per_neuron, der.eligibilities, der.propagate, der.trace, jump=der.jump
    )
    return _param_gradient(pe, der, hidden, outputs)


def _synapse_param(
    network: Network,
    proj: Projection,
    param: str,
    per_neuron: bool,
    thr: D.Threshold | None,
    hidden: dict[str, HiddenEprop],
    outputs: dict[str, OutputEprop],
    opts: EpropOptions,
) -> ParamEprop:
    """A trained param of a projection's synapse: its eligibility runs through the synapse's state
    into the post neuron's (`eprop_derive.derive_synapse_param`), then as a neuron param's."""
    post = network.populations[proj.post]
    role = "hidden" if post.name in hidden else "output"
    der = D.derive_synapse_param(
        param,
        proj.name,
        proj.target,
        network.models[post.model],
        network.discrete[post.model],
        network.models[proj.synapse],
        network.discrete[proj.synapse],
        _where(network, post),
        thr if role == "hidden" else None,
        opts.keep_reset_path,
    )
    pe = ParamEprop(
        post.name,
        param,
        role,
        per_neuron,
        der.eligibilities,
        der.propagate,
        der.trace,
        jump=der.jump,
        projection=proj.name,
    )
    return _param_gradient(pe, der, hidden, outputs)


def _param_gradient(
    pe: ParamEprop, der: D.Derivation, hidden: dict[str, HiddenEprop], outputs: dict[str, OutputEprop]
) -> ParamEprop:
    """An output's exact `E · d var/dp`; a hidden neuron's `L · ē_{t-1}` with its filter, as a weight's."""
    if pe.role == "output":
        return dataclasses.replace(pe, accumulate=E * der.eps_of[outputs[pe.population].var])
    he = hidden[pe.population]
    ebar, e = sym(pe.filtered_name), sym(pe.trace_name)
    return dataclasses.replace(
        pe,
        filter=Assign(pe.filtered_name, "=", he.kappa * ebar + e),
        accumulate=L * ebar + he.regularisation * e,
    )


def _trained_symbols(network: Network, pop: Population) -> dict[str, set[sympy.Symbol]]:
    """Each trained param of `pop` -> the derived params made of it."""
    out: dict[str, set[sympy.Symbol]] = {}
    for name in pop.trainable:
        made = {sym(name)}
        for derived, expr in network.discrete[pop.model].derived:
            if sympy.sympify(expr).free_symbols & made:
                made.add(sym(derived))
        out[name] = made - {sym(name)}
    return out


def _per_neuron_symbols(network: Network, pop: Population) -> set[sympy.Symbol]:
    """The params of `pop` that take one value per neuron while training (per-neuron trainable
    ones), and the derived params made of them: an eligibility that reads any is per synapse."""
    own = {sym(k) for k, t in pop.trainable.items() if t.per_neuron}
    for name, expr in network.discrete[pop.model].derived:
        if sympy.sympify(expr).free_symbols & own:
            own.add(sym(name))
    return own


def _synapse_array_symbols(network: Network, proj: Projection) -> set[sympy.Symbol]:
    """The coupled names of `proj`'s synapse params that live in arrays while training (trained, or
    one value per post neuron) and of the derived params made of them: an eligibility that reads any
    is kept per synapse, not per pre neuron."""
    own = {sym(k) for k in (*proj.synapse_trainable, *proj.synapse_param_inits)}
    for name, expr in network.discrete[proj.synapse].derived:
        if sympy.sympify(expr).free_symbols & own:
            own.add(sym(name))
    return {sym(names.coupled(s.name, proj.name)) for s in own}


def _where(network: Network, pop: Population) -> D.Where:
    model = network.models[pop.model]
    return D.Where(model.name, pop.name, model.span or pop.span)


def _projection(
    network: Network, proj: Projection, role: str, thr: D.Threshold | None, opts: EpropOptions
) -> ProjectionEprop:
    post = network.populations[proj.post]
    where = _where(network, post)
    post_model, syn_model = network.models[post.model], network.models[proj.synapse]
    if role == "output" and network.discrete[post.model].spike is not None:
        raise DiagnosticError(
            Diagnostic(
                D.CODE_SPIKING_READOUT,
                f"e-prop: output population '{post.name}' uses the spiking model '{post_model.name}'; "
                "e-prop readouts must be non-spiking (e.g. LeakyIntegrate)",
                post.span,
            )
        )
    der = D.derive_weight(
        proj.name,
        proj.target,
        post_model,
        network.discrete[post.model],
        syn_model,
        network.discrete[proj.synapse],
        where,
        thr,
        opts.keep_reset_path,
    )
    safe = {sym(p) for p in post_model.params} | {sym(n) for n, _ in network.discrete[post.model].derived}
    safe |= {sym(n) for n, _, _ in der.params} | {sym(n) for n, _ in der.derived} | {sym("dt"), sym("t")}
    safe -= _per_neuron_symbols(network, post) | _synapse_array_symbols(network, proj)
    elig = D.scopes(der, safe)
    accumulate = sympy.S.Zero
    if role == "output":
        var = post.readout.var if post.readout is not None and post.readout.var else None
        if var is None or var not in der.eps_of:
            raise DiagnosticError(
                Diagnostic(
                    CODE_READOUT,
                    f"e-prop: output population '{post.name}' reads no state of its model",
                    post.span,
                )
            )
        accumulate = E * der.eps_of[var]
    return ProjectionEprop(
        projection=proj.name,
        pre=proj.pre,
        post=proj.post,
        role=role,
        eligibilities=elig,
        propagate=der.propagate,
        trace=der.trace,
        accumulate=accumulate,
        jump=der.jump,
        delay_steps=_fixed_delay(proj, network.dt),
        params=der.params,
        derived=der.derived,
    )


def _output(network: Network, pop: Population, opts: EpropOptions) -> OutputEprop:
    ro = pop.readout
    if ro is None or ro.kind not in SUPPORTED_READOUTS or not ro.var:
        kind = ro.kind if ro is not None else "none"
        raise DiagnosticError(
            Diagnostic(
                CODE_READOUT,
                f"e-prop cannot train output population '{pop.name}' with readout '{kind}'",
                (ro.span if ro is not None else None) or pop.span,
                hint="e-prop needs a per-step value readout: " + ", ".join(SUPPORTED_READOUTS),
            )
        )
    loss = _loss(network, ro.kind)
    v = sym(ro.var)
    if loss == "sparse_categorical_crossentropy":
        vmax, vsum = sym(names.reduction("max", ro.var)), sym(names.reduction("sumexp", ro.var))
        reductions = ((vmax.name, "max", v), (vsum.name, "sum", sympy.exp(v - vmax)))
        y = sympy.exp(v - vmax) / vsum
    else:
        reductions, y = (), v
    start = max(0, int(math.ceil(opts.error_start / network.dt - 1e-9)))
    # a windowed readout (avg_var(v, start = …, stop = …)) is the answer read in that window only, so
    # its per-step error is zero outside it (Bellec et al.'s loss over the recall period)
    window_start, stop = ro.window_steps(network.dt)
    start = max(start, window_start)
    bias = None
    model = network.models[pop.model]
    if opts.train_output_bias and "bias" in model.params:
        der = D.derive_bias("bias", model, network.discrete[pop.model], _where(network, pop))
        bias = ProjectionEprop(
            projection=names.param_key("bias", pop.name),  # filed as a trained param is
            pre=pop.name,
            post=pop.name,
            role="output",
            eligibilities=der.eligibilities,
            propagate=der.propagate,
            accumulate=E * der.eps_of[ro.var],
            params=der.params,
            kind="bias",
        )
    return OutputEprop(
        pop.name, pop.model, ro.kind, ro.var, loss, reductions, y, y - Y_TRUE, start, bias, stop
    )


def _loss(network: Network, readout: str) -> str:
    call = network.train.loss if network.train is not None else None
    if call is None:
        return "mean_square_error" if readout == "var" else "sparse_categorical_crossentropy"
    if network.train.per_timestep_loss:
        raise DiagnosticError(
            Diagnostic(
                CODE_OPTION,
                "e-prop's learning signal is already each step's error: per_timestep applies to eventprop",
                call.span,
                hint="remove per_timestep (e-prop with sum_var and this loss is per-timestep cross-entropy)",
            )
        )
    if call.name not in LOSSES:
        raise DiagnosticError(
            Diagnostic(
                CODE_OPTION,
                f"e-prop supports the losses {', '.join(sorted(LOSSES))}, not '{call.name}'",
                call.span,
                hint=did_you_mean(call.name, LOSSES),
            )
        )
    return LOSSES[call.name]


def _hidden(
    network: Network,
    pop: Population,
    thr: D.Threshold,
    projections: dict[str, ProjectionEprop],
    opts: EpropOptions,
) -> HiddenEprop:
    model = network.discrete[pop.model]
    gamma = sympy.Float(opts.gamma)
    psi = gamma / thr.v_th * sympy.Max(0, 1 - sympy.Abs(thr.theta) / thr.v_th)
    if model.refractory is not None:
        psi = psi * (1 - D.REFRACTORY)
    terms, kappas = [], set()
    for proj in network.projections_from(pop.name):
        post = network.populations[proj.post]
        if post.role != "output":
            continue
        pe = projections.get(proj.name) or _projection(network, proj, "output", None, opts)
        kappa, scale = _readout_filter(network, post, pe)
        kappas.add(kappa)
        if opts.feedback == "symmetric":
            terms.append(
                LearningTerm(proj.name, post.name, "symmetric", names.feedback_weights(proj.name), scale)
            )
        else:
            sd = 1.0 / math.sqrt(pop.size)
            init = Initialiser("normal", {"mean": 0.0, "sd": sd})
            terms.append(
                LearningTerm(proj.name, post.name, "random", names.feedback_matrix(proj.name), scale, init)
            )
    if not terms:
        raise DiagnosticError(
            Diagnostic(
                CODE_NO_OUTPUT,
                f"e-prop: hidden population '{pop.name}' has no direct connection to an output population, "
                "so it receives no learning signal",
                pop.span,
                hint=f"add a projection `{pop.name} -> <output>` (as mlGeNN's EPropCompiler requires)",
            )
        )
    if len(kappas) > 1:
        raise DiagnosticError(
            Diagnostic(
                CODE_READOUT,
                f"e-prop: the readouts fed by hidden population '{pop.name}' decay at different rates "
                f"({', '.join(sorted(sympy.sstr(k) for k in kappas))}); one filtered trace cannot serve them all",
                pop.span,
            )
        )
    alpha_reg = math.exp(-network.dt / opts.tau_reg)
    f_avg = Assign(names.F_AVG, "=", alpha_reg * F_AVG + (1 - alpha_reg) * D.Z)
    reg = opts.c_reg * (F_AVG - opts.f_target * network.dt)
    return HiddenEprop(
        pop.name,
        pop.model,
        thr.theta,
        thr.v_th,
        psi,
        () if opts.keep_reset_path else thr.membrane,
        kappas.pop(),
        tuple(terms),
        f_avg,
        reg,
    )


def _readout_filter(network: Network, post: Population, pe: ProjectionEprop) -> tuple[sympy.Expr, sympy.Expr]:
    """κ and c of the readout's `ε_var ← κ ε_var + c z_pre`; a readout of another shape is refused."""
    var = post.readout.var
    eps_var = next(e for e in pe.eligibilities if e.state == var)
    rhs = next(a.expr for a in pe.propagate if a.target == eps_var.name)
    e_sym = sym(eps_var.name)
    kappa = sympy.diff(rhs, e_sym)
    scale = sympy.diff(rhs, D.Z_PRE)
    rest = sympy.expand(rhs - kappa * e_sym - scale * D.Z_PRE)
    constants = {sym(p) for p in network.models[post.model].params} | {
        sym(n) for n, _ in network.discrete[post.model].derived
    }
    constants |= {sym(n) for n, _, _ in pe.params} | {sym(n) for n, _ in pe.derived} | {sym("dt")}
    if rest != 0 or not (kappa.free_symbols | scale.free_symbols) <= constants | {
        sym(n) for n in network.models[post.model].params
    }:
        raise DiagnosticError(
            Diagnostic(
                CODE_READOUT,
                f"e-prop: the learning signal needs readout '{post.name}' to filter its input as "
                f"{var} <- kappa*{var} + c*input; its eligibility update is {sympy.sstr(rhs)}",
                post.span,
                hint="use a first-order leaky readout (e.g. LeakyIntegrate) with a Delta synapse",
            )
        )
    trained = _trained_symbols(network, post)
    for name in sorted(trained):
        if sym(name) in (kappa.free_symbols | scale.free_symbols) or trained[name] & (
            kappa.free_symbols | scale.free_symbols
        ):
            raise DiagnosticError(
                Diagnostic(
                    CODE_TRAINED_FILTER,
                    f"e-prop cannot train '{name}' of output population '{post.name}': the hidden "
                    f"neurons' filtered traces and learning signal are built with its readout's fixed "
                    f"filter {var} <- kappa*{var} + c*input, which '{name}' sets",
                    post.trainable[name].span or post.span,
                    "give it a number, or train with eventprop",
                )
            )
    # numbers: the readout's symbols (P_v_v, ...) would mean the hidden model's own in its statements
    return _numeric(kappa, network, post, pe), _numeric(scale, network, post, pe)


def _numeric(expr: sympy.Expr, network: Network, pop: Population, pe: ProjectionEprop) -> sympy.Expr:
    """Evaluate a readout constant with the population's params, its synapse's and `dt`."""
    proj = network.projections.get(pe.projection)
    for name, value in reversed(network.discrete[pop.model].derived):
        expr = expr.xreplace({sym(name): value})
    for name, value in reversed(pe.derived):
        expr = expr.xreplace({sym(name): value})
    values = {sym(k): v for k, v in pop.params.items()}
    if proj is not None:
        values |= {sym(names.coupled(k, proj.name)): v for k, v in proj.synapse_params.items()}
    values[sym("dt")] = network.dt
    out = expr.xreplace(values)
    if out.free_symbols:
        raise DiagnosticError(
            Diagnostic(
                CODE_READOUT,
                f"e-prop: readout '{pop.name}' has a non-constant filter {sympy.sstr(out)}",
                pop.span,
            )
        )
    return sympy.Float(float(out))


EPROP = Pass("eprop", eprop, "e-prop: eligibility traces, learning signals, gradients (Bellec et al. 2020)")
register_gradient_pass("eprop", EPROP)


def _fixed_delay(proj: Projection, dt: float) -> int:
    """e-prop's eligibility traces take a delay of whole steps fixed at compile time."""
    if proj.delay_trainable is not None:
        raise DiagnosticError(
            Diagnostic(
                "E-ALGO",
                f"projection '{proj.name}' has trainable delays, which e-prop does not train",
                proj.delay_trainable.span or proj.span,
                "give the delay one time (delay = 2 ms), or train with eventprop",
            )
        )
    return delay_steps(proj.delay, dt)
