"""Every connectivity type agrees with a dense numpy reference on random weights and spikes.

The reference builds its own [pre][post] matrix from the definitions (conv: output position looks
at its receptive field) and runs the same Discrete IR step order in float64.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from snnc.ir.model import Connectivity, Initialiser
from snnc.runtime.artefact import RecordRequest

from snnc.api import build_compiled
from tests.backends.netbuild import exponential, lif, network, source

TAU_M, TAU_S, STEPS = 20.0, 5.0, 40


def conv_matrix(kernel, shape, stride, padding):  # noqa: ANN001, ANN201
    h, w, c = shape
    kh, kw, _, f = kernel.shape
    if padding == "same":
        oh, ow = math.ceil(h / stride), math.ceil(w / stride)
        pt = max((oh - 1) * stride + kh - h, 0) // 2
        pl = max((ow - 1) * stride + kw - w, 0) // 2
    else:
        oh, ow, pt, pl = (h - kh) // stride + 1, (w - kw) // stride + 1, 0, 0
    m = np.zeros((h * w * c, oh * ow * f))
    for oy in range(oh):
        for ox in range(ow):
            for fo in range(f):
                post = (oy * ow + ox) * f + fo
                for ky in range(kh):
                    for kx in range(kw):
                        y, x = oy * stride + ky - pt, ox * stride + kx - pl
                        if 0 <= y < h and 0 <= x < w:
                            for ci in range(c):
                                m[(y * w + x) * c + ci, post] += kernel[ky, kx, ci, fo]
    return m, (oh, ow, f)


def pool_matrix(shape, pool, stride):  # noqa: ANN001, ANN201
    h, w, c = shape
    oh, ow = (h - pool) // stride + 1, (w - pool) // stride + 1
    m = np.zeros((h * w * c, oh * ow * c))
    for oy in range(oh):
        for ox in range(ow):
            for ci in range(c):
                for ky in range(pool):
                    for kx in range(pool):
                        m[((oy * stride + ky) * w + ox * stride + kx) * c + ci, (oy * ow + ox) * c + ci] = (
                            1 / pool**2
                        )
    return m, (oh, ow, c)


def reference_v(raster: np.ndarray, m: np.ndarray) -> np.ndarray:
    """raster [steps, pre] -> v of the post LIF (no spikes: huge threshold) at the end of each step."""
    a, b = math.exp(-1.0 / TAU_M), math.exp(-1.0 / TAU_S)
    i = np.zeros(m.shape[1])
    v = np.zeros(m.shape[1])
    out = []
    for k in range(raster.shape[0]):
        if k >= 1:
            i = i + raster[k - 1] @ m
        v = i + (v - i) * a
        out.append(v.copy())
        i = i * b
    return np.array(out)


def simulate(pre_shape, post_shape, conn, weights=None):  # noqa: ANN001, ANN201
    rng = np.random.default_rng(11)
    n_pre = int(np.prod(pre_shape))
    raster = rng.random((STEPS, n_pre)) < 0.2
    net = network(
        [
            ("x", "SpikeSource", "input", pre_shape, {}),
            ("h", "LIF", "hidden", post_shape, {"params": {"v_thresh": 1e9}}),
        ],
        [("x_to_h", "x", "h", conn, Initialiser("normal", {"mean": 0.0, "sd": 1.0}), "Exponential", {})],
        [lif(), exponential(), source()],
        dt_ms=1.0,
        duration=float(STEPS),
    )
    compiled = build_compiled(net, batch_size=1, precision="double", seed=5)
    if weights is not None:
        compiled.set_weights({"x_to_h": weights})
    steps, ids = np.nonzero(raster)
    res = compiled.run({"x": [(steps * 1.0, ids)]}, RecordRequest.of(vars=[("h", "v")]))
    return compiled, raster, res.vars[("h", "v")][0]


def test_dense_matches_reference() -> None:
    compiled, raster, v = simulate((12,), (7,), Connectivity("dense"))
    w = compiled.weights["x_to_h"]
    assert w.shape == (12, 7) and np.std(w) > 0.3
    np.testing.assert_allclose(v, reference_v(raster, w), rtol=1e-10, atol=1e-10)


def test_sparse_matches_reference() -> None:
    compiled, raster, v = simulate((30,), (20,), Connectivity("sparse", {"p": 0.2}))
    conn = compiled.artefact.connectivity("x_to_h")
    w = compiled.weights["x_to_h"]
    m = np.zeros((30, 20))
    for i in range(30):
        for q in range(conn["row_ptr"][i], conn["row_ptr"][i + 1]):
            m[i, conn["col_idx"][q]] = w[q]
    assert 0.1 < np.count_nonzero(m) / m.size < 0.3  # drawn with p = 0.2
    np.testing.assert_allclose(v, reference_v(raster, m), rtol=1e-10, atol=1e-10)


def test_one_to_one_matches_reference() -> None:
    compiled, raster, v = simulate((9,), (9,), Connectivity("one_to_one"))
    np.testing.assert_allclose(
        v, reference_v(raster, np.diag(compiled.weights["x_to_h"])), rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize(
    ("shape", "kernel", "filters", "stride", "padding"),
    [
        ((6, 5, 2), 3, 3, 1, "valid"),
        ((7, 6, 2), 3, 2, 2, "same"),
        ((5, 5, 1), 2, 4, 2, "valid"),
    ],
)
def test_conv2d_matches_reference(shape, kernel, filters, stride, padding) -> None:  # noqa: ANN001
    rng = np.random.default_rng(2)
    k = rng.normal(size=(kernel, kernel, shape[2], filters))
    m, out_shape = conv_matrix(k, shape, stride, padding)
    conn = Connectivity(
        "conv2d", {"filters": filters, "kernel": (kernel, kernel), "stride": stride, "padding": padding}
    )
    _, raster, v = simulate(shape, out_shape, conn, weights=k)
    np.testing.assert_allclose(v, reference_v(raster, m), rtol=1e-10, atol=1e-10)


def test_avg_pool2d_matches_reference() -> None:
    m, out_shape = pool_matrix((6, 4, 3), 2, 2)
    _, raster, v = simulate((6, 4, 3), out_shape, Connectivity("avg_pool2d", {"pool": (2, 2), "stride": 2}))
    np.testing.assert_allclose(v, reference_v(raster, m), rtol=1e-10, atol=1e-10)


def test_conv_shape_mismatch_is_a_diagnostic() -> None:
    from snnc.ir.diagnostics import DiagnosticError

    conn = Connectivity("conv2d", {"filters": 2, "kernel": (3, 3), "stride": 1, "padding": "valid"})
    with pytest.raises(DiagnosticError) as info:
        simulate((5, 5, 1), (5, 5, 2), conn)
    assert info.value.diagnostics[0].code == "E-CONV-SHAPE"
    assert "(3, 3, 2)" in info.value.diagnostics[0].hint


def direct_conv(image, kernel, stride, pad, dilation, groups):  # noqa: ANN001, ANN201
    """Conv2D by its definition, output by output: image (H, W, C), kernel [kh, kw, C / G, F];
    output f reads the C / G channels of its group at the taps oy * s + ky * d - pad."""
    h, w, c = image.shape
    kh, kw, cg, f = kernel.shape
    (ph, pw), (dh, dw), fg = pad, dilation, f // groups
    padded = np.zeros((h + 2 * ph, w + 2 * pw, c))
    padded[ph : ph + h, pw : pw + w] = image
    oh, ow = (h + 2 * ph - dh * (kh - 1) - 1) // stride + 1, (w + 2 * pw - dw * (kw - 1) - 1) // stride + 1
    out = np.zeros((oh, ow, f))
    for oy in range(oh):
        for ox in range(ow):
            for fo in range(f):
                g = fo // fg
                taps = padded[
                    oy * stride : oy * stride + dh * (kh - 1) + 1 : dh,
                    ox * stride : ox * stride + dw * (kw - 1) + 1 : dw,
                    g * cg : (g + 1) * cg,
                ]
                out[oy, ox, fo] = np.sum(taps * kernel[:, :, :, fo])
    return out


@pytest.mark.parametrize(
    ("shape", "kernel", "filters", "stride", "pad", "dilation", "groups"),
    [
        ((7, 6, 2), 3, 4, 1, (1, 1), (2, 2), 1),  # dilated
        ((6, 6, 4), 3, 6, 2, (1, 0), (1, 1), 2),  # grouped, strided
        ((8, 7, 3), (2, 3), 3, 1, (0, 2), (3, 1), 3),  # depthwise, dilated unequally
    ],
)
def test_dilated_and_grouped_conv2d_match_the_definition(  # noqa: PLR0913
    shape,
    kernel,
    filters,
    stride,
    pad,
    dilation,
    groups,  # noqa: ANN001
) -> None:
    """The C loops walk a conv pre-centric (every output whose window holds a spiking input); the
    reference computes each output from its taps, so the two index the kernel independently."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    k = np.random.default_rng(4).normal(size=(kh, kw, shape[2] // groups, filters))
    n = math.prod(shape)
    m = np.stack(
        [direct_conv(np.eye(n)[i].reshape(shape), k, stride, pad, dilation, groups).ravel() for i in range(n)]
    )
    out_shape = direct_conv(np.zeros(shape), k, stride, pad, dilation, groups).shape
    args = {"filters": filters, "kernel": (kh, kw), "stride": stride, "padding": pad}
    args |= {"dilation": dilation, "groups": groups}
    compiled, raster, v = simulate(shape, out_shape, Connectivity("conv2d", args), weights=k)
    assert compiled.weights["x_to_h"].shape == k.shape
    np.testing.assert_allclose(v, reference_v(raster, m), rtol=1e-10, atol=1e-10)


def test_direct_conv_reference_is_torch_conv2d() -> None:
    """The reference above against PyTorch's conv2d (where torch is installed)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    image, k = rng.normal(size=(9, 8, 4)), rng.normal(size=(3, 2, 2, 6))
    ours = direct_conv(image, k, 2, (1, 2), (2, 3), 2)
    theirs = torch.nn.functional.conv2d(
        torch.tensor(image.transpose(2, 0, 1))[None],
        torch.tensor(k.transpose(3, 2, 0, 1)),
        stride=2,
        padding=(1, 2),
        dilation=(2, 3),
        groups=2,
    )
    np.testing.assert_allclose(ours, theirs[0].numpy().transpose(1, 2, 0), atol=1e-12)
