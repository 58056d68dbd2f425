"""snnc against mlGeNN (Yin-Yang EventProp, digits e-prop): seconds and learning per epoch, same run.

    python benchmarks/vs_mlgenn.py [--case yinyang|digits|shd] [--epochs 6] [--train N] [--test N]
                                   [--threads 1] [--seed N] [--compare-gradients N [--reference-dt MS]]

The network of examples/yinyang_eventprop.snn (5 spike inputs -> 100 LIF -> 3 leaky integrators,
exponential synapses, avg_var_exp_weight readout, sparse categorical cross-entropy, Adam 0.01 with
the learning rate times 0.97 per epoch, dt 0.1 ms, 30 ms per example) is built twice: once by snnc
(C backend) and once with mlGeNN's Keras-like API on pygenn's single-threaded CPU backend. Both get
the same spike data (snnc's Yin-Yang set) in the same order (no shuffling) and the same initial
weights (snnc's draw). The contestants take turns epoch by epoch, so both see the same load on a
shared machine.

`--case digits` does the same for examples/eprop_digits.snn (64 latency-coded pixels -> 100
recurrent ALIF -> 10 leaky integrators, delta synapses, avg_var readout, e-prop with c_reg 0.001,
f_target 10 Hz, tau_reg 500 ms, trained output bias, Adam 0.01 times 0.92 per epoch, dt 1 ms,
20 ms per example; all of the training and test split unless --train/--test are smaller) through
mlGeNN's EPropCompiler. snnc's neurons integrate an impulse w as v += (1 - exp(-dt/tau_mem)) w;
mlGeNN's ALIF adds w itself, so its hidden weights are snnc's times that factor (the same forward
pass and spike counts; Adam then steps those weights on another scale, so read the accuracies as
indicative), and its output LeakyIntegrate gets `scale_i=True`.

`--case shd` does the same for examples/shd_eventprop.snn (700 spike inputs -> 256 recurrent LIF ->
20 leaky integrators, exponential synapses, avg_var_exp_weight, the spike-count regulariser, Adam
0.001, dt 1 ms, 1000 steps) on SHD-shaped synthetic spikes (`_synthetic_shd.py`, seeded by --seed;
64 training and 32 test examples unless --train/--test say otherwise), through mlGeNN's
EventPropCompiler with the regulariser's strength divided by tau_mem**2 (its convention). Cases:

  - `mlgenn_b1`: mlGeNN, batch 1 (GeNN's CPU backend runs batch 1 only),
  - `snnc_b1`:   snnc, batch 1, `--threads` threads,
  - `snnc_b32`:  snnc, batch 32, `--threads` threads.

Prints per case the median, min and max seconds per training epoch (evaluation not included), the
training accuracy after every epoch and the test accuracy at the end (mlGeNN's weights evaluated by
mlGeNN's own InferenceCompiler), and the speed ratios mlGeNN / snnc. The last line is one JSON
object. Needs pygenn and ml_genn (neither is on the package index: build GeNN from source, then
`pip install ./ml_genn` from github.com/genn-team/ml_genn); without them it says so and exits 0.

`--compare-gradients N` trains nothing: it prints, for each of the first N examples (Yin-Yang or
SHD-shaped), how mlGeNN's gradient compares with snnc's from the same weights (cosine, ratio, signs;
see `compare_gradients`); `--reference-dt MS` adds both tools' cosines with snnc's gradient at that
finer step in double precision, the stand-in for the true gradient. Together with the
cross-evaluation above, this is how issue 14's question "why does mlGeNN learn faster per epoch" was
examined (`benchmarks/README.md`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
#: example, learning rate, its decay per epoch, dt (ms), steps per example
CASES = {
    "yinyang": (ROOT / "examples" / "yinyang_eventprop.snn", 0.01, 0.97, 0.1, 300),
    "digits": (ROOT / "examples" / "eprop_digits.snn", 0.01, 0.92, 1.0, 20),
    "shd": (ROOT / "examples" / "shd_eventprop.snn", 0.001, 1.0, 1.0, 1000),
}
#: training and test examples per case unless --train/--test say otherwise (None: the whole split)
SIZES = {"yinyang": (5000, 1000), "digits": (None, None), "shd": (64, 32)}
EXAMPLE, LR, GAMMA, DT, STEPS = CASES["yinyang"]


def _snnc_case(batch: int, threads: int, x, y, weights):  # noqa: ANN001, ANN202
    import snnc

    net = snnc.compile(str(EXAMPLE), batch_size=batch)
    net.set_threads(threads)
    net.set_weights(weights)
    trainer = net.make_trainer(batch_size=batch)
    return net, trainer


def _snnc_epoch(case, x, y, epoch: int) -> tuple[float, float]:  # noqa: ANN001
    _, trainer = case
    trainer.optimiser.lr = LR * GAMMA**epoch
    begin = time.perf_counter()
    metrics, _ = trainer.train(x, y, 1, start_epoch=epoch, shuffle=False, callbacks=[])
    seconds = time.perf_counter() - begin
    return seconds, float(next(iter(metrics.values())).result)


def _cross_evaluation(case_name: str, ml: Any, case, xt, yt) -> dict[str, float]:  # noqa: ANN001
    """Each contestant's trained weights (batch 1) evaluated by the other's forward pass: equal
    figures on the diagonal and across say the two forward passes agree, so a gap in test accuracy
    comes from the weights each learned, not from how each evaluates. Yin-Yang only (digits scales
    mlGeNN's weights)."""
    if case_name != "yinyang":
        return {}
    net, _ = case
    mine = {k: np.array(v, dtype=np.float32) for k, v in net.weights.items()}
    theirs = {k: np.array(v, dtype=np.float32) for k, v in ml.trained.items()}
    net.set_weights(theirs)
    out = {"snnc_evaluates_mlgenn_weights": _snnc_test(case, xt, yt)}
    net.set_weights(mine)
    spikes, labels = _mlgenn_spikes(xt["x"]), np.asarray(yt["out"])
    out["mlgenn_evaluates_snnc_b1_weights"] = ml.test(spikes, labels, mine)
    return out


def compare_gradients(
    x_all, y_all, weights: dict[str, np.ndarray], examples: int, contestant: type, reference_dt: float = 0.0
) -> list[dict]:  # noqa: ANN001
    """Per-example gradients of mlGeNN and snnc from the same weights (batch 1).

    mlGeNN keeps its gradients inside GeNN; one Adam step from fresh moments with lr = epsilon = 1e3
    moves each weight by -g/(1 + |g|/1e3), i.e. by -g to a part in 1e5, which reads them out. mlGeNN
    runs example n's backward pass during example n+1's forward pass and applies n's update after
    it, so each reading trains on examples (n, n+1) and sees n's gradient alone. Returns per example
    and projection the cosine, the median ratio mlGeNN/snnc and the share of equal signs.

    With `reference_dt` (ms), snnc's gradient from the same weights at that finer step in double
    precision stands for the true one: each row also gets both tools' cosines with it, which says
    which tool's discretisation is closer (where they differ)."""
    mine = snnc_gradients(x_all, y_all, weights, examples)
    fine = snnc_gradients(x_all, y_all, weights, examples, reference_dt) if reference_dt else None
    rows = []
    for n, ours in enumerate(mine):
        two = {k: v.subset(range(n, n + 2)) for k, v in x_all.items()}
        folder = tempfile.mkdtemp(prefix="vs_mlgenn_grad_")
        labels = np.asarray(y_all["out"][n : n + 2])
        ml = contestant(_mlgenn_spikes(two["x"]), labels, weights, folder, {"alpha": 1e3, "epsilon": 1e3})
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            ml.compiled.train(
                {ml.input: ml.spikes}, {ml.output: ml.labels}, num_epochs=1, shuffle=False, callbacks=[]
            )
            moved = ml.weights()
            ml.compiled.__exit__(None, None, None)
        finally:
            os.chdir(cwd)
        for key in ml.connections:
            g = np.asarray(ours[key], np.float64).ravel()
            theirs = -(moved[key].astype(np.float64) - weights[key]).ravel()
            big = np.abs(g) > 1e-6
            rows.append(
                {
                    "example": n,
                    "projection": key,
                    "cosine": _cosine(g, theirs),
                    "ratio_mlgenn_over_snnc": float(np.median(theirs[big] / g[big])),
                    "same_sign": float(np.mean(np.sign(theirs[big]) == np.sign(g[big]))),
                }
            )
            line = (
                f"example {n} {key}: cosine {rows[-1]['cosine']:.5f}, mlGeNN/snnc "
                f"{rows[-1]['ratio_mlgenn_over_snnc']:.4f}, same sign {rows[-1]['same_sign']:.3f}"
            )
            if fine is not None:
                ref = np.asarray(fine[n][key], np.float64).ravel()
                rows[-1]["cosine_snnc_reference"] = _cosine(g, ref)
                rows[-1]["cosine_mlgenn_reference"] = _cosine(theirs, ref)
                line += (
                    f"; against dt = {reference_dt} ms: snnc {rows[-1]['cosine_snnc_reference']:.5f}, "
                    f"mlGeNN {rows[-1]['cosine_mlgenn_reference']:.5f}"
                )
            print(line, flush=True)
    return rows


def snnc_gradients(
    x_all, y_all, weights: dict[str, np.ndarray], examples: int, dt: float = 0.0
) -> list[dict[str, np.ndarray]]:  # noqa: ANN001
    """snnc's gradient of each of the first `examples` examples from `weights` (batch 1): at the
    example's own dt in its own precision, or at `dt` (ms) in double precision."""
    from snnc.runtime.losses import get_loss

    import snnc

    fine = {"dt": dt, "precision": "double"} if dt else {}
    net = snnc.compile(str(EXAMPLE), batch_size=1, **fine)
    net.set_weights(weights)
    loss = get_loss("sparse_categorical_crossentropy")
    out = []
    for n in range(examples):
        res = net.artefact.run({k: v.subset(range(n, n + 1)) for k, v in x_all.items()})
        grads = net.artefact.backward({"out": loss(res.readouts["out"], y_all["out"][n : n + 1])[1]})
        out.append({k: np.asarray(v, np.float64) for k, v in grads.items()})
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _snnc_test(case, x, y) -> float:  # noqa: ANN001
    _, trainer = case
    metrics, _ = trainer.evaluate(x, y, callbacks=[])
    return float(next(iter(metrics.values())).result)


class MLGeNN:
    """The same network through mlGeNN's EventPropCompiler, built in a scratch folder."""

    def __init__(
        self,
        spikes: Any,
        labels: np.ndarray,
        weights: dict[str, np.ndarray],
        folder: str,
        adam: dict[str, float] | None = None,
    ):
        from ml_genn import InputLayer, Layer, SequentialNetwork
        from ml_genn.compilers import EventPropCompiler
        from ml_genn.compilers.event_prop_compiler import default_params
        from ml_genn.connectivity import Dense
        from ml_genn.neurons import LeakyIntegrate, LeakyIntegrateFire, SpikeInput
        from ml_genn.optimisers import Adam
        from ml_genn.synapses import Exponential

        self.folder, self.spikes, self.labels = folder, spikes, labels
        network = SequentialNetwork(default_params)
        with network:
            self.input = InputLayer(SpikeInput(max_spikes=5 * 2), 5)
            hidden = Layer(
                Dense(weights["x_to_h"]),
                LeakyIntegrateFire(v_thresh=1.0, tau_mem=20.0, tau_refrac=None),
                100,
                Exponential(5.0),
            )
            self.output = Layer(
                Dense(weights["h_to_out"]),
                LeakyIntegrate(tau_mem=20.0, readout="avg_var_exp_weight"),
                3,
                Exponential(5.0),
            )
        self.network = network
        self.connections = {"x_to_h": hidden.connection(), "h_to_out": self.output.connection()}
        compiler = EventPropCompiler(
            example_timesteps=STEPS,
            losses="sparse_categorical_crossentropy",
            optimiser=Adam(**(adam or {"alpha": LR})),
            batch_size=1,
            dt=DT,
            optimize_code=True,  # pygenn's CPU backend preference: compile with -O3, as issue 14 measured
        )
        self._compile(compiler)

    def _compile(self, compiler: Any) -> None:
        folder = self.folder
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            self.compiled = compiler.compile(self.network, name="vs_snnc_train")
            self.compiled.__enter__()
        finally:
            os.chdir(cwd)

    def epoch(self, epoch: int) -> tuple[float, float]:
        from ml_genn.callbacks import OptimiserParamSchedule

        schedule = OptimiserParamSchedule("alpha", lambda e, alpha: LR * GAMMA**e)
        begin = time.perf_counter()
        metrics, _ = self.compiled.train(
            {self.input: self.spikes},
            {self.output: self.labels},
            num_epochs=1,
            start_epoch=epoch,
            shuffle=False,
            callbacks=[schedule],
        )
        seconds = time.perf_counter() - begin
        return seconds, float(metrics[self.output].result)

    def weights(self) -> dict[str, np.ndarray]:
        out = {}
        for name, conn in self.connections.items():
            var = self.compiled.connection_populations[conn].vars["g"]
            var.pull_from_device()
            out[name] = np.array(var.values, dtype=np.float32).reshape(conn.source().shape[0], -1)
        return out

    def _set_trained(self) -> None:
        trained = self.weights()
        for name, conn in self.connections.items():
            conn.connectivity.weight = trained[name]

    def test(self, spikes: Any, labels: np.ndarray, weights: dict[str, np.ndarray] | None = None) -> float:
        """Test accuracy through mlGeNN's InferenceCompiler: of the trained weights, or of `weights`
        (another contestant's, for the cross-evaluation)."""
        from ml_genn.compilers import InferenceCompiler

        if self.compiled is not None:
            self._set_trained()
            self.trained = {n: np.array(c.connectivity.weight) for n, c in self.connections.items()}
            self.compiled.__exit__(None, None, None)  # mlGeNN runs one compiled network at a time
            self.compiled = None
        for name, conn in self.connections.items():
            conn.connectivity.weight = (weights or self.trained)[name]
        compiler = InferenceCompiler(
            evaluate_timesteps=STEPS,
            batch_size=1,
            dt=DT,
            reset_in_syn_between_batches=True,
            optimize_code=True,
        )
        cwd = os.getcwd()
        os.chdir(self.folder)
        try:  # GeNN builds and loads in the working folder
            compiled = compiler.compile(self.network, name="vs_snnc_test")
            with compiled:
                metrics, _ = compiled.evaluate({self.input: spikes}, {self.output: labels}, callbacks=[])
        finally:
            os.chdir(cwd)
        return float(metrics[self.output].result)


class MLGeNNEprop(MLGeNN):
    """examples/eprop_digits.snn through mlGeNN's EPropCompiler (see the module doc for the scale)."""

    def __init__(self, spikes: Any, labels: np.ndarray, weights: dict[str, np.ndarray], folder: str):
        from ml_genn import Connection, Network, Population
        from ml_genn.compilers import EPropCompiler
        from ml_genn.compilers.eprop_compiler import default_params
        from ml_genn.connectivity import Dense
        from ml_genn.neurons import AdaptiveLeakyIntegrateFire, LeakyIntegrate, SpikeInput
        from ml_genn.optimisers import Adam

        self.folder, self.spikes, self.labels = folder, spikes, labels
        scale = 1.0 - np.exp(-DT / 20.0)  # snnc's impulse into tau_mem = 20 ms, as v moves
        network = Network(default_params)
        with network:
            self.input = Population(SpikeInput(max_spikes=64), 64)
            hidden = Population(
                AdaptiveLeakyIntegrateFire(
                    v_thresh=1.0, tau_mem=20.0, tau_adapt=2000.0, beta=0.0174, tau_refrac=0.0
                ),
                100,
            )
            self.output = Population(
                LeakyIntegrate(tau_mem=20.0, bias=weights["bias_out"], scale_i=True, readout="avg_var"), 10
            )
            self.connections = {
                "x_to_h": Connection(self.input, hidden, Dense(weights["x_to_h"] * scale)),
                "h_to_h": Connection(hidden, hidden, Dense(weights["h_to_h"] * scale)),
                "h_to_out": Connection(hidden, self.output, Dense(weights["h_to_out"])),
            }
        self.network = network
        compiler = EPropCompiler(
            example_timesteps=STEPS,
            losses="sparse_categorical_crossentropy",
            optimiser=Adam(LR),
            c_reg=0.001,
            f_target=10.0,
            tau_reg=500.0,
            train_output_bias=True,
            batch_size=1,
            dt=DT,
            optimize_code=True,
        )
        self._compile(compiler)

    def _set_trained(self) -> None:
        super()._set_trained()
        var = self.compiled.neuron_populations[self.output].vars["Bias"]
        var.pull_from_device()
        self.output.neuron.bias = np.array(var.values, dtype=np.float32).reshape(-1)


class MLGeNNShd(MLGeNN):
    """examples/shd_eventprop.snn (700 -> 256 recurrent LIF -> 20 leaky integrators, Exponential
    synapses, avg_var_exp_weight, spike-count regularisation) through mlGeNN's EventPropCompiler.
    snnc's regulariser strength s corresponds to mlGeNN's reg_lambda s / tau_mem**2
    (passes/eventprop.py)."""

    def __init__(
        self,
        spikes: Any,
        labels: np.ndarray,
        weights: dict[str, np.ndarray],
        folder: str,
        adam: dict[str, float] | None = None,
        most_spikes: int | None = None,
        delays: dict[str, tuple[np.ndarray, int]] | None = None,
        delay_lr: float = 0.1,
    ):
        """`delays`: per connection name, initial delays in steps and the largest delay, learned
        with Adam at `delay_lr` (mlGeNN's EventProp with learnable delays, Mészáros et al. 2025)."""
        from ml_genn import Connection, Network, Population
        from ml_genn.compilers import EventPropCompiler
        from ml_genn.compilers.event_prop_compiler import default_params
        from ml_genn.connectivity import Dense
        from ml_genn.neurons import LeakyIntegrate, LeakyIntegrateFire, SpikeInput
        from ml_genn.optimisers import Adam
        from ml_genn.synapses import Exponential

        self.folder, self.spikes, self.labels = folder, spikes, labels
        # input spikes of the busiest example, of the test split too (its inference model reuses this)
        most = most_spikes or max(int(sp.end_spikes[-1]) for sp in spikes)
        network = Network(default_params)
        with network:
            self.input = Population(SpikeInput(max_spikes=most), 700)
            hidden = Population(LeakyIntegrateFire(v_thresh=1.0, tau_mem=20.0, tau_refrac=None), 256)
            self.output = Population(LeakyIntegrate(tau_mem=20.0, readout="avg_var_exp_weight"), 20)
            ends = {
                "x_to_h": (self.input, hidden),
                "h_to_h": (hidden, hidden),
                "h_to_out": (hidden, self.output),
            }
            self.connections = {}
            for name, (source, target) in ends.items():
                delay, most = (delays or {}).get(name, (0, None))
                self.connections[name] = Connection(
                    source, target, Dense(weights[name], delay), Exponential(5.0), max_delay_steps=most
                )
        self.network = network
        reg = 4e-9 / 20.0**2
        learned = [self.connections[name] for name in delays or {}]
        compiler = EventPropCompiler(
            example_timesteps=STEPS,
            losses="sparse_categorical_crossentropy",
            optimiser=Adam(**(adam or {"alpha": LR})),
            delay_learn_conns=learned,
            delay_optimiser=Adam(delay_lr) if learned else None,
            reg_lambda_upper=reg,
            reg_lambda_lower=reg,
            reg_nu_upper=14,
            max_spikes=300,
            batch_size=1,
            dt=DT,
            optimize_code=True,
        )
        self._compile(compiler)


def _synthetic_shd(train: int, test: int, seed: int) -> tuple[dict, dict, dict, dict]:
    """SHD-shaped spikes (benchmarks/_synthetic_shd.py) as snnc's x and y of a training and a test split."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _synthetic_shd import N_CHANNELS, make_batch, raster_to_times_ids
    from snnc.runtime.datasets.spikes import SpikeDataset

    def split(n: int, first_batch: int) -> tuple[dict, dict]:
        examples, labels = [], []
        for b in range(first_batch, first_batch + -(-n // 32)):
            raster, y = make_batch(b, 32, seed)
            examples += raster_to_times_ids(raster)
            labels += list(y)
        data = SpikeDataset.from_examples(examples[:n], np.asarray(labels[:n], np.int64), N_CHANNELS)
        return {"x": data}, {"out": np.asarray(labels[:n], np.int64)}

    x, y = split(train, 0)
    xt, yt = split(test, 1000)
    return x, y, xt, yt


def _mlgenn_spikes(data) -> list:  # noqa: ANN001
    """snnc's per-example spike lists as mlGeNN's PreprocessedSpikes."""
    from ml_genn.utils.data import preprocess_spikes

    out = []
    for i in range(len(data.offsets) - 1):
        times, ids = data.example(i)
        out.append(
            preprocess_spikes(np.asarray(times, dtype=float), np.asarray(ids, dtype=int), data.num_neurons)
        )
    return out


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=sorted(CASES), default="yinyang")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--train", type=int, default=None, help="training examples per epoch (see SIZES)")
    ap.add_argument("--test", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1, help="snnc's threads per batch")
    ap.add_argument("--seed", type=int, default=None, help="draw the initial weights with this seed")
    ap.add_argument(
        "--compare-gradients",
        type=int,
        default=0,
        metavar="N",
        help="instead of training: compare both tools' gradients on the first N examples",
    )
    ap.add_argument(
        "--reference-dt",
        type=float,
        default=0.0,
        metavar="MS",
        help="with --compare-gradients: also compare both with snnc's gradient at this finer dt (double)",
    )
    args = ap.parse_args()
    if args.reference_dt and not args.compare_gradients:
        ap.error("--reference-dt goes with --compare-gradients")
    try:
        import ml_genn  # noqa: F401
        import pygenn  # noqa: F401
    except ImportError as err:
        print(f"skipped: this benchmark needs pygenn and ml_genn ({err}); see the docstring")
        print(json.dumps({"benchmark": "vs_mlgenn", "skipped": str(err)}))
        return 0

    from snnc.runtime.session import load_data, xy

    import snnc

    global EXAMPLE, LR, GAMMA, DT, STEPS
    EXAMPLE, LR, GAMMA, DT, STEPS = CASES[args.case]

    seed = {} if args.seed is None else {"seed": args.seed}
    probe = snnc.compile(str(EXAMPLE), batch_size=1, **seed)
    args.train = args.train or SIZES[args.case][0]
    args.test = args.test or SIZES[args.case][1]
    if args.case == "shd":  # no SHD download: spikes of the same shape
        x_all, y_all, xt_all, yt_all = _synthetic_shd(args.train, args.test, args.seed or 0)
    else:
        data = load_data(probe.network)
        x_all, y_all = xy(probe.network, data.train)
        xt_all, yt_all = xy(probe.network, data.test)
    args.train = min(args.train or 10**9, len(next(iter(y_all.values()))))  # digits has 1347 and 450
    args.test = min(args.test or 10**9, len(next(iter(yt_all.values()))))
    x = {k: v.subset(range(args.train)) for k, v in x_all.items()}
    y = {k: v[: args.train] for k, v in y_all.items()}
    xt = {k: v.subset(range(args.test)) for k, v in xt_all.items()}
    yt = {k: v[: args.test] for k, v in yt_all.items()}
    weights = {k: np.array(v, dtype=np.float32) for k, v in probe.weights.items()}
    contestant = {"digits": MLGeNNEprop, "shd": MLGeNNShd}.get(args.case, MLGeNN)
    if args.compare_gradients:
        if args.case == "digits":
            ap.error("--compare-gradients compares EventProp gradients: --case yinyang or shd")
        rows = compare_gradients(x_all, y_all, weights, args.compare_gradients, contestant, args.reference_dt)
        print(json.dumps({"benchmark": "vs_mlgenn", "case": args.case, "seed": args.seed, "gradients": rows}))
        return 0

    cases: dict[str, Any] = {
        "snnc_b1": _snnc_case(1, args.threads, x, y, weights),
        "snnc_b32": _snnc_case(32, args.threads, x, y, weights),
    }
    folder = tempfile.mkdtemp(prefix="vs_mlgenn_")
    extra = {}
    if args.case == "shd":
        extra["most_spikes"] = int(max(np.diff(x["x"].offsets).max(), np.diff(xt["x"].offsets).max()))
    ml = contestant(_mlgenn_spikes(x["x"]), np.asarray(y["out"]), weights, folder, **extra)
    seconds: dict[str, list[float]] = {name: [] for name in ("mlgenn_b1", *cases)}
    accuracy: dict[str, list[float]] = {name: [] for name in seconds}
    for epoch in range(args.epochs):
        order = list(seconds)
        order = order[epoch % len(order) :] + order[: epoch % len(order)]  # who goes first rotates
        for name in order:
            s, acc = ml.epoch(epoch) if name == "mlgenn_b1" else _snnc_epoch(cases[name], x, y, epoch)
            seconds[name].append(s)
            accuracy[name].append(acc)
        print(
            f"epoch {epoch}: "
            + ", ".join(f"{n} {seconds[n][-1]:.2f} s (train acc {accuracy[n][-1]:.3f})" for n in seconds),
            flush=True,
        )
    test = {"mlgenn_b1": ml.test(_mlgenn_spikes(xt["x"]), np.asarray(yt["out"]))}
    test.update({name: _snnc_test(case, xt, yt) for name, case in cases.items()})
    cross = _cross_evaluation(args.case, ml, cases["snnc_b1"], xt, yt)
    summary = {name: _spread(values) for name, values in seconds.items()}
    ratios = {
        f"mlgenn_b1_over_{name}": summary["mlgenn_b1"]["median"] / summary[name]["median"] for name in cases
    }
    for name in seconds:
        s = summary[name]
        print(
            f"{name:10s} {s['median']:.2f} s/epoch (min {s['min']:.2f}, max {s['max']:.2f}); "
            f"train acc per epoch {' '.join(f'{a:.3f}' for a in accuracy[name])}; test acc {test[name]:.3f}"
        )
    for key, value in cross.items():
        print(f"{key}: test acc {value:.3f}")
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}x")
    print(
        json.dumps(
            {
                "benchmark": "vs_mlgenn",
                "case": args.case,
                "epochs": args.epochs,
                "train_examples": args.train,
                "test_examples": args.test,
                "threads": args.threads,
                "seed": args.seed,
                "seconds_per_epoch": summary,
                "train_accuracy": accuracy,
                "test_accuracy": test,
                "cross_evaluation": cross,
                "speed_ratios": ratios,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
