"""Small ANNs on scikit-learn's 8x8 digits, trained here with numpy and written as ONNX with
onnx.helper: the inputs of the conversion tests (no torch needed). With `bias=True` every layer has
a trained bias (they become per-neuron `bias` params);
otherwise the biases stay zero and are not written."""

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
    x: np.ndarray, y: np.ndarray, hidden: int = 64, epochs: int = 30, seed: int = 0, bias: bool = False
) -> list[np.ndarray]:
    """64 -> hidden (ReLU) -> 10: [W1 (64, hidden), W2 (hidden, 10), b1, b2] (zero biases unless `bias`)."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, np.sqrt(2 / 64), (64, hidden))
    w2 = rng.normal(0, np.sqrt(1 / hidden), (hidden, 10))
    b1, b2 = np.zeros(hidden), np.zeros(10)
    opt = Adam([w1, w2, b1, b2])
    on = float(bias)
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for b in range(0, len(y), 32):
            idx = order[b : b + 32]
            h = np.maximum(x[idx] @ w1 + b1, 0)
            g = _softmax_grad(h @ w2 + b2, y[idx])
            gh = (g @ w2.T) * (h > 0)
            opt.step([x[idx].T @ gh, h.T @ g, on * gh.sum(0), on * g.sum(0)])
    return [w1, w2, b1, b2]


def mlp_logits(w: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    return np.maximum(x @ w[0] + w[2], 0) @ w[1] + w[3]


def _patches(img: np.ndarray) -> np.ndarray:
    """[batch, 8, 8] -> [batch, 8, 8, 9] 3x3 windows, zero padding 1."""
    p = np.pad(img, ((0, 0), (1, 1), (1, 1)))
    return np.lib.stride_tricks.sliding_window_view(p, (3, 3), axis=(1, 2)).reshape(len(img), 8, 8, 9)


def cnn_forward(w: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Conv 3x3 (1 -> FILTERS, pad 1) -> ReLU -> AvgPool 2 -> Flatten (C, H, W) -> Gemm -> ReLU -> Gemm."""
    k, w2, w3, bk, b2, b3 = w
    pat = _patches(x.reshape(-1, 8, 8))
    conv = np.maximum(np.einsum("bhwk,fk->bfhw", pat, k.reshape(FILTERS, 9)) + bk[:, None, None], 0)
    pool = conv.reshape(-1, FILTERS, 4, 2, 4, 2).mean(axis=(3, 5)).reshape(len(x), -1)
    h = np.maximum(pool @ w2 + b2, 0)
    return pat, conv, pool, h, h @ w3 + b3


def train_cnn(
    x: np.ndarray, y: np.ndarray, epochs: int = 25, seed: int = 0, bias: bool = False
) -> list[np.ndarray]:
    """[conv kernel (FILTERS, 1, 3, 3), W2 (FILTERS*16, HIDDEN), W3 (HIDDEN, 10), and the three
    biases] (zero unless `bias`)."""
    rng = np.random.default_rng(seed)
    w = [
        rng.normal(0, np.sqrt(2 / 9), (FILTERS, 1, 3, 3)),
        rng.normal(0, np.sqrt(2 / (FILTERS * 16)), (FILTERS * 16, HIDDEN)),
        rng.normal(0, np.sqrt(1 / HIDDEN), (HIDDEN, 10)),
        np.zeros(FILTERS),
        np.zeros(HIDDEN),
        np.zeros(10),
    ]
    opt = Adam(w)
    on = float(bias)
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
            biases = [on * gconv.sum(axis=(0, 2, 3)), on * gh.sum(0), on * g.sum(0)]
            opt.step([gk, pool.T @ gh, h.T @ g, *biases])
    return w


def _tensors(named: dict[str, np.ndarray]) -> list:
    from onnx import numpy_helper

    return [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in named.items() if np.any(v != 0)]


def _with_bias(inputs: list[str], bias: np.ndarray, name: str) -> list[str]:
    return [*inputs, name] if np.any(bias != 0) else inputs


def mlp_onnx(w: list[np.ndarray], path: Path, names: tuple[str, ...] = ("fc1", "relu1", "fc2")) -> Path:
    """x [N, 64] -> Gemm (+ C) -> Relu -> MatMul (-> Add) -> logits; a zero bias is not written."""
    from onnx import helper

    init = _tensors({"fc1.weight": w[0].T, "fc2.weight": w[1], "fc1.bias": w[2], "fc2.bias": w[3]})
    nodes = [  # Gemm with transB, as PyTorch writes Linear
        helper.make_node(
            "Gemm", _with_bias(["x", "fc1.weight"], w[2], "fc1.bias"), ["h"], name=names[0], transB=1
        ),
        helper.make_node("Relu", ["h"], ["a"], name=names[1]),
    ]
    if np.any(w[3] != 0):
        nodes += [
            helper.make_node("MatMul", ["a", "fc2.weight"], ["m"], name=names[2]),
            helper.make_node("Add", ["m", "fc2.bias"], ["logits"], name=names[2] + "_bias"),
        ]
    else:
        nodes.append(helper.make_node("MatMul", ["a", "fc2.weight"], ["logits"], name=names[2]))
    return _save(nodes, init, [None, 64], path)


def cnn_onnx(w: list[np.ndarray], path: Path) -> Path:
    from onnx import helper

    init = _tensors(
        {
            "conv.weight": w[0],
            "fc1.weight": w[1].T,
            "fc2.weight": w[2].T,
            "conv.bias": w[3],
            "fc1.bias": w[4],
            "fc2.bias": w[5],
        }
    )
    conv_in = _with_bias(["x", "conv.weight"], w[3], "conv.bias")
    nodes = [
        helper.make_node("Conv", conv_in, ["c"], name="/conv/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["cr"], name="/relu/Relu"),
        helper.make_node(
            "AveragePool", ["cr"], ["p"], name="/pool/AveragePool", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("Flatten", ["p"], ["f"], name="/flatten/Flatten", axis=1),
        helper.make_node(
            "Gemm", _with_bias(["f", "fc1.weight"], w[4], "fc1.bias"), ["h"], name="/fc1/Gemm", transB=1
        ),
        helper.make_node("Relu", ["h"], ["hr"], name="/relu_1/Relu"),
        helper.make_node(
            "Gemm", _with_bias(["hr", "fc2.weight"], w[5], "fc2.bias"), ["logits"], name="/fc2/Gemm", transB=1
        ),
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
