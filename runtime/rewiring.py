"""Deep R rewiring (Bellec et al. 2018), as mlGeNN's `deep_r_conns`: a fixed number of connections
per projection, each with a fixed sign, that move during training.

A train block's `rewiring = deep_r(projections = (h_to_h), connectivity = 0.1, l1 = 1e-8)` keeps a
fixed number of each named projection's synapses active. Every active synapse keeps the sign it
started with (its initial weight's; a synapse activated later draws one at random). After each
optimiser step a synapse whose weight crossed zero against its sign goes dormant, and as many
inactive synapses, drawn uniformly, become active with weight 0 and fresh optimiser moments.
Before each step an L1 term pulls every active weight towards zero (`l1` times its sign is added to
the gradient, as mlGeNN's DeepRL1 does); inactive synapses have no gradient.

Two storages, one rule:
- **Dense** projections keep `connectivity` of their synapses active: an inactive synapse is a
  weight held at 0 under a mask, so compute stays dense.
- **Sparse** (CSR: FixedProbability, FixedNumberPost) projections are all active: their drawn
  structure sets the count, and each row keeps its length: a dormant synapse keeps its slot (its
  weight and moments) and moves its column index to a post neuron its row does not reach yet, drawn
  uniformly. The runtime rewrites the artefact's `col_idx` in place between batches
  (`driver.live_structure`); the kernel's loops walk `row_ptr`, which never changes, so memory and
  compute scale with the active synapses. mlGeNN differs here: it spreads the dormant count over
  rows drawn at random (each up to its SPARSE max_row_length), so a pre neuron's out-degree drifts;
  here it stays as drawn (a FixedNumberPost projection stays one).

The masks, signs and column indices travel in checkpoints; the draws are keyed by (seed, optimiser
step), so every MPI rank rewires alike and a resumed run rewires as the uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from snnc.ir.connectivity import kind_of
from snnc.runtime.errors import RuntimeConfigError, check_args

#: the keys of this rewiring's state among a checkpoint's optimiser arrays
PREFIX = "rewiring/"
_ARGS = ("projections", "connectivity", "l1")
_KEY = 0xDEE9  # the draws' stream, beside the seed, the projection's index and the step


@dataclass
class DeepR:
    projections: tuple[str, ...]
    connectivity: float | None  # the active fraction of the Dense ones (None: none is Dense)
    l1: float = 0.0
    seed: int = 0
    #: sparse (CSR) projection -> its number of post neurons; the others are Dense
    sparse: dict[str, int] = field(default_factory=dict)
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # Dense: active synapses
    inhibitory: dict[str, np.ndarray] = field(default_factory=dict)  # a synapse's fixed sign is −
    #: sparse: each synapse's post neuron (the artefact's col_idx, as the rule last wrote it)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    #: synapses rewired by the last step, per projection
    last: dict[str, int] = field(default_factory=dict)
    #: sparse: the artefact's live row_ptr and col_idx (set by `start`; not state)
    _live: dict[str, Mapping[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def start(
        self,
        weights: Mapping[str, np.ndarray],
        structure: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    ) -> None:
        """Draw the active synapses and the signs, and zero the inactive weights in place; what a
        checkpoint gave is kept, and a sparse projection's checkpointed columns are written into
        `structure` (the artefact's live CSR arrays, by projection)."""
        for i, name in enumerate(self.projections):
            if name in self.sparse:
                if structure is None or name not in structure:
                    raise ValueError(f"deep_r: sparse '{name}' needs the artefact's live structure")
                self._start_sparse(name, weights[name], structure[name])
            elif name not in self.masks:
                self._start_dense(i, name, weights[name])

    def _start_dense(self, i: int, name: str, w: np.ndarray) -> None:
        rng = np.random.default_rng([self.seed, _KEY, i])
        active = np.zeros(w.size, bool)
        count = int(round(float(self.connectivity or 0) * w.size))
        active[rng.choice(w.size, count, replace=False)] = True
        active = active.reshape(w.shape)
        self.masks[name] = active
        self.inhibitory[name] = np.where(active, w < 0, rng.random(w.shape) < 0.5)
        w[~active] = 0

    def _start_sparse(self, name: str, w: np.ndarray, live: Mapping[str, np.ndarray]) -> None:
        col = live["col_idx"]
        if col.shape != w.shape:
            raise ValueError(f"deep_r: '{name}' has {w.size} weights but {col.size} column indices")
        self._live[name] = live
        if name in self.columns:  # from a checkpoint: the artefact still has the drawn structure
            if self.columns[name].shape != col.shape:
                raise RuntimeConfigError(
                    "E-CHECKPOINT",
                    f"the checkpoint's rewired structure of '{name}' has {self.columns[name].size} "
                    f"synapses, the model {col.size}",
                )
            col[...] = self.columns[name]
        else:
            self.columns[name] = col.astype(np.int32)
        if name not in self.inhibitory:
            self.inhibitory[name] = w < 0

    def gradients(self, grads: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`grads` with no gradient for inactive synapses and the L1 pull on active ones."""
        out = dict(grads)
        for name in self.projections:
            if name not in out:
                continue
            g = np.asarray(out[name], np.float64)
            active = self.masks.get(name)
            g = np.where(active, g, 0.0) if active is not None else g.copy()
            if self.l1:
                pull = np.where(self.inhibitory[name], -self.l1, self.l1)
                g += np.where(active, pull, 0.0) if active is not None else pull
            out[name] = g
        return out

    def rewire(self, weights: Mapping[str, np.ndarray], optimiser: Any, step: int) -> None:
        """After optimiser step `step`: dormant synapses out, as many random ones in (in place)."""
        for i, name in enumerate(self.projections):
            w, inhibitory = weights[name], self.inhibitory[name]
            rng = np.random.default_rng([self.seed, _KEY, i, step])
            if name in self.sparse:
                self._rewire_sparse(name, w, inhibitory, optimiser, rng)
            else:
                self._rewire_dense(name, w, inhibitory, optimiser, rng)

    def _rewire_dense(self, name: str, w: np.ndarray, inhibitory: np.ndarray, optimiser: Any, rng) -> None:
        active = self.masks[name]
        dormant = active & ((w < 0) != inhibitory)
        count = int(dormant.sum())
        self.last[name] = count
        active &= ~dormant
        if count:
            free = np.flatnonzero(~active.ravel())
            chosen = rng.choice(free, count, replace=False)
            active.reshape(-1)[chosen] = True
            inhibitory.reshape(-1)[chosen] = rng.random(count) < 0.5
            fresh = np.zeros(active.shape, bool)
            fresh.reshape(-1)[chosen] = True
            w[fresh] = 0  # a new synapse starts from nothing
            optimiser.reset_moments(name, dormant | fresh)  # a synapse that left or arrived
        w[~active] = 0

    def _rewire_sparse(self, name: str, w: np.ndarray, inhibitory: np.ndarray, optimiser: Any, rng) -> None:
        """Each dormant synapse's slot takes a new post neuron its row does not reach yet, drawn
        uniformly: the row's length, and with it the kernel's loops, stay as they are. The draws
        depend only on (seed, step), so every process rewires alike."""
        cols, live = self.columns[name], self._live[name]
        row_ptr = np.asarray(live["row_ptr"])
        dormant = (w < 0) != inhibitory
        count = int(dormant.sum())
        self.last[name] = count
        if not count:
            return
        leaving = np.flatnonzero(dormant)
        cols[leaving] = _draw_free_columns(cols, row_ptr, dormant, leaving, self.sparse[name], rng)
        inhibitory[leaving] = rng.random(leaving.size) < 0.5
        w[dormant] = 0  # the new synapse in the slot starts from nothing
        optimiser.reset_moments(name, dormant)  # the slot's synapse left and another arrived
        live["col_idx"][...] = cols

    # state for checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        out = {}
        for name in self.projections:
            if name in self.masks:
                out[f"{PREFIX}active/{name}"] = self.masks[name].astype(np.uint8)
            if name in self.columns:
                out[f"{PREFIX}columns/{name}"] = self.columns[name].astype(np.int32)
            if name in self.inhibitory:
                out[f"{PREFIX}inhibitory/{name}"] = self.inhibitory[name].astype(np.uint8)
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        for key, arr in state.items():
            if key.startswith(f"{PREFIX}active/"):
                self.masks[key.split("/", 2)[2]] = np.asarray(arr).astype(bool)
            elif key.startswith(f"{PREFIX}columns/"):
                self.columns[key.split("/", 2)[2]] = np.asarray(arr).astype(np.int32)
            elif key.startswith(f"{PREFIX}inhibitory/"):
                self.inhibitory[key.split("/", 2)[2]] = np.asarray(arr).astype(bool)


#: rounds of vectorised proposals before the rows still waiting are drawn one by one
_PROPOSAL_ROUNDS = 8


def _draw_free_columns(
    cols: np.ndarray, row_ptr: np.ndarray, dormant: np.ndarray, leaving: np.ndarray, posts: int, rng
) -> np.ndarray:
    """A new column for each slot in `leaving` (the dormant ones, in order): distinct within its
    row, not a column the row keeps, uniform over those.

    Rejection sampling for all slots at once, so the cost follows the dormant synapses rather than
    a Python loop over rows (4 ms per batch at SHD size before): each round every waiting slot
    proposes a uniform column; a proposal is taken unless its row keeps that column or took it
    already (an earlier slot's proposal in the same round wins). By symmetry a taken proposal is
    uniform over the row's free columns. Rows nearly full could take many rounds: after
    `_PROPOSAL_ROUNDS` the rest draw without replacement row by row."""
    slot_rows = np.repeat(np.arange(row_ptr.size - 1), np.diff(row_ptr))
    rows = slot_rows[leaving]
    involved = np.zeros(row_ptr.size - 1, bool)
    involved[rows] = True
    kept = ~dormant & involved[slot_rows]  # only the rows that draw
    taken = np.sort(slot_rows[kept].astype(np.int64) * posts + cols[kept])  # (row, column) in use
    drawn = np.empty(0, np.int64)  # pairs taken by earlier rounds
    out = np.empty(leaving.size, np.int32)
    waiting = np.arange(leaving.size)
    for _ in range(_PROPOSAL_ROUNDS):
        if not waiting.size:
            return out
        proposal = rng.integers(0, posts, waiting.size)
        pair = rows[waiting].astype(np.int64) * posts + proposal
        _, first = np.unique(pair, return_index=True)
        ok = np.zeros(waiting.size, bool)
        ok[first] = True
        at = np.minimum(np.searchsorted(taken, pair), taken.size - 1)
        ok &= (taken[at] != pair) if taken.size else ok
        ok &= ~np.isin(pair, drawn)
        out[waiting[ok]] = proposal[ok]
        drawn = np.concatenate([drawn, pair[ok]])
        waiting = waiting[~ok]
    taken = np.concatenate([taken, drawn])
    everyone = np.arange(posts)
    for r in np.unique(rows[waiting]):  # the rows still waiting, in order
        mine = waiting[rows[waiting] == r]
        used = taken[(taken >= r * posts) & (taken < (r + 1) * posts)] - r * posts
        free = np.setdiff1d(everyone, used, assume_unique=True)
        out[mine] = rng.choice(free, mine.size, replace=False)
    return out


def rewired_columns(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The column indices a checkpoint's optimiser state holds for rewired sparse projections, by
    projection: whoever loads its weights into a fresh artefact writes these into its structure."""
    head = f"{PREFIX}columns/"
    return {k[len(head) :]: np.asarray(v, np.int32) for k, v in state.items() if k.startswith(head)}


def rewired_projections(call: Any) -> tuple[str, ...]:
    """The projection names of a `deep_r(projections = …)` call (one name or a tuple)."""
    names = call.args.get("projections")
    return (names,) if isinstance(names, str) else tuple(names or ())


def from_call(call: Any, network: Any, seed: int) -> DeepR:
    """From the train block's `rewiring = deep_r(...)`; what it cannot rewire is refused at its span."""
    span = getattr(call, "span", None)
    if call.name != "deep_r":
        raise RuntimeConfigError(
            "E-REWIRING", f"unknown rewiring '{call.name}'", "the runtime knows deep_r(projections = …, "
            "connectivity = …, l1 = …)", span,
        )  # fmt: skip
    check_args("rewiring", call.name, call.args, _ARGS, span)
    names = rewired_projections(call)
    if not names:
        raise RuntimeConfigError("E-REWIRING", "deep_r() needs projections = (…)", None, span)
    sparse: dict[str, int] = {}
    for name in names:
        proj = network.projections.get(name)
        if proj is None:
            raise RuntimeConfigError(
                "E-REWIRING",
                f"deep_r(): no projection '{name}'",
                f"projections: {', '.join(sorted(network.projections))}",
                span,
            )
        layout = kind_of(proj.connectivity.kind).layout
        if layout not in ("dense", "csr") or not proj.trainable:
            raise RuntimeConfigError(
                "E-REWIRING",
                f"deep_r() rewires trainable Dense or sparse (FixedProbability, FixedNumberPost) "
                f"projections; '{name}' is {'not trainable' if not proj.trainable else proj.connectivity.kind}",
                "make it Dense or FixedProbability: deep_r moves its synapses",
                span,
            )
        if layout == "csr":
            sparse[name] = network.populations[proj.post].size
    p = call.args.get("connectivity")
    dense = [n for n in names if n not in sparse]
    if p is None and dense:
        raise RuntimeConfigError(
            "E-REWIRING",
            f"deep_r(): connectivity = … is needed for the Dense projection(s) {', '.join(dense)}",
            "the fraction of their synapses kept active, e.g. connectivity = 0.1",
            span,
        )
    if p is not None and not dense:
        raise RuntimeConfigError(
            "E-REWIRING",
            "deep_r(): connectivity applies to Dense projections, and every one named is sparse",
            "leave it out: a sparse projection keeps the synapses its connectivity drew",
            span,
        )
    if p is not None and (not isinstance(p, (int, float)) or not 0 < p <= 1):
        raise RuntimeConfigError(
            "E-REWIRING", f"deep_r(): connectivity must be a fraction in (0, 1], not {p!r}", None, span
        )
    l1 = call.args.get("l1", 0.0)
    if not isinstance(l1, (int, float)) or l1 < 0:
        raise RuntimeConfigError("E-REWIRING", f"deep_r(): l1 must be >= 0, not {l1!r}", None, span)
    return DeepR(names, None if p is None else float(p), float(l1), int(seed), sparse)
