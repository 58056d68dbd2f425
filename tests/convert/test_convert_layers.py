"""How `snnc convert` writes each layer: windows kept as Conv2D/AvgPool2D, other chains as one Dense
weight in snnc's (H, W, C) order, pads as "same" or numbers, and a file without --data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from snnc.frontend.onnx_graph import read_model, to_layers  # noqa: E402

from snnc.cli import main  # noqa: E402


def _save(path: Path, nodes, init: dict, shape, out_shape) -> Path:  # noqa: ANN001
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in init.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _cnn(tmp_path: Path, conv_attrs: dict, kernel: int = 3) -> Path:
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node(
            "Conv", ["x", "k"], ["c"], name="conv1", kernel_shape=[kernel, kernel], **conv_attrs
        ),
        helper.make_node("Relu", ["c"], ["cr"], name="relu1"),
        helper.make_node("AveragePool", ["cr"], ["p"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Relu", ["p"], ["pr"], name="relu2"),
        helper.make_node("Reshape", ["pr", "shape"], ["f"], name="flat"),
        helper.make_node("MatMul", ["f", "w"], ["y"], name="fc"),
    ]
    out = to_layers_shape(kernel, conv_attrs)
    init = {
        "k": rng.normal(size=(3, 2, kernel, kernel)).astype(np.float32),
        "shape": np.array([-1, int(np.prod(out))], np.int64),
        "w": rng.normal(size=(int(np.prod(out)), 4)).astype(np.float32),
    }
    return _save(tmp_path / "cnn.onnx", nodes, init, (None, 2, 8, 8), (None, 4))


def to_layers_shape(kernel: int, attrs: dict) -> tuple[int, int, int]:
    pad = attrs.get("pads", [0])[0]
    side = (8 + 2 * pad - kernel) + 1
    return (3, side // 2, side // 2)


def test_lone_windows_stay_windows_and_a_reshape_is_a_dense_weight_in_hwc_order(tmp_path, capsys):
    path = _cnn(tmp_path, {"pads": [1, 1, 1, 1]})
    out = tmp_path / "cnn.snn"
    assert main(["convert", str(path), "--method", "simple", "-o", str(out)]) == 0
    text = out.read_text()
    assert 'Conv2D(filters = 3, kernel = (3, 3), stride = 1, padding = "same"' in text
    assert "conv1 -> pool1 : AvgPool2D(pool = (2, 2), stride = 2), Exponential(tau = 1 ms)" in text
    assert "hidden pool1 = ConvertIF((4, 4, 3))" in text
    # the Dense weight reads pool1 in snnc's (H, W, C) order and gives the ANN's Reshape + MatMul
    model = to_layers(read_model(path))
    w = np.load(tmp_path / "cnn_weights" / "fc.npy")
    a = np.random.default_rng(1).random((5, 3, 4, 4))
    want = model.layers[-1].forward(a) * 2.0 / 100  # the output's 2 / timesteps (avg_var ~ logits)
    assert np.allclose(a.transpose(0, 2, 3, 1).reshape(5, -1) @ w, want)


def test_pads_that_are_not_same_stay_numbers(tmp_path, capsys):
    path = _cnn(tmp_path, {"pads": [1, 1, 1, 1]}, kernel=2)
    out = tmp_path / "cnn.snn"
    assert main(["convert", str(path), "--method", "simple", "-o", str(out)]) == 0
    assert "kernel = (2, 2), stride = 1, padding = (1, 1)" in out.read_text()
    assert main(["check", str(out)]) == 0
    assert main(["check", "--backend", "genn", str(out)]) == 1
    assert 'the genn backend pads Conv2D only "valid" or "same"' in capsys.readouterr().err


def test_without_data_the_train_block_says_where_data_goes(tmp_path, capsys):
    path = _cnn(tmp_path, {})
    out = tmp_path / "cnn.snn"
    assert main(["convert", str(path), "--method", "simple", "-o", str(out)]) == 0
    assert '    # data     = analog(path = "DATA.npz"' in out.read_text()
    assert main(["evaluate", str(out), "--no-checkpoint"]) == 1
    assert "names no data set" in capsys.readouterr().err


def test_biases_become_per_neuron_bias_params_in_hwc_order(tmp_path, capsys):
    """A Conv's bias per channel, a Gemm's per neuron: each population's `bias` (added to v every
    step) is the ANN's bias / lambda of its layer (the output's lambda: timesteps / 2)."""
    rng = np.random.default_rng(0)
    kb, gb = rng.normal(size=3), rng.normal(size=4)
    nodes = [
        helper.make_node(
            "Conv", ["x", "k", "kb"], ["c"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Relu", ["c"], ["cr"], name="relu1"),
        helper.make_node("Flatten", ["cr"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w", "gb"], ["y"], name="fc", transB=1),
    ]
    init = {
        "k": rng.normal(size=(3, 2, 3, 3)).astype(np.float32),
        "kb": kb.astype(np.float32),
        "w": rng.normal(size=(4, 3 * 8 * 8)).astype(np.float32),
        "gb": gb.astype(np.float32),
    }
    path = _save(tmp_path / "b.onnx", nodes, init, (None, 2, 8, 8), (None, 4))
    out = tmp_path / "b.snn"
    assert main(["convert", str(path), "--method", "simple", "--timesteps", "50", "-o", str(out)]) == 0
    assert "b_weights/conv1_bias.npy (bias)" in capsys.readouterr().out
    text = out.read_text()
    assert 'hidden conv1 = ConvertIF((8, 8, 3), bias = File("b_weights/conv1_bias.npy"))' in text
    assert 'output fc = ConvertSum(4, bias = File("b_weights/fc_bias.npy"), readout = avg_var)' in text
    conv_bias = np.load(tmp_path / "b_weights" / "conv1_bias.npy")
    assert conv_bias.shape == (8 * 8 * 3,) and np.allclose(conv_bias, np.tile(kb, 64), atol=1e-6)
    assert np.allclose(np.load(tmp_path / "b_weights" / "fc_bias.npy"), gb * 2 / 50, atol=1e-6)
    assert main(["check", str(out)]) == 0
    assert main(["check", "--backend", "genn", str(out)]) == 0  # GeNN takes per-neuron params too


def test_a_biased_neuron_fires_at_its_relu_rate(tmp_path):
    """One ConvertIF neuron, no input spikes: its bias alone (0.3 per step) makes it fire 0.3 per step."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="fc1"),
        helper.make_node("Add", ["h", "b"], ["hb"], name="fc1_bias"),
        helper.make_node("Relu", ["hb"], ["a"], name="relu1"),
        helper.make_node("MatMul", ["a", "v"], ["y"], name="fc2"),
    ]
    init = {
        "w": np.ones((2, 2), np.float32),
        "b": np.array([0.3, -0.2], np.float32),
        "v": np.eye(2, dtype=np.float32),
    }
    path = _save(tmp_path / "m.onnx", nodes, init, (None, 2), (None, 2))
    out = tmp_path / "m.snn"
    assert main(["convert", str(path), "--method", "simple", "--timesteps", "100", "-o", str(out)]) == 0
    from snnc.runtime.artefact import RecordRequest

    import snnc

    net = snnc.compile(str(out), batch_size=1)
    spikes = net.run({"x": [None]}, RecordRequest.of(spikes=["fc1"])).spikes["fc1"][0]
    assert spikes.sum(axis=0).tolist() == [30, 0]


def test_no_checkpoint_and_checkpoint_exclude_each_other(tmp_path, capsys):
    path = _cnn(tmp_path, {})
    out = tmp_path / "cnn.snn"
    assert main(["convert", str(path), "--method", "simple", "-o", str(out)]) == 0
    assert main(["evaluate", str(out), "--no-checkpoint", "--checkpoint", str(tmp_path)]) == 1
    assert "--no-checkpoint and --checkpoint exclude each other" in capsys.readouterr().err


def _onnx_conv(x: np.ndarray, k: np.ndarray, attrs: dict) -> np.ndarray:
    """ONNX's own reference implementation (onnx.reference) of the Conv node alone: independent of
    snnc's numpy forward and of its Conv2D."""
    from onnx.reference import ReferenceEvaluator

    node = helper.make_node("Conv", ["x", "k"], ["y"], kernel_shape=list(k.shape[2:]), **attrs)
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, *x.shape[1:]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(k.astype(np.float32), "k")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return ReferenceEvaluator(model).run(None, {"x": x.astype(np.float32)})[0].astype(np.float64)


GROUPED = [  # (Conv attributes, the Conv2D arguments snnc writes for them)
    (
        {"group": 2, "dilations": [2, 2], "pads": [2, 2, 2, 2]},
        'padding = "same", dilation = (2, 2), groups = 2',
    ),
    (
        {"group": 4, "dilations": [1, 2], "pads": [1, 1, 1, 1], "strides": [2, 2]},
        "stride = 2, padding = (1, 1), dilation = (1, 2), groups = 4",
    ),
    ({"dilations": [3, 3]}, 'padding = "valid", dilation = (3, 3), weight'),
]


@pytest.mark.parametrize(("attrs", "written"), GROUPED)
def test_grouped_and_dilated_convs_fire_at_the_rates_of_onnx_s_own_conv(tmp_path, capsys, attrs, written):
    """A Conv with `group` and `dilations` becomes Conv2D(..., dilation, groups); run by the C backend
    with constant-rate input, each ConvertIF neuron fires at the rate of its ReLU activation under
    onnx.reference's Conv, to within what rate coding allows: an IF neuron's count after T steps
    differs from T a by at most one spike for its own phase plus, per input, one spike of that input's
    phase and the charge still in the 1 ms synapse, |w| each: (1 + 2 sum |w|) / T."""
    rng = np.random.default_rng(4)
    c, size, f = 4, 9, 4
    groups = attrs.get("group", 1)
    k = rng.uniform(-0.6, 0.8, (f, c // groups, 3, 3)) * groups / c  # ~ the same drive for any group
    x = rng.random((3, c, size, size))
    want = np.clip(_onnx_conv(x, k, attrs), 0, 1)  # a ConvertIF fires at most once per step
    out_shape = want.shape[1:]
    nodes = [
        helper.make_node("Conv", ["x", "k"], ["c"], name="conv1", kernel_shape=[3, 3], **attrs),
        helper.make_node("Relu", ["c"], ["cr"], name="relu1"),
        helper.make_node("Flatten", ["cr"], ["fl"], name="flat"),
        helper.make_node("MatMul", ["fl", "w"], ["y"], name="fc"),
    ]
    init = {"k": k.astype(np.float32), "w": rng.normal(size=(int(np.prod(out_shape)), 2)).astype(np.float32)}
    path = _save(tmp_path / "g.onnx", nodes, init, (None, c, size, size), (None, 2))
    data = tmp_path / "data.npz"
    np.savez(data, x=x, y=np.zeros(3, np.int64), test_x=x, test_y=np.zeros(3, np.int64))
    out = tmp_path / "g.snn"
    steps = 400
    argv = ["convert", str(path), "--method", "simple", "--data", str(data), "--timesteps", str(steps)]
    assert main([*argv, "-o", str(out)]) == 0
    assert "g_weights/conv1.npy [3, 3, " + f"{c // groups}, {f}] [kh, kw, C" in capsys.readouterr().out
    line = next(t for t in out.read_text().splitlines() if "x -> conv1 : Conv2D(" in t)
    assert written in line

    from snnc.runtime.artefact import RecordRequest
    from snnc.runtime.datasets.analog import analog

    import snnc

    net = snnc.compile(str(out), batch_size=len(x), duration=float(steps))
    test = analog(data, duration=float(steps), channels_first=True).test
    spikes = net.run({"x": test}, RecordRequest.of(spikes=["conv1"])).spikes["conv1"]
    got = spikes.sum(axis=1) / steps
    want_hwc = want.transpose(0, 2, 3, 1).reshape(len(x), -1)  # snnc's (H, W, C) order
    in_weights = np.abs(k).sum(axis=(1, 2, 3))  # sum |w| into each filter's neurons
    bound = (1 + 2 * np.tile(in_weights, int(np.prod(out_shape[1:])))) / steps
    assert want_hwc.max() > 0.3 and (want_hwc == 0).any()  # rates that say something, and silent ones
    assert np.all(np.abs(got - want_hwc) <= bound), np.abs(got - want_hwc).max()

    assert main(["check", str(out)]) == 0
    assert main(["check", "--backend", "genn", str(out)]) == 1
    err = capsys.readouterr().err
    row = out.read_text().splitlines().index(line) + 1
    assert f"g.snn:{row}:" in err
    assert "prints Conv2D only with dilation 1 and groups 1; projection 'x_to_conv1'" in err


def test_a_grouped_dilated_conv_inside_a_layer_is_onnx_s_conv_in_the_dense_weight(tmp_path):
    """Conv (group 2, dilation 2) -> AveragePool with no ReLU between is one Dense weight: applied to
    pixels in snnc's (H, W, C) order, it gives onnx.reference's Conv followed by the mean pool."""
    rng = np.random.default_rng(5)
    attrs = {"group": 2, "dilations": [2, 2], "pads": [1, 1, 1, 1]}
    k = rng.normal(size=(4, 1, 3, 3))
    nodes = [
        helper.make_node("Conv", ["x", "k"], ["c"], name="conv1", kernel_shape=[3, 3], **attrs),
        helper.make_node("AveragePool", ["c"], ["p"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Relu", ["p"], ["pr"], name="relu1"),
        helper.make_node("Flatten", ["pr"], ["fl"], name="flat"),
        helper.make_node("MatMul", ["fl", "w"], ["y"], name="fc"),
    ]
    init = {"k": k.astype(np.float32), "w": np.ones((4 * 3 * 3, 2), np.float32)}
    path = _save(tmp_path / "d.onnx", nodes, init, (None, 2, 8, 8), (None, 2))
    out = tmp_path / "d.snn"
    assert main(["convert", str(path), "--method", "simple", "-o", str(out)]) == 0
    assert 'x -> conv1 : Dense(weight = File("d_weights/conv1.npy"))' in out.read_text()
    w = np.load(tmp_path / "d_weights" / "conv1.npy")
    x = rng.random((5, 2, 8, 8))
    conv = _onnx_conv(x, k, attrs)  # (5, 4, 6, 6)
    pooled = conv.reshape(5, 4, 3, 2, 3, 2).mean(axis=(3, 5))
    got = x.transpose(0, 2, 3, 1).reshape(5, -1) @ w
    assert np.allclose(got, pooled.transpose(0, 2, 3, 1).reshape(5, -1), atol=1e-5)
