"""The genn backend's emitted module: valid Python, valid C in every GeNN code string, comments
naming IR entities, weights matching the C backend's draw, and the clear error without pygenn."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from snnc.backends.common import dense_equivalent, draw_connectivity, plan_network
from snnc.backends.genn import emit_genn, generate, have_pygenn, load_genn
from snnc.ir.diagnostics import DiagnosticError

from snnc.api import lower

from .genn_check import check_c, model_calls

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
    assert code.count('"SPARSE"') == 3  # avg pool, sparse, one-to-one
    assert "gennrand_uniform()" in code
    assert f"readout {readout}" in code


def test_spike_readouts_and_refractory(tmp_path: Path) -> None:
    src = (VALID / "one_to_one_shape.snn").read_text()
    src = src.replace("hidden h = LIF(4)", "output h = LIF(4, readout = first_spike_time)")
    code = _check(lower(src), tmp_path)
    assert "r_value = t + dt * q_frac;" in code
    code = _check(_layers("avg_var"), tmp_path)
    assert "!q_was_refr && (u_v >= 1.0)" in code  # c has tau_refrac = 2 ms
    refr = plan_network(_layers()).populations["c"].refractory_steps
    assert refr > 0 and f"q_refrac = {refr};" in code


def test_blocks_name_their_ir_entities(tmp_path: Path) -> None:
    network = lower(EXAMPLES[-1])
    code = _check(network, tmp_path)
    for pop in network.populations.values():
        assert f"# population {pop.name}: " in code
    for proj in network.projections.values():
        assert f"# projection {proj.name}: " in code
    assert "// population h: 100 x LIF: Discrete IR update (exact" in code


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


def test_unprintable_on_pre_is_a_diagnostic(tmp_path: Path) -> None:
    src = (VALID / "one_to_one_shape.snn").read_text().replace("on_pre { i += w }", "on_pre { i += 2 * w }")
    code = _check(lower(src), tmp_path)
    assert "y_i += 2.0 * inSyn;" in code


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
