"""The C artefact's manifest: what the loader reads besides the library (ABI, network facts, arrays).

`kernel_printer.print_kernel` lists the arrays (by role, owner and var); this module adds the
network's populations and projections and the fingerprints of the IR and the code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from snnc.backends.common import NetworkPlan

#: the calling convention of the generated library (entry signatures, struct of array pointers,
#: the team's setters: 3 added snnc_set_spin_ns)
ABI_VERSION = 3


@dataclass
class Rendered:
    """Generated C and its manifest (`arrays`: kept for callers that list them; always empty now), and
    the same code as translation units to compile in parallel (`units`; empty: compile `code`)."""

    code: str
    arrays: list[Any] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    units: list[str] = field(default_factory=list)


def manifest_facts(plan: NetworkPlan, code: str, *, ir_hash: str, event_buffer: int) -> dict[str, Any]:
    """What a C manifest says besides its arrays: the network, its populations and projections."""
    return {
        "abi": ABI_VERSION,
        "network": plan.name,
        "ir_hash": ir_hash,
        "code_sha256": hashlib.sha256(code.encode()).hexdigest(),
        "dt": plan.dt,
        "num_steps": plan.num_steps,
        "duration": plan.duration,
        "precision": plan.precision,
        "seed": plan.seed,
        "event_buffer": event_buffer,
        "eventprop": None,
        "arrays": [],
        "populations": {
            p.name: {
                "model": p.model,
                "role": p.role,
                "shape": list(p.shape),
                "size": p.size,
                "generator": p.generator,
                "states": dict(p.states),
                "readout": p.readout,
                "ring": p.ring,
                "refractory_steps": p.refractory_steps,
            }
            for p in plan.populations.values()
        },
        "projections": {
            pp.name: {
                "pre": pp.pre,
                "post": pp.post,
                "kind": pp.kind,
                "synapse": pp.synapse,
                "delay_steps": pp.delay_steps,
                "weight_shape": list(pp.weight_shape),
                "trainable": pp.trainable,
                "states": dict(pp.states),
                "geometry": dict(pp.geometry),
            }
            for pp in plan.projections.values()
        },
    }
