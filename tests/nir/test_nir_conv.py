"""NIR conv networks (Conv2d, SumPool2d, Flatten, Affine) built with the `nir` package's own API.

The simulation check uses an independent numpy reference: NIR's equations in NIR's own (C, H, W)
layout with a nested-loop convolution, stepped with the discretisation the generated `.snn` states
(ir/discrete.py): spikes arrive one step after emission, a NirDirac spike is w/dt held for one step,
a NirCurrent spike adds w/tau_syn and the membrane sees the current's exact mean over each step, and
every membrane is solved exactly with its input held over the step.
"""

from __future__ import annotations

import numpy as np
import pytest
from snnc.ir.diagnostics import DiagnosticError
from snnc.runtime.artefact import RecordRequest

from snnc.api import load_network
from snnc.cli import main
from snnc.interop import export_nir, import_nir

nir = pytest.importorskip("nir")

C_IN, H, W, F = 2, 8, 8, 4
CUBA = dict(tau_syn=0.002, tau_mem=0.005, r=1.5, v_leak=0.0, v_threshold=1.0, v_reset=-0.1, w_in=0.8)
LIF = dict(tau=0.004, r=1.0, v_leak=0.05, v_threshold=1.0, v_reset=0.0)
LI = dict(tau=0.01, r=0.5, v_leak=0.0)


def conv_graph(kernel, fc=None, padding=1, pool_padding=0, **conv_kw):
    """Input 2x8x8 -> Conv2d 2->4 3x3 -> CubaLIF -> SumPool2d 2x2 -> LIF -> Flatten -> Affine -> LI."""
    conv = dict(input_shape=(H, W), weight=kernel, stride=1, padding=padding, dilation=1, groups=1)
    conv.update({"bias": np.zeros(F), **conv_kw})
    conv_node = nir.Conv2d(**conv)
    shape = tuple(int(s) for s in conv_node.output_type["output"])
    pooled = (F, (shape[1] + 2 * pool_padding) // 2, (shape[2] + 2 * pool_padding) // 2)
    if fc is None:
        fc = np.full((3, int(np.prod(pooled))), 0.01)
    return nir.NIRGraph(
        nodes={
            "inp": nir.Input(input_type={"input": np.array([C_IN, H, W])}),
            "conv": conv_node,
            "c1": nir.CubaLIF(**{k: np.full(shape, v) for k, v in CUBA.items()}),
            "pool": nir.SumPool2d(
                kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.full(2, pool_padding)
            ),
            "p1": nir.LIF(**{k: np.full(pooled, v) for k, v in LIF.items()}),
            "flat": nir.Flatten(input_type={"input": np.array(pooled)}, start_dim=0),
            "fc": nir.Affine(weight=fc, bias=np.zeros(fc.shape[0])),
            "li": nir.LI(**{k: np.full(fc.shape[0], v) for k, v in LI.items()}),
            "out": nir.Output(output_type={"output": np.array([fc.shape[0]])}),
        },
        edges=[
            ("inp", "conv"),
            ("conv", "c1"),
            ("c1", "pool"),
            ("pool", "p1"),
            ("p1", "flat"),
            ("flat", "fc"),
            ("fc", "li"),
            ("li", "out"),
        ],
        type_check=False,
    )


def conv2d(x, k, pad, dilation=1, groups=1):
    """Cross-correlation as PyTorch/NIR define it: x (C, H, W), k (F, C / groups, kh, kw), zero
    padding, stride 1; filter f reads the channels of its group at taps `dilation` apart."""
    c, h, w = x.shape
    f, cg, kh, kw = k.shape
    d, fg = dilation, f // groups
    xp = np.zeros((c, h + 2 * pad, w + 2 * pad))
    xp[:, pad : pad + h, pad : pad + w] = x
    oh, ow = h + 2 * pad - d * (kh - 1), w + 2 * pad - d * (kw - 1)
    out = np.zeros((f, oh, ow))
    for y in range(oh):
        for x_ in range(ow):
            taps = xp[:, y : y + d * (kh - 1) + 1 : d, x_ : x_ + d * (kw - 1) + 1 : d]
            for g in range(groups):
                out[g * fg : (g + 1) * fg, y, x_] = np.einsum(
                    "fcij,cij->f", k[g * fg : (g + 1) * fg], taps[g * cg : (g + 1) * cg]
                )
    return out


def sum_pool(x, p):
    c, h, w = x.shape
    return x[:, : h // p * p, : w // p * p].reshape(c, h // p, p, w // p, p).sum(axis=(2, 4))


def reference(spikes_in, kernel, fc, pad, dt_ms, dilation=1, groups=1):
    """NIR's equations (seconds) in NIR's layout; returns conv/pool spike rasters and LI voltages."""
    dt = dt_ms * 1e-3
    steps = spikes_in.shape[0]
    e = np.exp
    oh = conv2d(np.zeros((C_IN, H, W)), kernel, pad, dilation, groups).shape[1]
    i1, v1 = np.zeros((F, oh, oh)), np.zeros((F, oh, oh))
    v2, v3 = np.zeros((F, oh // 2, oh // 2)), np.zeros(fc.shape[0])
    s0 = s1 = s2 = None
    out1, out2, volts = [], [], []
    for k in range(steps):
        if s0 is not None:  # spikes of step k-1 arrive now
            i1 = i1 + conv2d(s0, kernel, pad, dilation, groups) / CUBA["tau_syn"]
        d2 = sum_pool(s1, 2) / dt if s1 is not None else 0.0  # Dirac: w/dt over one step
        d3 = fc @ s2.ravel() / dt if s2 is not None else 0.0
        ts = CUBA["tau_syn"]
        i_avg = i1 * ts * (1 - e(-dt / ts)) / dt  # the current's exact mean over the step
        vinf1 = CUBA["v_leak"] + CUBA["r"] * CUBA["w_in"] * i_avg
        v1 = vinf1 + (v1 - vinf1) * e(-dt / CUBA["tau_mem"])
        i1 = i1 * e(-dt / ts)
        vinf2 = LIF["v_leak"] + LIF["r"] * d2
        v2 = vinf2 + (v2 - vinf2) * e(-dt / LIF["tau"])
        vinf3 = LI["v_leak"] + LI["r"] * d3
        v3 = vinf3 + (v3 - vinf3) * e(-dt / LI["tau"])
        s1 = (v1 > CUBA["v_threshold"]).astype(float)
        v1 = np.where(s1 > 0, CUBA["v_reset"], v1)
        s2 = (v2 > LIF["v_threshold"]).astype(float)
        v2 = np.where(s2 > 0, LIF["v_reset"], v2)
        s0 = spikes_in[k]
        out1.append(s1)
        out2.append(s2)
        volts.append(v3.copy())
    return np.array(out1), np.array(out2), np.array(volts)


def to_snnc(raster):
    """[steps, C, H, W] in NIR order -> [steps, H*W*C] in snnc's (H, W, C) order."""
    return raster.transpose(0, 2, 3, 1).reshape(raster.shape[0], -1)


@pytest.mark.parametrize("pad", [1, 0, 2])  # "same", "valid", and (2, 2) as numbers
def test_imported_conv_network_matches_numpy_reference(tmp_path, pad):
    from snnc.api import compile_network

    rng = np.random.default_rng(3)
    oh = H + 2 * pad - 2
    kernel = rng.normal(0.004, 0.004, (F, C_IN, 3, 3))
    fc = rng.normal(0.0, 0.01, (3, F * (oh // 2) ** 2))
    nir.write(str(tmp_path / "conv.nir"), conv_graph(kernel, fc, padding=pad))
    import_nir(tmp_path / "conv.nir", tmp_path / "conv.snn")
    text = (tmp_path / "conv.snn").read_text()
    assert "Conv2D(" in text and "AvgPool2D(" in text and "gain = 4.0" in text

    dt_ms, steps = 0.1, 300
    spikes = (rng.random((steps, C_IN, H, W)) < 0.03).astype(float)
    spikes[-1] = 0.0
    k_idx, ids = np.nonzero(to_snnc(spikes))
    net = compile_network(str(tmp_path / "conv.snn"), dt=dt_ms, duration=steps * dt_ms, precision="double")
    res = net.run(
        {"inp": [(k_idx * dt_ms, ids)]},
        RecordRequest.of(spikes=["c1", "p1"], vars=[("li", "v")]),
    )
    want1, want2, want_v = reference(spikes, kernel, fc, pad, dt_ms)
    assert 50 < want1.sum() < 0.5 * want1.size and want2.sum() > 20  # the test exercises spiking
    np.testing.assert_array_equal(res.spikes["c1"][0], to_snnc(want1) > 0)
    np.testing.assert_array_equal(res.spikes["p1"][0], to_snnc(want2) > 0)
    assert np.abs(want_v).max() > 0.1
    np.testing.assert_allclose(res.vars[("li", "v")][0], want_v, rtol=1e-9, atol=1e-12)


def test_conv_network_round_trips_through_export(tmp_path):
    rng = np.random.default_rng(1)
    g = conv_graph(rng.normal(0, 0.3, (F, C_IN, 3, 3)), rng.normal(0, 0.2, (3, 64)))
    nir.write(str(tmp_path / "m.nir"), g)
    assert main(["import", str(tmp_path / "m.nir"), "-o", str(tmp_path / "m.snn")]) == 0
    assert main(["export", str(tmp_path / "m.snn"), "-o", str(tmp_path / "back.nir")]) == 0
    back = nir.read(str(tmp_path / "back.nir"))
    for name in ("c1", "p1", "li"):
        a, b = g.nodes[name], back.nodes[name]
        assert type(a) is type(b)
        for f in a.__dataclass_fields__:
            if f not in ("metadata", "input_type", "output_type"):
                np.testing.assert_allclose(getattr(b, f), getattr(a, f), rtol=1e-12, err_msg=f"{name}.{f}")
    np.testing.assert_array_equal(back.nodes["inp"].input_type["input"], [C_IN, H, W])
    conv = back.nodes["conv"]
    assert isinstance(conv, nir.Conv2d)
    np.testing.assert_array_equal(conv.weight, g.nodes["conv"].weight)
    assert (
        tuple(conv.stride) == (1, 1) and tuple(conv.padding) == (1, 1) and tuple(conv.input_shape) == (H, W)
    )
    assert tuple(conv.dilation) == (1, 1) and conv.groups == 1
    pool = back.nodes["pool"]
    assert isinstance(pool, nir.SumPool2d)
    for f in ("kernel_size", "stride", "padding"):
        np.testing.assert_array_equal(getattr(pool, f), getattr(g.nodes["pool"], f))
    np.testing.assert_array_equal(back.nodes["fc"].weight, g.nodes["fc"].weight)
    assert ("p1", "flat") in back.edges and ("flat", "fc") in back.edges
    # and the exported file imports again to the same weights
    import_nir(tmp_path / "back.nir", tmp_path / "again.snn")
    for a, b in (
        ("m_weights/conv.npy", "again_weights/conv.npy"),
        ("m_weights/fc.npy", "again_weights/fc.npy"),
    ):
        np.testing.assert_array_equal(np.load(tmp_path / a), np.load(tmp_path / b))


def test_avg_pool_exports_as_avg_pool(tmp_path):
    g = conv_graph(np.ones((F, C_IN, 3, 3)) * 0.01, np.ones((3, 64)) * 0.01)
    g.nodes["pool"] = nir.AvgPool2d(
        kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
    )
    nir.write(str(tmp_path / "a.nir"), g)
    import_nir(tmp_path / "a.nir", tmp_path / "a.snn")
    assert "gain" not in (tmp_path / "a.snn").read_text().split("network")[-1]
    export_nir(tmp_path / "a.snn", tmp_path / "back.nir")
    assert isinstance(nir.read(str(tmp_path / "back.nir")).nodes["pool"], nir.AvgPool2d)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (dict(dilation=0), "dilation = (0, 0) must be at least 1"),
        (dict(groups=3), "groups = 3 does not divide its 4 filters"),
        (dict(groups=2), "weight takes 2 input channels per group (2 groups), the input has 2"),
        (dict(stride=(2, 1)), "stride (2, 1)"),
        (dict(bias=np.ones(F + 1)), f"bias has {F + 1} values for {F} filters"),
    ],
)
def test_unsupported_conv_parameters_are_clear_cli_errors(tmp_path, capsys, change, words):
    g = conv_graph(np.ones((F, C_IN, 3, 3)) * 0.01, **change)
    nir.write(str(tmp_path / "bad.nir"), g)
    assert main(["import", str(tmp_path / "bad.nir"), "-o", str(tmp_path / "bad.snn")]) == 1
    err = capsys.readouterr()
    text = err.out + err.err
    assert "NIR node 'conv'" in text and words in text, text
    assert "Traceback" not in text
    assert not (tmp_path / "bad.snn").exists()


@pytest.mark.parametrize(("dilation", "groups", "pad"), [(2, 1, 2), (1, 2, 1), (2, 2, 1)])
def test_dilated_and_grouped_conv_imports_matches_the_reference_and_exports_back(
    tmp_path, capsys, dilation, groups, pad
):
    """Conv2d dilation and groups are Conv2D's own arguments: the imported network simulates as NIR's
    equations with the reference's dilated, grouped convolution, and exports back unchanged."""
    from snnc.api import compile_network

    rng = np.random.default_rng(7)
    kernel = rng.normal(0.008, 0.004, (F, C_IN // groups, 3, 3))
    oh = conv2d(np.zeros((C_IN, H, W)), kernel, pad, dilation, groups).shape[1]
    fc = rng.normal(0.0, 0.01, (3, F * (oh // 2) ** 2))
    g = conv_graph(kernel, fc, padding=pad, dilation=dilation, groups=groups)
    nir.write(str(tmp_path / "dg.nir"), g)
    assert main(["import", str(tmp_path / "dg.nir"), "-o", str(tmp_path / "dg.snn")]) == 0
    table = capsys.readouterr().out
    assert ("[kh, kw, C / groups, F]" in table) == (groups != 1)
    text = (tmp_path / "dg.snn").read_text()
    assert (f"dilation = ({dilation}, {dilation})" in text) == (dilation != 1)
    assert (f"groups = {groups}" in text) == (groups != 1)
    assert np.load(tmp_path / "dg_weights/conv.npy").shape == (3, 3, C_IN // groups, F)

    dt_ms, steps = 0.1, 300
    spikes = (rng.random((steps, C_IN, H, W)) < 0.03).astype(float)
    spikes[-1] = 0.0
    k_idx, ids = np.nonzero(to_snnc(spikes))
    net = compile_network(str(tmp_path / "dg.snn"), dt=dt_ms, duration=steps * dt_ms, precision="double")
    res = net.run({"inp": [(k_idx * dt_ms, ids)]}, RecordRequest.of(spikes=["c1"], vars=[("li", "v")]))
    want1, _, want_v = reference(spikes, kernel, fc, pad, dt_ms, dilation, groups)
    assert 50 < want1.sum() < 0.5 * want1.size  # the test exercises spiking
    np.testing.assert_array_equal(res.spikes["c1"][0], to_snnc(want1) > 0)
    np.testing.assert_allclose(res.vars[("li", "v")][0], want_v, rtol=1e-9, atol=1e-12)

    # nir 1.0.8 types a Conv2d's input as weight.shape[1] channels (C / groups): reading a grouped
    # conv with its type inference fails, whoever wrote it
    back = nir.read(str(export_nir(tmp_path / "dg.snn", tmp_path / "back.nir")), type_check=False)
    back = back.nodes["conv"]
    assert tuple(back.dilation) == (dilation, dilation) and back.groups == groups
    assert tuple(back.padding) == (pad, pad)
    np.testing.assert_array_equal(back.weight, kernel)


def test_padding_neither_valid_nor_same_imports_as_numbers(tmp_path):
    """Padding 1 at stride 2 (the Sinabs CNN of issue 16) is no "same": it imports as the numbers,
    checks on the C backend, and exports back as itself."""
    g = conv_graph(np.ones((F, C_IN, 3, 3)) * 0.01, stride=2, padding=1, fc=np.full((3, F * 2 * 2), 0.01))
    nir.write(str(tmp_path / "p.nir"), g)
    import_nir(tmp_path / "p.nir", tmp_path / "p.snn")
    assert "stride = 2, padding = (1, 1)," in (tmp_path / "p.snn").read_text()
    assert load_network(tmp_path / "p.snn").populations["c1"].shape == (4, 4, F)
    back = nir.read(str(export_nir(tmp_path / "p.snn", tmp_path / "back.nir")))
    assert tuple(back.nodes["conv"].padding) == (1, 1) and tuple(back.nodes["conv"].stride) == (2, 2)


def test_pool_padding_snnc_cannot_express_is_named(tmp_path):
    nir.write(str(tmp_path / "q.nir"), conv_graph(np.ones((F, C_IN, 3, 3)) * 0.01, pool_padding=1))
    with pytest.raises(DiagnosticError, match=r"NIR node 'pool': SumPool2d padding \(1, 1\)"):
        import_nir(tmp_path / "q.nir")


def test_delay_after_a_conv_imports_and_exports(tmp_path):
    g = conv_graph(np.full((F, C_IN, 3, 3), 0.01))
    g.nodes["d"] = nir.Delay(delay=np.full((F, H, W), 0.002))
    g.edges = [e for e in g.edges if e != ("conv", "c1")] + [("conv", "d"), ("d", "c1")]
    nir.write(str(tmp_path / "d.nir"), g)
    import_nir(tmp_path / "d.nir", tmp_path / "d.snn")
    assert 'File("d_weights/conv.npy"), delay = 2.0 ms)' in (tmp_path / "d.snn").read_text()
    export_nir(tmp_path / "d.snn", tmp_path / "back.nir")
    back = nir.read(str(tmp_path / "back.nir"))
    assert ("conv", "d") in back.edges and ("d", "c1") in back.edges
    np.testing.assert_allclose(back.nodes["d"].delay, g.nodes["d"].delay)
