"""Why an output path cannot be written, as a sentence: the commands share it so that a file standing
where a folder should be reads the same everywhere (`--log-json`, `compile -o`)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from snnc.ir.diagnostics import Diagnostic, DiagnosticError


def file_in_the_way(target: str) -> str | None:
    """The first parent of `target` that exists but is not a folder (why it cannot be created)."""
    path = os.path.abspath(target)
    parents = []
    while os.path.dirname(path) != path:
        path = os.path.dirname(path)
        parents.append(path)
    for parent in reversed(parents):
        if os.path.exists(parent) and not os.path.isdir(parent):
            return parent
    return None


def output_error(what: str, target: str, exc: OSError) -> DiagnosticError:
    """E-OUTPUT: cannot write `what` at `target`, with the file in the way or the system's reason."""
    blocker = file_in_the_way(str(target))
    reason = f"'{blocker}' is a file, not a folder" if blocker else (exc.strerror or str(exc))
    return DiagnosticError(Diagnostic("E-OUTPUT", f"cannot write {what} '{target}': {reason}"))


def refuse_overwriting_inputs(what: str, target: str | os.PathLike, inputs: Iterable[object]) -> None:
    """E-OUTPUT when writing `target` would overwrite one of the command's own input files (the
    `.snn` file, a checkpoint, a model): `-o net.snn` or `--log-json net.snn` used to empty it."""
    if str(target) == "-" or not os.path.isfile(target):
        return
    for source in inputs:
        if source is None or not os.path.isfile(str(source)):
            continue
        if os.path.samefile(target, str(source)):
            raise DiagnosticError(
                Diagnostic(
                    "E-OUTPUT",
                    f"cannot write {what} '{target}': it is the input '{source}', which it would overwrite",
                    hint="choose another path for the output",
                )
            )
