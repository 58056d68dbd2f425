"""The trainer's view of an artefact: one place that knows the artefact protocol (`artefact.py`).

The training loop, checkpoints and callbacks ask this adapter for readouts, hidden spike counts,
weights, the trial duration and the model hash, so that a change in the protocol touches one file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from snnc.runtime.artefact import RecordRequest


def count_key(pop: str) -> str:
    """The dL/dy key of a hidden population's per-example spike counts (for spike-count regularisers)."""
    return f"{pop}.spike_count"


def record_request(entries: Iterable[Any]) -> RecordRequest:
    """Merge callbacks' record wishes: a population name (its spikes), (population, state) or a RecordRequest."""
    spikes: set[str] = set()
    vars_: set[tuple[str, str]] = set()
    for e in entries:
        if isinstance(e, RecordRequest):
            spikes |= set(e.spikes)
            vars_ |= set(e.vars)
        elif isinstance(e, str):
            spikes.add(e)
        else:
            pop, var = e
            vars_.add((pop, var))
    return RecordRequest(frozenset(spikes), frozenset(vars_))


def readout_kinds(artefact: Any) -> dict[str, str]:
    """Output population -> readout kind, from `artefact.readouts` or the manifest."""
    kinds = getattr(artefact, "readouts", None)
    if kinds:
        return dict(kinds)
    return {name: str(ro["kind"]) for name, ro in _manifest_readouts(artefact).items() if ro.get("kind")}


def readout_vars(artefact: Any) -> dict[str, str]:
    """Output population -> the variable its readout reads, from the manifest."""
    return {name: str(ro["var"]) for name, ro in _manifest_readouts(artefact).items() if ro.get("var")}


def _manifest_readouts(artefact: Any) -> dict[str, Mapping[str, Any]]:
    """Population -> its readout as the manifest has it ({kind, var, options}; a bare kind is read as one)."""
    pops = (getattr(artefact, "manifest", None) or {}).get("populations", {})
    out: dict[str, Mapping[str, Any]] = {}
    for name, p in pops.items():
        ro = p.get("readout") if isinstance(p, Mapping) else None
        if isinstance(ro, Mapping):
            out[name] = ro
        elif isinstance(ro, str):
            out[name] = {"kind": ro}
    return out


def duration(artefact: Any) -> float | None:
    d = getattr(artefact, "duration", None)
    if d is not None:
        return float(d)
    try:
        return float(artefact.dt) * int(artefact.num_steps)
    except (AttributeError, TypeError, ValueError):
        return None


def model_hash(artefact: Any) -> str | None:
    h = getattr(artefact, "model_hash", None)
    if h is None:
        h = (getattr(artefact, "manifest", None) or {}).get("ir_hash")
    return None if h in (None, "") else str(h)


def live_weights(artefact: Any) -> tuple[dict[str, np.ndarray], bool]:
    """(weights, live): live views when the artefact offers them, else copies to hand back with `commit`."""
    w = getattr(artefact, "weights", None)
    if isinstance(w, Mapping):
        return dict(w), True
    return artefact.get_weights(), False


def live_structure(artefact: Any, projections: Iterable[str]) -> dict[str, Mapping[str, np.ndarray]]:
    """Live views of the CSR arrays (`row_ptr`, `col_idx`) of `projections`, which the runtime may
    rewrite between batches (Deep R moves column indices); an artefact without them cannot."""
    get = getattr(artefact, "connectivity", None)
    out = {}
    for name in projections:
        arrays = get(name) if get is not None else {}
        if "col_idx" not in arrays:
            raise RuntimeError(f"the artefact offers no live sparse structure of '{name}' to rewire")
        out[name] = arrays
    return out


def commit_weights(artefact: Any, weights: Mapping[str, np.ndarray], live: bool) -> None:
    if not live:
        artefact.set_weights(weights)


def folded_regularisers(artefact: Any) -> list[str]:
    """Populations whose spike-count regulariser the artefact applies itself, from the batch's counts."""
    ep = (getattr(artefact, "manifest", None) or {}).get("eventprop") or {}
    return sorted(ep.get("regularised") or {})


def spike_counts(result: Any, pop: str) -> np.ndarray:
    """Per-example spike counts [batch, neurons] of `pop` from a run's event buffers or spike raster."""
    if pop in getattr(result, "events", {}):
        return np.asarray(result.events[pop][1], dtype=np.float64)
    if pop in getattr(result, "spikes", {}):
        return np.asarray(result.spikes[pop], dtype=np.float64).sum(axis=1)
    raise RuntimeError(f"the artefact returned no spikes of '{pop}' to regularise")


def set_targets(artefact: Any, targets: Mapping[str, Any]) -> None:
    """Hand the batch's targets to an artefact that learns online (e-prop) before its `run`.

    Artefacts without `set_targets` compute gradients in `backward` from dL/dy and ignore this.
    """
    fn = getattr(artefact, "set_targets", None)
    if fn is not None:
        fn(targets)


def checked_targets(targets: Mapping[str, Any], outputs: Iterable[str]) -> dict[str, np.ndarray]:
    """An e-prop artefact's `set_targets` argument, checked: one entry for each output population."""
    outputs = sorted(outputs)
    unknown = set(targets) - set(outputs)
    if unknown:
        raise KeyError(f"no e-prop output population {sorted(unknown)}; have {outputs}")
    missing = set(outputs) - set(targets)
    if missing:
        raise KeyError(f"e-prop needs targets for every output population; missing {sorted(missing)}")
    return {k: np.asarray(v) for k, v in targets.items()}


def run_batch(artefact: Any, inputs: Mapping[str, Any], record: RecordRequest, example_ids) -> Any:
    """One forward pass of a batch (rows past the real examples are the artefact's padding).

    `example_ids` are the data set indices of the real rows; they key Poisson inputs so that an
    example draws the same spikes whatever batch or order it lands in.
    """
    return artefact.run(inputs, record=record if record else None, example_ids=[int(i) for i in example_ids])
