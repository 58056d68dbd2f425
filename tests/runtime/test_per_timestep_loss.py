"""`sparse_categorical_crossentropy(per_timestep = true)`: the per-timestep loss of mlGeNN's EventProp.

The network's gradient is checked against finite differences in test_gradients.py; here the loss
function itself against numerical differentiation, `snnc train` with it, and where it is refused.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from snnc.runtime.losses import get_loss

ROOT = Path(__file__).resolve().parents[2]


def test_the_loss_is_the_mean_of_each_steps_cross_entropy_and_its_gradient_is_exact():
    rng = np.random.default_rng(1)
    y, labels = rng.normal(size=(3, 5, 4)), np.array([0, 3, 1])
    loss = get_loss("sparse_categorical_crossentropy", {"per_timestep": True, "temperature": 2.0})
    value, grad = loss(y, labels)
    per_step = get_loss("sparse_categorical_crossentropy", {"temperature": 2.0})
    want = np.mean([per_step(y[:, k], labels)[0] for k in range(5)])
    assert abs(value - want) < 1e-12
    eps, numeric = 1e-6, np.zeros_like(y)
    for idx in np.ndindex(y.shape):
        up, down = y.copy(), y.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (loss(up, labels)[0] - loss(down, labels)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


SOURCE = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network small {
    input  x   = SpikeInput(5)
    hidden h   = LIF(20, tau_mem = 20 ms, v_thresh = 1.0, tau_refrac = 0 ms)
    output out = LeakyIntegrate(3, tau_mem = 20 ms, readout = avg_var)
    x -> h   : Dense(weight = Normal(mean = 1.5, sd = 0.78)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 0.3)), Exponential(tau = 5 ms)
}
train small {
    algorithm  = ALGORITHM
    loss       = sparse_categorical_crossentropy(per_timestep = true)
    optimizer  = adam(lr = 0.01)
    data       = yinyang(train = 64, test = 32, t_min = 2 ms, t_max = 27 ms, bias = true)
    dt         = 0.5 ms
    duration   = 30 ms
    batch_size = 16
    epochs     = 2
    seed       = 1
}
"""


def _snnc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snnc", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_snnc_train_runs_a_per_timestep_loss(tmp_path):
    path = tmp_path / "pt.snn"
    path.write_text(SOURCE.replace("ALGORITHM", "eventprop(max_spikes = 100)"))
    run = _snnc("train", str(path), "--out", str(tmp_path / "run"), "--quiet")
    assert run.returncode == 0, run.stderr
    first, second = (np.load(tmp_path / "run" / f"epoch-000{e}.npz") for e in (0, 1))
    assert not np.array_equal(first["weights/x_to_h"], second["weights/x_to_h"])


def test_genn_and_eprop_refuse_it_at_the_loss(tmp_path):
    path = tmp_path / "pt.snn"
    path.write_text(SOURCE.replace("ALGORITHM", "eventprop(max_spikes = 100)"))
    genn = _snnc("check", str(path), "--backend", "genn")
    assert genn.returncode == 1 and "no per-timestep loss" in genn.stderr + genn.stdout
    assert f"{path}:12:" in genn.stderr + genn.stdout and "Traceback" not in genn.stderr
    path.write_text(SOURCE.replace("ALGORITHM", "eprop(c_reg = 0.0)"))
    eprop = _snnc("check", str(path))
    out = eprop.stderr + eprop.stdout
    assert eprop.returncode == 1 and "per_timestep applies to eventprop" in out and f"{path}:12:" in out, out
