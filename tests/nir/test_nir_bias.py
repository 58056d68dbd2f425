"""Affine and Conv2d biases: imported as a constant current per neuron (the `...Bias` models),
simulated against NIR's equations solved by hand, and exported back onto the same node."""

from __future__ import annotations

import numpy as np
import pytest
from snnc.ir.diagnostics import DiagnosticError
from snnc.runtime.artefact import RecordRequest

from snnc.api import compile_network
from snnc.cli import main
from snnc.interop import export_nir, import_nir

nir = pytest.importorskip("nir")

TAU, TAU_MEM, TAU_SYN = 0.01, 0.01, 0.004  # s


def bias_graph(b_lif: np.ndarray, b_out: np.ndarray):
    """input -> Affine(b_lif) -> LIF -> Affine(b_out) -> CubaLI -> output, zero weights."""
    n, m = b_lif.size, b_out.size
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "fc1": nir.Affine(weight=np.zeros((n, 2)), bias=b_lif),
            "lif": nir.LIF(
                tau=np.full(n, TAU), r=np.full(n, 2.0), v_leak=np.zeros(n),
                v_threshold=np.ones(n), v_reset=np.zeros(n),
            ),
            "fc2": nir.Affine(weight=np.zeros((m, n)), bias=b_out),
            "li": nir.CubaLI(
                tau_mem=np.full(m, TAU_MEM), tau_syn=np.full(m, TAU_SYN), r=np.full(m, 1.5),
                v_leak=np.zeros(m), w_in=np.full(m, 0.5),
            ),
            "output": nir.Output(output_type={"output": np.array([m])}),
        },
        edges=[("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "li"), ("li", "output")],
    )  # fmt: skip


def test_affine_bias_drives_lif_and_cubali_as_nir_equations_say(tmp_path):
    b_lif, b_out = np.array([0.3, 0.8, 1.5]), np.array([0.4, -1.0])
    nir.write(str(tmp_path / "b.nir"), bias_graph(b_lif, b_out))
    assert main(["import", str(tmp_path / "b.nir"), "-o", str(tmp_path / "b.snn")]) == 0
    text = (tmp_path / "b.snn").read_text()
    assert "neuron NirLIFBias" in text and "neuron NirCubaLIBias" in text
    assert 'bias = File("b_weights/fc1_bias.npy")' in text
    np.testing.assert_array_equal(np.load(tmp_path / "b_weights" / "fc2_bias.npy"), b_out)

    dt = 0.05  # ms
    net = compile_network(str(tmp_path / "b.snn"), dt=dt, duration=40.0, precision="double")
    rec = RecordRequest.of(spikes=["lif"], vars=[("lif", "v"), ("li", "v")])
    res = net.run({"input_node": [(np.array([]), np.array([], dtype=int))]}, rec)
    t = (np.arange(res.vars[("li", "v")].shape[1]) + 1) * dt / 1e3  # end of each step, s

    # CubaLI: tau_syn dI/dt = -I + b, tau_mem dv/dt = -v + r w_in I, from rest.
    k = (TAU_MEM * np.exp(-t / TAU_MEM) - TAU_SYN * np.exp(-t / TAU_SYN)) / (TAU_MEM - TAU_SYN)
    want = 1.5 * 0.5 * b_out[None, :] * (1 - k[:, None])
    np.testing.assert_allclose(res.vars[("li", "v")][0], want, atol=1e-9)

    # LIF: tau dv/dt = -v + r b; it fires when v crosses 1 and restarts from 0: a period
    # T = -tau ln(1 - 1/(r b)); r b = 0.6 never fires and settles at 0.6.
    raster = res.spikes["lif"][0]
    assert not raster[:, 0].any()
    np.testing.assert_allclose(res.vars[("lif", "v")][0][-1, 0], 0.6 * (1 - np.exp(-0.04 / TAU)), rtol=1e-9)
    for j in (1, 2):
        period_ms = -TAU * np.log(1 - 1 / (2.0 * b_lif[j])) * 1e3
        times = (np.nonzero(raster[:, j])[0] + 1) * dt
        want_t = period_ms * np.arange(1, times.size + 1)
        assert times.size == int(40.0 // period_ms)  # no spike lost or added
        # each spike is up to one step late, and the reset starts the next period from that step
        assert np.all(np.diff(times) - period_ms >= -1e-9) and np.all(np.diff(times) - period_ms <= dt + 1e-9)
        assert abs(times[0] - want_t[0]) <= dt + 1e-9


def test_bias_round_trips_and_a_wrong_length_is_reported(tmp_path, capsys):
    b_lif, b_out = np.array([0.3, 0.8, 1.5]), np.array([0.4, -1.0])
    nir.write(str(tmp_path / "b.nir"), bias_graph(b_lif, b_out))
    import_nir(tmp_path / "b.nir", tmp_path / "b.snn")
    back = nir.read(str(export_nir(tmp_path / "b.snn", tmp_path / "back.nir")))
    assert isinstance(back.nodes["fc1"], nir.Affine) and isinstance(back.nodes["fc2"], nir.Affine)
    np.testing.assert_array_equal(back.nodes["fc1"].bias, b_lif)
    np.testing.assert_array_equal(back.nodes["fc2"].bias, b_out)
    assert type(back.nodes["lif"]).__name__ == "LIF" and type(back.nodes["li"]).__name__ == "CubaLI"
    np.testing.assert_allclose(back.nodes["li"].tau_syn, TAU_SYN)

    np.save(tmp_path / "b_weights" / "fc1_bias.npy", np.ones(4))  # edited by hand: one too many
    assert main(["check", str(tmp_path / "b.snn")]) == 1
    err = capsys.readouterr().err
    assert "b.snn:" in err and "holds 4 values" in err and "3 neurons" in err


def test_conv2d_bias_is_one_current_per_channel_and_round_trips(tmp_path):
    w = np.random.default_rng(0).uniform(-1, 1, (2, 1, 3, 3))
    bias = np.array([0.5, -0.25])
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([1, 5, 5])}),
            "conv": nir.Conv2d(
                input_shape=(5, 5), weight=w, stride=1, padding=0, dilation=1, groups=1, bias=bias
            ),
            "lif": nir.LIF(
                tau=np.full((2, 3, 3), TAU), r=np.ones((2, 3, 3)), v_leak=np.zeros((2, 3, 3)),
                v_threshold=np.ones((2, 3, 3)), v_reset=np.zeros((2, 3, 3)),
            ),
            "output": nir.Output(output_type={"output": np.array([2, 3, 3])}),
        },
        edges=[("input", "conv"), ("conv", "lif"), ("lif", "output")],
    )  # fmt: skip
    nir.write(str(tmp_path / "c.nir"), g)
    import_nir(tmp_path / "c.nir", tmp_path / "c.snn")
    # (H, W, C), channels last: the two channels' biases alternate
    np.testing.assert_array_equal(np.load(tmp_path / "c_weights" / "conv_bias.npy"), np.tile(bias, 9))
    back = nir.read(str(export_nir(tmp_path / "c.snn", tmp_path / "back.nir")))
    np.testing.assert_array_equal(back.nodes["conv"].bias, bias)
    np.testing.assert_allclose(back.nodes["conv"].weight, w)


def test_a_bias_before_a_delay_is_named(tmp_path):
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([1])}),
            "fc": nir.Affine(weight=np.ones((1, 1)), bias=np.ones(1)),
            "d": nir.Delay(delay=np.full(1, 0.001)),
            "i": nir.I(r=np.ones(1)),
        },
        edges=[("input", "fc"), ("fc", "d"), ("d", "i")],
        type_check=False,
    )
    nir.write(str(tmp_path / "d.nir"), g)
    with pytest.raises(DiagnosticError, match="NIR node 'd': a Delay after an Affine bias"):
        import_nir(tmp_path / "d.nir")


def cuba_bias_graph():
    """input(3) -> Affine(bias) -> CubaLIF(4) -> Affine(bias) -> CubaLI(2): EventProp trains through
    CubaLIF's synaptic current (a LIF's Dirac input it cannot)."""
    n, m = 4, 2
    rng = np.random.default_rng(0)

    def cuba(k: int) -> dict:
        return dict(
            tau_syn=np.full(k, 0.005),
            tau_mem=np.full(k, 0.01),
            r=np.ones(k),
            v_leak=np.zeros(k),
            w_in=np.ones(k),
        )

    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "fc1": nir.Affine(weight=rng.normal(0.03, 0.01, (n, 3)), bias=rng.normal(0.3, 0.2, n)),
            "lif": nir.CubaLIF(**cuba(n), v_threshold=np.ones(n), v_reset=np.zeros(n)),
            "fc2": nir.Affine(weight=rng.normal(0.005, 0.005, (m, n)), bias=rng.normal(0.0, 0.2, m)),
            "li": nir.CubaLI(**cuba(m)),
            "output": nir.Output(output_type={"output": np.array([m])}),
        },
        edges=[("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "li"), ("li", "output")],
    )


TRAIN = """
train c {
    algorithm = eventprop(max_spikes = 100)
    loss = sparse_categorical_crossentropy
    seed = 1
}
"""


def test_an_imported_bias_trains_under_eventprop_as_finite_differences_say(tmp_path):
    """`snnc import --train-bias` writes bias = Trainable(File(...)); dL/dbias of the hidden CubaLIF
    (through its i_bias state and the spike times) and of the CubaLI output against central finite
    differences of the simulated loss, float64. dt = 0.25 us: the FD estimate of the hidden bias
    carries the quantised spike times (rel. error 10 % at dt = 1 us, 1.2 % here) while the gradient
    moves < 0.5 % between the two."""
    from snnc.runtime.losses import get_loss

    from tests.runtime.gradcheck import compare, fd_gradients

    nir.write(str(tmp_path / "c.nir"), cuba_bias_graph())
    assert main(["import", str(tmp_path / "c.nir"), "-o", str(tmp_path / "c.snn"), "--train-bias"]) == 0
    text = (tmp_path / "c.snn").read_text()
    assert 'bias = Trainable(File("c_weights/fc1_bias.npy"))' in text
    (tmp_path / "c.snn").write_text(text + TRAIN)
    art = compile_network(
        str(tmp_path / "c.snn"), precision="double", dt=0.00025, duration=20.0, batch_size=4
    )
    art = art.artefact
    rng = np.random.default_rng(5)
    x = [(np.sort(rng.uniform(1.0, 12.0, 8)), rng.integers(0, 3, 8)) for _ in range(4)]
    loss, target = get_loss("sparse_categorical_crossentropy"), np.array([0, 1, 1, 0])

    def run():
        return art.run({"input_node": x})

    def value(res):
        return loss(res.readouts["li"], target)

    grads = art.backward({"li": value(run())[1]})
    np.testing.assert_array_equal(art.get_weights()["bias_lif"], np.load(tmp_path / "c_weights/fc1_bias.npy"))
    fd = fd_gradients(art, value, run, h=0.05, points=21, shrink=5, projections=("bias_lif", "bias_li"))
    for key in ("bias_lif", "bias_li"):
        cos, rel = compare(grads[key], fd[key])
        assert np.all(np.abs(fd[key]) > 1e-4), f"{key}: every bias should move the loss here"
        assert cos >= 0.99 and rel <= 0.05, f"{key}: cos {cos:.4f}, rel {rel:.4f}"

    # a training step's biases are what `snnc export --checkpoint` writes back onto the Affine nodes
    from snnc.runtime.checkpoint import save_checkpoint

    trained = art.get_weights()
    for key in ("bias_lif", "bias_li"):
        trained[key] = trained[key] - 0.5 * grads[key]
    path = save_checkpoint(tmp_path / "ck" / "epoch-0000.npz", trained, meta={"epoch": 0})
    back = nir.read(str(export_nir(tmp_path / "c.snn", tmp_path / "back.nir", checkpoint=str(path))))
    np.testing.assert_array_equal(back.nodes["fc1"].bias, trained["bias_lif"])
    np.testing.assert_array_equal(back.nodes["fc2"].bias, trained["bias_li"])
    assert not np.array_equal(trained["bias_lif"], np.load(tmp_path / "c_weights/fc1_bias.npy"))


def test_export_writes_trained_params_from_the_checkpoint_shared_and_per_neuron(tmp_path):
    """`snnc export --checkpoint` writes a trained param's checkpointed values, whether it is shared
    (one value: the export used to write its initial value) or per neuron."""
    from snnc.runtime.checkpoint import save_checkpoint

    nir.write(str(tmp_path / "b.nir"), bias_graph(np.array([0.1, 0.2, 0.3]), np.array([0.0, 0.1])))
    assert main(["import", str(tmp_path / "b.nir"), "-o", str(tmp_path / "b.snn")]) == 0
    text = (tmp_path / "b.snn").read_text()
    old = "tau = 10.0 ms, r = 2.0, v_leak = 0.0, v_threshold = 1.0,"
    assert old in text
    text = text.replace(
        old,
        "tau = Trainable(10.0 ms, per_neuron = true), r = 2.0, v_leak = 0.0, v_threshold = Trainable(1.0),",
    )
    (tmp_path / "b.snn").write_text(text)
    weights = {"tau_lif": np.array([9.0, 11.0, 12.0]), "v_threshold_lif": np.array([0.7])}
    path = save_checkpoint(tmp_path / "ck" / "epoch-0000.npz", weights, meta={"epoch": 0})
    back = nir.read(str(export_nir(tmp_path / "b.snn", tmp_path / "back.nir", checkpoint=str(path))))
    np.testing.assert_allclose(back.nodes["lif"].tau, [0.009, 0.011, 0.012])
    np.testing.assert_allclose(back.nodes["lif"].v_threshold, [0.7, 0.7, 0.7])
