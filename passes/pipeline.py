"""The pass pipeline as a plain list (STYLE.md #2): discretise, the gradient pass, simplify.

Gradient passes live in their own modules and register themselves in `GRADIENT_PASSES` under the
training algorithm's name (`eventprop`, `eprop`) when imported; the pipeline imports them lazily so
that a missing one simply leaves the pipeline without gradients.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from snnc.ir.model import Network

from .discretise import discretise
from .manager import Pass, PassManager
from .simplify import simplify

#: algorithm name -> the pass that derives its gradient equations (filled in by the pass modules)
GRADIENT_PASSES: dict[str, Pass] = {}

#: modules that register gradient passes when imported
GRADIENT_MODULES: tuple[str, ...] = ("snnc.passes.eventprop", "snnc.passes.eprop")

DISCRETISE = Pass("discretise", discretise, "ODEs -> per-step updates (exact, exponential Euler, Euler)")
SIMPLIFY = Pass("simplify", simplify, "constant folding, common subexpressions, invariant hoisting")
#: the stage after the passes: the kernel IR (`--print-after schedule`)
SCHEDULE = "schedule"


def register_gradient_pass(algorithm: str, entry: Pass) -> None:
    """Called by a gradient pass module at import: `register_gradient_pass("eventprop", Pass(...))`."""
    GRADIENT_PASSES[algorithm] = entry


def _load_gradient_modules() -> None:
    for module in GRADIENT_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:  # the module exists but something it imports is missing: a bug
                raise


def gradient_pass(network: Network) -> Pass | None:
    """The gradient pass for the network's training algorithm, or None (inference, `none`, unknown)."""
    if network.train is None:
        return None
    algorithm = network.train.algorithm.name
    if algorithm == "none":
        return None
    if algorithm not in GRADIENT_PASSES:
        _load_gradient_modules()
    return GRADIENT_PASSES.get(algorithm)


def build_pipeline(network: Network, *, gradients: bool = True) -> list[Pass]:
    """[discretise, <gradient pass when training>, simplify]."""
    passes = [DISCRETISE]
    grad = gradient_pass(network) if gradients else None
    if grad is not None:
        passes.append(grad)
    passes.append(SIMPLIFY)
    return passes


def compile_ir(
    network: Network,
    print_after: Iterable[str] = frozenset(),
    timings: bool = False,
    out: TextIO | None = None,
    *,
    gradients: bool = True,
    verify: bool = True,
) -> tuple[Network, PassManager]:
    """Run the pipeline; `print_after` names passes (or "all") whose output IR is printed to `out`.

    "schedule" names the last stage, the kernel IR the backends print (`passes.schedule`): it is
    run and printed only when asked for, since a backend schedules with its own options."""
    out = out if out is not None else sys.stdout
    asked = frozenset(print_after)
    manager = PassManager(
        build_pipeline(network, gradients=gradients), asked - {SCHEDULE}, verify=verify, out=out
    )
    result = manager.run(network)
    if SCHEDULE in asked or "all" in asked:
        from snnc.ir.kernel import kernel_to_text

        from .manager import PassTiming
        from .schedule import schedule

        start = time.perf_counter()
        kernel = schedule(result)
        manager.timings.append(PassTiming(SCHEDULE, time.perf_counter() - start))
        out.write(f"// ----- Kernel IR Dump After {SCHEDULE} -----\n{kernel_to_text(kernel)}\n")
    if timings:
        out.write(manager.format_timings() + "\n")
    return result, manager
