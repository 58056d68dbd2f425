"""The pass manager: runs a plain list of named passes, with printing, timing and verification.

Each pass is a function `Network -> Network`. The manager adds, around every entry, what MLIR's
PassManager calls IR printing (`--print-after NAME|all`), the verifier (`ir.verify`, so a pass that
breaks an invariant fails right there, naming itself) and timing (`--timings`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from snnc.ir.model import Network


class UnknownPassError(ValueError):
    """`--print-after` named a pass that is not in the pipeline (a usage error, not a bug)."""


class InternalError(Exception):
    """A bug in snnc (not in the user's file): a pass produced IR that fails verification."""


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Network], Network]
    description: str = ""


@dataclass
class PassTiming:
    name: str
    seconds: float


@dataclass
class PassManager:
    passes: Sequence[Pass]
    print_after: frozenset[str] = frozenset()  # pass names, or {"all"}
    verify: bool = True
    out: TextIO = field(default_factory=lambda: sys.stdout)
    timings: list[PassTiming] = field(default_factory=list)

    def __post_init__(self) -> None:
        known = {p.name for p in self.passes} | {"all", "schedule"}
        unknown = set(self.print_after) - known
        if unknown:
            raise UnknownPassError(
                f"unknown pass name(s) for --print-after: {', '.join(sorted(unknown))}; "
                f"passes are: {', '.join(p.name for p in self.passes)}, then schedule (the kernel IR)"
            )

    def run(self, network: Network) -> Network:
        from snnc.ir.printer import print_network
        from snnc.ir.verify import verify

        if self.verify:
            self._verify(verify, network, "lowering")
        for entry in self.passes:
            start = time.perf_counter()
            network = entry.run(network)
            self.timings.append(PassTiming(entry.name, time.perf_counter() - start))
            if self.verify:
                self._verify(verify, network, entry.name)
            if "all" in self.print_after or entry.name in self.print_after:
                self.out.write(f"// ----- IR Dump After {entry.name} -----\n")
                self.out.write(print_network(network))
                self.out.write("\n")
        return network

    @staticmethod
    def _verify(verify: Callable[[Network], list[str]], network: Network, after: str) -> None:
        problems = verify(network)
        if problems:
            raise InternalError(f"IR verification failed after '{after}': " + "; ".join(problems))

    def format_timings(self) -> str:
        total = sum(t.seconds for t in self.timings)
        lines = [f"{'pass':<16} {'ms':>10}"]
        lines += [f"{t.name:<16} {t.seconds * 1e3:>10.2f}" for t in self.timings]
        lines.append(f"{'total':<16} {total * 1e3:>10.2f}")
        return "\n".join(lines)
