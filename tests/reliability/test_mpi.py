"""Issue 18's "done means": `mpirun -n 2` and `-n 3` train to the single-process weights and metrics.

Every run goes through the real command (`mpirun … python -m snnc train`) on the C backend. The
weights and the optimiser state are compared bit for bit: each rank's share of a batch gets the
single-process dL/dy row for row (the losses divide by the whole batch), the compiled backward pass
computes every row on its own, and the per-row float32 gradients are summed in float64, which in
these networks is exact in any grouping (ranks' partial sums, then the allreduce). Metrics: the
accuracies are equal, the losses (sums of float64 means in another order) agree to 1e-12.

Batches of 10 over 3 ranks split 4/3/3 and the last batch (64 mod 10 = 4 examples) 2/1/1; e-prop's
batches of 8 of 50 examples leave a last batch of 2, so one of 3 ranks has no rows at all. The
single-process reference run compiles into a shared cache, so the ranks never compile.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MPIRUN = shutil.which("mpirun") or shutil.which("mpiexec")

pytestmark = [
    pytest.mark.skipif(MPIRUN is None, reason="no mpirun: install Open MPI (apt-get install openmpi-bin)"),
    pytest.mark.skipif(
        importlib.util.find_spec("mpi4py") is None, reason="no mpi4py: pip install 'snnc[mpi]'"
    ),
]

YINYANG = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}

network small {
    input  x   = SpikeInput(4)
    hidden h   = LIF(20, tau_mem = 20 ms, v_thresh = 1.0, tau_refrac = 0 ms)
    output out = LeakyIntegrate(3, tau_mem = 20 ms, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 1.5, sd = 0.78)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.93, sd = 0.1)), Exponential(tau = 5 ms)
}

train small {
    algorithm  = eventprop(max_spikes = 100)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.01)
    data       = yinyang(train = 64, test = 48, t_min = 2 ms, t_max = 27 ms)
    dt         = 0.5 ms
    duration   = 30 ms
    batch_size = 10
    epochs     = 1
    seed       = 1
}
"""

EPROP = """
use std.{SpikeInput, ALIF, LI, Delta}

network digits {
    input  x   = SpikeInput(64)
    hidden h   = ALIF(24, tau_mem = 20 ms, tau_adapt = 200 ms, beta = 0.0174)
    output out = LI(10, tau_mem = 20 ms, readout = avg_var)
    x -> h   : Dense(weight = Normal(mean = 0.0, sd = 4.0)), Delta()
    h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.1)), Delta()
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 0.1)), Delta()
}

train digits {
    algorithm  = eprop(c_reg = 0.001, f_target = 10 Hz, tau_reg = 500 ms)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.01)
    data       = digits(encoding = latency, t_max = 20 ms, train = 50, test = 20)
    dt         = 1 ms
    duration   = 20 ms
    batch_size = 8
    epochs     = 1
    seed       = 1
}
"""

# SHD-shaped: a recurrent LIF layer trained with EventProp, readout the exponentially weighted mean
RECURRENT = """
use std.{SpikeInput, LIF, LI, Exponential}

network rec {
    input  x   = SpikeInput(64)
    hidden h   = LIF(24, tau_mem = 20 ms)
    output out = LI(10, tau_mem = 20 ms, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 0.5, sd = 0.3)), Exponential(tau = 5 ms)
    h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.1)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 0.3)), Exponential(tau = 5 ms)
}

train rec {
    algorithm  = eventprop(max_spikes = 100)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.01)
    data       = digits(encoding = latency, t_max = 20 ms, train = 50, test = 20)
    dt         = 0.5 ms
    duration   = 30 ms
    batch_size = 8
    epochs     = 2
    seed       = 1
}
"""


# Deep R on sparse projections: every rank draws the same rewiring (keyed by seed and step)
RECURRENT_DEEP_R = (
    RECURRENT.replace("h -> h   : Dense(", "h -> h   : Sparse(p = 0.3, ")
    .replace("x -> h   : Dense(", "x -> h   : Sparse(p = 0.5, ")
    .replace(
        "    dt         = 0.5 ms",
        "    rewiring   = deep_r(projections = (x_to_h, h_to_h), l1 = 1e-3)\n    dt         = 0.5 ms",
    )
)
EPROP_DEEP_R = EPROP.replace("h -> h   : Dense(", "h -> h   : Sparse(p = 0.3, ").replace(
    "    dt         = 1 ms",
    "    rewiring   = deep_r(projections = (h_to_h), l1 = 1e-3)\n    dt         = 1 ms",
)


def _open_mpi() -> bool:
    out = subprocess.run([MPIRUN, "--version"], capture_output=True, text=True, timeout=60)
    return "Open MPI" in out.stdout + out.stderr


def launcher(n: int) -> list[str]:
    """`mpirun -n N`; Open MPI also needs leave to run as root and more ranks than cores."""
    cmd = [MPIRUN, "-n", str(n)]
    if _open_mpi():
        cmd += ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    return cmd


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """One compile cache for the module; one thread per rank on a small machine."""
    return {
        **os.environ,
        "SNNC_CACHE_DIR": str(tmp_path_factory.mktemp("mpi-cache")),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }


def train(
    env: dict, ranks: int, path: Path, out: Path, *extra: str, timeout: int = 300
) -> subprocess.CompletedProcess:
    snnc = [sys.executable, "-m", "snnc", "train", str(path), "--out", str(out), "--quiet", *extra]
    cmd = snnc if ranks == 1 else [*launcher(ranks), *snnc]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)


def assert_same_run(single: Path, parallel: Path, ranks: int) -> None:
    """Bit-identical checkpoints (weights and optimiser state) in every epoch; equal metrics."""
    epochs = sorted(p.name for p in single.glob("epoch-*.npz"))
    assert epochs and epochs == sorted(p.name for p in parallel.glob("epoch-*.npz"))
    for name in epochs:
        a, b = np.load(single / name), np.load(parallel / name)
        assert set(a.files) == set(b.files)
        for key in a.files:
            if key != "meta.json":
                assert np.array_equal(a[key], b[key]), (name, key, np.max(np.abs(a[key] - b[key])))
    ma = json.loads((single / "metrics.json").read_text())
    mb = json.loads((parallel / "metrics.json").read_text())
    assert ma["ranks"] == 1 and mb["ranks"] == ranks
    for ea, eb in zip(ma["epochs"], mb["epochs"], strict=True):
        assert ea["train"]["accuracy"] == eb["train"]["accuracy"]
        assert eb["train"]["loss"] == pytest.approx(ea["train"]["loss"], rel=1e-12)
    assert (
        ma["test"]["accuracy"] == mb["test"]["accuracy"] and ma["test"]["examples"] == mb["test"]["examples"]
    )
    assert mb["test"]["loss"] == pytest.approx(ma["test"]["loss"], rel=1e-12)


def compare(tmp_path: Path, env: dict, source: str, ranks: int) -> subprocess.CompletedProcess:
    path = tmp_path / "net.snn"
    path.write_text(source)
    one = train(env, 1, path, tmp_path / "one")
    assert one.returncode == 0, one.stderr
    log = tmp_path / "log.jsonl"
    many = train(env, ranks, path, tmp_path / "many", "--log-json", str(log))
    assert many.returncode == 0, many.stdout + many.stderr
    assert_same_run(tmp_path / "one", tmp_path / "many", ranks)
    first = np.load(tmp_path / "one" / "epoch-0000.npz")
    assert not all(np.array_equal(first[k], np.zeros_like(first[k])) for k in first.files if "/m/" in k)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    starts = [r for r in records if r["event"] == "start"]
    assert len(starts) == 1 and starts[0]["ranks"] == ranks  # rank 0 alone writes the log
    assert many.stdout.count("test: ") == 1  # and prints
    return many


def test_eventprop_on_3_ranks_trains_to_the_single_process_weights(tmp_path, env):
    compare(tmp_path, env, YINYANG, 3)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("source", "ranks"),
    [
        (YINYANG, 2),
        (EPROP, 2),
        (EPROP, 3),
        (RECURRENT, 2),
        (RECURRENT, 3),
        (RECURRENT_DEEP_R, 2),
        (EPROP_DEEP_R, 2),
    ],
    ids=[
        "eventprop-yinyang-2",
        "eprop-2",
        "eprop-3",
        "eventprop-recurrent-2",
        "eventprop-recurrent-3",
        "eventprop-sparse-deep-r-2",
        "eprop-sparse-deep-r-2",
    ],
)
def test_more_networks_and_rank_counts_train_to_the_single_process_weights(tmp_path, env, source, ranks):
    compare(tmp_path, env, source, ranks)
    if "deep_r" in source:  # the equal checkpoints hold a structure that did move
        from snnc.api import compile_network

        drawn = compile_network(tmp_path / "net.snn", cache_dir=tmp_path / "cache").artefact
        last = np.load(sorted((tmp_path / "many").glob("epoch-*.npz"))[-1])
        assert (last["optimiser/rewiring/columns/h_to_h"] != drawn.connectivity("h_to_h")["col_idx"]).any()


@pytest.mark.slow
def test_the_python_api_under_mpirun_trains_as_one_process(tmp_path, env):
    """`net.train(...)` in a script run by mpirun: the same weights as the script run alone."""
    (tmp_path / "net.snn").write_text(EPROP)
    script = tmp_path / "script.py"
    script.write_text(
        "import sys, numpy as np, snnc\n"
        "from snnc.runtime.session import load_data, xy\n"
        "net = snnc.compile(sys.argv[1])\n"
        "x, y = xy(net.network, load_data(net.network).train)\n"
        "net.train(x, y, num_epochs=2, callbacks=())\n"
        "from snnc.runtime.distributed import world\n"
        "if world().rank == 0:\n"
        "    np.savez(sys.argv[2], **net.weights)\n"
    )
    for ranks, name in ((1, "one.npz"), (3, "three.npz")):
        cmd = [sys.executable, str(script), str(tmp_path / "net.snn"), str(tmp_path / name)]
        run = subprocess.run(
            cmd if ranks == 1 else [*launcher(ranks), *cmd],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout + run.stderr
    a, b = np.load(tmp_path / "one.npz"), np.load(tmp_path / "three.npz")
    for key in a.files:
        assert np.array_equal(a[key], b[key]), key


def test_a_failing_rank_stops_every_rank_and_names_itself(tmp_path, env):
    """A rank whose command fails (here every rank: no such file) aborts them all: the diagnostic,
    then which rank stopped the job, and a non-zero exit instead of ranks waiting for each other."""
    run = train(env, 2, tmp_path / "missing.snn", tmp_path / "run", timeout=120)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert "no such file" in run.stderr and "of 2 failed (exit 1); stopping every rank" in run.stderr


# ---------------------------------------------------------------------------------- kill, resume
KILLED = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}

network yy {
    input  x   = SpikeInput(5)
    hidden h   = LIF(40, tau_mem = 20 ms, v_thresh = 1.0, tau_refrac = 0 ms)
    output out = LeakyIntegrate(3, tau_mem = 20 ms, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 2.5, sd = 1.0)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.93, sd = 0.1)), Exponential(tau = 5 ms)
}

train yy {
    algorithm  = eventprop(max_spikes = 200)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.01)
    schedule   = exponential_decay(gamma = 0.9)
    augment    = (shift(max = 1), blend(n = 2, p = 0.5))
    data       = yinyang(train = 16000, test = 100, t_min = 2 ms, t_max = 27 ms, bias = true)
    validation_split = 0.1
    dt         = 0.1 ms
    duration   = 30 ms
    batch_size = 32
    epochs     = 4
    seed       = 3
}
"""


def _rank_pids(launcher_pid: int) -> dict[int, int]:
    """rank -> pid of the processes mpirun started (from their OMPI_COMM_WORLD_RANK)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        rank = [e for e in env if e.startswith(b"OMPI_COMM_WORLD_RANK=")]
        if ppid == launcher_pid and rank:
            found[int(rank[0].split(b"=")[1])] = int(entry.name)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the ranks' pids in /proc")
def test_a_killed_rank_stops_the_others_and_resume_on_another_count_finishes_the_run(tmp_path, env):
    if not _open_mpi():
        pytest.skip("finds ranks by Open MPI's OMPI_COMM_WORLD_RANK")
    path = tmp_path / "yy.snn"
    path.write_text(KILLED)
    straight = train(env, 1, path, tmp_path / "straight", timeout=600)
    assert straight.returncode == 0, straight.stderr
    out = tmp_path / "killed"
    snnc = [sys.executable, "-m", "snnc", "train", str(path), "--out", str(out), "--quiet", "--log-json", "-"]
    proc = subprocess.Popen(
        [*launcher(2), *snnc], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    for line in proc.stdout:  # rank 0's JSON records: kill rank 1 once epoch 1 is on disk
        if json.loads(line).get("event") == "epoch" and json.loads(line)["epoch"] == 1:
            break
    time.sleep(0.2)
    assert not (out / "epoch-0002.npz").exists(), "epoch 2 ended before the kill: make epochs longer"
    os.kill(_rank_pids(proc.pid)[1], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "rank 1" in err, err
    assert sorted(p.name for p in out.glob("epoch-*.npz")) == ["epoch-0000.npz", "epoch-0001.npz"]
    resumed = train(env, 3, path, out, "--resume", timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_same_run(tmp_path / "straight", out, 3)


@pytest.mark.genn
@pytest.mark.skipif(
    importlib.util.find_spec("pygenn") is None, reason="pygenn is not installed (extra 'genn')"
)
def test_the_genn_backend_on_3_ranks_trains_to_its_single_process_weights(tmp_path, env):
    """GeNN takes the same path: a regularised recurrent network on 3 ranks, whose last batch leaves
    one rank without rows (it must still join the counts' and the gradients' allreduce, with zeros),
    gives the single-process GeNN checkpoint bit for bit."""
    source = RECURRENT.replace(
        "    seed       = 1", "    regularisation = spike_count(strength = 1e-4, nu = 3)\n    seed = 1"
    ).replace("epochs     = 2", "epochs     = 1")
    path = tmp_path / "net.snn"
    path.write_text(source)
    genn_env = {**env, "SNNC_GENN_BACKEND": "single_threaded_cpu"}
    one = train(genn_env, 1, path, tmp_path / "one", "--backend", "genn", timeout=600)
    assert one.returncode == 0, one.stderr
    many = train(genn_env, 3, path, tmp_path / "many", "--backend", "genn", timeout=600)
    assert many.returncode == 0, many.stdout + many.stderr
    assert_same_run(tmp_path / "one", tmp_path / "many", 3)


def test_a_regulariser_inside_the_backward_pass_sees_the_whole_global_batch(tmp_path, env):
    """EventProp's compiled spike-count regulariser reads the batch's summed spike counts and its
    number of trials: the ranks sum both (one small allreduce) before each backward pass, so 3 ranks
    (uneven shares) train to the single-process weights bit for bit. With each rank's own counts
    the regulariser's rate, s·(N − νB)/B², would differ per rank and so would the weights. Each
    rank also augments only the examples of its shares (per-example streams), as one process would."""
    source = RECURRENT.replace(
        "    seed       = 1",
        "    regularisation = spike_count(strength = 1e-4, nu = 3)\n"
        "    augment    = (shift(max = 2), blend(n = 2, p = 0.5))\n    seed = 1",
    )
    compare(tmp_path, env, source, 3)


SHD_NET = """
use std.{SpikeInput, LIF, LI, Exponential}

network shdlike {
    input  x   = SpikeInput(70)
    hidden h   = LIF(24, tau_mem = 20 ms)
    output out = LI(4, tau_mem = 20 ms, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 1.5, sd = 0.7)), Exponential(tau = 5 ms)
    h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.05)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 0.3)), Exponential(tau = 5 ms)
}

train shdlike {
    algorithm  = eventprop(max_spikes = 100)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.01)
    data       = shd(path = "data", bin = 1.0, channels = 70)
    dt         = 1 ms
    duration   = 60 ms
    batch_size = 8
    epochs     = 2
    seed       = 1
%s}
"""

#: `snnc train` with every read of a lazily loaded (memory-mapped) data set recorded per rank
RECORDER = """
import json, os, sys
import numpy as np
from snnc.runtime.datasets.spikes import SpikeDataset
from snnc.runtime.distributed import world

reads = {}
def recording(method):
    def wrapped(self, idx):
        if self.lazy:
            split = "train" if "shd_train" in self.origin else "test"
            reads.setdefault(split, []).extend(np.atleast_1d(idx).tolist())
        return method(self, idx)
    return wrapped
SpikeDataset.subset = recording(SpikeDataset.subset)
SpikeDataset.example = recording(SpikeDataset.example)
from snnc.cli import main
try:
    code = main(sys.argv[1:])
finally:
    with open(os.path.join(os.environ["READS_DIR"], f"reads-{world().rank}.json"), "w") as f:
        json.dump(reads, f)
sys.exit(code)
"""


def _shares(n: int, ranks: int, epochs: int, batch_size: int, seed: int, shuffle: bool) -> list[list[int]]:
    """Each rank's examples over `epochs` epochs of `n`, as `Trainer.epoch_share` deals them."""
    from types import SimpleNamespace

    from snnc.runtime.distributed import World
    from snnc.runtime.trainer import Trainer

    out = []
    for r in range(ranks):
        w = World()
        w.rank, w.size = r, ranks
        t = Trainer(
            SimpleNamespace(), "sparse_categorical_crossentropy", batch_size=batch_size, seed=seed, world=w
        )
        out.append(sorted(np.concatenate([t.epoch_share(n, e, shuffle) for e in range(epochs)]).tolist()))
    return out


@pytest.mark.parametrize(
    ("ranks", "extra"),
    [
        (3, ""),
        pytest.param(2, "    augment    = (shift(max = 5))\n", marks=pytest.mark.slow),
        pytest.param(
            3,
            "    augment    = (shift(max = 5), blend(n = 2, p = 0.5))\n    validation_split = 0.25\n",
            marks=pytest.mark.slow,
        ),
    ],
    ids=["3-ranks", "2-ranks-augmented", "3-ranks-blended-validated"],
)
def test_each_rank_reads_only_its_share_of_a_cached_shd_set(tmp_path, env, ranks, extra):
    """Issue 18 item 2: the SHD cache is memory-mapped, and a rank reads from it only the examples it
    trains and tests on (every epoch: its share of each batch), yet trains to the one-process weights.
    With `blend` a rank also reads the partners its examples blend with, and with a validation split
    its validation shares: there only the weights are compared."""
    from tests.datasets.test_shd_tonic_augment import write_shd

    (tmp_path / "data").mkdir()
    write_shd(tmp_path / "data" / "shd_train.h5", n=30, classes=4)
    write_shd(tmp_path / "data" / "shd_test.h5", n=13, seed=1, classes=4)
    path = tmp_path / "net.snn"
    path.write_text(SHD_NET % extra)
    one = train(env, 1, path, tmp_path / "one")  # builds the cache beside the data
    assert one.returncode == 0, one.stderr
    (tmp_path / "script.py").write_text(RECORDER)
    reads = tmp_path / "reads"
    reads.mkdir()
    cmd = [sys.executable, str(tmp_path / "script.py"), "train", str(path), "--out", str(tmp_path / "many")]
    run = subprocess.run(
        [*launcher(ranks), *cmd, "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**env, "READS_DIR": str(reads)},
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert_same_run(tmp_path / "one", tmp_path / "many", ranks)
    first = np.load(tmp_path / "one" / "epoch-0000.npz")
    assert all(np.any(first[k] != 0) for k in first.files if "/m/" in k)  # every weight learned
    if "blend" in extra:
        return
    got = [json.loads((reads / f"reads-{r}.json").read_text()) for r in range(ranks)]
    train_shares = _shares(30, ranks, 2, 8, seed=1, shuffle=True)
    test_shares = _shares(13, ranks, 1, 8, seed=1, shuffle=False)
    for r in range(ranks):
        assert sorted(got[r]["train"]) == train_shares[r], r
        assert sorted(got[r]["test"]) == test_shares[r], r
    assert [len(s) for s in test_shares] == ([3 + 2, 3 + 2, 2 + 1] if ranks == 3 else [4 + 3, 4 + 2])
