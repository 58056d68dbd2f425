"""NIR graphs built with the `nir` package: import, simulate with the C backend, export, re-read."""

from __future__ import annotations

import numpy as np
import pytest
from snnc.ir.diagnostics import DiagnosticError
from snnc.runtime.artefact import RecordRequest

from snnc.cli import main
from snnc.interop import export_nir, import_nir

nir = pytest.importorskip("nir")


def cuba_graph(w1, w2):
    n_in, n_h = w1.shape[1], w1.shape[0]
    n_out = w2.shape[0]
    return nir.NIRGraph(
        nodes={
            "inp": nir.Input(input_type={"input": np.array([n_in])}),
            "fc1": nir.Linear(weight=w1),
            "hid": nir.LIF(
                tau=np.full(n_h, 0.005),
                r=np.full(n_h, 1.5),
                v_leak=np.full(n_h, 0.1),
                v_threshold=np.full(n_h, 1.0),
                v_reset=np.full(n_h, -0.2),
            ),
            "fc2": nir.Linear(weight=w2),
            "cuba": nir.CubaLIF(
                tau_syn=np.full(n_out, 0.002),
                tau_mem=np.full(n_out, 0.01),
                r=np.full(n_out, 2.0),
                v_leak=np.zeros(n_out),
                v_threshold=np.full(n_out, 1.0),
                v_reset=np.zeros(n_out),
                w_in=np.full(n_out, 0.5),
            ),
            "out": nir.Output(output_type={"output": np.array([n_out])}),
        },
        edges=[("inp", "fc1"), ("fc1", "hid"), ("hid", "fc2"), ("fc2", "cuba"), ("cuba", "out")],
    )


def test_round_trip_import_simulate_export(tmp_path):
    rng = np.random.default_rng(0)
    g = cuba_graph(rng.uniform(0, 0.02, (4, 3)), rng.uniform(0, 0.05, (2, 4)))
    nir.write(str(tmp_path / "m.nir"), g)
    assert main(["import", str(tmp_path / "m.nir"), "-o", str(tmp_path / "m.snn")]) == 0
    text = (tmp_path / "m.snn").read_text()
    assert "NIR fixes continuous-time equations only" in text and 'File("' in text
    from snnc.api import compile_network

    net = compile_network(str(tmp_path / "m.snn"), dt=0.1, duration=30.0, batch_size=1)
    out = net.predict({"inp": [(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 2]))]})["cuba"]
    assert out.shape == (1, 2) and np.all(np.isfinite(out))
    assert main(["export", str(tmp_path / "m.snn"), "-o", str(tmp_path / "back.nir")]) == 0
    back = nir.read(str(tmp_path / "back.nir"))
    for name in ("hid", "cuba"):
        a, b = g.nodes[name], back.nodes[name]
        assert type(a) is type(b)
        for f in a.__dataclass_fields__:
            if f not in ("metadata", "input_type", "output_type"):
                np.testing.assert_allclose(getattr(b, f), getattr(a, f), rtol=1e-12, err_msg=f"{name}.{f}")
    np.testing.assert_allclose(back.nodes["fc1"].weight, g.nodes["fc1"].weight)
    np.testing.assert_allclose(back.nodes["fc2"].weight, g.nodes["fc2"].weight)


def numpy_cuba(spikes, w, p, t_end, dt):
    """NIR's CubaLIF equations in seconds: tau_syn dI/dt = -I + w_in S, tau_mem dv/dt = v_leak - v + r I."""
    n = w.shape[0]
    i, v, out = np.zeros(n), np.zeros(n), [[] for _ in range(n)]
    steps = int(round(t_end / dt))
    k_of = {}
    for t, j in spikes:
        k_of.setdefault(int(round(t / dt)), []).append(j)
    for k in range(steps):
        for j in k_of.get(k, ()):
            i += p["w_in"] * w[:, j] / p["tau_syn"]
        v += dt * (p["v_leak"] - v + p["r"] * i) / p["tau_mem"]
        i -= dt * i / p["tau_syn"]
        fired = v > p["v_threshold"]
        for m in np.nonzero(fired)[0]:
            out[m].append((k + 1) * dt)
        v[fired] = p["v_reset"]
    return out


def test_imported_cubalif_matches_nir_equations(tmp_path):
    w = np.array([[0.012, 0.004], [0.003, 0.015]])
    p = dict(tau_syn=0.003, tau_mem=0.01, r=1.0, v_leak=0.0, v_threshold=1.0, v_reset=0.0, w_in=1.0)
    g = nir.NIRGraph(
        nodes={
            "inp": nir.Input(input_type={"input": np.array([2])}),
            "fc": nir.Linear(weight=w),
            "cuba": nir.CubaLIF(**{k: np.full(2, v) for k, v in p.items()}),
            "out": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("inp", "fc"), ("fc", "cuba"), ("cuba", "out")],
    )
    nir.write(str(tmp_path / "c.nir"), g)
    import_nir(tmp_path / "c.nir", tmp_path / "c.snn")
    from snnc.api import compile_network

    dt_ms = 0.01
    net = compile_network(str(tmp_path / "c.snn"), dt=dt_ms, duration=40.0, precision="double")
    t_in = np.arange(1.0, 30.0, 1.5)
    ids = np.arange(t_in.size) % 2
    res = net.run({"inp": [(t_in, ids)]}, RecordRequest.of(spikes=["cuba"]))
    raster = res.spikes["cuba"][0]
    got = [np.nonzero(raster[:, m])[0] * dt_ms + dt_ms for m in range(2)]
    want = numpy_cuba(list(zip(t_in / 1e3, ids, strict=True)), w, p, 0.040, 1e-6)
    for m in range(2):
        assert len(want[m]) > 0
        assert len(got[m]) == len(want[m])
        np.testing.assert_allclose(got[m], np.array(want[m]) * 1e3, atol=0.1)


def test_unmappable_nodes_and_bad_files_are_named(tmp_path):
    g = nir.NIRGraph(
        nodes={
            "inp": nir.Input(input_type={"input": np.array([2])}),
            "flat": nir.Threshold(threshold=np.ones(2)),
            "out": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("inp", "flat"), ("flat", "out")],
        type_check=False,
    )
    nir.write(str(tmp_path / "t.nir"), g)
    with pytest.raises(DiagnosticError, match="NIR node 'flat' \\(Threshold\\) cannot be imported"):
        import_nir(tmp_path / "t.nir")
    lif = nir.LIF(tau=np.array([0.01, 0.02]), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2))
    g2 = nir.NIRGraph(
        nodes={
            "inp": nir.Input(input_type={"input": np.array([2])}),
            "fc": nir.Linear(weight=np.eye(2)),
            "l": lif,
        },
        edges=[("inp", "fc"), ("fc", "l")],
        type_check=False,
    )
    nir.write(str(tmp_path / "u.nir"), g2)
    with pytest.raises(DiagnosticError, match="NIR node 'l': tau differs between neurons"):
        import_nir(tmp_path / "u.nir")
    (tmp_path / "bad.nir").write_bytes(b"nope")
    with pytest.raises(DiagnosticError, match="cannot read .*bad.nir' as a NIR graph"):
        import_nir(tmp_path / "bad.nir")
    (tmp_path / "std.snn").write_text(
        "use std.{LIF, SpikeInput, Exponential}\nnetwork s {\n input x = SpikeInput(2)\n"
        " output o = LIF(2, readout = spike_count)\n x -> o : Dense(weight = 1.0), Exponential\n}\n"
    )
    with pytest.raises(DiagnosticError, match="synapse model 'Exponential' has no NIR equivalent"):
        export_nir(tmp_path / "std.snn", tmp_path / "std.nir")
