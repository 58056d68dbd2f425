"""The genn backend's emitted module: valid Python, valid C in every GeNN code string, comments
naming IR entities, weights matching the C backend's draw, and the clear error without pygenn."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from snnc.backends.common import dense_equivalent, draw_connectivity, plan_network
from snnc.backends.genn import emit_genn, generate, have_pygenn, load_genn
from snnc.ir.diagnostics import DiagnosticError
from snnc.ir.kernel import Local

from snnc.api import lower

from .genn_check import check_c, model_calls, ttfs_regularised_source

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.snn"))
VALID = ROOT / "tests" / "frontend" / "valid"

LAYERS = """
use std.{SpikeInput, PoissonInput, LIF, LeakyIntegrate, Exponential, Delta}
network layers {
    input  x   = SpikeInput((8, 8, 1))
    input  q   = PoissonInput(10)
    hidden c   = LIF((6, 6, 4), tau_refrac = 2 ms)
    hidden p   = LIF((3, 3, 4))
    hidden s   = LIF(36)
    hidden o2o = LIF(36)
    output out = LeakyIntegrate(3, readout = READOUT)
    x -> c   : Conv2D(filters = 4, kernel = 3), Exponential(tau = 5 ms)
    c -> p   : AvgPool2D(pool = 2), Exponential(tau = 5 ms)
    p -> s   : Sparse(p = 0.3, weight = Normal(mean = 0.5, sd = 0.1)), Delta()
    q -> s   : Dense(weight = Uniform(low = 0.0, high = 1.0), delay = 2 ms), Exponential(tau = 5 ms)
    s -> o2o : OneToOne(weight = Constant(value = 1.5)), Exponential(tau = 5 ms)
    o2o -> out : Dense(weight = Normal(mean = 0.9, sd = 0.1)), Exponential(tau = 5 ms)
}
"""


def _layers(readout: str = "avg_var"):
    return lower(LAYERS.replace("READOUT", readout))


def _check(network, tmp_path: Path) -> str:
    code, _, _ = generate(network)
    compile(code, "<genn module>", "exec")
    calls = model_calls(code)
    assert calls, "no GeNN models in the module"
    check_c(calls, tmp_path)
    return code


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_emit_valid_python_and_c(path: Path, tmp_path: Path) -> None:
    network = lower(path)
    code = _check(network, tmp_path)
    assert network.training is not None
    assert f"TRAINING = {network.training.algorithm!r}" in code
    _check(dataclasses.replace(network, training=None), tmp_path)  # the inference module too


@pytest.mark.parametrize("readout", ["var", "avg_var", "avg_var_exp_weight", "sum_var", "max_var"])
def test_every_connectivity_and_readout(readout: str, tmp_path: Path) -> None:
    network = _layers(readout)
    code = _check(network, tmp_path)
    delay = plan_network(network).projections["q_to_s"].delay_steps
    assert delay > 0 and f'syns["q_to_s"].axonal_delay_steps = {delay}' in code
    assert '"PROCEDURAL_KERNELG"' in code and 'init_sparse_connectivity("Conv2D"' in code
    assert 'init_var("Kernel", {})' in code
    assert code.count('        "SPARSE",') == 3  # avg pool, sparse, one-to-one
    assert "gennrand_uniform()" in code
    assert f"readout {readout}" in code


def test_spike_readouts_and_refractory(tmp_path: Path) -> None:
    src = (VALID / "one_to_one_shape.snn").read_text()
    src = src.replace("hidden h = LIF(4)", "output h = LIF(4, readout = first_spike_time)")
    code = _check(lower(src), tmp_path)
    # the crossing interpolated within the step, once: at the first spike (r_value starts at inf)
    assert (
        "l_crossing = fmin(1.0, fmax(0.0, (l_theta0 < 0.0 && l_theta0 < l_theta1 ? l_theta0/(l_theta0 - l_theta1) : 1.0)))"
        in code
    )
    assert (
        "r_value = (l_spiked == 1 && r_value == (1.0 / 0.0) ? 1.0*round(t / dt) + 1.0*l_crossing : r_value)"
        in code
    )
    code = _check(_layers("avg_var"), tmp_path)
    assert "l_spiked = (l_refractory == 0 && l_v__held >= 1.0 ? 1 : 0);" in code  # c has tau_refrac = 2 ms
    refr = plan_network(_layers()).populations["c"].refractory_steps
    assert refr > 0 and f"q_refrac = (l_spiked == 1 ? {refr} : l_countdown - l_refractory);" in code


def test_blocks_name_their_ir_entities(tmp_path: Path) -> None:
    network = lower(EXAMPLES[-1])
    code = _check(network, tmp_path)
    for pop in network.populations.values():
        assert f"# population {pop.name}: " in code
    for proj in network.projections.values():
        assert f"# projection {proj.name}: " in code
    size = network.populations["h"].size
    assert f"// population h: {size} x LIF: Discrete IR update (exact" in code


def test_weights_file_matches_the_c_backends_draw(tmp_path: Path) -> None:
    network = _layers()
    paths = emit_genn(network, tmp_path)
    assert [p.name for p in paths] == ["layers_genn.py", "layers_genn_init.npz", "manifest.json"]
    saved = dict(np.load(paths[1]))
    plan = plan_network(network)
    drawn = draw_connectivity(network, plan, np.random.default_rng(plan.seed))
    for name, pp in plan.projections.items():
        expected = dense_equivalent(pp, drawn[name])
        got = np.zeros_like(expected)
        if f"{name}.pre" in saved:
            got[saved[f"{name}.pre"], saved[f"{name}.post"]] = saved[name]
        elif pp.kind == "dense":
            got = saved[name].reshape(pp.num_pre, pp.num_post)
        else:  # conv2d: kernel in GeNN's [KH][KW][C][F] order
            got = dense_equivalent(pp, {"weight": saved[name].reshape(pp.weight_shape)})
        np.testing.assert_allclose(got, expected, err_msg=name)


def test_scaled_on_pre_rides_on_insyn(tmp_path: Path) -> None:
    src = (VALID / "one_to_one_shape.snn").read_text().replace("on_pre { i += w }", "on_pre { i += 2 * w }")
    code = _check(lower(src), tmp_path)
    assert "y_i__x_to_h += 2.0 * q_in__x_to_h;" in code


@pytest.mark.skipif(have_pygenn(), reason="pygenn is installed: the missing-pygenn error cannot occur")
def test_load_without_pygenn_is_one_clear_sentence() -> None:
    with pytest.raises(DiagnosticError) as info:
        load_genn(_layers())
    diag = info.value.diagnostics[0] if hasattr(info.value, "diagnostics") else info.value.diagnostic
    assert diag.code == "E-GENN-MISSING"
    assert "needs pygenn" in diag.message and "Optional extras" in diag.message


def test_cli_emit_genn(tmp_path: Path) -> None:
    from snnc.cli import main

    rc = main(["compile", str(EXAMPLES[0]), "--emit", "genn", "-o", str(tmp_path)])
    assert rc in (0, None)
    module = next(tmp_path.glob("*_genn.py"))
    compile(module.read_text(), str(module), "exec")


# --------------------------------------------------------------------------------------------------
# Wiring: build_model against a recording stand-in for pygenn's API
# --------------------------------------------------------------------------------------------------


def _vars_of(target, kind: str) -> dict[str, str]:  # noqa: ANN001
    from . import fake_pygenn as fake

    if isinstance(target, fake.NeuronPop):
        model = target.model
        names = {**model.names("vars")}
        return names
    if isinstance(target, fake.SynapsePop):
        model = target.psm[1] if kind == "psm" else target.wum[1]
        return model.names("vars")
    return target.model.names("vars")  # a custom update


def _build_with_fake(network, tmp_path: Path, monkeypatch):  # noqa: ANN001, ANN202
    import importlib.util

    from . import fake_pygenn as fake

    fake.install(monkeypatch)
    paths = emit_genn(network, tmp_path)
    spec = importlib.util.spec_from_file_location(f"genn_mod_{network.name}", paths[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model, pops, syns, updates = module.build_model(batch_size=4)
    return module, model


def _check_wiring(model) -> None:  # noqa: ANN001
    for pop in model.neurons.values():
        declared = pop.model.names("vars")
        assert set(pop.vars) == set(declared), (
            f"{pop.name}: initial values {set(pop.vars)} != vars {set(declared)}"
        )
        assert set(pop.params) == set(pop.model.names("params")), pop.name
        for egp in pop.extra_global_params.values():
            assert egp.values is not None, f"{pop.name}: an EGP without an initial value"
    for sg in model.synapses.values():
        wum, psm = sg.wum[1], sg.psm[1]
        assert set(sg.wum[3]) == set(wum.names("vars")), sg.name
        assert set(sg.wum[4]) == set(wum.names("pre_vars")), sg.name
        assert set(sg.psm[3]) == set(psm.names("vars")), sg.name
        post_inputs = {n for n, _, _ in sg.post.model.kwargs.get("additional_input_vars", [])}
        assert sg.post_target_var in post_inputs, (
            f"{sg.name}: no input {sg.post_target_var} on {sg.post.name}"
        )
        if sg.pre_target_var != "Isyn":
            pre_inputs = {n for n, _, _ in sg.pre.model.kwargs.get("additional_input_vars", [])}
            assert sg.pre_target_var in pre_inputs, sg.name
        for refs, model_refs, target in (
            (sg.wum[5], wum.names("post_neuron_var_refs"), sg.post),
            (sg.psm[4], psm.names("neuron_var_refs"), sg.post),
        ):
            assert set(refs) == set(model_refs), sg.name
            for name, ref in refs.items():
                assert ref.target is target
                assert ref.var in target.model.names("vars"), (
                    f"{sg.name}: {ref.var} not a var of {target.name}"
                )
                assert target.model.names("vars")[ref.var] == model_refs[name]
        if sg.matrix_type == "SPARSE" and sg.connectivity is None:
            assert sg.sparse is not None and len(sg.sparse[0]) == len(sg.wum[3]["g"])
        if sg.connectivity is not None:  # a kernel: weights from the kernel EGP on the CPU backend
            assert sg.vars["g"].extra_global_params["kernel"].values is not None
    for cu in model.updates.values():
        declared = cu.model.names("var_refs")
        assert set(cu.var_refs) == set(declared), cu.name
        for name, ref in cu.var_refs.items():
            owner_vars = _vars_of(ref.target, ref.kind)
            assert ref.var in owner_vars, f"{cu.name}: {ref.var} is not a var of its target"
            assert owner_vars[ref.var] == declared[name], f"{cu.name}: type of {name}"
        assert set(cu.vars) == set(cu.model.names("vars")), cu.name


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_build_model_wiring_of_examples(path: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    if have_pygenn():
        pytest.skip("the real pygenn is installed; the stand-in would shadow it")
    module, model = _build_with_fake(lower(path), tmp_path, monkeypatch)
    _check_wiring(model)
    groups = {cu.group for cu in model.updates.values()}
    assert "Reset" in groups and "GradientReduce" in groups
    assert set(groups) == set(module.UPDATE_GROUPS)  # no group listed without a custom update


def test_build_model_wiring_of_trainable_delays(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The delays' synapse var gets its initial values, its gradient a reduce update of its own."""
    if have_pygenn():
        pytest.skip("the real pygenn is installed; the stand-in would shadow it")
    src = (ROOT / "tests" / "golden" / "sources" / "sparse_delay_recurrent.snn").read_text()
    src = src.replace("delay = 1 ms)", "delay = Trainable(Uniform(0.5 ms, 2 ms), max = 3 ms))")
    module, model = _build_with_fake(lower(src), tmp_path, monkeypatch)
    _check_wiring(model)
    sg = model.synapses["h_to_h"]
    assert sg.max_dendritic_delay_timesteps == 7 and sg.axonal_delay_steps == 0
    assert len(sg.wum[3]["p_delay"]) == len(sg.wum[3]["g"])
    assert module.DELAYS["delay_h_to_h"]["var"] == "p_delay"
    assert {"reduce_h_to_h", "reduce_delay_h_to_h"} <= set(model.updates)


def test_build_model_wiring_of_layers(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    if have_pygenn():
        pytest.skip("the real pygenn is installed; the stand-in would shadow it")
    _, model = _build_with_fake(_layers("max_var"), tmp_path, monkeypatch)
    _check_wiring(model)
    assert model.synapses["x_to_c"].connectivity[1] == "Conv2D"
    assert model.synapses["x_to_c"].matrix_type == "SPARSE"  # CPU: no procedural connectivity
    assert model.backend == "single_threaded_cpu"  # the stand-in has no CUDA backend


# --------------------------------------------------------------------------------------------------
# Training code: what EventProp and e-prop put where
# --------------------------------------------------------------------------------------------------


def _example(stem: str):  # noqa: ANN202
    return lower(next(p for p in EXAMPLES if p.stem == stem))


def test_eventprop_pieces_land_in_the_right_models() -> None:
    network = _example("yinyang_eventprop")
    code, _, ctx = generate(network)
    k = plan_network(network).num_steps
    h = ctx.population("h").model
    assert {"ev__t_s", "ev_i_syn"} <= {v.name for v in h.extra_global_params}
    assert ("q_D", "scalar", 0.0) in h.additional_input_vars
    # the jump, with the recorded input and D (the executed form, crossing rate floored if guarded)
    jump = h.code["sim_code"].split("if (q_jump) {")[1].split("q_jump = 0;")[0]
    assert "ev_i_syn[q_off + q_jidx]" in jump and "q_D" in jump and "a_v = l_jumped0;" in jump
    assert f"((int)round(t / dt) < {k}) ? (q_flag != 0)" in h.code["threshold_condition_code"]
    assert "l_spiked = (l_refractory == 0 && l_v__held >= 1.0 ? 1 : 0);" in h.code["sim_code"]
    wum = ctx.projection("h_to_out").wum
    assert "addToPre(l_g*g);" in wum.code["pre_spike_syn_code"]
    assert "const scalar l_lambda1 = a_i__h_to_out;" in wum.code["pre_spike_syn_code"]
    assert "dg += l_e;" in wum.code["pre_spike_syn_code"]
    assert ctx.projection("h_to_out").pre_target_var == "q_D"
    assert ctx.projection("x_to_h").pre_target_var is None  # inputs need no D
    # records read the synapse state the step's update read (before its decay), kept in the post neuron
    assert "ev_i_syn[q_roff + q_ns] = q_i_syn;" in h.code["reset_code"]
    assert "y_i__x_to_h = l_ny_x_to_h__i;" in h.code["sim_code"]
    assert "q_i_syn = l_ys_x_to_h__i;  // record i_syn" in h.code["sim_code"]
    out = ctx.population("out").model.code["sim_code"]
    # avg_var_exp_weight's drive, spread over the step inside the backward step (passes/adjoint.py)
    assert "l_dly = t_dL_dy;" in out and re.search(r"l_back0 = [^;]*l_dly\*exp\(", out)
    # the jump divides by the crossing rate recorded at the spike (∇θ·f⁻ on the threshold)
    assert "ev__crossing_rate_rec[q_off + q_jidx]" in jump
    assert 'TRAINING = "eventprop"' in code.replace("'", '"')


def _ttfs_regularised():  # noqa: ANN202
    return lower(ttfs_regularised_source())


def test_eventprop_first_spike_time_and_regulariser(tmp_path: Path) -> None:
    network = _ttfs_regularised()
    assert network.training.populations["h"].regularisation is not None
    code, _, ctx = generate(network)
    check_c(model_calls(code), tmp_path)
    out = ctx.population("out").model.code["sim_code"]
    assert "(q_jidx == 0 ? 1 : 0)" in out  # dlp/dts only at the first spike
    h = ctx.population("h").model
    # the batch's spike counts and its number of real trials, both supplied by the runtime
    assert "t_spike_count_sum" in h.code["sim_code"] and "q_B[0]" in h.code["sim_code"]
    assert ("t_spike_count_sum", "scalar") in [(v.name, v.type) for v in h.vars]
    assert ("q_B", "scalar*") in [(v.name, v.type) for v in h.extra_global_params]


def test_eventprop_delays_on_the_gradient_path_go_through_the_dendritic_buffer(tmp_path: Path) -> None:
    """A delayed projection whose backward pass GeNN prints delivers through the dendritic delay
    buffer (its synapse code runs right after the spike, in both halves), and its backward code reads
    the post adjoints of the arrival step: `a_v[d]`, d GeNN steps back."""
    src = (ROOT / "examples" / "yinyang_eventprop.snn").read_text()
    src = src.replace(
        "Dense(weight = Normal(mean = 0.93, sd = 0.1))",
        "Dense(weight = Normal(mean = 0.93, sd = 0.1), delay = 1 ms)",
    )
    network = lower(src)
    d = round(1.0 / network.dt)
    code, _, ctx = generate(network)
    check_c(model_calls(code), tmp_path)
    s = ctx.projection("h_to_out")
    assert s.delay_steps == 0 and s.max_dendritic_delay == d + 1
    syn = s.wum.code["pre_spike_syn_code"]
    assert f"addToPostDelay(g, {d});" in syn and "addToPost(g)" not in syn
    assert f"a_v[{d}]" in syn and f"+ {d} < {network.num_steps}" in syn
    assert f'syns["h_to_out"].max_dendritic_delay_timesteps = {d + 1}' in code
    assert "axonal_delay_steps" not in code


def test_a_backward_entry_out_of_genns_step_order_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """GeNN runs synapse code before neuron code in every step, so a kernel whose backward entry
    runs a jump before an event walk over a projection's rows has no GeNN form: the backward printer
    says so by phase name instead of printing the two in the wrong order."""
    from snnc.backends.genn import emit

    network = _example("yinyang_eventprop")
    scheduled = emit._kernel

    def reordered(net, plan):  # noqa: ANN001, ANN202
        kernel = scheduled(net, plan)
        entries = []
        for entry in kernel.entries:
            if entry.steps == "backward":
                late = [p for p in entry.per_step if p.startswith("events_")]
                per_step = (*[p for p in entry.per_step if p not in late], *late)
                entry = dataclasses.replace(entry, per_step=per_step)
            entries.append(entry)
        return dataclasses.replace(kernel, entries=tuple(entries))

    generate(network)  # as scheduled: prints
    monkeypatch.setattr(emit, "_kernel", reordered)
    with pytest.raises(DiagnosticError) as info:
        generate(network)
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.code == "E-GENN-UNSUPPORTED"
    assert "events_x_to_h" in diagnostic.message and "synapse updates first" in diagnostic.message


def test_eprop_pieces_land_in_the_right_models() -> None:
    """The e-prop kernel's learning phases, mapped onto GeNN's step order (learn_printer.py): the
    hidden synapse loops run two GeNN steps late (after the learning signal, which the output
    synapses sum into h through addToPre), reading the hidden neurons' values of their step from
    copies; the output reductions and error are custom updates run after each step."""
    network = _example("eprop_digits")
    code, _, ctx = generate(network)
    k = plan_network(network).num_steps
    wum = ctx.projection("x_to_h").wum
    dyn = wum.code["synapse_dynamics_code"]
    assert f"if (q_s >= 2 && q_s < {k + 2})" in dyn and "dg += " in dyn and "q__L" in dyn
    assert "q__psi__d1" in dyn and "q__psi" not in dyn.replace("q__psi__d1", "")
    assert {"e__eps__x_to_h__a", "e__ebar__x_to_h", "dg"} <= {v.name for v in wum.vars}
    out_wum = ctx.projection("h_to_out").wum.code["synapse_dynamics_code"]
    assert "addToPre(" in out_wum and f"if (q_s >= 1 && q_s < {k + 1})" in out_wum
    assert ctx.projection("h_to_out").pre_target_var == "q__fb__h_to_out"
    # softmax: max, then sum, in separate groups (the sum reads the max), then the error and dL/dbias
    assert [g for g, _ in ctx.step_updates] == ["StepUpdate1", "StepUpdate2", "StepUpdate3"]
    access = {cu.group: [v.access for v in cu.model.vars] for cu in ctx.custom_updates}
    assert access["StepUpdate1"] == ["CustomUpdateVarAccess.REDUCE_NEURON_MAX"]
    assert access["StepUpdate2"] == ["CustomUpdateVarAccess.REDUCE_NEURON_SUM"]
    assert "EXTRA_STEPS = 2" in code and "ONLINE = True" in code


def test_an_eprop_order_genn_cannot_keep_is_refused_by_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    """GeNN keeps one spike flag per neuron, which its step overwrites: a kernel whose e-prop entry
    reads h's spikes of the previous step (z_pre) after h's step has run has no GeNN form, and the
    learning printer names the phase instead of printing a read of the wrong step's spikes."""
    from snnc.backends.genn import emit

    network = _example("eprop_pattern")
    scheduled = emit._kernel

    def reordered(net, plan):  # noqa: ANN001, ANN202
        kernel = scheduled(net, plan)
        entries = []
        for entry in kernel.entries:
            if entry.name == "eprop_run":
                order = [p for p in entry.per_step if p != "zpre__h_to_h"]
                order.insert(order.index("learn_step__h") + 1, "zpre__h_to_h")
                entry = dataclasses.replace(entry, per_step=tuple(order))
            entries.append(entry)
        return dataclasses.replace(kernel, entries=tuple(entries))

    generate(network)  # as scheduled: prints
    monkeypatch.setattr(emit, "_kernel", reordered)
    with pytest.raises(DiagnosticError) as info:
        generate(network)
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.code == "E-GENN-UNSUPPORTED"
    assert "zpre__h_to_h" in diagnostic.message and "learn_step__h" in diagnostic.message


def test_eprop_through_a_delay_keeps_the_pre_spike_flags_and_delivers_through_the_dendritic_buffer() -> None:
    """e-prop's presynaptic spikes of a projection delayed by d steps are those of step k - 1 - d: the
    pre population's neuron code keeps its spike flag's history and the loop reads the flag of d + 1
    steps ago; the projection delivers through GeNN's dendritic delay buffer (no axonal delay, so its
    learning synapse code reads the pre neurons' vars as they are now). The gradients equal C's in
    tests/backends/test_genn_eprop_delays.py."""
    from snnc.backends import check_supported

    src = (ROOT / "examples" / "eprop_pattern.snn").read_text()
    old = "h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.0625))"
    assert old in src
    network = lower(src.replace(old, old[:-1] + ", delay = 2 ms)"))
    assert check_supported(network, "genn") == [] and check_supported(network, "c") == []
    _, _, ctx = generate(network)
    h_to_h = ctx.projection("h_to_h")
    assert h_to_h.delay_steps == 0 and h_to_h.max_dendritic_delay == 3
    assert "addToPostDelay(g, 2);" in h_to_h.wum.code["pre_spike_syn_code"]
    sim = ctx.population("h").model.code["sim_code"]
    shifts = ["q_flag__d3 = q_flag__d2;", "q_flag__d2 = q_flag__d1;", "q_flag__d1 = q_flag;"]
    at = [sim.index(line) for line in shifts]
    assert at == sorted(at) and at[-1] < sim.index("q_s >= 3 && q_flag__d3 != 0")
    x_sim = ctx.population("x").model.code["sim_code"]  # x_to_h has no delay: the flag itself
    assert "q_s >= 1 && q_spiked != 0" in x_sim and "q_spiked__d" not in x_sim
    assert ctx.projection("x_to_h").max_dendritic_delay == 0


def test_eprop_random_feedback_matrix_is_drawn(tmp_path: Path) -> None:
    src = (ROOT / "examples" / "eprop_pattern.snn").read_text().replace("eprop(", "eprop(feedback = random, ")
    code, arrays, ctx = generate(lower(src))
    feedback = ctx.projection("h_to_out").wum.code["synapse_dynamics_code"]
    assert "addToPre(b_fb*q__E)" in feedback.replace("q__E*b_fb", "b_fb*q__E")
    assert arrays["h_to_out.feedback"].shape == arrays["h_to_out"].shape
    assert not np.allclose(arrays["h_to_out.feedback"], arrays["h_to_out"])
    check_c(model_calls(code), tmp_path)


def test_the_genn_backend_is_chosen_by_argument_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from snnc.backends.genn import BACKEND_ENV, chosen_backend

    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert chosen_backend() is None  # the module then picks CUDA when pygenn has it
    monkeypatch.setenv(BACKEND_ENV, "single_threaded_cpu")
    assert chosen_backend() == "single_threaded_cpu"
    assert chosen_backend("cuda") == "cuda"
    monkeypatch.setenv(BACKEND_ENV, "opencl")
    with pytest.raises(DiagnosticError) as err:
        chosen_backend()
    assert err.value.diagnostics[0].code == "E-GENN-BACKEND" and BACKEND_ENV in str(err.value)


def test_trainable_delays_are_a_synapse_var_read_back_per_connection(tmp_path: Path) -> None:
    """Trainable delays: the ms are the synapse var `p_delay` (set like weights, `delay_<P>`), each
    connection's steps a local computed from it, delivered through the dendritic delay buffer; the
    backward code reads the post adjoints that many steps back and sums the delay gradient."""
    src = (ROOT / "tests" / "golden" / "sources" / "sparse_delay_recurrent.snn").read_text()
    src = src.replace("delay = 1 ms)", "delay = Trainable(Uniform(0.5 ms, 2 ms), max = 3 ms))")
    network = lower(src)
    code, arrays, ctx = generate(network)
    check_c(model_calls(code), tmp_path)
    s = ctx.projection("h_to_h")
    assert ("p_delay", "scalar", "VarAccess.READ_ONLY") in [(v.name, v.type, v.access) for v in s.wum.vars]
    assert s.max_dendritic_delay == round(3.0 / network.dt) + 1
    syn = s.wum.code["pre_spike_syn_code"]
    assert syn.count("const int l_delay_steps = ") == 2  # forward and backward halves
    assert "addToPostDelay(g, l_delay_steps);" in syn and "a_v[l_delay_steps]" in syn
    assert "g_delay += " in syn and "addToPre(" in syn
    assert ctx.delays == {
        "delay_h_to_h": {
            "projection": "h_to_h",
            "var": "p_delay",
            "trainable": {"min": 0.0, "max": 3.0, "lr_scale": 1.0, "per_neuron": True},
        }
    }
    assert arrays["delay_h_to_h"].shape == arrays["h_to_h"].shape
    assert 0.5 <= arrays["delay_h_to_h"].min() and arrays["delay_h_to_h"].max() <= 2.0
    assert "reduce_delay_h_to_h" in code and "DELAYS = " in code


def _with_lets(body: tuple, name: str, value) -> tuple:  # noqa: ANN001
    """`body` with every Let of the local `name` set to `value` (a function of the old Let)."""
    from snnc.ir.kernel import Let, Loop

    out = []
    for st in body:
        if isinstance(st, Let) and st.local.name == name:
            st = dataclasses.replace(st, expr=value(st))
        elif isinstance(st, Loop):
            st = dataclasses.replace(st, body=_with_lets(st.body, name, value))
        out.append(st)
    return tuple(out)


#: each local of a delay ring's element, moved off the arrival: the backward read at this step's
#: row, the forward offsets all 0, the apply loop reading the first element of the ring
_MOVED = {
    "__slot": lambda st: Local("__now", integer=True, nonnegative=True),
    "__offset": lambda st: 0,
    "__arrived": lambda st: st.expr.base[st.expr.indices[0], 0],
}


@pytest.mark.parametrize(
    ("phase", "local"),
    [("events_h_to_h", "__slot"), ("deliver_h_to_h", "__offset"), ("deliver_h_to_h", "__arrived")],
)
def test_a_delay_ring_not_read_at_the_arrival_is_refused(phase: str, local: str, monkeypatch) -> None:  # noqa: ANN001
    """GeNN reads a connection's post values back by its delay, which stands for the kernel's rings
    only when they are read (backward) or filled and emptied (forward) at the connection's arrival
    step: a kernel that uses another element is refused by name, never printed as if it were the
    arrival."""
    from snnc.backends.genn import emit

    src = (ROOT / "tests" / "golden" / "sources" / "sparse_delay_recurrent.snn").read_text()
    network = lower(src.replace("delay = 1 ms)", "delay = Trainable(Uniform(0.5 ms, 2 ms), max = 3 ms))"))
    scheduled = emit._kernel

    def this_step(net, plan):  # noqa: ANN001, ANN202
        kernel = scheduled(net, plan)
        phases = tuple(
            dataclasses.replace(p, body=_with_lets(p.body, local, _MOVED[local])) if p.name == phase else p
            for p in kernel.phases
        )
        return dataclasses.replace(kernel, phases=phases)

    generate(network)  # as scheduled: prints
    monkeypatch.setattr(emit, "_kernel", this_step)
    with pytest.raises(DiagnosticError) as info:
        generate(network)
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.code == "E-GENN-UNSUPPORTED" and "h_to_h" in diagnostic.message
    assert ("ring read" if local == "__slot" else "delay buffer") in diagnostic.message


def _prepare_changed(kernel, change):  # noqa: ANN001, ANN202
    """`kernel` with the body of its prepare phase replaced by `change(body)`."""
    from snnc.ir.kernel import PhaseKind

    phases = tuple(
        dataclasses.replace(p, body=change(p.body)) if p.kind == PhaseKind.PREPARE else p
        for p in kernel.phases
    )
    return dataclasses.replace(kernel, phases=phases)


_REFUSED = {
    "offset without the post neuron": "delay buffer",
    "a second writer of the offsets": "not computed once per batch",
    "a loop over neurons": "prepare phase",
}


@pytest.mark.parametrize("change", sorted(_REFUSED))
def test_ring_offsets_genn_cannot_stand_for_are_refused(change: str, monkeypatch) -> None:  # noqa: ANN001
    """GeNN computes a connection's delay in steps from the prepare loop's first store and checks the
    rings' elements through the offsets its later stores make: offsets that leave out the post
    neuron put every connection's arrival into the slot's first element, which GeNN's read back by
    the delay does not stand for; offsets written elsewhere too, or a prepare phase computing
    anything else, have no GeNN form. All are refused by name, never printed as if they were the
    delays' offsets."""
    from snnc.backends.genn import emit
    from snnc.ir.kernel import Loop, Neurons, Store

    src = (ROOT / "tests" / "golden" / "sources" / "sparse_delay_recurrent.snn").read_text()
    network = lower(src.replace("delay = 1 ms)", "delay = Trainable(Uniform(0.5 ms, 2 ms), max = 3 ms))"))
    scheduled = emit._kernel

    def changed(net, plan):  # noqa: ANN001, ANN202
        kernel = scheduled(net, plan)

        def change_body(body: tuple) -> tuple:
            (loop,) = body
            first, second = loop.body
            j = loop.vars["j"]
            if change == "offset without the post neuron":
                assert second.expr.has(j)
                return (
                    dataclasses.replace(
                        loop, body=(first, dataclasses.replace(second, expr=second.expr.subs(j, 0)))
                    ),
                )
            if change == "a second writer of the offsets":
                return (*body, Loop(loop.space, (Store(first.target, 0),), loop.vars))
            scratch = next(a for a in kernel.arrays if a.owner == "h" and len(a.shape) == 1)
            return (*body, Loop(Neurons("h"), (Store(scratch[j], 0),), {"j": j}))

        return _prepare_changed(kernel, change_body)

    generate(network)  # as scheduled: prints
    monkeypatch.setattr(emit, "_kernel", changed)
    with pytest.raises(DiagnosticError) as info:
        generate(network)
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.code == "E-GENN-UNSUPPORTED"
    assert ("h_to_h" if change != "a loop over neurons" else "phase 'prepare'") in diagnostic.message
    assert _REFUSED[change] in diagnostic.message


@pytest.mark.parametrize("example", ["shd_delays", "yinyang_eventprop", "eprop_pattern"])
def test_offsets_into_per_trial_buffers_are_64_bit(example: str) -> None:
    """Spike records, trajectories and per-step targets hold batch x neurons x (limit or steps)
    values, which passes 2^32 on a large GPU run (batch 512, 1000 steps, 10 000 neurons), while
    GeNN's `batch` and `id` are 32-bit: every offset computed from `batch` is widened first, so a
    large run indexes its buffers instead of wrapping around silently."""
    code, _, _ = generate(_example(example))
    offsets = [m.group(1) for m in re.finditer(r"(\(uint64_t\))?\bbatch \*", code)]
    assert offsets, "no per-trial buffer offsets in the module"
    assert None not in offsets, f"{offsets.count(None)} of {len(offsets)} offsets are 32-bit"
