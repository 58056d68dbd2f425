"""Norse 1.1.0's NIR export and import against snnc (`pip install -e '.[interop]'`).

Norse's `to_nir` works with nir 1.0.8 and nirtorch 2.6, but what it writes needs three fixes
(`fixed`, README "NIR"): its graph holds torch tensors and 0-d arrays, which `nir.write` refuses
("Scalar datasets don't support chunk/filter options"); it writes `tau = dt / tau_mem_inv` where
NIR's tau is `1 / tau_mem_inv` (so its own `from_nir` reads back a time constant 1/dt too short);
and for `LIFCell` it leaves `w_in = 1` although Norse adds each weight to the synaptic current
directly (NIR's CubaLIF adds w_in w / tau_syn per unit pulse: w_in = tau_syn / dt).
Norse steps Euler's method with dt = 1 ms, hence `--spike-step 1e-3`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snnc.api import load_network
from snnc.interop import export_nir, import_nir
from tests.nir.interop import needs, poisson, snnc_run

torch = needs("torch")
norse = needs("norse.torch")
nir = needs("nir")

DT = 1e-3  # Norse's default step (s)


def fixed(graph):
    """Norse's graph as NIR means it: numpy arrays of at least one element, true time constants."""
    for node in graph.nodes.values():
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if f.name in ("input_type", "output_type", "metadata") or not hasattr(value, "shape"):
                continue
            if isinstance(value, torch.Tensor):
                value = value.detach().numpy()
            setattr(node, f.name, np.atleast_1d(np.asarray(value, np.float64)))
        for f in ("tau", "tau_mem", "tau_syn"):
            if getattr(node, f, None) is not None:
                setattr(node, f, getattr(node, f) / DT)  # dt / tau_inv -> 1 / tau_inv
        if type(node).__name__ == "CubaLIF":
            node.w_in = node.tau_syn / DT
    return graph


def model(kind: str, w_max: float):
    torch.manual_seed(0)
    fc = torch.nn.Linear(20, 10, bias=False)
    with torch.no_grad():
        fc.weight.uniform_(0, w_max)
    common = dict(tau_mem_inv=torch.tensor(20.0), v_th=torch.tensor(1.0), v_leak=torch.tensor(0.0))
    if kind == "lif_box":
        cell = norse.LIFBoxCell(norse.LIFBoxParameters(v_reset=torch.tensor(0.0), **common))
    else:
        cell = norse.LIFCell(
            norse.LIFParameters(tau_syn_inv=torch.tensor(100.0), v_reset=torch.tensor(0.0), **common)
        )
    return norse.SequentialState(fc, cell)


def simulate(module, x: np.ndarray, membrane: bool = False) -> np.ndarray:
    """The cell's spikes, or its membrane v (the state of a SequentialState's cell, after the reset)."""
    state, out = None, []
    with torch.no_grad():
        for row in x:
            z, state = module(torch.tensor(row)[None], state)
            out.append((state[1].v if membrane else z)[0].numpy())
    return np.array(out)


@pytest.mark.parametrize("kind", ["lif_box", "lif"])
def test_norse_export_imports_checks_and_exports_back(tmp_path, kind):
    graph = fixed(norse.to_nir(model(kind, 1.0), torch.zeros(1, 20)))
    nir.write(str(tmp_path / "n.nir"), graph)
    imported = import_nir(tmp_path / "n.nir", tmp_path / "n.snn", spike_step=DT)
    assert (
        "0",
        "Affine",
        "projection input_node -> n_1",
        "n_weights/n_0.npy [20, 10] [pre, post]",
    ) in imported.rows
    assert load_network(tmp_path / "n.snn").populations["n_1"].shape == (10,)
    back = nir.read(str(export_nir(tmp_path / "n.snn", tmp_path / "back.nir")))
    assert set(back.nodes) == set(graph.nodes)
    np.testing.assert_allclose(back.nodes["0"].weight, graph.nodes["0"].weight, rtol=1e-6)
    norse.from_nir(back)


@pytest.mark.parametrize("kind", ["lif_box", "lif"])
def test_norse_and_snnc_simulate_the_same_spikes(tmp_path, kind):
    """The same Poisson input into Norse and into snnc's import of its (fixed) export: with
    `--spike-step 1e-3` snnc steps Euler's method at Norse's dt, and the spike trains are identical;
    so are Norse's, the other way, from its `from_nir` of snnc's export."""
    net = model(kind, 2.5 if kind == "lif_box" else 0.6)
    nir.write(str(tmp_path / "n.nir"), fixed(norse.to_nir(net, torch.zeros(1, 20))))
    import_nir(tmp_path / "n.nir", tmp_path / "n.snn", spike_step=DT)
    x = poisson(300, 20, 0.1)
    want = simulate(net, x)
    got, v = snnc_run(tmp_path / "n.snn", "input_node", "n_1", x, DT * 1e3)
    assert want.sum() > 100
    np.testing.assert_array_equal(got, want)
    # torch steps in float32 (eps 6e-8), snnc in float64: over 300 steps of |v| <= 1 they differ by
    # at most 3e-7 (measured, both cells); a wrong decay or weight shows as 1e-3 or more
    np.testing.assert_allclose(v, simulate(net, x, membrane=True), rtol=0, atol=1e-6)
    back = norse.from_nir(nir.read(str(export_nir(tmp_path / "n.snn", tmp_path / "back.nir"))))
    np.testing.assert_array_equal(simulate(back, x), want)
