"""Data-parallel training over MPI: which rank am I, which rows of a batch are mine, one allreduce.

Under `mpirun -n N` (or `srun`) with mpi4py installed, every rank runs the same program. The trainer
splits each global batch into N contiguous shares (`share`: the first `B mod N` ranks get one row
more), each rank runs forward and backward on its share with the loss divided by the global batch
size, and `World.allreduce` sums the ranks' gradients in place, in one collective on one contiguous
float64 buffer (`GradientBuffer`). Every rank then applies the same optimiser step to the same
weights, so the global batch, the learning rate and the result do not depend on N.

Without mpi4py, or outside an MPI launch, or with one rank, `world()` is `SINGLE`: its collectives
are identities and the trainer takes exactly the path it took before MPI existed. mpi4py is imported
only when the environment shows an MPI launch (`LAUNCH_SIZE_VARIABLES`), so a plain `snnc train`
never pays for MPI start-up; `SNNC_MPI=0` turns MPI off, `SNNC_MPI=1` asks for it whatever the
environment says.

GeNN's own multi-GPU path would replace `allreduce` here: pygenn built with NCCL gives a model
`ncclAllReduce` over its gradient custom-update variables (mlGeNN's `CompiledTrainingNetwork` calls it
per batch); the trainer would then skip the host allreduce and read the reduced gradients back.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from snnc.runtime.errors import RuntimeConfigError

#: environment variables by which launchers announce the number of ranks (Open MPI, MPICH/Hydra and
#: Intel MPI, MVAPICH, Slurm's srun)
LAUNCH_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS")


class World:
    """One process, no communication: the collectives leave their arguments as they are."""

    rank = 0
    size = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def allreduce(self, buffer: np.ndarray) -> None:
        """Sum `buffer` (contiguous) over the ranks, in place."""

    def barrier(self) -> None: ...

    def abort(self, code: int = 1) -> None:
        """Stop every rank (the launcher reports which one called this)."""
        sys.exit(code)

    def share(self, n: int) -> tuple[int, int]:
        """[lo, hi) of this rank's rows of a batch of `n` rows."""
        return share(n, self.rank, self.size)

    def capacity(self, batch_size: int) -> int:
        """Rows a rank's artefact needs for a global batch of `batch_size` (the largest share)."""
        return -(-int(batch_size) // self.size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


SINGLE = World()


class MpiWorld(World):
    """MPI_COMM_WORLD through mpi4py."""

    def __init__(self, comm: Any, mpi: Any) -> None:
        self.comm, self._mpi = comm, mpi
        self.rank, self.size = int(comm.Get_rank()), int(comm.Get_size())

    def allreduce(self, buffer: np.ndarray) -> None:
        if not buffer.flags.c_contiguous:
            raise ValueError("allreduce needs a contiguous buffer")
        self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)


def share(n: int, rank: int, size: int) -> tuple[int, int]:
    """[lo, hi) of rank `rank`'s rows when `n` rows are split over `size` ranks as evenly as possible."""
    q, r = divmod(int(n), int(size))
    lo = rank * q + min(rank, r)
    return lo, lo + q + (1 if rank < r else 0)


def launched_size(environ: Mapping[str, str] | None = None) -> int:
    """The number of ranks a launcher announced (1 when none did)."""
    env = os.environ if environ is None else environ
    for name in LAUNCH_SIZE_VARIABLES:
        value = env.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


_world: World | None = None


def world() -> World:
    """This process's world, created once: `MpiWorld` under a launch of several ranks, else `SINGLE`."""
    global _world
    if _world is None:
        _world = _make_world()
    return _world


def current() -> World | None:
    """The world if one was created (None: nothing in this process asked for MPI)."""
    return _world


def _make_world() -> World:
    switch = os.environ.get("SNNC_MPI", "")
    if switch == "0" or (switch != "1" and launched_size() <= 1):
        return SINGLE
    try:
        from mpi4py import MPI
    except ImportError:
        raise RuntimeConfigError(
            "E-MPI",
            f"launched as {launched_size()} MPI ranks, but mpi4py is not installed, so the ranks "
            "cannot share their gradients",
            "pip install 'snnc[mpi]' (mpi4py, built against your MPI), or run one process",
        ) from None
    comm = MPI.COMM_WORLD
    if comm.Get_size() <= 1:
        return SINGLE
    made = MpiWorld(comm, MPI)
    _abort_on_uncaught(made)
    return made


def _abort_on_uncaught(w: World) -> None:
    """An exception that ends one rank must end all of them: the others would wait in the next
    allreduce for ever. The traceback is printed first, then MPI_Abort names the rank."""
    previous = sys.excepthook

    def hook(kind, value, tb):  # noqa: ANN001
        previous(kind, value, tb)
        sys.stderr.write(f"snnc: rank {w.rank} of {w.size} failed; stopping every rank\n")
        w.abort(1)

    sys.excepthook = hook


def stop_others(code: int) -> None:
    """A command ends with `code`; when it failed on one rank of several, the others are stopped."""
    w = current()
    if code != 0 and w is not None and w.distributed:
        sys.stderr.write(f"snnc: rank {w.rank} of {w.size} failed (exit {code}); stopping every rank\n")
        w.abort(code)


# --------------------------------------------------------------------------------------------------
# the one buffer a batch's gradients travel in
# --------------------------------------------------------------------------------------------------
class GradientBuffer:
    """Every projection's gradient plus a few extra numbers, packed into one contiguous float64
    array so that a batch costs one allreduce; the unpacked gradients are views into it."""

    def __init__(self) -> None:
        self._layout: tuple[tuple[str, tuple[int, ...]], ...] | None = None
        self._buffer = np.zeros(0)

    def reduce(self, w: World, grads: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The sum over ranks of `grads` (same keys and shapes on every rank)."""
        layout = tuple((k, tuple(np.shape(grads[k]))) for k in sorted(grads))
        if layout != self._layout:
            self._layout = layout
            self._buffer = np.zeros(sum(int(np.prod(s)) for _, s in layout), np.float64)
        views, at = {}, 0
        for key, shape in layout:
            size = int(np.prod(shape))
            view = self._buffer[at : at + size]
            view[...] = np.asarray(grads[key], dtype=np.float64).reshape(-1)
            views[key] = view.reshape(shape)
            at += size
        w.allreduce(self._buffer)
        return views


def check_supported(artefact: Any, network: Any = None) -> None:
    """What the ranks cannot yet share is refused before training, not discovered in the results.

    A spike-count regulariser that the gradient pass folded into the backward pass (EventProp's)
    reads the spike counts of the whole global batch: an artefact with a `count_reduce` hook (the C
    and GeNN loaders) sums them over the ranks (`share_counts`); one without is refused. The
    regulariser is found in the C manifest, or, for any backend, in the network's training IR."""
    from snnc.runtime.driver import folded_regularisers

    if hasattr(artefact, "count_reduce"):
        return
    folded = set(folded_regularisers(artefact))
    pops = getattr(getattr(network, "training", None), "populations", None) or {}
    folded |= {name for name, pg in pops.items() if getattr(pg, "regularisation", None) is not None}
    folded = sorted(folded)
    if folded:
        raise RuntimeConfigError(
            "E-MPI-REGULARISER",
            f"the spike-count regulariser of {', '.join(folded)} is applied inside the compiled backward "
            "pass from one rank's batch counts, so it would differ between ranks",
            "train this network in one process, or without `regularisation` in its train block",
            getattr(getattr(getattr(network, "train", None), "regularisation", None), "span", None),
        )


def share_counts(w: World, artefact: Any) -> None:
    """Let `artefact` sum a compiled regulariser's spike counts over the ranks before each backward
    pass (one small allreduce per batch, only where the network has such a regulariser)."""
    if w.distributed and hasattr(artefact, "count_reduce"):
        artefact.count_reduce = w.allreduce


def summed_counts(
    parts: Sequence[np.ndarray], trials: int, reduce: Callable[[np.ndarray], None] | None
) -> tuple[list[np.ndarray], float]:
    """A compiled regulariser's batch statistics: per-population spike counts and the trials they
    span, packed into one float64 buffer and, under data-parallel training (`reduce`, an
    artefact's `count_reduce`), summed over the ranks in one collective."""
    buffer = np.concatenate([*(np.asarray(p, np.float64) for p in parts), [float(trials)]])
    if reduce is not None:
        reduce(buffer)
    out, at = [], 0
    for part in parts:
        out.append(buffer[at : at + np.size(part)])
        at += np.size(part)
    return out, float(buffer[-1])


def reduce_epoch(w: World, loss_sum: float, metrics: Mapping[str, Any]) -> float:
    """Sum an epoch's loss and the metrics' accumulators over the ranks (one small allreduce);
    the metrics are updated in place, the global loss sum is returned."""
    if not w.distributed:
        return loss_sum
    fields = [(m, f) for _, m in sorted(metrics.items()) for f in _ACCUMULATORS if hasattr(m, f)]
    buffer = np.array([loss_sum, *(float(getattr(m, f)) for m, f in fields)], np.float64)
    w.allreduce(buffer)
    for (m, f), value in zip(fields, buffer[1:], strict=True):
        setattr(m, f, type(getattr(m, f))(value))
    return float(buffer[0])


#: the running sums a metric keeps (metrics.py); summed over ranks, they give the global result
_ACCUMULATORS = ("correct", "total", "sum", "count")
