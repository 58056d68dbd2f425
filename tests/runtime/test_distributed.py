"""Data-parallel training without MPI: how a batch splits, the losses' shared denominators, the one
gradient buffer, and the trainer run by N threads that sum like MPI ranks (`ThreadWorld`), which must
train to the single-process weights and metrics. `tests/reliability/test_mpi.py` runs real `mpirun`."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from snnc.runtime import distributed
from snnc.runtime.distributed import SINGLE, GradientBuffer, World, launched_size, reduce_epoch, share
from snnc.runtime.losses import (
    MeanSquareError,
    RelativeMeanSquareError,
    SparseCategoricalCrossentropy,
    SpikeCountRegulariser,
    TimeToFirstSpikeCrossentropy,
)
from snnc.runtime.metrics import MeanSquaredError, SparseCategoricalAccuracy
from snnc.runtime.trainer import Trainer
from trainer_fakes import FakeArtefact, blobs


class ThreadWorld(World):
    """`size` threads of one process as ranks: allreduce sums the ranks' buffers in rank order."""

    def __init__(self, rank: int, size: int, shared: dict) -> None:
        self.rank, self.size, self.shared = rank, size, shared

    def allreduce(self, buffer: np.ndarray) -> None:
        s = self.shared
        s["parts"][self.rank] = buffer.copy()
        s["barrier"].wait()
        total = s["parts"][0].copy()
        for part in s["parts"][1:]:
            total += part
        s["barrier"].wait()
        s["calls"][self.rank] += 1
        buffer[...] = total

    def barrier(self) -> None:
        self.shared["barrier"].wait()


# --------------------------------------------------------------------------------------- splitting
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_shares_cover_a_batch_in_order_and_differ_by_at_most_one_row(size):
    for n in range(0, 23):
        bounds = [share(n, r, size) for r in range(size)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(bounds[r][1] == bounds[r + 1][0] for r in range(size - 1))
        sizes = [hi - lo for lo, hi in bounds]
        assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
        assert max(sizes) <= ThreadWorld(0, size, {}).capacity(max(n, 1))


def test_launch_size_comes_from_the_launchers_variables():
    assert launched_size({}) == 1
    assert launched_size({"OMPI_COMM_WORLD_SIZE": "3"}) == 3
    assert launched_size({"PMI_SIZE": "2"}) == 2
    assert launched_size({"SLURM_STEP_NUM_TASKS": "4"}) == 4
    assert launched_size({"OMPI_COMM_WORLD_SIZE": "x"}) == 1


def test_without_a_launch_the_world_is_one_process_and_mpi_is_not_imported(monkeypatch):
    import sys

    for name in distributed.LAUNCH_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SNNC_MPI", raising=False)
    monkeypatch.setattr(distributed, "_world", None)
    monkeypatch.delitem(sys.modules, "mpi4py.MPI", raising=False)
    assert distributed.world() is SINGLE and not SINGLE.distributed
    assert "mpi4py.MPI" not in sys.modules


def test_a_launch_of_several_ranks_without_mpi4py_is_a_diagnostic(monkeypatch):
    import sys

    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setattr(distributed, "_world", None)
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # `from mpi4py import MPI` raises ImportError
    with pytest.raises(distributed.RuntimeConfigError) as err:
        distributed.world()
    assert err.value.code == "E-MPI" and "snnc[mpi]" in err.value.hint


# ---------------------------------------------------------------------- losses over a shared batch
LOSSES = [
    (SparseCategoricalCrossentropy(temperature=0.7), "labels"),
    (TimeToFirstSpikeCrossentropy(alpha=0.1, t_nospike=30.0), "labels"),
    (RelativeMeanSquareError(delta=1.0, t_nospike=30.0), "labels"),
    (MeanSquareError(), "values"),
]


@pytest.mark.parametrize(("loss", "kind"), LOSSES, ids=lambda v: getattr(v, "name", v))
def test_a_share_of_a_batch_gets_the_whole_batchs_gradient_rows_bit_for_bit(loss, kind):
    rng = np.random.default_rng(3)
    y = rng.uniform(1.0, 20.0, (7, 4))
    y[2, 1] = np.inf if loss.readout else y[2, 1]  # a neuron that never spiked
    target = rng.integers(0, 4, 7) if kind == "labels" else rng.normal(0, 1, (7, 4))
    value, grad = loss(y, target)
    parts = [loss(y[lo:hi], target[lo:hi], batch=7) for lo, hi in (share(7, r, 3) for r in range(3))]
    assert np.array_equal(np.concatenate([g for _, g in parts]), grad)
    assert sum(v for v, _ in parts) == pytest.approx(value, rel=1e-12)


def test_the_regulariser_of_a_share_uses_the_whole_batchs_mean_count():
    reg = SpikeCountRegulariser(upper=0.3, lower=0.2, nu_upper=2.0, nu_lower=1.0)
    counts = np.random.default_rng(4).integers(0, 5, (9, 6)).astype(float)
    value, grad = reg(counts)
    total = counts.sum(axis=0)
    for lo, hi in (share(9, r, 2) for r in range(2)):
        v, g = reg(counts[lo:hi], total=total, batch=9)
        assert v == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(g, grad[lo:hi], rtol=1e-12)


# ------------------------------------------------------------------------------ collectives
def test_gradients_travel_in_one_allreduce_as_views_of_one_buffer():
    shared = {"parts": [None, None], "barrier": threading.Barrier(2), "calls": [0, 0]}
    grads = [{"b": np.full((2, 3), r + 1.0), "a": np.arange(4.0) * (r + 1)} for r in range(2)]
    out: list = [None, None]

    def rank(r: int) -> None:
        out[r] = GradientBuffer().reduce(ThreadWorld(r, 2, shared), grads[r])

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shared["calls"] == [1, 1]
    for r in range(2):
        assert np.array_equal(out[r]["b"], np.full((2, 3), 3.0))
        assert np.array_equal(out[r]["a"], np.arange(4.0) * 3)
        assert out[r]["a"].base is out[r]["b"].base  # one contiguous buffer


def test_an_epochs_metrics_and_loss_are_summed_over_the_ranks():
    shared = {"parts": [None, None], "barrier": threading.Barrier(2), "calls": [0, 0]}
    got: list = [None, None]

    def rank(r: int) -> None:
        acc, mse = SparseCategoricalAccuracy(), MeanSquaredError()
        acc.correct, acc.total, mse.sum, mse.count = 3 + r, 5, 0.5 * (r + 1), 4
        loss = reduce_epoch(ThreadWorld(r, 2, shared), 1.25 * (r + 1), {"a": acc, "m": mse})
        got[r] = (loss, acc.correct, acc.total, mse.sum, mse.count)

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got[0] == got[1] == (3.75, 7, 10, 1.5, 8)
    assert isinstance(got[0][1], int)


# --------------------------------------------------------------------- the trainer on N "ranks"
def _train(world: World, regularise: bool) -> tuple[dict, list, dict]:
    x, y = blobs(n=37)
    vx, vy = blobs(n=11, seed=5)
    art = FakeArtefact(batch_size=5)
    regs = {"h": SpikeCountRegulariser(upper=0.05, nu_upper=0.1)} if regularise else None
    trainer = Trainer(
        art, "sparse_categorical_crossentropy", "adam", 5, regularisers=regs, seed=2, world=world
    )
    trainer.train({"x": x}, {"out": y}, 2, validation_x={"x": vx}, validation_y={"out": vy}, callbacks=())
    trainer.evaluate({"x": vx}, {"out": vy}, callbacks=())
    return (
        {k: v.copy() for k, v in art.weights.items()},
        trainer.history,
        {**trainer.last_test, "alloc": art.allocated},
    )


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("regularise", [False, True])
def test_ranks_train_to_the_single_process_weights_and_metrics(size, regularise):
    """37 examples in batches of 5 over 3 ranks: shares of 2, 2, 1 and a last batch of 2 leaves a rank
    with no rows. The fake artefact sums rows in float64 matmuls, so weights agree to rounding."""
    weights, history, test = _train(SINGLE, regularise)
    shared = {"parts": [None] * size, "barrier": threading.Barrier(size), "calls": [0] * size}
    results: list = [None] * size
    errors: list = []

    def rank(r: int) -> None:
        try:
            results[r] = _train(ThreadWorld(r, size, shared), regularise)
        except BaseException as exc:  # noqa: BLE001 - reported below, and the barrier released
            errors.append(exc)
            shared["barrier"].abort()

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    # per epoch ceil(37 / 5) = 8 training batches (one gradient allreduce each, and one of the spike
    # counts with a regulariser, also in the 3 validation batches), then two epoch summaries (train and
    # validation); the test set's summary comes last
    per_epoch = 8 + (8 + 3 if regularise else 0) + 2
    assert shared["calls"] == [2 * per_epoch + 1] * size
    for w, h, t in results:
        for k in weights:
            np.testing.assert_allclose(w[k], weights[k], rtol=1e-6, atol=1e-7)
            assert not np.array_equal(w[k], FakeArtefact().weights[k])  # it did train
        assert t["alloc"] == -(-5 // size) and test["alloc"] == 5
        assert t["accuracy"] == test["accuracy"] and t["loss"] == pytest.approx(test["loss"], rel=1e-6)
        for mine, ref in zip(h, history, strict=True):
            for split in ("train", "validation"):
                assert mine[split]["accuracy"] == ref[split]["accuracy"]
                assert mine[split]["loss"] == pytest.approx(ref[split]["loss"], rel=1e-6)


def test_a_regulariser_inside_the_compiled_backward_pass_is_refused_under_mpi():
    """It reads one rank's batch counts, so the ranks would train differently: refused, not wrong."""
    from types import SimpleNamespace

    from snnc.runtime.errors import RuntimeConfigError

    distributed.check_supported(SimpleNamespace(manifest={"eventprop": {}}))  # nothing folded: fine
    c_artefact = SimpleNamespace(manifest={"eventprop": {"regularised": {"h": {"cnt": "a", "nsum": "b"}}}})
    any_backend = SimpleNamespace(manifest={})
    network = SimpleNamespace(
        training=SimpleNamespace(populations={"h": SimpleNamespace(regularisation=object())})
    )
    for artefact, net in ((c_artefact, None), (any_backend, network)):
        with pytest.raises(RuntimeConfigError) as err:
            distributed.check_supported(artefact, net)
        assert err.value.code == "E-MPI-REGULARISER"
        assert "regulariser of h is applied" in err.value.diagnostics[0].message
    with pytest.raises(RuntimeConfigError):
        Trainer(
            FakeArtefactWithManifest(c_artefact.manifest),
            "sparse_categorical_crossentropy",
            world=ThreadWorld(0, 2, {}),
        )


def test_an_artefact_that_sums_its_regulariser_counts_over_the_ranks_is_accepted_and_wired():
    """The C and GeNN loaders have a `count_reduce` hook: the trainer hands it the world's allreduce,
    so the compiled regulariser reads the global batch's counts (tests/reliability/test_mpi.py runs it)."""
    manifest = {"eventprop": {"regularised": {"h": {"cnt": "a", "nsum": "b", "ntrials": "c"}}}}
    artefact = FakeArtefactWithManifest(manifest)
    artefact.count_reduce = None
    world = ThreadWorld(0, 2, {})
    Trainer(artefact, "sparse_categorical_crossentropy", world=world)
    assert artefact.count_reduce == world.allreduce
    alone = FakeArtefactWithManifest(manifest)
    alone.count_reduce = None
    Trainer(alone, "sparse_categorical_crossentropy", world=SINGLE)
    assert alone.count_reduce is None  # one process: nothing to sum


class FakeArtefactWithManifest(FakeArtefact):
    def __init__(self, manifest):
        super().__init__()
        self.manifest = manifest
