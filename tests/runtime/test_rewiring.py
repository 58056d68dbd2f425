"""Deep R (runtime/rewiring.py): a fixed number of signed synapses per projection that move.

Unit checks of the rule (masks, signs, L1 pull, dormant out and random in, moments reset, keyed
draws), then `snnc train` with `rewiring = deep_r(...)`: the active fraction holds at every epoch,
inactive weights stay 0, a resumed run equals the uninterrupted one, and bad settings are located.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from snnc.runtime.optimisers import Adam
from snnc.runtime.rewiring import DeepR

ROOT = Path(__file__).resolve().parents[2]


def _start(seed: int = 3) -> tuple[DeepR, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    weights = {"a": rng.normal(size=(20, 30)), "b": rng.normal(size=(30, 4))}
    initial = {k: v.copy() for k, v in weights.items()}
    rule = DeepR(("a",), connectivity=0.25, l1=0.1, seed=seed)
    rule.start(weights)
    return rule, weights, initial


def test_start_keeps_a_fraction_with_its_initial_signs_and_zeroes_the_rest():
    rule, weights, initial = _start()
    active = rule.masks["a"]
    assert active.sum() == 150  # 0.25 of 600
    assert np.all(weights["a"][~active] == 0) and np.all(weights["a"][active] == initial["a"][active])
    np.testing.assert_array_equal(rule.inhibitory["a"][active], initial["a"][active] < 0)
    np.testing.assert_array_equal(weights["b"], initial["b"])  # not rewired
    again, _, _ = _start()
    np.testing.assert_array_equal(again.masks["a"], active)  # seeded
    other, _, _ = _start(seed=4)
    assert not np.array_equal(other.masks["a"], active)


def test_gradients_vanish_where_inactive_and_carry_the_l1_pull_where_active():
    rule, _, _ = _start()
    grads = {"a": np.ones((20, 30)), "b": np.ones((30, 4))}
    out = rule.gradients(grads)
    active, inhibitory = rule.masks["a"], rule.inhibitory["a"]
    assert np.all(out["a"][~active] == 0)
    np.testing.assert_allclose(out["a"][active & ~inhibitory], 1.1)  # excitatory: pulled down
    np.testing.assert_allclose(out["a"][active & inhibitory], 0.9)  # inhibitory: pulled up
    assert out["b"] is grads["b"] and np.all(grads["a"] == 1)  # the caller's arrays are untouched


def test_a_synapse_that_crosses_its_sign_goes_dormant_and_another_one_comes_in():
    rule, weights, _ = _start()
    opt = Adam(lr=0.1)
    opt.step(weights, {"a": np.ones((20, 30)), "b": np.ones((30, 4))})  # creates the moments
    active_before = rule.masks["a"].copy()
    excitatory = np.flatnonzero(active_before & ~rule.inhibitory["a"])[:5]
    weights["a"].reshape(-1)[excitatory] = -0.5  # these five crossed zero against their sign
    rule.rewire(weights, opt, step=1)
    active = rule.masks["a"]
    assert active.sum() == 150 and rule.last["a"] >= 5
    assert not active.reshape(-1)[excitatory].any()
    fresh = active & ~active_before
    assert fresh.sum() == rule.last["a"] and np.all(weights["a"][fresh] == 0)
    assert np.all(weights["a"][~active] == 0)
    for buf in (opt.m["a"], opt.v["a"]):
        assert np.all(buf[fresh] == 0) and np.all(buf.reshape(-1)[excitatory] == 0)
        assert np.all(buf[active & active_before] != 0)  # survivors keep their moments


def test_the_draws_are_keyed_by_the_step_so_a_resumed_run_rewires_alike():
    outcomes = []
    for _ in range(2):
        rule, weights, _ = _start()
        weights["a"][rule.masks["a"] & ~rule.inhibitory["a"]] = -1.0  # every excitatory one dormant
        state = DeepR(("a",), 0.25, 0.1, seed=3)
        state.load_state_dict(rule.state_dict())  # as a checkpoint carries it
        state.rewire(weights, Adam(), step=7)
        outcomes.append(state.masks["a"].copy())
    np.testing.assert_array_equal(*outcomes)


SOURCE = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network small {
    input  x   = SpikeInput(5)
    hidden h   = LIF(30, tau_mem = 20 ms, v_thresh = 1.0, tau_refrac = 0 ms)
    output out = LeakyIntegrate(3, tau_mem = 20 ms, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 1.5, sd = 0.78)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 0.3)), Exponential(tau = 5 ms)
}
train small {
    algorithm  = eventprop(max_spikes = 100)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.05)
    data       = yinyang(train = 96, test = 32, t_min = 2 ms, t_max = 27 ms, bias = true)
    rewiring   = deep_r(projections = (x_to_h, h_to_out), connectivity = 0.4, l1 = 1e-4)
    dt         = 0.5 ms
    duration   = 30 ms
    batch_size = 16
    epochs     = 3
    seed       = 1
}
"""


def _train(path: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snnc", "train", str(path), "--out", str(out), "--quiet", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_training_keeps_the_active_fraction_and_resumes_exactly(tmp_path):
    path = tmp_path / "dr.snn"
    path.write_text(SOURCE)
    whole = _train(path, tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    sizes = {"x_to_h": 5 * 30, "h_to_out": 30 * 3}
    rewired, previous = 0, {}
    for epoch in range(3):
        ck = np.load(tmp_path / "whole" / f"epoch-{epoch:04d}.npz")
        for name, size in sizes.items():
            active = ck[f"optimiser/rewiring/active/{name}"].astype(bool)
            assert active.sum() == round(0.4 * size)
            assert np.all(ck[f"weights/{name}"][~active] == 0)
            if name in previous:
                rewired += int((active != previous[name]).sum())
        previous = {n: ck[f"optimiser/rewiring/active/{n}"].astype(bool) for n in sizes}
    assert rewired > 0  # synapses did move
    first = _train(path, tmp_path / "part", "--epochs", "2")
    assert first.returncode == 0, first.stderr
    rest = _train(path, tmp_path / "part", "--resume")
    assert rest.returncode == 0, rest.stderr
    a, b = np.load(tmp_path / "whole" / "epoch-0002.npz"), np.load(tmp_path / "part" / "epoch-0002.npz")
    for key in a.files:
        if key != "meta.json":
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("deep_r(projections = (x_to_hh), connectivity = 0.4)", "deep_r(): no projection 'x_to_hh'"),
        ("deep_r(projections = (x_to_h), connectivity = 1.5)", "connectivity must be a fraction"),
        ("deep_r(projections = (x_to_h), connectivity = 0.4, l2 = 1)", "has no argument 'l2'"),
        ("rewire(projections = (x_to_h))", "unknown rewiring 'rewire'"),
        ("deep_r(projections = (x_to_h))", "connectivity = … is needed for the Dense projection(s) x_to_h"),
    ],
)
def test_a_bad_rewiring_is_a_located_error(tmp_path, setting, message):
    path = tmp_path / "bad.snn"
    path.write_text(
        SOURCE.replace("deep_r(projections = (x_to_h, h_to_out), connectivity = 0.4, l1 = 1e-4)", setting)
    )
    run = _train(path, tmp_path / "run")
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"{path}:15:" in run.stderr and message in run.stderr, run.stderr
