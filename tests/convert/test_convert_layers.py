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
