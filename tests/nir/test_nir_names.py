"""NIR node names as exporters write them (keywords, dots, digits, reserved-looking names) import into
valid `.snn` names and come back unchanged from `snnc export`; recurrent subgraphs and scalar
neuron parameters import. Every case here only parses and checks (fast)."""

from __future__ import annotations

import numpy as np
import pytest
from snnc.frontend.nir_names import NameMap, parse_annotation, readable

from snnc.api import load_network
from snnc.cli import main
from snnc.interop import export_nir, import_nir

nir = pytest.importorskip("nir")


def lif(n: int, tau: float = 0.01):
    return nir.LIF(
        tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n)
    )


def awkward_graph():
    """Every kind of name the issue lists, plus two that clean up to the same identifier."""
    rng = np.random.default_rng(0)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([3])}),
        "fc.0": nir.Linear(weight=rng.uniform(0, 0.5, (4, 3))),
        "network": lif(4),
        "train": nir.Linear(weight=rng.uniform(0, 0.5, (4, 4))),
        "fc_0": lif(4, 0.02),
        "1": nir.Linear(weight=rng.uniform(0, 0.5, (5, 4))),
        "lif-1": lif(5, 0.03),
        "w": nir.Linear(weight=rng.uniform(0, 0.5, (2, 5))),
        "__hidden_": lif(2, 0.04),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [
        ("input", "fc.0"),
        ("fc.0", "network"),
        ("network", "train"),
        ("train", "fc_0"),
        ("fc_0", "1"),
        ("1", "lif-1"),
        ("lif-1", "w"),
        ("w", "__hidden_"),
        ("__hidden_", "output"),
    ]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def test_readable_names_are_valid_and_unique():
    assert [readable(n) for n in ("input", "output", "hidden", "fc.0", "1", "lif-1", "__x_", "", "é")] == [
        "input_node",
        "output_node",
        "hidden_node",
        "fc_0",
        "n_1",
        "lif_1",
        "x",
        "node",
        "node",
    ]
    names = NameMap()
    assert [names(n) for n in ("fc.0", "fc_0", "fc-0", "fc.0")] == ["fc_0", "fc_0_2", "fc_0_3", "fc_0"]


def test_annotations_read_back_any_name():
    line = 'x -> y : Dense(weight = File("a#b.npy")), NirDirac   # a note; nir: Linear "a \\"b\\" -> c" -> Delay "d"'
    assert parse_annotation(line) == [("Linear", 'a "b" -> c'), ("Delay", "d")]
    assert parse_annotation("hidden h = NirLIF(2)   # plain comment") == []


def test_awkward_names_import_check_and_export_back(tmp_path, capsys):
    g = awkward_graph()
    nir.write(str(tmp_path / "train.nir"), g)
    assert main(["import", str(tmp_path / "train.nir"), "-o", str(tmp_path / "train.snn")]) == 0
    table = capsys.readouterr().out
    rows = [line.split() for line in table.splitlines()]
    assert (
        "fc.0 Linear projection input_node -> network train_weights/fc_0.npy [3, 4] [pre, post]".split()
        in rows
    )
    assert "output Output readout of hidden_node".split() in rows
    net = load_network(tmp_path / "train.snn")  # parses and checks
    assert sorted(net.populations) == ["fc_0", "hidden_node", "input_node", "lif_1", "network"]
    np.testing.assert_array_equal(np.load(tmp_path / "train_weights" / "n_1.npy"), g.nodes["1"].weight.T)
    assert main(["check", str(tmp_path / "train.snn")]) == 0
    export_nir(tmp_path / "train.snn", tmp_path / "back.nir")
    back = nir.read(str(tmp_path / "back.nir"))
    assert set(back.nodes) == set(g.nodes)
    assert sorted(back.edges) == sorted(g.edges)
    for name, node in g.nodes.items():
        assert type(back.nodes[name]) is type(node), name
        if hasattr(node, "weight"):
            np.testing.assert_allclose(back.nodes[name].weight, node.weight, rtol=1e-12)
        if hasattr(node, "tau"):
            np.testing.assert_allclose(back.nodes[name].tau, node.tau, rtol=1e-12)


def test_export_without_annotations_generates_names(tmp_path):
    nir.write(str(tmp_path / "m.nir"), awkward_graph())
    import_nir(tmp_path / "m.nir", tmp_path / "m.snn")
    text = (tmp_path / "m.snn").read_text()
    (tmp_path / "m.snn").write_text(text.replace("nir: ", "was: "))
    back = nir.read(str(export_nir(tmp_path / "m.snn", tmp_path / "back.nir")))
    assert {"input_node", "network", "input_node_to_network", "hidden_node_output"} <= set(back.nodes)


def recurrent_graph(nested: bool):
    """snnTorch's RLeaky: `lif1` is a subgraph Input -> lif <-> w_rec -> Output (nested or flattened)."""
    w_in, w_rec = np.full((3, 2), 0.1), np.full((3, 3), 0.05)
    inner = {"lif": lif(3), "w_rec": nir.Linear(weight=w_rec)}
    if nested:
        sub = nir.NIRGraph(
            nodes={
                "input": nir.Input(input_type={"input": np.array([3])}),
                **inner,
                "output": nir.Output(output_type={"output": np.array([3])}),
            },
            edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        )
        body, edges = {"lif1": sub}, [("fc", "lif1"), ("lif1", "output")]
    else:
        body = {f"lif1.{k}": v for k, v in inner.items()}
        edges = [("fc", "lif1.lif"), ("lif1.lif", "lif1.w_rec"), ("lif1.w_rec", "lif1.lif")]
        edges.append(("lif1.lif", "output"))
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2])}),
        "fc": nir.Linear(weight=w_in),
        **body,
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), *edges], type_check=False)


@pytest.mark.parametrize("nested", [True, False])
def test_recurrent_subgraph_imports_as_a_recurrent_projection(tmp_path, nested):
    nir.write(str(tmp_path / "r.nir"), recurrent_graph(nested))
    import_nir(tmp_path / "r.nir", tmp_path / "r.snn")
    net = load_network(tmp_path / "r.snn")
    assert sorted((p.pre, p.post) for p in net.projections.values()) == [
        ("input_node", "lif1_lif"),
        ("lif1_lif", "lif1_lif"),
    ]
    np.testing.assert_allclose(np.load(tmp_path / "r_weights" / "lif1_w_rec.npy"), np.full((3, 3), 0.05))
    back = nir.read(str(export_nir(tmp_path / "r.snn", tmp_path / "back.nir")))
    assert ("lif1.lif", "lif1.w_rec") in back.edges and ("lif1.w_rec", "lif1.lif") in back.edges


def test_scalar_neuron_parameters_take_the_size_of_their_weights(tmp_path):
    """Norse writes scalar parameters; the node's size comes from the Linear/Affine next to it."""
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "0": nir.Affine(weight=np.full((5, 3), 0.1), bias=np.zeros(5)),
            "1": nir.CubaLIF(
                tau_syn=np.array([0.005]),
                tau_mem=np.array([0.01]),
                r=np.array([1.0]),
                v_leak=np.array([0.0]),
                v_threshold=np.array([1.0]),
                v_reset=np.array([0.0]),
                w_in=np.array([1.0]),
            ),
            "output": nir.Output(output_type={"output": np.array([5])}),
        },
        edges=[("input", "0"), ("0", "1"), ("1", "output")],
        type_check=False,
    )
    nir.write(str(tmp_path / "s.nir"), g)
    import_nir(tmp_path / "s.nir", tmp_path / "s.snn")
    assert load_network(tmp_path / "s.snn").populations["n_1"].shape == (5,)


def test_a_non_zero_bias_keeps_its_node_name(tmp_path):
    """A bias imports (tests/nir/test_nir_bias.py simulates it); its file and the node it goes back
    onto keep the awkward name."""
    g = awkward_graph()
    g.nodes["fc.0"] = nir.Affine(weight=g.nodes["fc.0"].weight, bias=np.full(4, 0.1))
    nir.write(str(tmp_path / "b.nir"), g)
    import_nir(tmp_path / "b.nir", tmp_path / "b.snn")
    assert 'bias = File("b_weights/fc_0_bias.npy")' in (tmp_path / "b.snn").read_text()
    back = nir.read(str(export_nir(tmp_path / "b.snn", tmp_path / "back.nir")))
    assert isinstance(back.nodes["fc.0"], nir.Affine) and isinstance(back.nodes["train"], nir.Linear)
    np.testing.assert_array_equal(back.nodes["fc.0"].bias, np.full(4, 0.1))
