"""snnTorch 1.0.0's NIR export and import against snnc (`pip install -e '.[interop]'`).

What works with nir 1.0.8 and nirtorch 2.6 (README, "NIR"): per-neuron parameter tensors (a scalar
`beta` fails nir's type inference inside `export_to_nir`) and `ignore_dims=[0]` for the batch axis.
These networks use `bias=False` (biases: tests/nir/test_nir_bias.py). snnTorch simulates in
discrete time with dt = 1e-4 s and adds w per spike and step, hence `--spike-step 1e-4`.
"""

from __future__ import annotations

import numpy as np
import pytest

from snnc.api import load_network
from snnc.interop import export_nir, import_nir
from tests.nir.interop import needs, poisson, snnc_run

torch = needs("torch")
snn = needs("snntorch")
needs("nirtorch")
nir = needs("nir")

from snntorch import utils as snn_utils  # noqa: E402
from snntorch.export_nir import export_to_nir  # noqa: E402
from snntorch.import_nir import import_from_nir  # noqa: E402


def full(shape, value: float):
    return torch.full(shape if isinstance(shape, tuple) else (shape,), value)


def model(kind: str, beta: float = 0.9, **reset):
    """The four networks of the issue; every parameter per neuron, every Linear without bias."""
    torch.manual_seed(0)
    lif = dict(init_hidden=True, **reset)
    if kind == "leaky":
        fc = torch.nn.Linear(20, 10, bias=False)
        cell = snn.Leaky(beta=full(10, beta), threshold=full(10, 1.0), output=True, **lif)
        return torch.nn.Sequential(fc, cell), (1, 20)
    if kind == "synaptic":
        fc = torch.nn.Linear(20, 10, bias=False)
        cell = snn.Synaptic(
            alpha=full(10, 0.8), beta=full(10, beta), threshold=full(10, 1.0), output=True, **lif
        )
        return torch.nn.Sequential(fc, cell), (1, 20)
    if kind == "rleaky":
        fc = torch.nn.Linear(20, 10, bias=False)
        cell = snn.RLeaky(
            beta=full(10, beta), threshold=full(10, 1.0), linear_features=10, output=True, **lif
        )
        with torch.no_grad():
            cell.recurrent.bias.zero_()
        return torch.nn.Sequential(fc, cell), (1, 20)
    conv = torch.nn.Conv2d(1, 2, 3, bias=False)
    hidden = snn.Leaky(beta=full((2, 6, 6), beta), threshold=full((2, 6, 6), 1.0), **lif)
    fc = torch.nn.Linear(18, 4, bias=False)
    out = snn.Leaky(beta=full(4, beta), threshold=full(4, 1.0), output=True, **lif)
    return torch.nn.Sequential(conv, hidden, torch.nn.AvgPool2d(2), torch.nn.Flatten(), fc, out), (1, 1, 8, 8)


def exported(tmp_path, kind: str, **kw):
    net, shape = model(kind, **kw)
    graph = export_to_nir(net, torch.zeros(shape), ignore_dims=[0])
    nir.write(str(tmp_path / f"{kind}.nir"), graph)
    return net, nir.read(str(tmp_path / f"{kind}.nir"))


@pytest.mark.parametrize("kind", ["leaky", "synaptic", "rleaky", "conv"])
def test_snntorch_export_imports_checks_and_exports_back(tmp_path, kind):
    net, graph = exported(tmp_path, kind)
    import_nir(tmp_path / f"{kind}.nir", tmp_path / "m.snn", spike_step=1e-4)
    load_network(tmp_path / "m.snn")
    back = nir.read(str(export_nir(tmp_path / "m.snn", tmp_path / "back.nir")))
    folded = {"2"} if kind == "conv" else set()  # AvgPool2d -> Flatten -> Linear is one Dense weight
    assert set(back.nodes) == set(graph.nodes) - folded
    want_edges = [e for e in graph.edges if not folded & set(e)] + ([("1", "3")] if kind == "conv" else [])
    assert sorted(back.edges) == sorted(want_edges)
    if kind == "conv":  # the Linear after the pool now reads the LIF layer before it
        assert back.nodes["4"].weight.shape == (4, 72)
        folded.add("4")
    for name, node in graph.nodes.items():
        if name not in folded and type(node).__name__ in ("Linear", "Conv2d", "LIF", "CubaLIF"):
            for f in ("weight", "tau", "tau_mem", "tau_syn", "r", "v_threshold"):
                if hasattr(node, f):
                    np.testing.assert_allclose(getattr(back.nodes[name], f), getattr(node, f), rtol=1e-6)
    if kind != "rleaky":  # snnTorch 1.0.0 cannot import its own RLeaky graphs (README)
        import_from_nir(back)


OUT = {"leaky": "n_1", "synaptic": "n_1", "rleaky": "n_1_lif", "conv": "n_5"}


@pytest.mark.parametrize("kind", ["leaky", "synaptic", "rleaky", "conv"])
def test_snntorch_and_snnc_simulate_the_same_spikes(tmp_path, kind):
    """The same Poisson input into snnTorch and into snnc's import of its export, and (the other
    way) into snnTorch's import of snnc's export. With `--spike-step 1e-4` (snnTorch's dt) snnc
    steps the models with forward Euler, as snnTorch does, at the same dt: the spike trains are
    identical. snnTorch's reset must be NIR's: `reset_mechanism="zero", reset_delay=False`; its
    default (subtract, one step later) has no NIR equivalent, and its export does not say so."""
    net, shape = model(kind, beta=0.95, reset_mechanism="zero", reset_delay=False)
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
                layer.weight.uniform_(0, 0.6)
        if kind == "rleaky":
            net[1].recurrent.weight.uniform_(-0.3, 0.3)
    nir.write(str(tmp_path / "m.nir"), export_to_nir(net, torch.zeros(shape), ignore_dims=[0]))
    import_nir(tmp_path / "m.nir", tmp_path / "m.snn", spike_step=1e-4)
    x = poisson(200, int(np.prod(shape)), 0.1)

    def simulate(module, part: int = 0) -> np.ndarray:
        """The output layer's spikes (part 0) or membrane (part -1: its `mem`, after the reset)."""
        snn_utils.reset(module)
        with torch.no_grad():
            rows = [module(torch.tensor(row).reshape(shape))[part] for row in x]
        return np.array([r.numpy().ravel() for r in rows])  # batch 1 (snnTorch flattens it away)

    want = simulate(net)
    # snnc's inputs are (H, W, C) for an image: the same pixels, as NIR's (C, H, W) flat index
    got, v = snnc_run(tmp_path / "m.snn", "input_node", OUT[kind], x, 0.1, layers=2 if kind == "conv" else 1)
    assert want.sum() > 100
    np.testing.assert_array_equal(got, want)
    # torch steps in float32 (eps 6e-8), snnc in float64: over 200 steps of |v| <= 1 they differ by
    # at most 2e-7 (measured, all four networks); a wrong decay or weight shows as 1e-3 or more
    np.testing.assert_allclose(v, simulate(net, -1), rtol=0, atol=1e-6)
    if kind == "rleaky":
        return  # snnTorch 1.0.0 cannot import its own RLeaky graph (README)
    back = import_from_nir(nir.read(str(export_nir(tmp_path / "m.snn", tmp_path / "back.nir"))))
    np.testing.assert_array_equal(simulate(back), want)


@pytest.mark.parametrize("groups", [1, 2])
def test_a_dilated_grouped_conv_simulates_as_snntorch_does(tmp_path, groups):
    """torch's Conv2d(2, 4, 3, dilation=2, groups=G, padding=1) into a Leaky layer: snnc's import of
    snnTorch's export spikes as snnTorch does (torch's own conv2d is the reference), and so does
    snnTorch's import of snnc's export where snnTorch can read it: its import_from_nir builds
    Conv2d(weight.shape[1], ...), C / G input channels, and fails on groups > 1 (README). Input
    pixels go to snnc in its (H, W, C) order."""
    torch.manual_seed(0)
    lif = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    conv = torch.nn.Conv2d(2, 4, 3, dilation=2, groups=groups, padding=1, bias=False)
    net = torch.nn.Sequential(
        conv, snn.Leaky(beta=full((4, 6, 6), 0.95), threshold=full((4, 6, 6), 1.0), output=True, **lif)
    )
    with torch.no_grad():
        conv.weight.uniform_(0, 0.6 / groups)
    shape = (1, 2, 8, 8)
    nir.write(str(tmp_path / "m.nir"), export_to_nir(net, torch.zeros(shape), ignore_dims=[0]))
    import_nir(tmp_path / "m.nir", tmp_path / "m.snn", spike_step=1e-4)
    text = (tmp_path / "m.snn").read_text()
    assert "dilation = (2, 2)" in text and ("groups = 2" in text) == (groups == 2)
    x = poisson(100, 128, 0.1)

    def simulate(module) -> np.ndarray:
        snn_utils.reset(module)
        with torch.no_grad():
            rows = [module(torch.tensor(row).reshape(shape))[0] for row in x]
        return np.array([r.numpy().ravel() for r in rows])

    want = simulate(net)  # (C, H, W) order
    hwc = x.reshape(-1, 2, 8, 8).transpose(0, 2, 3, 1).reshape(x.shape[0], -1)
    got, _ = snnc_run(tmp_path / "m.snn", "input_node", "n_1", hwc, 0.1)
    assert want.sum() > 500
    np.testing.assert_array_equal(got.reshape(-1, 6, 6, 4).transpose(0, 3, 1, 2).reshape(want.shape), want)
    # nir 1.0.8's type inference mistypes a grouped conv's input channels: read without it
    graph = nir.read(str(export_nir(tmp_path / "m.snn", tmp_path / "back.nir")), type_check=False)
    assert tuple(graph.nodes["0"].dilation) == (2, 2) and graph.nodes["0"].groups == groups
    if groups == 1:
        np.testing.assert_array_equal(simulate(import_from_nir(graph)), want)
