"""`snnc convert`: numpy-trained ANNs on the 8x8 digits, written as ONNX, converted to spiking
networks and run by the C backend: firing rates against ReLU activations, accuracy against the ANN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("sklearn")

from snnc.frontend.convert_norm import data_norm  # noqa: E402
from snnc.frontend.onnx_graph import read_model, to_layers  # noqa: E402
from snnc.runtime.artefact import RecordRequest  # noqa: E402
from snnc.runtime.datasets.analog import analog, encode  # noqa: E402

from snnc.cli import main  # noqa: E402
from tests.convert import ann  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return ann.digits()


@pytest.fixture(scope="module")
def mlp(digits, tmp_path_factory):
    """(onnx path, data path, weights) of a 64-64-10 MLP with biases."""
    x, y, tx, ty = digits
    folder = tmp_path_factory.mktemp("mlp")
    w = ann.train_mlp(x, y, epochs=20, bias=True)
    return ann.mlp_onnx(w, folder / "mlp.onnx"), ann.save_data(folder / "digits.npz", x, y, tx, ty), w


@pytest.fixture(scope="module")
def cnn(digits, tmp_path_factory):
    x, y, tx, ty = digits
    folder = tmp_path_factory.mktemp("cnn")
    w = ann.train_cnn(x, y, epochs=15, bias=True)
    img = lambda a: a.reshape(-1, 1, 8, 8)  # noqa: E731
    data = ann.save_data(folder / "digits.npz", img(x), y, img(tx), ty)
    return ann.cnn_onnx(w, folder / "cnn.onnx"), data, w


def convert(onnx_path: Path, data: Path, out: Path, *extra: str) -> int:
    return main(["convert", str(onnx_path), "--data", str(data), "-o", str(out), *extra])


def rates(snn: Path, data: Path, pops: list[str], steps: int, n: int) -> dict[str, np.ndarray]:
    """Spikes per step of `pops` on the first `n` test examples (C backend)."""
    import snnc

    net = snnc.compile(str(snn), batch_size=n, duration=float(steps))
    test = analog(data, duration=float(steps), channels_first=True).test.subset(np.arange(n))
    res = net.run({"x": test}, RecordRequest.of(spikes=pops))
    return {p: res.spikes[p].sum(axis=1) / steps for p in pops}


def test_mlp_converts_to_a_readable_network_with_a_mapping_table(mlp, tmp_path, capsys):
    onnx_path, data, _ = mlp
    out = tmp_path / "net" / "mlp.snn"
    assert convert(onnx_path, data, out) == 0
    printed = capsys.readouterr().out
    assert "relu1      Relu    hidden population fc1 (64,) (ConvertIF)" in printed
    assert "mlp_weights/fc1.npy [64, 64] [pre, post]" in printed
    text = out.read_text()
    assert (
        'x -> fc1 : Dense(weight = File("mlp_weights/fc1.npy")), Exponential(tau = 1 ms)   # onnx: Gemm "fc1"'
        in text
    )
    rel = text.split('analog(path = "')[1].split('"')[0]
    assert (out.parent / rel).resolve() == data.resolve()  # relative to the .snn file's folder
    assert (out.parent / "mlp_weights" / "fc2.npy").is_file()
    assert main(["check", str(out)]) == 0


def test_mlp_firing_rates_follow_relu_activations(mlp, digits, tmp_path):
    onnx_path, data, w = mlp
    out = tmp_path / "mlp.snn"
    assert convert(onnx_path, data, out, "--timesteps", "1000") == 0
    model = to_layers(read_model(onnx_path))
    lam = data_norm(model, digits[0])
    n = 16
    hidden = np.maximum(digits[2][:n] @ w[0] + w[2], 0) / lam[1]
    got = rates(out, data, ["fc1"], 1000, n)["fc1"]
    r = np.corrcoef(got.ravel(), np.clip(hidden, 0, 1).ravel())[0, 1]
    assert r >= 0.99, r


def test_cnn_firing_rates_follow_relu_activations_layer_by_layer(cnn, digits, tmp_path, capsys):
    onnx_path, data, w = cnn
    out = tmp_path / "cnn.snn"
    assert convert(onnx_path, data, out, "--timesteps", "1000") == 0
    text = out.read_text()
    assert 'Conv2D(filters = 8, kernel = (3, 3), stride = 1, padding = "same"' in text  # pads 1, 1, 1, 1
    assert '# onnx: AveragePool "/pool/AveragePool" -> Flatten "/flatten/Flatten" -> Gemm "/fc1/Gemm"' in text
    model = to_layers(read_model(onnx_path))
    lam = data_norm(model, digits[0].reshape(-1, 1, 8, 8))
    n = 8
    _, conv, _, h, _ = ann.cnn_forward(w, digits[2][:n])
    got = rates(out, data, ["conv", "fc1"], 1000, n)
    conv_hwc = conv.transpose(0, 2, 3, 1).reshape(n, -1) / lam[1]  # snnc's (H, W, C) order
    for pop, want in (("conv", conv_hwc), ("fc1", h / lam[2])):
        r = np.corrcoef(got[pop].ravel(), np.clip(want, 0, 1).ravel())[0, 1]
        assert r >= 0.99, (pop, r)


def _accuracy(snn: Path, capsys) -> float:
    assert main(["evaluate", str(snn), "--no-checkpoint", "--quiet"]) == 0
    line = capsys.readouterr().out
    return float(line.split("accuracy ")[1].split()[0])


def test_mlp_accuracy_within_one_point_of_the_ann(mlp, digits, tmp_path, capsys):
    onnx_path, data, w = mlp
    ann_acc = float(np.mean(ann.mlp_logits(w, digits[2]).argmax(1) == digits[3]))
    out = tmp_path / "mlp.snn"
    assert convert(onnx_path, data, out, "--timesteps", "100") == 0
    capsys.readouterr()
    assert _accuracy(out, capsys) >= ann_acc - 0.01


@pytest.mark.slow
@pytest.mark.parametrize("method", ["data_norm", "spike_norm", "few_spike"])
def test_cnn_accuracy_near_the_ann(cnn, digits, tmp_path, capsys, method):
    onnx_path, data, w = cnn
    ann_acc = float(np.mean(ann.cnn_forward(w, digits[2])[-1].argmax(1) == digits[3]))
    out = tmp_path / "cnn.snn"
    assert convert(onnx_path, data, out, "--timesteps", "200", "--method", method) == 0
    capsys.readouterr()
    assert _accuracy(out, capsys) >= ann_acc - (0.02 if method == "few_spike" else 0.01)


def test_regular_coding_is_an_integrate_and_fire_input():
    x = np.array([[0.0, 0.25, 0.5, 1.0, 2.0]])
    spikes = encode(x, "regular", 1.0, 1.0, 100.0, np.random.default_rng(0))
    counts = np.bincount(spikes.ids, minlength=5)
    assert counts.tolist() == [0, 25, 50, 100, 100]  # rates clip at one spike per step
    assert np.all(spikes.times % 1.0 == 0.0)  # at the start of a step: emitted in that step


def test_poisson_coding_has_the_rate_on_average():
    x = np.full((1, 200), 0.3)
    spikes = encode(x, "poisson", 1.0, 1.0, 100.0, np.random.default_rng(0))
    assert abs(spikes.ids.size / (200 * 100) - 0.3) < 0.01


def test_eventprop_fine_tunes_the_converted_network(mlp, tmp_path, capsys):
    """The converted file is an ordinary network: with eventprop in its train block, `snnc train`
    runs and moves the weights; the tuned network still classifies as well as the converted one."""
    onnx_path, data, _ = mlp
    out = tmp_path / "mlp.snn"
    assert convert(onnx_path, data, out, "--timesteps", "50") == 0
    text = out.read_text().replace(
        "algorithm  = none",
        "algorithm  = eventprop(max_spikes = 50)\n    optimizer  = adam(lr = 0.001)\n    epochs     = 1",
    )
    out.write_text(text)
    capsys.readouterr()
    converted = _accuracy(out, capsys)
    assert main(["train", str(out), "--quiet", "--out", str(tmp_path / "run")]) == 0
    tuned = float(capsys.readouterr().out.split("test: loss")[1].split("accuracy ")[1].split()[0])
    assert tuned >= converted - 0.01
    ckpt = np.load(tmp_path / "run" / "epoch-0000.npz")
    assert not np.allclose(ckpt["weights/x_to_fc1"], np.load(tmp_path / "mlp_weights" / "fc1.npy"))
    # the per-neuron biases are filed with the weights, unchanged (EventProp trains the weights only)
    assert np.allclose(ckpt["weights/bias_fc1"], np.load(tmp_path / "mlp_weights" / "fc1_bias.npy"))


def _binary(a: np.ndarray, alpha: float, k: int) -> np.ndarray:
    """What k few-spike digits send of `a`: greedy binary digits of a / alpha, times alpha."""
    left, out = np.clip(a / alpha, 0, 1), np.zeros_like(a)
    for j in range(k):
        bit = left >= 2.0 ** -(j + 1)
        left, out = left - bit * 2.0 ** -(j + 1), out + bit * 2.0 ** -(j + 1)
    return out * alpha


def test_few_spike_layers_send_the_binary_digits_of_their_activations(mlp, digits, tmp_path, capsys):
    """Stoeckl & Maass 2021: layer fc1's spikes in its K-step window, weighted alpha 2^-(j+1), give its
    ReLU activation (of the coded input) to K bits; the network answers in 2K + 1 steps."""
    onnx_path, data, w = mlp
    out = tmp_path / "mlp.snn"
    k = 8
    assert convert(onnx_path, data, out, "--method", "few_spike", "--steps-per-layer", str(k)) == 0
    assert "duration   = 17.0 ms" in out.read_text()
    alpha = data_norm(to_layers(read_model(onnx_path)), digits[0])
    n = 16
    import snnc

    net = snnc.compile(str(out), batch_size=n)
    test = analog(data, coding="few_spike", k=k, duration=17.0).test.subset(np.arange(n))
    spikes = net.run({"x": test}, RecordRequest.of(spikes=["fc1"])).spikes["fc1"]
    assert not spikes[:, :k].any() and not spikes[:, 2 * k :].any()  # only in its window
    decoded = np.einsum("bjn,j->bn", spikes[:, k : 2 * k], alpha[1] * 2.0 ** -np.arange(1, k + 1))
    want = _binary(np.maximum(_binary(digits[2][:n], 1.0, k) @ w[0] + w[2], 0), alpha[1], k)
    assert np.max(np.abs(decoded - want)) <= alpha[1] * 2.0**-k + 1e-6
    ann_acc = float(np.mean(ann.mlp_logits(w, digits[2]).argmax(1) == digits[3]))
    capsys.readouterr()
    assert _accuracy(out, capsys) >= ann_acc - 0.02


@pytest.mark.genn
def test_the_converted_biased_mlp_evaluates_the_same_through_genn(mlp, tmp_path, capsys):
    """Its biases are per-neuron `bias` params, which GeNN takes too."""
    pytest.importorskip("pygenn")
    onnx_path, data, _ = mlp
    out = tmp_path / "mlp.snn"
    assert convert(onnx_path, data, out, "--timesteps", "50") == 0
    assert 'bias = File("mlp_weights/fc1_bias.npy")' in out.read_text()
    capsys.readouterr()
    results = []
    for backend in ("c", "genn"):
        assert main(["evaluate", str(out), "--no-checkpoint", "--quiet", "--backend", backend]) == 0
        results.append(capsys.readouterr().out.split(": test ")[1])
    assert results[0] == results[1]  # the same loss and accuracy to the printed digits


@pytest.mark.slow
@pytest.mark.genn
@pytest.mark.parametrize("method", ["data_norm", "few_spike"])
def test_the_converted_cnn_evaluates_the_same_through_genn(digits, tmp_path, capsys, method):
    """Without biases (the biased MLP: above)."""
    pytest.importorskip("pygenn")
    x, y, tx, ty = digits
    img = lambda a: a.reshape(-1, 1, 8, 8)  # noqa: E731
    data = ann.save_data(tmp_path / "digits.npz", img(x), y, img(tx), ty)
    onnx_path = ann.cnn_onnx(ann.train_cnn(x, y, epochs=5), tmp_path / "cnn.onnx")
    out = tmp_path / "cnn.snn"
    assert convert(onnx_path, data, out, "--method", method, "--timesteps", "50") == 0
    assert 'padding = "same"' in out.read_text()  # pads 1 with a 3x3 kernel: what GeNN takes
    capsys.readouterr()
    results = []
    for backend in ("c", "genn"):
        assert main(["evaluate", str(out), "--no-checkpoint", "--quiet", "--backend", backend]) == 0
        results.append(capsys.readouterr().out.split(": test ")[1])
    assert results[0] == results[1]  # the same loss and accuracy to the printed digits
