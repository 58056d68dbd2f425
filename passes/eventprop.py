"""The `eventprop` pass: derive EventProp's backward pass from the network's own model equations.

Convention (DESIGN.md §4): λ(t) = ∂L/∂x(t). For each non-input population on the gradient path the
pass couples the neuron with the synapse states of its incoming projections (input = Σ outputs) and
derives, with sympy: the adjoint ODE, its discrete backward step, the jump at an own spike, the
backward transmission g_m, the weight gradients, the per-spike records and the readout's loss drive.
The result is a `TrainingIR` in `network.training` (stage "training"); see `snnc.ir.training`.

Discrete-time semantics (`snnc.passes.schedule_eventprop` lowers them into the kernel IR every backend
prints; forward step k covers [k·dt, (k+1)·dt]; see
`ir/discrete.py`). A spike detected in forward step k has time t_s = (k+1)·dt (no interpolation; the
error is O(dt), as in mlGeNN) and is delivered at the start of step k+1, i.e. at the same instant.
Records are taken at the spike step after `update` and before `reset`, with the inputs the update
read (the synapse states before their own decay in the step). The readout samples its var after `update` of step k.
The backward pass runs after the forward pass of the same batch, with λ = 0 at T, for k = K-1 .. 0:
  1. events at t = (k+1)·dt, all using λ⁺ (the values before any jump of this step):
     a. each post neuron m computes g_m (`Transmission.g`) for each incoming projection;
     b. for each spike of pre neuron n in step k - delay_steps: `∂L/∂w_nm += WeightGradient.expr`
        (λ of m now), and D_n += w_nm·g_m;
     c. each neuron that spiked in step k applies `jump` (simultaneous assignments), with its
        records, D = D_n and dlp_dts as stated per population;
  2. the readout drive of sample k is added (`drive`: adjoint += expr), for readouts of samples
     (var, max_var, a per-timestep loss);
  3. `backward` (simultaneous) moves λ from (k+1)·dt to k·dt; for readouts that integrate their
     variable (avg_var, avg_var_exp_weight, sum_var) it also takes the drive in, spread evenly over
     the step as the continuous-time loss integral does (`adjoint.exact_backward`'s q; see there why).
For linear systems step 3 is the exact transposed propagator of the coupled continuous system; the
forward pass of the Discrete IR holds the input constant over a step, so the two differ by O(dt)
(mlGeNN does the same). Non-linear systems use the stated fallback: an Euler step of the adjoint ODE
with the Jacobian evaluated on the forward trajectory, which the forward pass then records every step
(`trajectory`). Spike buffers hold `max_spikes` entries per neuron; the backend counts overflowing
spikes and reports them (they get no jump and no weight gradient).
On the threshold surface θ(x⁻) = 0, so the jump uses the solved state (v⁻ = v_thresh for LIF), which
makes it independent of the overshoot of the discrete forward pass. The executed jump (`guarded_jump`)
divides by ∇θ·f⁻ on the threshold with the inputs the step's update read, recorded at the spike
(`names.CROSSING_RATE_RECORD`) and floored at `min_crossing_rate`; f⁺ takes the same inputs, as
inputs are continuous across the reset. At dt = 1 ms a driven neuron's synaptic current decays ~18 %
within the step: with the decayed inputs (the step's end) ∇θ·f⁻ is often ~0 or negative, while with
the inputs that drove the crossing it is positive (LIF: i_syn > v_thresh/0.906 for an update to
cross). The crossing's secant over the step, (v_after − v_before)/dt, which the jump divided by
before, is positive too but mostly smaller: it gave hidden gradients further from those at dt = 0.1
and 0.05 ms and learned SHD-shaped data slower per epoch (benchmarks/README.md "Why snnc learned the
SHD-shaped case slower per epoch"); mlGeNN divides by (i_syn at the step's start − v)/τ_m. For τ_mem = τ_syn the exact LIF propagator has a
removable 0/0; keep the time constants distinct.
Gradients of trainable params: `param_gradient.py` (∫ λ·∂f/∂p dt plus spike terms). Trainable delays:
`_delay_gradient` (lowered by `schedule_delays.py`). Impulse (Delta) synapses: the short-pulse limit,
a jump e = (∂f/∂u)·c·dt of the neuron states (`adjoint.py`); a jump of a readout's variable also moves
its running loss (`_loss_jump`). Into a spiking population, a spike the step's impulses cause
(θ(x⁻ − Δx) < 0, recorded before the synapse clears them) is pinned to the arrival: its jump is
λ⁻ = Jᵀλ⁺ and its G / ∇θ·Δx goes to the arrivals of its step (`adjoint.impulse_spike`, `_pulse`).
Refractory periods are not differentiated (the backward pass ignores them).

Readouts (dL_dy is the trainer's dL/dy for the neuron and example; the readout var is sampled at
steps k = 0..K-1): var y_k = v_k; avg_var y = Σ v_k / K; avg_var_exp_weight (mlGeNN, Nowotny 2024)
y = Σ exp(-k·dt/T)·v_k / K (mlGeNN's backward uses exp(-(k+1)·dt/T), an O(dt/T) difference);
sum_var y = Σ v_k; max_var y = v_{k*} at the argmax step; first_spike_time y = t_s of the first spike
(its ∂l_p/∂t_s = dL_dy at that spike only). spike_count has no gradient and is refused.

Spike-count regularisation (mlGeNN's `reg_lambda_upper/lower`, `reg_nu_upper`): at every spike of a
hidden neuron, λ gains r·∇θ with r = s·(N − ν·B)/B², N the neuron's spike count summed over the batch,
s the upper strength if N > ν·B else the lower one. As ∂l_p/∂t_s it is -(∇θ·f⁻)·r. mlGeNN's λ for LIF
is -λ/τ_m² in our convention, so its reg_lambda values correspond to ours divided by τ_m².
"""

from __future__ import annotations

import dataclasses

import sympy
from snnc.ir import names
from snnc.ir.diagnostics import Diagnostic, DiagnosticError, did_you_mean
from snnc.ir.model import Assign, Network, Population
from snnc.ir.symbols import dt as DT
from snnc.ir.symbols import is_zero, sym
from snnc.ir.symbols import w as W
from snnc.ir.training import (
    Adjoint,
    DelayGradient,
    ParamGradient,
    PopulationGradient,
    ReadoutDrive,
    Regularisation,
    SpikeRecord,
    TrainingIR,
    Transmission,
    WeightGradient,
)
from snnc.passes.manager import Pass

from . import adjoint as adj
from .param_gradient import param_gradients

EVENTPROP = "E-EVENTPROP"  # a model the EventProp derivation cannot handle
ALGO = "E-ALGO"

DLP, D, DL_DY = sym(names.DLP_DTS), sym(names.D), sym(names.DL_DY)
DRIVE_AFTER = sym(names.DRIVE_AFTER)
RATE = sym(names.CROSSING_RATE)  # placeholder for the guarded ∇θ·f⁻ while building the executed jump
RATE_RECORD = sym(names.CROSSING_RATE_RECORD)  # recorded at each spike: what RATE becomes
DEFAULT_MIN_CROSSING_RATE = 1e-3  # θ units per ms: for LIF (τ_m 20 ms), i_syn − v_thresh >= 0.02
K_STEP, K_TOTAL, T_DUR = sym(names.STEP), sym(names.STEPS), sym(names.DURATION)
N_SUM, BATCH, FIRST = sym(names.SPIKE_COUNT_SUM), sym(names.BATCH_SIZE), sym(names.IS_FIRST_SPIKE)


def _fail(msg: str, pop: Population | None, span=None, hint: str | None = None, code: str = EVENTPROP):
    where = f"population '{pop.name}' (model '{pop.model}'): " if pop is not None else ""
    raise DiagnosticError(Diagnostic(code, where + msg, span or (pop.span if pop else None), hint))


def gradient_path(network: Network) -> list[str]:
    """Non-input populations from which an output population can be reached."""
    reach = network.upstream_of_outputs()
    return [n for n, p in network.populations.items() if n in reach and p.role != "input"]


def readout_drive(network: Network, pop: Population) -> ReadoutDrive | None:
    ro = pop.readout
    if pop.role != "output" or ro is None:
        return None
    model = network.models[pop.model]
    if ro.kind == "first_spike_time":
        if not model.spikes:
            _fail("readout first_spike_time needs a model with a spike condition", pop, ro.span, code=ALGO)
        return ReadoutDrive(pop.name, ro.kind, None, None, spike=DL_DY * FIRST, when="first spike")
    if ro.kind == "spike_count":
        _fail(
            "readout spike_count has no EventProp gradient",
            pop,
            ro.span,
            "use first_spike_time or a voltage readout",
            ALGO,
        )
    var = ro.var or next(iter(model.states), None)
    if var not in model.states:
        _fail(f"readout variable '{var}' is not a state of the model", pop, ro.span, code=ALGO)
    per_timestep = network.train is not None and network.train.per_timestep_loss
    if per_timestep and (ro.kind not in ("avg_var", "sum_var") or ro.windowed):
        _fail(
            f"a per-timestep loss reads the readout variable at every step; readout {ro.kind}"
            + (" with a window" if ro.windowed else "")
            + " has none to read",
            pop,
            network.train.loss.span,
            "use readout = avg_var(v) or sum_var(v), or a per-trial loss",
            ALGO,
        )
    if ro.windowed:
        return _windowed_drive(pop, ro, var, network.dt)
    step_t = K_STEP * DT
    forms = {
        "var": (DL_DY * sympy.DiracDelta(sym("t") - step_t - DT), DL_DY, "every step; dL_dy of step k"),
        "avg_var": (DL_DY / T_DUR, DL_DY / K_TOTAL, "every step"),
        "avg_var_exp_weight": (
            DL_DY * sympy.exp(-sym("t") / T_DUR) / T_DUR,
            DL_DY * sympy.exp(-step_t / T_DUR) / K_TOTAL,
            "every step",
        ),
        "sum_var": (DL_DY / DT, DL_DY, "every step"),
        "max_var": (DL_DY * sympy.DiracDelta(sym("t") - sym(names.ARGMAX_TIME)), DL_DY, "argmax step only"),
    }
    if per_timestep:  # the loss is Σ_k l(v_k): each step's dL/dv_k drives the adjoint, as a var readout's
        cont, step, when = forms["var"]
        return ReadoutDrive(
            pop.name, "var", var, names.adjoint(var), cont, step, when=when + " (per-timestep loss)"
        )
    if ro.kind not in forms:
        _fail(f"readout '{ro.kind}' is not supported by eventprop", pop, ro.span, code=ALGO)
    cont, step, when = forms[ro.kind]
    return ReadoutDrive(pop.name, ro.kind, var, names.adjoint(var), cont, step, when=when)


def _windowed_drive(pop: Population, ro, var: str, dt: float) -> ReadoutDrive:  # noqa: ANN001
    """avg_var, sum_var or avg_var_exp_weight over the samples k of [start, stop) only
    (schedule_forward's window): the drive of the unwindowed readout at those steps and none
    elsewhere; avg_var divides by the window's samples, not the trial's, and avg_var_exp_weight
    weighs sample k by exp(-(k - start)/samples)."""
    start, stop = ro.window_steps(dt)
    end = K_TOTAL if stop is None else sympy.Min(stop, K_TOTAL)
    inside = sympy.Piecewise((1, sympy.And(K_STEP >= start, K_STEP < end)), (0, True))
    t = sym("t")
    during = sympy.Piecewise((1, sympy.And(t >= start * DT, t < end * DT)), (0, True))
    samples = 1 if ro.kind == "sum_var" else end - start
    cont = DL_DY / (DT if ro.kind == "sum_var" else samples * DT) * during
    if ro.kind == "avg_var_exp_weight":  # weighted from the window's start, in units of its length
        inside = inside * sympy.exp(-(K_STEP - start) / samples)
        cont = cont * sympy.exp(-(t - start * DT) / (samples * DT))
    when = f"steps [{start}, {'K' if stop is None else stop}) only"
    return ReadoutDrive(pop.name, ro.kind, var, names.adjoint(var), cont, DL_DY / samples * inside, when=when)


#: readouts that integrate their variable over the trial (or a window): their drive is a rate
SPREAD_READOUTS = frozenset({"avg_var", "avg_var_exp_weight", "sum_var"})


def _spread_drive(readout: ReadoutDrive | None) -> bool:
    """Whether the readout's drive enters the backward step spread over the step (see
    `adjoint.exact_backward`): for a loss that integrates the read variable, not for one of single
    samples (var, max_var; a per-timestep loss drives as `var`, `readout_drive`)."""
    return readout is not None and readout.var is not None and readout.kind in SPREAD_READOUTS


def _reg_settings(network: Network) -> dict[str, float] | None:
    spec = network.train
    args: dict = {}
    if spec.regularisation is not None:
        args.update(spec.regularisation.args)
    args.update({k: v for k, v in spec.algorithm.args.items() if k.startswith("reg_")})
    if not args:
        return None
    get = lambda *names, default=0.0: next((float(args[n]) for n in names if n in args), default)  # noqa: E731
    upper = get("reg_lambda_upper", "lambda_upper", "strength")
    lower = get("reg_lambda_lower", "lambda_lower", "strength", default=upper)
    nu = get("reg_nu_upper", "nu_upper", "nu")
    return {"upper": upper, "lower": lower, "nu": nu}


def _population_gradient(
    network: Network, pop: Population, reg: dict | None
) -> tuple[PopulationGradient, adj.Coupled]:
    model = network.models[pop.model]
    algo_args = network.train.algorithm.args if network.train is not None else {}
    min_rate = float(algo_args.get("min_crossing_rate", DEFAULT_MIN_CROSSING_RATE))
    try:
        c = adj.build_coupled(network, pop)
    except adj.Defeat as e:
        _fail(str(e), pop, e.span)
    readout = readout_drive(network, pop)
    drive_cont = {readout.var: readout.continuous} if readout and readout.var else {}
    adj_rhs = adj.adjoint_rhs(c, drive_cont)
    linear, culprit = adj.is_linear(c)
    lams = c.lams
    spread = _spread_drive(readout)
    q = None
    if linear:
        try:
            P, derived, q = adj.exact_backward(c, readout.var if spread else None)
        except adj.Defeat as e:
            _fail(str(e), pop, model.span)
        new = P * lams
        method, reason, trajectory = "exact", "linear system: transposed propagator (e^{A dt})^T", ()
    else:
        A = c.jacobian()
        bad = [e for e in A if e.atoms(sympy.DiracDelta)]
        if bad:
            _fail(f"the dynamics are not differentiable: d f/d x contains '{bad[0]}'", pop, model.span)
        new = lams + DT * (A.T * lams)
        derived = []
        used = set().union(*(e.free_symbols for e in A)) & set(c.x)
        trajectory = tuple(s for s in c.states if sym(s) in used)
        method = "euler"
        reason = f"non-linear system (d f/d x contains '{culprit}'): Euler step on the recorded trajectory"
    if q is not None:  # the readout drive spread over the step, inside the backward step
        new = new + q * readout.step
        reason += "; the readout drive spread evenly over the step (continuous-time loss integral)"
    backward = tuple(Assign(names.adjoint(s), "=", sympy.expand(new[i])) for i, s in enumerate(c.states))
    drive = ((readout.adjoint, readout.step),) if readout and readout.var and q is None else ()

    theta = on_thr = None
    params: list[ParamGradient] = []
    jump: tuple[Assign, ...] = ()
    records: tuple[SpikeRecord, ...] = ()
    pulse: dict = {}
    dlp_total: sympy.Expr = sympy.S.Zero
    regularisation = None
    if pop.role == "hidden" and not model.spikes:
        _fail(
            "a hidden population needs a spike condition: EventProp carries errors only through spikes",
            pop,
            model.span,
            "add `spike when ...` and `reset { ... }` to the model, or make the population an output",
        )
    if model.spikes:
        try:
            theta = adj.theta_of(model)
            lam_minus, denom = adj.spike_jump(c, theta, DLP, D)
            guarded_minus, _ = adj.spike_jump(c, theta, DLP, D, rate=RATE)
        except adj.Defeat as e:
            _fail(str(e), pop, e.span or model.span)
        if is_zero(c.close(denom)):
            _fail(
                f"∇θ·f⁻ = {denom} is identically zero: the spike condition '{model.spike}' never "
                "crosses with a non-zero rate, so spike times have no gradient",
                pop,
                model.span,
            )
        on_thr = adj.solve_on_threshold(c, theta)
        subs = {on_thr[0]: on_thr[1]} if on_thr else {}
        jump = tuple(
            Assign(names.adjoint(s), "=", sympy.factor(sympy.cancel(lam_minus[i].xreplace(subs))))
            for i, s in enumerate(c.states)
            if not is_zero(lam_minus[i] - lams[i])
        )
        # the executed division: the recorded crossing rate, floored (see names.CROSSING_RATE_RECORD)
        rate_floor = sympy.Max(RATE_RECORD, min_rate)
        guarded = tuple(
            Assign(a.target, "=", guarded_minus[c.states.index(names.adjoint_state(a.target))].xreplace(subs))
            for a in jump
        )
        guarded = tuple(Assign(a.target, "=", a.expr.xreplace({RATE: rate_floor})) for a in guarded)
        if readout is not None and readout.spike != 0:
            dlp_total += readout.spike
        if reg is not None and pop.role == "hidden":
            grad = sympy.Matrix([c.close(theta)]).jacobian(c.x)
            s = sympy.Piecewise((reg["upper"], N_SUM > reg["nu"] * BATCH), (reg["lower"], True))
            rate = s * (N_SUM - reg["nu"] * BATCH) / BATCH**2
            reg_dlp = sympy.expand(-RATE_RECORD * rate)  # divided by the (floored) rate: -r per spike
            dlp_total += reg_dlp
            regularisation = Regularisation(pop.name, reg["upper"], reg["lower"], reg["nu"], rate, reg_dlp)
            assert grad.rows == 1
        params = param_gradients(network, pop, c, theta, subs, rate_floor, DLP, D)
        pulse = _pulse(c, theta, pop, readout, params) if c.pulse else {}
        forward = set(c.x) | set(c.inputs)
        used = set().union(
            *(a.expr.free_symbols for a in jump),
            *(p.jump.free_symbols for p in params if p.jump is not None),
            dlp_total.free_symbols,
            *(a.expr.free_symbols for a in pulse.get("pulse_jump", ())),
            *(sympy.sympify(pulse.get(k, 0)).free_symbols for k in ("pulse_test", "pulse_cause")),
        )
        cleared = set().union(*(e.free_symbols for e in c.pulse.values())) - forward
        records = tuple(
            SpikeRecord(str(s), c.inputs.get(s, s), "value at the spike, used by the jump", at="update")
            for s in sorted(used & forward, key=str)
        ) + tuple(
            SpikeRecord(str(s), s, "the step's impulses, before the synapse clears them", at="update")
            for s in sorted(used & cleared, key=str)
        )
        crossing = c.close(denom).xreplace(subs)  # ∇θ·f⁻ on the threshold
        records = (
            SpikeRecord(names.SPIKE_TIME, sym("t"), "spike time (k+1)*dt"),
            SpikeRecord(
                names.CROSSING_RATE_RECORD,
                crossing,
                "∇θ·f⁻ on the threshold with the inputs the update read, the jump's divisor",
                at="update",
            ),
            *records,
        )
    else:
        params = param_gradients(network, pop, c, None, {}, None, DLP, D)
    return (
        PopulationGradient(
            population=pop.name,
            model=pop.model,
            role=pop.role,
            states=tuple(c.states),
            system=tuple((s, sympy.expand(e)) for s, e in zip(c.states, c.f, strict=True)),
            inputs=tuple((str(k), v) for k, v in c.inputs.items()),
            adjoints=tuple(Adjoint(names.adjoint(s), s, c.owners[s]) for s in c.states),
            adjoint_odes=tuple((names.adjoint(s), e) for s, e in zip(c.states, adj_rhs, strict=True)),
            method=method,
            reason=reason,
            derived=tuple(derived),
            backward=backward,
            drive=drive,
            trajectory=trajectory,
            theta=theta,
            on_threshold=(str(on_thr[0]), on_thr[1]) if on_thr else None,
            jump=jump,
            guarded_jump=guarded if model.spikes else (),
            min_crossing_rate=min_rate,
            dlp_dts=dlp_total,
            records=records,
            readout=readout,
            regularisation=regularisation,
            params=tuple(c.params),
            **pulse,
        ),
        c,
        params,
    )


def _pulse(
    c: adj.Coupled, theta: sympy.Expr, pop: Population, readout: ReadoutDrive | None, params: list
) -> dict:
    """The `PopulationGradient` fields of a spiking population with impulse inputs (see
    `adjoint.impulse_spike`); refuses what that rule does not cover yet, at the user's term."""
    if readout is not None and readout.var is not None:
        _fail(
            f"readout {readout.kind} reads '{readout.var}' of a spiking population with impulse (Delta) "
            "inputs: a spike an impulse causes moves the running loss with the arrival, which this "
            "derivation does not follow",
            pop,
            pop.readout.span if pop.readout else None,
            "read the population through a non-spiking output, or use first_spike_time",
            ALGO,
        )
    if params:
        name = params[0].param
        where = pop.trainable.get(name)
        _fail(
            f"trainable param '{name}' of a population with impulse (Delta) inputs: its spike term at a "
            "spike an impulse causes is not derived yet",
            pop,
            where.span if where is not None else None,
            "use a synapse with a state (Exponential) into this population, or keep the param fixed",
        )
    lam_caused, cause, test = adj.impulse_spike(c, theta, DLP, D)
    return {
        "pulse": tuple((s, c.pulse[s]) for s in c.states if s in c.pulse),
        "pulse_test": test,
        "pulse_jump": tuple(
            Assign(names.adjoint(s), "=", sympy.expand(lam_caused[i]))
            for i, s in enumerate(c.states)
            if not is_zero(lam_caused[i] - c.lams[i])
        ),
        "pulse_cause": cause,
    }


def _loss_jump(c: adj.Coupled, e: sympy.Matrix, readout: ReadoutDrive | None, pop: Population) -> sympy.Expr:
    """l(x) − l(x + e) per unit weight: a jump of the read variable itself moves the running loss
    (∂l/∂x = the drive of the next sample / dt, `DRIVE_AFTER`); zero when spikes jump other states."""
    if readout is None or readout.var is None or readout.var not in c.states:
        return sympy.S.Zero
    jump = e[c.states.index(readout.var)]
    if readout.kind == "max_var":  # a sample, not a rate: see `_max_follows`
        return sympy.S.Zero
    return -DRIVE_AFTER / DT * jump


def _max_follows(
    c: adj.Coupled, e: sympy.Matrix, readout: ReadoutDrive | None, pop: Population
) -> sympy.Expr:
    """The part of dL/dt_a of an arrival at t_a not scaled by its weight, where a max_var readout's
    maximum y sits at the jump of its variable v that the arrival makes, and so moves with it.

    After a rise (w e_v > 0, v falling before the next arrival): y = v(t_a⁺) = v(t_a⁻) + w e_v and
    dy/dt_a = f_v(x⁻). λ⁺ at the arrival already holds the maximum's kick k = dL/dy, so the usual
    λ⁺·(f⁻ − f⁺) counts k·(f_v⁻ − f_v⁺); what is left is k·f_v(x⁺). Before a fall (v rising into
    it): y = v(t_a⁻), dy/dt_a = f_v(x⁻), and λ⁺ holds no kick. Either way the term is k·f_v(x) with
    v = y (`names.MAX_VALUE`) and k = dL/dy where the maximum is a sample beside the arrival, else 0
    (`names.MAX_AT_ARRIVAL`). Two arrivals at one maximum (a tie) would each get it: then L has
    different slopes on either side and no gradient; with continuous spike times that has measure zero."""
    if readout is None or readout.kind != "max_var" or readout.var not in c.states:
        return sympy.S.Zero
    index = c.states.index(readout.var)
    if is_zero(e[index]):
        return sympy.S.Zero
    flow = c.f[index]
    others = sorted(str(x) for x in flow.free_symbols & set(c.x) if str(x) != readout.var)
    if others:
        _fail(
            f"readout max_var reads '{readout.var}', which impulses jump, so its maximum moves with the "
            f"arrival that made it at the rate d{readout.var}/dt = {flow}; that reads "
            f"{', '.join(repr(o) for o in others)}, whose value at the maximum is not recorded",
            pop,
            pop.readout.span if pop.readout else None,
            "use avg_var, avg_var_exp_weight, sum_var or var, or no other state in the read variable's equation",
            ALGO,
        )
    return sympy.expand(sym(names.MAX_AT_ARRIVAL) * flow.xreplace({sym(readout.var): sym(names.MAX_VALUE)}))


def _transmission(
    c: adj.Coupled, proj_name: str, pop: Population, readout: ReadoutDrive | None = None
) -> Transmission:
    """g_m with D = Σ_m [λ_m⁺·(f_m(x_m) − f_m(x_m + w e)) + l_m(x_m) − l_m(x_m + w e)] = Σ_m w g_m;
    needs f affine along e."""
    e = sympy.Matrix([c.jumps[proj_name].get(s, 0) for s in c.states])
    h = sym(names.JUMP_SIZE)
    shifted = c.f.xreplace({x: x + h * e[i] for i, x in enumerate(c.x)})
    curvature = [sympy.diff(r, h, 2) for r in shifted]
    bad = next((c.f[i] for i, k in enumerate(curvature) if not is_zero(k)), None)
    if bad is not None:
        _fail(
            f"the dynamics '{bad}' are not linear in the state that spikes of '{proj_name}' jump, so the "
            "backward transmission D cannot be written as Σ w·g",
            pop,
        )
    g = sympy.expand(-(c.lams.T * (c.jacobian() * e))[0] + _loss_jump(c, e, readout, pop))
    jump = tuple((s, e[i]) for i, s in enumerate(c.states) if e[i] != 0)
    cause = None
    if proj_name in c.pulsed_by:
        grad = sympy.Matrix([c.close(adj.theta_of(c.neuron))]).jacobian(c.x)
        cause = sympy.expand((grad * e)[0])
    return Transmission(proj_name, g, jump, cause, _max_follows(c, e, readout, pop))


def _delay_gradient(
    c: adj.Coupled, proj_name: str, pre: str, pop: Population, readout: ReadoutDrive | None
) -> DelayGradient:
    """dL/dd of one connection at its arrival s: moving s later by δs keeps the post state on its
    pre-jump trajectory for δs longer, δx(s + δs) = (f(x) − f(x + w e))·δs, so dL/ds = λ⁺·(f(x) −
    f(x + w e)), derived from the post population's coupled equations (for current-based LIF with
    an exponential synapse: w·(λ_I/τ_syn − λ_V/τ_m))."""
    e = sympy.Matrix([c.jumps[proj_name].get(s, 0) for s in c.states])
    if not is_zero(_max_follows(c, e, readout, pop)):
        _fail(
            f"the delays of '{proj_name}' train, and its impulses jump '{readout.var}', whose maximum "
            "max_var reads and which moves with the arrival: that delay gradient is not derived yet",
            pop,
            pop.readout.span if pop.readout else None,
            "keep these delays fixed, or use avg_var, sum_var or a synapse with a state (Exponential)",
            ALGO,
        )
    jumped = c.f.xreplace({x: x + W * e[i] for i, x in enumerate(c.x)})
    expr = sympy.expand((c.lams.T * (c.f - jumped))[0] + W * _loss_jump(c, e, readout, pop))
    per_weight = sympy.expand(sympy.diff(expr, W))
    if not is_zero(expr - W * per_weight) or W in per_weight.free_symbols:
        _fail(
            f"the dynamics are not linear in the state that spikes of '{proj_name}' jump, so its delay "
            f"gradient λ·(f(x) − f(x + w e)) = {expr} is not w times a value per post neuron",
            pop,
        )
    return DelayGradient(proj_name, pre, pop.name, expr, per_weight)


#: what `eventprop(...)` takes: the spike buffer, the crossing-rate floor and mlGeNN's regulariser names
OPTIONS = ("max_spikes", "min_crossing_rate", "reg_lambda_upper", "reg_lambda_lower", "reg_nu_upper")


def derive(network: Network) -> TrainingIR:
    spec = network.train
    unknown = sorted(set(spec.algorithm.args) - set(OPTIONS))
    if unknown:  # a misspelt option was ignored: max_spike = 50 trained with 500
        raise DiagnosticError(
            Diagnostic(
                "E-EVENTPROP-OPTION",
                f"unknown eventprop option '{unknown[0]}'",
                spec.algorithm.span,
                did_you_mean(unknown[0], OPTIONS) or f"options: {', '.join(OPTIONS)}",
            )
        )
    max_spikes = spec.algorithm.args.get("max_spikes", 500)
    if not isinstance(max_spikes, (int, float)) or int(max_spikes) != max_spikes or max_spikes < 1:
        raise DiagnosticError(
            Diagnostic(
                "E-VALUE",
                f"eventprop(max_spikes = {max_spikes}) must be a positive whole number",
                spec.algorithm.span,
            )
        )
    rate = spec.algorithm.args.get("min_crossing_rate", DEFAULT_MIN_CROSSING_RATE)
    if not isinstance(rate, int | float) or not rate > 0:  # 0 floors each spike's divisor at 0
        raise DiagnosticError(
            Diagnostic(
                "E-VALUE",
                f"eventprop(min_crossing_rate = {rate}) must be a positive rate",
                spec.algorithm.span,
                f"the default is {DEFAULT_MIN_CROSSING_RATE:g} per ms",
            )
        )
    reg = _reg_settings(network)
    pops: dict[str, PopulationGradient] = {}
    coupled: dict[str, adj.Coupled] = {}
    param_grads: dict[str, ParamGradient] = {}
    for name in gradient_path(network):
        pops[name], coupled[name], params = _population_gradient(network, network.populations[name], reg)
        param_grads |= {p.key: p for p in params}
    transmissions: dict[str, Transmission] = {}
    grads: dict[str, WeightGradient] = {}
    delays: dict[str, DelayGradient] = {}
    for proj in network.projections.values():
        if proj.post not in coupled:
            continue
        c = coupled[proj.post]
        readout = pops[proj.post].readout
        tr = _transmission(c, proj.name, network.populations[proj.post], readout)
        if network.populations[proj.pre].role != "input":
            transmissions[proj.name] = tr
        if proj.trainable:
            expr = sympy.Add(*(sym(names.adjoint(s)) * k for s, k in tr.jump))
            grads[proj.name] = WeightGradient(proj.name, proj.pre, proj.post, expr)
        if proj.delay_trainable is not None and proj.name in c.pulsed_by:
            _fail(
                f"the delays of '{proj.name}' train, but its impulses (a Delta synapse) can cause spikes of "
                f"'{proj.post}', pinned to the arrival: that delay gradient is not derived yet",
                network.populations[proj.post],
                getattr(proj.delay_trainable, "span", None) or proj.span,
                "keep these delays fixed, or use a synapse with a state (Exponential)",
            )
        if proj.delay_trainable is not None:
            delays[proj.name] = _delay_gradient(
                c, proj.name, proj.pre, network.populations[proj.post], readout
            )
    notes = (
        "spike at (k+1)*dt, delivered at the same instant; records after update, before reset",
        "backward step: transmissions and jumps with lambda+, then readout drive, then propagate",
    )
    return TrainingIR("eventprop", int(max_spikes), pops, transmissions, grads, notes, param_grads, delays)


def eventprop(network: Network) -> Network:
    """The pass: attach the derived `TrainingIR` (no-op when the network does not train with eventprop)."""
    if network.train is None or network.train.algorithm.name != "eventprop":
        return network
    return dataclasses.replace(network, training=derive(network), stage="training")


EVENTPROP_PASS = Pass("eventprop", eventprop, "derive EventProp adjoints, jumps and weight gradients")


def _register() -> None:
    from snnc.passes.pipeline import register_gradient_pass

    register_gradient_pass("eventprop", EVENTPROP_PASS)


_register()
