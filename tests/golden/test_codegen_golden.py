"""Golden files for generated code: the C source and manifest, and the pygenn module and manifest, of the
four examples, a conv/pool network and a sparse, delayed, recurrent network.

A refactor of the middle or back end shows "no output change" as a passing test; an intended change
is refreshed with `python -m pytest tests/golden --update-golden` and explained in its commit message.
The initial arrays are pinned by shape, dtype and two checksums, so a changed random stream shows too.
"""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from snnc.ir.diagnostics import DiagnosticError

from snnc.api import load_network, lower

HERE = Path(__file__).parent
REPO = HERE.parents[1]
CASES = {
    "yinyang_eventprop": REPO / "examples" / "yinyang_eventprop.snn",
    "shd_eventprop": REPO / "examples" / "shd_eventprop.snn",
    "eprop_digits": REPO / "examples" / "eprop_digits.snn",
    "eprop_pattern": REPO / "examples" / "eprop_pattern.snn",
    "conv_pool": HERE / "sources" / "conv_pool.snn",
    "sparse_delay_recurrent": HERE / "sources" / "sparse_delay_recurrent.snn",
}


def _portable(text: str) -> str:
    """Generated files name their source file; the checkout's location must not matter."""
    return text.replace(str(REPO), "<repo>")


def _array_summary(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    out = {}
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        f = a.astype(np.float64)
        out[name] = {
            "shape": list(a.shape),
            "dtype": str(a.dtype),
            "sum": float(f"{f.sum():.10g}"),
            "sum_sq": float(f"{(f * f).sum():.10g}"),
        }
    return out


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=_default) + "\n"


def _default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)


@functools.cache
def _lowered(source: Path):  # noqa: ANN202 - one lowering per case serves both backends
    return lower(source)


def generated_c(source: Path) -> dict[str, str]:
    """The C that training runs (what `build_compiled` builds) and its manifest."""
    from snnc.backends.c.backend import generate

    network = _lowered(source)
    rendered, static, _ = generate(network)  # one generator for both algorithms
    code, manifest = rendered.code, rendered.manifest
    return {
        f"c/{network.name}.c": _portable(code),
        "c/manifest.json": _portable(_json({**manifest, "static": _array_summary(static)})),
    }


def generated_genn(source: Path) -> dict[str, str]:
    """The pygenn module (no pygenn needed to write it) and its initial arrays, or the refusal."""
    from snnc.backends.genn.emit import generate

    network = _lowered(source)
    try:
        code, arrays, ctx = generate(network)
    except DiagnosticError as err:
        return {"genn/refused.txt": "".join(f"{d.code}: {d.message}\n" for d in err.diagnostics)}
    meta = {"training": ctx.training, "update_groups": ctx.update_groups, "arrays": _array_summary(arrays)}
    return {f"genn/{network.name}_genn.py": _portable(code), "genn/manifest.json": _portable(_json(meta))}


def generated_genn_inference(source: Path) -> dict[str, str]:
    """The pygenn module of the network compiled for simulation only (no gradient pass): its neuron
    code is printed from the forward kernel (backends/genn/kernel_printer.py)."""
    from snnc.backends.genn.emit import generate
    from snnc.passes.pipeline import compile_ir

    network, _ = compile_ir(load_network(source), gradients=False, out=io.StringIO())
    code, arrays, ctx = generate(network)
    meta = {"training": ctx.training, "update_groups": ctx.update_groups, "arrays": _array_summary(arrays)}
    return {
        f"genn_inference/{network.name}_genn.py": _portable(code),
        "genn_inference/manifest.json": _portable(_json(meta)),
    }


#: the cases whose inference module is pinned too (the training ones render their neurons apart)
INFERENCE_CASES = ("conv_pool", "sparse_delay_recurrent", "yinyang_eventprop")


def _check(case: str, files: dict[str, str], kind: str, update: bool) -> None:
    folder = HERE / case
    if update:
        for old in (folder / kind).glob("*") if (folder / kind).exists() else ():
            old.unlink()
        for rel, text in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
    expected = sorted(p.relative_to(folder).as_posix() for p in (folder / kind).glob("*"))
    assert expected == sorted(files), f"{case}: generated files differ; refresh with --update-golden"
    for rel, text in files.items():
        assert text == (folder / rel).read_text(), (
            f"{case}/{rel} changed; if intended, refresh with --update-golden and say why in the commit"
        )


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_c_is_unchanged(case: str, update_golden: bool) -> None:
    _check(case, generated_c(CASES[case]), "c", update_golden)


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_genn_module_is_unchanged(case: str, update_golden: bool) -> None:
    _check(case, generated_genn(CASES[case]), "genn", update_golden)


@pytest.mark.parametrize("case", INFERENCE_CASES)
def test_generated_genn_inference_module_is_unchanged(case: str, update_golden: bool) -> None:
    _check(case, generated_genn_inference(CASES[case]), "genn_inference", update_golden)


def test_golden_files_are_deterministic() -> None:
    source = CASES["sparse_delay_recurrent"]
    assert generated_c(source) == generated_c(source)
    assert generated_genn(CASES["eprop_pattern"]) == generated_genn(CASES["eprop_pattern"])
