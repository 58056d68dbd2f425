"""The C build's translation units (`kernel_printer.print_units`, `build.build(units=...)`): the
phases split over units that compile in parallel make the library the whole file makes, and a unit
the compiler refuses costs only time (the whole file is compiled instead, and its errors named)."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from snnc.backends.c import backend
from snnc.backends.c.build import build
from snnc.backends.c.kernel_printer import print_kernel, print_units
from snnc.ir.diagnostics import DiagnosticError
from snnc.passes.schedule import schedule
from snnc.runtime.session import load_data, xy

import snnc
from snnc.api import lower

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "yinyang_eventprop.snn"
CODE = "int snnc_run(void) { return %d; }\n"


def _defined(text: str) -> list[str]:
    """The functions `text` defines (a signature followed by a body)."""
    return re.findall(
        r"^(?:static |__attribute__\(\(visibility\(\"hidden\"\)\)\) )?(?:void|int) (snnc_\w+)\([^;{]*\) \{",
        text,
        re.M,
    )


def _calls(kernel) -> Counter:  # noqa: ANN001
    """How many places of the entry points call each phase."""
    by_name = {e.name: e for e in kernel.entries}
    calls: Counter = Counter()
    for e in kernel.entries:
        for link in [by_name[n] for n in e.chain] if e.chain else [e]:
            calls.update([*link.prepare, *link.before, *link.per_step, *link.after])
        calls.update(e.once)
    return calls


def test_each_phase_is_defined_in_one_unit_and_the_entries_with_the_phases_they_call_once() -> None:
    network = lower(EXAMPLE)
    kernel = schedule(network, precision="float", event_buffer=network.training.max_spikes)
    whole, _ = print_kernel(kernel, ir_hash="h")
    code, units, _ = print_units(kernel, ir_hash="h", units=3)
    assert code == whole and len(units) == 4
    phases = sorted(f"snnc_{ph.name}" for ph in kernel.phases)
    per_unit = [_defined(u) for u in units]
    assert sorted(n for names in per_unit for n in names if n in phases) == phases
    assert all(names for names in per_unit[1:])
    entries = [f"snnc_{e.name}" for e in kernel.entries]
    assert set(entries) <= set(per_unit[0]) and not any(e in names for names in per_unit[1:] for e in entries)
    once = {f"snnc_{name}" for name, n in _calls(kernel).items() if n == 1}
    assert set(per_unit[0]) & set(phases) == once
    assert print_units(kernel, ir_hash="h", units=1)[1] == []


def test_a_kernel_whose_phases_are_each_called_once_stays_whole() -> None:
    network = lower(EXAMPLE)
    kernel = schedule(dataclasses.replace(network, training=None), precision="float")
    assert max(_calls(kernel).values()) == 1
    assert print_units(kernel, ir_hash="h", units=4)[1] == []


def _trained(monkeypatch: pytest.MonkeyPatch, cache: Path, units: int) -> tuple[dict, Path]:
    monkeypatch.setenv("SNNC_CACHE_DIR", str(cache))
    monkeypatch.setattr(backend, "parallel_units", lambda: units)
    net = snnc.compile(str(EXAMPLE), threads=1)
    x, y = xy(net.network, load_data(net.network).train)
    xs = {k: v.subset(range(64)) for k, v in x.items()}
    ys = {k: v[:64] for k, v in y.items()}
    net.make_trainer(batch_size=32).train(xs, ys, 1, callbacks=[])
    return net.weights, Path(net.artefact._lib._name)


def test_units_train_as_the_whole_file_does(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    whole, whole_lib = _trained(monkeypatch, tmp_path / "one", 1)
    split, split_lib = _trained(monkeypatch, tmp_path / "two", 2)
    assert whole_lib.read_bytes() != split_lib.read_bytes()  # two builds, not one library twice
    assert set(whole) == set(split)
    for name in whole:
        assert np.array_equal(whole[name], split[name]), name


def test_a_unit_the_compiler_refuses_falls_back_to_the_whole_file(tmp_path: Path) -> None:
    built = build(CODE % 5, "m", directory=tmp_path, units=["not C", "int snnc_other(void);\n"])
    assert not built.cached and built.library.read_bytes()[:4] == b"\x7fELF"
    assert build(CODE % 5, "m", directory=tmp_path).cached
    assert not list(tmp_path.rglob(".tmp-*"))


def test_a_compiler_error_names_the_whole_file(tmp_path: Path) -> None:
    bad = "int snnc_run(void) { return undefined_thing; }\n"
    with pytest.raises(DiagnosticError) as info:
        build(bad, "bad", directory=tmp_path, units=[bad, "int x;\n"])
    message = info.value.diagnostics[0].message
    assert info.value.diagnostics[0].code == "E-CC" and "bad.c" in message and "undefined_thing" in message
    assert not list(tmp_path.rglob(".tmp-*"))
