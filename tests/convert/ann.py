"""Small ANNs on scikit-learn's 8x8 digits, trained here with numpy and written as ONNX with
onnx.helper: the inputs of the conversion tests (no torch needed). Biases are left out (snnc's
populations take no per-neuron bias yet)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FILTERS, HIDDEN = 8, 32


def digits(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test), pixels scaled to [0, 1], 3/4 : 1/4 after a seeded shuffle."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = d.data / 16.0, d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n = (3 * len(y)) // 4
    return x[order[:n]], y[order[:n]], x[order[n:]], y[order[n:]]


def save_data(path: Path, x: np.ndarray, y: np.ndarray, tx: np.ndarray, ty: np.ndarray) -> Path:
    np.savez(path, x=x, y=y, test_x=tx, test_y=ty)
    return path


class Adam:
    def __init__(self, params: list[np.ndarray], lr: float = 0.01) -> None:
        self.params, self.lr, self.t = params, lr, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= self.lr * (m / (1 - 0.9**self.t)) / (np.sqrt(v / (1 - 0.999**self.t)) + 1e-8)


def _softmax_grad(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return p / len(y)


def train_mlp(
    x: np.ndarray, y: np.ndarray, hidden: int = 64, epochs: int = 30, seed: int = 0
) -> list[np.ndarray]:
    """64 -> hidden (ReLU) -> 10, no biases: [W1 (64, hidden), W2 (hidden, 10)]."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, np.sqrt(2 / 64), (64, hidden))
    w2 = rng.normal(0, np.sqrt(1 / hidden), (hidden, 10))
    opt = Adam([w1, w2])
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for b in range(0, len(y), 32):
            idx = order[b : b + 32]
            h = np.maximum(x[idx] @ w1, 0)
            g = _softmax_grad(h @ w2, y[idx])
            gh = (g @ w2.T) * (h > 0)
            opt.step([x[idx].T @ gh, h.T @ g])
    return [w1, w2]


def mlp_logits(w: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    return np.maximum(x @ w[0], 0) @ w[1]


def _patches(img: np.ndarray) -> np.ndarray:
    """[batch, 8, 8] -> [batch, 8, 8, 9] 3x3 windows, zero padding 1."""
    p = np.pad(img, ((0, 0), (1, 1), (1, 1)))
    return np.lib.stride_tricks.sliding_window_view(p, (3, 3), axis=(1, 2)).reshape(len(img), 8, 8, 9)


def cnn_forward(w: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Conv 3x3 (1 -> FILTERS, pad 1) -> ReLU -> AvgPool 2 -> Flatten (C, H, W) -> Gemm -> ReLU -> Gemm."""
    k, w2, w3 = w
    pat = _patches(x.reshape(-1, 8, 8))
    conv = np.maximum(np.einsum("bhwk,fk->bfhw", pat, k.reshape(FILTERS, 9)), 0)
    pool = conv.reshape(-1, FILTERS, 4, 2, 4, 2).mean(axis=(3, 5)).reshape(len(x), -1)
    h = np.maximum(pool @ w2, 0)
    return pat, conv, pool, h, h @ w3


def train_cnn(x: np.ndarray, y: np.ndarray, epochs: int = 25, seed: int = 0) -> list[np.ndarray]:
    """[conv kernel (FILTERS, 1, 3, 3), W2 (FILTERS*16, HIDDEN), W3 (HIDDEN, 10)], no biases."""
    rng = np.random.default_rng(seed)
    w = [
        rng.normal(0, np.sqrt(2 / 9), (FILTERS, 1, 3, 3)),
        rng.normal(0, np.sqrt(2 / (FILTERS * 16)), (FILTERS * 16, HIDDEN)),
        rng.normal(0, np.sqrt(1 / HIDDEN), (HIDDEN, 10)),
    ]
    opt = Adam(w)
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for b in range(0, len(y), 32):
            idx = order[b : b + 32]
            pat, conv, pool, h, logits = cnn_forward(w, x[idx])
            g = _softmax_grad(logits, y[idx])
            gh = (g @ w[2].T) * (h > 0)
            gpool = (gh @ w[1].T).reshape(-1, FILTERS, 4, 1, 4, 1)
            gconv = (np.broadcast_to(gpool, (len(idx), FILTERS, 4, 2, 4, 2)) / 4).reshape(-1, FILTERS, 8, 8)
            gconv = gconv * (conv > 0)
            gk = np.einsum("bhwk,bfhw->fk", pat, gconv).reshape(FILTERS, 1, 3, 3)
            opt.step([gk, pool.T @ gh, h.T @ g])
    return w


def mlp_onnx(w: list[np.ndarray], path: Path, names: tuple[str, ...] = ("fc1", "relu1", "fc2")) -> Path:
    """x [N, 64] -> Gemm -> Relu -> MatMul -> logits, as PyTorch-like node names."""
    from onnx import helper, numpy_helper

    init = [
        numpy_helper.from_array(w[0].T.astype(np.float32), "fc1.weight"),  # Gemm with transB (PyTorch's)
        numpy_helper.from_array(w[1].astype(np.float32), "fc2.weight"),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "fc1.weight"], ["h"], name=names[0], transB=1),
        helper.make_node("Relu", ["h"], ["a"], name=names[1]),
        helper.make_node("MatMul", ["a", "fc2.weight"], ["logits"], name=names[2]),
    ]
    return _save(nodes, init, [None, 64], path)


def cnn_onnx(w: list[np.ndarray], path: Path) -> Path:
    import onnx  # noqa: F401
    from onnx import helper, numpy_helper

    init = [
        numpy_helper.from_array(w[0].astype(np.float32), "conv.weight"),
        numpy_helper.from_array(w[1].T.astype(np.float32), "fc1.weight"),
        numpy_helper.from_array(w[2].T.astype(np.float32), "fc2.weight"),
    ]
    nodes = [
        helper.make_node(
            "Conv", ["x", "conv.weight"], ["c"], name="/conv/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Relu", ["c"], ["cr"], name="/relu/Relu"),
        helper.make_node(
            "AveragePool", ["cr"], ["p"], name="/pool/AveragePool", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("Flatten", ["p"], ["f"], name="/flatten/Flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc1.weight"], ["h"], name="/fc1/Gemm", transB=1),
        helper.make_node("Relu", ["h"], ["hr"], name="/relu_1/Relu"),
        helper.make_node("Gemm", ["hr", "fc2.weight"], ["logits"], name="/fc2/Gemm", transB=1),
    ]
    return _save(nodes, init, [None, 1, 8, 8], path)


def _save(nodes, init, shape, path: Path) -> Path:  # noqa: ANN001
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "ann",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 10])],
        init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path
