"""Deep R rewiring (Bellec et al. 2018), as mlGeNN's `deep_r_conns`: a fixed number of connections
per projection, each with a fixed sign, that move during training.

A train block's `rewiring = deep_r(projections = (h_to_h), connectivity = 0.1, l1 = 1e-8)` keeps
`connectivity` of each named projection's synapses active. Every active synapse keeps the sign it
started with (its initial weight's; a synapse activated later draws one at random). After each
optimiser step a synapse whose weight crossed zero against its sign goes dormant (weight 0), and as
many inactive synapses, drawn uniformly, become active with weight 0 and fresh optimiser moments.
Before each step an L1 term pulls every active weight towards zero (`l1` times its sign is added to
the gradient, as mlGeNN's DeepRL1 does); inactive synapses have no gradient.

Projections are Dense in the network: an inactive synapse is a weight held at 0, so the same
rewiring works for either gradient algorithm and backend, at the cost of dense compute.
The masks and signs travel in checkpoints; the draws are keyed by (seed, optimiser step), so every
MPI rank rewires alike and a resumed run rewires as the uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from snnc.runtime.errors import RuntimeConfigError, check_args

#: the keys of this rewiring's state among a checkpoint's optimiser arrays
PREFIX = "rewiring/"
_ARGS = ("projections", "connectivity", "l1")


@dataclass
class DeepR:
    projections: tuple[str, ...]
    connectivity: float
    l1: float = 0.0
    seed: int = 0
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # active synapses
    inhibitory: dict[str, np.ndarray] = field(default_factory=dict)  # a synapse's fixed sign is −
    #: synapses rewired by the last step, per projection
    last: dict[str, int] = field(default_factory=dict)

    def start(self, weights: Mapping[str, np.ndarray]) -> None:
        """Draw the active synapses (exactly round(connectivity · size) of each projection) and the
        signs, and zero the inactive weights in place; nothing when a checkpoint gave them."""
        for i, name in enumerate(self.projections):
            if name in self.masks:
                continue
            w = weights[name]
            rng = np.random.default_rng([self.seed, 0xDEE9, i])
            active = np.zeros(w.size, bool)
            active[rng.choice(w.size, int(round(self.connectivity * w.size)), replace=False)] = True
            active = active.reshape(w.shape)
            self.masks[name] = active
            self.inhibitory[name] = np.where(active, w < 0, rng.random(w.shape) < 0.5)
            w[~active] = 0

    def gradients(self, grads: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`grads` with no gradient for inactive synapses and the L1 pull on active ones."""
        out = dict(grads)
        for name, active in self.masks.items():
            if name not in out:
                continue
            g = np.where(active, np.asarray(out[name], np.float64), 0.0)
            if self.l1:
                g += np.where(active, np.where(self.inhibitory[name], -self.l1, self.l1), 0.0)
            out[name] = g
        return out

    def rewire(self, weights: Mapping[str, np.ndarray], optimiser: Any, step: int) -> None:
        """After optimiser step `step`: dormant synapses out, as many random ones in (in place)."""
        for i, (name, active) in enumerate(self.masks.items()):
            w, inhibitory = weights[name], self.inhibitory[name]
            dormant = active & ((w < 0) != inhibitory)
            count = int(dormant.sum())
            self.last[name] = count
            active &= ~dormant
            if count:
                rng = np.random.default_rng([self.seed, 0xDEE9, i, step])
                free = np.flatnonzero(~active.ravel())
                chosen = rng.choice(free, count, replace=False)
                flat = active.reshape(-1)
                flat[chosen] = True
                inhibitory.reshape(-1)[chosen] = rng.random(count) < 0.5
                fresh = np.zeros(active.shape, bool)
                fresh.reshape(-1)[chosen] = True
                w[fresh] = 0  # a new synapse starts from nothing
                optimiser.reset_moments(name, dormant | fresh)  # a synapse that left or arrived
            w[~active] = 0

    # state for checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        out = {}
        for name in self.masks:
            out[f"{PREFIX}active/{name}"] = self.masks[name].astype(np.uint8)
            out[f"{PREFIX}inhibitory/{name}"] = self.inhibitory[name].astype(np.uint8)
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        for key, arr in state.items():
            if key.startswith(f"{PREFIX}active/"):
                self.masks[key.split("/", 2)[2]] = np.asarray(arr).astype(bool)
            elif key.startswith(f"{PREFIX}inhibitory/"):
                self.inhibitory[key.split("/", 2)[2]] = np.asarray(arr).astype(bool)


def from_call(call: Any, network: Any, seed: int) -> DeepR:
    """From the train block's `rewiring = deep_r(...)`; what it cannot rewire is refused at its span."""
    span = getattr(call, "span", None)
    if call.name != "deep_r":
        raise RuntimeConfigError(
            "E-REWIRING", f"unknown rewiring '{call.name}'", "the runtime knows deep_r(projections = …, "
            "connectivity = …, l1 = …)", span,
        )  # fmt: skip
    check_args("rewiring", call.name, call.args, _ARGS, span)
    names = call.args.get("projections")
    names = (names,) if isinstance(names, str) else tuple(names or ())
    if not names:
        raise RuntimeConfigError("E-REWIRING", "deep_r() needs projections = (…)", None, span)
    for name in names:
        proj = network.projections.get(name)
        if proj is None:
            raise RuntimeConfigError(
                "E-REWIRING",
                f"deep_r(): no projection '{name}'",
                f"projections: {', '.join(sorted(network.projections))}",
                span,
            )
        if proj.connectivity.kind != "dense" or not proj.trainable:
            raise RuntimeConfigError(
                "E-REWIRING",
                f"deep_r() rewires trainable Dense projections; '{name}' is "
                f"{'not trainable' if not proj.trainable else proj.connectivity.kind}",
                "make it Dense: deep_r keeps its inactive synapses at weight 0",
                span,
            )
    p = call.args.get("connectivity")
    if not isinstance(p, (int, float)) or not 0 < p <= 1:
        raise RuntimeConfigError(
            "E-REWIRING", f"deep_r(): connectivity must be a fraction in (0, 1], not {p!r}", None, span
        )
    l1 = call.args.get("l1", 0.0)
    if not isinstance(l1, (int, float)) or l1 < 0:
        raise RuntimeConfigError("E-REWIRING", f"deep_r(): l1 must be >= 0, not {l1!r}", None, span)
    return DeepR(names, float(p), float(l1), int(seed))
