"""`snnc convert` refuses what it cannot convert with one clear E-ONNX error naming the node (exit 1,
never a traceback): malformed files, unsupported operators, branches, biases, odd attributes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from snnc.cli import main  # noqa: E402


def _model(path: Path, nodes, init, shape=(None, 4), out_shape=(None, 3)) -> Path:  # noqa: ANN001
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in init.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


W = np.ones((4, 3))


def _fails(capsys, *argv: str) -> str:
    assert main(["convert", *argv]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_a_file_that_is_not_onnx(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01 not a protobuf at all \xff" * 10)
    err = _fails(capsys, str(bad), "--method", "simple")
    assert "error: cannot read" in err and "bad.onnx" in err and "as an ONNX model" in err


def test_a_missing_file(tmp_path, capsys):
    assert "no such file" in _fails(capsys, str(tmp_path / "none.onnx"), "--method", "simple")


def test_a_graph_that_breaks_onnx_rules(tmp_path, capsys):
    path = _model(tmp_path / "m.onnx", [helper.make_node("MatMul", ["x", "nowhere"], ["y"], name="fc")], {})
    assert "as an ONNX model" in _fails(capsys, str(path), "--method", "simple")


@pytest.mark.parametrize("op", ["Sigmoid", "Tanh"])
def test_an_unsupported_operator_is_named(tmp_path, capsys, op):
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="fc1"),
        helper.make_node(op, ["h"], ["y"], name="act1"),
    ]
    err = _fails(capsys, str(_model(tmp_path / "m.onnx", nodes, {"w": W})), "--method", "simple")
    assert f"error: ONNX node 'act1' has type {op}, which snnc cannot convert" in err
    assert "Gemm, MatMul(+Add), Conv, AveragePool" in err


def test_max_pool_is_refused_for_rate_coding(tmp_path, capsys):
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], name="pool1", kernel_shape=[2, 2])]
    path = _model(tmp_path / "m.onnx", nodes, {}, (None, 1, 4, 4), (None, 1, 2, 2))
    err = _fails(capsys, str(path), "--method", "simple")
    assert "ONNX node 'pool1' has type MaxPool" in err and "use AveragePool" in err


def test_a_skip_connection_is_refused(tmp_path, capsys):
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["a"], name="relu1"),
        helper.make_node("MatMul", ["a", "v"], ["b"], name="fc2"),
        helper.make_node("Add", ["a", "b"], ["y"], name="skip"),
    ]
    path = _model(tmp_path / "m.onnx", nodes, {"w": np.ones((4, 3)), "v": np.ones((3, 3))})
    err = _fails(capsys, str(path), "--method", "simple")
    assert "the value 'a' is read by 'fc2' (MatMul), 'skip' (Add)" in err


def test_a_zero_bias_converts(tmp_path, capsys):
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="fc1"),
        helper.make_node("Add", ["h", "b"], ["y"], name="fc1_bias"),
    ]
    path = _model(tmp_path / "m.onnx", nodes, {"w": W, "b": np.zeros(3)})
    assert main(["convert", str(path), "--method", "simple", "-o", str(tmp_path / "m.snn")]) == 0
    assert '# onnx: MatMul "fc1" -> Add "fc1_bias"' in (tmp_path / "m.snn").read_text()


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"group": 3}, "group = 3 does not divide its 2 filters"),
        ({"group": 2}, "weight takes 2 channels per group (2 groups), the input has 2"),
        ({"strides": [1, 2]}, "strides (1, 2) are not supported"),
        ({"pads": [1, 0, 0, 1]}, "pads [1, 0, 0, 1] are not symmetric"),
        ({"dilations": [0, 1]}, "dilations [0, 1] must be at least 1"),
        ({"dilations": [2, 2, 2]}, "dilations = [2, 2, 2] is not a 2-D value"),
        ({"dilations": [6, 1]}, "the window (7, 2) is larger than the padded input (6, 6)"),
    ],
)
def test_conv_attributes_snnc_lacks(tmp_path, capsys, attrs, message):
    """The weight is [F = 2, C / group = 2, 2, 2] on a (2, 6, 6) input."""
    nodes = [helper.make_node("Conv", ["x", "k"], ["y"], name="conv1", kernel_shape=[2, 2], **attrs)]
    path = _model(
        tmp_path / "m.onnx", nodes, {"k": np.ones((2, 2, 2, 2))}, (None, 2, 6, 6), (None, 2, None, None)
    )
    err = _fails(capsys, str(path), "--method", "simple")
    assert f"ONNX node 'conv1' (Conv): {message}" in err


def test_data_norm_needs_calibration_data(tmp_path, capsys):
    path = _model(tmp_path / "m.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc1")], {"w": W})
    err = _fails(capsys, str(path))
    assert "--method data_norm needs calibration data" in err and "--data CALIB.npz" in err


def test_calibration_data_of_the_wrong_shape(tmp_path, capsys):
    path = _model(tmp_path / "m.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc1")], {"w": W})
    np.savez(tmp_path / "d.npz", x=np.ones((5, 7)), y=np.zeros(5, np.int64))
    err = _fails(capsys, str(path), "--data", str(tmp_path / "d.npz"))
    assert "x has examples of shape (7,), the model's input is (4,)" in err


def test_a_matmul_with_the_weight_first_is_refused(tmp_path, capsys):
    nodes = [helper.make_node("MatMul", ["w", "x"], ["y"], name="fc1")]
    path = _model(tmp_path / "m.onnx", nodes, {"w": np.ones((3, 3))}, (None, 3), (None, 3))
    err = _fails(capsys, str(path), "--method", "simple")
    assert "ONNX node 'fc1' (MatMul) reads a constant as its first input" in err
