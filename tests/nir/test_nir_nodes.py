"""Node types and layouts that exporters write: every neuron type, `Linear` without bias, pools whose
stride differs from their kernel, and a pool that feeds `Flatten -> Linear` (snnTorch's CNNs).
Parse and check only (fast); simulation against the NIR equations is in test_nir_roundtrip."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.api import load_network
from snnc.cli import main
from snnc.interop import export_nir, import_nir

nir = pytest.importorskip("nir")


def neuron(kind: str, n: int):
    p = dict(r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))
    return {
        "LIF": lambda: nir.LIF(tau=np.full(n, 0.01), **p),
        "CubaLIF": lambda: nir.CubaLIF(
            tau_mem=np.full(n, 0.01), tau_syn=np.full(n, 0.005), w_in=np.ones(n), **p
        ),
        "IF": lambda: nir.IF(r=p["r"], v_threshold=p["v_threshold"], v_reset=p["v_reset"]),
        "LI": lambda: nir.LI(tau=np.full(n, 0.01), r=p["r"], v_leak=p["v_leak"]),
        "CubaLI": lambda: nir.CubaLI(
            tau_mem=np.full(n, 0.01), tau_syn=np.full(n, 0.005), r=p["r"], v_leak=p["v_leak"], w_in=np.ones(n)
        ),
        "I": lambda: nir.I(r=p["r"]),
    }[kind]()


@pytest.mark.parametrize("kind", ["LIF", "CubaLIF", "IF", "LI", "CubaLI", "I"])
def test_every_neuron_type_imports_checks_and_exports_as_itself(tmp_path, kind):
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "fc": nir.Linear(weight=np.full((3, 2), 0.5)),
            "lif": neuron("LIF", 3),
            "out_fc": nir.Linear(weight=np.full((2, 3), 0.5)),
            "readout": neuron(kind, 2),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[
            ("input", "fc"),
            ("fc", "lif"),
            ("lif", "out_fc"),
            ("out_fc", "readout"),
            ("readout", "output"),
        ],
    )
    nir.write(str(tmp_path / "n.nir"), g)
    import_nir(tmp_path / "n.nir", tmp_path / "n.snn")
    assert load_network(tmp_path / "n.snn").populations["readout"].role == "output"
    back = nir.read(str(export_nir(tmp_path / "n.snn", tmp_path / "back.nir")))
    assert type(back.nodes["readout"]).__name__ == kind
    assert isinstance(back.nodes["fc"], nir.Linear)


def image_graph(pool: dict, then_dense: bool):
    """Input (2, 6, 6) -> SumPool2d/AvgPool2d -> LIF, or -> Flatten -> Linear -> LI."""
    kind = pool.pop("kind")
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 6, 6])}),
        "pool": getattr(nir, kind)(padding=np.array([0, 0]), **pool),
    }
    k, s = int(pool["kernel_size"][0]), int(pool["stride"][0])
    oh = (6 - k) // s + 1
    if then_dense:
        w = np.random.default_rng(0).normal(0, 1, (3, 2 * oh * oh))
        nodes |= {
            "flat": nir.Flatten(input_type={"input": np.array([2, oh, oh])}, start_dim=0),
            "fc": nir.Linear(weight=w),
            "li": nir.LI(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3)),
            "output": nir.Output(output_type={"output": np.array([3])}),
        }
        edges = [("input", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "li"), ("li", "output")]
    else:
        n = (2, oh, oh)
        nodes |= {
            "lif": nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n)),
            "output": nir.Output(output_type={"output": np.array(n)}),
        }
        edges = [("input", "pool"), ("pool", "lif"), ("lif", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def pooled(x: np.ndarray, k: int, s: int, kind: str) -> np.ndarray:
    """The reference pool of a (C, H, W) image, written out directly."""
    c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros((c, oh, ow))
    for y in range(oh):
        for xx in range(ow):
            out[:, y, xx] = x[:, y * s : y * s + k, xx * s : xx * s + k].sum(axis=(1, 2))
    return out / (k * k) if kind == "AvgPool2d" else out


@pytest.mark.parametrize("kind", ["SumPool2d", "AvgPool2d"])
def test_pool_with_stride_unlike_its_kernel(tmp_path, kind):
    g = image_graph(dict(kind=kind, kernel_size=np.array([2, 2]), stride=np.array([1, 1])), then_dense=False)
    nir.write(str(tmp_path / "p.nir"), g)
    import_nir(tmp_path / "p.nir", tmp_path / "p.snn")
    assert "AvgPool2D(pool = (2, 2), stride = 1)" in (tmp_path / "p.snn").read_text()
    assert load_network(tmp_path / "p.snn").populations["lif"].shape == (5, 5, 2)
    back = nir.read(str(export_nir(tmp_path / "p.snn", tmp_path / "back.nir")))
    assert type(back.nodes["pool"]).__name__ == kind
    np.testing.assert_array_equal(back.nodes["pool"].stride, [1, 1])


@pytest.mark.parametrize("kind", ["SumPool2d", "AvgPool2d"])
def test_pool_then_linear_folds_into_one_dense_weight(tmp_path, kind):
    g = image_graph(dict(kind=kind, kernel_size=np.array([3, 3]), stride=np.array([2, 2])), then_dense=True)
    nir.write(str(tmp_path / "f.nir"), g)
    import_nir(tmp_path / "f.nir", tmp_path / "f.snn")
    text = (tmp_path / "f.snn").read_text()
    assert '# nir: Input "input"' in text and 'nir: SumPool2d "pool"'.replace("SumPool2d", kind) in text
    load_network(tmp_path / "f.snn")
    w = np.load(tmp_path / "f_weights" / "fc.npy")  # [input in (H, W, C) order, li]
    assert w.shape == (72, 3)
    fc = g.nodes["fc"].weight
    for c, y, x in [(0, 0, 0), (1, 2, 3), (0, 5, 5), (1, 4, 1)]:
        spike = np.zeros((2, 6, 6))
        spike[c, y, x] = 1.0
        want = fc @ pooled(spike, 3, 2, kind).ravel()
        np.testing.assert_allclose(w[(y * 6 + x) * 2 + c], want, rtol=1e-12, atol=1e-15)


def test_spike_step_reads_weights_as_one_step_pulses_and_survives_export(tmp_path, capsys):
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "fc": nir.Linear(weight=np.full((3, 2), 0.5)),
            "lif": neuron("CubaLIF", 3),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    nir.write(str(tmp_path / "s.nir"), g)
    assert (
        main(["import", str(tmp_path / "s.nir"), "-o", str(tmp_path / "bad.snn"), "--spike-step", "0"]) == 1
    )
    assert "--spike-step must be a positive time in seconds" in capsys.readouterr().err
    assert (
        main(["import", str(tmp_path / "s.nir"), "-o", str(tmp_path / "s.snn"), "--spike-step", "1e-4"]) == 0
    )
    text = (tmp_path / "s.snn").read_text()
    assert text.count("method = euler") == 2  # NirCubaLIF and NirCurrent
    assert "NirCurrent(tau_syn = 5.0 ms, pulse = 0.1 ms)" in text
    load_network(tmp_path / "s.snn")
    back = nir.read(str(export_nir(tmp_path / "s.snn", tmp_path / "back.nir")))
    np.testing.assert_array_equal(back.nodes["fc"].weight, g.nodes["fc"].weight)  # the exporter's convention
    import_nir(tmp_path / "back.nir", tmp_path / "again.snn")  # no option: the metadata says it
    assert "pulse = 0.1 ms" in (tmp_path / "again.snn").read_text()
