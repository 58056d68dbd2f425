"""Compile-and-cache behaviour of the C backend, and the shape of the generated code."""

from __future__ import annotations

import json
import multiprocessing as mp
import re
import shutil
from pathlib import Path

import pytest
from snnc.backends.c.backend import emit_c, generate
from snnc.backends.c.build import build
from snnc.backends.common import check_name, mangle
from snnc.ir.diagnostics import DiagnosticError
from snnc.ir.model import Readout

from tests.backends.netbuild import dense, exponential, lif, network, source

CODE = "int snnc_run(void) { return %d; }\n"


def small_net():  # noqa: ANN201
    return network(
        [
            ("x", "SpikeSource", "input", (3,), {}),
            ("out", "LIF", "output", (2,), {"readout": Readout("avg_var", "v")}),
        ],
        [("x_to_out", "x", "out", *dense(0.5), "Exponential", {"delay": 2.0})],
        [lif(), exponential(), source()],
    )


def test_second_build_hits_the_cache(tmp_path: Path) -> None:
    first = build(CODE % 1, "m", directory=tmp_path)
    second = build(CODE % 1, "m", directory=tmp_path)
    other = build(CODE % 2, "m", directory=tmp_path)
    assert not first.cached and second.cached
    assert second.library == first.library
    assert other.library != first.library


def test_corrupted_cached_library_is_rebuilt(tmp_path: Path) -> None:
    first = build(CODE % 3, "m", directory=tmp_path)
    first.library.write_bytes(b"not an ELF file")
    again = build(CODE % 3, "m", directory=tmp_path)
    assert not again.cached
    assert again.library.read_bytes()[:4] == b"\x7fELF"


def _build_in_child(args: tuple[str, str]) -> str:
    code, directory = args
    return str(build(code, "m", directory=Path(directory)).library)


def test_two_processes_compile_the_same_model_concurrently(tmp_path: Path) -> None:
    code = CODE % 4
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        libs = pool.map(_build_in_child, [(code, str(tmp_path))] * 2)
    assert libs[0] == libs[1]
    assert build(code, "m", directory=tmp_path).cached
    assert not list(tmp_path.rglob(".tmp-*"))  # no temporaries left behind


def test_compiler_error_names_the_file_and_quotes_the_compiler(tmp_path: Path) -> None:
    with pytest.raises(DiagnosticError) as info:
        build("int snnc_run(void) { return undefined_thing; }\n", "bad", directory=tmp_path)
    diag = info.value.diagnostics[0]
    assert diag.code == "E-CC"
    assert "bad.c" in diag.message and Path(diag.message.split("generated file ")[1].split(":")[0]).exists()
    assert "undefined_thing" in diag.message


def test_mangling_rejects_non_identifiers() -> None:
    assert mangle("p", "h", "v") == "p_h__v"
    for bad in ("a-b", "1x", "x;y", "", "v\n"):
        with pytest.raises(ValueError):
            check_name(bad)


def test_generated_code_is_specialised_and_commented() -> None:
    rendered, _, _ = generate(small_net())
    code = rendered.code
    assert "projection x_to_out: x -> out, dense, synapse Exponential, delay 2 step(s)" in code
    assert "population out: 2 x LIF" in code
    assert "typedef float scalar;" in code
    assert "0.951229" in code and "F" in code.split("0.951229")[1][:8]  # alpha = exp(-1/20), float literal
    assert "tau_mem" not in code.split("typedef struct")[1]  # params are literals, not variables
    assert "snnc_for_trials(snnc__trial_run, A, batch, num_steps, seed);" in code  # trials on the team
    double, _, _ = generate(small_net(), precision="double")
    assert "typedef double scalar;" in double.code and "0.95122942450071402" in double.code


def test_emit_c_writes_code_and_manifest(tmp_path: Path) -> None:
    paths = emit_c(small_net(), tmp_path)
    assert [p.name for p in paths] == ["net.c", "manifest.json"]
    manifest = json.loads(paths[1].read_text())
    names = {a["name"]: a for a in manifest["arrays"]}
    assert names["p_out__v"]["shape"] == ["batch", 2] and names["p_out__v"]["dtype"] == "scalar"
    assert names["w_x_to_out"]["shape"] == [3, 2]
    assert manifest["projections"]["x_to_out"]["delay_steps"] == 2
    assert manifest["populations"]["x"]["ring"] == 3
    assert len(manifest["ir_hash"]) == 16
    # every array in the manifest is a field of the C struct, in order
    code = paths[0].read_text()
    fields = [
        re.search(r"(\w+);", line).group(1)
        for line in code.split("typedef struct {")[1].split("} snnc_arrays;")[0].strip().splitlines()
    ]
    assert fields == [a["name"] for a in manifest["arrays"]]


def test_ir_hash_is_the_printed_irs_and_a_printer_error_is_not_hidden(monkeypatch) -> None:  # noqa: ANN001
    import hashlib

    from snnc.backends.c import backend
    from snnc.ir.printer import print_network

    net = small_net()
    assert backend.ir_hash(net) == hashlib.sha256(print_network(net).encode()).hexdigest()[:16]

    def broken(network) -> str:  # noqa: ANN001
        raise RuntimeError("printer bug")

    monkeypatch.setattr(backend, "print_network", broken)
    with pytest.raises(RuntimeError, match="printer bug"):  # not a silently different hash
        backend.ir_hash(net)


def test_a_compiler_that_refuses_the_vectoriser_param_builds_without_it(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The alias-check param is GCC's (e-prop's synapse loops vectorise with it): GCC gets it, a
    compiler that refuses it still builds, without it."""
    import stat
    import subprocess

    from snnc.backends.c.build import VECTORISE_FLAG, accepts, compiler, flags

    real = tuple(compiler())
    if (
        "Free Software Foundation"
        in subprocess.run([*real, "--version"], capture_output=True, text=True).stdout
    ):
        assert VECTORISE_FLAG in flags(real)
    picky = tmp_path / "picky-cc"
    picky.write_text(
        '#!/bin/sh\nfor a in "$@"; do case "$a" in --param*) echo "unknown: $a" >&2; exit 1;; esac; done\n'
        f'exec {" ".join(real)} "$@"\n'
    )
    picky.chmod(picky.stat().st_mode | stat.S_IXUSR)
    assert not accepts((str(picky),), VECTORISE_FLAG)
    assert VECTORISE_FLAG not in flags((str(picky),))
    monkeypatch.setenv("CC", str(picky))
    assert build(CODE % 3, "m", directory=tmp_path / "cache").library.exists()


def test_compiler_probes_are_remembered_on_disk_per_compiler(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """A new process asked the compiler again which tuning flags it takes (four runs, ~0.1 s of
    every cold compile); the answers are kept per compiler and version, and a damaged
    file only means asking again."""
    import snnc.backends.c.build as b

    monkeypatch.setenv("SNNC_CACHE_DIR", str(tmp_path))
    cc = tuple(b.compiler())
    b.accepts.cache_clear()
    first = b.flags(cc)
    files = list((tmp_path / "compiler").glob("*.json"))
    assert len(files) == 1
    answers = json.loads(files[0].read_text())
    assert set(answers) == set(b.TUNING_FLAGS)

    def no_probe(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if "--version" in args[0]:
            return real_run(*args, **kwargs)
        raise AssertionError(f"the compiler was asked again: {args[0]}")

    real_run = b.subprocess.run
    monkeypatch.setattr(b.subprocess, "run", no_probe)
    b.accepts.cache_clear()
    assert b.flags(cc) == first  # as a new process would: from the file alone

    monkeypatch.setattr(b.subprocess, "run", real_run)
    files[0].write_text("{not json")
    b.accepts.cache_clear()
    assert b.flags(cc) == first
    assert json.loads(files[0].read_text()) == answers  # asked again and written whole
    b.accepts.cache_clear()


def _printed(kernel) -> str:  # noqa: ANN001
    from snnc.backends.c.kernel_printer import print_kernel
    from snnc.backends.templates import template_env

    template_env.cache_clear()  # a new environment, with the cache folder of this test
    return print_kernel(kernel, ir_hash="h")[0]


def test_compiled_templates_are_kept_and_a_damaged_or_missing_one_is_compiled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from snnc.backends.c.kernel_printer import TEMPLATES
    from snnc.backends.templates import template_env
    from snnc.passes.schedule import schedule

    kernel = schedule(small_net(), precision="float")
    monkeypatch.setenv("SNNC_CACHE_DIR", str(tmp_path / "cache"))
    try:
        code = _printed(kernel)
        kept = sorted((tmp_path / "cache" / "templates").iterdir())
        assert len(kept) == 3  # the kernel, its macros and the team
        for path in kept:
            path.write_bytes(b"not a compiled template")
        assert _printed(kernel) == code
        assert all(path.read_bytes() != b"not a compiled template" for path in kept)
        env = template_env.__wrapped__(TEMPLATES)  # an environment whose cache folder goes away
        shutil.rmtree(tmp_path / "cache")
        assert env.get_template("kernel.c.j2").name == "kernel.c.j2"  # compiled, not kept
    finally:
        template_env.cache_clear()
