"""FixedNumberPost, a connectivity kind added as one class in ir/connectivity.py (layout csr): it
simulates and trains on every backend without a backend change, and its gradients are right.

EventProp (C backend): finite differences, and the gradient of the same network written with a
Dense projection holding the kind's dense equivalent (zeros where no synapse) agrees at every
synapse. e-prop (genn backend, which trains csr layouts with e-prop): the same dense-equivalence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradcheck import compare, compile_double, fd_gradients
from snnc.ir.connectivity import KINDS
from snnc.runtime.losses import get_loss

from snnc.api import lower

EVENTPROP = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network g {
    input  x   = SpikeInput(6)
    hidden h   = LIF(8, tau_mem = 10 ms)
    output out = LeakyIntegrate(2, tau_mem = 10 ms, readout = avg_var)
    x -> h   : CONN, Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.5, sd = 0.5)), Exponential(tau = 5 ms)
}
train g {
    algorithm = eventprop(max_spikes = 100)
    loss = sparse_categorical_crossentropy
    seed = 3
}
"""
FIXED = "FixedNumberPost(n = 3, weight = Normal(mean = 2.0, sd = 0.5))"
DENSE = "Dense(weight = Normal(mean = 2.0, sd = 0.5))"
LABELS = np.array([0, 1, 1, 0])


def _inputs() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    return [(np.sort(rng.uniform(1.0, 10.0, 8)), rng.integers(0, 6, 8)) for _ in range(4)]


def _dense_equivalent(art, projection: str) -> np.ndarray:  # noqa: ANN001
    conn = art.connectivity(projection)
    arrays = {"row_ptr": conn["row_ptr"], "col_idx": conn["col_idx"], "weight": art.get_weights()[projection]}
    n_pre, n_post = len(conn["row_ptr"]) - 1, art.manifest["populations"]["h"]["size"]
    return KINDS["fixed_number_post"].dense_equivalent(arrays, n_pre, n_post, {})


def _rows(conn: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    rp, ci = conn["row_ptr"], conn["col_idx"]
    return np.repeat(np.arange(len(rp) - 1), np.diff(rp)), ci


def test_eventprop_gradients_of_fixed_number_post() -> None:
    loss = get_loss("sparse_categorical_crossentropy")
    x = _inputs()
    fixed = compile_double(EVENTPROP.replace("CONN", FIXED), dt=0.001, duration=20.0, batch_size=4)
    assert fixed.get_weights()["x_to_h"].shape == (18,)  # 6 pre neurons x 3 targets

    def run():  # noqa: ANN202
        return fixed.run({"x": x})

    def value(res):  # noqa: ANN001, ANN202
        return loss(res.readouts["out"], LABELS)

    res = run()
    _, dl = value(res)
    grads = fixed.backward({"out": dl})
    fd = fd_gradients(fixed, value, run, h=0.02, points=9)
    for proj in ("x_to_h", "h_to_out"):
        cos, rel = compare(grads[proj], fd[proj])
        assert np.linalg.norm(fd[proj]) > 0, proj
        assert cos >= 0.99 and rel <= 0.05, f"{proj}: cos {cos:.4f}, rel {rel:.4f}"

    dense = compile_double(EVENTPROP.replace("CONN", DENSE), dt=0.001, duration=20.0, batch_size=4)
    dense.set_weights(
        {"x_to_h": _dense_equivalent(fixed, "x_to_h"), "h_to_out": fixed.get_weights()["h_to_out"]}
    )
    want = dense.run({"x": x})
    np.testing.assert_allclose(want.readouts["out"], res.readouts["out"], rtol=1e-12)
    dense_grads = dense.backward({"out": dl})
    pre, post = _rows(fixed.connectivity("x_to_h"))
    np.testing.assert_allclose(grads["x_to_h"], dense_grads["x_to_h"][pre, post], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads["h_to_out"], dense_grads["h_to_out"], rtol=1e-10, atol=1e-14)


EPROP = (
    (Path(__file__).resolve().parents[2] / "examples" / "eprop_pattern.snn")
    .read_text()
    .replace("duration   = 1000 ms", "duration   = 200 ms")
)


def test_eprop_gradients_of_fixed_number_post_on_genn(tmp_path: Path) -> None:
    pytest.importorskip("pygenn")
    from snnc.backends.common import draw_connectivity, plan_network
    from snnc.backends.genn import load_genn

    x_to_h = "x -> h   : Dense(weight = Normal(mean = 0.0, sd = 3.0)), Delta()"
    assert x_to_h in EPROP
    fixed_src = EPROP.replace(
        x_to_h, "x -> h   : FixedNumberPost(n = 64, weight = Normal(mean = 1.0, sd = 3.0)), Delta()"
    )
    batch = 2
    fixed = load_genn(
        lower(fixed_src), out_dir=tmp_path / "fixed", backend="single_threaded_cpu", batch_size=batch
    )
    dense = load_genn(
        lower(EPROP), out_dir=tmp_path / "dense", backend="single_threaded_cpu", batch_size=batch
    )
    network = lower(fixed_src)
    plan = plan_network(network)
    pre, post = _rows(draw_connectivity(network, plan, np.random.default_rng(plan.seed))["x_to_h"])
    w = fixed.get_weights()
    m = np.zeros((20, 256))
    m[pre, post] = w["x_to_h"]
    dense.set_weights({**w, "x_to_h": m})
    steps = fixed.num_steps
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(batch):
        ids = rng.integers(0, 20, 300)
        rows.append((np.sort(rng.uniform(0, steps * fixed.dt * 0.8, ids.size)), ids))
    targets = {"out": rng.normal(size=(batch, steps, 3))}
    grads = {}
    for name, art in (("fixed", fixed), ("dense", dense)):
        art.set_targets(targets)
        art.run({"x": rows})
        grads[name] = art.backward({})
    g, d = grads["fixed"], grads["dense"]
    assert np.abs(g["x_to_h"]).max() > 0 and np.abs(g["h_to_h"]).max() > 0
    top = np.abs(d["x_to_h"]).max()
    np.testing.assert_allclose(g["x_to_h"], d["x_to_h"][pre, post], rtol=1e-4, atol=1e-5 * top)
    for name in ("h_to_h", "h_to_out"):
        top = np.abs(d[name]).max()
        np.testing.assert_allclose(g[name], d[name], rtol=1e-4, atol=1e-5 * top, err_msg=name)
