"""What `snnc import` and `snnc export` do: NIR files <-> `.snn` files (with `.npy` weights)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.paths import refuse_overwriting_inputs

if TYPE_CHECKING:
    from snnc.frontend.nir_import import Imported


def _read_nir(path: Path):  # noqa: ANN202
    try:
        import nir
    except ImportError:
        raise DiagnosticError(
            Diagnostic("E-NIR", "NIR support needs the 'nir' package", hint="pip install nir")
        ) from None
    if not path.is_file():
        raise DiagnosticError(Diagnostic("E-NO-FILE", f"no such file: {path}"))
    try:
        return nir.read(str(path))
    except Exception as e:  # noqa: BLE001 - h5py/nir raise many kinds for a bad file
        error = e
    if "type inference" in str(error).lower():
        # nir's inference compares declared shapes: one-element (scalar) neuron parameters, as
        # Norse writes them, fail it. The importer checks every size it uses (a weight against
        # the population it feeds), so the graph is read again without nir's check.
        try:
            return nir.read(str(path), type_check=False)
        except Exception:  # noqa: BLE001 - report the first error
            pass
    raise DiagnosticError(
        Diagnostic("E-NIR", f"cannot read '{path}' as a NIR graph ({type(error).__name__}: {error})")
    ) from None


def import_nir(
    source: str | os.PathLike,
    output: str | os.PathLike | None = None,
    spike_step: float | None = None,
    train_bias: bool = False,
) -> Imported:
    """`snnc import model.nir -o model.snn [--spike-step S] [--train-bias]`: write the `.snn` file
    and its weights."""
    from snnc.frontend.nir_import import nir_to_snn

    src = Path(source)
    graph = _read_nir(src)
    if spike_step is not None and not spike_step > 0:
        raise DiagnosticError(
            Diagnostic("E-NIR", f"--spike-step must be a positive time in seconds, not {spike_step}")
        )
    out = Path(output) if output else src.with_suffix(".snn")
    refuse_overwriting_inputs("the .snn file", out, (src,))
    return nir_to_snn(graph, out, spike_step=spike_step, train_bias=train_bias)


def export_nir(
    source: str | os.PathLike, output: str | os.PathLike | None = None, checkpoint: str | None = None
) -> Path:
    """`snnc export model.snn -o model.nir [--checkpoint PATH]`: write the network as NIR."""
    import nir

    from snnc.api import load_network, require_network
    from snnc.backends.nir.export import to_nir
    from snnc.frontend.nir_names import ExportNames, read_annotations

    network = require_network(load_network(Path(source)))
    weights = {}
    if checkpoint:
        from snnc.runtime.checkpoint import latest_checkpoint, load_checkpoint

        path = Path(checkpoint)
        if path.is_dir():
            path = latest_checkpoint(path) or path / "epoch-0000.npz"
        weights = load_checkpoint(path).weights
    graph = to_nir(network, weights, ExportNames(read_annotations(network)))
    out = Path(output) if output else Path(source).with_suffix(".nir")
    refuse_overwriting_inputs("the NIR graph", out, (source, checkpoint))
    out.parent.mkdir(parents=True, exist_ok=True)
    nir.write(str(out), graph)
    return out
